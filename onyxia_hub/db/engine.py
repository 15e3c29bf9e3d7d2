"""Engines and sessions for every store: PostgreSQL in production, SQLite on one machine.

SQLite is shared by several processes on one machine (the hub's providers, the portal,
later other services), each with its own connections. Three settings make concurrent
writers wait for each other instead of failing with `database is locked`:

- WAL journal (`PRAGMA journal_mode=WAL`): readers never block the writer nor it them;
- a busy timeout (`PRAGMA busy_timeout`, `SQLITE_BUSY_TIMEOUT_MS`): a writer waits for the
  lock held by another instead of failing at once;
- every transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front, while
  the busy timeout still applies. A transaction that first reads and then writes would
  otherwise ask for the lock in the middle, and SQLite answers that upgrade with an
  immediate `SQLITE_BUSY` (no waiting: it would deadlock) whenever another process wrote
  since the read began. Transactions here are a few statements long, so serialising them
  costs nothing measurable.

PostgreSQL needs none of this; its engines check connections before use
(`pool_pre_ping`), since the database may restart under a long-running hub.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(db_url: str) -> Engine:
    """An engine on db_url, with the SQLite settings of the module docstring."""
    url = make_url(db_url)
    if not url.drivername.startswith("sqlite"):
        return create_engine(url, future=True, pool_pre_ping=True)
    engine = create_engine(
        url, future=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # no implicit BEGIN: ours, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def safe_url(db_url: str) -> str:
    """db_url with its password hidden, for logs and messages."""
    return make_url(db_url).render_as_string(hide_password=True)


def ensure_sqlite_directory(engine: Engine) -> None:
    """Create the directory of an SQLite file (mode 0700: it holds secrets' ciphertext)."""
    if engine.url.drivername.startswith("sqlite") and engine.url.database:
        if engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (they leave the store as values)."""
    return Session(engine, expire_on_commit=False)
