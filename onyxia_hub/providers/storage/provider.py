"""`StorageProvider`: the user's S3 credentials and settings in every launch plan.

    c.OnyxiaLocalSpawner.provider_classes.append(
        "onyxia_hub.providers.storage.StorageProvider")
    c.StorageProvider.kind = "sts"
    c.StorageProvider.endpoint_url = "https://minio.example.org"

At each launch it checks the bucket name (`user-<name>`), takes the user's credentials
from the cache or has them issued (`service.CredentialService`), creates the bucket when
missing, and contributes Onyxia's variables: the keys, the session token and `MC_HOST_s3`
through the plan's secret channel; the endpoint, region and bucket in clear. A store
that is down or slow fails the launch after `timeout` seconds with a message saying so
(`required = True`, the default), or lets the server start without storage, with the
reason on the progress page (`required = False`).

Running servers get fresh credentials from the portal (`credentials_url`) through the
user-server package `onyxia-storage` (extensions/onyxia-storage): see docs/storage.md.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode, default

from ...catalog.model import frozen_map
from ...db.portal import SCHEMA as PORTAL_STORE
from ...db.stores import open_for_hub, service_environment, store_settings
from ...envnames import STORAGE_SETTINGS, STORAGE_SWEEP_INTERVAL
from ...plan import Contribution
from ..base import PlanProvider, PlanRequest
from . import tokens
from .base import StorageCredentials, StorageError, StorageSettings, log
from .cache import CredentialCache
from .service import CredentialService

# Asks the kernel provisioner of extensions/onyxia-storage (which selects itself where it
# is installed) to give Python kernels refreshing credentials. An image without it ignores
# the variable: its kernels start as usual and keep the launch's variables.
KERNEL_REFRESH_ENV = "ONYXIA_STORAGE_KERNEL_REFRESH"
_SERVICES: dict[tuple, CredentialService] = {}


def environment(
    settings: StorageSettings, bucket: str, credentials: StorageCredentials, *, kernel_refresh: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """(public, secret) variables with Onyxia's names (docs/storage.md lists them)."""
    url = urlsplit(settings.endpoint_url)
    host = url.netloc
    public = {
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_S3_ENDPOINT": host,
        "AWS_ENDPOINT_URL": settings.endpoint_url.rstrip("/"),
        "S3_ENDPOINT": settings.endpoint_url.rstrip("/") + "/",
        "AWS_PATH_STYLE_ACCESS": "true" if settings.path_style else "false",
        "AWS_WORKING_DIRECTORY_PATH": f"{bucket}/",
        "ONYXIA_STORAGE_BUCKET": bucket,
    }
    if credentials.expires_at:
        moment = datetime.fromtimestamp(credentials.expires_at, UTC)
        public["ONYXIA_STORAGE_EXPIRATION"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if settings.credentials_url:
        public["ONYXIA_STORAGE_CREDENTIALS_URL"] = settings.credentials_url
        if kernel_refresh:
            public[KERNEL_REFRESH_ENV] = "1"
    secret = {
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
    }
    auth = f"{quote(credentials.access_key, safe='')}:{quote(credentials.secret_key, safe='')}"
    if credentials.session_token:
        secret["AWS_SESSION_TOKEN"] = credentials.session_token
        auth += f":{quote(credentials.session_token, safe='')}"
    secret["MC_HOST_s3"] = f"{url.scheme}://{auth}@{host}"
    return public, secret


class StorageProvider(PlanProvider):
    """Per-user S3 credentials in every launch; see the module docstring."""

    kind = CaselessStrEnum(
        ["sts", "accesskeys", "static"],
        default_value="accesskeys",
        help="""
        How credentials are obtained:

        - `sts`: MinIO STS `AssumeRoleWithWebIdentity` with the user's OIDC access token
          (auth_state of `OnyxiaOIDCAuthenticator`); MinIO's policy confines them to
          `user-${jwt:preferred_username}`. Production.
        - `accesskeys` (default): per-user keys with a policy confined to the user's
          bucket, made with the store's admin API (`admin_api`) and the admin keys of
          `credentials_file`. Stores without OIDC, and the embedded store.
        - `static`: the one key pair of `credentials_file`, shared by every user: no
          user is confined to their bucket. One user, or a read-only dataset.
        """,
    ).tag(config=True)

    endpoint_url = Unicode(
        "",
        help="""The S3 endpoint as user servers reach it, with its scheme
        (`https://minio.example.org`): `AWS_ENDPOINT_URL`, `S3_ENDPOINT`,
        `AWS_S3_ENDPOINT` and `MC_HOST_s3` come from it. Required.""",
    ).tag(config=True)

    internal_endpoint_url = Unicode(
        "",
        help="""The S3 (and IAM/admin) endpoint as the hub and the portal reach it, when it
        differs from `endpoint_url` (an in-cluster Service, `http://minio.minio:9000`).
        Default: `endpoint_url`.""",
    ).tag(config=True)

    sts_endpoint_url = Unicode(
        "",
        help="MinIO's STS endpoint (kind `sts`). Default: the internal endpoint.",
    ).tag(config=True)

    admin_api = CaselessStrEnum(
        ["iam", "minio"],
        default_value="iam",
        help="""The admin API of kind `accesskeys`: `iam` (the IAM API: IAM users with an
        inline policy and up to two access keys each; moto, and stores speaking IAM) or
        `minio` (`minio.MinioAdmin`: service accounts with the bucket policy and an
        expiration).""",
    ).tag(config=True)

    region = Unicode("us-east-1", help="`AWS_DEFAULT_REGION` (Onyxia's default).").tag(config=True)

    path_style = Bool(
        True,
        help="""Path-style addressing (`https://host/bucket/key`, MinIO's default):
        `AWS_PATH_STYLE_ACCESS`.""",
    ).tag(config=True)

    bucket_prefix = Unicode(
        "user-",
        help="""Users' buckets are `<prefix><username>`, exactly (MinIO's policy names
        `user-${jwt:preferred_username}`). Usernames that do not make a valid bucket
        name are refused with a message, never renamed.""",
    ).tag(config=True)

    credentials_file = Unicode(
        "",
        help="""A JSON file `{"access_key": ..., "secret_key": ...}`, mode 0600: the admin
        keys (kind `accesskeys`) or the shared keys (kind `static`). Never the keys
        themselves in configuration: `onyxia-hub config` prints configuration.""",
    ).tag(config=True)

    sts_duration = Integer(
        3600,
        help="""`DurationSeconds` asked of MinIO's STS (at least 900). MinIO also caps it at
        the access token's expiry: see docs/storage.md for Keycloak's token lifespans.""",
    ).tag(config=True)

    sts_min_token_seconds = Integer(
        60,
        help="""Kind `sts`: an access token with less than this left is renewed with the
        user's refresh token before it is handed to STS (and refused if it cannot be).""",
    ).tag(config=True)

    key_lifetime = Integer(
        7 * 86400,
        help="""Kind `accesskeys`: how long a key is valid, in seconds (7 days). Keys are
        replaced after `reuse_fraction` of it; MinIO expires them itself, IAM keys are
        deleted when the second key after them is made.""",
    ).tag(config=True)

    reuse_fraction = Float(
        0.5,
        help="""Cached credentials are reused until this fraction of their lifetime has
        passed, then a new set is issued (at most 0.5 with access keys). 0.5 of STS's
        3600 s: a new set every 30 minutes per active user at most, whatever the number
        of launches and refreshes.""",
    ).tag(config=True)

    timeout = Float(
        10.0,
        help="""Seconds to wait for the store (STS, admin API, bucket check) before the
        launch fails with a message (or starts without storage when `required` is
        False).""",
    ).tag(config=True)

    store_id = Unicode(
        "",
        help="""Identifies the store's current state: cached credentials of another
        `store_id` are not used. The embedded moto store gets a new one at each start
        (its keys die with it).""",
    ).tag(config=True)

    data_lost_at_stop = Bool(
        False,
        help="Say on My storage that the store keeps data in memory only (embedded moto).",
    ).tag(config=True)

    credentials_url = Unicode(
        "",
        help="""Where user servers ask for fresh credentials: the portal's
        `api/storage/credentials`, as servers reach it (embedded:
        `http://127.0.0.1:<portal port>/services/portal/api/storage/credentials`).
        Empty: no refresh; servers keep the credentials of their launch.""",
    ).tag(config=True)

    kernel_refresh = Bool(
        True,
        help="""Give Python kernels refreshing credentials (`ONYXIA_STORAGE_KERNEL_REFRESH=1`
        for the kernel provisioner of extensions/onyxia-storage, which selects itself in
        the environments it is installed in; images without it ignore the variable and
        their kernels keep the launch's). False: kernels keep the variables of the launch,
        as in Onyxia.""",
    ).tag(config=True)

    ensure_bucket = Bool(True, help="Create the user's bucket at launch when it is missing.").tag(
        config=True
    )

    revoke_interval = Float(
        60.0,
        help="""Seconds between two sweeps of the portal that revoke the credentials of
        users the hub no longer has (deleted) or whose local account was disapproved
        (`PortalApp.storage_sweep_interval`, handed to the portal). 0: no sweep.""",
    ).tag(config=True)

    db_url = Unicode(
        None,
        allow_none=True,
        help="""
        The database of the credentials cache: the portal's store (its table
        `portal_storage_credentials`), as an SQLAlchemy URL. The hub migrates it before
        it starts.

        Default: `ONYXIA_PORTAL_DB_URL` from the environment of the hub's `portal`
        service (`c.JupyterHub.services`), else from the hub's own environment, as
        `GitProvider.db_url`. None when neither has it: launches then fail with a
        message saying the cache has no database.

            c.StorageProvider.db_url = "postgresql+psycopg://hub@db.example.org/jupyterhub"
        """,
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return store_settings(PORTAL_STORE, self._portal_environment())[0]

    key_file = Unicode(
        None,
        allow_none=True,
        help="""
        The file of the portal store's keys, which encrypt the cache (`PortalApp.key_file`).
        `ONYXIA_PORTAL_CRYPT_KEY`, in the portal service's environment or the hub's, adds
        keys before the file's. Default: `ONYXIA_PORTAL_KEY_FILE` from the portal
        service's environment, else the hub's. Without any key, launches fail with a
        message saying so.

            c.StorageProvider.key_file = "/var/lib/onyxia-hub/hub/secrets/portal_key"
        """,
    ).tag(config=True)

    @default("key_file")
    def _key_file_default(self):
        return store_settings(PORTAL_STORE, self._portal_environment())[1]

    def _portal_environment(self) -> dict[str, str]:
        return service_environment(self.config, PORTAL_STORE.name)

    def settings(self) -> StorageSettings:
        return StorageSettings(
            kind=self.kind,
            endpoint_url=self.endpoint_url,
            internal_endpoint_url=self.internal_endpoint_url,
            sts_endpoint_url=self.sts_endpoint_url,
            admin_api=self.admin_api,
            region=self.region,
            path_style=self.path_style,
            bucket_prefix=self.bucket_prefix,
            credentials_file=self.credentials_file,
            sts_duration=self.sts_duration,
            sts_min_token_seconds=self.sts_min_token_seconds,
            key_lifetime=self.key_lifetime,
            reuse_fraction=self.reuse_fraction,
            timeout=self.timeout,
            store_id=self.store_id,
            data_lost_at_stop=self.data_lost_at_stop,
            credentials_url=self.credentials_url,
            ensure_bucket=self.ensure_bucket,
        )

    def service(self) -> CredentialService:
        settings = self.settings()
        handle = open_for_hub(PORTAL_STORE, self.config, db_url=self.db_url, key_file=self.key_file)
        if handle is None:
            raise StorageError("the storage credentials cache has no database (db_url)")
        if handle.key_problem:
            raise StorageError(f"the storage credentials cache has no key: {handle.key_problem}")
        key = (settings.to_json(), handle.db_url, id(handle.crypto))
        if key not in _SERVICES:
            _SERVICES[key] = CredentialService(
                settings, CredentialCache(handle.engine, handle.crypto)
            )
            if settings.kind == "static":
                log.warning(
                    "Storage: kind 'static' gives every user the same keys: users are not "
                    "confined to their buckets"
                )
        return _SERVICES[key]

    async def contribute(self, request: PlanRequest) -> Contribution:
        request.emit(12, "Preparing your S3 storage")
        try:
            service = self.service()
            bucket = service.bucket(request.username)
            source = self._token_source(request) if self.kind == "sts" else None
            budget = self.timeout * 2 + 5
            creds = await asyncio.wait_for(
                service.credentials(request.username, access_token=source), budget
            )
            await asyncio.wait_for(service.ensure_bucket(request.username, creds), budget)
        except StorageError as e:
            log.warning("Storage for %s: %s", request.username, e)
            raise StorageError(f"Your S3 storage is not available: {e}") from None
        except TimeoutError:
            log.warning("Storage for %s: the store did not answer in time", request.username)
            raise StorageError(
                f"Your S3 storage is not available: the storage service did not answer within "
                f"{self.timeout * 2 + 5:g} s; try again in a moment"
            ) from None
        except Exception as e:  # never a generic failure that counts toward the hub's limit
            log.warning(
                "Storage for %s failed unexpectedly (%s)", request.username, type(e).__name__
            )
            raise StorageError(
                f"Your S3 storage is not available: an unexpected error ({type(e).__name__})"
            ) from None
        public, secret = environment(
            service.settings, bucket, creds, kernel_refresh=self.kernel_refresh
        )
        return Contribution(environment=frozen_map(public), secret_environment=frozen_map(secret))

    def _token_source(self, request: PlanRequest):
        """The user's access token for STS, renewed through the authenticator when it is
        about to expire (`sts_min_token_seconds`)."""

        async def source() -> str | None:
            token = tokens.access_token(request.auth_state)
            left = tokens.seconds_left(token) if token else None
            if token and (left is None or left >= self.sts_min_token_seconds):
                return token
            refreshed = await request.refresh_auth_state()
            return tokens.access_token(refreshed) if refreshed else None

        return source


def portal_environment(config) -> dict[str, str]:
    """The portal's environment for storage: the hub's settings as JSON (no secret in it),
    so that the portal issues and caches credentials as the hub does. Empty when no
    StorageProvider is configured."""
    if "StorageProvider" not in config:
        return {}
    provider = StorageProvider(config=config)
    return {
        STORAGE_SETTINGS: provider.settings().to_json(),
        STORAGE_SWEEP_INTERVAL: f"{provider.revoke_interval:g}",
    }
