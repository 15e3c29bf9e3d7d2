"""`CoursesApp`: the courses service (`python -m onyxia_hub.courses`), on the service skeleton.

A teacher shares one link, `<hub>/services/courses/<id>`; each trainee who opens it lands
in their own course server, with the course's environment and its material pulled into
`~/courses/<id>`, the file the teacher chose open (docs/courses.md). Everything a
hub-managed service does at start (configuration, its store at head, the hub's OAuth,
exit when the hub is gone) is `ServiceApp`'s; this adds its settings, the course library
(its store and the operator's course files), the reconciler that keeps the record in
line with the hub, and its routes.

Its store is its own (`courses_*` tables, its own key): it parses links from anywhere and
holds nothing of the portal's. Its token's role (`onyxia-courses`: `list:users`,
`read:servers`) only reads servers, for the record; trainees' servers are started with
the trainees' own tokens.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tornado import ioloop, web
from traitlets import Bool, Dict, Float, List, Unicode, default

from ..db import courses as courses_store
from ..envnames import COURSES_INIT_SCRIPTS, COURSES_PATHS
from ..service.app import ServiceApp, env_list
from . import api, handlers, launcher, trainees
from .library import Library
from .onyxia_links import DEFAULT_CHARTS

HERE = Path(__file__).resolve().parent


class CoursesApp(ServiceApp):
    service_name = "courses"
    display_name = "courses service"
    schema = courses_store.SCHEMA
    templates = HERE / "templates"
    default_port = 10102

    name = "onyxia-courses"
    description = "Onyxia Hub's courses: one link per course, each trainee in their environment."

    @default("courses_url")
    def _courses_url_default(self):
        return self.base_url

    instructors_group = Unicode(
        "instructors",
        help="""Members of this hub group may create courses (the hub's admins always may).
        Each course then names its own instructors (users, groups), who edit it.
        Empty: only admins create courses.""",
    ).tag(config=True)

    course_paths = List(
        Unicode(),
        help="""Directories of course files (`<id>.yaml`, one course each, the keys of the
        API: docs/courses.md), shown read-only and reread when a file changes. Check them
        with `onyxia-hub courses check DIR`. Default: `$ONYXIA_COURSES_PATHS` (a JSON list
        or paths separated by ':'), else none.""",
    ).tag(config=True)

    @default("course_paths")
    def _course_paths_default(self):
        return env_list(COURSES_PATHS) or []

    allow_autostart = Bool(
        True,
        help="""Whether a course marked `autostart` starts an enrolled trainee's server as
        soon as they open its link, without the Start button. False: every course shows
        its Start button, whatever its setting. An autostart course's link, followed from
        anywhere, starts a server for an enrolled trainee who is signed in: only the
        course's own environment and material, never options from the link.""",
    ).tag(config=True)

    launch_wait = Float(
        1.0,
        help="""Seconds Start waits for the hub's answer before showing the progress page.
        Refusals (quota, server limit, an option the catalog no longer allows) come back
        within it and are shown on the course's page.""",
    ).tag(config=True)

    pull_wait = Float(
        120.0,
        help="""Seconds the waiting page waits for the server to report its material's pull
        before it offers to open the server anyway (a server whose image lacks the
        onyxia-git extension never reports).""",
    ).tag(config=True)

    reconcile_interval = Float(
        15.0,
        help="""Seconds between two comparisons of the course servers believed live with
        the hub's, which record the stops made elsewhere (My services, the culler) and the
        starts' outcomes when no trainee's page is open. 0: only at trainees' visits.""",
    ).tag(config=True)

    # -- start-up --------------------------------------------------------------------
    launcher_charts = Dict(
        value_trait=Unicode(),
        help="""Onyxia's charts and the catalog services their launcher links open
        (`launcher/<catalog>/<chart>?...`, docs/courses.md), e.g.
        `{"jupyter-python": "jupyter-python", "rstudio": "jupyter-r"}`. The default maps
        InseeFrLab's interactive-services charts to the shipped catalog; a chart that is
        not listed, or whose service the catalog lacks, is a 404 page naming the charts
        this datalab has.""",
    ).tag(config=True)

    @default("launcher_charts")
    def _launcher_charts_default(self):
        return dict(DEFAULT_CHARTS)

    init_script_patterns = List(
        Unicode(),
        help="""The personal init scripts the hub allows
        (`c.InitScriptProvider.allowed_personal_scripts`), so that a launcher link's
        `init.personalInit` is shown as applied or not before Start; the hub checks
        again at launch. Default: `$ONYXIA_COURSES_INIT_SCRIPTS` (a JSON list), which
        `onyxia-hub up` sets from the hub's configuration.""",
    ).tag(config=True)

    @default("init_script_patterns")
    def _init_script_patterns_default(self):
        return env_list(COURSES_INIT_SCRIPTS) or []

    def setup(self) -> None:
        self.store = courses_store.CourseStore(self.db.engine)
        self.library = Library(self.store, self.course_paths, self.catalog)
        self.jinja.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""

    def routes(self) -> list[tuple]:
        return [*api.routes(), *launcher.routes(), *handlers.routes()]

    def on_start(self, loop: ioloop.IOLoop) -> None:
        self._reconciling: asyncio.Future | None = None

        def reconcile():
            if self._reconciling is not None and not self._reconciling.done():
                return
            self._reconciling = asyncio.ensure_future(self._reconcile())

        loop.add_callback(reconcile)  # at start: what happened while the service was down
        if self.reconcile_interval > 0:
            ioloop.PeriodicCallback(reconcile, 1000 * self.reconcile_interval).start()

    async def _reconcile(self) -> None:
        try:
            changed = await trainees.reconcile_all(self.store, self.hub)
        except Exception as e:  # the hub restarting: next time
            self.log.info("Course servers not compared with the hub this time: %s", e)
            return
        if changed:
            self.log.info("Recorded %d course server change(s) seen on the hub", changed)


def not_found(course_id: str) -> web.HTTPError:
    return web.HTTPError(404, f"There is no course {course_id[:30]!r}: check the link.")


main = CoursesApp.launch_instance
