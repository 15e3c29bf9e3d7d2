"""Per-user S3 storage without a hub: names, settings, cache, issuers, faults (docs/storage.md).

Real parts: moto's server started as the embedded hub starts it (`EmbeddedStore`, with its
bootstrap), the cache on a migrated SQLite store with the portal's encryption, an STS
double speaking MinIO's request and response format checking tokens from a real OpenID
Connect provider (`oidc-provider-mock`), and OnyxiaSpawner's pod manifest.

- bucket names: valid ones kept exactly, others refused with the reason (table);
- the provider's `contribute` 50 times at once, then again after a "hub restart" (a new
  service on the same database) and from a second process's service: one set issued;
- keys confined to their bucket; rotation within IAM's two keys per user; revocation;
- a store that is down, slow, or answers garbage: a clear `ProviderError` within the
  bounded wait, never a secret in the message;
- (a) STS: the request as MinIO documents it, an opaque access token (checked through
  userinfo) and a signed JWT (checked with the JWKS, expiry capped at the token's),
  refused and expired tokens, malformed answers; the refresh hook renews a token that
  is about to expire with the provider's refresh token;
- the kernel environment of extensions/onyxia-storage; the pod manifest holds no key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from sqlalchemy import update
from traitlets.config import Config

from onyxia_hub.db import make_engine
from onyxia_hub.db import portal as migrate
from onyxia_hub.db.crypto import FieldCrypto
from onyxia_hub.embedded.ports import pick_free_port
from onyxia_hub.embedded.state import StateDir
from onyxia_hub.embedded.store import EmbeddedStore
from onyxia_hub.providers.base import PlanRequest, ProviderError
from onyxia_hub.providers.storage import provider as provider_module
from onyxia_hub.providers.storage import tokens
from onyxia_hub.providers.storage.base import StorageError, StorageSettings
from onyxia_hub.providers.storage.buckets import bucket_name
from onyxia_hub.providers.storage.cache import CredentialCache, CredentialRow
from onyxia_hub.providers.storage.provider import StorageProvider, environment
from onyxia_hub.providers.storage.service import CredentialService
from onyxia_hub.spawners.local.software import default_environments_dir
from tests.helpers.secrets import SecretScanner
from tests.helpers.sts_double import StsDouble

KEY = "ab" * 32


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """moto's server as `onyxia-hub up` runs it, bootstrapped with an admin key."""
    root = tmp_path_factory.mktemp("storage-state")
    state = StateDir(root)
    state.prepare(shared_homes=False)
    embedded = EmbeddedStore(state, "moto", pick_free_port())
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'portal.sqlite'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    return url, str(key_file), engine


def settings_for(store, **overrides) -> StorageSettings:
    values = dict(
        kind="accesskeys",
        endpoint_url=store.url,
        credentials_file=str(store.admin_file),
        store_id=store.store_id,
        ca_bundle=str(store.tls.bundle),
        timeout=5,
    )
    values.update(overrides)
    return StorageSettings(**values)


def service_for(store, engine, **overrides) -> CredentialService:
    cache = CredentialCache(engine, FieldCrypto([base64.urlsafe_b64encode(bytes.fromhex(KEY))]))
    return CredentialService(settings_for(store, **overrides), cache)


def s3(store, creds) -> object:
    return boto3.client(
        "s3",
        endpoint_url=store.url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.session_token,
        verify=str(store.tls.bundle),
        config=BotoConfig(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def provider_for(store, db_url, key_file, **overrides) -> StorageProvider:
    values = dict(
        endpoint_url=store.url,
        credentials_file=str(store.admin_file),
        store_id=store.store_id,
        ca_bundle=str(store.tls.bundle),
        db_url=db_url,
        key_file=key_file,
        timeout=3,
        credentials_url="http://127.0.0.1:9/services/portal/api/storage/credentials",
    )
    values.update(overrides)
    return StorageProvider(config=Config({"StorageProvider": values}))


def request_for(user: str, auth_state=None) -> PlanRequest:
    from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
    from onyxia_hub.choices import check

    catalog = load_catalog([default_catalog_path()])
    choice = check({"service": "jupyter-python"}, catalog, frozenset())
    return PlanRequest(user, "", frozenset(), catalog.get("jupyter-python"), choice, auth_state)


@pytest.fixture(autouse=True)
def fresh_services():
    provider_module._SERVICES.clear()
    yield
    provider_module._SERVICES.clear()


# -- names and settings -------------------------------------------------------------------
NAMES = [
    ("00", "alice", "user-alice"),
    ("01", "bob-2", "user-bob-2"),
    ("02", "jean.dupont", "user-jean.dupont"),
    ("03", "a_b", "'_'"),
    ("04", "Alice", "'A'"),
    ("05", "x" * 59, "64 characters"),
    ("06", "bob.", "start and end"),
    ("07", "a..b", "'..'"),
    ("08", "été", "'é'"),
    ("09", "a@example.org", "'@'"),
    ("10", "x-s3alias", "reserves"),
    ("11", "a.-b", "'.-'"),
]  # fmt: skip


@pytest.mark.parametrize("user, expected", [n[1:] for n in NAMES], ids=[n[0] for n in NAMES])
def test_bucket_names_are_kept_exactly_or_refused_with_the_reason(user, expected):
    if expected.startswith("user-"):
        assert bucket_name("user-", user) == expected
        return
    with pytest.raises(StorageError) as refused:
        bucket_name("user-", user)
    message = str(refused.value)
    assert expected in message and f"'user-{user}'" in message
    assert "lowercase letters, digits" in message


def test_settings_are_checked():
    assert StorageSettings(endpoint_url="http://s3", credentials_file="f").problems() == []
    problems = StorageSettings(
        kind="accesskeys", endpoint_url="ftp://x", reuse_fraction=0.8, credentials_file="f"
    ).problems()
    assert any("http://" in p for p in problems)
    assert any("at most 0.5 with access keys" in p for p in problems)
    sts = StorageSettings(kind="sts", endpoint_url="http://s3", sts_duration=600).problems()
    assert sts == ["sts_duration must be at least 900 seconds (MinIO's minimum)"]


def test_injected_variables_use_onyxias_names(store):
    from onyxia_hub.providers.storage.base import StorageCredentials

    creds = StorageCredentials("AKIA1", "se/cret+1", "tok:en", 0.0, 1.0e9, "sts")
    settings = settings_for(
        store, endpoint_url="https://minio.example.org", credentials_url="http://p/c"
    )
    public, secret = environment(settings, "user-alice", creds, kernel_refresh=True)
    assert public == {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": "minio.example.org",
        "AWS_ENDPOINT_URL": "https://minio.example.org",
        "S3_ENDPOINT": "https://minio.example.org/",
        "AWS_PATH_STYLE_ACCESS": "true",
        "AWS_WORKING_DIRECTORY_PATH": "user-alice/",
        "ONYXIA_STORAGE_BUCKET": "user-alice",
        "ONYXIA_STORAGE_EXPIRATION": "2001-09-09T01:46:40Z",
        "AWS_CREDENTIAL_EXPIRATION": "2001-09-09T01:46:40Z",  # botocore refreshes with it
        "ONYXIA_STORAGE_CREDENTIALS_URL": "http://p/c",
        "ONYXIA_STORAGE_KERNEL_REFRESH": "1",
        # the store's CA bundle, for every client that verifies TLS
        "AWS_CA_BUNDLE": str(store.tls.bundle),
        "REQUESTS_CA_BUNDLE": str(store.tls.bundle),
        "SSL_CERT_FILE": str(store.tls.bundle),
        "CURL_CA_BUNDLE": str(store.tls.bundle),
    }
    assert secret == {
        "AWS_ACCESS_KEY_ID": "AKIA1",
        "AWS_SECRET_ACCESS_KEY": "se/cret+1",
        "AWS_SESSION_TOKEN": "tok:en",
        "MC_HOST_s3": "https://AKIA1:se%2Fcret%2B1:tok%3Aen@minio.example.org",
    }


# -- the cache ----------------------------------------------------------------------------
def test_the_cache_is_encrypted_bound_to_its_user_and_leased(db, tmp_path):
    from onyxia_hub.providers.storage.base import StorageCredentials

    url, _, engine = db
    crypto = FieldCrypto([base64.urlsafe_b64encode(bytes.fromhex(KEY))])
    cache = CredentialCache(engine, crypto)
    creds = StorageCredentials("AKIAEXAMPLEKEY1", "secret-value-0123456789", None, time.time(),
                               time.time() + 100, "accesskeys", "AKIAEXAMPLEKEY1")  # fmt: skip
    assert cache.try_lease("alice", "user", "one", 30)
    assert not cache.try_lease("alice", "user", "two", 30)  # held by one
    assert (
        cache.store(
            "alice",
            "user",
            creds,
            None,
            issuer="accesskeys",
            store_id="s",
            renew_at=time.time() + 50,
        )
        == 1
    )
    assert cache.try_lease("alice", "user", "two", 30)  # released by store()
    entry = cache.load("alice")
    assert entry.current == creds and entry.fresh("accesskeys", "s")
    assert not entry.fresh("accesskeys", "another store") and not entry.fresh("sts", "s")
    raw = Path(url.removeprefix("sqlite:///")).read_bytes()
    assert b"secret-value-0123456789" not in raw and b"AKIAEXAMPLEKEY1" not in raw
    # a ciphertext moved onto another user's row is not handed to them
    with engine.begin() as connection:
        payload = connection.execute(CredentialRow.__table__.select()).first().payload
        cache.store("bob", "user", creds, None, issuer="accesskeys", store_id="s", renew_at=None)
        connection.execute(
            update(CredentialRow).where(CredentialRow.username == "bob").values(payload=payload)
        )
    assert cache.load("bob").current is None


# -- one issuance, many launches ------------------------------------------------------------
async def test_one_set_for_50_launches_a_restart_and_a_second_process(store, db):
    url, key_file, engine = db
    provider = provider_for(store, url, key_file)
    started = time.monotonic()
    contributions = await asyncio.gather(
        *(provider.contribute(request_for("alice")) for _ in range(50))
    )
    elapsed = time.monotonic() - started
    keys = {c.secret_environment["AWS_ACCESS_KEY_ID"] for c in contributions}
    assert len(keys) == 1
    service = provider.service()
    assert service.issued == 1
    # a hub restart: a new process, a new service on the same database and key
    provider_module._SERVICES.clear()
    again = await provider_for(store, url, key_file).contribute(request_for("alice"))
    assert again.secret_environment["AWS_ACCESS_KEY_ID"] in keys
    assert provider_module._SERVICES and next(iter(provider_module._SERVICES.values())).issued == 0
    # two processes (hub and portal) renewing at once: the lease lets one issue
    with engine.begin() as connection:
        connection.execute(update(CredentialRow).values(renew_at=time.time() - 1))
    hub, portal = service_for(store, engine), service_for(store, engine)
    results = await asyncio.gather(
        *(s.credentials("alice") for s in (hub, portal) for _ in range(10))
    )
    assert len({c.access_key for c in results}) == 1 and hub.issued + portal.issued == 1
    assert hub.cache.load("alice").issue_count == 2
    print(f"50 launches: {elapsed * 1000:.0f} ms in all, one set issued")


async def test_a_set_stored_between_a_read_and_the_lease_is_served_not_issued_again(store, db):
    # the portal reads a stale set; before it takes the lease, the hub issues a new set,
    # stores it and releases the lease: the portal must serve that set, not issue another
    _, _, engine = db
    hub, portal = service_for(store, engine), service_for(store, engine)
    first = await hub.credentials("alice")
    with engine.begin() as connection:
        connection.execute(update(CredentialRow).values(renew_at=time.time() - 1))
    loop = asyncio.get_running_loop()
    take_lease = portal.cache.try_lease

    def hub_issues_first(*args):
        portal.cache.try_lease = take_lease
        asyncio.run_coroutine_threadsafe(hub.credentials("alice"), loop).result(timeout=60)
        return take_lease(*args)

    portal.cache.try_lease = hub_issues_first
    served = await portal.credentials("alice")
    assert hub.issued == 2 and portal.issued == 0
    assert served.access_key != first.access_key
    assert served.access_key == hub.cache.load("alice").current.access_key


async def test_keys_are_confined_rotated_within_two_and_revoked(store, db):
    _, _, engine = db
    service = service_for(store, engine)
    alice = await service.credentials("alice")
    bob = await service.credentials("bob")
    await service.ensure_bucket("alice", alice)
    await service.ensure_bucket("bob", bob)
    s3(store, alice).put_object(Bucket="user-alice", Key="a.txt", Body=b"alice")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3(store, alice).get_object(Bucket="user-bob", Key="a.txt")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3(store, bob).list_objects_v2(Bucket="user-alice")
    with pytest.raises(ClientError, match="AccessDenied"):  # no IAM with a user's key
        boto3.client(
            "iam", endpoint_url=store.url, region_name="us-east-1",
            aws_access_key_id=alice.access_key, aws_secret_access_key=alice.secret_key,
            verify=str(store.tls.bundle),
        ).create_access_key(UserName="hub-bob")  # fmt: skip

    sets = [alice]
    for _ in range(3):
        with engine.begin() as connection:
            connection.execute(update(CredentialRow).values(renew_at=time.time() - 1))
        sets.append(await service.credentials("alice"))
    admin = json.loads(store.admin_file.read_text())
    iam = boto3.client(
        "iam", endpoint_url=store.url, region_name="us-east-1",
        aws_access_key_id=admin["access_key"], aws_secret_access_key=admin["secret_key"],
        verify=str(store.tls.bundle),
    )  # fmt: skip
    live = {
        k["AccessKeyId"] for k in iam.list_access_keys(UserName="hub-alice")["AccessKeyMetadata"]
    }
    assert live == {sets[-1].access_key, sets[-2].access_key}  # IAM's two keys per user
    for creds in sets[-2:]:
        assert s3(store, creds).get_object(Bucket="user-alice", Key="a.txt")["Body"].read()
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        s3(store, sets[0]).list_objects_v2(Bucket="user-alice")

    assert await service.revoke("alice") == 1
    assert service.cache.load("alice") is None
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        s3(store, sets[-1]).list_objects_v2(Bucket="user-alice")
    assert "hub-alice" not in {u["UserName"] for u in iam.list_users()["Users"]}


async def test_sessions_are_confined_expire_overlap_and_are_revoked(store, db):
    """Kind `roles`, the embedded default: session credentials from a role per user."""
    _, _, engine = db
    service = service_for(store, engine, kind="roles", sts_duration=10, reuse_fraction=0.5)
    alice = await service.credentials("carol")
    bob = await service.credentials("dave")
    assert alice.session_token and alice.access_key.startswith("ASIA")
    assert 8 < alice.expires_at - time.time() <= 10
    await service.ensure_bucket("carol", alice)
    await service.ensure_bucket("dave", bob)
    s3(store, alice).put_object(Bucket="user-carol", Key="a.txt", Body=b"carol")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3(store, alice).get_object(Bucket="user-dave", Key="a.txt")
    with pytest.raises(ClientError, match="AccessDenied"):  # nor another user's role
        boto3.client(
            "sts", endpoint_url=store.url, region_name="us-east-1",
            aws_access_key_id=alice.access_key, aws_secret_access_key=alice.secret_key,
            aws_session_token=alice.session_token, verify=str(store.tls.bundle),
        ).assume_role(
            RoleArn="arn:aws:iam::123456789012:role/hub-dave", RoleSessionName="xx"
        )  # fmt: skip

    await asyncio.sleep(5.1)  # past reuse_fraction: a new set, the previous one still valid
    second = await service.credentials("carol")
    assert second.access_key != alice.access_key
    for creds in (alice, second):
        assert s3(store, creds).get_object(Bucket="user-carol", Key="a.txt")["Body"].read()
    await asyncio.sleep(max(0.0, alice.expires_at - time.time()) + 0.2)
    with pytest.raises(ClientError, match="ExpiredToken"):  # as S3 answers; moto alone would not
        s3(store, alice).list_objects_v2(Bucket="user-carol")
    assert s3(store, second).list_objects_v2(Bucket="user-carol")["KeyCount"] == 1

    assert await service.revoke("carol") == 1
    with pytest.raises(ClientError, match="AccessDenied"):  # the role is gone, its sessions too
        s3(store, second).list_objects_v2(Bucket="user-carol")
    # a new launch makes the role again (same name, same ARN): revoked sessions stay dead
    third = await service.credentials("carol")
    assert s3(store, third).list_objects_v2(Bucket="user-carol")["KeyCount"] == 1
    with pytest.raises(ClientError, match="AccessDenied"):
        s3(store, second).list_objects_v2(Bucket="user-carol")


# -- faults -------------------------------------------------------------------------------
class SilentServer:
    """Accepts connections and never answers (a store that hangs)."""

    def __init__(self, answer: bytes | None = None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.answer = answer
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.answer is not None:
                conn.recv(65536)
                conn.sendall(self.answer)
                conn.close()


FAULTS = [
    ("down", None, "cannot be reached"),
    ("slow", b"", "did not answer"),
    ("garbage", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot xml!!", "cannot be read"),
]


@pytest.mark.parametrize("fault, answer, said", FAULTS, ids=[f[0] for f in FAULTS])
async def test_a_store_down_slow_or_garbled_gives_a_clear_refusal_in_bounded_time(
    store, db, fault, answer, said
):
    url, key_file, _ = db
    endpoint = f"http://127.0.0.1:{pick_free_port()}"
    server = None
    if fault != "down":
        server = SilentServer(None if fault == "slow" else answer)
        endpoint = server.url
    provider = provider_for(store, url, key_file, endpoint_url=endpoint, timeout=4)
    started = time.monotonic()
    with pytest.raises(ProviderError) as refused:
        await provider.contribute(request_for("carol"))
    assert time.monotonic() - started < 15  # 2 x timeout + 5 at most
    message = str(refused.value)
    assert message.startswith("Your S3 storage is not available:") and said in message, message
    admin = json.loads(store.admin_file.read_text())
    SecretScanner({"admin secret": admin["secret_key"]}).assert_clean(
        SecretScanner({"admin secret": admin["secret_key"]}).scan_text("message", message)
    )
    if server:
        server.sock.close()


async def test_an_invalid_username_is_refused_before_anything_is_issued(store, db):
    url, key_file, _ = db
    provider = provider_for(store, url, key_file)
    with pytest.raises(ProviderError, match="'user-a_b', which S3 does not accept"):
        await provider.contribute(request_for("a_b"))
    assert provider.service().issued == 0


# -- (a) STS with tokens from a real OpenID Connect provider -----------------------------------
@pytest.fixture(scope="module")
def oidc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from oidc_provider_mock import run_server_in_thread

        with run_server_in_thread() as server:
            issuer = f"http://localhost:{server.server_port}"
            config = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
            yield issuer, config


def tokens_for(oidc, sub: str) -> dict:
    issuer, config = oidc
    requests.put(f"{issuer}/users/{sub}", json={"preferred_username": sub}, timeout=10)
    session = requests.Session()
    params = dict(client_id="hub", redirect_uri="http://localhost/cb", response_type="code",
                  scope="openid profile", state="s")  # fmt: skip
    r = session.post(config["authorization_endpoint"], params=params, data={"sub": sub},
                     allow_redirects=False, timeout=10)  # fmt: skip
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    return session.post(
        config["token_endpoint"], timeout=10,
        data=dict(grant_type="authorization_code", code=code, redirect_uri="http://localhost/cb",
                  client_id="hub", client_secret="secret"),
    ).json()  # fmt: skip


@pytest.fixture
def sts(oidc):
    issuer, config = oidc
    with StsDouble(issuer, config["userinfo_endpoint"], config["jwks_uri"]) as double:
        yield double


def sts_service(store, engine, sts_url) -> CredentialService:
    return service_for(store, engine, kind="sts", sts_endpoint_url=sts_url, credentials_file="",
                       sts_duration=1800)  # fmt: skip


async def test_sts_exchanges_real_tokens_in_minios_format(store, db, oidc, sts):
    _, _, engine = db
    service = sts_service(store, engine, sts.url)
    given = tokens_for(oidc, "alice")

    async def access_token():
        return given["access_token"]

    creds = await service.credentials("alice", access_token=access_token)
    (sent,) = sts.requests
    assert sent["Action"] == "AssumeRoleWithWebIdentity" and sent["Version"] == "2011-06-15"
    assert sent["WebIdentityToken"] == given["access_token"] and sent["DurationSeconds"] == "1800"
    assert sts.issued[creds.access_key] == "alice"
    assert creds.session_token.startswith("session-") and creds.kind == "sts"
    assert 1790 < creds.expires_at - time.time() <= 1800
    # cached: a second launch asks STS nothing
    assert await service.credentials("alice", access_token=access_token) == creds
    assert len(sts.requests) == 1

    # a signed JWT (the id token): checked with the provider's keys, capped at its exp
    async def id_token():
        return given["id_token"]

    jwt_creds = await service.credentials("bob", access_token=id_token)
    left = tokens.seconds_left(given["id_token"])
    assert left is not None and abs(jwt_creds.expires_at - time.time() - min(left, 1800)) < 5


STS_FAULTS = [
    ("no-token", None, "normal", "sign out and sign in again"),
    ("refused", "not-a-token-at-all-xyz", "normal", "refused your sign-in token (HTTP 400)"),
    ("garbage", "ok", "garbage", "cannot be read"),
    ("incomplete", "ok", "incomplete", "cannot be read"),
]


@pytest.mark.parametrize(
    "token, mode, said", [f[1:] for f in STS_FAULTS], ids=[f[0] for f in STS_FAULTS]
)
async def test_sts_faults_are_clear_and_never_show_the_token(
    store, db, oidc, sts, token, mode, said
):
    _, _, engine = db
    service = sts_service(store, engine, sts.url)
    sts.mode = mode
    if token == "ok":
        token = tokens_for(oidc, "dave")["access_token"]

    async def source():
        return token

    with pytest.raises(StorageError) as refused:
        await service.credentials("dave", access_token=source)
    assert said.lower() in str(refused.value).lower()
    if token:
        assert token not in str(refused.value)


async def test_sts_down_is_a_clear_refusal(store, db):
    _, _, engine = db
    service = sts_service(store, engine, f"http://127.0.0.1:{pick_free_port()}")

    async def source():
        return "some-access-token-value"

    with pytest.raises(StorageError, match="cannot be reached"):
        await service.credentials("erin", access_token=source)


async def test_the_refresh_hook_renews_a_token_about_to_expire(oidc):
    """oauthenticator renews only refused tokens; the hook renews those near expiry."""
    from onyxia_hub.auth.oidc import OnyxiaOIDCAuthenticator

    issuer, config = oidc
    given = tokens_for(oidc, "frank")
    auth = OnyxiaOIDCAuthenticator(
        oidc_issuer=issuer, client_id="hub", client_secret="secret",
        oauth_callback_url="http://localhost/cb", allow_all=True, basic_auth=True,
    )  # fmt: skip
    hook = tokens.make_refresh_user_hook(min_seconds=600)
    user = type("User", (), {"name": "frank"})()

    def jwt_expiring_in(seconds):  # what Keycloak's access tokens look like (unsigned here)
        claims = {"exp": int(time.time() + seconds), "preferred_username": "frank"}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"e30.{body}.sig"

    fine = {"access_token": jwt_expiring_in(3600), "refresh_token": given["refresh_token"]}
    assert await hook(auth, user, fine) is None  # long enough: oauthenticator goes on
    soon = {"access_token": jwt_expiring_in(60), "refresh_token": given["refresh_token"]}
    model = await hook(auth, user, soon)
    assert model["name"] == "frank"
    assert model["auth_state"]["access_token"] not in (soon["access_token"], given["access_token"])
    assert model["auth_state"]["refresh_token"]
    revoked = {"access_token": jwt_expiring_in(60), "refresh_token": "no-such-refresh-token"}
    assert await hook(auth, user, revoked) is False  # sign in again


# -- user-server side and Kubernetes ------------------------------------------------------------
def test_python_kernels_keep_the_variables_and_load_the_refresh_extension(tmp_path):
    from onyxia_storage.kernelenv import kernel_command, kernel_environment

    base = {
        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_PATH_STYLE_ACCESS": "true",
        "MC_HOST_s3": "x", "ONYXIA_STORAGE_CREDENTIALS_URL": "http://p/c",
        "ONYXIA_STORAGE_KERNEL_REFRESH": "1", "XDG_RUNTIME_DIR": str(tmp_path),
    }  # fmt: skip
    # the hub did not ask (kernel_refresh = False): the variables stay
    unasked = {k: v for k, v in base.items() if k != "ONYXIA_STORAGE_KERNEL_REFRESH"}
    assert kernel_environment(dict(unasked), "python") == unasked
    assert kernel_environment(dict(base), "R") == base  # R keeps the launch's variables
    env = kernel_environment(dict(base), "python")
    assert {k: env[k] for k in base} == base  # Onyxia's variables all stay, as on SSP Cloud
    config = Path(env["AWS_CONFIG_FILE"])
    assert (
        config.parent == tmp_path / "onyxia-storage" and config.parent.stat().st_mode & 0o077 == 0
    )
    assert config.read_text() == (
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"
    )
    ipykernel = ["/env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert kernel_command(ipykernel) == [*ipykernel, "--ext=onyxia_storage.refresh"]
    assert kernel_command(kernel_command(ipykernel)) == kernel_command(ipykernel)
    other = ["/usr/bin/R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]
    assert kernel_command(other) == other


def test_new_terminals_get_the_current_set_without_blocking_the_server():
    from onyxia_storage.terminals import TerminalCredentials

    def when(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    class Manager:  # terminado's TermManagerBase: what it reads
        extra_env = {"JUPYTER_SERVER_ROOT": "/home/u"}

    base = {
        "AWS_ACCESS_KEY_ID": "ASIAOLD", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
        "AWS_CREDENTIAL_EXPIRATION": when(time.time() + 60),
    }  # fmt: skip
    manager = Manager()
    credentials = TerminalCredentials(manager, base)
    credentials.refresher.fetch = lambda env, now: {
        "AccessKeyId": "ASIANEW", "SecretAccessKey": "s2", "SessionToken": "t2",
        "Expiration": when(now + 3600),
    }  # fmt: skip
    first = manager.extra_env
    credentials.refresh()
    assert manager.extra_env is not first  # a new dict: never one changed while read
    assert manager.extra_env["JUPYTER_SERVER_ROOT"] == "/home/u"
    assert manager.extra_env["AWS_ACCESS_KEY_ID"] == "ASIANEW"
    assert base["AWS_ACCESS_KEY_ID"] == "ASIAOLD"  # the server's own environment untouched
    assert 1 <= credentials.next_check(time.time()) <= 30


def test_the_kernel_refresher_rewrites_the_variables_before_expiry_only():
    from onyxia_storage.refresh import REFRESH_WITHIN, Refresher

    def when(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    start = 1_800_000_000.0
    env = {
        "AWS_ACCESS_KEY_ID": "ASIAOLD", "AWS_SECRET_ACCESS_KEY": "old-secret",
        "AWS_SESSION_TOKEN": "old-token", "AWS_CREDENTIAL_EXPIRATION": when(start + 3600),
        "AWS_ENDPOINT_URL": "https://127.0.0.1:9000", "MC_HOST_s3": "old",
    }  # fmt: skip
    now = [start]
    asked = []
    answer = {"AccessKeyId": "ASIAOLD", "SecretAccessKey": "old-secret",
              "SessionToken": "old-token", "Expiration": when(start + 3600)}  # fmt: skip

    def fetch(environ, at):
        asked.append(at)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    refresher = Refresher(env, fetch, lambda: now[0])
    refresher()  # 60 minutes left: nothing asked
    now[0] = start + 3600 - REFRESH_WITHIN - 1
    refresher()
    assert asked == [] and env["AWS_ACCESS_KEY_ID"] == "ASIAOLD"
    now[0] += 2  # 20 minutes left: asks; the portal still has the same set
    refresher()
    refresher()  # not again before RETRY_AFTER
    assert len(asked) == 1 and env["AWS_ACCESS_KEY_ID"] == "ASIAOLD"
    answer = {"AccessKeyId": "ASIANEW", "SecretAccessKey": "new/secret",
              "SessionToken": "new-token", "Expiration": when(start + 7200)}  # fmt: skip
    now[0] += 31
    refresher()
    assert env["AWS_ACCESS_KEY_ID"] == "ASIANEW" and env["AWS_SECRET_ACCESS_KEY"] == "new/secret"
    assert env["AWS_SESSION_TOKEN"] == "new-token"
    assert env["AWS_CREDENTIAL_EXPIRATION"] == when(start + 7200)
    assert env["MC_HOST_s3"] == "https://ASIANEW:new%2Fsecret:new-token@127.0.0.1:9000"
    refresher()  # the new set has an hour left: nothing asked
    assert len(asked) == 2
    # the portal is down near expiry: one warning, the variables kept, retried later
    now[0] = start + 7200 - 60
    answer = RuntimeError("no S3 credentials from the hub: HTTP 503")
    refresher()
    assert env["AWS_ACCESS_KEY_ID"] == "ASIANEW" and refresher.warned and len(asked) == 3
    # a set without a session token (access keys) removes the old token
    now[0] += 31
    answer = {"AccessKeyId": "AKIAKEY", "SecretAccessKey": "k", "Expiration": when(start + 9000)}
    refresher()
    assert "AWS_SESSION_TOKEN" not in env and env["AWS_ACCESS_KEY_ID"] == "AKIAKEY"
    assert not refresher.warned


async def test_the_pod_manifest_holds_no_storage_credential(store, db, monkeypatch):
    from kubernetes_asyncio.client import ApiClient

    from tests.helpers.k8s_double import make_spawner

    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **kwargs: None)
    monkeypatch.setattr("kubespawner.spawner.shared_client", lambda *args, **kwargs: None)
    url, key_file, engine = db
    config = Config({"StorageProvider": dict(
        endpoint_url=store.url, credentials_file=str(store.admin_file), store_id=store.store_id,
        db_url=url, key_file=key_file, ca_bundle=str(store.tls.bundle),
    )})  # fmt: skip
    spawner = make_spawner("alice", provider_classes=[StorageProvider], config=config)
    spawner.user_options = {"service": "jupyter-python"}
    try:
        await spawner.load_user_options()
        pod = ApiClient.sanitize_for_serialization(
            ApiClient.__new__(ApiClient), await spawner.get_pod_manifest()
        )
    finally:
        spawner.release_plan()
    creds = service_for(store, engine).cache.load("alice").current
    scanner = SecretScanner({"access key": creds.access_key, "secret key": creds.secret_key})
    scanner.assert_clean(scanner.scan_objects("pod", pod))
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]
    assert "secretKeyRef" in env["MC_HOST_s3"]["valueFrom"]
    assert env["AWS_ENDPOINT_URL"]["value"] == store.url


def test_production_values_configure_sts_for_the_hub_and_the_portal(monkeypatch):
    import yaml

    from tests.test_helm_values import hub_config

    values = yaml.safe_load(
        (Path(__file__).parent.parent / "helm_values" / "jupyterhub.yaml").read_text()
    )
    c = hub_config(values, monkeypatch)
    assert "onyxia_hub.providers.storage.StorageProvider" in c.OnyxiaSpawner.provider_classes
    assert "access:services!service=portal" in c.Spawner.server_token_scopes
    settings = StorageProvider(config=c).settings()
    assert settings.kind == "sts" and settings.problems() == []
    [portal] = [s for s in c.JupyterHub.services if s["name"] == "portal"]
    assert StorageSettings.from_json(portal["environment"]["ONYXIA_STORAGE_SETTINGS"]) == settings
    assert callable(c.OnyxiaOIDCAuthenticator.refresh_user_hook)
    roles = values["hub"]["loadRoles"]
    assert roles["onyxia-portal-storage"]["scopes"] == ["admin:auth_state", "read:users:name"]


def _default_provisioner(env: dict) -> str:
    """The kernel provisioner a Jupyter server of the python environment (the one user
    servers run in, docs/environments.md) starts kernels with."""
    code = (
        "from jupyter_server.serverapp import ServerApp\n"
        "from jupyter_client.provisioning import KernelProvisionerFactory\n"
        "app = ServerApp()\n"
        "app.initialize(argv=['--no-browser', '--port=0'])\n"
        "factory = KernelProvisionerFactory.instance(parent=app.kernel_manager)\n"
        "print('PROVISIONER', factory.default_provisioner_name, sorted(app.kernel_spec_manager"
        ".get_all_specs()))\n"
    )
    python = str(Path(default_environments_dir()) / "python" / "bin" / "python")
    done = subprocess.run([python, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("PROVISIONER"))


def test_the_provisioner_selects_itself_where_installed_and_yields_to_the_operator(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    # installed here: every kernel goes through it, and the kernels stay listed
    _, name, kernels = _default_provisioner(env).split(" ", 2)
    assert name == "onyxia-storage" and "'python3'" in kernels
    # an operator's choice wins
    operator = {**env, "JUPYTER_DEFAULT_PROVISIONER_NAME": "local-provisioner"}
    assert _default_provisioner(operator).split(" ")[1] == "local-provisioner"
