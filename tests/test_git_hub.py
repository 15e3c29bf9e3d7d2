"""Git in real servers of the embedded hub: identity, token, repository, notifications.

Two HTTPS git servers run git's own http-backend (tests/helpers/gitserver.py): `forge`
hosts git-ann's private repository and checks her personal access token; `elsewhere`
hosts a course anyone may clone, and a private repository, and must never receive her
token. The session hub has the git provider (tests/conftest.py) and its servers trust the
servers' CA through `c.GitProvider.git_config` (`http.sslCAInfo`), as docs/git.md says.
git-ann saves her git settings through the portal's API.

Four real spawns (about a CPU-second and 130 MiB each):

1. her default server: her repository is cloned at start; a commit made in a kernel
   carries her identity and is pushed; the token is a private file in memory and
   appears nowhere else (`.git/config`, `git remote -v`, any process's environment or
   command line, the hub's and servers' logs, pages, her home);
2. the same server relaunched: her uncommitted edits are kept, upstream changes merged;
3. a server whose repository a link named (pre-filling the form, started with Launch):
   cloned from `elsewhere`, which received no credentials;
4. a server whose repository cannot be cloned: it starts and works all the same, the
   failure is in its log and, in Debian's chromium, in JupyterLab's notifications.

Before any of them, the table of hostile URLs goes through the REST API: every one is
refused with a 400 and neither git server hears a thing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from urllib.parse import urlencode

import pytest

from tests.conftest import GIT_TEST_CA
from tests.helpers import procs
from tests.helpers.browser import launch_chromium, new_page
from tests.helpers.gitserver import CertificateAuthority, GitServer
from tests.helpers.hostile import HOSTILE_REPOSITORIES
from tests.helpers.kernels import Kernel
from tests.helpers.secrets import SecretScanner

USER = "git-ann"
TOKEN = "glpat-" + secrets.token_urlsafe(24)
SMALL = {"service": "jupyter-python", "cpu": 0.5, "memory": "1Gi"}
FOUND: dict = {}  # what the first server showed, for the scans of later tests


@pytest.fixture(scope="module")
def ca(test_catalog, tmp_path_factory):
    """The test CA, where the session hub's servers look for it (GIT_SSL_CAINFO)."""
    directory = tmp_path_factory.mktemp("git-ca")
    return CertificateAuthority(directory, path=test_catalog.parent / GIT_TEST_CA)


@pytest.fixture(scope="module")
def forge(ca, tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("forge"), ca, token=TOKEN)
    server.create_repo("survey", {"README.md": "# Survey\n"}, private=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def elsewhere(ca, tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("elsewhere"), ca)
    server.create_repo("course", {"lesson-1.md": "# Lesson 1\n"}, private=False)
    server.create_repo("closed", {"README.md": "# Closed\n"}, private=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ann(make_user, portal_client, forge):
    client = make_user(USER)
    settings = {
        "git_name": "Ann Example",
        "git_email": "ann@example.org",
        "git_token": TOKEN,
        "git_repository": forge.url("survey"),
        "git_branch": "main",
    }
    r = portal_client(client).api("PATCH", "account", json=settings)
    assert r.status_code == 200, r.text
    client.token = client.new_token(USER)
    return client


def start(client, server: str = "", **options) -> None:
    path = f"/users/{USER}/servers/{server}" if server else f"/users/{USER}/server"
    r = client.api("POST", path, json={"user_options": {**SMALL, **options}})
    assert r.status_code in (201, 202), r.text
    client.wait_ready(USER, server)


def pull_status(client, server: str = "", timeout: float = 90) -> dict:
    """The server's pull status once it is no longer running."""
    prefix = f"/user/{USER}/{server + '/' if server else ''}"
    deadline = time.monotonic() + timeout
    while True:
        r = client.session.get(
            client.url(prefix + "onyxia-git/status"),
            headers={"Authorization": f"token {client.token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        status = r.json()
        if status["state"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


def in_kernel(client, code: str, server: str = "") -> dict:
    with Kernel(client, USER, token=client.token, server=server) as kernel:
        execution = kernel.run(code, timeout=120).check()
    return json.loads(execution.stdout.strip().splitlines()[-1])


GIT_IN_KERNEL = r"""
import json, os, subprocess
here = os.path.expanduser("~/survey")
def git(*args):
    r = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True)
    return [r.returncode, r.stdout, r.stderr]
out = {"config_system": os.environ.get("GIT_CONFIG_SYSTEM"), "env": dict(os.environ)}
with open(os.path.join(here, "analysis.py"), "w") as f:
    f.write("print('weights')\n")
out["add"] = git("add", "analysis.py")
out["commit"] = git("commit", "-m", "Analysis from the datalab")
out["push"] = git("push")
out["remote"] = git("remote", "-v")
with open(os.path.join(here, "README.md"), "w") as f:
    f.write("# Survey, with my notes\n")   # left uncommitted: the relaunch keeps it
print(json.dumps(out))
"""


def server_log(hub, server: str = "") -> str:
    return (hub.state_dir / "logs" / "servers" / USER / f"{server or 'default'}.log").read_text()


# -- bad input, at the hub ------------------------------------------------------------------
def test_hostile_repositories_are_refused_before_any_git_runs(hub, ann, forge, elsewhere):
    heard = len(forge.requests), len(elsewhere.requests)
    for i, case in enumerate(HOSTILE_REPOSITORIES):
        r = ann.api(
            "POST", f"/users/{USER}/servers/h{i}", json={"user_options": {"repository": case.url}}
        )
        assert r.status_code == 400, (case.id, r.text)
        assert case.message in r.json()["message"], (case.id, r.json()["message"])
        ann.api("DELETE", f"/users/{USER}/servers/h{i}", json={"remove": True})
    r = ann.get("/hub/spawn?" + urlencode({"opt-repository": "ext::sh -c id"}))
    assert "repository: the URL must not contain spaces" in r.text
    assert (len(forge.requests), len(elsewhere.requests)) == heard
    assert not procs.user_servers(USER) and hub.api_ready()


# -- 1. identity, token, clone, commit, push ----------------------------------------------------
def test_a_server_starts_with_the_users_identity_token_and_repository(hub, ann, forge):
    start(ann)
    status = pull_status(ann)
    assert status["state"] == "done", status
    assert status["message"] == f"Cloned {forge.url('survey')} (branch main) into survey/."
    [server] = procs.user_servers(USER)
    env = server.environ
    assert {
        k: env.get(k) for k in ("GIT_USER_NAME", "GIT_USER_MAIL", "GIT_REPOSITORY", "GIT_BRANCH")
    } == {  # fmt: skip
        "GIT_USER_NAME": "Ann Example",
        "GIT_USER_MAIL": "ann@example.org",
        "GIT_REPOSITORY": forge.url("survey"),
        "GIT_BRANCH": "main",
    }
    assert "GIT_PERSONAL_ACCESS_TOKEN" not in env  # the operator did not opt in
    token_file = os.path.join(env["ONYXIA_HUB_SECRETS_DIR"], "git", "token")
    info = os.stat(token_file)
    assert token_file.startswith("/dev/shm/") and info.st_uid == server.uid
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(token_file))).st_mode) == 0o700

    out = in_kernel(ann, GIT_IN_KERNEL)
    assert out["config_system"] == os.path.join(env["ONYXIA_HUB_SECRETS_DIR"], "git", "config")
    assert out["commit"][0] == 0 and out["push"][0] == 0, out
    assert forge.log("survey")[0] == (
        "Ann Example <ann@example.org>|Ann Example <ann@example.org>|Analysis from the datalab"
    )
    assert {r.password for r in forge.credentials_seen()} == {TOKEN}
    assert f"onyxia-git: Cloned {forge.url('survey')}" in server_log(hub)
    FOUND.update(remote=out["remote"][1], kernel_env=out["env"])


def test_the_token_appears_nowhere_else(hub, admin, ann, portal_client):
    assert FOUND, "needs the server of the previous test"
    assert FOUND["remote"].split()[:2] == ["origin", FOUND["kernel_env"]["GIT_REPOSITORY"]]
    home = hub.state_dir / "homes" / USER
    scanner = SecretScanner({"git token": TOKEN})
    findings = scanner.scan_files(home)  # .git/config among them
    findings += scanner.scan_text("git remote -v", FOUND["remote"])
    findings += scanner.scan_objects("a kernel's environment", FOUND["kernel_env"])
    findings += scanner.scan_environments()  # every process, her server's included
    findings += scanner.scan_command_lines()
    findings += scanner.scan_logs(hub)
    findings += scanner.scan_pages(ann, ["/hub/home", "/hub/spawn", "/services/portal/account"])
    findings += scanner.scan_pages(admin, ["/hub/admin", "/services/portal/admin"])
    findings += scanner.scan_objects("her hub model", admin.api("GET", f"/users/{USER}").json())
    findings += scanner.scan_objects(
        "the portal's API", portal_client(ann).api("GET", "account").json()
    )
    SecretScanner.assert_clean(findings)
    assert (home / "survey" / ".git" / "config").exists()


# -- 2. a relaunch keeps local edits -----------------------------------------------------------
def test_a_relaunch_keeps_local_edits_and_brings_upstream_changes(hub, admin, ann, forge):
    forge.commit("survey", {"data/sample.csv": "id,w\n1,0.5\n"}, "Upstream sample")
    admin.stop_server(USER)
    start(ann)
    status = pull_status(ann)
    assert status["state"] == "done", status
    assert status["message"] == (
        f"Updated survey/ from {forge.url('survey')} (branch main); your changes are kept."
    )
    clone = hub.state_dir / "homes" / USER / "survey"
    assert (clone / "README.md").read_text() == "# Survey, with my notes\n"
    assert (clone / "analysis.py").exists() and (clone / "data" / "sample.csv").exists()
    admin.stop_server(USER)


# -- 3. a repository named by a link ------------------------------------------------------------
def test_a_repository_named_by_a_link_is_cloned_and_gets_no_credentials(hub, admin, ann, elsewhere):
    course = elsewhere.url("course")
    link = "/hub/spawn/git-ann/course?" + urlencode(
        {"opt-repository": course, "opt-branch": "main"}
    )
    page = ann.get(link).text
    assert 'id="prefill-notice"' in page and not procs.user_servers(USER, "course")
    assert re.search(r'<label[^>]*for="repository"', page) and f'value="{course}"' in page
    r = ann.post_form(
        "/hub/spawn/git-ann/course",
        {"service": "jupyter-python", "cpu--jupyter-python": "0.5",
         "memory--jupyter-python": "1Gi", "repository": course, "branch": "main"},
        allow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 302, r.text[-500:]
    ann.wait_ready(USER, "course")
    try:
        status = pull_status(ann, "course")
        assert status["message"] == f"Cloned {course} (branch main) into course/.", status
        assert elsewhere.requests and elsewhere.credentials_seen() == []
        model = ann.api("GET", f"/users/{USER}").json()["servers"]["course"]
        assert model["user_options"]["repository"] == course  # what a restart reuses
    finally:
        admin.stop_server(USER, "course")


# -- 4. a failed clone ----------------------------------------------------------------------
@pytest.mark.browser
def test_a_failed_clone_leaves_the_server_usable_and_tells_the_user(hub, admin, ann, elsewhere):
    closed = elsewhere.url("closed")
    start(ann, "broken", repository=closed)
    try:
        status = pull_status(ann, "broken")
        assert status["state"] == "failed", status
        assert status["message"].startswith(
            f"Could not clone {closed}: it asks for a password and none may be sent there"
        )
        assert elsewhere.credentials_seen() == []
        with Kernel(ann, USER, token=ann.token, server="broken") as kernel:
            assert kernel.run("6 * 7").result == "42"  # the server works
        assert f"onyxia-git: Could not clone {closed}" in server_log(hub, "broken")

        with launch_chromium() as browser:
            page = new_page(browser, base_url=hub.url)
            page.goto("/hub/login")
            page.locator("#username_input").fill(USER)
            page.locator("#password_input").fill(ann.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/hub/login" not in url)
            page.goto(f"/user/{USER}/broken/lab")
            toast = page.locator(".Toastify__toast", has_text="Could not clone")
            toast.wait_for(timeout=60_000)
            assert f"Could not clone {closed}" in toast.inner_text()
            page.context.close()
    finally:
        admin.stop_server(USER, "broken")
