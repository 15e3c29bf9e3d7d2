"""A git server whose certificate a private CA signed, trusted through `GitProvider.git_config`.

The server (tests/helpers/gitserver.py) has a certificate from a CA made for this module,
which neither the system nor git trusts. A user's server is made as the hub makes it: the
provider's contribution (its `git/config` and `git/token` written into a secrets
directory, its variables) and nothing else: no `GIT_SSL_CAINFO`, `SSL_CERT_FILE` or
`CURL_CA_BUNDLE`, an empty home. Then:

- without the setting, `onyxia-git-pull` (the real command) fails, and says that the
  server's certificate is not trusted;
- with `c.GitProvider.git_config = {"http.sslCAInfo": <ca.pem>}`, or the same scoped to
  the server's URL, the private repository is cloned (the token through the credential
  helper), whether the server extension set `GIT_CONFIG_SYSTEM` (as at a server's start)
  or an image's start script runs the pull before it (even with `GIT_CONFIG_NOSYSTEM`);
- the user's own git (`git clone` in a terminal) trusts the server through the same file.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from onyxia_git.pull import DONE, FAILED, hardened_environment
from onyxia_git.server import use_hub_git_config
from traitlets.config import Config

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.choices import check
from onyxia_hub.db import make_engine
from onyxia_hub.db.crypto import FieldCrypto, parse_key
from onyxia_hub.db.portal import upgrade
from onyxia_hub.db.store import Store
from onyxia_hub.providers.base import PlanRequest
from onyxia_hub.providers.git import GitProvider
from tests.helpers.gitserver import CertificateAuthority, GitServer

TOKEN = "glpat-" + secrets.token_urlsafe(24)
BIN = Path(sys.executable).parent  # onyxia-git-pull, git-credential-onyxia
CATALOG = load_catalog([default_catalog_path()])


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="module")
def portal(internal, tmp_path_factory):
    """The portal's store, where ann saved her token and default repository (My account)."""
    directory = tmp_path_factory.mktemp("portal")
    key = secrets.token_hex(32)
    (directory / "portal_key").write_text(key + "\n")
    (directory / "portal_key").chmod(0o600)
    db_url = f"sqlite:///{directory / 'portal.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    Store(engine, FieldCrypto([parse_key(key)])).save_account(
        "ann", git_repository=internal.url("survey"), git_token=TOKEN
    )
    return {"db_url": db_url, "key_file": str(directory / "portal_key")}


@pytest.fixture(scope="module")
def internal(private_ca, tmp_path_factory):
    """The organisation's git server, its certificate from the private CA."""
    server = GitServer(tmp_path_factory.mktemp("internal"), private_ca, token=TOKEN)
    server.create_repo("survey", {"README.md": "# Survey\n"}, private=True)
    yield server
    server.stop()


async def user_server(tmp_path: Path, portal: dict, **settings) -> dict[str, str]:
    """A server's environment as the hub and its adapters make it from the provider's
    contribution: its variables, its secret files, ONYXIA_HUB_SECRETS_DIR; nothing else."""
    config = Config()
    for key, value in {**portal, **settings}.items():
        config.GitProvider[key] = value
    choice = check({"service": "jupyter-python"}, CATALOG, [])
    request = PlanRequest("ann", "", frozenset(), CATALOG.get("jupyter-python"), choice, None)
    made = await GitProvider(config=config).contribute(request)
    secrets_dir = tmp_path / "secrets"
    home = tmp_path / "home"
    home.mkdir()
    for file in made.files:
        path = secrets_dir / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content)
        path.chmod(file.mode)
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ONYXIA_HUB_SECRETS_DIR": str(secrets_dir),
        **made.environment,
    }


def pull(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "onyxia-git-pull"), "--work-dir", env["HOME"]],
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def started(env: dict[str, str]) -> dict[str, str]:
    """env after the server extension's start (GIT_CONFIG_SYSTEM at the hub's file)."""
    env = dict(env)
    use_hub_git_config(env, logging.getLogger("test"))
    return env


async def test_without_the_setting_the_clone_fails_on_the_certificate(tmp_path, portal, internal):
    env = started(await user_server(tmp_path, portal))
    assert "GIT_SSL_CAINFO" not in env and "SSL_CERT_FILE" not in env
    heard = len(internal.requests)
    done = pull(env)
    assert done.returncode == FAILED, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(
        f"Could not clone {internal.url('survey')}: its server's certificate is not trusted here"
    )
    assert not (Path(env["HOME"]) / "survey").exists()
    assert len(internal.requests) == heard  # no TLS handshake, no request, no token


@pytest.mark.parametrize("scoped", [False, True], ids=["http.sslCAInfo", "http.<url>.sslCAInfo"])
async def test_with_the_ca_in_git_config_the_pull_and_the_users_git_succeed(
    tmp_path, portal, internal, private_ca, scoped
):
    key = f"http.https://{internal.host}/.sslCAInfo" if scoped else "http.sslCAInfo"
    env = started(await user_server(tmp_path, portal, git_config={key: str(private_ca.path)}))
    done = pull(env)
    assert done.returncode == DONE, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"Cloned {internal.url('survey')} into survey/."
    assert (Path(env["HOME"]) / "survey" / "README.md").read_text() == "# Survey\n"
    assert [r.password for r in internal.credentials_seen()][-1:] == [TOKEN]
    # a terminal's git reads the same file (GIT_CONFIG_SYSTEM, set by the server extension)
    cloned = subprocess.run(
        ["git", "clone", "--quiet", "--", internal.url("survey"), "again"],
        env=env, cwd=env["HOME"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cloned.returncode == 0, cloned.stderr


async def test_a_pull_run_before_the_server_finds_the_hubs_configuration(
    tmp_path, portal, private_ca
):
    """An image's start script runs onyxia-git-pull before the server extension sets
    GIT_CONFIG_SYSTEM, perhaps with GIT_CONFIG_NOSYSTEM set: the pull reads the hub's file."""
    env = await user_server(tmp_path, portal, git_config={"http.sslCAInfo": str(private_ca.path)})
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    hub_file = str(tmp_path / "secrets" / "git" / "config")
    hardened = hardened_environment(env, ("https",))
    assert hardened["GIT_CONFIG_SYSTEM"] == hub_file and "GIT_CONFIG_NOSYSTEM" not in hardened
    mine = hardened_environment(dict(env, GIT_CONFIG_SYSTEM="/etc/mine"), ("https",))
    assert mine["GIT_CONFIG_SYSTEM"] == "/etc/mine" and mine["GIT_CONFIG_NOSYSTEM"] == "1"
    done = pull(env)
    assert done.returncode == DONE, done.stdout + done.stderr
    assert (Path(env["HOME"]) / "survey" / "README.md").exists()
