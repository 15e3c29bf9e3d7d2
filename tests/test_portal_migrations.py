"""The portal store's schema migrations, on SQLite and on a real PostgreSQL.

The PostgreSQL server is Debian's (`initdb`, `pg_ctl`, `postgres`; `scripts/test-prerequisites`
installs the `postgresql` package), started for this module in a temporary directory on a
free loopback port. PostgreSQL refuses to run as root: as root it runs as the unprivileged
account `onyxia-test-pg`, created on first use.

Every test runs on both databases: migrations from an empty database, an upgrade that keeps
the data written at the first revision, a downgrade and upgrade again, a database shared
with JupyterHub's own tables, and the portal's `--upgrade-db-only` command.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from onyxia_hub.db import make_engine
from onyxia_hub.db import portal as migrate
from onyxia_hub.db.crypto import FieldCrypto, parse_key
from onyxia_hub.db.store import Store
from onyxia_hub.embedded.ports import pick_free_port

PG_ACCOUNT = "onyxia-test-pg"
PORTAL_TABLES = {"portal_accounts", "portal_configurations", migrate.VERSION_TABLE}


def postgres_program(name: str) -> str:
    found = (
        shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    )
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} is missing: run scripts/test-prerequisites (Debian's "
            "postgresql package) as root"
        )
    return found


def pg_account() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as: an unprivileged account when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_ACCOUNT)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                PG_ACCOUNT,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by someone else
            pytest.fail(f"useradd {PG_ACCOUNT} failed: {result.stderr}")
        entry = pwd.getpwnam(PG_ACCOUNT)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def postgres(hubs_root):
    """The base URL of a PostgreSQL server running for this module."""
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    account = pg_account()
    root = Path(tempfile.mkdtemp(prefix="postgres-", dir=hubs_root))
    if account:
        os.chown(root, *account)
    root.chmod(0o700)
    as_pg = dict(user=account[0], group=account[1], extra_groups=[]) if account else {}
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "LC_ALL": "C"}

    def run(*cmd):
        result = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120, **as_pg
        )
        assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stdout}\n{result.stderr}"

    data, port = root / "data", pick_free_port()
    run(
        initdb,
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    run(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o", options, "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=60,
            **as_pg,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portal.sqlite'}"
        return
    base = request.getfixturevalue("postgres")
    name = "portal_" + secrets.token_hex(4)
    admin = make_engine(base + "/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def crypto() -> FieldCrypto:
    return FieldCrypto([parse_key(secrets.token_hex(32))])


def test_there_are_revisions_to_upgrade_through():
    assert migrate.revisions() == ["0001", "0002", "0003"]
    assert migrate.head_revision() == "0003"


def test_migrations_run_from_an_empty_database(engine):
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0003"
    tables = set(inspect(engine).get_table_names())
    assert PORTAL_TABLES <= tables
    assert "alembic_version" not in tables  # JupyterHub's name stays free
    columns = {c["name"] for c in inspect(engine).get_columns("portal_configurations")}
    assert columns >= {"id", "username", "name", "server_name", "user_options"}
    migrate.upgrade(engine)  # again: nothing to do
    assert migrate.current_revision(engine) == "0003"


def test_an_upgrade_keeps_the_data_of_the_first_revision(engine):
    migrate.upgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001"
    assert "portal_configurations" not in inspect(engine).get_table_names()
    keys = crypto()
    token = "ghp_" + secrets.token_urlsafe(24)
    Store(engine, keys).save_account(
        "ann", git_name="Ann", git_email="ann@example.org", git_token=token, git_branch="main"
    )
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0003"
    store = Store(engine, keys)
    account = store.account("ann")
    assert (account.git_name, account.git_email, account.git_branch) == (
        "Ann",
        "ann@example.org",
        "main",
    )
    assert store.git_token("ann") == token
    saved = store.add_configuration("ann", "small", {"service": "jupyter-python"})
    assert store.configuration("ann", saved.id).name == "small"
    with engine.connect() as connection:  # only ciphertext in the column
        stored = connection.execute(text("SELECT git_token FROM portal_accounts")).scalar_one()
    assert token not in stored and stored.startswith("gAAAA")


def test_downgrade_and_upgrade_again(engine):
    migrate.upgrade(engine)
    Store(engine, crypto()).save_account("ann", git_name="Ann")
    migrate.downgrade(engine, "0001")
    tables = inspect(engine).get_table_names()
    assert "portal_configurations" not in tables and "portal_storage_credentials" not in tables
    migrate.upgrade(engine)
    assert Store(engine, crypto()).account("ann").git_name == "Ann"


def test_the_store_may_share_the_hubs_database(db_url, engine):
    from jupyterhub import orm

    hub_session = orm.new_session_factory(db_url)()  # creates and stamps the hub's tables
    hub_session.close()
    with engine.connect() as connection:
        hub_revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert hub_revision
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            hub_revision
        )
    assert migrate.current_revision(engine) == "0003"
    assert {"users", "spawners"} <= set(inspect(engine).get_table_names())


def test_the_portal_upgrades_by_itself(db_url, engine):
    result = subprocess.run(
        [sys.executable, "-m", "onyxia_hub.portal", "--upgrade-db-only"],
        env={
            **os.environ,
            "ONYXIA_PORTAL_DB_URL": db_url,
            "ONYXIA_PORTAL_CRYPT_KEY": secrets.token_hex(32),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "at revision 0003 (upgraded from empty)" in result.stderr
    assert migrate.current_revision(engine) == "0003"
