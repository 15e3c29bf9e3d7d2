"""The portal's JSON API, under `<prefix>api/`: the pages' data and actions for scripts.

Authenticated with a hub API token (`Authorization: token <token>`), or with the portal's
cookie plus the `X-XSRFToken` header (as the pages' scripts do). Errors are
`{"error": message, "field": name or null, "status": code}`.

    GET    api/servers                           my servers and quota
    POST   api/server | api/servers/<name>       start a stopped server again
    DELETE api/server | api/servers/<name>       stop (`{"remove": true}`: delete)
    GET    api/server/progress | api/servers/<name>/progress
    GET    api/configurations                    my saved configurations
    POST   api/configurations                    save `{name, user_options, server_name}`
                                                 (or `from_server` instead of user_options)
    GET    api/configurations/<id>
    PATCH  api/configurations/<id>               rename: `{name, server_name}`
    DELETE api/configurations/<id>
    POST   api/configurations/<id>/launch        start it: `{server_name}` (optional)
    GET    api/account                           my settings (the token never in clear)
    PATCH  api/account                           change the fields given
    GET    api/admin/servers?user=&service=&status=&gpus=      (admins)
    DELETE api/admin/users/<user>/server | .../servers/<name>  (admins)
"""

from __future__ import annotations

from tornado import web

from ..db.store import UNCHANGED
from ..fields import FieldError
from ..service.handlers import APIHandler
from . import actions, views

SERVER = r"(?:server|servers/([^/]+))"


class ServersAPI(APIHandler):
    @web.authenticated
    async def get(self):
        servers = await actions.my_servers(self)
        self.write_json(
            {
                "servers": [s.as_json() for s in servers],
                "quota": views.quota(servers, self.catalog, self.groups),
            }
        )


class ServerAPI(APIHandler):
    @web.authenticated
    async def post(self, server=None):
        await actions.start(self, server or "")
        self.write_json({"server": server or "", "status": "starting"}, 202)

    @web.authenticated
    async def delete(self, server=None):
        body = self.json_body()
        remove = body.get("remove", False) or self.get_argument("remove", "") in ("1", "true")
        if not isinstance(remove, bool):
            raise FieldError("remove", "must be true or false")
        await actions.stop(self, server or "", remove=remove)
        self.write_json(
            {"server": server or "", "status": "deleted" if remove else "stopping"}, 202
        )


class ProgressAPI(APIHandler):
    @web.authenticated
    async def get(self, server=None):
        self.write_json(await actions.progress(self, server or ""))


class ConfigurationsAPI(APIHandler):
    def one(self, config) -> dict:
        return views.configuration_json(config, self.app.hub_prefix, self.user, self.catalog)

    @web.authenticated
    def get(self):
        self.write_json({"configurations": [self.one(c) for c in actions.configurations(self)]})

    @web.authenticated
    async def post(self):
        body = self.json_body()
        if "from_server" in body:
            saved = await actions.save_server(self, body.get("name"), body["from_server"])
        else:
            if "user_options" not in body:
                raise FieldError("user_options", "is required (or from_server)")
            saved = actions.save_options(
                self, body.get("name"), body["user_options"], body.get("server_name") or ""
            )
        self.write_json(self.one(saved), 201)


class ConfigurationAPI(ConfigurationsAPI):
    @web.authenticated
    def get(self, config_id):
        self.write_json(self.one(actions.configuration(self, config_id)))

    @web.authenticated
    def patch(self, config_id):
        body = self.json_body()
        unknown = set(body) - {"name", "server_name"}
        if unknown:
            raise FieldError(sorted(unknown)[0], "cannot be changed (only name, server_name)")
        saved = actions.update(
            self,
            config_id,
            name=body.get("name", UNCHANGED),
            server_name=body.get("server_name", UNCHANGED),
        )
        self.write_json(self.one(saved))

    @web.authenticated
    def delete(self, config_id):
        actions.delete(self, config_id)
        self.set_status(204)
        self.finish()


class LaunchAPI(APIHandler):
    @web.authenticated
    async def post(self, config_id):
        body = self.json_body()
        server = await actions.launch(self, config_id, body.get("server_name"))
        self.write_json({"server": server, "status": "starting"}, 202)


class AccountAPI(APIHandler):
    @web.authenticated
    def get(self):
        self.write_json(views.account_json(self.app.store.account(self.user)))

    @web.authenticated
    def patch(self):
        body = self.json_body()
        unknown = set(body) - set(actions.ACCOUNT_FIELDS)
        if unknown:
            raise FieldError(sorted(unknown)[0], "is not a setting of My account")
        account = actions.save_account(self, body)
        self.write_json(views.account_json(account))


class AdminServersAPI(APIHandler):
    @web.authenticated
    async def get(self):
        self.require_admin("read:servers")
        filters = {k: self.get_argument(k, "")[:100] for k in ("user", "service", "status", "gpus")}
        everything, shown = await actions.all_servers(self, filters)
        self.write_json(
            {
                "servers": [s.as_json() for s in shown],
                "total": len(everything),
                "totals": views.totals(shown),
            }
        )


class AdminServerAPI(APIHandler):
    @web.authenticated
    async def delete(self, user, server=None):
        self.require_admin("delete:servers")
        server = server or ""
        await actions.admin_stop(self, user, server)
        self.log.info("Admin %s stopped %s/%s through the API", self.user, user, server)
        self.write_json({"user": user, "server": server, "status": "stopping"}, 202)


def routes() -> list[tuple[str, type]]:
    """The API's routes, under the portal's prefix."""
    api = "api/"
    return [
        (api + "servers", ServersAPI),
        (api + SERVER, ServerAPI),
        (api + SERVER + "/progress", ProgressAPI),
        (api + "configurations", ConfigurationsAPI),
        (api + r"configurations/([^/]+)", ConfigurationAPI),
        (api + r"configurations/([^/]+)/launch", LaunchAPI),
        (api + "account", AccountAPI),
        (api + "admin/servers", AdminServersAPI),
        (api + r"admin/users/([^/]+)/" + SERVER, AdminServerAPI),
    ]
