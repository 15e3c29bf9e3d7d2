"""The portal's store: My account, saved configurations, the S3 credentials cache.

Its tables are `portal_*` (`models`), its revisions `migrations/portal/`, its version
table `onyxia_portal_alembic_version`, its key `ONYXIA_PORTAL_KEY_FILE` /
`ONYXIA_PORTAL_CRYPT_KEY`. The portal service owns it; the hub's git provider reads My
account from it and the hub's storage provider shares the credentials cache with the
portal, so the hub holds its key too.

The functions below are `SCHEMA`'s, for this store: `upgrade(engine)`,
`current_revision(engine)`, `prepare(db_url)`...
"""

from __future__ import annotations

from .schema import Schema

SCHEMA = Schema("portal")
VERSION_TABLE = SCHEMA.version_table

upgrade = SCHEMA.upgrade
downgrade = SCHEMA.downgrade
current_revision = SCHEMA.current_revision
head_revision = SCHEMA.head_revision
revisions = SCHEMA.revisions
prepare = SCHEMA.prepare
check = SCHEMA.check
