"""Opening a store: the one way every provider and service gets an engine and its keys.

A store is named by its `Schema` (`portal`, ...) and found through its service's
variables (`onyxia_hub.envnames`): `ONYXIA_<SERVICE>_DB_URL`, `_KEY_FILE`, `_CRYPT_KEY`.

- A service reads them from its own environment: `open_store(schema, os.environ, ...)`.
- The hub's providers read them from the hub's configuration, where the service's entry
  in `c.JupyterHub.services` sets them: `open_for_hub(schema, config, ...)`. The hub's own
  environment is under it, so a variable set for the whole hub pod (the Helm values'
  `ONYXIA_PORTAL_CRYPT_KEY`) is seen too.

Explicit settings (a provider's `db_url`, `key_file`) win over the variables. A store is
opened once per process and settings (engines pool their connections): providers called
from many launches at once share it.

Who holds which key: each service only its own store's (the hub hands a service nothing
else), and the hub those of the stores its providers read. docs/architecture.md has the
table.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from traitlets.config import LazyConfigValue

from ..envnames import ServiceVariables
from .crypto import CryptoError, FieldCrypto, NoKey, keys_from
from .engine import make_engine
from .schema import Schema

_OPENED: dict[tuple, StoreHandle] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class StoreHandle:
    """An opened store: its engine, and its keys or why there are none."""

    schema: Schema
    db_url: str
    engine: Engine
    crypto: FieldCrypto | NoKey
    key_problem: str | None  # None when crypto is a FieldCrypto


def service_environment(config, service: str, environ: Mapping = os.environ) -> dict[str, str]:
    """The environment `service` runs with: the hub's, under its own `environment` in
    `c.JupyterHub.services` (read, never created in config)."""
    environment = dict(environ)
    hub = config.get("JupyterHub") if config else None
    services = hub.get("services", []) if hub else []
    if isinstance(services, LazyConfigValue):  # a file that only did services.append(...)
        services = services.get_value([])
    for entry in services if isinstance(services, list) else []:
        if isinstance(entry, Mapping) and entry.get("name") == service:
            environment.update(entry.get("environment") or {})
    return environment


def store_settings(
    schema: Schema, environ: Mapping, *, db_url: str | None = None, key_file: str | None = None
) -> tuple[str | None, str | None]:
    """(db_url, key_file): the explicit ones, else the store's variables in environ."""
    names = ServiceVariables(schema.name)
    return db_url or environ.get(names.db_url) or None, key_file or environ.get(names.key_file)


def open_store(
    schema: Schema, environ: Mapping, *, db_url: str | None = None, key_file: str | None = None
) -> StoreHandle | None:
    """The store, as environ and the explicit settings say; None when no database is given.

    Keys that cannot be read do not stop it from opening: `key_problem` says why, and
    `crypto` raises CryptoError with that reason for every secret field. Whoever needs
    the secrets decides whether that is fatal (a service refuses to start; the git
    provider delivers everything but the token).
    """
    names = ServiceVariables(schema.name)
    db_url, key_file = store_settings(schema, environ, db_url=db_url, key_file=key_file)
    if not db_url:
        return None
    given = environ.get(names.crypt_key, "")
    with _LOCK:
        cache_key = (schema.name, db_url, key_file or "", given)
        if cache_key not in _OPENED:
            try:
                crypto, problem = (
                    FieldCrypto(keys_from(key_file, {names.crypt_key: given}, names.crypt_key)),
                    None,
                )
            except CryptoError as e:
                crypto, problem = NoKey(str(e)), str(e)
            _OPENED[cache_key] = StoreHandle(schema, db_url, make_engine(db_url), crypto, problem)
        return _OPENED[cache_key]


def open_for_hub(
    schema: Schema, config, *, db_url: str | None = None, key_file: str | None = None
) -> StoreHandle | None:
    """The store as the hub's providers see it: `open_store` on the environment of the
    service that owns it (`service_environment`)."""
    environment = service_environment(config, schema.name)
    return open_store(schema, environment, db_url=db_url, key_file=key_file)
