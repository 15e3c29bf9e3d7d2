"""The courses service's pages.

    GET  <prefix>                      the courses one teaches or may join (+ New course)
    GET  <prefix>new | POST            create a course (admins, the instructors group)
    GET  <prefix><id>                  the link: open, wait, progress or the Start page
    POST <prefix><id>/start            Start (XSRF): then the hub's progress page
    GET  <prefix><id>/status           JSON for the waiting page: is the material there
    GET  <prefix><id>/edit | POST      edit (the course's instructors, admins)
    POST <prefix><id>/duplicate        copy under a new id, then edit the copy
    POST <prefix><id>/archive          archive (`archived=1`) or restore (`archived=0`)

Every change is a POST with the XSRF token (the skeleton checks it); a refused form is
shown again with what was typed and the message beside its field, at HTTP 400. No GET
starts a server, except the link of an `autostart` course for an enrolled trainee
(`landing`).
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

from tornado import web

from ..db.courses import CourseExists
from ..fields import FieldError
from ..quantities import format_cpu, format_memory
from ..service.handlers import APIHandler, PageHandler
from . import landing, trainees
from .library import Access, Entry
from .model import COURSE_OPTIONS, Course, checked, duplicate_of, parse_course

COURSE = r"([^/]+)"
COURSE_ID = re.compile(r"[a-z0-9-]{1,30}")  # anything else is no course: 404 before a query
DONE = {
    "created": "The course is created: share its link.",
    "saved": "The course is saved.",
    "copied": "This is a copy, archived until you restore it: change what differs, save, "
    "then Restore it from the list.",
    "archived": "The course is archived: its link no longer starts servers.",
    "restored": "The course is restored: its link works again.",
}


class CourseHandler(PageHandler):
    """What every course page needs: the caller's rights and the course they name."""

    @property
    def access(self) -> Access:
        return Access(self.user, self.groups, self.is_admin, self.app.instructors_group)

    def entry(self, course_id: str) -> Entry:
        entry = self.app.library.get(course_id) if COURSE_ID.fullmatch(course_id) else None
        if entry is None:
            raise web.HTTPError(404, f"There is no course {course_id[:30]!r}: check the link.")
        return entry

    def usable(self, course_id: str) -> Entry:
        entry = self.entry(course_id)
        if not self.access.may_use(entry.course):
            raise web.HTTPError(
                403,
                "This course is open to its trainees only: ask its teacher to add you "
                "(your user name is " + repr(self.user) + ").",
            )
        return entry

    def editable(self, course_id: str) -> Entry:
        entry = self.entry(course_id)
        if entry.course.read_only and self.access.teaches(entry.course):
            raise web.HTTPError(
                403, "This course comes from a course file: change the file to change it."
            )
        if not self.access.may_edit(entry.course):
            raise web.HTTPError(403, "Only this course's instructors and admins may change it.")
        return entry

    def link(self, course_id: str) -> str:
        return f"{self.request.protocol}://{self.request.host}{self.app.base_url}{course_id}"

    def page_context(self) -> dict:
        return {**super().page_context(), "error_back_url": self.app.base_url,
                "error_back_label": "Back to Courses"}  # fmt: skip

    def back(self, done: str, course_id: str = "", to: str = "") -> None:
        query = urlencode({"done": done, **({"course": course_id} if course_id else {})})
        self.redirect(f"{self.app.base_url}{to}?{query}", status=303)


class ListPage(CourseHandler):
    @web.authenticated
    def get(self):
        access = self.access
        teaching, joining = [], []
        for entry in self.app.library.all():
            course = entry.course
            if access.teaches(course):
                teaching.append(entry)
            elif access.may_join(course) and not course.archived and not entry.problem:
                joining.append(entry)
        done = DONE.get(self.get_argument("done", ""))
        self.render_page(
            "courses.html",
            page_title="Courses",
            teaching=teaching,
            joining=joining,
            may_create=access.may_create,
            file_issues=self.app.library.file_issues if access.may_create else [],
            link=self.link,
            done=done,
            highlight=self.get_argument("course", "")[:30],
        )


def form_course(h, course_id: str | None = None) -> dict:
    """The course form's fields as the API's dict (what parse_course reads)."""
    arg = h.get_body_argument
    options = {k: arg(k, "").strip() for k in COURSE_OPTIONS if arg(k, "").strip()}
    join_users, join_groups = arg("join_users", ""), arg("join_groups", "")
    join = (
        {"anyone": True}
        if arg("join_anyone", "") == "on"
        else {"users": join_users, "groups": join_groups}
    )
    return {
        "id": course_id if course_id is not None else arg("id", "").strip(),
        "title": arg("title", ""),
        "description": arg("description", ""),
        "options": options,
        "open": arg("open", ""),
        "join": join,
        "instructors": {
            "users": arg("instructor_users", ""),
            "groups": arg("instructor_groups", ""),
        },
        "autostart": arg("autostart", "") == "on",
    }


class FormPage(CourseHandler):
    """New course, and a course's edit page: one form."""

    def show(self, course: dict, *, editing: bool, status: int = 200, error=None) -> None:
        catalog = self.catalog
        self.render_page(
            "course-form.html",
            status,
            page_title=f"Edit {course.get('id')}" if editing else "New course",
            course=course,
            editing=editing,
            services=catalog.services if catalog else (),
            errors={error.field: error.message} if error else {},
            done=DONE.get(self.get_argument("done", "")),
        )


class NewPage(FormPage):
    def require(self) -> None:
        if not self.access.may_create:
            group = self.app.instructors_group
            who = f"admins and members of the group {group!r}" if group else "admins"
            raise web.HTTPError(403, f"Only {who} may create courses.")

    @web.authenticated
    def get(self):
        self.require()
        blank = {"join": {"anyone": True}, "instructors": {"users": [self.user]}, "options": {}}
        self.show(blank, editing=False)

    @web.authenticated
    def post(self):
        self.require()
        raw = form_course(self)
        try:
            course = checked(parse_course(raw, creator=self.user), self.catalog)
            self.app.library.create(course)
        except FieldError as e:
            return self.show(raw, editing=False, status=400, error=e)
        except CourseExists:
            e = FieldError("id", f"a course {raw['id']!r} exists already: choose another id")
            return self.show(raw, editing=False, status=409, error=e)
        self.back("created", course.id)


class EditPage(FormPage):
    @web.authenticated
    def get(self, course_id):
        entry = self.editable(course_id)
        self.show(entry.course.as_json(), editing=True)

    @web.authenticated
    def post(self, course_id):
        entry = self.editable(course_id)
        raw = form_course(self, entry.course.id)
        try:
            course = parse_course(raw, creator=entry.course.created_by, course_id=entry.course.id)
            self.app.library.update(checked(course, self.catalog))
        except FieldError as e:
            return self.show(raw, editing=True, status=400, error=e)
        self.back("saved", course.id)


class DuplicateAction(CourseHandler):
    @web.authenticated
    def post(self, course_id):
        entry = self.entry(course_id)
        if not (self.access.teaches(entry.course) and self.access.may_create):
            raise web.HTTPError(403, "Only instructors who may create courses may copy one.")
        try:
            copy = duplicate_of(entry.course, self.get_body_argument("new_id", ""), self.user)
            self.app.library.create(checked(copy, self.catalog))
        except CourseExists:
            raise FieldError("new_id", "a course with this id exists already") from None
        self.back("copied", copy.id, to=f"{copy.id}/edit")


class ArchiveAction(CourseHandler):
    @web.authenticated
    def post(self, course_id):
        entry = self.editable(course_id)
        value = self.get_body_argument("archived", "1")
        if value not in ("0", "1"):
            raise FieldError("archived", "must be 1 (archive) or 0 (restore)")
        self.app.store.set_archived(entry.course.id, value == "1")
        self.back("archived" if value == "1" else "restored", entry.course.id)


class LinkPage(CourseHandler):
    """The course's link: see `landing`."""

    async def outcome(self, entry: Entry, result) -> None:
        if isinstance(result, landing.Redirect):
            self.redirect(result.url)
            return
        course = entry.course
        self.render_page(
            "course.html",
            result.status,
            page_title=course.title,
            course=course,
            entry=entry,
            view=result.page,
            facts=facts(course, self.catalog),
            teaches=self.access.teaches(course),
            link=self.link(course.id),
            pull_wait=self.app.pull_wait,
            **result.context,
        )

    @web.authenticated
    async def get(self, course_id):
        entry = self.usable(course_id)
        if entry.course.archived:
            return await self.outcome(entry, landing.Show("archived", 410))
        autostart = self.app.allow_autostart
        await self.outcome(entry, await landing.land(self, entry, self.access, autostart=autostart))


class StartAction(LinkPage):
    @web.authenticated
    async def get(self, course_id):
        self.redirect(self.app.base_url + self.entry(course_id).course.id)

    @web.authenticated
    async def post(self, course_id):
        entry = self.usable(course_id)
        if entry.course.archived:
            return await self.outcome(entry, landing.Show("archived", 410))
        result = await landing.land(self, entry, self.access, autostart=False)
        if isinstance(result, landing.Show) and result.page == "start":
            t = await landing.look(self, entry.course, self.access)
            result = await landing.start(self, entry.course, t)
        await self.outcome(entry, result)


class StatusAPI(APIHandler, CourseHandler):
    """The waiting page's question: is the trainee's material there yet?"""

    @web.authenticated
    async def get(self, course_id):
        entry = self.usable(course_id)
        course = entry.course
        t = await landing.look(self, course, self.access)
        if t.seen is None or not t.seen.ready:
            state = "starting" if t.seen is not None and t.seen.starting else "stopped"
        else:
            state = trainees.material(course, t.row, t.seen)
        url = trainees.open_url(
            self.app.hub_base, self.user, t.name or course.id, course,
            landing.default_url(self, course),
        )  # fmt: skip
        started = trainees.epoch(t.seen.started) if t.seen is not None else None
        self.write_json(
            {
                "state": state,
                "open_url": url,
                "message": (t.row.pull_message or "") if t.row else "",
                "waited": round(time.time() - started, 1) if started else 0,
            }
        )


def facts(course: Course, catalog) -> list[tuple[str, str]]:
    """What will start, in words, for the Start page."""
    options = course.options
    service = None
    if catalog is not None:
        name = options.get("service")
        service = catalog.get(str(name)) if name else catalog.default_service
    rows = [("Environment", service.display_name if service else str(options.get("service")))]
    if service is not None:
        rows.append(("Version", str(options.get("version") or service.default_version.name)))
    cpu = options.get("cpu") or (format_cpu(service.cpu.default) if service else None)
    memory = options.get("memory") or (format_memory(service.memory.default) if service else "")
    if cpu:
        rows.append(("CPU", str(cpu)))
    if memory:
        rows.append(("Memory", str(memory)))
    if options.get("gpus"):
        rows.append(("GPUs", f"{options.get('gpus')} {options.get('gpu_type') or ''}".strip()))
    if course.repository:
        branch = f" (branch {options.get('branch')})" if options.get("branch") else ""
        rows.append(("Material", f"{course.repository}{branch}, in ~/{course.material_dir}"))
    rows.append(("Opens", course.open_path or "your server's home folder"))
    return rows


def routes() -> list[tuple]:
    return [
        ("?", ListPage),
        ("new", NewPage),
        (COURSE + "/start", StartAction),
        (COURSE + "/status", StatusAPI),
        (COURSE + "/edit", EditPage),
        (COURSE + "/duplicate", DuplicateAction),
        (COURSE + "/archive", ArchiveAction),
        (COURSE + "/?", LinkPage),
    ]
