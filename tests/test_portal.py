"""The portal on the embedded hub: every page and API call, for two users and an admin.

Signed in through the hub's login form, the clients reach the portal through OAuth (as a
browser does) or with hub API tokens. Covered: the hub starts the portal and links to it;
the portal's OAuth tokens carry only their user's server scopes; My account with its
write-only token; validation naming each field on pages and in the API; XSRF on every
change; saved configurations (save, rename, relaunch, share links that only pre-fill);
every cross-user attempt (ben on ann's data, a user on the admin view, a narrowed admin
token); a real server relaunched, followed while starting, stopped, started, stopped by
the admin and deleted; secrets in no database byte, log, page or command line.

Two real spawns in this module (about a CPU-second and 130 MiB each).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import time
from html import unescape

import pytest

from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import FieldCrypto, read_key_file
from onyxia_hub.db.store import Store
from tests.helpers import procs
from tests.helpers.client import HubClient
from tests.helpers.hub import ONYXIA_HUB
from tests.helpers.secrets import SecretScanner

ANN, BEN = "portal-ann", "portal-ben"
STEPS = {
    "Server requested",
    "Checking your choice",
    "Reserving resources within your quota",
    "Preparing your home directory",
    "Setting your limits (0.5 CPU, 1 GiB)",
    "Starting Jupyter Python",
    "Waiting for Jupyter Python to answer",
}


@pytest.fixture(scope="module")
def ann(make_user, portal_client):
    return portal_client(make_user(ANN))


@pytest.fixture(scope="module")
def ben(make_user, portal_client):
    return portal_client(make_user(BEN))


@pytest.fixture(scope="module")
def root(admin, portal_client):
    return portal_client(admin)


def alert(html: str, element_id: str) -> str | None:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</div>', html, re.S)
    return " ".join(unescape(match.group(1)).split()) if match else None


def feedback(html: str, field: str) -> str | None:
    match = re.search(rf'class="invalid-feedback" id="{field}-help">(.*?)</div>', html, re.S)
    return unescape(match.group(1)).strip() if match else None


def servers(client, token=None) -> dict[str, dict]:
    r = client.api("GET", "servers", token)
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["servers"]}


def wait_status(client, server: str, wanted: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = servers(client).get(server)
        if (found or {}).get("status") == wanted or (wanted == "gone" and found is None):
            return found
        time.sleep(0.25)
    raise TimeoutError(f"{server!r} not {wanted} after {timeout}s: {found}")


# -- the service and its scopes ------------------------------------------------------------
def test_the_hub_starts_the_portal_and_links_to_it(hub, admin, ann):
    page = admin.get("/hub/spawn").text  # a hub page: the portal's entries in its nav bar
    for href, label in [("services", "My services"), ("account", "My account")]:
        assert f'id="nav-{href}" href="/services/portal/{href}">{label}</a>' in page
    assert 'id="nav-admin" href="/hub/accounts">Admin</a>' in page
    assert 'id="nav-admin"' not in ann.client.get("/hub/spawn").text  # admins only
    # the hub's home is My services
    r = ann.client.get("/hub/home", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/services/portal/services"
    service = admin.api("GET", "/services/portal").json()
    assert service["roles"] == ["onyxia-portal"] and service["display"] is False
    [portal] = [
        p
        for p in procs.processes()  # this hub's portal (other hubs run theirs)
        if p.cmdline[1:3] == ["-m", "onyxia_hub.portal"]
        and p.environ.get("ONYXIA_PORTAL_PID_FILE", "").startswith(str(hub.state_dir))
    ]
    assert open(f"/proc/{portal.pid}/stat").read().split()[3] == str(hub.proc.pid)
    assert portal.environ["ONYXIA_PORTAL_KEY_FILE"].endswith("hub/secrets/portal_key")
    state = hub.state_dir
    assert stat.S_IMODE((state / "portal").stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "portal" / "portal.sqlite").stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((state / "hub" / "secrets" / "portal_key").stat().st_mode) == 0o600


def test_pages_need_the_hubs_login_and_the_api_a_token(hub):
    anonymous = HubClient(hub.url)
    r = anonymous.get("/services/portal/account")
    assert r.url.startswith(hub.url + "/hub/login"), r.url
    r = anonymous.get("/services/portal/api/servers")
    assert r.status_code == 403 and r.json()["error"]
    r = anonymous.get("/services/portal/api/account", headers={"Authorization": "token nope"})
    assert r.status_code == 403


def test_unknown_pages_are_404_in_the_hubs_layout(root):
    r = root.get("no-such-page")
    assert r.status_code == 404 and "There is no such page in the portal." in r.text
    assert 'href="/services/portal/services">My services</a>' in r.text


def test_the_portals_tokens_reach_only_their_users_servers(ann):
    assert ann.get("services").status_code == 200
    tokens = ann.client.api("GET", f"/users/{ANN}/tokens").json()["api_tokens"]
    [token] = [t for t in tokens if t["oauth_client"] == "JupyterHub service portal"]
    scopes = set(token["scopes"])
    assert {
        f"read:servers!user={ANN}",
        f"start:servers!user={ANN}",
        f"delete:servers!user={ANN}",
        "access:services!service=portal",
    } <= scopes
    # nothing unfiltered, nothing about anyone else
    assert all(s.endswith((f"!user={ANN}", "!service=portal")) for s in scopes), scopes


# -- My account ----------------------------------------------------------------------------
def test_my_account_is_saved_and_the_token_is_write_only(ann):
    token = "ghp_" + secrets.token_urlsafe(24)
    form = {
        "git_name": "Ann O'Neil",
        "git_email": "ann@example.org",
        "git_token": token,
        "git_repository": "https://git.example.org/stats/survey.git",
        "git_branch": "feature/weights",
    }
    r = ann.post("account", form)
    assert r.status_code == 200 and r.url.endswith("account?done=account"), r.text[-500:]
    assert alert(r.text, "portal-done") == "Your account settings are saved."
    assert token not in r.text
    assert 'value="Ann O&#39;Neil"' in r.text and "feature/weights" in r.text
    assert f"ending in …{token[-4:]}" in unescape(r.text)
    account = ann.api("GET", "account").json()
    assert account["git_token_set"] and account["git_token_hint"] == "…" + token[-4:]
    assert token not in str(account)
    # saving again with the token field empty keeps the token; the box removes it
    r = ann.post("account", {**form, "git_token": "", "git_name": "Ann"})
    assert ann.api("GET", "account").json()["git_token_hint"] == "…" + token[-4:]
    r = ann.post("account", {**form, "git_token": "", "git_name": "Ann", "remove_token": "on"})
    assert ann.api("GET", "account").json()["git_token_set"] is False
    # the API: only the fields given change; null clears
    r = ann.api("PATCH", "account", json={"git_branch": "main", "git_token": token})
    assert r.status_code == 200 and r.json()["git_branch"] == "main"
    assert r.json()["git_name"] == "Ann" and r.json()["git_token_set"] is True
    r = ann.api("PATCH", "account", json={"git_token": None})
    assert r.json()["git_token_set"] is False


# field, bad value, words of the message
BAD_ACCOUNT = [
    ("git_name", "x" * 101, "at most 100 characters"),
    ("git_name", "Ann\rO", "control characters"),
    ("git_email", "ann-at-example.org", "e-mail address"),
    ("git_email", "a" * 250 + "@ex.org", "at most 254 characters"),
    ("git_token", "two words", "without spaces"),
    ("git_token", "t" * 256, "at most 255 characters"),
    ("git_repository", "http://git.example.org/x.git", "must start with https://"),
    ("git_repository", "https://ann:hunter2@git.example.org/x.git", "user name or password"),
    ("git_repository", "https://h/" + "p" * 2048, "at most 2048 characters"),
    ("git_repository", "javascript:alert(1)", "must start with https://"),
    ("git_branch", "feature..x", "must not contain '..'"),
    ("git_branch", "-f", "must not start with '-'"),
    ("git_branch", "x.lock", "'.lock'"),
]


@pytest.mark.parametrize(
    "field,value,words", BAD_ACCOUNT, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_ACCOUNT)]
)
def test_bad_account_fields_are_refused_naming_the_field(ben, field, value, words):
    before = ben.api("GET", "account").json()
    r = ben.post("account", {"git_name": "Ben", "git_email": "ben@example.org", field: value})
    assert r.status_code == 400
    assert words in feedback(r.text, field), feedback(r.text, field)
    assert "Nothing was saved" in alert(r.text, "portal-error")
    if field == "git_token":
        assert value not in r.text
    r = ben.api("PATCH", "account", json={field: value})
    assert r.status_code == 400
    assert r.json()["field"] == field and words in r.json()["error"]
    assert ben.api("GET", "account").json() == before


def test_the_api_refuses_what_it_does_not_know(ben):
    r = ben.api("PATCH", "account", json={"auth_state": {"admin": True}})
    assert r.status_code == 400 and r.json()["field"] == "auth_state"
    r = ben.api("PATCH", "account", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = ben.api("PATCH", "account", json=["a list"])
    assert r.status_code == 400 and r.json()["field"] == "body"


# -- XSRF ----------------------------------------------------------------------------------
CHANGES = [
    ("account", {"git_name": "Mallory"}),
    ("services", {"action": "stop", "server": ""}),
    ("configurations", {"action": "create", "name": "x", "service": "jupyter-python"}),
    ("admin", {"action": "stop", "user": ANN, "server": "lab"}),
]


@pytest.mark.parametrize("path,data", CHANGES, ids=[c[0] for c in CHANGES])
def test_every_change_needs_the_xsrf_token(ann, ben, root, path, data):
    client = root if path == "admin" else ann
    before = client.api("GET", "account").json(), client.api("GET", "configurations").json()
    for xsrf in (False, "forged-token", ben.xsrf):  # none, made up, someone else's
        r = client.post(path, data, xsrf=xsrf, allow_redirects=False)
        assert r.status_code == 403, (xsrf, r.status_code)
    after = client.api("GET", "account").json(), client.api("GET", "configurations").json()
    assert after == before


def test_api_changes_with_the_cookie_need_the_xsrf_header(ann):
    for xsrf in (False, "forged-token"):
        r = ann.api("PATCH", "account", xsrf=xsrf, json={"git_name": "Mallory"})
        assert r.status_code == 403
    assert ann.api("GET", "account").json()["git_name"] != "Mallory"
    token = ann.client.new_token(ANN)  # a token needs no XSRF: no other site can send it
    r = ann.api("PATCH", "account", token, json={"git_name": "Ann"})
    assert r.status_code == 200 and r.json()["git_name"] == "Ann"


# -- saved configurations ------------------------------------------------------------------
BAD_CONFIGURATIONS = [
    ({"name": "", "user_options": {}}, "name", "is required"),
    ({"name": "n" * 65, "user_options": {}}, "name", "at most 64"),
    ({"name": "x", "user_options": {"image": "evil/miner"}}, "user_options", "Unknown option"),
    (
        {"name": "x", "user_options": {"service": "jupyter-python", "cpu": "64"}},
        "user_options",
        "cpu: 64 cores is outside",
    ),
    (
        {"name": "x", "user_options": {"service": "teachers-only"}},
        "user_options",
        "There is no service 'teachers-only'",
    ),
    ({"name": "x", "user_options": {}, "server_name": "Bad Name"}, "server_name", "lowercase"),
    ({"name": "x"}, "user_options", "is required"),
]


@pytest.mark.parametrize("body,field,words", BAD_CONFIGURATIONS)
def test_bad_configurations_are_refused_naming_the_field(ann, body, field, words):
    r = ann.api("POST", "configurations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["error"]


def test_configurations_save_rename_and_share_a_link_that_only_prefills(ann, ben):
    r = ann.api(
        "POST",
        "configurations",
        json={
            "name": "python small",
            "server_name": "lab",
            "user_options": {"service": "jupyter-python", "cpu": "0.5", "memory": "1Gi"},
        },
    )
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["user_options"]["profile"] == "jupyter-python"  # canonical form
    assert (
        saved["description"].startswith("Jupyter Python")
        and "0.5 CPU, 1 GiB" in saved["description"]
    )
    assert saved["share_url"].startswith("/hub/spawn?opt-service=jupyter-python&opt-version=")
    assert saved["edit_url"].startswith(f"/hub/spawn/{ANN}/lab?opt-service=jupyter-python")
    # the page shows it with its full share link; renaming is a POST with XSRF
    page = ann.get("services").text
    assert f'value="{ann.client.base_url}{saved["share_url"]}"'.replace("&", "&amp;") in page
    r = ann.post("configurations", {"action": "rename", "id": saved["id"], "name": "py"})
    assert alert(r.text, "portal-done") == "The configuration is renamed."
    r = ann.api("POST", "configurations", json={"name": "py", "user_options": {}})
    assert r.status_code == 400 and "already have a configuration named 'py'" in r.json()["error"]
    r = ann.post("configurations", {"action": "rename", "id": saved["id"], "name": ""})
    assert (
        r.status_code == 400
        and alert(r.text, "portal-error") == "name: is required (1 to 64 characters)"
    )
    # someone else opening the link gets a pre-filled form, and no server
    r = ben.client.get(saved["share_url"])
    assert r.status_code == 200 and 'id="prefill-notice"' in r.text
    assert servers(ben) == {}
    # a GET never launches anything
    r = ann.get("configurations")
    assert r.url.endswith("/services/portal/services") and "lab" not in servers(ann)


def test_a_user_never_reaches_another_users_data(ann, ben):
    [mine] = ann.api("GET", "configurations").json()["configurations"]
    cid = mine["id"]
    for method, path, body in [
        ("GET", f"configurations/{cid}", None),
        ("PATCH", f"configurations/{cid}", {"name": "stolen"}),
        ("DELETE", f"configurations/{cid}", None),
        ("POST", f"configurations/{cid}/launch", {}),
    ]:
        r = ben.api(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "This configuration does not exist."
    for action in ("rename", "delete", "launch"):
        r = ben.post("configurations", {"action": action, "id": cid, "name": "stolen"})
        assert r.status_code == 404
    assert ann.api("GET", f"configurations/{cid}").json() == mine
    assert ben.api("GET", "configurations").json() == {"configurations": []}
    # the account shown is always the caller's own
    ben.api("PATCH", "account", json={"git_name": "Ben"})
    assert ann.api("GET", "account").json()["git_name"] == "Ann"
    assert "Ann" not in ben.get("account").text.split("<form")[1]
    # the admin view is for admins
    assert ben.get("admin").status_code == 403
    assert ben.api("GET", "admin/servers").status_code == 403
    assert ben.api("DELETE", f"admin/users/{ANN}/servers/lab").status_code == 403
    assert ben.post("admin", {"action": "stop", "user": ANN, "server": "lab"}).status_code == 403
    # ben's portal acts on ben's servers only: ann's server names mean nothing there
    assert ben.api("DELETE", "servers/lab").status_code == 404


def test_a_narrowed_admin_token_reaches_no_further_here(root):
    narrow = root.client.new_token("admin", scopes=["access:services!service=portal"])
    r = root.api("GET", "admin/servers", narrow)
    assert r.status_code == 403 and "'read:servers'" in r.json()["error"]
    full = root.client.new_token("admin")
    assert root.api("GET", "admin/servers", full).status_code == 200
    reader = root.client.new_token(
        "admin", scopes=["access:services!service=portal", "read:servers", "list:users"]
    )
    r = root.api("DELETE", f"admin/users/{ANN}/servers/lab", reader)
    assert r.status_code == 403 and "'delete:servers'" in r.json()["error"]


# -- My services, with real servers -----------------------------------------------------------
def test_relaunch_follow_stop_start_and_admin_stop_a_real_server(hub, ann, ben, root):
    [saved] = ann.api("GET", "configurations").json()["configurations"]
    r = ann.post(
        "configurations",
        {"action": "launch", "id": saved["id"], "server_name": "lab"},
        allow_redirects=False,
    )  # the spawn #1 of this module
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith("services?done=launched&server=lab")
    messages, statuses = [], set()
    for _ in range(120):  # the progress of a starting server, as the page polls it
        progress = ann.api("GET", "servers/lab/progress").json()
        statuses.add(progress["status"])
        messages += [e["message"] for e in progress["events"]]
        if progress["status"] == "ready":
            break
    assert "starting" in statuses and STEPS & set(messages), (statuses, messages)
    ann.client.wait_ready(ANN, "lab")
    lab = servers(ann)["lab"]
    assert (lab["service_name"], lab["cpu"], lab["memory"], lab["gpus"]) == (
        "Jupyter Python",
        "0.5",
        "1 GiB",
        0,
    )
    assert lab["status"] == "ready" and lab["started"] and lab["url"] == f"/user/{ANN}/lab/"
    r = ann.client.get(lab["url"] + "lab")  # Open: the server's OAuth hand-over, then JupyterLab
    assert r.status_code == 200 and "JupyterLab" in r.text
    page = ann.get("services").text
    assert 'data-server="lab" data-status="ready"' in page and "Servers: 1 of 2" in page
    assert f'href="/user/{ANN}/lab/"' in page
    quota = {g["label"]: g["text"] for g in ann.api("GET", "servers").json()["quota"]}
    assert quota["CPU"] == "0.5 of 8 cores" and quota["Memory"] == "1 GiB of 16 GiB"
    # save a running server's options as a new configuration, from its card
    r = ann.post("services", {"action": "save", "server": "lab", "name": "from lab"})
    assert alert(r.text, "portal-done") == "The configuration is saved."
    saved_now = {c["name"]: c for c in ann.api("GET", "configurations").json()["configurations"]}
    assert saved_now["from lab"]["user_options"] == lab["user_options"]
    assert saved_now["from lab"]["server_name"] == "lab"
    r = ann.post("services", {"action": "save", "server": "lab", "name": " "})
    assert r.status_code == 400 and alert(r.text, "portal-error").startswith("name: ")
    r = ann.post("services", {"action": "reboot", "server": "lab"})
    assert r.status_code == 400 and alert(r.text, "portal-error").startswith("action: ")
    # the hub's own refusal comes back as it is
    r = ann.api("POST", f"configurations/{saved['id']}/launch", json={"server_name": "lab"})
    assert r.status_code == 400 and "already running" in r.json()["error"]
    assert servers(ben) == {}

    # the admin view: every user's servers, filtered
    def shown(**filters):
        r = root.api("GET", "admin/servers", params=filters)
        return [(s["user"], s["name"]) for s in r.json()["servers"]]

    assert (ANN, "lab") in shown()
    assert shown(user="ann", service="jupyter-python", status="ready", gpus="no") == [(ANN, "lab")]
    assert (ANN, "lab") not in shown(gpus="yes") and (ANN, "lab") not in shown(service="jupyter-r")
    page = root.get("admin", params={"user": "portal-a"}).text
    assert f'data-user="{ANN}" data-server="lab"' in page

    # ann stops it, starts it again (spawn #2), the admin stops it, ann deletes it
    r = ann.post("services", {"action": "stop", "server": "lab"})
    assert alert(r.text, "portal-done") == "Server 'lab' is stopping."
    wait_status(ann, "lab", "stopped")
    r = ann.post("services", {"action": "start", "server": "lab"})
    assert r.status_code == 200 and alert(r.text, "portal-done") == "Server 'lab' is starting."
    ann.client.wait_ready(ANN, "lab")
    r = root.post("admin", {"action": "stop", "user": ANN, "server": "lab"})
    assert alert(r.text, "portal-done") == f"{ANN}'s server 'lab' is stopping."
    wait_status(ann, "lab", "stopped")
    r = ann.post("services", {"action": "delete", "server": ""})
    assert r.status_code == 404  # the default server was never launched: nothing to delete
    r = ann.api("DELETE", "servers/lab", json={"remove": True})
    assert r.status_code == 202
    wait_status(ann, "lab", "gone")


# -- secrets -----------------------------------------------------------------------------------
def test_the_token_is_stored_encrypted_and_shown_nowhere(hub, ann, ben, root):
    token = "glpat-" + secrets.token_urlsafe(24)
    assert ann.api("PATCH", "account", json={"git_token": token}).status_code == 200
    key_file = hub.state_dir / "hub" / "secrets" / "portal_key"
    # it is there, encrypted with the portal's key...
    store = Store(
        make_engine(f"sqlite:///{hub.state_dir}/portal/portal.sqlite"),
        FieldCrypto(read_key_file(key_file)),
    )
    assert store.git_token(ANN) == token
    store.engine.dispose()
    scanner = SecretScanner({"ann's git token": token, "portal key": key_file.read_text().strip()})
    # ...and in no byte of the database files, log, page, or command line
    findings = scanner.scan_files(hub.state_dir / "portal")
    findings += scanner.scan_logs(hub)
    pages = ["services", "account", "api/account", "api/servers", "api/configurations"]
    for client in (ann, ben, root):
        findings += scanner.scan_pages(client.client, [f"/services/portal/{p}" for p in pages])
    findings += scanner.scan_pages(
        root.client, ["/services/portal/admin", "/services/portal/api/admin/servers"]
    )
    findings += scanner.scan_command_lines()
    # the portal's environment holds the key file's path, not the key
    [portal] = [
        p
        for p in procs.processes()  # this hub's portal (other hubs run theirs)
        if p.cmdline[1:3] == ["-m", "onyxia_hub.portal"]
        and p.environ.get("ONYXIA_PORTAL_PID_FILE", "").startswith(str(hub.state_dir))
    ]
    findings += scanner.scan_text("the portal's environment", str(portal.environ))
    SecretScanner.assert_clean(findings)


def test_config_shows_the_portal_without_its_key(hub):
    result = subprocess.run(
        [str(ONYXIA_HUB), "config", "--state-dir", str(hub.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert "'command': [" in result.stdout and "onyxia_hub.portal" in result.stdout
    assert "'oauth_client_allowed_scopes': ['read:servers!user'," in result.stdout
    key = (hub.state_dir / "hub" / "secrets" / "portal_key").read_text().strip()
    assert key not in result.stdout


def test_an_operator_replacing_the_services_drops_the_portals_role(hub, tmp_path):
    operator = tmp_path / "services.py"
    operator.write_text("c = get_config()  # noqa\nc.JupyterHub.services = [{'name': 'other'}]\n")
    result = subprocess.run(
        [str(ONYXIA_HUB), "config", "--state-dir", str(hub.state_dir), "--config", str(operator)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert "onyxia-portal" not in result.stdout and "onyxia_portal_url" not in result.stdout
    assert "access:services!service=portal" not in result.stdout
