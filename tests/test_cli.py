"""`onyxia-hub up` and `onyxia-hub config` from the operator's side.

Bad input (busy port, clear-text HTTP off loopback, unusable state directory, broken
config file, missing Node.js, a second instance on one state directory...) must give one
message naming the problem and its fix, exit status 2, and never a traceback.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.hub import ONYXIA_HUB

CONFIGS = Path(__file__).parent / "configs"


def onyxia_hub(*args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run(
        [str(ONYXIA_HUB), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture()
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture()
def scratch(hubs_root):
    path = Path(tempfile.mkdtemp(prefix="scratch-", dir=hubs_root))
    path.chmod(0o711)
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# id, arguments (with {scratch} and {busy}), expected words in the error, environment changes
BAD_INPUTS = [
    ("port-in-use", ["--port", "{busy}"], ["127.0.0.1:{busy}", "already in use", "--port"], {}),
    ("clear-text-off-loopback", ["--ip", "0.0.0.0"], ["plain HTTP", "--ssl-cert"], {}),
    ("ip-not-an-address", ["--ip", "example.org"], ["is not an IP address"], {}),
    ("cert-without-key", ["--ssl-cert", "/etc/hostname"], ["go together"], {}),
    (
        "unreadable-cert",
        ["--ssl-cert", "/nonexistent.pem", "--ssl-key", "/nonexistent.key"],
        ["--ssl-cert /nonexistent.pem"],
        {},
    ),
    (
        "state-dir-on-proc",
        ["--state-dir", "/proc/onyxia-hub"],
        ["cannot create or use the state directory /proc/onyxia-hub"],
        {},
    ),
    (
        "state-dir-under-a-file",
        ["--state-dir", "{scratch}/file/state"],
        ["cannot create or use the state directory"],
        {},
    ),
    ("config-missing", ["--config", "{scratch}/nope.py"], ["--config", "no such file"], {}),
    ("config-syntax-error", ["--config", "{scratch}/syntax.py"], ["syntax error on line 2"], {}),
    ("config-raises", ["--config", "{scratch}/raises.py"], ["loading it failed: NameError"], {}),
    ("node-missing", [], ["Node.js is not installed"], {"PATH": "/nonexistent"}),
    (
        "config-bad-provider",
        ["--config", "{scratch}/provider.py"],
        ["c.OnyxiaLocalSpawner.provider_classes: 'no_such_module.Provider' cannot be imported"],
        {},
    ),
    (
        "config-bad-git-setting",
        ["--config", "{scratch}/git-config.py"],
        ["c.GitProvider: GitProvider.git_config: core.sshCommand may not be set"],
        {},
    ),
    (
        "portal-store-unreachable",
        ["--config", "{scratch}/portal-db.py"],
        ["The portal's store postgresql+psycopg://portal:***@127.0.0.1:1/portal", "prepared"],
        {},
    ),
    (
        "admin-password-too-short",
        [],
        ["ONYXIA_HUB_ADMIN_PASSWORD must have 8 to 72 bytes"],
        {"ONYXIA_HUB_ADMIN_PASSWORD": "short"},
    ),
]


@pytest.mark.parametrize("case,args,expected,env", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gives_one_clear_error(case, args, expected, env, busy_port, scratch):
    write(scratch / "file", "")
    write(scratch / "syntax.py", "c = get_config()\nc.JupyterHub.port = = 1\n")
    write(scratch / "raises.py", "c = get_config()\nc.JupyterHub.port = undefined_name\n")
    write(
        scratch / "provider.py",
        "c = get_config()\nc.OnyxiaLocalSpawner.provider_classes = ['no_such_module.Provider']\n",
    )
    write(
        scratch / "git-config.py",
        "c = get_config()\nc.GitProvider.git_config = {'core.sshCommand': 'sh -c id'}\n",
    )
    write(
        scratch / "portal-db.py",
        "c = get_config()\n"
        "c.JupyterHub.services = [{'name': 'portal', 'url': 'http://127.0.0.1:10101',\n"
        "    'command': ['true'], 'environment': {'ONYXIA_PORTAL_DB_URL':\n"
        "    'postgresql+psycopg://portal:pw-in-url@127.0.0.1:1/portal'}}]\n",
    )
    fill = {"scratch": str(scratch), "busy": str(busy_port)}
    args = [a.format(**fill) for a in args]
    if "--state-dir" not in args:
        args += ["--state-dir", str(scratch / "state")]
    if "--port" not in args:
        args += ["--port", "0"]
    result = onyxia_hub("up", *args, env={**os.environ, **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for words in expected:
        assert words.format(**fill) in result.stderr, result.stderr
    assert "pw-in-url" not in result.stderr + result.stdout
    assert result.stderr.startswith("onyxia-hub: error: ")
    assert "fix:" in result.stderr


def test_bad_command_line_values_are_refused_by_the_parser():
    result = onyxia_hub("up", "--port", "70000")
    assert result.returncode == 2
    assert "70000 is not a port number" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_instance_on_the_same_state_dir_is_refused(hub):
    result = onyxia_hub("up", "--state-dir", str(hub.state_dir), "--port", "0")
    assert result.returncode == 2
    assert f"another onyxia-hub (pid {hub.proc.pid}) is already running" in result.stderr
    assert hub.api_ready(), "the running hub must be left alone"


def test_config_prints_the_effective_configuration_with_secrets_redacted(hub, scratch):
    operator = write(
        scratch / "operator.py",
        "\n".join(
            [
                "c = get_config()",
                "c.OnyxiaOIDCAuthenticator.client_secret = 'oidc-client-secret-value'",
                "c.Spawner.environment = {'AWS_SECRET_ACCESS_KEY': 'aws-secret-value',"
                " 'TZ': 'UTC'}",
                "c.JupyterHub.services = [{'name': 'x', 'api_token': 'service-token-value'}]",
            ]
        ),
    )
    result = onyxia_hub(
        "config",
        "--state-dir",
        str(hub.state_dir),
        "--port",
        str(hub.port),
        "--config",
        str(CONFIGS / "fast-login.py"),
        "--config",
        str(operator),
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # what runs: our defaults, the state directory's files and ports, operator overrides
    assert f"c.JupyterHub.bind_url = 'http://127.0.0.1:{hub.port}/'" in text
    assert f"c.JupyterHub.db_url = 'sqlite:///{hub.state_dir}/hub/jupyterhub.sqlite'" in text
    assert "c.OnyxiaLocalAuthenticator.failed_login_delay = 0.05" in text
    assert "'TZ': 'UTC'" in text
    ports = (hub.state_dir / "hub" / "ports.json").read_text()
    assert str(__import__("json").loads(ports)["hub"]) in text
    # no secret: neither ours (files in the state directory) nor the operator's
    secrets = [p.read_text().strip() for p in (hub.state_dir / "hub" / "secrets").iterdir()]
    for value in [
        *secrets,
        "oidc-client-secret-value",
        "aws-secret-value",
        "service-token-value",
        hub.admin_password,
    ]:
        assert value not in text
    assert text.count("<redacted>") >= 5
    # it is valid Python that a hub could load
    compile(text, "jupyterhub_config.py", "exec")


def test_config_changes_nothing(scratch):
    state = scratch / "never-created"
    result = onyxia_hub("config", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    assert not state.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="modes for isolated users are set when root")
def test_state_dir_is_readable_by_its_owner_only(hub):
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    state = hub.state_dir
    assert mode(state) == 0o711  # others may traverse to their home, not list or read
    assert mode(state / "hub") == 0o700
    assert mode(state / "hub" / "secrets") == 0o700
    assert mode(state / "logs") == 0o700
    assert mode(state / "homes") == 0o711
    for secret in (state / "hub" / "secrets").iterdir():
        assert mode(secret) == 0o600, secret
    for file in (state / "hub").glob("*.sqlite"):
        assert mode(file) & 0o077 == 0, file
    assert mode(state / "logs" / "hub.log") == 0o600


def test_version():
    result = onyxia_hub("--version")
    assert result.returncode == 0 and result.stdout.startswith("onyxia-hub ")


def test_python_m_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "onyxia_hub", "config", "--port", "1234"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "127.0.0.1:1234" in result.stdout


def test_missing_proxy_names_the_setup_command(monkeypatch, tmp_path):
    from onyxia_hub.embedded import preflight
    from onyxia_hub.errors import OnyxiaHubError

    monkeypatch.setattr(preflight.sys, "prefix", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OnyxiaHubError) as error:
        preflight.find_proxy()
    assert "configurable-http-proxy" in error.value.message
    assert "scripts/setup" in error.value.fix


def test_on_a_terminal_the_password_is_shown_once_and_ctrl_c_stops_everything(scratch):
    """A person at a terminal: the generated password is printed, not written to a file."""
    import pty
    import select
    import signal

    from onyxia_hub.embedded.ports import pick_free_port

    port = pick_free_port()
    state = scratch / "state"
    env = {k: v for k, v in os.environ.items() if k != "ONYXIA_HUB_ADMIN_PASSWORD"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(ONYXIA_HUB), "up", "--port", str(port), "--state-dir", str(state)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    output = b""
    try:
        while b"Stop with Ctrl-C" not in output and proc.poll() is None:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, output.decode(errors="replace")[-2000:]
            output += os.read(leader, 65536)
        text = output.decode(errors="replace")
        line = next(x for x in text.splitlines() if "with the password" in x)
        password = line.split("with the password")[1].strip()
        assert len(password) == 23
        assert not (state / "hub" / "secrets" / "admin-password").exists()
        from tests.helpers.client import HubClient

        assert HubClient(f"http://127.0.0.1:{port}").login("admin", password).status_code == 302
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(60) == 0
        assert not (state / "hub" / "jupyterhub.pid").exists()
        proxy_pid = (
            int((state / "hub" / "proxy.pid").read_text())
            if (state / "hub" / "proxy.pid").exists()
            else None
        )
        assert proxy_pid is None or not os.path.exists(f"/proc/{proxy_pid}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    # afterwards the password is in the hub's log? never
    assert password not in (state / "logs" / "hub.log").read_text()


def test_the_portals_store_is_ready_before_the_hub_even_without_the_portal(tmp_path):
    """`up` migrates the store the providers read before the hub answers a launch, also
    when an operator's configuration replaced the portal service."""
    from traitlets.config import Config

    from onyxia_hub.db import make_engine
    from onyxia_hub.db import portal as migrate
    from onyxia_hub.embedded.up import prepare_stores as prepare_portal_store

    config = Config()
    config.JupyterHub.services = [{"name": "other", "url": "http://127.0.0.1:1"}]
    url = f"sqlite:///{tmp_path / 'portal' / 'portal.sqlite'}"
    config.StorageProvider.db_url = url
    prepare_portal_store(config)
    assert migrate.current_revision(make_engine(url)) == migrate.head_revision()
