"""What every service's handlers share: who is asking, XSRF, the hub's page layout, errors.

Authentication is JupyterHub's: `HubOAuthenticated` resolves the caller from an API token
(`Authorization: token ...`) or from the service's OAuth cookie, asking the hub which user
and which scopes it carries. Only callers holding `access:services!service=<name>` get in
(`hub_scopes`, set by the hub for its services).

XSRF: every request that changes something (any method but GET and HEAD) made with the
cookie must carry the XSRF token (`_xsrf` field or `X-XSRFToken` header); without it, or
with a wrong one, the answer is 403. Token-authenticated API calls need none (a page on
another site cannot add an Authorization header). JSON GETs made by scripts (fetch) need
the header too, as on the hub.

Errors: a page or API answer says what went wrong in the service's own words
(`FieldError`, `HubAPIError`, an `HTTPError` below 500); anything else is "Internal Server
Error" with the details in the log only, never a traceback to the client.

- `BaseHandler`: `self.app` (the `ServiceApp`), `self.user`, `self.groups`, `self.token`;
- `PageHandler`: `render_page(template, ...)` in the hub's layout; `APIHandler`: JSON;
- `OAuthCallbackHandler`, `LogoutHandler`, `NotFoundPage`: every service has them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from tornado import web

from ..fields import FieldError
from .hubapi import HubAPIError


@dataclass(frozen=True)
class PageUser:
    """The `user` JupyterHub's page.html expects, for the nav bar."""

    name: str
    admin: bool

    @property
    def json_escaped_name(self) -> str:
        return json.dumps(self.name)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")


def error_message(status: int, exc_info, default: str) -> str:
    """What to tell the client: our own messages, never an internal error's details."""
    exc = (exc_info or (None, None, None))[1]
    if isinstance(exc, FieldError):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, HubAPIError):
        return exc.message
    if isinstance(exc, web.HTTPError) and exc.log_message and status < 500:
        return exc.log_message
    return default


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """A service's handlers: `self.user` is the caller's name, `self.groups` their groups."""

    def initialize(self, app):
        self.app = app
        self.hub_auth = app.hub_auth

    @property
    def log(self):
        return self.app.log

    async def prepare(self):
        model = await self.hub_auth.get_user(self, sync=False)
        user = None
        if model:
            try:
                user = self.check_hub_user(model)
            except UserNotAllowed:
                raise web.HTTPError(
                    403, f"You do not have access to the {self.app.display_name}."
                ) from None
        self.current_user = user
        if self.request.method not in ("GET", "HEAD") and user is not None:
            self.check_xsrf_cookie()

    def get_current_user(self):
        return None  # set in prepare(); never resolved synchronously

    # -- who is asking -----------------------------------------------------------------
    @property
    def user(self) -> str:
        return self.current_user["name"]

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self.current_user.get("groups") or ())

    @property
    def is_admin(self) -> bool:
        return bool(self.current_user and self.current_user.get("admin"))

    @property
    def token(self) -> str:
        """The caller's own token: what the service acts with on their behalf."""
        return self.hub_auth.get_token(self)

    def require_admin(self, scope: str) -> None:
        """403 unless the caller is a hub admin; an API token must also hold `scope`
        unfiltered, so a narrowed admin token reaches no further here than on the hub."""
        if not self.is_admin:
            raise web.HTTPError(403, "Only administrators may see every user's servers.")
        if getattr(self, "_token_authenticated", False):
            if scope not in (self.current_user.get("scopes") or ()):
                raise web.HTTPError(403, f"This token lacks the {scope!r} scope.")

    @property
    def catalog(self):
        """The catalog as it is now, or None when it cannot be read."""
        return self.app.catalog()

    # -- errors ------------------------------------------------------------------------
    def send_error(self, status_code: int = 500, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, FieldError):
            status_code = 400
        elif isinstance(exc, HubAPIError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb):
        # expected refusals (400, 403, 404...): the access log's line says enough
        if isinstance(value, (FieldError, HubAPIError)) or (
            isinstance(value, web.HTTPError) and value.status_code < 500
        ):
            return
        super().log_exception(typ, value, tb)


class PageHandler(BaseHandler):
    """HTML pages, in the hub's own layout (its page.html, with Onyxia Hub's nav bar)."""

    def render_page(self, name: str, status: int = 200, **context) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.write(self.app.render(name, **self.page_context(), **context))

    def page_context(self) -> dict:
        user = self.current_user
        return {
            "user": PageUser(user["name"], bool(user.get("admin"))) if user else None,
            "parsed_scopes": {"admin-ui": True} if self.is_admin else {},
            "xsrf_token": self.xsrf_token.decode("ascii") if user else "",
            "service_url": self.app.base_url,
            "is_admin": self.is_admin,
        }

    def write_error(self, status_code: int, **kwargs) -> None:
        message = error_message(status_code, kwargs.get("exc_info"), self._reason)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            self.write(
                self.app.render(
                    "service-error.html",
                    **self.page_context(),
                    status_code=status_code,
                    message=message,
                )
            )
        except Exception:  # never a second error while showing the first
            self.write(f"<h1>{status_code}</h1>")


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Where the hub sends the browser back after signing it in to the service."""

    def initialize(self, app):
        self.hub_auth = app.hub_auth


class LogoutHandler(PageHandler):
    """Forget the service's cookie, then sign out of the hub."""

    def get(self):
        self.hub_auth.clear_cookie(self)
        self.redirect(self.app.hub_prefix + "logout")


class NotFoundPage(PageHandler):
    """Any other path under the service's prefix."""

    async def prepare(self):
        await super().prepare()  # who is asking, for the nav bar of the error page
        if self.current_user is None and self.request.method in ("GET", "HEAD"):
            self.redirect(self.get_login_url())  # then back here, signed in
            return
        raise web.HTTPError(404, f"There is no such page in the {self.app.display_name}.")


class APIHandler(BaseHandler):
    """JSON answers; errors as `{"error": message, "field": name or null}`."""

    def check_referer(self):
        return True

    def get_login_url(self):
        raise web.HTTPError(
            403,
            "Authentication required: a hub API token (Authorization: token ...), or the "
            "service's cookie with its XSRF token (X-XSRFToken) for changes.",
        )

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, default=str))

    def json_body(self) -> dict:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise FieldError("body", "is not valid JSON") from None
        if not isinstance(body, dict):
            raise FieldError("body", "must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = error_message(status_code, kwargs.get("exc_info"), self._reason)
        field = exc.field if isinstance(exc, FieldError) else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "field": field, "status": status_code}))
