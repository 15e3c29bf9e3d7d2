"""A signed-in browser-like client on the portal: its pages, with the portal's own XSRF
cookie, and its JSON API (conftest's `portal_client` fixture hands out the class)."""

from __future__ import annotations

from tests.helpers.client import HubClient

PORTAL_PREFIX = "/services/portal/"


class PortalClient:
    """A signed-in HubClient, on the portal: `get`, `post` (XSRF added) and `api`."""

    def __init__(self, client: HubClient):
        self.client = client
        self.session = client.session

    def url(self, path: str) -> str:
        return self.client.url(PORTAL_PREFIX + path.lstrip("/"))

    def get(self, path: str, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.get(self.url(path), **kwargs)

    @property
    def xsrf(self) -> str:
        """The portal's XSRF token (its cookie, path /services/portal/), got from a page."""
        token = self.session.cookies.get("_xsrf", path=PORTAL_PREFIX)
        if token is None:
            assert self.get("services").status_code == 200
            token = self.session.cookies.get("_xsrf", path=PORTAL_PREFIX)
        return token

    def post(self, path: str, data: dict, *, xsrf: bool | str = True, **kwargs):
        data = dict(data)
        if xsrf:
            data["_xsrf"] = self.xsrf if xsrf is True else xsrf
        kwargs.setdefault("timeout", 60)
        return self.session.post(self.url(path), data=data, **kwargs)

    def api(self, method: str, path: str, token: str | None = None, xsrf=True, **kwargs):
        """The portal's JSON API with a hub token, or with the cookie (and the XSRF
        header unless xsrf=False)."""
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        elif xsrf:
            headers["X-XSRFToken"] = self.xsrf if xsrf is True else xsrf
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url("api/" + path), headers=headers, **kwargs)
