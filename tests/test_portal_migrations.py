"""The portal store's schema migrations, on SQLite and on a real PostgreSQL.

The PostgreSQL server is Debian's (`initdb`, `pg_ctl`, `postgres`; `scripts/test-prerequisites`
installs the `postgresql` package): the `postgres` and `db_url` fixtures of
tests/helpers/postgres.py.

Every test runs on both databases: migrations from an empty database, an upgrade that keeps
the data written at the first revision, a downgrade and upgrade again, a database shared
with JupyterHub's own tables, and the portal's `--upgrade-db-only` command.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import inspect, text

from onyxia_hub.db import make_engine
from onyxia_hub.db import portal as migrate
from onyxia_hub.db.crypto import FieldCrypto, parse_key
from onyxia_hub.db.store import Store

PORTAL_TABLES = {"portal_accounts", "portal_configurations", migrate.VERSION_TABLE}


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
