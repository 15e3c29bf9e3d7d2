"""User servers on the embedded hub: real JupyterLab processes behind the real proxy.

As root, each user's servers run under their own system account: the tests check, as the
operating system sees it, that one user's processes cannot read another user's files or
process environment, nor the hub's state directory.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers import procs
from tests.helpers.client import HubClient


def test_start_reach_and_stop_a_server_through_the_spawn_form(hub, admin):
    # the spawn form POST (with XSRF), as the "Start My Server" button sends it
    r = admin.post_form("/hub/spawn", {}, allow_redirects=False)
    assert r.status_code == 302, r.text
    admin.wait_ready("admin")
    # JupyterLab through the proxy: the OAuth hand-over to the server, then its API
    r = admin.get("/user/admin/lab")
    assert r.status_code == 200 and r.url.endswith("/user/admin/lab")
    assert "JupyterLab" in r.text
    status = admin.get("/user/admin/api/status")
    assert status.status_code == 200
    assert set(status.json()) >= {"started", "last_activity", "kernels"}

    [server] = procs.user_servers("admin")
    admin.stop_server("admin")
    assert not procs.alive(server.pid)
    r = admin.get("/user/admin/api/status", allow_redirects=False)
    assert r.status_code != 200


def test_named_servers_are_enabled(hub, admin):
    r = admin.api("GET", "/info")
    # a second, named server for the same user (creation checked, start not needed)
    assert admin.api("GET", "/users/admin").json()["name"] == "admin"
    r = admin.get("/services/portal/services")
    assert 'id="portal-launch-new"' in r.text  # My services starts named servers


@pytest.fixture(scope="module")
def two_users(hub, admin, make_user):
    """alice and bob, each with a running server and a private file in their home."""
    users = {}
    names = ("alice", "bob")
    for name in names:  # both start at once, as a class does
        make_user(name)
        r = admin.api("POST", f"/users/{name}/server", json={})
        assert r.status_code in (201, 202), r.text
    for name in names:
        admin.wait_ready(name)
        client = make_user(name)
        token = client.new_token(name)
        # write a file into the home through the user's own Jupyter server
        r = client.session.put(
            client.url(f"/user/{name}/api/contents/private.txt"),
            json={"type": "file", "format": "text", "content": f"{name}'s secret notes"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert r.status_code in (200, 201), r.text
        [server] = procs.user_servers(name)
        users[name] = {"client": client, "token": token, "server": server}
    yield users
    for name in users:
        admin.stop_server(name)


@pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs the hub to run as root")
def test_each_user_runs_under_their_own_account(hub, two_users):
    alice, bob = two_users["alice"]["server"], two_users["bob"]["server"]
    assert alice.uid != bob.uid
    assert 0 not in (alice.uid, bob.uid)
    import pwd

    assert pwd.getpwuid(alice.uid).pw_name == "onyxia-alice"
    assert pwd.getpwuid(bob.uid).pw_name == "onyxia-bob"
    home = hub.state_dir / "homes" / "alice"
    assert alice.environ["HOME"] == str(home)
    assert home.stat().st_uid == alice.uid and (home.stat().st_mode & 0o777) == 0o700
    assert (home / "private.txt").stat().st_uid == alice.uid


@pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs the hub to run as root")
def test_users_cannot_read_each_other_or_the_hub(hub, two_users):
    alice = two_users["alice"]["server"]
    bob = two_users["bob"]["server"]
    gid = os.stat(hub.state_dir / "homes" / "alice").st_gid
    as_alice = lambda *cmd: procs.run_as(alice.uid, gid, *cmd)  # noqa: E731

    # her own file: yes
    own = as_alice("cat", str(hub.state_dir / "homes" / "alice" / "private.txt"))
    assert own.returncode == 0 and own.stdout == "alice's secret notes"
    # bob's home, bob's process environment (it holds his API token): no
    for target in [
        hub.state_dir / "homes" / "bob" / "private.txt",
        hub.state_dir / "homes" / "bob",
        f"/proc/{bob.pid}/environ",
    ]:
        result = as_alice("cat", str(target))
        assert result.returncode != 0 and "Permission denied" in result.stderr, target
    assert "JUPYTERHUB_API_TOKEN" in bob.environ  # so the environment really is sensitive
    # the hub's state: database, secrets, logs
    for target in [
        "hub/jupyterhub.sqlite",
        "hub/accounts.sqlite",
        "hub/secrets/cookie_secret",
        "hub/secrets/crypt_key",
        "logs/hub.log",
    ]:
        result = as_alice("cat", str(hub.state_dir / target))
        assert result.returncode != 0 and "Permission denied" in result.stderr, target
    listing = as_alice("ls", str(hub.state_dir))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    listing = as_alice("ls", str(hub.state_dir / "homes"))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_server_environment_carries_no_hub_secret(hub, two_users, hub_admin_password):
    secret_files = (hub.state_dir / "hub" / "secrets").iterdir()
    secrets = [p.read_text().strip() for p in secret_files] + [hub_admin_password]
    for user in two_users.values():
        server = user["server"]
        assert "ONYXIA_HUB_ADMIN_PASSWORD" not in server.environ
        dump = "\n".join(f"{k}={v}" for k, v in server.environ.items()) + " ".join(server.cmdline)
        for value in secrets:
            assert value not in dump
        # and the server's own token is not on its command line
        assert server.environ["JUPYTERHUB_API_TOKEN"] not in " ".join(server.cmdline)


def test_one_user_cannot_reach_another_users_server(hub, two_users):
    alice = two_users["alice"]
    r = alice["client"].session.get(
        alice["client"].url("/user/bob/api/contents/private.txt"),
        headers={"Authorization": f"token {alice['token']}"},
        timeout=30,
    )
    assert r.status_code == 403
    r = alice["client"].get("/user/bob/lab")
    assert "bob's secret notes" not in r.text
    assert r.status_code == 403 or "/hub/" in r.url


def test_proxy_and_servers_are_not_reachable_from_other_addresses(hub, two_users):
    """Everything internal listens on loopback only."""
    server = two_users["alice"]["server"]
    assert server.environ["JUPYTERHUB_SERVICE_URL"].startswith("http://127.0.0.1:")
    assert server.environ["JUPYTERHUB_API_URL"].startswith("http://127.0.0.1:")


def test_server_log_goes_to_its_own_file(hub, two_users):
    log = hub.state_dir / "logs" / "servers" / "alice" / "default.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "Jupyter Server" not in log.read_text():
        time.sleep(0.2)
    assert "Jupyter Server" in log.read_text()
    assert (log.stat().st_mode & 0o777) == 0o600


def test_anonymous_visitor_is_sent_to_login(hub, two_users):
    r = HubClient(hub.url).get("/user/alice/lab")
    assert r.url.startswith(hub.url + "/hub/login")


def test_no_secret_on_any_command_line(hub, two_users, hub_admin_password):
    """`ps` shows every account's command lines: no secret may ever be on one."""
    secret_files = (hub.state_dir / "hub" / "secrets").iterdir()
    secrets = [p.read_text().strip() for p in secret_files] + [hub_admin_password]
    secrets += [user["server"].environ["JUPYTERHUB_API_TOKEN"] for user in two_users.values()]
    secrets += [user["token"] for user in two_users.values()]
    command_lines = "\n".join(" ".join(p.cmdline) for p in procs.processes())
    assert "configurable-http-proxy" in command_lines  # we are looking at the right machine
    for value in secrets:
        assert value not in command_lines
