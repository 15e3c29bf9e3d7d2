"""The server side of git against real git servers, without a hub: the pull, the helper.

Two HTTPS git servers (git's own http-backend, tests/helpers/gitserver.py): `forge`
hosts the user's private repository and checks their token; `elsewhere` is another
server that must never receive it. A server's environment is made as the hub and the
server extension make it (the provider's configuration file and token file in a secrets
directory, `GIT_CONFIG_SYSTEM` set by `onyxia_git.server.use_hub_git_config`), and
`onyxia-git-pull` runs as the real command. Covered: clone of a private repository,
identity and push, no credentials to another server (public and private repositories),
the token in no file, remote, output or command line; an update keeping the user's edits;
directories left alone; a target directory (a launch's `repository_dir`) and symbolic
links on its way; unknown branch and repository; the lock; the time limit; git itself
refusing other transports and submodules under the pull's settings; the credential
helper's answers; the server extension's background run and status, and its report to a
real HTTP receiver (`Receiver`: the token in the header only, no redirect followed, no
proxy, 5xx tried again).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from onyxia_git import credential
from onyxia_git.pull import DONE, FAILED, REFUSED, SKIPPED, TIMED_OUT, hardened_environment
from onyxia_git.server import (
    PullReport,
    PullStatus,
    clone_location,
    run_pull,
    use_hub_git_config,
)

from onyxia_hub.providers.git.settings import GitSettings, git_config
from tests.helpers import procs
from tests.helpers.gitserver import CertificateAuthority, GitServer, git
from tests.helpers.secrets import SecretScanner

TOKEN = "glpat-" + secrets.token_urlsafe(24)
BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("git-ca"))


@pytest.fixture(scope="module")
def forge(ca, tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("forge"), ca, token=TOKEN)
    server.create_repo("survey", {"README.md": "# Survey\n", "weights.py": "W = 1\n"},
                       private=True)  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def elsewhere(ca, tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("elsewhere"), ca)
    server.create_repo("open", {"README.md": "# Open course\n"}, private=False)
    server.create_repo("closed", {"README.md": "# Closed\n"}, private=True)
    yield server
    server.stop()


@pytest.fixture
def server_env(tmp_path, ca, forge):
    """The environment of a user's server whose token may go to `forge` only."""
    home = tmp_path / "home"
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "git").mkdir(parents=True)
    home.mkdir()
    settings = GitSettings("Ann Example", "ann@example.org", forge.url("survey"), None, TOKEN,
                           (forge.host,))  # fmt: skip
    (secrets_dir / "git" / "config").write_text(git_config(settings))
    (secrets_dir / "git" / "token").write_text(TOKEN)
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ONYXIA_HUB_SECRETS_DIR": str(secrets_dir),
        "GIT_SSL_CAINFO": str(ca.path),
        "GIT_REPOSITORY": forge.url("survey"),
    }
    use_hub_git_config(env, logging.getLogger("test"))
    return env


def pull(env, *args, **changes):
    env = {**env, **changes}
    return subprocess.run(
        [sys.executable, "-m", "onyxia_git.pull", "--work-dir", env["HOME"], *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env["HOME"],
    )


def user_git(env, *args, cwd):
    return subprocess.run(["git", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_a_private_repository_is_cloned_with_the_token_kept_out_of_git(server_env, forge):
    done = pull(server_env)
    assert done.returncode == DONE, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"Cloned {forge.url('survey')} into survey/."
    clone = Path(server_env["HOME"]) / "survey"
    assert (clone / "weights.py").read_text() == "W = 1\n"
    assert [r.password for r in forge.credentials_seen()][-1:] == [TOKEN]
    remotes = user_git(server_env, "remote", "-v", cwd=clone).stdout
    url = forge.url("survey")
    assert remotes.split() == ["origin", url, "(fetch)", "origin", url, "(push)"]
    scanner = SecretScanner({"git token": TOKEN})
    scanner.assert_clean(
        scanner.scan_files(server_env["HOME"])
        + scanner.scan_text("git remote -v", remotes)
        + scanner.scan_text("output", done.stdout + done.stderr)
        + scanner.scan_command_lines()
    )


def test_commits_carry_the_identity_and_pushes_succeed(server_env, forge):
    assert pull(server_env).returncode == DONE
    clone = Path(server_env["HOME"]) / "survey"
    (clone / "notes.md").write_text("first notes\n")
    user_git(server_env, "add", "notes.md", cwd=clone)
    committed = user_git(server_env, "commit", "-m", "Notes", cwd=clone)
    assert committed.returncode == 0, committed.stderr
    pushed = user_git(server_env, "push", cwd=clone)
    assert pushed.returncode == 0, pushed.stderr
    assert (
        forge.log("survey")[0]
        == "Ann Example <ann@example.org>|Ann Example <ann@example.org>|Notes"
    )
    # the user's own ~/.gitconfig wins over the hub's configuration (system scope)
    Path(server_env["HOME"], ".gitconfig").write_text("[user]\n\tname = Ann, her way\n")
    user_git(server_env, "commit", "--allow-empty", "-m", "Mine", cwd=clone)
    author = user_git(server_env, "log", "-1", "--format=%an <%ae>", cwd=clone).stdout.strip()
    assert author == "Ann, her way <ann@example.org>"


def test_another_server_receives_no_credentials(server_env, forge, elsewhere):
    before = len(elsewhere.requests)
    opened = pull(server_env, GIT_REPOSITORY=elsewhere.url("open"))
    assert opened.returncode == DONE, opened.stdout
    closed = pull(server_env, GIT_REPOSITORY=elsewhere.url("closed"))
    assert closed.returncode == FAILED
    assert closed.stdout.splitlines()[-1].startswith(
        f"Could not clone {elsewhere.url('closed')}: it asks for a password and none may be sent"
    )
    assert len(elsewhere.requests) > before  # it was asked, twice, and got no credentials
    assert elsewhere.credentials_seen() == []
    # git in a terminal, as the user, asks the helper for nothing there either
    user_git(server_env, "ls-remote", elsewhere.url("closed"), cwd=server_env["HOME"])
    assert elsewhere.credentials_seen() == []
    # and the helper, configured for the forge, says nothing about it
    secrets_env = {"ONYXIA_HUB_SECRETS_DIR": server_env["ONYXIA_HUB_SECRETS_DIR"]}
    ask = {"protocol": "https", "host": elsewhere.host}
    assert credential.answer(ask, [forge.host], secrets_env) == ""
    assert credential.answer({**ask, "host": forge.host}, [forge.host], secrets_env) != ""


def test_an_update_keeps_local_edits_and_brings_upstream_changes(server_env, forge):
    assert pull(server_env).returncode == DONE
    clone = Path(server_env["HOME"]) / "survey"
    (clone / "README.md").write_text("# Survey, with my notes\n")  # not committed
    (clone / "scratch.py").write_text("x = 1\n")  # untracked
    forge.commit("survey", {"data.csv": "a,b\n1,2\n", "weights.py": "W = 2\n"}, "Upstream")
    updated = pull(server_env)
    assert updated.returncode == DONE, updated.stdout
    assert updated.stdout.splitlines()[-1] == (
        f"Updated survey/ from {forge.url('survey')}; your changes are kept."
    )
    assert (clone / "README.md").read_text() == "# Survey, with my notes\n"
    assert (clone / "scratch.py").read_text() == "x = 1\n"
    assert (clone / "data.csv").exists() and (clone / "weights.py").read_text() == "W = 2\n"


def test_a_directory_that_is_not_the_clone_is_left_alone(server_env, forge, elsewhere):
    mine = Path(server_env["HOME"]) / "survey"
    mine.mkdir()
    (mine / "thesis.tex").write_text("\\begin{document}\n")
    refused = pull(server_env)
    assert refused.returncode == FAILED
    assert refused.stdout.splitlines()[-1] == (
        f"survey/ is not a git clone of {forge.url('survey')}: it was left as it is, "
        "nothing was pulled."
    )
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    # a clone of another repository under that name
    (mine / "thesis.tex").unlink()
    mine.rmdir()
    git("clone", "--quiet", str(elsewhere.bare("open")), str(mine))
    assert "is a clone of another repository" in pull(server_env).stdout
    # an empty directory of that name is cloned into
    for path in sorted(mine.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    assert pull(server_env).returncode == DONE and (mine / "README.md").exists()


def test_a_target_directory_gets_a_clone_of_its_own_and_keeps_edits(server_env, forge):
    home = Path(server_env["HOME"])
    url = forge.url("survey")
    done = pull(server_env, "--target", "courses/intro")
    assert done.returncode == DONE, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"Cloned {url} into courses/intro/."
    course = home / "courses" / "intro"
    assert (course / "README.md").exists() and not (home / "survey").exists()
    (course / "README.md").write_text("# Survey, with my notes\n")  # not committed
    forge.commit("survey", {"week2.md": "# Week 2\n"}, "Week 2")
    updated = pull(server_env, ONYXIA_GIT_TARGET="courses/intro")  # as the hub sets it
    assert updated.returncode == DONE, updated.stdout
    assert updated.stdout.splitlines()[-1] == (
        f"Updated courses/intro/ from {url}; your changes are kept."
    )
    assert (course / "README.md").read_text() == "# Survey, with my notes\n"
    assert (course / "week2.md").exists()
    # the default place is another clone: never the course's
    assert pull(server_env).returncode == DONE
    assert (home / "survey" / "README.md").read_text() == "# Survey\n"
    assert (course / "README.md").read_text() == "# Survey, with my notes\n"


def test_a_target_keeps_every_safeguard(server_env, forge, tmp_path):
    home = Path(server_env["HOME"])
    url = forge.url("survey")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "courses").symlink_to(elsewhere)  # a link on the way
    refused = pull(server_env, "--target", "courses/intro")
    assert refused.returncode == REFUSED
    assert refused.stdout == (
        "Refused to pull into courses/intro/: courses is a symbolic link; nothing was changed.\n"
    )
    (home / "mine").mkdir()
    (home / "mine" / "intro").symlink_to(elsewhere)  # the target itself
    refused = pull(server_env, ONYXIA_GIT_TARGET="mine/intro")
    assert refused.returncode == REFUSED and "mine/intro is a symbolic link" in refused.stdout
    (home / "mine" / "dangling").symlink_to(tmp_path / "nothing")
    assert pull(server_env, "--target", "mine/dangling").returncode == REFUSED
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "nothing").exists()
    (home / "notes.txt").write_text("mine\n")  # a file where a directory is needed
    refused = pull(server_env, "--target", "notes.txt/intro")
    assert refused.returncode == REFUSED and "notes.txt is not a directory" in refused.stdout
    assert (home / "notes.txt").read_text() == "mine\n"
    # a directory there that is not a clone of the URL is left alone; an empty one is used
    (home / "week" / "one").mkdir(parents=True)
    (home / "week" / "one" / "thesis.tex").write_text("\\begin{document}\n")
    left = pull(server_env, "--target", "week/one")
    assert left.returncode == FAILED and left.stdout.splitlines()[-1] == (
        f"week/one/ is not a git clone of {url}: it was left as it is, nothing was pulled."
    )
    (home / "week" / "two").mkdir()
    assert pull(server_env, "--target", "week/two").returncode == DONE
    assert (home / "week" / "two" / "README.md").exists()
    # a target outside the rule is refused before anything is made
    bad = pull(server_env, "--target", "../outside")
    assert bad.returncode == REFUSED and bad.stdout.startswith(
        "Refused the target directory '../outside': it no part between slashes"
    )
    assert not (home.parent / "outside").exists()


def test_unknown_branches_and_repositories_fail_with_clear_messages(server_env, forge):
    branch = pull(server_env, GIT_BRANCH="no-such-branch")
    assert branch.returncode == FAILED
    assert branch.stdout.splitlines()[-1] == (
        f"Could not clone {forge.url('survey')} (branch no-such-branch): "
        "the branch no-such-branch does not exist there."
    )
    missing = pull(server_env, GIT_REPOSITORY=forge.url("missing"))
    assert missing.returncode == FAILED
    assert "Could not clone" in missing.stdout and "Traceback" not in missing.stdout
    assert not (Path(server_env["HOME"]) / "missing").exists()


def test_two_pulls_of_one_repository_never_run_together(server_env, tmp_path):
    cache = tmp_path / "cache"
    env = dict(server_env, XDG_CACHE_HOME=str(cache))
    assert pull(env).returncode == DONE
    (lock_file,) = (cache / "onyxia-git" / "locks").iterdir()
    with open(lock_file) as held:  # a pull of the same directory is running
        fcntl.flock(held, fcntl.LOCK_EX)
        skipped = pull(env)
    assert skipped.returncode == SKIPPED
    assert skipped.stdout == "survey/ is being cloned or updated by another start: skipped.\n"
    assert pull(env).returncode == DONE


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in accepted:
        connection.close()


def test_a_stalled_clone_is_stopped_at_the_time_limit(server_env, silent_server):
    url = f"https://127.0.0.1:{silent_server}/stalled.git"
    started = time.monotonic()
    stopped = pull(server_env, "--timeout", "2", GIT_REPOSITORY=url)
    assert stopped.returncode == TIMED_OUT
    assert time.monotonic() - started < 20
    assert stopped.stdout.splitlines()[-1] == (
        f"Stopped cloning {url} after 2 s: the server works without it."
    )
    time.sleep(0.5)
    assert not [p for p in procs.processes() if any("stalled.git" in a for a in p.cmdline)]


def test_git_refuses_other_transports_and_submodules_under_the_pulls_settings(
    server_env, forge, elsewhere, tmp_path
):
    env = hardened_environment(server_env, ("https",))
    for url in (f"file://{elsewhere.bare('open')}", str(elsewhere.bare("open")),
                "ext::sh -c true"):  # fmt: skip
        refused = user_git(env, "clone", "--", url, str(tmp_path / "x"), cwd=tmp_path)
        assert refused.returncode != 0 and "not allowed" in refused.stderr, refused.stderr
    # a repository naming a submodule on another server: never fetched, whatever the user's
    # own configuration says
    sha = forge.commit("survey", {".gitmodules": (
        f'[submodule "lib"]\n\tpath = lib\n\turl = {elsewhere.url("open")}\n'
    )}, "Add a submodule")  # fmt: skip
    work = tmp_path / "sub"
    git("clone", "--quiet", str(forge.bare("survey")), str(work))
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},lib", cwd=work)
    git("commit", "--quiet", "-m", "Link lib", cwd=work)
    git("push", "--quiet", str(forge.bare("survey")), "HEAD:main", cwd=work)
    Path(server_env["HOME"], ".gitconfig").write_text("[submodule]\n\trecurse = true\n")
    before = len(elsewhere.requests)
    assert pull(server_env).returncode == DONE
    assert pull(server_env).returncode == DONE  # the update, too
    assert len(elsewhere.requests) == before
    assert not any((Path(server_env["HOME"]) / "survey" / "lib").iterdir())


# -- the credential helper -----------------------------------------------------------------
def test_the_helper_answers_only_over_https_for_its_hosts(tmp_path):
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "token").write_text(TOKEN + "\n")
    env = {"ONYXIA_HUB_SECRETS_DIR": str(tmp_path)}
    hosts = ["git.example.org", "127.0.0.1:8443"]
    ask = lambda **request: credential.answer(request, hosts, env)  # noqa: E731
    assert ask(protocol="https", host="git.example.org") == f"username=oauth2\npassword={TOKEN}\n"
    assert ask(protocol="https", host="git.example.org:443", username="ann").startswith(
        "username=ann\n"
    )
    assert ask(protocol="https", host="127.0.0.1:8443") != ""
    for request in (
        {"protocol": "http", "host": "git.example.org"},
        {"protocol": "ssh", "host": "git.example.org"},
        {"protocol": "https", "host": "git.example.org.evil.example"},
        {"protocol": "https", "host": "127.0.0.1:8444"},
        {"protocol": "https", "host": "127.0.0.1"},
        {"protocol": "https"},
        {"host": "git.example.org"},
    ):
        assert ask(**request) == "", request
    assert credential.answer({"protocol": "https", "host": "git.example.org"}, hosts, {}) == ""


def test_the_helper_stores_and_erases_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for action in ("store", "erase", "get"):
        done = subprocess.run(
            [f"{BIN}/git-credential-onyxia", "--host=git.example.org", action],
            input=f"protocol=https\nhost=git.example.org\nusername=u\npassword={TOKEN}\n\n",
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not any(home.iterdir())


# -- the server extension ------------------------------------------------------------------
def test_the_extension_runs_the_pull_in_the_background_and_keeps_its_status(
    server_env, forge, caplog
):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("jupyter-server")
    status = PullStatus()
    thread = threading.Thread(target=run_pull, args=(status, server_env["HOME"], log, server_env))
    thread.start()
    thread.join(120)
    data = status.as_json()
    assert data["state"] == "done" and data["message"].startswith("Cloned ")
    assert data["repository"] == forge.url("survey") and data["finished"] >= data["started"]
    assert f"onyxia-git: Cloning {forge.url('survey')} into survey/" in caplog.text
    assert "onyxia-git: Cloned" in caplog.text
    json.dumps(data)
    failed = PullStatus()
    run_pull(failed, server_env["HOME"], log, dict(server_env, GIT_BRANCH="nope"))
    assert failed.state == "failed" and "does not exist there" in failed.message
    refused = PullStatus()
    run_pull(refused, server_env["HOME"], log, dict(server_env, GIT_REPOSITORY="file:///etc"))
    assert refused.state == "refused"


def test_the_extension_points_git_at_the_hubs_configuration(tmp_path):
    env = {"ONYXIA_HUB_SECRETS_DIR": str(tmp_path)}
    assert use_hub_git_config(env, logging.getLogger("t")) is None  # no file: untouched
    assert "GIT_CONFIG_SYSTEM" not in env
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "config").write_text("[user]\n\tname = X\n")
    assert use_hub_git_config(env, logging.getLogger("t")) == str(tmp_path / "git" / "config")
    assert env["GIT_CONFIG_SYSTEM"] == str(tmp_path / "git" / "config")
    assert use_hub_git_config({}, logging.getLogger("t")) is None
    assert os.environ.get("GIT_CONFIG_SYSTEM") != env["GIT_CONFIG_SYSTEM"]


# -- the pull's report (ONYXIA_GIT_REPORT_URL) --------------------------------------------------
SERVER_TOKEN = "jhs-" + secrets.token_hex(16)  # the server's JupyterHub API token
REPORT_PATH = "/services/courses/api/pull-status"


class Receiver:
    """A real HTTP server in a thread: records each request (path, headers, JSON body) and
    answers with `answers` in order ((status, headers)), then 204."""

    def __init__(self, answers=()):
        self.requests: list[SimpleNamespace] = []
        self.answers = list(answers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    SimpleNamespace(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        json=json.loads(body) if body else None,
                    )
                )
                status, headers = receiver.answers.pop(0) if receiver.answers else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path=REPORT_PATH) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    """Receiver(...) makers; every receiver made is stopped at the end."""
    made: list[Receiver] = []

    def make(answers=()):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


def report_to(receiver, server_name="intro", repository_dir="courses/intro") -> PullReport:
    return PullReport(receiver.url(), SERVER_TOKEN, server_name, repository_dir)


def a_status() -> PullStatus:
    return PullStatus(state="done", id="1785000000.123", message="Cloned it.")


def test_the_pull_reports_its_start_and_its_end_with_the_servers_token(
    server_env, forge, receivers, caplog
):
    caplog.set_level(logging.INFO)
    receiver = receivers()
    env = dict(
        server_env,
        ONYXIA_GIT_REPORT_URL=receiver.url(),
        ONYXIA_GIT_TARGET="courses/intro",
        JUPYTERHUB_API_TOKEN=SERVER_TOKEN,
        JUPYTERHUB_SERVER_NAME="intro",
    )
    status = PullStatus()
    run_pull(status, server_env["HOME"], logging.getLogger("jupyter-server"), env)
    assert status.state == "done"
    url = forge.url("survey")
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", REPORT_PATH)] * 2
    for request in receiver.requests:
        assert request.headers["authorization"] == f"token {SERVER_TOKEN}"
        assert request.headers["content-type"] == "application/json"
    assert [r.json for r in receiver.requests] == [
        {
            "server": "intro",
            "id": status.id,
            "state": "running",
            "message": "Getting your git repository ready",
            "repository_dir": "courses/intro",
        },
        {
            "server": "intro",
            "id": status.id,
            "state": "done",
            "message": f"Cloned {url} into courses/intro/.",
            "repository_dir": "courses/intro",
        },
    ]
    assert (Path(server_env["HOME"]) / "courses" / "intro" / "README.md").exists()
    assert SERVER_TOKEN not in caplog.text
    # the default server, its repository in the default place; a refused pull is reported
    refused = Receiver()
    try:
        env = dict(server_env, ONYXIA_GIT_REPORT_URL=refused.url(),
                   JUPYTERHUB_API_TOKEN=SERVER_TOKEN, GIT_BRANCH="--x")  # fmt: skip
        run_pull(PullStatus(), server_env["HOME"], logging.getLogger("t"), env)
    finally:
        refused.stop()
    assert [(r.json["server"], r.json["state"], r.json["repository_dir"])
            for r in refused.requests] == [("", "running", "survey"),
                                           ("", "refused", "survey")]  # fmt: skip


def test_where_the_report_says_the_clone_is():
    url = "https://git.example.org/team/survey.git"
    env = {"GIT_REPOSITORY": url}
    assert clone_location(env, "/home/ann", "/home/ann") == "survey"
    assert clone_location(env | {"ONYXIA_GIT_TARGET": "courses/intro"}, "/home/ann",
                          "/home/ann") == "courses/intro"  # fmt: skip
    assert clone_location(env, "/home/ann/work", "/home/ann") == "work/survey"
    assert clone_location(env, "work", "/home/ann") == "work/survey"  # relative to the root
    assert clone_location(env, "/srv/shared", "/home/ann") == "/srv/shared/survey"
    assert clone_location(env | {"ONYXIA_GIT_TARGET": "../x"}, "/home/ann", "/home/ann") == ""
    assert clone_location({}, "/home/ann", "/home/ann") == ""


def test_a_redirect_is_not_followed_and_no_proxy_is_used(receivers, monkeypatch, caplog):
    elsewhere = receivers()
    receiver = receivers([(302, {"Location": elsewhere.url("/collect")})])
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, elsewhere.url("/"))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert report_to(receiver).send(a_status(), logging.getLogger("t"), backoff=0.01) is False
    assert len(receiver.requests) == 1  # not tried again: a 3xx is no passing failure
    assert elsewhere.requests == []  # neither the redirect's target nor the proxy
    (record,) = [r for r in caplog.records if "onyxia-git" in r.getMessage()]
    assert record.getMessage() == (
        "onyxia-git: the pull's status (done) was not reported to "
        f"127.0.0.1:{receiver.server.server_address[1]}: HTTP 302"
    )


def test_a_5xx_is_tried_again_and_a_4xx_is_not(receivers, caplog):
    log = logging.getLogger("t")
    flaky = receivers([(500, {}), (503, {})])
    assert report_to(flaky).send(a_status(), log, backoff=0.01) is True
    assert len(flaky.requests) == 3
    body = {"server": "intro", "id": "1785000000.123", "state": "done", "message": "Cloned it.",
            "repository_dir": "courses/intro"}  # fmt: skip
    assert [r.json for r in flaky.requests] == [body] * 3
    down = receivers([(500, {})] * 3)
    assert report_to(down).send(a_status(), log, backoff=0.01) is False
    assert len(down.requests) == 3
    refused = receivers([(403, {})])
    assert report_to(refused).send(a_status(), log, backoff=0.01) is False
    assert len(refused.requests) == 1
    lines = [r.getMessage() for r in caplog.records if "onyxia-git" in r.getMessage()]
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["HTTP 500", "HTTP 403"]
    assert SERVER_TOKEN not in caplog.text


def test_an_unreachable_receiver_costs_one_log_line_without_the_token(caplog):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]  # closed when the block ends: nothing listens
    report = PullReport(f"http://127.0.0.1:{port}{REPORT_PATH}", SERVER_TOKEN, "intro")
    started = time.monotonic()
    assert report.send(a_status(), logging.getLogger("t"), backoff=0.01) is False
    assert time.monotonic() - started < 5
    (record,) = [r for r in caplog.records if "onyxia-git" in r.getMessage()]
    assert record.getMessage().startswith(
        f"onyxia-git: the pull's status (done) was not reported to 127.0.0.1:{port}: "
    )
    assert "Connection refused" in record.getMessage()
    assert SERVER_TOKEN not in caplog.text and SERVER_TOKEN not in repr(report)


def test_no_report_without_a_valid_url_or_a_token(caplog):
    log = logging.getLogger("t")
    env = {"GIT_REPOSITORY": "https://git.example.org/team/survey.git",
           "JUPYTERHUB_API_TOKEN": SERVER_TOKEN}  # fmt: skip
    assert PullReport.from_environment(env, "/home/ann", "/home/ann", log) is None
    bad = env | {"ONYXIA_GIT_REPORT_URL": "https://ann:s3cr3t@hub.example.org/x"}
    assert PullReport.from_environment(bad, "/home/ann", "/home/ann", log) is None
    assert "must not contain a user name or password" in caplog.text
    assert "s3cr3t" not in caplog.text
    good = {"ONYXIA_GIT_REPORT_URL": f"http://127.0.0.1:8000{REPORT_PATH}"}
    assert PullReport.from_environment(env | good, "/h", "/h", log) == PullReport(
        f"http://127.0.0.1:8000{REPORT_PATH}", SERVER_TOKEN, "", "survey"
    )
    tokenless = {k: v for k, v in env.items() if k != "JUPYTERHUB_API_TOKEN"} | good
    assert PullReport.from_environment(tokenless, "/h", "/h", log) is None
    assert "no JUPYTERHUB_API_TOKEN" in caplog.text
