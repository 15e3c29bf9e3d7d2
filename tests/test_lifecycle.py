"""The embedded hub across stops, crashes and restarts.

One hub of its own (not the shared one): it is killed with SIGKILL, stopped with SIGTERM
and restarted, and every time users, passwords and running servers must come out right:
servers still running after a crash are reattached, servers that died meanwhile are
cleaned up with every process they left, and a clean stop leaves no process behind.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import subprocess
import time

import pytest

from tests.helpers import procs
from tests.helpers.client import HubClient


@pytest.fixture(scope="module")
def life(new_hub):
    """A hub started without ONYXIA_HUB_ADMIN_PASSWORD, with a user 'carol'."""
    hub = new_hub("lifecycle", admin_password="")
    password_file = hub.state_dir / "hub" / "secrets" / "admin-password"
    admin_password = password_file.read_text().strip()
    admin = HubClient(hub.url)
    assert admin.login("admin", admin_password).status_code == 302
    given, carol_password = "given-" + secrets.token_hex(8), "carol-" + secrets.token_hex(8)
    r = admin.post_form(
        "/hub/accounts", {"action": "create", "username": "carol", "password": given}
    )
    assert r.status_code == 200
    # she chooses her own password at her first sign-in
    assert HubClient(hub.url).first_sign_in("carol", given, carol_password).status_code == 302
    state = {
        "hub": hub,
        "admin": admin,
        "admin_password": admin_password,
        "carol_password": carol_password,
    }
    yield state
    hub.stop()


def test_generated_admin_password_goes_to_a_private_file(life):
    hub = life["hub"]
    password_file = hub.state_dir / "hub" / "secrets" / "admin-password"
    assert (password_file.stat().st_mode & 0o777) == 0o600
    assert str(password_file) in hub.output()
    assert life["admin_password"] not in hub.all_output()  # stdout is not a terminal here


def start_server_with_kernel(admin: HubClient, hub) -> dict:
    admin.start_server("carol")
    token = admin.new_token("carol")
    r = admin.session.post(
        admin.url("/user/carol/api/kernels"),
        json={"name": "python3"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    [server] = procs.user_servers("carol")
    tag = server.environ["ONYXIA_HUB_SERVER_ID"]
    deadline = time.monotonic() + 30
    kernels = []
    while time.monotonic() < deadline and not kernels:
        kernels = [p for p in procs.tagged(tag) if any("ipykernel" in a for a in p.cmdline)]
        time.sleep(0.2)
    assert kernels, "the kernel process did not appear"
    return {"server": server, "kernel": kernels[0], "tag": tag, "token": token}


def proxy_pid(hub) -> int:
    return int((hub.state_dir / "hub" / "proxy.pid").read_text())


def test_crash_then_restart_reattaches_running_servers(life):
    hub, admin = life["hub"], life["admin"]
    running = start_server_with_kernel(admin, hub)
    old_proxy = proxy_pid(hub)
    store_pid_file = hub.state_dir / "storage" / "store.pid"
    old_store = int(store_pid_file.read_text())

    hub.crash()  # kill -9: no clean-up at all
    assert procs.alive(running["server"].pid) and procs.alive(running["kernel"].pid)
    assert procs.alive(old_proxy)  # the orphaned proxy still holds the ports

    hub.start()
    assert not procs.alive(old_proxy), "the stale proxy must be stopped"
    assert proxy_pid(hub) != old_proxy
    assert not procs.alive(old_store), "no S3 store of the crashed hub is left"
    assert int(store_pid_file.read_text()) != old_store
    # the same server process, reachable again through the new proxy
    assert procs.alive(running["server"].pid)
    r = admin.session.get(
        admin.url("/user/carol/api/kernels"),
        headers={"Authorization": f"token {running['token']}"},
        timeout=30,
    )
    assert r.status_code == 200 and len(r.json()) == 1
    model = admin.api("GET", "/users/carol").json()
    assert model["servers"][""]["ready"]
    # users and passwords survived
    assert HubClient(hub.url).login("carol", life["carol_password"]).status_code == 302
    assert HubClient(hub.url).login("admin", life["admin_password"]).status_code == 302

    # stopping the server ends its kernel too (it runs in a session of its own)
    admin.stop_server("carol")
    assert not procs.alive(running["server"].pid)
    assert not procs.alive(running["kernel"].pid)
    assert procs.tagged(running["tag"]) == []


def test_server_that_died_while_the_hub_was_down_is_cleaned_up(life):
    hub, admin = life["hub"], life["admin"]
    running = start_server_with_kernel(admin, hub)
    server = running["server"]
    # something the user left running in the background (`nohup ... &` in a terminal):
    # it inherited the server's environment, and ignores the server's death
    home = hub.state_dir / "homes" / "carol"
    background = subprocess.Popen(
        ["sleep", "600"],
        env=server.environ,
        cwd=home,
        user=server.uid,
        group=home.stat().st_gid,
        extra_groups=[],
        start_new_session=True,
    )
    hub.crash()
    os.kill(server.pid, signal.SIGKILL)  # the server dies while the hub is down
    time.sleep(0.5)
    assert background.poll() is None

    hub.start()
    assert "carol still running" not in hub.output()
    assert "" not in admin.api("GET", "/users/carol").json()["servers"]
    background.wait(15)  # ended by the hub: nothing of the dead server is left
    assert procs.tagged(running["tag"]) == []
    assert not procs.alive(running["kernel"].pid)


def test_clean_stop_leaves_no_process_behind_and_keeps_users(life):
    hub, admin = life["hub"], life["admin"]
    running = start_server_with_kernel(admin, hub)
    hub_pid, proxy = hub.proc.pid, proxy_pid(hub)

    assert hub.stop(signal.SIGTERM) == 0
    for pid in (hub_pid, proxy, running["server"].pid, running["kernel"].pid):
        assert not procs.alive(pid), pid
    assert procs.tagged(running["tag"]) == []
    assert not [
        p
        for p in procs.processes()
        if str(hub.state_dir) in " ".join(p.cmdline) or p.environ.get("JUPYTERHUB_USER") == "carol"
    ]
    assert not (hub.state_dir / "hub" / "jupyterhub.pid").exists()

    hub.admin_password = "a-new-password-from-the-environment"
    hub.start()
    assert "ONYXIA_HUB_ADMIN_PASSWORD is ignored: the 'admin' account already exists" in (
        hub.output()
    )
    assert HubClient(hub.url).login("admin", hub.admin_password).status_code == 403
    assert HubClient(hub.url).login("carol", life["carol_password"]).status_code == 302
    admin = HubClient(hub.url)
    assert admin.login("admin", life["admin_password"]).status_code == 302  # cookie secret kept
    assert life["admin"].get("/hub/home").status_code == 200  # old session still valid
    assert "" not in admin.api("GET", "/users/carol").json()["servers"]


@pytest.fixture(scope="module")
def operator_account():
    """An ordinary (non-root) account to run a hub as."""
    name = "onyxia-test-operator"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
        )
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create an ordinary account")
def test_hub_run_by_an_ordinary_user_says_users_are_not_isolated(new_hub, operator_account):
    hub = new_hub("as-operator", run_as=operator_account)
    assert "WARNING: users are NOT isolated" in hub.output()
    admin = HubClient(hub.url)
    assert admin.login("admin", hub.admin_password).status_code == 302
    admin.start_server("admin")
    [server] = procs.user_servers("admin")
    assert server.uid == operator_account[0]  # the hub's own account, no other
    home = hub.state_dir / "homes" / "admin"
    assert server.environ["HOME"] == str(home)
    assert (home.stat().st_mode & 0o777) == 0o700
    assert (hub.state_dir.stat().st_mode & 0o777) == 0o700  # no other account needs in
    admin.stop_server("admin")
    assert hub.stop() == 0
