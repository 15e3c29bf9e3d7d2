"""The server side of git against real git servers, without a hub: the pull, the helper.

Two HTTPS git servers (git's own http-backend, tests/helpers/gitserver.py): `forge`
hosts the user's private repository and checks their token; `elsewhere` is another
server that must never receive it. A server's environment is made as the hub and the
server extension make it (the provider's configuration file and token file in a secrets
directory, `GIT_CONFIG_SYSTEM` set by `onyxia_git.server.use_hub_git_config`), and
`onyxia-git-pull` runs as the real command. Covered: clone of a private repository,
identity and push, no credentials to another server (public and private repositories),
the token in no file, remote, output or command line; an update keeping the user's edits;
directories left alone; unknown branch and repository; the lock; the time limit; git
itself refusing other transports and submodules under the pull's settings; the
credential helper's answers; the server extension's background run and status.
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
from pathlib import Path

import pytest
from onyxia_git import credential
from onyxia_git.pull import DONE, FAILED, SKIPPED, TIMED_OUT, hardened_environment
from onyxia_git.server import PullStatus, run_pull, use_hub_git_config

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
