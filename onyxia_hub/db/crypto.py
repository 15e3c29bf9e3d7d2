"""Encryption of a store's secret fields (personal access tokens, S3 keys) with Fernet.

Each store has keys of its own (`onyxia_hub.db.stores`): a service given one store's keys
cannot read another's secrets. Keys come from a file (one per line) or from the store's
`ONYXIA_<SERVICE>_CRYPT_KEY` variable (several separated by `;`, as
`$JUPYTERHUB_CRYPT_KEY`). Each key is either a Fernet key (44 characters of
URL-safe base64) or 32 bytes written in hex (64 characters, what `openssl rand -hex 32`
and the embedded hub's `ensure_secret` produce). The first key encrypts; every key
decrypts, so a key is rotated by putting a new one first and keeping the old one until
the store's owner has rewritten every field (the portal does it at start:
`Store.reencrypt`).

A ciphertext is bound to its owner: the plaintext is `{"u": user, "v": value}` and
decryption checks the user, so a ciphertext copied onto another user's row is refused
rather than handed to that user.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..envnames import PORTAL

KEY_ENV = PORTAL.crypt_key  # the portal store's; keys_from(variable=...) for another


class CryptoError(Exception):
    """No usable key, or a field that cannot be decrypted with the keys given."""


def parse_key(text: str) -> bytes:
    """A Fernet key from its base64 form or from 32 bytes in hex."""
    text = text.strip()
    if len(text) == 64:
        try:
            return base64.urlsafe_b64encode(bytes.fromhex(text))
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CryptoError(
            "a store key is 32 bytes: 64 hex characters (openssl rand -hex 32) or a Fernet "
            "key (44 characters of URL-safe base64)"
        )
    return text.encode("ascii")


def read_key_file(path: str | os.PathLike) -> list[bytes]:
    """The keys in path, one a line (blank lines and `#` comments ignored).

    A file other accounts could read is refused: the keys may have leaked.
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text()
    except OSError as e:
        raise CryptoError(f"cannot read the key file {path}: {e.strerror}") from None
    if mode & 0o077:
        raise CryptoError(
            f"the key file {path} is readable by other accounts (mode {mode:04o}); "
            f"if nobody else could have read it: chmod 600 {path}"
        )
    lines = [line.strip() for line in text.splitlines()]
    keys = [parse_key(line) for line in lines if line and not line.startswith("#")]
    if not keys:
        raise CryptoError(f"the key file {path} holds no key")
    return keys


def keys_from(key_file: str | None, environ=os.environ, variable: str = KEY_ENV) -> list[bytes]:
    """Keys from `$<variable>` first (the portal store's by default), then from key_file."""
    keys = [parse_key(k) for k in environ.get(variable, "").split(";") if k.strip()]
    if key_file:
        keys += read_key_file(key_file)
    if not keys:
        raise CryptoError(
            f"no encryption key for the store's secret fields: give a key file or ${variable}"
        )
    return keys


class FieldCrypto:
    """Encrypt and decrypt one user's secret field; see the module docstring."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise CryptoError("no key")
        self._primary = Fernet(keys[0])
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, user: str, value: str) -> str:
        plain = json.dumps({"u": user, "v": value}, separators=(",", ":")).encode()
        return self._fernet.encrypt(plain).decode("ascii")

    def decrypt(self, user: str, ciphertext: str) -> str:
        try:
            data = json.loads(self._fernet.decrypt(ciphertext.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            raise CryptoError("a secret field cannot be decrypted with the keys given") from None
        if not isinstance(data, dict) or data.get("u") != user:
            raise CryptoError("a secret field belongs to another user")
        return data["v"]

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when the primary key did not encrypt this ciphertext."""
        try:
            self._primary.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return True
        return False

    def rotate(self, ciphertext: str) -> str:
        """ciphertext encrypted again with the first key; CryptoError if no key reads it."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise CryptoError("a secret field cannot be decrypted with the keys given") from None


class NoKey:
    """In place of a `FieldCrypto` when a store has no usable key: plain fields stay
    readable, every secret field raises CryptoError with the reason."""

    def __init__(self, reason: str):
        self.reason = reason

    def encrypt(self, user: str, value: str) -> str:
        raise CryptoError(self.reason)

    def decrypt(self, user: str, ciphertext: str) -> str:
        raise CryptoError(self.reason)

    def needs_rotation(self, ciphertext: str) -> bool:
        return False

    def rotate(self, ciphertext: str) -> str:
        raise CryptoError(self.reason)
