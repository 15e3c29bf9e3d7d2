"""Schema migrations of the portal's store, run with alembic from inside the package.

The scripts live in `onyxia_hub/portal/migrations/versions/`; the portal runs
`upgrade(engine)` at every start, so a new version of Onyxia Hub brings its tables up to
date by itself. The revision is kept in `onyxia_portal_alembic_version`, not alembic's
default `alembic_version`: the portal may share a PostgreSQL database with the hub, whose
own alembic table must not be touched.

By hand (e.g. before a downgrade of Onyxia Hub, or to inspect the revision):

    ONYXIA_PORTAL_DB_URL=postgresql+psycopg://... python -m onyxia_hub.portal --upgrade-db-only
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

SCRIPTS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "onyxia_portal_alembic_version"


def alembic_config(engine: Engine) -> Config:
    """An alembic Config on our scripts, bound to engine (no alembic.ini involved)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store to revision (every table created on an empty database)."""
    command.upgrade(alembic_config(engine), revision)


def prepare(db_url: str) -> tuple[str | None, str | None]:
    """Bring the store at db_url to its head (SQLite's directory created): the revisions
    before and after.

    The portal runs it at its start. The hub runs it too, before it starts (`onyxia-hub
    up`, and the Helm values' hub configuration): the hub answers requests while its
    services are still starting, and a launch in that second must not find the tables
    its providers read missing. Run twice, the second is a no-op.
    """
    from .store import make_engine  # late: the store imports the crypto and its models

    engine = make_engine(db_url)
    try:
        if engine.url.drivername.startswith("sqlite") and engine.url.database:
            Path(engine.url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(None))
    return [r.revision for r in reversed(list(script.walk_revisions()))]
