"""The store layer (onyxia_hub/db): stores made by earlier versions, the revision check of
services, and several processes writing one SQLite store at once.

Databases are real: SQLite files, and Debian's PostgreSQL (`db_url`, tests/helpers/postgres.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from traitlets.config import Config

from onyxia_hub.db import make_engine, open_store
from onyxia_hub.db import portal as portal_store
from onyxia_hub.db.store import Store
from onyxia_hub.embedded.up import prepare_stores
from onyxia_hub.providers.git import GitProvider
from onyxia_hub.providers.storage.cache import CredentialCache

DATA = Path(__file__).parent / "data"
DUMP_KEY = "fe1258c64ad354ac0cb47f5fbb4cea45da8fbe3a4b5bf195cc6b89ea2001f617"  # tests/data


def load_dump(db_url: str) -> None:
    """A store as Onyxia Hub 246b0e2 left it (tests/data/README.md)."""
    engine = make_engine(db_url)
    try:
        if engine.url.drivername.startswith("sqlite"):
            with sqlite3.connect(engine.url.database) as connection:
                connection.executescript((DATA / "portal-0003.sqlite.sql").read_text())
            return
        connection = engine.raw_connection()  # the dump sets search_path: its own connection
        try:
            connection.cursor().execute((DATA / "portal-0003.postgresql.sql").read_text())
            connection.commit()
        finally:
            connection.invalidate()
    finally:
        engine.dispose()


async def test_a_store_made_before_the_store_package_upgrades_in_place(db_url, tmp_path):
    load_dump(db_url)
    key_file = tmp_path / "portal_key"
    key_file.write_text(DUMP_KEY + "\n")
    key_file.chmod(0o600)
    config = Config()
    config.JupyterHub.services = [
        {
            "name": "portal",
            "environment": {
                "ONYXIA_PORTAL_DB_URL": db_url,
                "ONYXIA_PORTAL_KEY_FILE": str(key_file),
            },
        }
    ]
    prepare_stores(config)  # what `onyxia-hub up` does before the hub starts
    engine = make_engine(db_url)
    try:
        # same revision, same version table: nothing re-created, nothing renamed
        assert portal_store.check(engine) == "0003"
        with engine.connect() as connection:
            versions = connection.execute(
                text("SELECT version_num FROM onyxia_portal_alembic_version")
            ).all()
        assert versions == [("0003",)]
        # every row readable by today's code, the secrets with the key they were sealed with
        handle = open_store(portal_store.SCHEMA, {}, db_url=db_url, key_file=str(key_file))
        store = Store(handle.engine, handle.crypto)
        account = store.account("ann")
        assert (account.git_name, account.git_repository, account.git_branch) == (
            "Ann Lovelace",
            "https://git.example.org/ann/course.git",
            "main",
        )
        assert store.git_token("ann") == "glpat-dump-token-0123456789"
        assert store.account("bob").git_name == "Bob" and not store.account("bob").token_set
        [saved] = store.configurations("ann")
        assert (saved.name, saved.server_name, saved.user_options["service"]) == (
            "big R",
            "rlab",
            "jupyter-r",
        )
        entry = CredentialCache(handle.engine, handle.crypto).load("ann")
        assert entry.current.access_key == "AKIADUMPACCESSKEY"
        assert (entry.store_id, entry.issue_count) == ("dump-store", 1)
        # the hub's git provider finds it from the portal service's settings alone
        git = GitProvider(config=config)
        assert git._read_account("ann").token == "glpat-dump-token-0123456789"
        # and new rows go on from the old ones (PostgreSQL's sequence kept its place)
        assert store.add_configuration("ann", "small", {"service": "jupyter-python"}).id == 2
    finally:
        engine.dispose()


def run_portal(db_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    key_file = tmp_path / "key"
    key_file.write_text(DUMP_KEY + "\n")
    key_file.chmod(0o600)
    environment = {
        **os.environ,
        "ONYXIA_PORTAL_DB_URL": db_url,
        "ONYXIA_PORTAL_KEY_FILE": str(key_file),
        "JUPYTERHUB_API_TOKEN": "unused",
    }
    return subprocess.run(
        [sys.executable, "-m", "onyxia_hub.portal", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "revision, expected",
    [
        (None, "has no tables yet"),
        ("0002", "is at revision 0002, this version of Onyxia Hub needs 0003"),
        ("9999", "is at revision 9999, which this version of Onyxia Hub does not know"),
    ],
    ids=["empty", "older", "newer"],
)
def test_a_service_refuses_a_store_that_is_not_at_head(tmp_path, revision, expected):
    db_url = f"sqlite:///{tmp_path / 'portal.sqlite'}"
    engine = make_engine(db_url)
    if revision == "9999":
        portal_store.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE onyxia_portal_alembic_version SET version_num = '9999'")
            )
    elif revision:
        portal_store.upgrade(engine, revision)
    result = run_portal(db_url, tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr and "--upgrade-db-only" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    after = portal_store.current_revision(engine)  # left as it was: services never migrate
    assert after == revision
    engine.dispose()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from onyxia_hub.db import make_engine
    from onyxia_hub.db.crypto import FieldCrypto, parse_key
    from onyxia_hub.db.store import Store
    from onyxia_hub.providers.storage.base import StorageCredentials
    from onyxia_hub.providers.storage.cache import CredentialCache

    db_url, name, go, rounds = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    crypto = FieldCrypto([parse_key("ab" * 32)])
    engine = make_engine(db_url)
    store, cache = Store(engine, crypto), CredentialCache(engine, crypto)
    while not go.exists():
        time.sleep(0.005)
    for i in range(rounds):
        store.save_account(f"{name}-{i}", git_name=f"{name} {i}", git_token=f"token-{i}")
        store.add_configuration(f"{name}-{i}", "saved", {"service": "jupyter-python"})
        creds = StorageCredentials(f"AK{name}{i}", "secret", None, 0.0, None, "static", "")
        cache.store("shared", "user", creds, None, issuer="static", store_id="s", renew_at=None)
        store.save_account("shared", git_name=f"{name} {i}")
    print("done")
    """
)


def test_two_processes_writing_one_store_lose_nothing(db_url, tmp_path):
    """The hub's providers and the portal write the same store from two processes:
    read-then-write transactions from both at once, none refused or lost (on SQLite, where
    `database is locked` and lost updates lurk, and on PostgreSQL)."""
    portal_store.prepare(db_url)
    go, rounds = tmp_path / "go", 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db_url, name, str(go), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("hub", "portal")
    ]
    go.touch()
    outputs = [w.communicate(timeout=240) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert "database is locked" not in err
        assert writer.returncode == 0 and out.strip() == "done", err[-2000:]
    engine = make_engine(db_url)
    with engine.connect() as connection:

        def count(query):
            return connection.execute(text(query)).scalar()

        assert count("SELECT count(*) FROM portal_accounts") == 2 * rounds + 1
        assert count("SELECT count(*) FROM portal_configurations") == 2 * rounds
        # every store() counted: no update lost between the two processes
        assert count("SELECT issue_count FROM portal_storage_credentials") == 2 * rounds
        if db_url.startswith("sqlite"):
            assert count("PRAGMA journal_mode") == "wal"
    engine.dispose()


@pytest.mark.parametrize(
    "db_url, key, expected",
    [
        ("nonsense://x", True, "the store's URL 'nonsense://x' cannot be used"),
        ("sqlite:///{tmp}/portal.sqlite", False, "no encryption key for the store's secret"),
        ("postgresql+psycopg://portal:pw-in-url@127.0.0.1:1/x", True, "portal:***@127.0.0.1"),
    ],
    ids=["bad-url", "no-key", "unreachable"],
)
def test_a_service_that_cannot_open_its_store_says_why_in_one_line(tmp_path, db_url, key, expected):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ONYXIA_PORTAL_")}
    environment["ONYXIA_PORTAL_DB_URL"] = db_url.format(tmp=tmp_path)
    if key:
        environment["ONYXIA_PORTAL_CRYPT_KEY"] = DUMP_KEY
    result = subprocess.run(
        [sys.executable, "-m", "onyxia_hub.portal"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Cannot start: " in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "pw-in-url" not in result.stderr


def test_a_service_without_a_database_says_so_in_one_line():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ONYXIA_PORTAL_")}
    environment["ONYXIA_PORTAL_CRYPT_KEY"] = DUMP_KEY
    for args in ([], ["--upgrade-db-only"]):  # never a database of its own making
        result = subprocess.run(
            [sys.executable, "-m", "onyxia_hub.portal", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert "no database for the portal's store: set $ONYXIA_PORTAL_DB_URL" in result.stderr
        assert "Traceback" not in result.stderr


async def test_a_provider_told_no_database_reads_none(tmp_path, caplog):
    """`c.GitProvider.db_url = ""` switches My account off even where the portal service
    names a store; a store that cannot be read leaves the launch going, its URL logged."""
    config = Config()
    config.JupyterHub.services.append(  # only appended: the hub's list is not seen here
        {"name": "portal", "environment": {"ONYXIA_PORTAL_DB_URL": f"sqlite:///{tmp_path}/x"}}
    )
    assert GitProvider(config=config).db_url == f"sqlite:///{tmp_path}/x"
    config.GitProvider.db_url = ""
    git = GitProvider(config=config)
    assert git._store() is None and git._read_account("ann").token is None
    broken = GitProvider(config=Config({"GitProvider": {"db_url": f"sqlite:///{tmp_path}/y"}}))
    assert broken._read_account("ann").name is None  # no tables: logged, not raised
    assert f"not read from sqlite:///{tmp_path}/y" in caplog.text
