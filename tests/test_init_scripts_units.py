"""Init scripts without a hub (docs/init-scripts.md): which URLs are allowed, how a launch
names a script, and `onyxia-init` itself, run as a real process fetching real scripts
from a loopback HTTP server.

The same on a real server (as the user, before JupyterLab, the progress page, the
JupyterLab notification): tests/test_init_scripts.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.choices import ChoiceError, check
from onyxia_hub.plan import Contribution, Launcher, build_plan
from onyxia_hub.providers.base import PlanRequest
from onyxia_hub.providers.initscripts import InitScriptProvider, allowed
from onyxia_hub.spawners.k8s_objects import init_settings
from onyxia_hub.spawners.local import builders
from onyxia_hub.spawners.local.init_watch import follow, read
from onyxia_hub.spawners.local.software import Software
from tests.helpers.scriptserver import ScriptServer

CATALOG = load_catalog([default_catalog_path()])
PATTERNS = ["https://raw.githubusercontent.com/InseeFrLab/", "https://scripts.example.org/team"]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://raw.githubusercontent.com/InseeFrLab/formation/main/init.sh", True),
        ("https://scripts.example.org/team/init.sh", True),
        ("https://scripts.example.org/team", True),
        ("https://SCRIPTS.example.org/team/x.sh?v=1", True),  # host case, a query
        ("https://scripts.example.org/teammate/x.sh", False),  # not at a segment boundary
        ("http://scripts.example.org/team/x.sh", False),  # another scheme
        ("https://scripts.example.org:8443/team/x.sh", False),  # another port
        ("https://scripts.example.org.evil.net/team/x.sh", False),
        ("https://scripts.example.org/team/../other/x.sh", False),
        ("https://scripts.example.org/team/%2e%2e/other/x.sh", False),
        ("https://scripts.example.org/team%2F..%2Fother/x.sh", False),
        ("https://scripts.example.org/team/%252e%252e/other/x.sh", False),
        ("https://scripts.example.org/team/\x7f.sh", False),
        ("https://scripts.example.org/team/caf\u00e9.sh", False),
        ("https://scripts.example.org/team//x.sh", False),
        ("https://user:pw@scripts.example.org/team/x.sh", False),
        ("https://scripts.example.org/team/x.sh#frag", False),
        ("file:///team/x.sh", False),
        ("https://raw.githubusercontent.com/InseeFrLabs/x.sh", False),
    ],
)
def test_a_personal_script_must_match_an_allowed_source(url, ok):
    assert allowed(url, PATTERNS) is ok
    assert allowed(url, []) is False  # none allowed by default


def test_bad_patterns_and_settings_are_refused_with_the_reason():
    for pattern, reason in (("ftp://host/x", "https://"), ("https://host/x?y=1", "query"),
                            ("https://u:p@host/", "user name")):  # fmt: skip
        with pytest.raises(TraitError, match=reason):
            InitScriptProvider(allowed_personal_scripts=[pattern])
    with pytest.raises(TraitError, match="region_script"):
        InitScriptProvider(region_script="javascript:alert(1)")
    with pytest.raises(TraitError, match="between 1 and 3600"):
        InitScriptProvider(timeout=0)


def test_a_launch_names_a_script_with_onyxias_names_too():
    choice = check(
        {"init.personalInit": "https://scripts.example.org/team/a.sh",
         "init.personalInitArgs": "fr  fundamentals"}, CATALOG, set(),
    )  # fmt: skip
    assert (choice.init_script, choice.init_args) == (
        "https://scripts.example.org/team/a.sh",
        "fr  fundamentals",
    )
    assert choice.as_user_options()["init_script"] == choice.init_script
    for raw, message in (
        ({"init_args": "x"}, "arguments need an init script"),
        ({"init_script": "javascript:alert(1)"}, "https://"),
        ({"init_script": "https://u:secret@h/x.sh"}, "user name or password"),
        ({"init_script": "https://h/x.sh", "init_args": "a\nb"}, "one line"),
    ):
        with pytest.raises(ChoiceError, match=message) as refused:
            check(raw, CATALOG, set())
        assert "secret" not in str(refused.value)


async def test_the_provider_refuses_a_source_not_allowed_and_feeds_the_plan():
    provider = InitScriptProvider(
        config=Config({"InitScriptProvider": {
            "allowed_personal_scripts": PATTERNS, "timeout": 30,
            "region_script": "https://scripts.example.org/region.sh",
        }})
    )  # fmt: skip
    service = CATALOG.get("jupyter-python")

    def request(**options):
        choice = check({"service": "jupyter-python", **options}, CATALOG, set())
        return PlanRequest("alice", "", frozenset(), service, choice)

    with pytest.raises(ChoiceError, match="only from https://raw.githubusercontent.com/Insee"):
        await provider.contribute(request(init_script="https://evil.example.net/x.sh"))
    given = await provider.contribute(
        request(init_script="https://scripts.example.org/team/a.sh", init_args="fr x")
    )
    assert dict(given.environment) == {
        "REGION_INIT_SCRIPT": "https://scripts.example.org/region.sh",
        "ONYXIA_INIT_TIMEOUT": "30",
    }
    assert dict(given.secret_environment) == {  # the user's: may carry a token
        "PERSONAL_INIT_SCRIPT": "https://scripts.example.org/team/a.sh",
        "PERSONAL_INIT_ARGS": "fr x",
    }
    plan = build_plan(CATALOG, request().choice, Launcher("alice"), (given,))
    assert plan.init_timeout == 30
    assert build_plan(CATALOG, request().choice, Launcher("alice")).init_timeout is None
    # no region script, no personal one: nothing to run, nothing changes
    bare = InitScriptProvider(config=Config({"InitScriptProvider": {"timeout": 30}}))
    assert await bare.contribute(request()) == Contribution()
    with pytest.raises(ChoiceError, match="runs no personal init scripts .* empty the field"):
        await bare.contribute(request(init_script="https://scripts.example.org/team/a.sh"))


def test_adapters_start_the_server_through_onyxia_init_and_wait_longer():
    choice = check({"service": "jupyter-python"}, CATALOG, set())
    plain = build_plan(CATALOG, choice, Launcher("alice"))
    with_init = build_plan(CATALOG, choice, Launcher("alice"), (Contribution(init_timeout=20),))
    software = Software("python", ("/envs/python",), "3.11")
    argv = ["/envs/python/bin/python", "-m", "jupyterhub.singleuser", "--port=1"]
    assert builders.with_init_runner(argv, plain, software) == argv
    assert builders.with_init_runner(argv, with_init, software) == [
        "/envs/python/bin/python", "-s", "-P", "-m", "onyxia_git.init", "--", *argv,
    ]  # fmt: skip
    env = builders.server_environment({}, with_init, server_id="s", runtime_dir="/run/x",
                                      secrets_dir="/run/x/secrets", gpus=())  # fmt: skip
    assert env["ONYXIA_INIT_STATUS_FILE"] == "/run/x/init-status.json"
    # Kubernetes: the operator's command, wrapped; the image's own cannot be
    assert init_settings(plain, ["jupyterhub-singleuser"], 60) == {
        "cmd": ["jupyterhub-singleuser"], "http_timeout": 60,
    }  # fmt: skip
    assert init_settings(with_init, ["jupyterhub-singleuser"], 60) == {
        "cmd": ["onyxia-init", "--", "jupyterhub-singleuser"], "http_timeout": 80,
    }  # fmt: skip
    with pytest.raises(ValueError, match="singleuser.cmd"):
        init_settings(with_init, None, 60)


# -- onyxia-init, a real process ----------------------------------------------------------
@pytest.fixture
def scripts(tmp_path):
    server = ScriptServer(tmp_path / "served")
    yield server
    server.close()


def running(pid: int, wait: float = 3.0) -> bool:
    """Whether pid is a live process (a zombie, dead but not yet reaped by whoever
    adopted it, is not), after up to `wait` seconds for it to end."""
    deadline = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state == "Z":
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


def run_init(home: Path, env: dict, program: list[str], timeout=60) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], "HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-m", "onyxia_git.init", "--", *program],
        env=environ, capture_output=True, text=True, timeout=timeout, cwd=str(home),
    )  # fmt: skip


def test_onyxia_init_runs_the_scripts_with_argv_then_becomes_the_server(tmp_path, scripts):
    home = tmp_path / "home"
    home.mkdir()
    region = scripts.put("region.sh", 'echo "region ran" > "$HOME/region-ran"\n')
    personal = scripts.put(
        "allowed/course.sh",
        'printf "[%s]\\n" "$@"\necho "token-printed-by-the-script"\n'
        'cat "$HOME/region-ran"\necho "parent $PPID"\n',
    )
    program = [sys.executable, "-c", "import os; print('server pid', os.getpid())"]
    done = run_init(home, {"REGION_INIT_SCRIPT": region, "PERSONAL_INIT_SCRIPT": personal,
                           "PERSONAL_INIT_ARGS": "fr  'two words' $HOME;rm"}, program)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split("server pid ")[1])
    log = (home / ".onyxia" / "init.log").read_text()
    # split at whitespace, never through a shell: quotes, $ and ; stay as they are
    assert "[fr]\n['two]\n[words']\n[$HOME;rm]\n" in log
    assert "region ran" in log.split("personal init script")[1]  # region first
    assert f"parent {pid}" in log  # the scripts ran in the process that became the server
    assert (home / ".onyxia" / "init.log").stat().st_mode & 0o777 == 0o600
    # nothing of the scripts in the server's own output (the hub keeps it)
    assert "token-printed" not in done.stdout + done.stderr and personal not in done.stderr
    status = json.loads((home / ".onyxia" / "init-status.json").read_text())
    assert status["state"] == "done" and status["pid"] == pid


def test_a_failing_or_hanging_script_is_reported_and_the_server_starts(tmp_path, scripts):
    home = tmp_path / "home"
    home.mkdir()
    status_file = tmp_path / "status.json"
    program = [sys.executable, "-c", "print('server started')"]
    failing = scripts.put("allowed/fail.sh", "echo about to fail\nexit 3\n")
    done = run_init(home, {"PERSONAL_INIT_SCRIPT": failing,
                           "ONYXIA_INIT_STATUS_FILE": str(status_file)}, program)  # fmt: skip
    assert done.stdout == "server started\n"
    status = json.loads(status_file.read_text())
    assert status["state"] == "failed" and "exit status 3" in status["message"]
    assert "personal init script did not complete" in done.stderr
    # a script that never ends, and a child it started, are ended at the time limit
    child = tmp_path / "child.pid"
    hanging = scripts.put("allowed/hang.sh", f"sleep 30 &\necho $! > {child}\nsleep 30\n")
    started = time.monotonic()
    done = run_init(home, {"PERSONAL_INIT_SCRIPT": hanging, "ONYXIA_INIT_TIMEOUT": "2",
                           "ONYXIA_INIT_STATUS_FILE": str(status_file)}, program)  # fmt: skip
    assert done.stdout == "server started\n" and time.monotonic() - started < 15
    status = json.loads(status_file.read_text())
    assert status["state"] == "failed"
    assert "still running when the init scripts' 2 s were up" in status["message"]
    assert not running(int(child.read_text()))  # its whole process group was ended
    missing = scripts.put("allowed/ok.sh", "true\n").replace("ok.sh", "missing.sh")
    done = run_init(home, {"PERSONAL_INIT_SCRIPT": missing,
                           "ONYXIA_INIT_STATUS_FILE": str(status_file)}, program)  # fmt: skip
    assert done.stdout == "server started\n"
    assert "could not be downloaded (HTTP 404)" in json.loads(status_file.read_text())["message"]
    # a redirect is not followed (the allowed URL is not where it leads), and a URL no
    # HTTP library takes (DEL in it) is a failure, not a crash: the server starts
    elsewhere = scripts.put("other/evil.sh", "echo evil > /dev/null\n")
    redirect = scripts.put("allowed/moved.redirect", elsewhere)
    for url, said in ((redirect, "redirects elsewhere (HTTP 302)"),
                      (scripts.url + "/allowed/\x7f.sh", "could not be downloaded")):  # fmt: skip
        done = run_init(home, {"PERSONAL_INIT_SCRIPT": url,
                               "ONYXIA_INIT_STATUS_FILE": str(status_file)}, program)  # fmt: skip
        assert done.stdout == "server started\n", done.stderr
        assert "Traceback" not in done.stderr and url not in done.stderr
        assert said in json.loads(status_file.read_text())["message"]
    assert "/other/evil.sh" not in scripts.requests
    # no script at all: straight to the server, no file written
    bare = tmp_path / "bare"
    bare.mkdir()
    assert run_init(bare, {}, program).stdout == "server started\n"
    assert not (bare / ".onyxia").exists()


async def test_the_progress_page_follows_the_outcome(tmp_path):
    path = tmp_path / "init-status.json"
    said = []
    path.write_text(json.dumps({"pid": 99, "state": "failed", "message": "old start"}))
    path.write_text(json.dumps({"pid": 42, "state": "failed",
                                "message": "Your personal init script did not complete: "
                                "it failed (exit status 3). See ~/.onyxia/init.log."}))  # fmt: skip
    outcome = await follow(str(path), 42, lambda p, m: said.append(m), timeout=5)
    assert outcome["state"] == "failed"
    assert said == [
        "Your personal init script did not complete: it failed (exit status 3). "
        "See ~/.onyxia/init.log. Your server starts all the same."
    ]
    said.clear()  # a file of an earlier start (another pid) is not this start's
    assert await follow(str(path), 7, lambda p, m: said.append(m), timeout=0.6) is None
    assert said == []


def test_the_hub_reads_the_users_status_file_safely(tmp_path):
    """The file is in a directory of the user's, read by the hub (root): no link, no
    FIFO or device (a read that never ends), nothing large."""
    path = tmp_path / "init-status.json"
    path.symlink_to("/dev/zero")
    assert read(str(path), 1) is None
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    assert read(str(path), 1) is None and time.monotonic() - started < 1
    path.unlink()
    path.write_text(json.dumps({"pid": 1, "state": "done", "message": "x" * 10000}))
    assert read(str(path), 1) is None
    path.write_text(json.dumps({"pid": 1, "state": "done", "message": "ok"}))
    assert read(str(path), 1)["state"] == "done"
