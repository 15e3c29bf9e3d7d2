"""Fixtures shared by the whole suite (every one of them, in the order of the file).

- `hub_admin_password` (session): the password of `admin` on every hub the tests start.
- `hubs_root` (session): a directory for hubs' state that unprivileged accounts can
  traverse (0711), removed at the end.
- `new_hub` (session): a factory for extra hubs (`new_hub(name, config_files=...,
  extra_args=..., start=..., admin_password=..., run_as=...)`: lifecycle, OIDC, errors),
  all stopped at the end.
- `test_catalog` (session): the session hub's second catalog directory (a copy of
  tests/profiles: a GPU service, a group-restricted one, one the tests change while the
  hub runs), next to the shipped profiles/.
- `hub` (session): one real embedded hub (`onyxia-hub up` in a subprocess, free port,
  temporary state directory, Node's configurable-http-proxy, JupyterLab user servers).
  It hands out two configured GPU ids, has `consecutive_failure_limit = 5`, appends the
  planted provider (tests/helpers/planted.py), trusts the test git servers' CA
  (`GIT_TEST_CA`), and runs tests/services/whoami.py, the service skeleton's example, at
  /services/whoami/ with its own store and key.
- `admin` (session): a `HubClient` signed in as `admin` through the login form.
- `make_user` (session): `make_user(name)` creates an account through the admin's
  Admin > People page and returns a signed-in `HubClient` for it (the forced first password
  change done); the same client for the same name.
- `portal_client` (session): `portal_client(hub_client)`, a `PortalClient`
  (tests/helpers/portal.py) for the portal's pages and JSON API.
- `postgres` (module) and `db_url` (tests/helpers/postgres.py, a plugin): a real
  PostgreSQL server; an empty database on SQLite, then on PostgreSQL.

Real spawns cost about a CPU-second and 130 MiB each: tests share the few they start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from onyxia_hub.embedded.ports import pick_free_port
from tests.helpers.client import HubClient
from tests.helpers.hub import HubProcess
from tests.helpers.portal import PortalClient
from tests.helpers.scriptserver import ScriptServer

CONFIGS = Path(__file__).parent / "configs"
pytest_plugins = ["tests.helpers.postgres"]  # `postgres`, `db_url`: a real PostgreSQL


@pytest.fixture(scope="session")
def hub_admin_password() -> str:
    return "admin-" + secrets.token_urlsafe(12)


@pytest.fixture(scope="session")
def hubs_root():
    """A directory for hub state that unprivileged accounts can traverse (mode 0711).

    pytest's own temporary directories are private to root (0700), which the hub rightly
    refuses when it runs as root: users' servers could not reach their homes.
    """
    root = Path(tempfile.mkdtemp(prefix="onyxia-hub-tests-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def new_hub(hubs_root, hub_admin_password):
    hubs: list[HubProcess] = []

    def factory(
        name: str = "hub",
        *,
        config_files=(),
        extra_args=(),
        start=True,
        admin_password=None,
        run_as=None,
    ) -> HubProcess:
        """A new hub; admin_password None: the suite's, "": none (a generated one)."""
        root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=hubs_root))
        root.chmod(0o711)
        if run_as:
            os.chown(root, *run_as)
        hub = HubProcess(
            state_dir=root / "state",
            admin_password=hub_admin_password if admin_password is None else admin_password,
            config_files=list(config_files),
            extra_args=list(extra_args),
            run_as=run_as,
        )
        hubs.append(hub)
        if start:
            hub.start()
        return hub

    yield factory
    for hub in hubs:
        try:
            hub.stop()
        except Exception:  # a test may have left it crashed; never mask the test result
            pass


@pytest.fixture(scope="session")
def test_catalog(hubs_root) -> Path:
    """A copy of tests/profiles the tests may change while the hub runs."""
    directory = Path(tempfile.mkdtemp(prefix="catalog-", dir=hubs_root))
    directory.chmod(0o755)
    for file in (Path(__file__).parent / "profiles").iterdir():
        shutil.copy(file, directory / file.name)
    return directory


@pytest.fixture(scope="session")
def init_scripts(hubs_root):
    """Init scripts the session hub's servers may fetch (`<url>/allowed/...` only)."""
    directory = Path(tempfile.mkdtemp(prefix="scripts-", dir=hubs_root))
    server = ScriptServer(directory)
    yield server
    server.close()


INIT_TIMEOUT = 6  # seconds the session hub gives init scripts (tests/test_init_scripts.py)


@pytest.fixture(scope="session")
def hub(new_hub, test_catalog, init_scripts) -> HubProcess:
    config = test_catalog.parent / "catalog-config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent.parent)!r})  # tests.helpers.planted\n"
        "from onyxia_hub.catalog.loader import default_catalog_path\n"
        "c.OnyxiaLocalSpawner.catalog_paths = "
        f"[str(default_catalog_path()), {str(test_catalog)!r}]\n"
        "c.OnyxiaLocalSpawner.gpu_devices = ['GPU-test-0', 'GPU-test-1']\n"
        "c.Spawner.consecutive_failure_limit = 5\n"
        "c.OnyxiaLocalSpawner.provider_classes.append('tests.helpers.planted.PlantedProvider')\n"
        f"c.InitScriptProvider.allowed_personal_scripts = [{init_scripts.url + '/allowed/'!r}]\n"
        f"c.InitScriptProvider.timeout = {INIT_TIMEOUT}\n"
        # servers trust the test git servers' CA (tests/test_git*.py), set where
        # docs/git.md tells operators to
        "c.GitProvider.git_config = "
        f"{{'http.sslCAInfo': {str(test_catalog.parent / GIT_TEST_CA)!r}}}\n"
        + whoami_service_config(test_catalog.parent)
    )
    return new_hub("main", config_files=[CONFIGS / "fast-login.py", config])


def whoami_service_config(directory: Path) -> str:
    """tests/services/whoami.py as a managed service of the session hub, with its own store
    and key (migrated by the configuration, as the Helm values migrate the portal's)."""
    key_file = directory / "whoami_key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    db_url = f"sqlite:///{directory / 'whoami' / 'whoami.sqlite'}"
    service = {
        "name": "whoami",
        "url": f"http://127.0.0.1:{pick_free_port()}",
        "cwd": str(directory),
        "environment": {"ONYXIA_WHOAMI_DB_URL": db_url, "ONYXIA_WHOAMI_KEY_FILE": str(key_file)},
        "oauth_no_confirm": True,
    }
    return (
        "from tests.services.whoami import SCHEMA as whoami_schema\n"
        f"whoami_schema.prepare({db_url!r})\n"
        f"c.JupyterHub.services.append({{**{service!r}, 'command': "
        f"[sys.executable, {str(Path(__file__).parent / 'services' / 'whoami.py')!r}]}})\n"
        "c.JupyterHub.extra_user_scopes.add('access:services!service=whoami')\n"
    )


@pytest.fixture(scope="session")
def admin(hub, hub_admin_password) -> HubClient:
    client = HubClient(hub.url)
    r = client.login("admin", hub_admin_password)
    assert r.status_code == 302, r.text
    return client


@pytest.fixture(scope="session")
def make_user(hub, admin):
    created: dict[str, tuple[str, HubClient]] = {}

    def factory(name: str) -> HubClient:
        if name in created:
            return created[name][1]
        initial = "initial-" + secrets.token_urlsafe(8)
        r = admin.post_form(
            "/hub/accounts", {"action": "create", "username": name, "password": initial}
        )
        assert r.status_code == 200, r.text
        client = HubClient(hub.url)
        password = "chosen-" + secrets.token_urlsafe(12)
        r = client.first_sign_in(name, initial, password)
        assert r.status_code == 302, r.text
        client.password = password
        created[name] = (password, client)
        return client

    return factory


def pytest_report_header(config):
    return f"chromium: {shutil.which('chromium') or 'not installed'}"


# -- the portal service (onyxia_hub/portal) ------------------------------------------------
@pytest.fixture(scope="session")
def portal_client():
    """`portal_client(hub_client)`: a PortalClient for a signed-in HubClient."""
    return PortalClient


# -- git (tests/test_git*.py) --------------------------------------------------------------
# The CA of the test git servers (tests/helpers/gitserver.py), written by tests/test_git_hub.py
# into the hubs' root: the session hub's servers trust it through c.GitProvider.git_config.
GIT_TEST_CA = "git-test-ca.pem"
