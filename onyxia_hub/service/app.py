"""`ServiceApp`: the traitlets application every hub-managed service is built on.

The hub starts a managed service (`c.JupyterHub.services`, with a `command`) and hands it,
through the environment, what every service gets (`JUPYTERHUB_API_TOKEN`,
`JUPYTERHUB_API_URL`, `JUPYTERHUB_SERVICE_PREFIX`, `JUPYTERHUB_SERVICE_URL`,
`JUPYTERHUB_CLIENT_ID`...) and its own settings (`ONYXIA_<NAME>_*`, `onyxia_hub.envnames`).
Secrets never come on the command line, which `ps` shows to every account: the database
URL (it may hold a password) and the keys come from the environment or from files.

At start (`initialize`) it reads its configuration file, opens its store
(`onyxia_hub.db.open_store`: its own database and key, nothing else) and checks the
schema is at head, refusing to start otherwise (the hub migrates stores before it starts
its services); loads the catalog; then `start` listens on the address of
`JUPYTERHUB_SERVICE_URL` and exits by itself when the hub that started it is gone
(killed with -9, the hub cannot stop it).

A service subclasses it with a name, its `Schema` (or None), its templates directory and
its routes (`routes`); `setup` and `on_start` are its hooks. Handlers come from
`.handlers`: HubOAuth-authenticated, XSRF on every change, errors without tracebacks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuth
from tornado import ioloop, web
from tornado.log import LogFormatter
from traitlets import Bool, Integer, List, Unicode, default
from traitlets.config import Application

from .. import __version__
from ..catalog.loader import CatalogSource, default_catalog_path
from ..db import Schema, SchemaError, StoreHandle, open_store, safe_url
from ..envnames import ServiceVariables
from . import handlers
from .hubapi import HubAPI

HERE = Path(__file__).resolve().parent
HUB_TEMPLATES = HERE.parent / "templates"
JUPYTERHUB_TEMPLATES = Path(DATA_FILES_PATH) / "templates"


def env_list(name: str) -> list[str] | None:
    """A list from the variable `name`: JSON, or paths separated by `os.pathsep`."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return value.split(os.pathsep)
    return [str(p) for p in parsed] if isinstance(parsed, list) else [str(parsed)]


class ServiceApp(Application):
    """A hub-managed service; see the module docstring."""

    service_name: ClassVar[str] = "service"  # its URL is /services/<name>/
    display_name: ClassVar[str] = "service"  # in messages: "You do not have access to the ..."
    schema: ClassVar[Schema | None] = None  # its store, or None for a service without one
    templates: ClassVar[Path | None] = None  # its own templates, before the skeleton's
    default_port: ClassVar[int] = 10100

    version = __version__
    aliases = {"config": "ServiceApp.config_file", "log-level": "Application.log_level"}
    flags = {
        "upgrade-db-only": (
            {"ServiceApp": {"upgrade_db_only": True}},
            "Bring the service's store to its head revision, then exit.",
        )
    }

    @property
    def variables(self) -> ServiceVariables:
        return ServiceVariables(self.service_name)

    config_file = Unicode(
        help="""A Python configuration file (`c.<App>.x = ...`) read at start; the command
        line wins over it. Default: `$ONYXIA_<NAME>_CONFIG`, or none.""",
    ).tag(config=True)

    @default("config_file")
    def _config_file_default(self):
        return os.environ.get(self.variables.config, "")

    db_url = Unicode(
        help="""The service's store, as an SQLAlchemy URL.

        SQLite on one machine (the embedded hub uses `sqlite:///<state>/<name>/<name>.sqlite`),
        PostgreSQL in production: `postgresql+psycopg://hub@db.example.org/onyxia`. The
        service's tables are its own and its alembic revision is kept in
        `onyxia_<name>_alembic_version`, so it may share the hub's database. The hub
        migrates it before it starts the service; the service refuses to start on a store
        that is not at its head revision (`--upgrade-db-only` migrates by hand).
        Default: `$ONYXIA_<NAME>_DB_URL`; required (there is no implicit database: the
        service would only find it empty and refuse it). Give a URL with a password
        through the environment, never on the command line (`ps` shows command lines to
        every account).""",
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return os.environ.get(self.variables.db_url, "")

    key_file = Unicode(
        help="""A file holding the keys that encrypt the store's secret fields, one per line,
        the first one encrypting: 64 hex characters (`openssl rand -hex 32`) or Fernet keys.
        Must not be readable by other accounts. `$ONYXIA_<NAME>_CRYPT_KEY` (keys separated
        by `;`) adds keys before the file's. The embedded hub generates
        `<state>/hub/secrets/<name>_key`. Each service has its own keys: never give one
        service another's. Default: `$ONYXIA_<NAME>_KEY_FILE`.""",
    ).tag(config=True)

    @default("key_file")
    def _key_file_default(self):
        return os.environ.get(self.variables.key_file, "")

    catalog_paths = List(
        Unicode(),
        help="""The catalog directories, as `OnyxiaSpawner.catalog_paths`: services' display
        names, launch options checked as the hub checks them, quotas.
        Default: `$ONYXIA_<NAME>_CATALOG_PATHS` (a JSON list), else the shipped `profiles/`.""",
    ).tag(config=True)

    @default("catalog_paths")
    def _catalog_paths_default(self):
        return env_list(self.variables.catalog_paths) or [str(default_catalog_path())]

    service_url = Unicode(
        help="""Where the service listens. Default: `$JUPYTERHUB_SERVICE_URL` (the hub sets
        it from the service's `url`), else `http://127.0.0.1:<the service's port>`.""",
    ).tag(config=True)

    @default("service_url")
    def _service_url_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{self.default_port}")

    ip = Unicode(
        help="""The address to listen on, when it is not the host of `service_url`: in a
        Kubernetes hub pod the service URL names the hub's Service (`http://hub:10101`),
        which is no address of the pod; there `0.0.0.0`. Default: `$ONYXIA_<NAME>_IP`,
        else the host of `service_url`.""",
    ).tag(config=True)

    @default("ip")
    def _ip_default(self):
        return os.environ.get(self.variables.ip) or urlparse(self.service_url).hostname or ""

    base_url = Unicode(
        help="""The service's URL prefix. Default: `$JUPYTERHUB_SERVICE_PREFIX`, else
        `/services/<name>/`.""",
    ).tag(config=True)

    @default("base_url")
    def _base_url_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")

    hub_prefix = Unicode(
        help="""The hub's URL prefix (its pages, its static files).
        Default: `$JUPYTERHUB_BASE_URL` + `hub/`.""",
    ).tag(config=True)

    @default("hub_prefix")
    def _hub_prefix_default(self):
        return self._hub_base() + "hub/"

    portal_url = Unicode(
        help="""Where the portal's pages are (My services, My account...), for the nav bar.
        Default: `$JUPYTERHUB_BASE_URL` + `services/portal/`; the portal its own prefix.""",
    ).tag(config=True)

    @default("portal_url")
    def _portal_url_default(self):
        return self._hub_base() + "services/portal/"

    courses_url = Unicode(
        help="""Where the courses service's pages are, for the nav bar's Courses entry
        (empty: no entry). Default: `$ONYXIA_<NAME>_COURSES_URL`; the hub sets it for its
        services when it runs the courses service.""",
    ).tag(config=True)

    @default("courses_url")
    def _courses_url_default(self):
        return os.environ.get(self.variables.courses_url, "")

    storage_page = Bool(
        help="""The portal's My storage page exists (the hub hands users S3 storage): the
        nav bar shows it, as on the hub's pages. Default: `$ONYXIA_<NAME>_STORAGE_PAGE`
        is `1`; the hub sets it for its services when storage is configured.""",
    ).tag(config=True)

    @default("storage_page")
    def _storage_page_default(self):
        return os.environ.get(self.variables.storage_page) == "1"

    local_accounts = Bool(
        help="""The hub keeps local accounts (OnyxiaLocalAuthenticator): the nav bar's Admin
        opens People, and My account links to the password page, as on the hub's pages.
        Default: `$ONYXIA_<NAME>_LOCAL_ACCOUNTS` is `1`.""",
    ).tag(config=True)

    @default("local_accounts")
    def _local_accounts_default(self):
        return os.environ.get(self.variables.local_accounts) == "1"

    product_name = Unicode("Onyxia Hub", help="The name in the nav bar and titles.").tag(
        config=True
    )

    auth_cache_max_age = Integer(
        10,
        help="""Seconds the service trusts the hub's answer about who a token belongs to.
        Short, so that signing out of the hub signs out of the service soon after.""",
    ).tag(config=True)

    pid_file = Unicode(
        help="""A file to write the service's process id to (removed at exit), so that a hub
        restarted after a crash can stop a service left behind. Default:
        `$ONYXIA_<NAME>_PID_FILE`, or none.""",
    ).tag(config=True)

    @default("pid_file")
    def _pid_file_default(self):
        return os.environ.get(self.variables.pid_file, "")

    watch_parent = Bool(
        True,
        help="""Exit when the process that started the service (the hub) is gone.""",
    ).tag(config=True)

    upgrade_db_only = Bool(
        False, help="Bring the store to its head revision, then exit (`--upgrade-db-only`)."
    ).tag(config=True)

    _log_formatter_cls = LogFormatter  # colours and %(color)s, as JupyterHub's logs

    @default("log_level")
    def _log_level_default(self):
        return logging.INFO

    @default("log_format")
    def _log_format_default(self):
        return (
            "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d "
            f"{self.service_name}]%(end_color)s %(message)s"
        )

    def _hub_base(self) -> str:
        return (os.environ.get("JUPYTERHUB_BASE_URL") or "/").rstrip("/") + "/"

    @property
    def hub_base(self) -> str:
        """The hub's base URL: user servers are under `<hub_base>user/`."""
        return self._hub_base()

    # -- start-up --------------------------------------------------------------------
    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
            self.update_config(self.cli_config)  # the command line wins over the file
        for name in ("tornado.application", "tornado.general"):  # uncaught errors: our log
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = list(self.log.handlers), False
        self.db = self.open_db() if self.schema is not None else None
        if self.upgrade_db_only:
            return
        self._catalog_source = None
        self.catalog()
        self.hub_auth = HubOAuth(
            parent=self,
            base_url=self.base_url,
            hub_prefix=self.hub_prefix,
            cache_max_age=self.auth_cache_max_age,
        )
        self.hub = HubAPI(self.hub_auth.api_url, self.hub_auth.api_token)
        loaders = [FileSystemLoader(str(self.templates))] if self.templates else []
        self.jinja = Environment(
            loader=ChoiceLoader(
                [
                    *loaders,
                    FileSystemLoader(str(HERE / "templates")),
                    FileSystemLoader(str(HUB_TEMPLATES)),
                    PrefixLoader({"templates": FileSystemLoader(str(JUPYTERHUB_TEMPLATES))}, "/"),
                ]
            ),
            autoescape=True,
        )
        self.setup()

    def fail(self, message: str) -> None:
        """Stop at start-up with one line saying why (never a traceback)."""
        self.log.critical("Cannot start: %s", message)
        sys.exit(1)

    def open_db(self) -> StoreHandle:
        """The service's own store, at its head revision (or migrated: --upgrade-db-only)."""
        if not self.db_url:
            self.fail(
                f"no database for the {self.display_name}'s store: set "
                f"${self.variables.db_url} (or c.{type(self).__name__}.db_url)"
            )
        try:
            handle = open_store(self.schema, os.environ, db_url=self.db_url, key_file=self.key_file)
        except Exception as e:  # a URL SQLAlchemy cannot read, a driver that is missing
            self.fail(
                f"the store's URL {self.db_url.split('@')[-1]!r} cannot be used: {_first_line(e)}"
            )
        if handle.key_problem:
            self.fail(handle.key_problem)
        try:
            if self.upgrade_db_only:
                before, after = self.schema.prepare(self.db_url)
            else:
                before = after = self.schema.check(handle.engine)
        except SchemaError as e:
            self.fail(str(e))
        except Exception as e:  # unreachable database, bad URL: one line, no traceback
            self.fail(f"the store {safe_url(self.db_url)} cannot be used: {_first_line(e)}")
        self.log.info(
            "Store %s at revision %s%s",
            safe_url(self.db_url),
            after,
            f" (upgraded from {before or 'empty'})" if before != after else "",
        )
        return handle

    def setup(self) -> None:
        """Hook: what the service prepares once its store, catalog and hub client exist."""

    def catalog(self):
        """The catalog as it is now (reloaded when its files change), or None."""
        if self._catalog_source is None:
            try:
                self._catalog_source = CatalogSource(self.catalog_paths, log=self.log)
            except Exception as e:  # shown on the pages as "the catalog could not be read"
                self.log.error("The catalog cannot be read: %s", _first_line(e))
                return None
        return self._catalog_source.current()

    # -- pages -------------------------------------------------------------------------
    def render(self, name: str, **context) -> str:
        return self.jinja.get_template(name).render({**self.template_vars(), **context})

    def template_vars(self) -> dict:
        """What every page's template sees: the hub's page.html variables and the nav bar."""
        prefix = self.hub_prefix
        return {
            "base_url": prefix,
            "prefix": prefix,
            "logo_url": prefix + "home",
            "login_url": prefix + "login",
            "logout_url": self.base_url + "logout",
            "static_url": lambda path, include_version=True: f"{prefix}static/{path}",
            "version_hash": "",
            "services": [],
            "announcement": None,
            "no_spawner_check": True,
            "onyxia_product_name": self.product_name,
            "onyxia_local_accounts": self.local_accounts,
            "onyxia_portal_url": self.portal_url,
            "onyxia_courses_url": self.courses_url,
            "onyxia_storage": self.storage_page,
            "service_name": self.service_name,
            "service_url": self.base_url,
        }

    def routes(self) -> list[tuple]:
        """The service's own routes: `(path, handler)` with the path under `base_url` (a
        regular expression, as tornado's), the handler a `handlers.BaseHandler` (it gets
        the app); or `(path, handler, kwargs)` for any other tornado handler."""
        return []

    def make_app(self) -> web.Application:
        prefix = self.base_url
        args = {"app": self}
        routes = [
            (prefix + "oauth_callback", handlers.OAuthCallbackHandler, args),
            (prefix + "logout", handlers.LogoutHandler, args),
        ]
        for path, cls, *kwargs in self.routes():
            routes.append((prefix + path, cls, kwargs[0] if kwargs else args))
        return web.Application(
            routes,
            cookie_secret=self.cookie_secret(),
            login_url=self.hub_auth.login_url,
            xsrf_cookies=False,  # checked in BaseHandler.prepare, once the caller is known
            default_handler_class=handlers.NotFoundPage,
            default_handler_args=args,
            log_function=self._log_request,
        )

    def cookie_secret(self) -> bytes:
        """What signs the service's cookies: derived from its hub API token, so that a
        service the hub restarts (after a crash, an upgrade) keeps its users signed in;
        a new one whenever the hub gives the service a new token."""
        token = self.hub_auth.api_token
        if not token:
            return os.urandom(32)
        return hmac.new(token.encode(), b"onyxia-service-cookie-secret", hashlib.sha256).digest()

    def _log_request(self, handler) -> None:
        """One line per request: status, method, path (never the query: OAuth codes)."""
        status = handler.get_status()
        level = logging.INFO if status < 400 or status in (403, 404) else logging.WARNING
        user = getattr(handler, "current_user", None) if hasattr(handler, "_current_user") else None
        who = f" ({user['name']})" if isinstance(user, dict) and "name" in user else ""
        self.log.log(
            level,
            "%d %s %s%s %.1fms",
            status,
            handler.request.method,
            handler.request.path,
            who,
            1000 * handler.request.request_time(),
        )

    # -- running -----------------------------------------------------------------------
    def on_start(self, loop: ioloop.IOLoop) -> None:
        """Hook: periodic work of the service, started with the loop."""

    def start(self):
        if self.upgrade_db_only:
            return
        parsed = urlparse(self.service_url)
        app = self.make_app()
        app.listen(parsed.port or 80, address=self.ip or "127.0.0.1", xheaders=True)
        if self.pid_file:
            Path(self.pid_file).write_text(f"{os.getpid()}\n")
        loop = ioloop.IOLoop.current()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
        if self.watch_parent:
            parent = os.getppid()

            def check_parent():
                if os.getppid() != parent:
                    self.log.warning(
                        "The hub that started the %s is gone: exiting", self.display_name
                    )
                    loop.stop()

            ioloop.PeriodicCallback(check_parent, 2000).start()
        self.on_start(loop)
        title = self.display_name[:1].upper() + self.display_name[1:]
        self.log.info("%s listening on %s, served at %s", title, self.service_url, self.base_url)
        try:
            loop.start()
        finally:
            if self.pid_file:
                Path(self.pid_file).unlink(missing_ok=True)
            if self.db is not None:
                self.db.engine.dispose()


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0][:300] if text else type(error).__name__
