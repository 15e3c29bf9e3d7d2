"""`CredentialService`: cached credentials for a user, issued at most once at a time.

Used by the hub's `StorageProvider` at launch and by the portal when a running server
asks for fresh credentials; both share the cache (`cache`), so a user gets the same set
from either until it is due for renewal.

    service = CredentialService(settings, cache)
    creds = await service.credentials("alice", access_token=source)   # cached or new
    await service.revoke("alice")                                     # deleted / disabled

Renewal: a cached set is reused until `reuse_fraction` of its lifetime has passed. Then
one caller takes the cache's lease and issues a new set (the others wait for it, up to
`timeout`), keeps the set before it (servers may still hold it) and retires older ones.
When no new set can be had (store down) and the cached one has not expired, the cached
one is served and a warning logged: a slow store does not stop launches early.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict

from .accesskeys import access_key_issuer
from .base import (
    Issuer,
    IssueRequest,
    StorageCredentials,
    StorageError,
    StorageSettings,
    TokenSource,
    log,
)
from .buckets import bucket_name, ensure_bucket
from .cache import CredentialCache
from .roles import RoleSessions
from .static import StaticIssuer
from .sts import StsIssuer


def make_issuer(settings: StorageSettings) -> Issuer:
    if settings.kind == "sts":
        return StsIssuer(settings)
    if settings.kind == "static":
        return StaticIssuer(settings)
    if settings.kind == "roles":
        return RoleSessions(settings)
    return access_key_issuer(settings)


class CredentialService:
    def __init__(
        self,
        settings: StorageSettings,
        cache: CredentialCache,
        issuer: Issuer | None = None,
        owner: str | None = None,
    ):
        problems = settings.problems()
        if problems:
            raise StorageError("storage settings: " + "; ".join(problems))
        self.settings = settings
        self.cache = cache
        self.issuer = issuer or make_issuer(settings)
        self.owner = owner or secrets.token_hex(8)  # this process, for the lease
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._buckets: set[tuple[str, str]] = set()
        self.issued = 0  # sets issued by this process (for logs and tests)

    @property
    def store_id(self) -> str:
        return self.settings.store_id

    def bucket(self, username: str) -> str:
        return bucket_name(self.settings.bucket_prefix, username)

    async def _db(self, function, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    async def credentials(
        self, username: str, *, access_token: TokenSource | None = None, scope: str = "user"
    ) -> StorageCredentials:
        """The user's credentials: the cached set while fresh, else a new one."""
        bucket = self.bucket(username)
        kind, store = self.issuer.kind, self.store_id
        async with self._locks[f"{username}\0{scope}"]:
            deadline = time.monotonic() + self.settings.timeout + 5
            while True:
                entry = await self._db(self.cache.load, username, scope)
                if entry is not None and entry.fresh(kind, store):
                    return entry.current
                lease = self.settings.timeout * 2 + 5
                if await self._db(self.cache.try_lease, username, scope, self.owner, lease):
                    break
                if time.monotonic() > deadline:  # the holder is stuck: serve what is left
                    if entry is not None and entry.usable(kind, store):
                        return entry.current
                    raise StorageError(
                        "your storage credentials are being issued elsewhere and did not "
                        "arrive in time; try again in a moment"
                    )
                await asyncio.sleep(0.1)
            try:
                # another process may have stored a set between our read and our lease
                # (it held the lease then, and released it): read again under the lease
                entry = await self._db(self.cache.load, username, scope)
                if entry is not None and entry.fresh(kind, store):
                    return entry.current
                request = IssueRequest(username, bucket, access_token)
                try:
                    new = await self.issuer.issue(request)
                except StorageError as e:
                    if entry is not None and entry.usable(kind, store):
                        log.warning(
                            "Storage: serving %s's cached credentials, a new set could not "
                            "be issued: %s",
                            username,
                            e,
                        )
                        return entry.current
                    raise
                keep_previous = (
                    entry.current
                    if entry is not None and entry.issuer == kind and entry.store_id == store
                    else None
                )
                count = await self._db(
                    self.cache.store,
                    username,
                    scope,
                    new,
                    keep_previous,
                    issuer=kind,
                    store_id=store,
                    renew_at=new.renew_at(self.settings.reuse_fraction),
                )
            finally:
                await self._db(self.cache.release, username, scope, self.owner)
            self.issued += 1
            expiry = (
                time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(new.expires_at))
                if new.expires_at
                else "never"
            )
            log.info(
                "Storage: issued credentials for %s (%s, set %d, expire %s)",
                username,
                kind,
                count,
                expiry,
            )
            drop = [entry.previous] if entry is not None and entry.previous else []
            try:
                await self.issuer.retire(username, [c for c in (new, keep_previous) if c], drop)
            except StorageError as e:
                log.warning("Storage: older keys of %s not deleted yet: %s", username, e)
            return new

    async def ensure_bucket(self, username: str, credentials: StorageCredentials) -> None:
        """Create user-<name> when missing (once per process and store)."""
        if not self.settings.ensure_bucket:
            return
        bucket = self.bucket(username)
        if (bucket, self.store_id) in self._buckets:
            return
        created = await self.issuer.call(
            "bucket check", ensure_bucket, self.settings, credentials, bucket
        )
        if created:
            log.info("Storage: created the bucket %s", bucket)
        self._buckets.add((bucket, self.store_id))

    async def revoke(self, username: str) -> int:
        """Delete every credential issued for username; the number of cached sets."""
        entries = await self._db(self.cache.forget, username)
        known = [c for e in entries for c in (e.current, e.previous) if c is not None]
        await self.issuer.revoke(username, known)
        if entries:
            log.info("Storage: revoked the credentials of %s", username)
        return len(entries)
