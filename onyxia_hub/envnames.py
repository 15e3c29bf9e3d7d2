"""Every environment variable the hub hands its services, named in one place.

A hub-managed service gets only the environment its entry in `c.JupyterHub.services`
gives it (plus JupyterHub's own `JUPYTERHUB_*`). Onyxia Hub's services read their settings
from variables named `ONYXIA_<SERVICE>_<SETTING>`; `ServiceVariables("portal").db_url` is
`ONYXIA_PORTAL_DB_URL`. The hub's providers read the same variables to find a service's
store (`onyxia_hub.db.stores`), which is why the names live here and not in a service.

| variable                        | what                                                    |
|---------------------------------|---------------------------------------------------------|
| `ONYXIA_<S>_DB_URL`             | the service's store (SQLAlchemy URL; a password only    |
|                                 | through the environment, never a command line)          |
| `ONYXIA_<S>_KEY_FILE`           | the file of the keys of its encrypted fields            |
| `ONYXIA_<S>_CRYPT_KEY`          | keys given directly (`;`-separated), before the file's  |
| `ONYXIA_<S>_CONFIG`             | a `c.<App>.x = ...` file read at start                  |
| `ONYXIA_<S>_CATALOG_PATHS`      | the catalog directories (a JSON list)                   |
| `ONYXIA_<S>_IP`                 | the address to listen on, when not the service URL's    |
| `ONYXIA_<S>_PID_FILE`           | where it writes its pid (a crashed hub's leftovers)     |
| `ONYXIA_<S>_LOCAL_ACCOUNTS`     | `1`: the pages link to the local accounts' pages        |
| `ONYXIA_<S>_COURSES_URL`        | the courses service's pages, for the nav bar            |
| `ONYXIA_<S>_STORAGE_PAGE`       | `1`: the nav bar shows the portal's My storage          |
| `ONYXIA_COURSES_PATHS`          | the courses service's course file directories           |
| `ONYXIA_COURSES_INIT_SCRIPTS`   | the personal init scripts the hub allows (JSON list)    |
| `ONYXIA_STORAGE_SETTINGS`       | the hub's storage settings as JSON (no secret in it)    |
| `ONYXIA_STORAGE_SWEEP_INTERVAL` | seconds between two revocation sweeps                   |
| `ONYXIA_STORAGE_ACCOUNTS_DB`    | the local accounts database, for those sweeps           |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceVariables:
    """The names of one service's variables (see the module docstring)."""

    service: str

    def _name(self, setting: str) -> str:
        return f"ONYXIA_{self.service.upper()}_{setting}"

    @property
    def db_url(self) -> str:
        return self._name("DB_URL")

    @property
    def key_file(self) -> str:
        return self._name("KEY_FILE")

    @property
    def crypt_key(self) -> str:
        return self._name("CRYPT_KEY")

    @property
    def config(self) -> str:
        return self._name("CONFIG")

    @property
    def catalog_paths(self) -> str:
        return self._name("CATALOG_PATHS")

    @property
    def ip(self) -> str:
        return self._name("IP")

    @property
    def pid_file(self) -> str:
        return self._name("PID_FILE")

    @property
    def local_accounts(self) -> str:
        return self._name("LOCAL_ACCOUNTS")

    @property
    def courses_url(self) -> str:
        return self._name("COURSES_URL")

    @property
    def storage_page(self) -> str:
        return self._name("STORAGE_PAGE")


PORTAL = ServiceVariables("portal")
COURSES = ServiceVariables("courses")
COURSES_PATHS = "ONYXIA_COURSES_PATHS"
COURSES_INIT_SCRIPTS = "ONYXIA_COURSES_INIT_SCRIPTS"

STORAGE_SETTINGS = "ONYXIA_STORAGE_SETTINGS"
STORAGE_SWEEP_INTERVAL = "ONYXIA_STORAGE_SWEEP_INTERVAL"
STORAGE_ACCOUNTS_DB = "ONYXIA_STORAGE_ACCOUNTS_DB"
