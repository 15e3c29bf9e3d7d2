"""The migration runner: one `Schema` per store, run with alembic from inside the package.

A store's revisions live in `onyxia_hub/db/migrations/<store>/`; every store shares the
alembic environment `migrations/env.py`. Each store keeps its revision in a version table
of its own (`onyxia_<store>_alembic_version`, never alembic's default `alembic_version`,
which is JupyterHub's): stores may share one PostgreSQL database with the hub and with
each other, and none touches another's tables.

Who migrates: the hub, before it starts (`onyxia-hub up`, the Helm values'
`20-onyxia-portal.py`), with `Schema.prepare`: it answers launches while its services
are still starting, and its providers read their tables. A service only checks its store
is at head (`Schema.check`) and refuses to start otherwise, with a message saying how to
upgrade: it never changes a schema by surprise. By hand, e.g. before a downgrade:

    ONYXIA_PORTAL_DB_URL=postgresql+psycopg://... python -m onyxia_hub.portal --upgrade-db-only

A new store is migrated by the hub once it is listed with the others: `hub_stores()` in
`onyxia_hub/embedded/up.py`, and the Helm values' hub configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from .engine import ensure_sqlite_directory, make_engine, safe_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(Exception):
    """A store that is not at the revision this version of Onyxia Hub needs."""


@dataclass(frozen=True)
class Schema:
    """One store's tables: its revisions and the table that records where it stands."""

    name: str  # the store's name: its revisions are in migrations/<name>/
    revisions_dir: Path | None = None  # elsewhere (a service outside the package)

    @property
    def version_table(self) -> str:
        return f"onyxia_{self.name}_alembic_version"

    @property
    def versions(self) -> Path:
        return self.revisions_dir or MIGRATIONS / self.name

    def alembic_config(self, engine: Engine | None) -> Config:
        """An alembic Config on this store's revisions, bound to engine (no alembic.ini)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", str(self.versions))
        config.attributes["engine"] = engine
        config.attributes["version_table"] = self.version_table
        return config

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        """Bring the store to revision (every table created on an empty database)."""
        command.upgrade(self.alembic_config(engine), revision)

    def downgrade(self, engine: Engine, revision: str) -> None:
        command.downgrade(self.alembic_config(engine), revision)

    def current_revision(self, engine: Engine) -> str | None:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": self.version_table}
            )
            return context.get_current_revision()

    def head_revision(self) -> str:
        return ScriptDirectory.from_config(self.alembic_config(None)).get_current_head()

    def revisions(self) -> list[str]:
        """Every revision, oldest first."""
        script = ScriptDirectory.from_config(self.alembic_config(None))
        return [r.revision for r in reversed(list(script.walk_revisions()))]

    def prepare(self, db_url: str) -> tuple[str | None, str | None]:
        """Bring the store at db_url to its head (SQLite's directory created): the
        revisions before and after. Run twice, the second is a no-op."""
        engine = make_engine(db_url)
        try:
            ensure_sqlite_directory(engine)
            before = self.current_revision(engine)
            self.upgrade(engine)
            return before, self.current_revision(engine)
        finally:
            engine.dispose()

    def check(self, engine: Engine) -> str:
        """The store's revision, if it is the head; else SchemaError saying what to do."""
        current, head = self.current_revision(engine), self.head_revision()
        if current == head:
            return current
        where = safe_url(engine.url.render_as_string(hide_password=False))
        if current is None:
            state = "has no tables yet"
        elif current in self.revisions():
            state = f"is at revision {current}, this version of Onyxia Hub needs {head}"
        else:
            state = (
                f"is at revision {current}, which this version of Onyxia Hub does not know "
                f"(it needs {head}): a newer version made it"
            )
        variable = f"ONYXIA_{self.name.upper()}_DB_URL"
        raise SchemaError(
            f"the {self.name} store {where} {state}. The hub upgrades it when it starts; "
            f"to do it by hand, run the service's command with --upgrade-db-only and "
            f"{variable}={where} (its password through the environment)"
        )
