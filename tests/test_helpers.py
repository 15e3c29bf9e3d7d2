"""The shared test helpers do what later tests rely on.

- `kernels`: code runs in a real kernel of a real user server, through the hub's proxy; outputs,
  results, errors, kept state, time-outs and a killed kernel are each reported as such.
- `secrets`: a planted secret is found in files, encodings, processes, logs, pages and objects,
  and is reported by label and place, never by value.

One user server is spawned for the whole module.
"""

from __future__ import annotations

import base64
import html
import os
import pwd
import secrets as random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.helpers.kernels import Kernel, KernelDied, KernelTimeout, run_code
from tests.helpers.secrets import Finding, SecretScanner

USER = "kernel-user"


# -- kernels ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def user(hub, admin, make_user):
    client = make_user(USER)
    admin.start_server(USER)
    yield client
    admin.stop_server(USER)


@pytest.fixture(scope="module")
def kernel(user):
    with Kernel(user, USER) as kernel:
        yield kernel


def test_run_code_runs_once_in_a_new_kernel_then_deletes_it(user):
    token = user.new_token(USER)
    execution = run_code(user, USER, "print(1+1)", token=token)
    assert execution.ok and execution.stdout == "2\n"
    assert execution.result is None and execution.stderr == ""
    kernels = requests.get(
        user.url(f"/user/{USER}/api/kernels"),
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert kernels.status_code == 200 and kernels.json() == []


def test_outputs_results_and_errors(kernel):
    assert kernel.run("6 * 7").result == "42"
    streams = kernel.run("import sys; print('out'); print('err', file=sys.stderr)")
    assert (streams.stdout, streams.stderr) == ("out\n", "err\n")
    shown = kernel.run("from IPython.display import display; display('shown'); 'last'")
    assert shown.displays == ["'shown'"] and shown.result == "'last'"

    failed = kernel.run("1/0")
    assert not failed.ok and failed.error.ename == "ZeroDivisionError"
    assert failed.error.evalue == "division by zero"
    assert "1/0" in failed.error.text and "\x1b[" not in failed.error.text
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        failed.check()


def test_one_kernel_keeps_its_state_and_sees_the_server_environment(kernel):
    kernel.run("counter = 40").check()
    kernel.run("counter += 2").check()
    assert kernel.run("counter").result == "42"
    env = kernel.run('import os; print(os.environ["JUPYTERHUB_USER"])')
    assert env.stdout == f"{USER}\n"


def test_a_time_out_names_the_code_and_interrupts_the_kernel(kernel):
    started = time.monotonic()
    with pytest.raises(KernelTimeout, match=r"time.sleep\(30\).*python3.*kernel-user"):
        kernel.run("import time; time.sleep(30)", timeout=1)
    assert time.monotonic() - started < 5
    # interrupted, not stuck: the next code runs at once (the interrupted run's own outputs,
    # still arriving, are not mistaken for this one's)
    assert kernel.run("'after'", timeout=10).result == "'after'"


def test_a_killed_kernel_raises_kernel_died_not_a_time_out(user):
    with Kernel(user, USER) as kernel:
        kernel.run("state = 'kept'").check()
        started = time.monotonic()
        with pytest.raises(KernelDied, match="kernel died while running") as died:
            kernel.run(
                "import os, signal, time; print('dying', flush=True); time.sleep(0.2)\n"
                "os.kill(os.getpid(), signal.SIGKILL)",
                timeout=30,
            )
        assert time.monotonic() - started < 10
        assert died.value.execution.stdout == "dying\n"  # what it printed until then
        # the server restarted it, fresh: the same Kernel reconnects and runs code again
        assert kernel.run("'state' in dir()", timeout=30).result == "False"


# -- secrets ---------------------------------------------------------------------------------
@pytest.fixture
def secret() -> str:
    return "s3cr3t-" + random.token_urlsafe(18)


def assert_hidden(value: str, findings: list[Finding]) -> None:
    """The findings, their repr and assert_clean's message all omit the value itself."""
    assert findings
    assert value not in str(findings) and value not in repr(findings)
    with pytest.raises(AssertionError) as failure:
        SecretScanner.assert_clean(findings)
    assert value not in str(failure.value) and "secret leak" in str(failure.value)


def test_scanner_finds_a_secret_in_files_and_dotfiles_by_line(tmp_path, secret):
    scanner = SecretScanner({"git token": secret})
    (tmp_path / "notes.txt").write_text(f"one\ntwo\nthe token is {secret}, keep it\n")
    config = tmp_path / "home" / "project" / ".git" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(f'[remote "origin"]\n\turl = https://bob:{secret}@git.example/x.git\n')
    (tmp_path / "clean.txt").write_text("nothing to see\n")

    findings = scanner.scan_files(tmp_path)
    assert {f.where for f in findings} == {
        f"file {tmp_path / 'notes.txt'} line 3",
        f"file {config} line 2",
    }
    assert all(f.secret_label == "git token" and f.form == "plain" for f in findings)
    assert "<git token>" in findings[0].context
    assert_hidden(secret, findings)
    assert scanner.scan_files([config]) and not scanner.scan_files(tmp_path / "clean.txt")
    with pytest.raises(FileNotFoundError):
        scanner.scan_files(tmp_path / "missing")


@pytest.mark.parametrize("prefix", ["", "a", "ab"], ids=["aligned", "shift-1", "shift-2"])
def test_scanner_finds_base64_at_any_alignment(secret, prefix):
    encoded = base64.b64encode(f"{prefix}password={secret}&x=1".encode()).decode()
    findings = SecretScanner({"pw": secret}).scan_text("a data URI", f"data:;base64,{encoded}")
    assert [(f.where, f.form) for f in findings] == [("a data URI", "base64")]
    urlsafe = encoded.replace("+", "-").replace("/", "_")
    assert SecretScanner({"pw": secret}).scan_text("url", urlsafe)
    assert_hidden(secret, findings)


def test_scanner_finds_url_encoded_and_escaped_forms():
    value = "p@ss/w0rd+x?y&z<" + random.token_hex(4)
    scanner = SecretScanner({"password": value})
    found = scanner.scan_text("redirect", f"/login?next=/x&password={quote(value, safe='')}")
    assert [f.form for f in found] == ["url"]
    assert [f.form for f in scanner.scan_text("page", html.escape(value))] == ["html"]
    assert_hidden(value, found)
    assert quote(value, safe="") not in str(found)


def test_scanner_reports_nothing_for_unrelated_text(secret):
    scanner = SecretScanner({"token": secret})
    text = "INFO 200 GET /hub/home\n" + secret[:-1] + "\n" + random.token_urlsafe(300)
    assert scanner.scan_text("log", text) == []
    scanner.assert_clean([])


@pytest.mark.parametrize("value", ["", "1234567", None], ids=["empty", "seven", "none"])
def test_scanner_refuses_short_secrets(value):
    with pytest.raises(ValueError, match="shorter than 8"):
        SecretScanner({"pin": value})


def test_scanner_finds_secrets_in_objects_by_key_path(secret):
    scanner = SecretScanner({"s3 key": secret})
    pod = {
        "kind": "Pod",
        "spec": {
            "containers": [
                {
                    "name": "x",
                    "env": [{"name": "A", "value": "1"}, {"name": "KEY", "value": secret}],
                }
            ]
        },
    }
    [finding] = scanner.scan_objects("pod alice", pod)
    assert finding.where == "pod alice at spec.containers[0].env[1].value"
    # a Secret holds it base64-encoded: found, which is why Secrets are not what one scans
    k8s_secret = {"kind": "Secret", "data": {"key": base64.b64encode(secret.encode()).decode()}}
    [finding] = scanner.scan_objects("secret alice", k8s_secret)
    assert (finding.where, finding.form) == ("secret alice at data.key", "base64")
    assert scanner.scan_objects("pod", {"kind": "Pod", "metadata": {"name": "x"}}) == []


def test_scanner_finds_a_secret_on_a_command_line_and_in_an_environment(secret):
    scanner = SecretScanner({"api token": secret})
    # a program taking the secret as an argument (GNU sleep would refuse it)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", secret])
    hidden = subprocess.Popen(["sleep", "30"], env={"LEAKED": secret})  # noqa: S603, S607
    try:
        findings = scanner.scan_command_lines()
        assert [f.where for f in findings] == [
            f"process {sleeper.pid} ({_account()}, {_name(sleeper.pid)}) command line"
        ]
        assert_hidden(secret, findings)
        findings = scanner.scan_environments()
        assert [f.where for f in findings] == [
            f"process {hidden.pid} ({_account()}, sleep) environment variable LEAKED"
        ]
        assert_hidden(secret, findings)
        assert scanner.scan_environments(except_uids=[os.getuid()]) == []
        assert scanner.scan_environments(except_pids=[hidden.pid]) == []
    finally:
        for proc in (sleeper, hidden):
            proc.kill()
            proc.wait()


def _account() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_scanner_reads_the_hubs_logs_and_pages(hub, user, secret):
    scanner = SecretScanner({"planted": secret})
    assert scanner.scan_logs(hub) == []
    assert user.get(f"/hub/no-such-page-{secret}").status_code == 404
    deadline = time.monotonic() + 10
    while not (findings := scanner.scan_logs(hub)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert findings and all(" line " in f.where for f in findings)
    assert {f.where.split()[0] for f in findings} <= {"hub", "log"}
    assert_hidden(secret, findings)

    # the page shows the user's name: found in its HTML, and nowhere on an unrelated page
    name_scanner = SecretScanner({"user name": USER})
    findings = name_scanner.scan_pages(user, ["/hub/home", "/hub/static/favicon.ico"])
    assert findings and all(f.where.startswith("page /hub/home (HTTP 200)") for f in findings)
