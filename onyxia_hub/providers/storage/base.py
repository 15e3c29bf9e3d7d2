"""What every part of the storage provider shares: settings, credentials, errors, issuers.

`StorageSettings` is plain data: the hub builds it from `StorageProvider`'s traits and
hands it to the portal as JSON (`ONYXIA_STORAGE_SETTINGS`), so that both processes issue
and cache credentials the same way. It never holds a secret: admin or static keys stay in
the file named by `credentials_file`.

An `Issuer` turns a user into a `StorageCredentials`. What a subclass may override, from
least to most invasive:

1. `policy(bucket)`: the policy document confining keys to the bucket;
2. `issue(request)`: get one credential set (async; blocking SDK calls go to a thread);
3. `retire(username, keep, drop)`: delete older keys once a new set is cached;
4. `revoke(username, known)`: remove everything issued for a user (deleted or disabled).
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from ..base import ProviderError

log = logging.getLogger("onyxia_hub.storage")
KINDS = ("sts", "roles", "accesskeys", "static")


class StorageError(ProviderError):
    """Storage credentials could not be had; the message is for the user (never a secret)."""


@dataclass(frozen=True)
class StorageSettings:
    """Where the store is and how credentials are obtained (no secret in here)."""

    kind: str = "accesskeys"
    endpoint_url: str = ""  # the S3 API as user servers reach it, e.g. https://minio.example.org
    internal_endpoint_url: str = ""  # as the hub and portal reach it ('' = endpoint_url)
    sts_endpoint_url: str = ""  # MinIO's STS ('' = the internal endpoint)
    admin_api: str = "iam"  # accesskeys: 'iam' (IAM API, moto) or 'minio' (MinioAdmin)
    region: str = "us-east-1"
    path_style: bool = True
    bucket_prefix: str = "user-"
    credentials_file: str = ""  # JSON {"access_key", "secret_key"}: admin (b) or shared (c)
    sts_duration: int = 3600
    sts_min_token_seconds: int = 60
    key_lifetime: int = 7 * 86400
    reuse_fraction: float = 0.5
    timeout: float = 10.0
    store_id: str = ""  # changes when the store is reset (embedded moto): cache rows die
    data_lost_at_stop: bool = False
    credentials_url: str = ""  # where user servers refresh (the portal's API)
    ensure_bucket: bool = True
    ca_bundle: str = ""  # PEM CAs the hub, the portal and servers verify the store with

    @property
    def s3_internal(self) -> str:
        return self.internal_endpoint_url or self.endpoint_url

    @property
    def sts_url(self) -> str:
        return self.sts_endpoint_url or self.s3_internal

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StorageSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def problems(self) -> list[str]:
        """What is wrong with these settings, in words an operator can act on."""
        found = []
        if self.kind not in KINDS:
            found.append(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        for name in ("endpoint_url", "internal_endpoint_url", "sts_endpoint_url"):
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in ("http", "https"):
                found.append(f"{name} must be an http:// or https:// URL, not {value!r}")
        if not self.endpoint_url:
            found.append("endpoint_url is not set")
        if self.kind in ("roles", "accesskeys", "static") and not self.credentials_file:
            found.append(f"kind {self.kind!r} needs credentials_file")
        if self.admin_api not in ("iam", "minio"):
            found.append(f"admin_api must be 'iam' or 'minio', not {self.admin_api!r}")
        if not 0 < self.reuse_fraction <= 0.9:
            found.append("reuse_fraction must be in (0, 0.9]")
        if self.kind == "accesskeys" and self.reuse_fraction > 0.5:
            found.append(
                "reuse_fraction must be at most 0.5 with access keys: a key is deleted when "
                "the second key after it is made, which must not come before it expires"
            )
        if self.kind == "sts" and not 900 <= self.sts_duration <= 365 * 86400:
            found.append("sts_duration must be at least 900 seconds (MinIO's minimum)")
        if self.kind == "roles" and self.sts_duration < 10:
            found.append("sts_duration must be at least 10 seconds (AWS's STS wants 900)")
        if self.key_lifetime < 10:
            found.append("key_lifetime must be at least 10 seconds")
        if self.timeout <= 0:
            found.append("timeout must be positive")
        return found


@dataclass(frozen=True)
class StorageCredentials:
    """One credential set. Secret fields never appear in its repr."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    issued_at: float = 0.0
    expires_at: float | None = None  # None: no expiry (static keys)
    kind: str = ""
    key_id: str = ""  # what identifies the key for rotation and revocation ('' for STS)

    def lifetime(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - self.issued_at

    def renew_at(self, fraction: float) -> float | None:
        """When a new set should be issued instead of reusing this one."""
        life = self.lifetime()
        return None if life is None else self.issued_at + fraction * life

    def expired(self, now: float | None = None, margin: float = 0.0) -> bool:
        now = time.time() if now is None else now
        return self.expires_at is not None and now + margin >= self.expires_at

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StorageCredentials:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def read_key_pair(path: str) -> tuple[str, str]:
    """(access_key, secret_key) from a JSON file only its owner can read."""
    file = Path(path)
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
        data = json.loads(file.read_text())
    except OSError as e:
        raise StorageError(
            f"the storage credentials file {path} cannot be read: {e.strerror}"
        ) from None
    except ValueError:
        raise StorageError(f"the storage credentials file {path} is not JSON") from None
    if mode & 0o077:
        raise StorageError(
            f"the storage credentials file {path} is readable by other accounts "
            f"(mode {mode:04o}): chmod 600 it"
        )
    access, secret = data.get("access_key"), data.get("secret_key")
    if not (isinstance(access, str) and access and isinstance(secret, str) and secret):
        raise StorageError(f"the storage credentials file {path} needs access_key and secret_key")
    return access, secret


TokenSource = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class IssueRequest:
    """Who needs credentials, for which bucket, and (STS) how to get their token."""

    username: str
    bucket: str
    access_token: TokenSource | None = None


def bucket_policy(bucket: str) -> dict:
    """Everything on the bucket and its objects, nothing else (ListAllMyBuckets aside:
    clients list buckets to show them, and the names are not secret)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


class Issuer:
    """Gets credentials for users from one store; see the module docstring."""

    kind = ""

    def __init__(self, settings: StorageSettings):
        self.settings = settings

    def policy(self, bucket: str) -> dict:
        return bucket_policy(bucket)

    async def issue(self, request: IssueRequest) -> StorageCredentials:
        raise NotImplementedError

    async def retire(
        self, username: str, keep: list[StorageCredentials], drop: list[StorageCredentials]
    ) -> None:
        """Delete `drop` (older sets), never `keep` (the new set and the one before it,
        which running servers may still hold until it expires)."""
        return None

    async def revoke(self, username: str, known: list[StorageCredentials]) -> None:
        """Delete every key issued for username (`known`: the sets the cache held)."""
        return None

    async def call(self, what: str, function, *args, **kwargs):
        """A blocking SDK call in a thread, bounded by the settings' timeout."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(function, *args, **kwargs), self.settings.timeout
            )
        except TimeoutError:
            raise StorageError(
                f"the storage service did not answer within {self.settings.timeout:g} s "
                f"({what}); try again in a moment"
            ) from None
