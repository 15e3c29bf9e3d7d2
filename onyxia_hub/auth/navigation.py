"""The hub's own pages that the datalab replaces: Home leads to My services.

JupyterHub's home page (`/hub/home`) is where its logo, its error pages and JupyterLab's
"Hub Control Panel" send users. With the portal running, that is My services (every
server, named or not, with start, stop, open and share), so `/hub/home` redirects there
and no link leaves a user on a page that bypasses the datalab's. Without a portal
(`onyxia_portal_url` not in `c.JupyterHub.template_vars`) JupyterHub's page is kept.

Both of Onyxia Hub's authenticators add these routes: an authenticator's handlers are
the only ones JupyterHub matches before its own.
"""

from __future__ import annotations

from jupyterhub.handlers.pages import HomeHandler as HubHomeHandler
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


def routes() -> list[tuple]:
    return [(r"/home", HomeHandler)]
