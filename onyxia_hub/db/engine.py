"""Engines and sessions for every store: PostgreSQL in production, SQLite on one machine.

Several processes write one store at once (the hub's providers, the portal, later other
services). A transaction that changes something is opened with `writing(engine)`:

- it locks what it reads before it writes (`SELECT ... FOR UPDATE` where a row is read
  then changed, `Store` and `CredentialCache` do it), so that two processes counting or
  updating the same row never lose one another's change. PostgreSQL locks the row; a row
  that does not exist yet cannot be locked, so two processes may both insert it: the
  loser runs its transaction again (`again_on_conflict`) and finds the row;
- on SQLite, which has no row locks, it starts with `BEGIN IMMEDIATE`: it takes the
  database's write lock before it reads. Without it, both processes read the same row,
  then write one after the other, and the first write is lost (measured: 74 of 300
  updates of one counter lost by two processes, tests/test_stores.py).

SQLite also gets a WAL journal (`PRAGMA journal_mode=WAL`: readers never block the
writer nor it them) and a busy timeout (`SQLITE_BUSY_TIMEOUT_MS`: a writer waits for the
lock held by another instead of failing with `database is locked`). Reads keep the
driver's behaviour (no transaction around a plain SELECT). PostgreSQL engines check
connections before use (`pool_pre_ping`): the database may restart under a hub.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000  # transactions here last milliseconds


WRITE_OPTION = "onyxia_write"  # execution option of `writing` engines


def make_engine(db_url: str) -> Engine:
    """An engine on db_url, with the settings of the module docstring."""
    url = make_url(db_url)
    if not url.drivername.startswith("sqlite"):
        return create_engine(url, future=True, pool_pre_ping=True)
    engine = create_engine(
        url, future=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def writing(engine: Engine) -> Engine:
    """The engine for transactions that change something (module docstring)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def again_on_conflict(transaction: Callable[[], T], attempts: int = 3) -> T:
    """Run transaction (a whole one, from its first read); when it lost a race to insert a
    row another process inserted first, run it again: it now finds and updates that row."""
    for attempt in range(attempts):
        try:
            return transaction()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def safe_url(db_url: str) -> str:
    """db_url with its password hidden, for logs and messages."""
    return make_url(db_url).render_as_string(hide_password=True)


def ensure_sqlite_directory(engine: Engine) -> None:
    """Create the directory of an SQLite file (mode 0700: it holds secrets' ciphertext)."""
    if engine.url.drivername.startswith("sqlite") and engine.url.database:
        if engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def session(engine: Engine, *, write: bool = False) -> Session:
    """A session whose objects stay readable after commit (they leave the store as values);
    `write=True` for one that changes something (`writing`)."""
    return Session(writing(engine) if write else engine, expire_on_commit=False)
