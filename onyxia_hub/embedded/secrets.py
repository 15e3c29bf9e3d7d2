"""Secrets of the embedded hub, each in its own file readable only by its owner.

They are generated once, on first start, and reused afterwards: the cookie secret (login
sessions survive restarts), the encryption key (auth_state and other encrypted records
stay readable), the proxy's API token. The admin's first password is generated here too
when `ONYXIA_HUB_ADMIN_PASSWORD` does not provide one.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ..errors import OnyxiaHubError

ADMIN_PASSWORD_ENV = "ONYXIA_HUB_ADMIN_PASSWORD"  # noqa: S105 - a variable name


def write_private(path: Path, text: str) -> None:
    """Write text to path, readable and writable by the owner only, from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """The hex secret stored at path, created on first use.

    An existing file that others could read is refused rather than silently trusted: the
    secret may already have leaked, and a new one would invalidate what it protects.
    """
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise OnyxiaHubError(
                f"{path} is readable by other accounts (mode {mode:04o}); its secret may have "
                "leaked",
                f"if nobody else could have read it: chmod 600 {path}; otherwise delete it "
                "(a new one is generated at start: users log in again)",
            )
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(nbytes)
    write_private(path, value + "\n")
    return value


def generate_password() -> str:
    """A password that is easy to type and copy: 4 groups of 5 URL-safe characters."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    groups = ["".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4)]
    return "-".join(groups)


def take_admin_password_from_environment() -> str | None:
    """Read and remove `ONYXIA_HUB_ADMIN_PASSWORD` from this process's environment.

    Removing it at once means no child (proxy, user servers, services) can inherit it.
    """
    return os.environ.pop(ADMIN_PASSWORD_ENV, None) or None
