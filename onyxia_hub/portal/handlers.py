"""The portal's pages: My services, My account, Admin > Servers (admins).

Every state change is a POST with the XSRF token (checked by the service skeleton);
after it succeeds the browser is sent back to the page (POST-redirect-GET) with a code
saying what was done; a refusal re-renders the page with HTTP 400 (or the hub's status)
and a message naming the field.
"""

from __future__ import annotations

from urllib.parse import urlencode

from tornado import web

from ..fields import FieldError
from ..service.handlers import PageHandler, error_message
from ..service.hubapi import HubAPIError
from . import actions, views

DONE = {  # ?done=... after a successful POST: what the page says
    "stopped": "{server} is stopping.",
    "deleted": "{server} is deleted.",
    "started": "{server} is starting.",
    "launched": "{server} is starting with the saved configuration.",
    "saved": "The configuration is saved.",
    "renamed": "The configuration is renamed.",
    "removed": "The configuration is deleted.",
    "account": "Your account settings are saved.",
}


def done_message(handler) -> str | None:
    code = handler.get_argument("done", "")
    if code not in DONE:
        return None
    server = handler.get_argument("server", "")[:30]
    label = f"Server {server!r}" if server else "Your default server"
    return DONE[code].format(server=label)


class ServicesPage(PageHandler):
    """My services: servers, quota, saved configurations."""

    @web.authenticated
    async def get(self):
        await self.show()

    async def show(self, status: int = 200, error: str | None = None, field: str | None = None):
        servers = await actions.my_servers(self)
        catalog = self.catalog
        prefix = self.app.hub_prefix
        saved = [
            views.configuration_json(c, prefix, self.user, catalog)
            for c in actions.configurations(self)
        ]
        self.render_page(
            "portal-services.html",
            status,
            page="services",
            servers=servers,
            gauges=views.quota(servers, catalog, self.groups),
            configurations=saved,
            error=error,
            error_field=field,
            done=None if error else done_message(self),
            spawn_url=prefix + "spawn",
            origin=f"{self.request.protocol}://{self.request.host}",
            server_limit=self.app.named_server_limit,
        )

    @web.authenticated
    async def post(self):
        action = self.get_body_argument("action", "")
        server = self.get_body_argument("server", "")
        try:
            if action == "stop":
                await actions.stop(self, server)
                return self.back("stopped", server)
            if action == "delete":
                await actions.stop(self, server, remove=True)
                return self.back("deleted", server)
            if action == "start":
                await actions.start(self, server)
                return self.back("started", server)
            if action == "save":
                await actions.save_server(self, self.get_body_argument("name", ""), server)
                return self.back("saved")
            raise FieldError("action", "must be one of stop, delete, start, save")
        except (FieldError, HubAPIError, web.HTTPError) as e:
            await self.refused(e)

    def back(self, done: str, server: str = "") -> None:
        query = {"done": done, **({"server": server} if server else {})}
        self.redirect(f"{self.app.base_url}services?{urlencode(query)}", status=303)

    async def refused(self, error: Exception) -> None:
        status = getattr(error, "status_code", None) or getattr(error, "status", 400)
        field = getattr(error, "field", None)
        message = error_message(status, (None, error, None), "The request was refused.")
        await self.show(status, message, field)


class ConfigurationsAction(ServicesPage):
    """POST only: save, rename, relaunch or delete a saved configuration."""

    @web.authenticated
    async def get(self):
        self.redirect(self.app.base_url + "services")

    @web.authenticated
    async def post(self):
        action = self.get_body_argument("action", "")
        arg = self.get_body_argument
        try:
            if action == "create":
                options = {
                    key: arg(key)
                    for key in ("service", "version", "cpu", "memory", "gpus", "gpu_type")
                    if arg(key, "")
                }
                actions.save_options(self, arg("name", ""), options, arg("server_name", ""))
                return self.back("saved")
            if action == "rename":
                actions.update(self, arg("id", ""), name=arg("name", ""))
                return self.back("renamed")
            if action == "launch":
                server = await actions.launch(self, arg("id", ""), arg("server_name", None))
                return self.back("launched", server)
            if action == "delete":
                actions.delete(self, arg("id", ""))
                return self.back("removed")
            raise FieldError("action", "must be one of create, rename, launch, delete")
        except (FieldError, HubAPIError, web.HTTPError) as e:
            await self.refused(e)


class AccountPage(PageHandler):
    """My account: git identity, personal access token (write-only), repository."""

    @web.authenticated
    def get(self):
        self.show()

    def show(self, status=200, errors=(), values=None):
        account = self.app.store.account(self.user)
        shown = views.account_json(account)
        if values:
            shown.update({k: v for k, v in values.items() if k != "git_token"})
        self.render_page(
            "portal-account.html",
            status,
            page="account",
            account=shown,
            errors={e.field: e.message for e in errors},
            done=None if errors else done_message(self),
            schemes=self.app.repository_schemes,
        )

    @web.authenticated
    def post(self):
        fields = {
            field: self.get_body_argument(field, "")
            for field in actions.ACCOUNT_FIELDS
            if field != "git_token"
        }
        token = self.get_body_argument("git_token", "")
        if token:  # empty: keep the token stored
            fields["git_token"] = token
        remove = self.get_body_argument("remove_token", "") == "on"
        changes, errors = actions.check_account(fields, schemes=self.app.repository_schemes)
        if errors:
            return self.show(400, errors, fields)
        if remove:
            changes["git_token"] = None
        self.app.store.save_account(self.user, **changes)
        self.redirect(self.app.base_url + "account?done=account", status=303)


class AdminPage(PageHandler):
    """Every user's servers, filterable, with stop (admins only)."""

    FILTERS = ("user", "service", "status", "gpus")

    @web.authenticated
    async def get(self):
        self.require_admin("read:servers")
        await self.show()

    async def show(self, status=200, error=None):
        filters = {k: self.get_argument(k, "")[:100] for k in self.FILTERS}
        everything, shown = await actions.all_servers(self, filters)
        catalog = self.catalog
        self.render_page(
            "portal-admin.html",
            status,
            page="admin",
            servers=shown,
            total=len(everything),
            totals=views.totals(shown),
            filters=filters,
            catalog_services=[(s.name, s.display_name) for s in catalog.services]
            if catalog
            else [],
            statuses=views.STATUSES[:3],
            error=error,
            done=None if error else self.stopped_message(),
        )

    def stopped_message(self) -> str | None:
        if self.get_argument("done", "") != "stopped":
            return None
        who = self.get_argument("stopped_user", "")[:255]
        server = self.get_argument("server", "")[:30]
        return (
            f"{who}'s server {server!r} is stopping."
            if server
            else (f"{who}'s default server is stopping.")
        )

    @web.authenticated
    async def post(self):
        self.require_admin("delete:servers")
        user = self.get_body_argument("user", "")
        server = self.get_body_argument("server", "")
        try:
            if self.get_body_argument("action", "") != "stop":
                raise FieldError("action", "must be stop")
            await actions.admin_stop(self, user, server)
        except (FieldError, HubAPIError) as e:
            status = getattr(e, "status", 400)
            return await self.show(status, error_message(status, (None, e, None), ""))
        label = f"{user}/{server}" if server else f"{user}'s default server"
        self.log.info("Admin %s stopped %s", self.user, label)
        query = urlencode({"done": "stopped", "server": server, "stopped_user": user})
        self.redirect(f"{self.app.base_url}admin?{query}", status=303)
