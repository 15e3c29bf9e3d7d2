"""`PortalApp`: the portal service as a traitlets application (`python -m onyxia_hub.portal`).

The hub starts it as a managed service and hands it, through the environment, what every
service gets (`JUPYTERHUB_API_TOKEN`, `JUPYTERHUB_API_URL`, `JUPYTERHUB_SERVICE_PREFIX`,
`JUPYTERHUB_SERVICE_URL`, `JUPYTERHUB_CLIENT_ID`...) and its own settings
(`ONYXIA_PORTAL_*`, below). Secrets never come on the command line, which `ps` shows to
every account: the database URL (it may hold a password) and the keys come from the
environment or from files.

At start it reads its keys, opens the store and runs the schema migrations, loads the
catalog, and listens on the address of `JUPYTERHUB_SERVICE_URL`. It exits by itself when
the hub that started it is gone (killed with -9, the hub cannot stop it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlparse

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuth
from tornado import ioloop, web
from tornado.log import LogFormatter
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Application

from .. import __version__
from ..catalog.loader import CatalogSource, default_catalog_path
from . import api, handlers, migrate, storage, views
from .base import NotFoundPage
from .crypto import CryptoError, FieldCrypto, keys_from
from .hubapi import HubAPI
from .store import Store, make_engine, safe_url

HERE = Path(__file__).resolve().parent
HUB_TEMPLATES = HERE.parent / "templates"
JUPYTERHUB_TEMPLATES = Path(DATA_FILES_PATH) / "templates"


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return value.split(os.pathsep)
    return [str(p) for p in parsed] if isinstance(parsed, list) else [str(parsed)]


class PortalApp(Application):
    name = "onyxia-portal"
    version = __version__
    description = "Onyxia Hub's portal: My services, My account and the admin view."

    aliases = {"config": "PortalApp.config_file", "log-level": "Application.log_level"}
    flags = {
        "upgrade-db-only": (
            {"PortalApp": {"upgrade_db_only": True}},
            "Run the store's migrations, then exit.",
        )
    }

    config_file = Unicode(
        help="""A Python configuration file (`c.PortalApp.x = ...`) read at start.
        Default: `$ONYXIA_PORTAL_CONFIG`, or none.""",
    ).tag(config=True)

    @default("config_file")
    def _config_file_default(self):
        return os.environ.get("ONYXIA_PORTAL_CONFIG", "")

    db_url = Unicode(
        help="""The store's database, as an SQLAlchemy URL.

        SQLite for one machine (the embedded hub uses `sqlite:///<state>/portal/portal.sqlite`),
        PostgreSQL in production: `postgresql+psycopg://portal@db.example.org/onyxia`.
        The portal's tables are prefixed `portal_` and its alembic revision is kept in
        `onyxia_portal_alembic_version`, so it may share the hub's database.
        Default: `$ONYXIA_PORTAL_DB_URL`, else `sqlite:///onyxia-portal.sqlite` in the
        working directory. Give a URL with a password through the environment, never on
        the command line (`ps` shows command lines to every account).""",
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self):
        return os.environ.get("ONYXIA_PORTAL_DB_URL", "sqlite:///onyxia-portal.sqlite")

    key_file = Unicode(
        help="""A file holding the keys that encrypt secret fields (personal access tokens),
        one per line, the first one encrypting: 64 hex characters (`openssl rand -hex 32`)
        or Fernet keys. Must not be readable by other accounts. `$ONYXIA_PORTAL_CRYPT_KEY`
        (keys separated by `;`) adds keys before the file's. The embedded hub generates
        `<state>/hub/secrets/portal_key`. Default: `$ONYXIA_PORTAL_KEY_FILE`.
        Rotation: put a new key first, keep the old ones; the portal re-encrypts every
        field with the first key at start, after which the old keys may go.""",
    ).tag(config=True)

    @default("key_file")
    def _key_file_default(self):
        return os.environ.get("ONYXIA_PORTAL_KEY_FILE", "")

    catalog_paths = List(
        Unicode(),
        help="""The catalog directories, as `OnyxiaSpawner.catalog_paths`: the portal shows
        services' display names, checks saved configurations and computes quotas from it.
        Default: `$ONYXIA_PORTAL_CATALOG_PATHS` (a JSON list), else the shipped `profiles/`.""",
    ).tag(config=True)

    @default("catalog_paths")
    def _catalog_paths_default(self):
        return _env_list("ONYXIA_PORTAL_CATALOG_PATHS") or [str(default_catalog_path())]

    service_url = Unicode(
        help="""Where the portal listens. Default: `$JUPYTERHUB_SERVICE_URL` (the hub sets
        it from the service's `url`), else `http://127.0.0.1:10101`.""",
    ).tag(config=True)

    @default("service_url")
    def _service_url_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    ip = Unicode(
        help="""The address to listen on, when it is not the host of `service_url`: in a
        Kubernetes hub pod the service URL names the hub's Service (`http://hub:10101`),
        which is no address of the pod; there `0.0.0.0`. Default: `$ONYXIA_PORTAL_IP`,
        else the host of `service_url`.""",
    ).tag(config=True)

    @default("ip")
    def _ip_default(self):
        return os.environ.get("ONYXIA_PORTAL_IP") or urlparse(self.service_url).hostname or ""

    base_url = Unicode(
        help="The portal's URL prefix. Default: `$JUPYTERHUB_SERVICE_PREFIX`.",
    ).tag(config=True)

    @default("base_url")
    def _base_url_default(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/portal/")

    hub_prefix = Unicode(
        help="""The hub's URL prefix (its pages, its static files).
        Default: `$JUPYTERHUB_BASE_URL` + `hub/`.""",
    ).tag(config=True)

    @default("hub_prefix")
    def _hub_prefix_default(self):
        return (os.environ.get("JUPYTERHUB_BASE_URL") or "/").rstrip("/") + "/hub/"

    local_accounts = Bool(
        help="""Show the Password and Accounts links of local accounts in the nav bar, as the
        hub does. Default: `$ONYXIA_PORTAL_LOCAL_ACCOUNTS` is `1`.""",
    ).tag(config=True)

    @default("local_accounts")
    def _local_accounts_default(self):
        return os.environ.get("ONYXIA_PORTAL_LOCAL_ACCOUNTS") == "1"

    product_name = Unicode("Onyxia Hub", help="The name in the nav bar and titles.").tag(
        config=True
    )

    repository_schemes = List(
        Unicode(),
        ["https"],
        help="""URL schemes allowed for the default git repository of My account.
        Only `https` by default; `c.PortalApp.repository_schemes = ["https", "ssh"]`
        would also accept ssh:// URLs.""",
    ).tag(config=True)

    launch_wait = Float(
        1.0,
        help="""Seconds a launch from the portal waits for the hub's answer before showing
        the server as starting (with its progress). Refusals (bad option, quota) come
        back well within it and are shown at once; later failures show in the progress.""",
    ).tag(config=True)

    progress_wait = Float(
        1.0,
        help="""Seconds the portal reads a starting server's progress stream for, when a
        page or the API asks for its progress.""",
    ).tag(config=True)

    auth_cache_max_age = Integer(
        10,
        help="""Seconds the portal trusts the hub's answer about who a token belongs to.
        Short, so that signing out of the hub signs out of the portal soon after.""",
    ).tag(config=True)

    named_server_limit = Integer(
        0, help="Shown on My services (the hub's `named_server_limit_per_user`; 0: none)."
    ).tag(config=True)

    pid_file = Unicode(
        help="""A file to write the portal's process id to (removed at exit), so that a hub
        restarted after a crash can stop a portal left behind. Default:
        `$ONYXIA_PORTAL_PID_FILE`, or none.""",
    ).tag(config=True)

    @default("pid_file")
    def _pid_file_default(self):
        return os.environ.get("ONYXIA_PORTAL_PID_FILE", "")

    watch_parent = Bool(
        True,
        help="""Exit when the process that started the portal (the hub) is gone.""",
    ).tag(config=True)

    upgrade_db_only = Bool(False, help="Run the migrations, then exit.").tag(config=True)

    storage_refresh_per_minute = Integer(
        30,
        help="""How many times a minute one server may ask `api/storage/credentials` for
        fresh S3 credentials (HTTP 429 beyond). Servers cache what they get and ask again
        only when it is due for renewal: a few times an hour.""",
    ).tag(config=True)

    storage_sweep_interval = Float(
        help="""Seconds between two sweeps that revoke the S3 credentials of users the hub
        no longer has (deleted) or whose local account was disapproved. 0: no sweep.
        Default: `$ONYXIA_STORAGE_SWEEP_INTERVAL`, else 60.""",
    ).tag(config=True)

    @default("storage_sweep_interval")
    def _storage_sweep_interval_default(self):
        try:
            return float(os.environ.get("ONYXIA_STORAGE_SWEEP_INTERVAL", "60"))
        except ValueError:
            return 60.0

    _log_formatter_cls = LogFormatter  # colours and %(color)s, as JupyterHub's logs

    @default("log_level")
    def _log_level_default(self):
        return logging.INFO

    @default("log_format")
    def _log_format_default(self):
        return (
            "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d portal]%(end_color)s %(message)s"
        )

    # -- start-up --------------------------------------------------------------------
    def initialize(self, argv=None):
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
            self.update_config(self.cli_config)  # the command line wins over the file
        for name in ("tornado.application", "tornado.general"):  # uncaught errors: our log
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = list(self.log.handlers), False
        self.store = self._open_store()
        if self.upgrade_db_only:
            return
        self._catalog_source = None
        self.catalog()
        # S3 credentials for My storage and running servers (hub's settings, our store)
        self.storage = storage.service_from_environment(self.store, self.log)
        self.storage_limit = storage.RateLimit(self.storage_refresh_per_minute)
        self.hub_auth = HubOAuth(
            parent=self,
            base_url=self.base_url,
            hub_prefix=self.hub_prefix,
            cache_max_age=self.auth_cache_max_age,
        )
        self.hub = HubAPI(self.hub_auth.api_url, self.hub_auth.api_token)
        self.jinja = Environment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader(str(HERE / "templates")),
                    FileSystemLoader(str(HUB_TEMPLATES)),
                    PrefixLoader({"templates": FileSystemLoader(str(JUPYTERHUB_TEMPLATES))}, "/"),
                ]
            ),
            autoescape=True,
        )
        self.jinja.filters["when"] = views.when

    def _open_store(self) -> Store:
        try:
            crypto = FieldCrypto(keys_from(self.key_file))
        except CryptoError as e:
            self.log.critical("Cannot start: %s", e)
            sys.exit(1)
        engine = make_engine(self.db_url)
        if engine.url.drivername.startswith("sqlite") and engine.url.database:
            Path(engine.url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
        self.log.info(
            "Store %s at revision %s%s",
            safe_url(self.db_url),
            after,
            f" (upgraded from {before or 'empty'})" if before != after else "",
        )
        store = Store(engine, crypto)
        rotated = store.reencrypt()
        if rotated:
            self.log.info("Re-encrypted %d secret field(s) with the first key", rotated)
        return store

    def catalog(self):
        """The catalog as it is now (reloaded when its files change), or None."""
        if self._catalog_source is None:
            try:
                self._catalog_source = CatalogSource(self.catalog_paths, log=self.log)
            except Exception as e:  # shown on the pages as "the catalog could not be read"
                self.log.error("The catalog cannot be read: %s", str(e).splitlines()[0])
                return None
        return self._catalog_source.current()

    def render(self, name: str, **context) -> str:
        return self.jinja.get_template(name).render({**self.template_vars(), **context})

    def template_vars(self) -> dict:
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
            "onyxia_portal_url": self.base_url,
            "onyxia_storage": getattr(self, "storage", None) is not None,
        }

    def make_app(self) -> web.Application:
        prefix = self.base_url
        args = {"portal": self}
        routes = [
            (prefix.rstrip("/") + "/?", web.RedirectHandler, {"url": prefix + "services"}),
            (prefix + "oauth_callback", handlers.OAuthCallbackHandler, args),
            (prefix + "logout", handlers.LogoutHandler, args),
            (prefix + "services", handlers.ServicesPage, args),
            (prefix + "configurations", handlers.ConfigurationsAction, args),
            (prefix + "account", handlers.AccountPage, args),
            (prefix + "admin", handlers.AdminPage, args),
            *[(path, cls, args) for path, cls in api.routes(prefix)],
            *[(path, cls, args) for path, cls in storage.routes(prefix)],
        ]
        return web.Application(
            routes,
            cookie_secret=os.urandom(32),
            login_url=self.hub_auth.login_url,
            xsrf_cookies=False,  # checked in BaseHandler.prepare, once the caller is known
            default_handler_class=NotFoundPage,
            default_handler_args=args,
            log_function=self._log_request,
        )

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
                    self.log.warning("The hub that started the portal is gone: exiting")
                    loop.stop()

            ioloop.PeriodicCallback(check_parent, 2000).start()
        if self.storage is not None and self.storage_sweep_interval > 0:

            def sweep_storage():
                task = asyncio.ensure_future(storage.sweep(self))
                self._sweeps = {t for t in getattr(self, "_sweeps", set()) if not t.done()}
                self._sweeps.add(task)

            ioloop.PeriodicCallback(sweep_storage, 1000 * self.storage_sweep_interval).start()
        self.log.info("Portal listening on %s, served at %s", self.service_url, self.base_url)
        try:
            loop.start()
        finally:
            if self.pid_file:
                Path(self.pid_file).unlink(missing_ok=True)
            self.store.engine.dispose()


main = PortalApp.launch_instance
