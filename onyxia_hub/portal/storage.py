"""My storage, and fresh S3 credentials for running servers.

    GET storage                   My storage: endpoint, bucket, expiry, snippets (no secret)
    GET api/storage               the same as JSON
    GET api/storage/credentials   a running server's fresh credentials (its own token only)

Trust model of `api/storage/credentials`: only a **server's own token**
(`$JUPYTERHUB_API_TOKEN`, given `access:services!service=portal` through
`Spawner.server_token_scopes`) gets credentials, and only its user's: the caller must
authenticate with a token (never the browser's cookie), and that token must carry
`access:servers!server=<user>/<server>` for its own user, which the hub grants to the
server's token and which dies when the server stops. Browser sessions and the portal's
own pages never see a secret. Each server may ask `storage_refresh_per_minute` times a
minute (429 beyond); the credentials come from the shared cache, so asking more often
issues nothing new.

A periodic sweep revokes the credentials of users the hub no longer has (deleted), and of
local accounts whose approval was withdrawn, when the portal knows the accounts database.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from tornado import web

from ..envnames import STORAGE_ACCOUNTS_DB, STORAGE_SETTINGS
from ..providers.storage.base import StorageError, StorageSettings
from ..providers.storage.cache import CredentialCache
from ..providers.storage.service import CredentialService
from ..service.handlers import APIHandler, PageHandler
from ..service.hubapi import HubAPIError


def service_from_environment(store, log) -> CredentialService | None:
    """The portal's CredentialService, on its own store, from the hub's settings."""
    text = os.environ.get(STORAGE_SETTINGS)
    if not text:
        return None
    try:
        settings = StorageSettings.from_json(text)
        return CredentialService(settings, CredentialCache(store.engine, store.crypto))
    except (ValueError, TypeError, StorageError) as e:
        log.error("Storage is off in the portal: %s", e)
        return None


def _when(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snippets(settings: StorageSettings, bucket: str) -> list[dict]:
    """Copyable code for each client the user environments have (environments/python:
    boto3, s3fs, pandas, rclone, DuckDB); secrets only ever through the environment."""
    endpoint = settings.endpoint_url.rstrip("/")
    host = urlsplit(endpoint).netloc
    region = settings.region
    style = "path" if settings.path_style else "virtual"
    ssl = "TRUE" if endpoint.startswith("https") else "FALSE"
    # DuckDB reads no CA variable: it is told the store's CA
    ca_line = (
        f"duckdb.sql(\"SET ca_cert_file = '{settings.ca_bundle}'\")\n" if settings.ca_bundle else ""
    )
    return [
        {
            "id": "boto3",
            "title": "Python: boto3",
            "code": (
                "import boto3\n\n"
                's3 = boto3.client("s3")  # endpoint and credentials come from the environment\n'
                f's3.put_object(Bucket="{bucket}", Key="hello.txt", Body=b"hello")\n'
                f'print(s3.list_objects_v2(Bucket="{bucket}").get("Contents", []))'
            ),
        },
        {
            "id": "s3fs",
            "title": "Python: s3fs",
            "code": (
                "import s3fs\n\n"
                "fs = s3fs.S3FileSystem()\n"
                f'fs.ls("{bucket}")\n'
                f'with fs.open("{bucket}/hello.txt", "w") as f:\n'
                '    f.write("hello")'
            ),
        },
        {
            "id": "pandas",
            "title": "Python: pandas",
            "code": (
                "import pandas as pd\n\n"
                f'df = pd.read_parquet("s3://{bucket}/data.parquet")\n'
                f'df.to_csv("s3://{bucket}/data.csv", index=False)'
            ),
        },
        {
            "id": "rclone",
            "title": "Terminal: rclone",
            "code": (
                "# reads the AWS_* variables of your terminal\n"
                f"export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Minio "
                f"RCLONE_CONFIG_S3_ENV_AUTH=true\n"
                f"export RCLONE_CONFIG_S3_ENDPOINT={endpoint} RCLONE_CONFIG_S3_REGION={region}\n"
                f"rclone ls s3:{bucket}"
            ),
        },
        {
            "id": "duckdb",
            "title": "Python: DuckDB",
            # text shown to the user (its values are the operator's settings), not run here
            "code": (
                "import duckdb, duckdb_extensions\n\n"  # noqa: S608
                "# S3 support, from the environment (no download)\n"
                'for name in ("httpfs", "aws"):\n'
                "    duckdb_extensions.import_extension(name)\n"
                f"{ca_line}"
                'duckdb.sql("""CREATE OR REPLACE SECRET s3 (TYPE s3, PROVIDER credential_chain,\n'
                f"    ENDPOINT '{host}', URL_STYLE '{style}', USE_SSL {ssl.lower()}, "
                f'REGION \'{region}\')""")\n'
                f"duckdb.sql(\"SELECT * FROM 's3://{bucket}/data.parquet' LIMIT 10\").show()"
            ),
        },
    ]


def storage_view(portal, user: str) -> dict:
    """What My storage shows (never a secret)."""
    service = portal.storage
    settings = service.settings
    view = {
        "enabled": True,
        "endpoint": settings.endpoint_url,
        "region": settings.region,
        "kind": settings.kind,
        "data_lost_at_stop": settings.data_lost_at_stop,
        "refresh": bool(settings.credentials_url),
        "bucket": None,
        "bucket_problem": None,
        "expires": None,
        "renews": None,
        "issued_sets": 0,
    }
    try:
        view["bucket"] = service.bucket(user)
    except StorageError as e:
        view["bucket_problem"] = str(e)
        return view
    try:
        entry = service.cache.load(user)
    except StorageError:
        entry = None
    if entry is not None and entry.fresh(service.issuer.kind, service.store_id, now=0):
        current = entry.current
        if not current.expired():
            view["expires"] = _when(current.expires_at) or "never"
            view["renews"] = _when(entry.renew_at)
        view["issued_sets"] = entry.issue_count
    view["snippets"] = snippets(settings, view["bucket"])
    return view


class StoragePage(PageHandler):
    @web.authenticated
    def get(self):
        if self.app.storage is None:
            raise web.HTTPError(404, "Storage is not configured on this datalab.")
        self.render_page(
            "portal-storage.html", page="storage", storage=storage_view(self.app, self.user)
        )


class StorageInfoAPI(APIHandler):
    @web.authenticated
    def get(self):
        if self.app.storage is None:
            raise web.HTTPError(404, "Storage is not configured on this datalab.")
        self.write_json(storage_view(self.app, self.user))


class RateLimit:
    """At most `per_minute` calls a minute for each key."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.calls: dict[str, deque] = defaultdict(deque)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        calls = self.calls[key]
        while calls and calls[0] <= now - 60:
            calls.popleft()
        if len(calls) >= self.per_minute:
            return False
        calls.append(now)
        return True


class StorageCredentialsAPI(APIHandler):
    def server_of_token(self) -> str:
        """The server whose own token called, or 403 (module docstring: trust model)."""
        if not getattr(self, "_token_authenticated", False):
            raise web.HTTPError(403, "Storage credentials are only given to a server's own token.")
        prefix = f"access:servers!server={self.user}/"
        owned = [
            s[len(prefix) :] for s in self.current_user.get("scopes") or () if s.startswith(prefix)
        ]
        if len(owned) != 1:
            raise web.HTTPError(403, "Storage credentials are only given to a server's own token.")
        return owned[0]

    @web.authenticated
    async def get(self):
        portal = self.app
        if portal.storage is None:
            raise web.HTTPError(404, "Storage is not configured on this datalab.")
        server = self.server_of_token()
        if not portal.storage_limit.allow(f"{self.user}/{server}"):
            self.set_header("Retry-After", "60")
            raise web.HTTPError(
                429, "Too many credential requests from this server; wait a minute."
            )
        service = portal.storage
        source = None
        if service.settings.kind == "sts":
            source = self._access_token
        try:
            creds = await service.credentials(self.user, access_token=source)
        except StorageError as e:
            self.log.warning("Storage for %s/%s: %s", self.user, server, e)
            raise web.HTTPError(503, f"Your S3 storage is not available: {e}") from None
        entry = await asyncio.to_thread(service.cache.load, self.user)
        body = {
            "Version": 1,
            "AccessKeyId": creds.access_key,
            "SecretAccessKey": creds.secret_key,
            "Bucket": service.bucket(self.user),
            "Endpoint": service.settings.endpoint_url,
        }
        if creds.session_token:
            body["SessionToken"] = creds.session_token
        if creds.expires_at:
            body["Expiration"] = _when(creds.expires_at)
        if entry is not None and entry.renew_at:
            body["RefreshAfter"] = _when(entry.renew_at)
        self.write_json(body)

    async def _access_token(self) -> str | None:
        """The user's OIDC access token, from the hub (the portal's role needs
        `admin:auth_state`). The hub refreshed it when it checked the caller's token."""
        try:
            model = await self.app.hub.request(
                "GET", f"/users/{quote(self.user, safe='')}", self.app.hub.service_token
            )
        except HubAPIError as e:
            raise StorageError(
                f"your sign-in token cannot be read from the hub ({e.status})"
            ) from None
        state = (model or {}).get("auth_state") or {}
        token = state.get("access_token")
        return token if isinstance(token, str) else None


async def sweep(portal) -> int:
    """Revoke the credentials of deleted (or disapproved) users; how many were revoked."""
    service = portal.storage
    if service is None:
        return 0
    cached = await asyncio.to_thread(service.cache.usernames)
    if not cached:
        return 0
    known: set[str] = set()
    offset = 0
    try:
        while True:
            batch = await portal.hub.request(
                "GET", "/users", portal.hub.service_token, params={"offset": offset, "limit": 200}
            )
            known |= {u.get("name") for u in batch or [] if isinstance(u, dict)}
            if not batch or len(batch) < 200:
                break
            offset += len(batch)
    except HubAPIError as e:
        portal.log.warning("Storage sweep: the hub's user list cannot be read (%s)", e.status)
        return 0
    disabled = await asyncio.to_thread(_disapproved_accounts)
    revoked = 0
    for name in cached:
        if name not in known or name in disabled:
            try:
                await service.revoke(name)
                revoked += 1
                why = "deleted" if name not in known else "disabled"
                portal.log.info("Storage: revoked the credentials of %s (%s)", name, why)
            except StorageError as e:
                portal.log.warning("Storage: revoking %s failed: %s", name, e)
    return revoked


def _disapproved_accounts() -> set[str]:
    """Local accounts whose approval was withdrawn (embedded hub), if the portal knows
    the accounts database (`ONYXIA_STORAGE_ACCOUNTS_DB`)."""
    url = os.environ.get(STORAGE_ACCOUNTS_DB)
    if not url:
        return set()
    try:
        from ..auth.accounts import AccountStore, open_session

        session = open_session(url)
        try:
            return {a.username for a in AccountStore(session).list() if not a.authorized}
        finally:
            session.close()
    except Exception:  # the sweep must never take the portal down
        return set()


def routes() -> list[tuple[str, type]]:
    """My storage's routes, under the portal's prefix."""
    return [
        ("storage", StoragePage),
        ("api/storage", StorageInfoAPI),
        ("api/storage/credentials", StorageCredentialsAPI),
    ]
