"""The courses service's JSON API, under `<prefix>api/`.

Authenticated with a hub API token (`Authorization: token <token>`), or with the service's
cookie plus the `X-XSRFToken` header. Errors are `{"error": message, "field": name or
null, "status": code}`; the field is the course's (`id`, `options.cpu`, `join.groups`...).

    GET    api/courses              the courses the caller teaches, then those they may join
    POST   api/courses              create: {"id", "title", "description", "options",
                                    "open", "join", "instructors", "autostart"} -> 201;
                                    400 naming the bad field; 409 if the id exists
    GET    api/courses/<id>         one course (its instructors see who may join)
    PUT    api/courses/<id>         replace it (same body; "archived": true archives)
    DELETE api/courses/<id>         delete it (trainees' servers and files stay) -> 204
    GET    api/courses/<id>/record  its record: join, start, ready, failure, stop
    POST   api/pull-status          a server reports its material's pull, with its own
                                    token: {"server", "state", "message", ...} -> 204

`POST <prefix><id>/start`, the Start button, also answers a token: see `handlers`.
"""

from __future__ import annotations

import time

from tornado import web

from ..db.courses import CourseExists
from ..fields import FieldError, check_server_name
from ..service.handlers import APIHandler
from .handlers import COURSE_ID
from .library import Access, Entry
from .model import checked, parse_course

PULL_STATES = ("running", "done", "failed", "refused", "skipped")
MAX_BODY = 64 * 1024


class CoursesAPIHandler(APIHandler):
    @property
    def access(self) -> Access:
        return Access(self.user, self.groups, self.is_admin, self.app.instructors_group)

    def body(self) -> dict:
        if len(self.request.body or b"") > MAX_BODY:
            raise FieldError("body", f"is larger than {MAX_BODY // 1024} KiB")
        return self.json_body()

    def link(self, course_id: str) -> str:
        return f"{self.request.protocol}://{self.request.host}{self.app.base_url}{course_id}"

    def entry(self, course_id: str) -> Entry:
        entry = self.app.library.get(course_id) if COURSE_ID.fullmatch(course_id) else None
        if entry is None or not self.access.may_use(entry.course):
            # the same answer whether it does not exist or is not the caller's
            raise web.HTTPError(404, f"There is no course {course_id[:30]!r} for you.")
        return entry

    def one(self, entry: Entry) -> dict:
        data = entry.course.as_json()
        if not self.access.teaches(entry.course):
            data = {k: data[k] for k in ("id", "title", "description", "options", "open")}
        return {**data, "link": self.link(entry.course.id), "broken": entry.broken or None}

    def editable(self, course_id: str) -> Entry:
        entry = self.entry(course_id)
        if not self.access.teaches(entry.course):
            raise web.HTTPError(403, "Only this course's instructors and admins may change it.")
        if entry.course.read_only:
            raise web.HTTPError(
                403, "This course comes from a course file: change the file to change it."
            )
        return entry


class CoursesAPI(CoursesAPIHandler):
    @web.authenticated
    def get(self):
        access = self.access
        entries = self.app.library.all()
        teaching = [e for e in entries if access.teaches(e.course)]
        joining = [
            e for e in entries
            if e not in teaching and access.may_join(e.course) and not e.course.archived
        ]  # fmt: skip
        self.write_json({"courses": [self.one(e) for e in teaching + joining]})

    @web.authenticated
    def post(self):
        if not self.access.may_create:
            raise web.HTTPError(403, "Only admins and instructors may create courses.")
        course = checked(parse_course(self.body(), creator=self.user), self.catalog)
        try:
            created = self.app.library.create(course)
        except CourseExists:
            message = f"A course {course.id!r} exists already."
            return self.write_json({"error": message, "field": "id", "status": 409}, 409)
        self.set_header("Location", self.app.base_url + "api/courses/" + created.id)
        self.write_json(self.one(self.app.library.entry(created)), 201)


class CourseAPI(CoursesAPIHandler):
    @web.authenticated
    def get(self, course_id):
        self.write_json(self.one(self.entry(course_id)))

    @web.authenticated
    def put(self, course_id):
        entry = self.editable(course_id)
        body = self.body()
        archived = body.pop("archived", None)
        body.pop("read_only", None)
        if archived is not None and not isinstance(archived, bool):
            raise FieldError("archived", "must be true or false")
        course = parse_course(body, creator=entry.course.created_by, course_id=entry.course.id)
        stored = self.app.store.update(
            {**checked(course, self.catalog).as_json(), "id": course.id}, archived=archived
        )
        if stored is None:
            raise web.HTTPError(404, f"There is no course {course_id[:30]!r} for you.")
        self.write_json(self.one(self.app.library.get(course.id)))

    @web.authenticated
    def delete(self, course_id):
        entry = self.editable(course_id)
        self.app.store.delete(entry.course.id)
        self.set_status(204)
        self.finish()


class RecordAPI(CoursesAPIHandler):
    @web.authenticated
    def get(self, course_id):
        entry = self.entry(course_id)
        if not self.access.teaches(entry.course):
            raise web.HTTPError(403, "Only this course's instructors and admins see its record.")
        events = self.app.store.events(entry.course.id)
        self.write_json(
            {
                "course": entry.course.id,
                "events": [
                    {
                        "user": e.username,
                        "event": e.event,
                        "message": e.message,
                        "at": e.at.isoformat() + "Z",
                    }
                    for e in events
                ],  # fmt: skip
            }
        )


class PullStatusAPI(CoursesAPIHandler):
    """A server's report of its material's pull (extensions/onyxia-git), made with the
    server's own token: the caller is the server's user, and only their rows change."""

    @web.authenticated
    def post(self):
        body = self.body()
        server = check_server_name(body.get("server", ""), "server")
        state = body.get("state")
        if state not in PULL_STATES:
            raise FieldError("state", "must be one of " + ", ".join(PULL_STATES))
        message = body.get("message") or ""
        if not isinstance(message, str):
            raise FieldError("message", "must be text")
        self.app.store.pull_report(self.user, server, state, message[:500], time.time())
        self.set_status(204)
        self.finish()


def routes() -> list[tuple]:
    course = r"([^/]+)"
    return [
        ("api/courses", CoursesAPI),
        (f"api/courses/{course}", CourseAPI),
        (f"api/courses/{course}/record", RecordAPI),
        ("api/pull-status", PullStatusAPI),
    ]
