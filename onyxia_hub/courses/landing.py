"""What a course's link does for the trainee who opens it (GET) or presses Start (POST).

`land` decides from the course, the caller's rights and the hub's view of their course
server; the handlers only render or redirect what it returns:

- server ready, material pulled (or none) -> `Redirect` to the file;
- server ready, material not reported yet -> the waiting page (`Show("wait")`);
- server starting -> `Redirect` to the hub's progress page, which comes back here;
- not running -> the Start page, or, for an enrolled trainee of a course marked
  `autostart` (when the operator allows it), a start at once. That is the only GET that
  starts a server (docs/courses.md, "What starts when").

`start` is the one way a course server starts: the record's `start`, then the hub asked
with the trainee's own token (the hub checks the options against the catalog, their
groups and their quota, as for any launch), a refusal recorded as `failure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from ..db.courses import TraineeServer
from ..service.hubapi import HubAPIError
from . import trainees
from .library import Access, Entry
from .model import Course


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Show:
    page: str  # start, wait, stopping, broken, refused, archived, taken
    status: int = 200
    context: dict = field(default_factory=dict)


@dataclass
class Trainee:
    """The caller as a trainee of one course: their row, server name, the hub's view."""

    row: TraineeServer | None
    name: str | None
    seen: trainees.Seen | None
    servers: dict


async def look(h, course: Course, access: Access) -> Trainee:
    """The trainee's row (created, with `join`, at their first visit), reconciled with
    what the hub says now."""
    store = h.app.store
    servers = await h.app.hub.user_servers(h.token, h.user)
    row = store.trainee(course.id, h.user)
    if row is None and access.may_use(course):
        name = trainees.choose_name(course.id, None, servers) or course.id
        row = store.join(course.id, h.user, name)
    if row is not None and row.state != "joined":
        row = trainees.reconcile(store, row, trainees.seen_in(servers, row.server_name))
    name = trainees.choose_name(course.id, row, servers)
    ours = row is not None and row.state != "joined" and name == row.server_name
    seen = trainees.seen_in(servers, name) if ours and name else None
    return Trainee(row, name, seen, servers)


def pending_url(h, course: Course, name: str) -> str:
    """The hub's progress page for the server, which comes back to the link once ready."""
    user, server = quote(h.user, safe=""), quote(name, safe="")
    back = quote(h.app.base_url + course.id, safe="/")
    return f"{h.app.hub_prefix}spawn-pending/{user}/{server}?next={back}"


def default_url(h, course: Course) -> str:
    catalog = h.catalog
    service = catalog.get(str(course.options.get("service") or "")) if catalog else None
    if service is None and catalog is not None:
        service = catalog.default_service
    return service.local.default_url if service else "/lab"


async def land(h, entry: Entry, access: Access, *, autostart: bool) -> Redirect | Show:
    course = entry.course
    t = await look(h, course, access)
    if t.seen is not None and t.seen.ready:
        state = trainees.material(course, t.row, t.seen)
        url = trainees.open_url(h.app.hub_base, h.user, t.name, course, default_url(h, course))
        if state in ("none", "ready"):
            return Redirect(url)
        return Show("wait", context={"open_url": url, "material": state, "row": t.row})
    if t.seen is not None and t.seen.starting:
        return Redirect(pending_url(h, course, t.name))
    if t.seen is not None:  # stopping
        return Show("stopping", context={"server": t.name})
    if entry.problem:
        return Show("broken", 409, {"problem": entry.broken})
    if t.name is None:
        return taken(course)
    if autostart and course.autostart and access.may_join(course):
        return await start(h, course, t)
    return Show("start", context={"server": t.name})


def taken(course: Course) -> Show:
    names = f"{course.id!r} and {trainees.second_name(course.id)!r}"
    message = (
        f"You have servers of your own named {names}: the course will not take them over. "
        "Delete one of them in My services, then open this link again."
    )
    return Show("taken", 409, {"message": message})


async def start(h, course: Course, t: Trainee) -> Redirect | Show:
    store = h.app.store
    name = t.name
    if name is None:
        return taken(course)
    if t.row is None:
        t.row = store.join(course.id, h.user, name)
    store.transition(course.id, h.user, "starting", "start", server_name=name, started=None)
    try:
        await h.app.hub.start(h.token, h.user, name, course.launch_options(), h.app.launch_wait)
    except HubAPIError as e:
        store.transition(course.id, h.user, "failed", "failure", message=e.message)
        running = [n or "default" for n, s in t.servers.items() if trainees.seen_in(t.servers, n)]
        return Show(
            "refused", e.status if 400 <= e.status < 500 else 502,
            {"message": e.message, "running": running, "server": name},
        )  # fmt: skip
    return Redirect(pending_url(h, course, name))
