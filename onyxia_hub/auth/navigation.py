"""The hub's own pages that the datalab replaces: Home leads to My services, Launch to a
catalog form that can start something.

JupyterHub's home page (`/hub/home`) is where its logo, its error pages and JupyterLab's
"Hub Control Panel" send users. With the portal running, that is My services (every
server, named or not, with start, stop, open and share), so `/hub/home` redirects there
and no link leaves a user on a page that bypasses the datalab's. Without a portal
(`onyxia_portal_url` not in `c.JupyterHub.template_vars`) JupyterHub's page is kept.

`/hub/spawn` shows the catalog only while the user's default server is stopped: once it
runs, JupyterHub sends the visitor into it. The nav bar's Launch (`/hub/launch`) opens the
form for the default server when it is free, else for a new named server (`server-2`,
`server-3`...), keeping the query (a link's `opt-*` options); JupyterHub still enforces
`named_server_limit_per_user`. It is a GET that starts nothing: it only picks the form.

Both of Onyxia Hub's authenticators add these routes: an authenticator's handlers are
the only ones JupyterHub matches before its own.
"""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.pages import HomeHandler as HubHomeHandler
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


def free_server_name(taken) -> str:
    """The first of server-2, server-3... that is not a name in taken."""
    n = 2
    while f"server-{n}" in taken:
        n += 1
    return f"server-{n}"


class LaunchHandler(BaseHandler):
    """`/hub/launch`: the catalog form for a server that is not running."""

    @web.authenticated
    def get(self):
        user = self.current_user
        default = user.spawners.get("")
        name = ""
        if self.allow_named_servers and default is not None and default.active:
            name = free_server_name(set(user.orm_user.orm_spawners))
        url = url_path_join(self.hub.base_url, "spawn", user.escaped_name, *[name] if name else [])
        query = self.request.query
        self.redirect(f"{url}?{query}" if query else url)


def routes() -> list[tuple]:
    return [(r"/home", HomeHandler), (r"/launch", LaunchHandler)]
