"""A trainee's course server: its name, what the hub says of it, and its record.

The course server is a named server the service creates for the trainee and records
(`courses_servers`). It is named after the course when the trainee has no server of that
name, else `<id>-course`; a server of the trainee's own is never taken over. Once the
service has started it, the name is kept.

The record is written where it cannot be missed: `start` before the hub is asked, and
the rest (`ready`, `failure`, `stop`) by comparing the service's rows with the hub's
servers (`reconcile`), on every visit of the trainee and every few seconds for every
course server believed live, and again when the service starts after being down or
killed. A stop made elsewhere (My services, the culler, an admin) is recorded when it is
first seen; a server started again elsewhere (My services' Start) is recorded then too.

Pure helpers (`seen_in`, `choose_name`, `transitions`, `material`, `open_url`) decide;
`reconcile` and `reconcile_all` apply their decisions to the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from ..db.courses import CourseStore, TraineeServer
from .model import Course, quoted_path

log = logging.getLogger("onyxia_hub.courses")
SUFFIX = "-course"
PULL_SLACK = 5.0  # seconds: the server's clock and the hub's may differ a little


@dataclass(frozen=True)
class Seen:
    """What the hub says of one server."""

    name: str
    ready: bool = False
    pending: str | None = None  # "spawn", "stop" or None
    started: str | None = None  # the hub's ISO time of the current start

    @property
    def starting(self) -> bool:
        return self.pending == "spawn"

    @property
    def running(self) -> bool:
        return self.ready or self.pending is not None


def seen_in(servers: dict, name: str) -> Seen | None:
    """The server `name` among a user model's `servers` (None: absent or stopped)."""
    model = servers.get(name)
    if not isinstance(model, dict):
        return None
    seen = Seen(name, bool(model.get("ready")), model.get("pending"), model.get("started"))
    return seen if seen.running else None


def choose_name(course_id: str, row: TraineeServer | None, servers: dict) -> str | None:
    """The name of the trainee's course server: the one recorded once the service has
    started it; else the course's id, or `<id>-course`, whichever the trainee does not
    use; None when both are theirs."""
    if row is not None and row.state != "joined":
        return row.server_name
    for name in (course_id, second_name(course_id)):
        if name not in servers:
            return name
    return None


def second_name(course_id: str) -> str:
    """The course server's name when the trainee has a server named like the course."""
    return course_id[: 30 - len(SUFFIX)].rstrip("-") + SUFFIX


def epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def transitions(row: TraineeServer, seen: Seen | None) -> list[tuple[str, str | None, str]]:
    """What the record lacks, as (state, event, message) steps, from the row the service
    holds and what the hub says now."""
    state = row.state
    if state in ("starting", "ready"):
        if seen is None:
            if state == "starting":
                return [("failed", "failure", "the server stopped before it was ready")]
            return [("stopped", "stop", "")]
        restarted = row.started and seen.started and seen.started != row.started
        if restarted and state == "ready":  # stopped and started again meanwhile
            steps = [("stopped", "stop", ""), ("starting", "start", "started from elsewhere")]
            return steps + ([("ready", "ready", "")] if seen.ready else [])
        if seen.ready and state == "starting":
            return [("ready", "ready", "")]
        return []
    if state in ("stopped", "failed") and seen is not None:
        steps = [("starting", "start", "started from elsewhere")]
        return steps + ([("ready", "ready", "")] if seen.ready else [])
    return []


def reconcile(store: CourseStore, row: TraineeServer, seen: Seen | None) -> TraineeServer:
    """Bring the row and the record in line with the hub; the row as it is then."""
    for state, event, message in transitions(row, seen):
        updated = store.transition(
            row.course_id,
            row.username,
            state,
            event,
            message=message,
            started=seen.started if seen is not None else ...,
            expect=(row.state,),
        )
        if updated is None:  # another process recorded it first: read it again
            return store.trainee(row.course_id, row.username) or row
        row = updated
    return row


async def reconcile_all(store: CourseStore, hub) -> int:
    """Every course server believed live, compared with the hub's active servers (the
    service's own token: `list:users`, `read:servers`). How many rows changed."""
    live = store.live()
    if not live:
        return 0
    active = {u["name"]: u.get("servers") or {} for u in await hub.active_users()}
    changed = 0
    for row in live:
        after = reconcile(store, row, seen_in(active.get(row.username, {}), row.server_name))
        changed += after.state != row.state
    return changed


def material(course: Course, row: TraineeServer | None, seen: Seen | None) -> str:
    """Where the course's material stands in the trainee's running server: `none` (no
    material), `waiting` (no report since this start), `ready`, or `failed`."""
    if not course.repository:
        return "none"
    if row is None or row.pull_at is None or row.pull_state in (None, "running"):
        return "waiting"
    started = epoch(seen.started if seen else None)
    if started is not None and row.pull_at < started - PULL_SLACK:
        return "waiting"  # a report of an earlier start
    return "ready" if row.pull_state in ("done", "skipped") else "failed"


def server_url(hub_base: str, user: str, server: str) -> str:
    return f"{hub_base}user/{quote(user, safe='')}/{quote(server, safe='')}/"


def open_url(hub_base: str, user: str, server: str, course: Course, default_url: str) -> str:
    """Where the trainee lands: the file in JupyterLab, or the service's own page."""
    base = server_url(hub_base, user, server)
    if default_url.startswith("/lab"):
        path = course.open_path
        return base + ("lab/tree/" + quoted_path(path) if path else "lab")
    return base + default_url.lstrip("/")
