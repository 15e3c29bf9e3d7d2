"""Per-user S3 storage on a real embedded hub (moto), in real user servers (docs/storage.md).

One extra hub (`onyxia-hub up` with its embedded moto store) whose access keys live 20 s
(`key_lifetime`) and are renewed after 10 s, so that rotations happen while a test
watches; two users with a real JupyterLab server each (the only two spawns here).

- each user's kernel writes and reads their own bucket with boto3 and s3fs using only
  what the hub injected (the kernel's refreshing configuration; the server's, i.e. a
  terminal's, variables), and is refused on the other user's bucket;
- a kernel that was already running keeps writing and reading while its keys are
  rotated twice and the first key is deleted from the store;
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

from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import FieldCrypto, keys_from
from onyxia_hub.providers.storage.cache import CredentialCache
from tests.helpers import procs
from tests.helpers.client import HubClient
from tests.helpers.kernels import Kernel
from tests.helpers.secrets import SecretScanner

pytestmark = pytest.mark.root
CONFIGS = Path(__file__).parent / "configs"
LIFETIME = 20


@pytest.fixture(scope="module")
def shub(new_hub, hubs_root):
    config = hubs_root / "storage-config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        f"c.StorageProvider.key_lifetime = {LIFETIME}\n"
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
    client.login(name, initial)
    password = "chosen-" + secrets.token_urlsafe(12)
    r = client.post_form(
        "/hub/change-password",
        {"current_password": initial, "new_password": password,
         "new_password_confirmation": password},
    )  # fmt: skip
    assert r.status_code == 200
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
    )  # fmt: skip


OWN_AND_OTHER = """
import os, boto3, s3fs
from botocore.exceptions import ClientError
me, other = {me!r}, {other!r}
assert "AWS_ACCESS_KEY_ID" not in os.environ and os.environ["AWS_CONFIG_FILE"]
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
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(s3.get_object(Bucket=f"user-{me}", Key="boto3.txt")["Body"].read().decode())
try:
    s3.get_object(Bucket=f"user-{other}", Key="boto3.txt")
    print("read the other bucket!")
except Exception as e:
    print("refused", type(e).__name__)
"""


def test_each_user_reaches_their_own_bucket_only(shub, sadmin, users):
    for me, other in (("alice", "bob"), ("bob", "alice")):
        with Kernel(sadmin, me) as kernel:
            out = kernel.run(OWN_AND_OTHER.format(me=me, other=other), timeout=120).check().stdout
        assert f"user-{me}/boto3.txt" in out and f"user-{me}/s3fs.txt" in out, out
        # the three attempts on the other's bucket: boto3's and s3fs's refusals
        assert "['AccessDenied', 'AccessDenied', 'PermissionError']" in out, out
    # a terminal keeps the launch's variables (as mc and R do)
    for me, other in (("alice", "bob"), ("bob", "alice")):
        env = server_env(me)
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert env["AWS_S3_ENDPOINT"] == env["AWS_ENDPOINT_URL"].removeprefix("http://")
        assert env["S3_ENDPOINT"] == env["AWS_ENDPOINT_URL"] + "/"
        assert env["AWS_WORKING_DIRECTORY_PATH"] == f"user-{me}/"
        assert env["MC_HOST_s3"].startswith("http://" + env["AWS_ACCESS_KEY_ID"] + ":")
        account = pwd.getpwnam(f"onyxia-{me}")
        keep = {k: v for k, v in env.items() if k.startswith(("AWS_", "PATH", "HOME"))}
        result = procs.subprocess.run(
            [env["PATH"].split(":")[0] + "/python", "-c", TERMINAL, me, other],
            env=keep, user=account.pw_uid, group=account.pw_gid, extra_groups=[],
            capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
        assert result.stdout.split("\n")[:2] == [me, "refused AccessDenied"], result.stderr


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
                             headers={"Content-Type": "text/plain"})  # fmt: skip
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


ROTATION = """
import time, boto3, s3fs
s3, fs = boto3.client("s3"), s3fs.S3FileSystem()
keys, rounds, started = [], 0, time.time()
while len(keys) < 3 and time.time() - started < {seconds}:  # two rotations, or time out
    body = f"round {{rounds}}".encode()
    s3.put_object(Bucket="user-alice", Key="loop.txt", Body=body)
    assert s3.get_object(Bucket="user-alice", Key="loop.txt")["Body"].read() == body
    fs.pipe("user-alice/loop-s3fs.txt", body)
    assert fs.cat("user-alice/loop-s3fs.txt") == body
    key = s3._request_signer._credentials.get_frozen_credentials().access_key
    if key not in keys:
        keys.append(key)
    rounds += 1
    time.sleep(0.5)
print(rounds, len(keys), ",".join(keys))
"""


def test_a_running_kernel_keeps_working_while_its_keys_rotate(shub, sadmin, users):
    first = server_env("alice")["AWS_ACCESS_KEY_ID"]  # injected at launch
    with Kernel(sadmin, "alice") as kernel:
        out = kernel.run(ROTATION.format(seconds=LIFETIME * 3), timeout=180).check().stdout
    rounds, count, keys = out.split()
    assert int(count) >= 3, out  # at least two rotations seen by the kernel
    iam = admin_iam(shub)
    live = {
        k["AccessKeyId"] for k in iam.list_access_keys(UserName="hub-alice")["AccessKeyMetadata"]
    }
    assert first not in live and len(live) <= 2  # the launch's key is gone from the store
    entry = cache(shub).load("alice")
    assert entry.issue_count >= 3
    print(f"{rounds} write/read rounds, keys seen: {count}, sets issued: {entry.issue_count}")


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
        }
        for label, creds in (
            ("current", entries[name].current),
            ("previous", entries[name].previous),
        ):
            if creds:
                values[f"{label} key id"] = creds.access_key
                values[f"{label} secret"] = creds.secret_key
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
    assert "hub-bob" in {u["UserName"] for u in iam.list_users()["Users"]}
    r = sadmin.api("DELETE", "/users/bob")
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "hub-bob" not in {u["UserName"] for u in iam.list_users()["Users"]}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("bob's keys were not revoked")
    assert cache(shub).load("bob") is None
    assert "Storage: revoked the credentials of bob (deleted)" in shub.output()
