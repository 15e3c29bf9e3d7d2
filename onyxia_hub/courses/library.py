"""Where courses come from, and who may do what with one.

`Library` merges the two sources: the service's store (courses made on its pages or API)
and the operator's course files (read-only, reread when a file changes). A file's course
wins over a stored one of the same id, and the store refuses to create an id a file
holds. Every course is returned with what is wrong with it now (`Entry.problem`): a
stored course the rules no longer accept, or options the catalog no longer allows, is
shown broken with the reason, never silently altered.

Who may do what (`Access`): the hub's admins and the members of the instructors group
create courses; a course's instructors (listed users, members of listed groups) and the
admins edit, duplicate and archive it; those `join` names use its link, and its
instructors may too (to try it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from ..db.courses import CourseExists, CourseStore, StoredCourse
from ..fields import FieldError
from . import files
from .model import Course, Who, catalog_problem, parse_course

log = logging.getLogger("onyxia_hub.courses")


@dataclass(frozen=True)
class Entry:
    course: Course
    problem: tuple[str, str] | None = None  # (field, why) when it cannot launch now

    @property
    def broken(self) -> str:
        return f"{self.problem[0]}: {self.problem[1]}" if self.problem else ""


@dataclass(frozen=True)
class Access:
    """What one caller may do with courses."""

    user: str
    groups: frozenset[str]
    admin: bool
    instructors_group: str

    @property
    def may_create(self) -> bool:
        return self.admin or self.instructors_group in self.groups

    def teaches(self, course: Course) -> bool:
        return self.admin or course.instructors.includes(self.user, self.groups)

    def may_edit(self, course: Course) -> bool:
        return self.teaches(course) and not course.read_only

    def may_join(self, course: Course) -> bool:
        return course.join.includes(self.user, self.groups)

    def may_use(self, course: Course) -> bool:
        return self.may_join(course) or self.teaches(course)


def from_store(stored: StoredCourse) -> Course:
    """A stored course as the rules read it now; one they refuse keeps its id and title
    and says why (`Course.options` empty, so it cannot launch)."""
    try:
        course = parse_course(stored.as_raw(), creator=stored.created_by)
    except FieldError as e:
        log.warning("Stored course %s is refused by the rules: %s", stored.id, e)
        course = Course(
            id=stored.id,
            title=stored.title or stored.id,
            instructors=Who(users=(stored.created_by,)),
            join=Who(),
            invalid=f"{e.field}: {e.message}",
        )
    return replace(
        course,
        archived=stored.archived,
        created_by=stored.created_by,
        updated_at=stored.updated_at,
    )


class Library:
    def __init__(self, store: CourseStore, directories, catalog, reread_after: float = 2.0):
        self.store = store
        self.directories = list(directories)
        self.catalog = catalog  # a callable: the catalog as it is now, or None
        self.reread_after = reread_after
        self._files: dict[str, Course] = {}
        self.file_issues: list[files.FileIssue] = []
        self._stamp = None
        self._checked = 0.0
        self._reread()

    def _reread(self) -> None:
        stamp = files.stamp(self.directories)
        if stamp != self._stamp:
            self._files, self.file_issues = files.read_directories(self.directories)
            for issue in self.file_issues:
                log.warning("Course file refused: %s", issue)
            self._stamp = stamp
        self._checked = time.monotonic()

    def _file_courses(self) -> dict[str, Course]:
        if self.directories and time.monotonic() - self._checked > self.reread_after:
            self._reread()
        return self._files

    def entry(self, course: Course) -> Entry:
        if course.invalid:
            return Entry(course, ("course", course.invalid))
        return Entry(course, catalog_problem(course, self.catalog()))

    def get(self, course_id: str) -> Entry | None:
        from_file = self._file_courses().get(course_id)
        if from_file is not None:
            return self.entry(from_file)
        stored = self.store.course(course_id)
        return self.entry(from_store(stored)) if stored else None

    def all(self) -> list[Entry]:
        file_courses = self._file_courses()
        courses = dict(file_courses)
        for stored in self.store.courses():
            courses.setdefault(stored.id, from_store(stored))
        return [self.entry(courses[k]) for k in sorted(courses)]

    def create(self, course: Course) -> Course:
        if course.id in self._file_courses():
            raise CourseExists(course.id)
        stored = self.store.create(_raw(course), course.created_by)
        if course.archived:
            stored = self.store.set_archived(course.id, True) or stored
        return from_store(stored)

    def update(self, course: Course) -> Course | None:
        stored = self.store.update(_raw(course))
        return from_store(stored) if stored else None


def _raw(course: Course) -> dict:
    data = course.as_json()
    return {k: data[k] for k in ("id", "title", "description", "options", "open", "join",
                                 "instructors", "autostart")}  # fmt: skip
