"""Alembic environment of every store: online migrations on the engine and version table
that `onyxia_hub.db.schema.Schema` passes in `config.attributes`."""

from __future__ import annotations

from alembic import context

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection, version_table=context.config.attributes["version_table"]
    )
    with context.begin_transaction():
        context.run_migrations()
