"""The hub's own pages that the datalab replaces: Home leads to My services, and Launch
(`/hub/spawn`) to a catalog form that can start something.

JupyterHub's home page (`/hub/home`) is where its logo, its error pages and JupyterLab's
"Hub Control Panel" send users. With the portal running, that is My services (every
server, named or not, with start, stop, open and share), so `/hub/home` redirects there
and no link leaves a user on a page that bypasses the datalab's. Without a portal
(`onyxia_portal_url` not in `c.JupyterHub.template_vars`) JupyterHub's page is kept.

JupyterHub's `/hub/spawn` shows the catalog only while the user's default server is
stopped: once it runs, it sends the visitor into it, so the nav bar's Launch would open
JupyterLab instead of the catalog. Here, while the default server is active, `/hub/spawn`
(without `next`) opens the form for a named server instead, keeping the query (a link's
`opt-*` options): the first named server that is stopped and was never launched (one an
earlier visit opened and left), else a new name, `server-2`, `server-3`...; JupyterHub
still enforces `named_server_limit_per_user`. It is a GET that starts nothing.

Both of Onyxia Hub's authenticators add these routes: an authenticator's handlers are
the only ones JupyterHub matches before its own. With another authenticator, JupyterHub's
home page and `/hub/spawn` are kept.
"""

from __future__ import annotations

import inspect

from jupyterhub.handlers.pages import HomeHandler as HubHomeHandler
from jupyterhub.handlers.pages import SpawnHandler as HubSpawnHandler
from jupyterhub.utils import url_path_join
from tornado import web


def portal_url(settings: dict) -> str | None:
    """The portal's base URL (ending in /) from the hub's template_vars, or None."""
    url = (settings.get("template_vars") or {}).get("onyxia_portal_url")
    return url if isinstance(url, str) and url.startswith("/") else None


class HomeHandler(HubHomeHandler):
    """`/hub/home`: My services when the portal runs, else JupyterHub's page."""

    @web.authenticated
    async def get(self):
        portal = portal_url(self.settings)
        if portal is None:
            return await super().get()
        self.redirect(portal + "services")


def free_server_name(servers: dict[str, tuple[bool, bool]]) -> str:
    """The named server a new launch should use, given each existing server's name and
    (active, ever launched): the first stopped one never launched, else the first of
    server-2, server-3... that is not taken."""
    for name in sorted(servers):
        active, launched = servers[name]
        if name and not active and not launched:
            return name
    n = 2
    while f"server-{n}" in servers:
        n += 1
    return f"server-{n}"


class SpawnHandler(HubSpawnHandler):
    """`/hub/spawn`: the catalog for the default server, or for a named one while the
    default server is active (see the module docstring); POST is JupyterHub's."""

    @web.authenticated
    async def get(self, *args):
        user = self.current_user
        default = user.orm_user.orm_spawners.get("")
        busy = default is not None and user.spawners[""].active
        if self.allow_named_servers and busy and not self.get_argument("next", None):
            servers = {
                name: (name in user.spawners and user.spawners[name].active, bool(orm.user_options))
                for name, orm in user.orm_user.orm_spawners.items()
            }
            url = url_path_join(
                self.hub.base_url, "spawn", user.escaped_name, free_server_name(servers)
            )
            query = self.request.query
            return self.redirect(f"{url}?{query}" if query else url)
        result = super().get(*args)
        if inspect.isawaitable(result):
            await result


def routes() -> list[tuple]:
    return [(r"/home", HomeHandler), (r"/spawn", SpawnHandler)]
