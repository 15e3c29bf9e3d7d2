"""What the portal does for a caller, shared by the pages and the JSON API.

Each function takes the handler (who is asking: `h.user`, `h.groups`, `h.token`) and
raises `FieldError` for bad input, `HubAPIError` when the hub refuses, or `NotFound`.
Nothing here takes another user's name except the admin functions, which the handlers
only call after `require_admin`.
"""

from __future__ import annotations

from tornado import web

from ..db.store import UNCHANGED, StoreError
from ..fields import (
    FieldError,
    check_branch,
    check_config_name,
    check_email,
    check_git_name,
    check_options,
    check_repository,
    check_server_name,
    check_token,
)
from . import views

ACCOUNT_FIELDS = ("git_name", "git_email", "git_token", "git_repository", "git_branch")


class NotFound(web.HTTPError):
    def __init__(self, what: str):
        super().__init__(404, f"{what} does not exist.")


def _config_id(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FieldError("id", "must be the number of one of your configurations") from None
    if not 0 < number < 2**31:
        raise FieldError("id", "must be the number of one of your configurations")
    return number


def _store_call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except StoreError as e:
        raise FieldError(e.field, e.message) from None


# -- servers ---------------------------------------------------------------------------
async def my_servers(h) -> list[views.ServerView]:
    """The caller's servers, read with their own token."""
    servers = await h.app.hub.user_servers(h.token, h.user)
    return views.server_views(h.user, servers, h.catalog)


async def find_server(h, server: str) -> views.ServerView:
    server = check_server_name(server)
    for view in await my_servers(h):
        if view.name == server:
            return view
    raise NotFound(f"Your server {server!r}" if server else "Your default server")


async def stop(h, server: str, *, remove: bool = False) -> None:
    view = await find_server(h, server)
    if remove and not view.name:
        raise FieldError("server", "your default server can be stopped but not deleted")
    await h.app.hub.stop(h.token, h.user, view.name, remove=remove)


async def start(h, server: str) -> None:
    """Start a stopped server again with the options it was last started with."""
    view = await find_server(h, server)
    if view.active:
        raise FieldError("server", f"{view.label} is already {view.status}")
    await h.app.hub.start(h.token, h.user, view.name, None, h.app.launch_wait)


async def progress(h, server: str) -> dict:
    view = await find_server(h, server)
    events = []
    if view.status == "starting":
        events = await h.app.hub.progress(h.token, h.user, view.name, h.app.progress_wait)
    last = events[-1] if events else {}
    return {
        "server": view.name,
        "status": view.status,
        "progress": last.get("progress", 100 if view.status == "ready" else 0),
        "message": last.get("message", ""),
        "failed": bool(last.get("failed")),
        "events": [{"progress": e.get("progress"), "message": e.get("message")} for e in events],
    }


# -- saved configurations ------------------------------------------------------------
def configurations(h) -> list:
    return h.app.store.configurations(h.user)


def configuration(h, config_id):
    found = h.app.store.configuration(h.user, _config_id(config_id))
    if found is None:  # another user's configuration gets the same answer as none at all
        raise NotFound("This configuration")
    return found


def save_options(h, name, raw_options, server_name="") -> object:
    name = check_config_name(name)
    server_name = check_server_name(server_name, "server_name")
    choice = check_options(raw_options, h.catalog, h.groups)
    return _store_call(
        h.app.store.add_configuration, h.user, name, choice.as_user_options(), server_name
    )


async def save_server(h, name, server: str) -> object:
    """Save the options a server of the caller's runs (or last ran) with."""
    name = check_config_name(name)
    view = await find_server(h, server)
    return save_options(h, name, view.user_options, view.name)


def update(h, config_id, *, name=UNCHANGED, server_name=UNCHANGED) -> object:
    changes = {}
    if name is not UNCHANGED:
        changes["name"] = check_config_name(name)
    if server_name is not UNCHANGED:
        changes["server_name"] = check_server_name(server_name, "server_name")
    configuration(h, config_id)
    found = _store_call(h.app.store.update_configuration, h.user, _config_id(config_id), **changes)
    if found is None:
        raise NotFound("This configuration")
    return found


def delete(h, config_id) -> None:
    if not h.app.store.delete_configuration(h.user, _config_id(config_id)):
        raise NotFound("This configuration")


async def launch(h, config_id, server_name=None) -> str:
    """Start a saved configuration in server_name (default: the one saved with it),
    through the hub's API with the caller's token; the server's name."""
    saved = configuration(h, config_id)
    server = saved.server_name if server_name is None else server_name
    server = check_server_name(server, "server_name")
    choice = check_options(saved.user_options, h.catalog, h.groups)
    await h.app.hub.start(h.token, h.user, server, choice.as_user_options(), h.app.launch_wait)
    return server


# -- account ---------------------------------------------------------------------------
def check_account(fields: dict, *, schemes) -> tuple[dict, list[FieldError]]:
    """The changes to make from the fields given, and every problem found."""
    checks = {
        "git_name": check_git_name,
        "git_email": check_email,
        "git_token": check_token,
        "git_repository": lambda v: check_repository(v, schemes),
        "git_branch": check_branch,
    }
    changes, errors = {}, []
    for field, checker in checks.items():
        if field not in fields:
            continue
        try:
            changes[field] = checker(fields[field])
        except FieldError as e:
            errors.append(e)
    return changes, errors


def save_account(h, fields: dict, *, remove_token: bool = False):
    changes, errors = check_account(fields, schemes=h.app.repository_schemes)
    if errors:
        raise errors[0]
    if remove_token:
        changes["git_token"] = None
    return h.app.store.save_account(h.user, **changes)


# -- admin -----------------------------------------------------------------------------
async def all_servers(h, filters: dict) -> tuple[list, list]:
    """(every active server of every user, those the filters keep)."""
    everything = []
    for model in await h.app.hub.active_users():
        everything += views.server_views(model["name"], model.get("servers") or {}, h.catalog)
    everything = [v for v in everything if v.status != "stopped"]
    return everything, views.admin_filter(everything, **filters)


async def admin_stop(h, user: str, server: str) -> None:
    if not isinstance(user, str) or not user or len(user) > 255:
        raise FieldError("user", "must be the name of a user")
    server = check_server_name(server)
    await h.app.hub.stop_any(user, server)
