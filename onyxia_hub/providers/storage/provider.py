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
from dataclasses import fields
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
# what verifies TLS with a CA bundle: botocore (AWS_CA_BUNDLE wins over the next one),
# requests, Python's ssl default context and OpenSSL's users (rclone, DuckDB too), curl
CA_VARIABLES = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


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
        # botocore reads it with the keys and then re-reads the environment before expiry
        public["AWS_CREDENTIAL_EXPIRATION"] = public["ONYXIA_STORAGE_EXPIRATION"]
    if settings.ca_bundle:
        for name in CA_VARIABLES:
            public[name] = settings.ca_bundle
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


_DEFAULT = StorageSettings()  # every default below is the settings' own


class StorageProvider(PlanProvider):
    """Per-user S3 credentials in every launch; see the module docstring.

    Its settings are `StorageSettings`' fields, one trait each (same name, same default),
    plus what only the hub uses (`kernel_refresh`, `revoke_interval`, the cache's
    `db_url` and `key_file`). The hub hands the settings to the portal as JSON
    (`portal_environment`), so that both issue and cache credentials the same way.
    """

    kind = CaselessStrEnum(
        ["sts", "roles", "accesskeys", "static"],
        default_value=_DEFAULT.kind,
        help="""
        How credentials are obtained:

        - `sts`: MinIO STS `AssumeRoleWithWebIdentity` with the user's OIDC access token
          (auth_state of `OnyxiaOIDCAuthenticator`); MinIO's policy confines them to
          `user-${jwt:preferred_username}`. Production (helm_values/jupyterhub.yaml).
          Needs `sts_duration`, `sts_min_token_seconds`, and the refresh hook of
          docs/storage.md so that access tokens are not about to expire.
        - `roles`: a role per user (`hub-<name>`, confined to the bucket) assumed with
          the admin keys of `credentials_file` (STS `AssumeRole`, `sts_duration`): an
          access key, a session token and an expiry, as on SSP Cloud. Stores speaking
          IAM and STS without OIDC (AWS, Ceph RGW); the embedded moto store.
        - `accesskeys` (default): per-user keys with a policy confined to the user's
          bucket, made with the store's admin API (`admin_api`) and the admin keys of
          `credentials_file`. Stores without OIDC or STS; the embedded MinIO store.
        - `static`: the one key pair of `credentials_file`, shared by every user: no
          user is confined to their bucket (the hub logs a warning). One user, or a
          read-only dataset.

            c.StorageProvider.kind = "sts"
        """,
    ).tag(config=True)

    endpoint_url = Unicode(
        _DEFAULT.endpoint_url,
        help="""
        The S3 endpoint as user servers reach it, with its scheme. Required.

        Every variable servers get is made from it: `AWS_ENDPOINT_URL` and `S3_ENDPOINT`
        (the URL), `AWS_S3_ENDPOINT` (host and port, as Onyxia sets it) and `MC_HOST_s3`.
        The hub and the portal use it too unless `internal_endpoint_url` is set.

            c.StorageProvider.endpoint_url = "https://minio.example.org"
        """,
    ).tag(config=True)

    internal_endpoint_url = Unicode(
        _DEFAULT.internal_endpoint_url,
        help="""
        The S3 endpoint (and the IAM or MinIO admin API) as the hub and the portal reach
        it, when it differs from what user servers use: an in-cluster Service while
        servers go through an ingress. Empty (default): `endpoint_url`.

            c.StorageProvider.internal_endpoint_url = "http://minio.minio.svc:9000"
        """,
    ).tag(config=True)

    sts_endpoint_url = Unicode(
        _DEFAULT.sts_endpoint_url,
        help="""
        Kind `sts`: MinIO's STS endpoint. MinIO serves STS on its S3 port, so the default
        (empty) is the internal endpoint (`internal_endpoint_url`, else `endpoint_url`).

            c.StorageProvider.sts_endpoint_url = "http://minio-sts.minio.svc:9000"
        """,
    ).tag(config=True)

    admin_api = CaselessStrEnum(
        ["iam", "minio"],
        default_value=_DEFAULT.admin_api,
        help="""
        Kind `accesskeys`: the store's admin API.

        - `iam` (default): the AWS IAM API (one IAM user per hub user, an inline policy
          confined to the bucket, at most two access keys each: the older is deleted when
          a third is made). moto (the embedded store) and stores speaking IAM.
        - `minio`: MinIO's admin API (`minio.MinioAdmin`): a service account per key,
          with the bucket policy and an expiration MinIO enforces itself.
        """,
    ).tag(config=True)

    region = Unicode(
        _DEFAULT.region,
        help="""
        The region servers are told (`AWS_DEFAULT_REGION`) and the hub signs with.
        MinIO ignores it unless its own region is set; `us-east-1` (default) is Onyxia's
        and botocore's default, so most code needs nothing else.
        """,
    ).tag(config=True)

    path_style = Bool(
        _DEFAULT.path_style,
        help="""
        Path-style addressing (`https://host/bucket/key`), as MinIO serves by default:
        `AWS_PATH_STYLE_ACCESS=true` for servers, and the hub's own clients. False for
        stores that want virtual-hosted buckets (`https://bucket.host/key`, with a
        wildcard DNS name and certificate).
        """,
    ).tag(config=True)

    bucket_prefix = Unicode(
        _DEFAULT.bucket_prefix,
        help="""
        Each user's bucket is `<prefix><username>`, exactly: MinIO's policy for kind
        `sts` names `user-${jwt:preferred_username}`, so the two must agree. A username
        that does not make a valid bucket name (S3's rules: lowercase, 3-63 characters,
        no `_`) is refused at launch with a message saying why, never renamed (a renamed
        bucket would not match the policy). Default: `user-`, as on SSP Cloud.
        """,
    ).tag(config=True)

    credentials_file = Unicode(
        _DEFAULT.credentials_file,
        help="""
        A JSON file `{"access_key": ..., "secret_key": ...}`, mode 0600 (a file others
        can read is refused): the admin keys (kind `accesskeys`) or the keys every user
        shares (kind `static`). Unused with `sts`. Keys never go in configuration itself:
        `onyxia-hub config` prints configuration, and the hub hands it to the portal.

            c.StorageProvider.credentials_file = "/etc/onyxia-hub/s3-admin.json"
        """,
    ).tag(config=True)

    sts_duration = Integer(
        _DEFAULT.sts_duration,
        help="""
        Kinds `sts` and `roles`: the `DurationSeconds` asked of the STS, at least 900
        for MinIO and AWS (they refuse less; moto takes any). MinIO also caps it at the
        access token's expiry: with Keycloak's default 5-minute tokens every set would be
        refused, hence the refresh hook and the realm settings in docs/storage.md.
        Default: 3600.
        """,
    ).tag(config=True)

    sts_min_token_seconds = Integer(
        _DEFAULT.sts_min_token_seconds,
        help="""
        Kind `sts`: an access token with less than this many seconds left is renewed
        through the authenticator (the user's refresh token) before it goes to STS; a
        launch whose token cannot be renewed is refused with a message. Default: 60.
        """,
    ).tag(config=True)

    key_lifetime = Integer(
        _DEFAULT.key_lifetime,
        help="""
        Kind `accesskeys`: how long a user's key is valid, in seconds. A new key is made
        after `reuse_fraction` of it; MinIO expires service accounts itself, IAM keys are
        deleted when the second key after them is made. Default: 7 days (604800).
        """,
    ).tag(config=True)

    reuse_fraction = Float(
        _DEFAULT.reuse_fraction,
        help="""
        Cached credentials are reused until this fraction of their lifetime has passed,
        then a new set is issued; servers holding the previous set keep it until it
        expires. At most 0.5 with access keys (IAM keeps two keys per user). Default 0.5:
        with STS's 3600 s, one new set every 30 minutes per active user at most, however
        many launches and refreshes there are.
        """,
    ).tag(config=True)

    timeout = Float(
        _DEFAULT.timeout,
        help="""
        Seconds each request to the store (STS, admin API, bucket check) may take. A
        store that does not answer fails the launch with a message after about twice
        this (or starts the server without storage when `required` is False). Default: 10.
        """,
    ).tag(config=True)

    store_id = Unicode(
        _DEFAULT.store_id,
        help="""
        Identifies the store's current state: cached credentials issued under another
        `store_id` are not used, and new ones are issued. Change it when a store was
        reset (its keys are gone). The embedded moto store gets a new one at each start.
        Default: empty.
        """,
    ).tag(config=True)

    data_lost_at_stop = Bool(
        _DEFAULT.data_lost_at_stop,
        help="""
        Say on My storage, in red, that the store keeps everything in memory and loses it
        at stop. Set by `onyxia-hub up` for its moto store; never for a real one.
        """,
    ).tag(config=True)

    ca_bundle = Unicode(
        _DEFAULT.ca_bundle,
        help="""
        A PEM file of CAs to verify the store's certificate with, when a private CA signed
        it: the hub and the portal use it, and servers get it as `AWS_CA_BUNDLE`,
        `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE` and `CURL_CA_BUNDLE`, so the same path must
        exist inside servers (on Kubernetes, mount it there). Those variables replace the
        system's CAs: give a bundle holding the public CAs too, or `pip install` breaks
        in servers. `onyxia-hub up` sets it to its own bundle (embedded/tls.py). Empty
        (default): the system's CAs.

            c.StorageProvider.ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
        """,
    ).tag(config=True)

    credentials_url = Unicode(
        _DEFAULT.credentials_url,
        help="""
        Where user servers ask for fresh credentials: the portal's
        `api/storage/credentials`, as servers reach it. Servers ask with their own token;
        Python kernels refresh by themselves (`kernel_refresh`). Empty (default): no
        refresh; servers keep the credentials of their launch until they expire.

            c.StorageProvider.credentials_url = (
                "https://datalab.example.org/services/portal/api/storage/credentials"
            )
        """,
    ).tag(config=True)

    kernel_refresh = Bool(
        True,
        help="""
        Keep Python kernels' S3 variables current: `ONYXIA_STORAGE_KERNEL_REFRESH=1` asks
        the kernel provisioner of extensions/onyxia-storage (it selects itself where it
        is installed; images without it ignore the variable) to load an IPython extension
        that rewrites `os.environ` before a cell once 20 minutes or less of the set
        remain; botocore, boto3 and s3fs re-read it by themselves. Needs
        `credentials_url`. False: kernels keep the variables of the launch, as in Onyxia.
        """,
    ).tag(config=True)

    ensure_bucket = Bool(
        _DEFAULT.ensure_bucket,
        help="""
        Create the user's bucket at launch when it is missing (checked once per process
        and user). False when buckets are made elsewhere (by the store's operators, or by
        a MinIO policy the users' keys could not satisfy).
        """,
    ).tag(config=True)

    revoke_interval = Float(
        60.0,
        help="""
        Seconds between two sweeps of the portal that revoke the credentials of users the
        hub no longer has (deleted) or whose local account was disapproved (handed to the
        portal as `PortalApp.storage_sweep_interval`). 0: no sweep. Default: 60.
        """,
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
        """The settings, from the traits of the same names."""
        return StorageSettings(**{f.name: getattr(self, f.name) for f in fields(StorageSettings)})

    def service(self) -> CredentialService:
        settings = self.settings()
        handle = None
        if self.db_url:  # None or "": no cache, said at each launch
            handle = open_for_hub(
                PORTAL_STORE, self.config, db_url=self.db_url, key_file=self.key_file
            )
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
