"""The stores: engines and sessions, encrypted fields, migrations, and how to open one.

Every provider and service reaches its data through here, never through another
service's package (a test enforces it: tests/test_layering.py).

- `engine`: `make_engine` (SQLite shared safely by several processes), `safe_url`;
- `crypto`: `FieldCrypto`, Fernet fields bound to their owner, keys and their rotation;
- `schema`: `Schema`, the alembic runner of one store (own revisions, own version table);
- `stores`: `open_store` / `open_for_hub`, a store from a service's variables;
- `models`: every table on one declarative base;
- `portal` (the portal store's `Schema`) and `store` (its queries).

Share code, not data: each store has its own tables, version table and key. A service
is handed only its own store's key, so one that parses untrusted input cannot decrypt
what another keeps (users' git tokens, cached S3 secrets). docs/architecture.md.
"""

from .crypto import CryptoError, FieldCrypto
from .engine import make_engine, safe_url
from .schema import Schema, SchemaError
from .stores import StoreHandle, open_for_hub, open_store, service_environment

__all__ = [
    "CryptoError",
    "FieldCrypto",
    "Schema",
    "SchemaError",
    "StoreHandle",
    "make_engine",
    "open_for_hub",
    "open_store",
    "safe_url",
    "service_environment",
]
