"""`PortalApp`: the portal service (`python -m onyxia_hub.portal`), on the service skeleton.

Everything a hub-managed service does at start and while it runs (configuration, its store
at head, the hub's OAuth, exit when the hub is gone) is `onyxia_hub.service.ServiceApp`'s.
The portal adds its settings below, its store's queries (`db.store.Store`: My account,
saved configurations; keys re-encrypted with the first one at start), S3 credentials for
My storage and running servers, and its routes.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tornado import ioloop, web
from traitlets import Float, Integer, List, Unicode, default

from ..db import portal as portal_store
from ..db.store import Store
from ..envnames import STORAGE_SWEEP_INTERVAL
from ..service.app import ServiceApp
from . import api, handlers, storage, views

HERE = Path(__file__).resolve().parent


class PortalApp(ServiceApp):
    service_name = "portal"
    display_name = "portal"
    schema = portal_store.SCHEMA
    templates = HERE / "templates"
    default_port = 10101

    name = "onyxia-portal"
    description = "Onyxia Hub's portal: My services, My account and the admin view."

    @default("portal_url")
    def _portal_url_default(self):
        return self.base_url

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

    named_server_limit = Integer(
        0, help="Shown on My services (the hub's `named_server_limit_per_user`; 0: none)."
    ).tag(config=True)

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
            return float(os.environ.get(STORAGE_SWEEP_INTERVAL, "60"))
        except ValueError:
            return 60.0

    # -- start-up --------------------------------------------------------------------
    def setup(self) -> None:
        self.store = Store(self.db.engine, self.db.crypto)
        rotated = self.store.reencrypt()
        if rotated:
            self.log.info("Re-encrypted %d secret field(s) with the first key", rotated)
        # S3 credentials for My storage and running servers (hub's settings, our store)
        self.storage = storage.service_from_environment(self.store, self.log)
        self.storage_limit = storage.RateLimit(self.storage_refresh_per_minute)
        self.jinja.filters["when"] = views.when

    def template_vars(self) -> dict:
        storage_on = getattr(self, "storage", None) is not None
        return {**super().template_vars(), "onyxia_storage": storage_on}

    def routes(self) -> list[tuple]:
        return [
            ("?", web.RedirectHandler, {"url": self.base_url + "services"}),
            ("services", handlers.ServicesPage),
            ("configurations", handlers.ConfigurationsAction),
            ("account", handlers.AccountPage),
            ("admin", handlers.AdminPage),
            *api.routes(),
            *storage.routes(),
        ]

    def on_start(self, loop: ioloop.IOLoop) -> None:
        if self.storage is None or self.storage_sweep_interval <= 0:
            return

        def sweep_storage():
            task = asyncio.ensure_future(storage.sweep(self))
            self._sweeps = {t for t in getattr(self, "_sweeps", set()) if not t.done()}
            self._sweeps.add(task)

        ioloop.PeriodicCallback(sweep_storage, 1000 * self.storage_sweep_interval).start()


main = PortalApp.launch_instance
