"""A real PostgreSQL server for the tests (Debian's `initdb`, `pg_ctl`, `postgres`), and an
empty database of each kind; a pytest plugin (conftest's `pytest_plugins`).

- `postgres` (module): the base URL of a server started for the module in a temporary
  directory on a free loopback port. PostgreSQL refuses to run as root: as root it runs as
  the unprivileged account `onyxia-test-pg`, created on first use.
- `db_url`: a new, empty database, once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from onyxia_hub.db import make_engine
from onyxia_hub.embedded.ports import pick_free_port

PG_ACCOUNT = "onyxia-test-pg"


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
