"""Alembic environment of the portal's store: online migrations on the engine the portal
passes in `config.attributes["engine"]` (see `onyxia_hub.portal.migrate`)."""

from __future__ import annotations

from alembic import context

from onyxia_hub.portal.migrate import VERSION_TABLE

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
