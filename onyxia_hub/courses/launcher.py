"""Onyxia's launcher links on Onyxia Hub: `<hub>/services/courses/launcher/<catalog>/<chart>?...`.

    GET  launcher/<catalog>/<chart>?<Onyxia's query>          the Start page
    POST launcher/<catalog>/<chart>?<the same query>          Start (XSRF)
    POST launcher/<catalog>/<chart>/course?<the same query>   make it a course (instructors)

The GET reads the link (`onyxia_links.parse_query`: a link onyxia-web would not read is a
400 page naming the parameter), translates it (`translate`) and shows what will start and
every parameter that is not applied, with why. `autoLaunch=true` starts nothing: only the
Start button's POST does, through the one launch path (the hub checks the options against
the catalog, the user's groups and quota). The server is a new named server, named after
the link's `name` (or its chart), never one of the user's existing servers.
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote

from tornado import web

from ..choices import ChoiceError, check
from ..db.courses import CourseExists
from ..fields import FieldError
from ..providers.initscripts import allowed as init_allowed
from ..service.hubapi import HubAPIError
from .handlers import CourseHandler, facts
from .model import Course, checked, parse_course
from .onyxia_links import LinkError, Translation, parse_query, translate

SEGMENT = r"([^/]{1,100})"


def slug(text: str, limit: int = 30) -> str:
    """A server or course name from free text: lowercase letters, digits, single '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    if not name:
        return "server"
    if not name[0].isalpha():
        name = ("s-" + name)[:limit].strip("-")
    return name


def free_name(base: str, taken) -> str:
    base = slug(base, 26)
    if base not in taken:
        return base
    for n in range(2, 1000):
        name = f"{base}-{n}"
        if name not in taken:
            return name
    raise FieldError("name", "you have too many servers of that name: delete some in My services")


class LauncherPage(CourseHandler):
    def translation(self, chart: str) -> Translation:
        try:
            query = parse_query(self.request.query)
        except LinkError as e:
            raise FieldError(e.parameter, e.message) from None
        app = self.app
        patterns = app.init_script_patterns
        return translate(query, chart, self.catalog, app.launcher_charts,
                         lambda url: bool(patterns) and init_allowed(url, patterns))  # fmt: skip

    def show(self, catalog_id: str, chart: str, t: Translation, status: int = 200, **extra):
        course = Course(id=slug(t.name or chart), title=t.name or chart, options=t.options)
        rows = []
        for label, value in facts(course, self.catalog) if t.service else []:
            if label == "Material":  # a launch's repository goes to ~/<its name>, as Onyxia's
                value = value.rsplit(", in ~/", 1)[0] + ", cloned into your home"
            if label != "Opens":
                rows.append((label, value))
        problem = extra.pop("problem", None)
        if problem is None and self.catalog is not None:
            try:  # what the hub would answer, shown before Start
                check(dict(t.options), self.catalog, self.groups)
            except ChoiceError as e:
                problem = str(e)
        query = self.request.query
        course_action = self.request.path.rstrip("/") + "/course" + (f"?{query}" if query else "")
        self.render_page(
            "course.html",
            status,
            page_title=f"Launch {t.name or chart}",
            course=course,
            entry=None,
            view=extra.pop("view", "launcher"),
            facts=rows,
            teaches=False,
            link="",
            pull_wait=0,
            translation=t,
            origin=f"{catalog_id}/{chart}",
            action=self.request.uri,
            course_action=course_action,
            may_create=self.access.may_create,
            known_charts=sorted(self.app.launcher_charts),
            problem=problem,
            **extra,
        )

    def require_service(self, t: Translation, chart: str) -> None:
        if t.service is None:
            known = ", ".join(sorted(self.app.launcher_charts))
            raise web.HTTPError(
                404,
                f"This datalab has no service for Onyxia's chart {chart[:60]!r}; it has: {known}.",
            )

    @web.authenticated
    def get(self, catalog_id, chart):
        t = self.translation(chart)
        self.require_service(t, chart)
        self.show(catalog_id, chart, t)

    @web.authenticated
    async def post(self, catalog_id, chart):
        t = self.translation(chart)
        self.require_service(t, chart)
        servers = await self.app.hub.user_servers(self.token, self.user)
        name = free_name(t.name or chart, set(servers))
        try:
            await self.app.hub.start(
                self.token, self.user, name, dict(t.options), self.app.launch_wait
            )
        except HubAPIError as e:
            running = [
                n or "default" for n, s in servers.items() if s.get("ready") or s.get("pending")
            ]
            status = e.status if 400 <= e.status < 500 else 502
            return self.show(catalog_id, chart, t, status, view="refused",
                             message=e.message, running=running)  # fmt: skip
        user, server = quote(self.user, safe=""), quote(name, safe="")
        self.redirect(f"{self.app.hub_prefix}spawn-pending/{user}/{server}")


class LauncherCourseAction(LauncherPage):
    """One click: a course with the link's environment and material, to edit and share."""

    @web.authenticated
    def post(self, catalog_id, chart):
        if not self.access.may_create:
            raise web.HTTPError(403, "Only admins and instructors may create courses.")
        t = self.translation(chart)
        self.require_service(t, chart)
        keep = ("service", "version", "cpu", "memory", "gpus", "gpu_type", "repository", "branch")
        options = {k: v for k, v in t.options.items() if k in keep}
        taken = {e.course.id for e in self.app.library.all()}
        course_id = free_name(t.name or chart, taken)
        raw = {"id": course_id, "title": t.name or chart, "options": options,
               "description": f"From Onyxia's link {catalog_id}/{chart}."}  # fmt: skip
        try:
            course = checked(parse_course(raw, creator=self.user), self.catalog)
            self.app.library.create(replace(course, archived=True))  # opens once checked
        except CourseExists:
            raise FieldError("id", f"a course {course_id!r} exists already") from None
        self.back("copied", course.id, to=f"{course.id}/edit")


def routes() -> list[tuple]:
    return [
        (f"launcher/{SEGMENT}/{SEGMENT}/course", LauncherCourseAction),
        (f"launcher/{SEGMENT}/{SEGMENT}", LauncherPage),
    ]
