"""The courses service's store: courses, each trainee's course server, the record.

Its tables are `courses_*` (`models`), its revisions `migrations/courses/`, its version
table `onyxia_courses_alembic_version`, its key `ONYXIA_COURSES_KEY_FILE` (no field is
encrypted yet; the key is its own, never the portal's). Only the courses service opens
it: the service parses links from anywhere, so it holds nothing of the portal's.

Courses are kept as the dict the service's API takes (`definition`): this layer knows
no course rules, the service parses what it reads (`onyxia_hub.courses.model`), so a
course stored under older rules shows as broken instead of being rewritten.

The record (`courses_events`) is append-only: join, start, ready, failure, stop, with
the time it was written. `courses_servers` says, per course and trainee, which server the
service created and where it stands; every change of state there writes its event in the
same transaction, so the two never disagree, whatever process dies when.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import engine as engines
from .models import CourseEventRow, CourseRow, TraineeServerRow
from .models import utcnow as _now
from .schema import Schema

SCHEMA = Schema("courses")
EVENTS = ("join", "start", "ready", "failure", "stop")
LIVE = ("starting", "ready")  # states the reconciler compares with the hub's
MAX_MESSAGE = 500


class CourseExists(Exception):
    """A course with that id is already in the store."""


@dataclass(frozen=True)
class StoredCourse:
    id: str
    title: str
    description: str
    definition: dict
    autostart: bool
    archived: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    def as_raw(self) -> dict:
        """What the service's `parse_course` reads back."""
        return {
            **self.definition,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "autostart": self.autostart,
        }


@dataclass(frozen=True)
class TraineeServer:
    course_id: str
    username: str
    server_name: str
    state: str  # joined, starting, ready, failed, stopped
    started: str | None
    pull_state: str | None
    pull_message: str | None
    pull_at: float | None
    joined_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Event:
    course_id: str
    username: str
    event: str
    message: str
    at: datetime


def _course(row: CourseRow) -> StoredCourse:
    return StoredCourse(
        row.id,
        row.title,
        row.description,
        json.loads(row.definition),
        row.autostart,
        row.archived,
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def _server(row: TraineeServerRow) -> TraineeServer:
    return TraineeServer(
        row.course_id, row.username, row.server_name, row.state, row.started,
        row.pull_state, row.pull_message, row.pull_at, row.joined_at, row.updated_at,
    )  # fmt: skip


class CourseStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def session(self, *, write: bool = False) -> Session:
        return engines.session(self.engine, write=write)

    # -- courses ---------------------------------------------------------------------
    def courses(self) -> list[StoredCourse]:
        with self.session() as db:
            return [_course(r) for r in db.scalars(select(CourseRow).order_by(CourseRow.id))]

    def course(self, course_id: str) -> StoredCourse | None:
        with self.session() as db:
            row = db.get(CourseRow, course_id)
            return _course(row) if row else None

    def create(self, raw: dict, created_by: str) -> StoredCourse:
        now = _now()
        row = CourseRow(created_by=created_by, created_at=now, updated_at=now)
        _fill(row, raw)
        try:
            with self.session(write=True) as db:
                if db.get(CourseRow, row.id) is not None:
                    raise CourseExists(row.id)
                db.add(row)
                db.commit()
        except IntegrityError:  # another process inserted it between our read and write
            raise CourseExists(row.id) from None
        return _course(row)

    def update(self, raw: dict, *, archived: bool | None = None) -> StoredCourse | None:
        with self.session(write=True) as db:
            row = db.get(CourseRow, raw["id"])
            if row is None:
                return None
            _fill(row, raw)
            if archived is not None:
                row.archived = archived
            row.updated_at = _now()
            db.commit()
            return _course(row)

    def set_archived(self, course_id: str, archived: bool) -> StoredCourse | None:
        with self.session(write=True) as db:
            row = db.get(CourseRow, course_id)
            if row is None:
                return None
            row.archived, row.updated_at = archived, _now()
            db.commit()
            return _course(row)

    def delete(self, course_id: str) -> bool:
        """The course goes; its record and trainees' rows stay (they are history)."""
        with self.session(write=True) as db:
            row = db.get(CourseRow, course_id)
            if row is None:
                return False
            db.delete(row)
            db.commit()
            return True

    # -- trainees' servers -------------------------------------------------------------
    def trainee(self, course_id: str, username: str) -> TraineeServer | None:
        with self.session() as db:
            row = db.get(TraineeServerRow, (course_id, username))
            return _server(row) if row else None

    def trainees(self, course_id: str) -> list[TraineeServer]:
        with self.session() as db:
            query = select(TraineeServerRow).where(TraineeServerRow.course_id == course_id)
            return [_server(r) for r in db.scalars(query.order_by(TraineeServerRow.username))]

    def of_user(self, username: str) -> list[TraineeServer]:
        with self.session() as db:
            query = select(TraineeServerRow).where(TraineeServerRow.username == username)
            return [_server(r) for r in db.scalars(query)]

    def live(self) -> list[TraineeServer]:
        """Every course server the service believes starting or ready."""
        with self.session() as db:
            query = select(TraineeServerRow).where(TraineeServerRow.state.in_(LIVE))
            return [_server(r) for r in db.scalars(query)]

    def join(self, course_id: str, username: str, server_name: str) -> TraineeServer:
        """The trainee's row, created with a `join` event at their first visit."""

        def transaction():
            with self.session(write=True) as db:
                row = db.get(TraineeServerRow, (course_id, username))
                if row is None:
                    now = _now()
                    row = TraineeServerRow(
                        course_id=course_id,
                        username=username,
                        server_name=server_name,
                        state="joined",
                        joined_at=now,
                        updated_at=now,
                    )
                    db.add(row)
                    db.add(_event(course_id, username, "join", "", now))
                    db.commit()
                return _server(row)

        return engines.again_on_conflict(transaction)

    def transition(
        self,
        course_id: str,
        username: str,
        state: str,
        event: str | None,
        *,
        message: str = "",
        server_name: str | None = None,
        started: str | None | object = ...,
        expect: tuple[str, ...] | None = None,
    ) -> TraineeServer | None:
        """Set the trainee's state (and server, hub start time) and write `event` with it,
        in one transaction; nothing when the row's state is not in `expect` (another
        process recorded that change first). None when there is no row, or no change."""
        with self.session(write=True) as db:
            row = db.get(TraineeServerRow, (course_id, username))
            if row is None or (expect is not None and row.state not in expect):
                return None
            now = _now()
            row.state, row.updated_at = state, now
            if server_name is not None:
                row.server_name = server_name
            if started is not ...:
                row.started = started
            if state == "starting":
                row.pull_state = row.pull_message = row.pull_at = None
            if event:
                db.add(_event(course_id, username, event, message, now))
            db.commit()
            return _server(row)

    def pull_report(
        self, username: str, server_name: str, state: str, message: str, at: float
    ) -> int:
        """Record a server's report of its material's pull; how many rows it concerned."""
        with self.session(write=True) as db:
            rows = db.scalars(
                select(TraineeServerRow).where(
                    TraineeServerRow.username == username,
                    TraineeServerRow.server_name == server_name,
                )
            ).all()
            for row in rows:
                row.pull_state, row.pull_message, row.pull_at = state, message[:MAX_MESSAGE], at
                row.updated_at = _now()
            db.commit()
            return len(rows)

    # -- the record ----------------------------------------------------------------------
    def events(self, course_id: str, limit: int = 1000) -> list[Event]:
        with self.session() as db:
            query = (
                select(CourseEventRow)
                .where(CourseEventRow.course_id == course_id)
                .order_by(CourseEventRow.id)
                .limit(limit)
            )
            return [
                Event(r.course_id, r.username, r.event, r.message, r.at) for r in db.scalars(query)
            ]

    def event_counts(self, course_id: str) -> dict[str, int]:
        with self.session() as db:
            query = (
                select(CourseEventRow.event, func.count())
                .where(CourseEventRow.course_id == course_id)
                .group_by(CourseEventRow.event)
            )
            return {event: count for event, count in db.execute(query)}


def _event(course_id: str, username: str, event: str, message: str, at) -> CourseEventRow:
    assert event in EVENTS, event
    return CourseEventRow(
        course_id=course_id, username=username, event=event, message=message[:MAX_MESSAGE], at=at
    )


def _fill(row: CourseRow, raw: dict) -> None:
    row.id = raw["id"]
    row.title = raw["title"]
    row.description = raw.get("description") or ""
    row.autostart = bool(raw.get("autostart"))
    keep = ("options", "open", "join", "instructors")
    row.definition = json.dumps({k: raw[k] for k in keep if k in raw}, sort_keys=True)
