"""Per-user S3 storage on a real embedded hub (moto), in real user servers (docs/storage.md).

One extra hub (`onyxia-hub up` with its embedded moto store, over HTTPS) whose session
credentials live 30 s (`sts_duration`) and are renewed after 15 s, so that rotations
happen while a test watches; two users with a real JupyterLab server each (the only two
spawns here).

- each user's kernel and terminal have Onyxia's variables, write and read their own
  bucket with boto3 and s3fs using only those, run SSP Cloud's s3fs line verbatim, and
  are refused on the other user's bucket;
- clients made in a kernel before rotations keep working across two of them, each
  request signed with the set the environment holds, while the launch's set, expired,
  is refused by the store;
- the portal's credentials API serves a server's own token only, its own user's
  credentials only, and refuses beyond its rate; My storage shows endpoint, bucket,
  expiry, snippets and the in-memory warning, never a key; the banner says it too;
- a deleted user's keys are revoked by the portal's sweep;
- the secret scanner finds none of the credentials in logs, pages, command lines, other
  users' environments or homes.

The cache's "one set for 50 launches and a hub restart" is tested in-process
(tests/test_storage_units.py): with the embedded moto store a hub restart is a new,
empty store, and 50 JupyterLab spawns would take minutes.
"""

from __future__ import annotations

import json
import pwd
import secrets
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import FieldCrypto, keys_from
from onyxia_hub.providers.storage.cache import CredentialCache
from tests.helpers import procs
from tests.helpers.client import HubClient
from tests.helpers.kernels import Kernel
from tests.helpers.secrets import SecretScanner
from tests.helpers.terminals import run_in_terminal

pytestmark = pytest.mark.root
CONFIGS = Path(__file__).parent / "configs"
LIFETIME = 30


@pytest.fixture(scope="module")
def shub(new_hub, hubs_root):
    config = hubs_root / "storage-config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        f"c.StorageProvider.sts_duration = {LIFETIME}\n"
        "c.StorageProvider.reuse_fraction = 0.5\n"
        "c.StorageProvider.revoke_interval = 2\n"
    )
    hub = new_hub("storage", config_files=[CONFIGS / "fast-login.py", config])
    yield hub
    hub.stop()  # its store with it; the other modules scan every process


@pytest.fixture(scope="module")
def sadmin(shub, hub_admin_password) -> HubClient:
    client = HubClient(shub.url)
    assert client.login("admin", hub_admin_password).status_code == 302
    return client


def make_user(hub, admin: HubClient, name: str) -> HubClient:
    initial = "initial-" + secrets.token_urlsafe(8)
    r = admin.post_form(
        "/hub/accounts", {"action": "create", "username": name, "password": initial}
    )
    assert r.status_code == 200, r.text
    client = HubClient(hub.url)
    password = "chosen-" + secrets.token_urlsafe(12)
    r = client.first_sign_in(name, initial, password)
    assert r.status_code == 302
    return client


@pytest.fixture(scope="module")
def users(shub, sadmin):
    clients = {name: make_user(shub, sadmin, name) for name in ("alice", "bob")}
    for name in clients:
        r = sadmin.api(
            "POST",
            f"/users/{name}/server",
            json={"user_options": {"service": "jupyter-python", "cpu": "0.5", "memory": "1Gi"}},
        )
        assert r.status_code in (201, 202), r.text
    for name in clients:
        sadmin.wait_ready(name, timeout=120)
    yield clients
    for name in clients:
        try:
            sadmin.stop_server(name)
        except Exception:  # noqa: S110 - bob may be gone already
            pass


def server_env(name: str) -> dict:
    (server,) = procs.user_servers(name)
    return server.environ


def cache(shub) -> CredentialCache:
    state = shub.state_dir
    crypto = FieldCrypto(keys_from(str(state / "hub" / "secrets" / "portal_key")))
    return CredentialCache(make_engine(f"sqlite:///{state / 'portal' / 'portal.sqlite'}"), crypto)


def admin_iam(shub):
    env = server_env("alice")
    admin = json.loads((shub.state_dir / "hub" / "secrets" / "storage-admin.json").read_text())
    return boto3.client(
        "iam", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=admin["access_key"], aws_secret_access_key=admin["secret_key"],
        verify=env["AWS_CA_BUNDLE"],
    )  # fmt: skip


def s3_with(env: dict, creds) -> object:
    """A boto3 S3 client of the test process, with one credential set."""
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"], verify=env["AWS_CA_BUNDLE"],
        config=BotoConfig(retries={"max_attempts": 1}),
    )  # fmt: skip


ONYXIA_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
    "AWS_S3_ENDPOINT", "AWS_ENDPOINT_URL", "S3_ENDPOINT", "AWS_PATH_STYLE_ACCESS",
    "MC_HOST_s3", "AWS_CREDENTIAL_EXPIRATION",
)  # fmt: skip

# SSP Cloud's documentation and course material, verbatim
SSP_CLOUD = (
    "import os\nimport s3fs\n"
    "fs = s3fs.S3FileSystem(client_kwargs={'endpoint_url': "
    "'https://'+os.environ['AWS_S3_ENDPOINT']}, "
    'key=os.environ["AWS_ACCESS_KEY_ID"], secret=os.environ["AWS_SECRET_ACCESS_KEY"], '
    'token=os.environ["AWS_SESSION_TOKEN"])\n'
)


OWN_AND_OTHER = """
import os, boto3, s3fs
from botocore.exceptions import ClientError
me, other = {me!r}, {other!r}
missing = [name for name in {variables!r} if not os.environ.get(name)]
assert not missing, missing
s3 = boto3.client("s3")
s3.put_object(Bucket=f"user-{{me}}", Key="boto3.txt", Body=me.encode())
fs = s3fs.S3FileSystem()
fs.pipe(f"user-{{me}}/s3fs.txt", b"written by s3fs")
assert s3.get_object(Bucket=f"user-{{me}}", Key="s3fs.txt")["Body"].read() == b"written by s3fs"
assert fs.cat(f"user-{{me}}/boto3.txt") == me.encode()
refused = []
for attempt in (lambda: s3.list_objects_v2(Bucket=f"user-{{other}}"),
                lambda: s3.put_object(Bucket=f"user-{{other}}", Key="x", Body=b"x"),
                lambda: fs.ls(f"user-{{other}}", refresh=True)):
    try:
        attempt()
    except (ClientError, PermissionError, OSError) as e:
        refused.append(type(e).__name__)
print(sorted(fs.ls(f"user-{{me}}")), refused)
"""

TERMINAL = """
import boto3, os, sys
me, other = sys.argv[1], sys.argv[2]
missing = [name for name in VARIABLES if not os.environ.get(name)]
print("missing", missing)
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(s3.get_object(Bucket=f"user-{me}", Key="boto3.txt")["Body"].read().decode())
try:
    s3.get_object(Bucket=f"user-{other}", Key="boto3.txt")
    print("read the other bucket!")
except Exception as e:
    print("refused", e.response["Error"]["Code"])
"""


def put_file(hub, token: str, user: str, path: str, text: str) -> None:
    """A file in user's home, through their server's contents API."""
    r = requests.put(
        f"{hub.url}/user/{user}/api/contents/{path}",
        json={"type": "file", "format": "text", "content": text},
        headers={"Authorization": f"token {token}"}, timeout=30,
    )  # fmt: skip
    assert r.status_code in (200, 201), r.text


def test_each_user_reaches_their_own_bucket_only(shub, sadmin, users):
    variables = ONYXIA_VARIABLES
    for me, other in (("alice", "bob"), ("bob", "alice")):
        with Kernel(sadmin, me) as kernel:
            code = OWN_AND_OTHER.format(me=me, other=other, variables=variables)
            out = kernel.run(code, timeout=120).check().stdout
            # SSP Cloud's line, verbatim, in the same kernel
            ssp = kernel.run(SSP_CLOUD + f"print(fs.ls('user-{me}'))", timeout=60).check()
        assert f"user-{me}/boto3.txt" in out and f"user-{me}/s3fs.txt" in out, out
        assert f"user-{me}/boto3.txt" in ssp.stdout, ssp.stdout
        # the three attempts on the other's bucket: boto3's and s3fs's refusals
        assert "['AccessDenied', 'AccessDenied', 'PermissionError']" in out, out
    # a terminal opened now, long after the launch's set expired, has the current set
    for me, other in (("alice", "bob"), ("bob", "alice")):
        env = server_env(me)
        assert env["AWS_ENDPOINT_URL"].startswith("https://127.0.0.1:")
        assert env["AWS_S3_ENDPOINT"] == env["AWS_ENDPOINT_URL"].removeprefix("https://")
        assert env["S3_ENDPOINT"] == env["AWS_ENDPOINT_URL"] + "/"
        assert env["AWS_WORKING_DIRECTORY_PATH"] == f"user-{me}/"
        assert env["MC_HOST_s3"].startswith("https://" + env["AWS_ACCESS_KEY_ID"] + ":")
        script = f"VARIABLES = {variables!r}\n" + TERMINAL
        token = sadmin.new_token(me)
        put_file(shub, token, me, "s3check.py", script)
        put_file(shub, token, me, "sspcloud.py", SSP_CLOUD + f"print(fs.ls('user-{me}'))\n")
        out = run_in_terminal(
            shub.url, me, token,
            f"python s3check.py {me} {other}; python sspcloud.py", timeout=60,
        )  # fmt: skip
        lines = [line.strip() for line in out.splitlines()]
        assert "missing []" in lines and me in lines and "refused AccessDenied" in lines, out
        assert f"user-{me}/boto3.txt" in out, out


def test_motos_control_api_is_out_of_every_accounts_reach(shub, sadmin, users):
    """moto answers /moto-api/ without authentication (every key in data.json; IAM checks
    off with reset-auth): the embedded store refuses it (onyxia_hub/embedded/motostore.py)."""
    env = server_env("alice")
    endpoint = env["AWS_ENDPOINT_URL"]
    for method, path in (
        ("GET", "/moto-api/data.json"),
        ("GET", "//moto-api/data.json"),
        ("GET", "/MOTO-API/data.json"),
        ("POST", "/moto-api/reset-auth"),
        ("POST", "/moto-api/reset"),
        ("GET", "/moto-api/"),
    ):
        r = requests.request(method, endpoint + path, data="inf", timeout=10,
                             headers={"Content-Type": "text/plain"},
                             verify=env["AWS_CA_BUNDLE"])  # fmt: skip
        assert r.status_code == 403, (method, path, r.status_code)
        assert env["AWS_SECRET_ACCESS_KEY"] not in r.text
    # and IAM checks are still on: alice's (current, refreshed) keys cannot read bob's bucket
    with Kernel(sadmin, "alice") as kernel:
        out = (
            kernel.run(
                "import boto3; s3 = boto3.client('s3')\n"
                "try:\n    s3.list_objects_v2(Bucket='user-bob'); print('read bob')\n"
                "except s3.exceptions.ClientError as e: print(e.response['Error']['Code'])",
                timeout=60,
            )
            .check()
            .stdout
        )
    assert out.strip() == "AccessDenied"


ROTATION_SETUP = """
import os, boto3, s3fs
s3, fs = boto3.client("s3"), s3fs.S3FileSystem()
signed = {"boto3": None, "s3fs": None}
def recorder(which):
    def record(request, **kwargs):
        header = request.headers["Authorization"].decode()
        signed[which] = header.split("Credential=")[1].split("/")[0]
    return record
s3.meta.events.register("before-send.s3", recorder("boto3"))
fs.ls("user-alice", refresh=True)  # connects s3fs's client
fs.s3.meta.events.register("before-send.s3", recorder("s3fs"))
rounds = 0
"""

ROTATION_ROUND = """
body = f"round {rounds}".encode()
s3.put_object(Bucket="user-alice", Key="loop.txt", Body=body)
assert s3.get_object(Bucket="user-alice", Key="loop.txt")["Body"].read() == body
fs.pipe("user-alice/loop-s3fs.txt", body)
assert fs.cat("user-alice/loop-s3fs.txt") == body
rounds += 1
print(os.environ["AWS_ACCESS_KEY_ID"], signed["boto3"], signed["s3fs"])
"""


def test_clients_made_before_rotations_keep_working_with_the_new_sets(shub, sadmin, users):
    launch = server_env("alice")  # the set injected at launch (expired by now)
    seen: list[tuple[str, ...]] = []
    with Kernel(sadmin, "alice") as kernel:
        kernel.run(ROTATION_SETUP, timeout=60).check()
        deadline = time.monotonic() + LIFETIME * 4
        while time.monotonic() < deadline:
            out = kernel.run(ROTATION_ROUND, timeout=60).check().stdout
            seen.append(tuple(out.split()))
            if len({environ for environ, _, _ in seen}) >= 3:
                break
            time.sleep(2)
    keys = [environ for environ, _, _ in seen]
    assert len(set(keys)) >= 3, seen  # two rotations while the clients lived
    for environ, boto3_key, s3fs_key in seen:
        assert boto3_key == environ and s3fs_key == environ, seen  # signed with the new set
    with pytest.raises(ClientError, match="ExpiredToken"):  # the launch's set is refused
        s3_with(launch, launch).list_objects_v2(Bucket="user-alice")
    entry = cache(shub).load("alice")
    assert entry.issue_count >= 3
    previous = entry.previous
    if previous is not None and previous.expires_at - time.time() > 2:
        held = {"AWS_ACCESS_KEY_ID": previous.access_key,
                "AWS_SECRET_ACCESS_KEY": previous.secret_key,
                "AWS_SESSION_TOKEN": previous.session_token}  # fmt: skip
        assert s3_with(launch, held).list_objects_v2(Bucket="user-alice")["KeyCount"] >= 1
    print(f"{len(seen)} rounds, sets seen: {len(set(keys))}, issued: {entry.issue_count}")


def test_credentials_only_for_a_servers_own_token(shub, sadmin, users):
    alice_env = server_env("alice")
    url = alice_env["ONYXIA_STORAGE_CREDENTIALS_URL"]
    r = requests.get(
        url, headers={"Authorization": f"token {alice_env['JUPYTERHUB_API_TOKEN']}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["Bucket"] == "user-alice" and body["AccessKeyId"] and body["Expiration"]
    # alice's ordinary API token, alice's browser, the admin: refused
    token = sadmin.new_token("alice")
    r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 403 and "server's own token" in r.json()["error"]
    portal_cookie = users["alice"].get("/services/portal/api/storage/credentials")
    assert portal_cookie.status_code == 403
    # bob's server gets bob's, never alice's
    bob_env = server_env("bob")
    r = requests.get(
        url, headers={"Authorization": f"token {bob_env['JUPYTERHUB_API_TOKEN']}"}, timeout=30
    )
    assert r.status_code == 200 and r.json()["Bucket"] == "user-bob"
    # bounded rate per server
    statuses = [
        requests.get(
            url, headers={"Authorization": f"token {bob_env['JUPYTERHUB_API_TOKEN']}"}, timeout=30
        ).status_code
        for _ in range(32)
    ]
    assert statuses.count(429) >= 1 and statuses[0] == 200


def test_my_storage_page_and_banner(shub, users):
    r = users["alice"].get("/services/portal/storage")
    assert r.status_code == 200
    page = r.text
    env = server_env("alice")
    for expected in (env["AWS_ENDPOINT_URL"], "user-alice", "lost when Onyxia Hub stops",
                     "boto3", "s3fs", "pandas", "rclone ls s3:user-alice", "DuckDB",
                     "Credentials expire"):  # fmt: skip
        assert expected in page, expected
    # only tools the servers have (environments/python): no mc, no R S3 package
    assert "mc ls" not in page and "aws.s3" not in page
    info = users["alice"].get("/services/portal/api/storage",
                              headers={"X-XSRFToken": "x"}).json()  # fmt: skip
    assert info["bucket"] == "user-alice" and info["data_lost_at_stop"] is True
    assert "My storage" in users["alice"].get("/hub/home").text
    assert "IN MEMORY" in shub.output() and "LOST when Onyxia Hub stops" in shub.output()


def test_no_credential_leaks(shub, sadmin, users):
    found = {}
    entries = {name: cache(shub).load(name) for name in ("alice", "bob")}
    for name in ("alice", "bob"):
        env = server_env(name)
        values = {
            "launch key id": env["AWS_ACCESS_KEY_ID"],
            "launch secret": env["AWS_SECRET_ACCESS_KEY"],
            "launch session token": env["AWS_SESSION_TOKEN"],
        }
        for label, creds in (
            ("current", entries[name].current),
            ("previous", entries[name].previous),
        ):
            if creds:
                values[f"{label} key id"] = creds.access_key
                values[f"{label} secret"] = creds.secret_key
                values[f"{label} session token"] = creds.session_token
        found[name] = SecretScanner({f"{name}'s {k}": v for k, v in values.items()})
    admin = json.loads((shub.state_dir / "hub" / "secrets" / "storage-admin.json").read_text())
    admin_scanner = SecretScanner({"store admin secret": admin["secret_key"]})
    pages = ["/services/portal/storage", "/services/portal/services", "/services/portal/account",
             "/hub/home", "/hub/spawn"]  # fmt: skip
    for name, scanner in found.items():
        other = "bob" if name == "alice" else "alice"
        uid = pwd.getpwnam(f"onyxia-{name}").pw_uid
        findings = scanner.scan_logs(shub) + scanner.scan_command_lines()
        findings += scanner.scan_environments(except_uids=[uid])
        findings += scanner.scan_files(shub.state_dir / "homes")
        findings += scanner.scan_pages(users[name], pages) + scanner.scan_pages(users[other], pages)
        findings += scanner.scan_pages(sadmin, ["/hub/admin", "/services/portal/admin"])
        scanner.assert_clean(findings)
    admin_scanner.assert_clean(
        admin_scanner.scan_logs(shub) + admin_scanner.scan_command_lines()
        + admin_scanner.scan_environments() + admin_scanner.scan_files(shub.state_dir / "homes")
    )  # fmt: skip


def test_a_deleted_users_keys_are_revoked(shub, sadmin, users):
    iam = admin_iam(shub)
    sadmin.stop_server("bob")
    assert "hub-bob" in {r["RoleName"] for r in iam.list_roles()["Roles"]}
    last = cache(shub).load("bob").current
    r = sadmin.api("DELETE", "/users/bob")
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "hub-bob" not in {r["RoleName"] for r in iam.list_roles()["Roles"]}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("bob's role was not deleted")
    assert cache(shub).load("bob") is None
    held = {"AWS_ACCESS_KEY_ID": last.access_key, "AWS_SECRET_ACCESS_KEY": last.secret_key,
            "AWS_SESSION_TOKEN": last.session_token}  # fmt: skip
    with pytest.raises(ClientError, match="AccessDenied|ExpiredToken"):  # dead either way
        s3_with(server_env("alice"), held).list_objects_v2(Bucket="user-bob")
    assert "Storage: revoked the credentials of bob (deleted)" in shub.output()
