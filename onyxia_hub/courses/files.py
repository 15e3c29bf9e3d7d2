"""Course files: courses an operator ships as YAML, one `<id>.yaml` per course.

A file holds one course, with the keys of the service's API (`model.KEYS`): id, title,
description, options, open, join, instructors, autostart. It is read as the catalog's
files are (`catalog.yamlfile.read_yaml`: a regular file, UTF-8, one document, no anchors,
aliases or duplicate keys), parsed by `model.parse_course` and checked against the
catalog, so a file the service would refuse is refused by `onyxia-hub courses check DIR`
first, with `file: field: problem` lines.

The service shows these courses read-only: they change by changing the file (it rereads
the directories when a file changes). A course file and a course made on the pages may
not share an id: the file's wins, and the service refuses to create that id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..catalog.model import Catalog
from ..catalog.yamlfile import read_yaml
from ..fields import FieldError
from .model import Course, catalog_problem, parse_course

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 1000


@dataclass(frozen=True)
class FileIssue:
    file: str
    field: str
    problem: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.field}: {self.problem}"
            if self.field
            else (f"{self.file}: {self.problem}")
        )


def course_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.name[0] != ".")


def read_course_file(path: Path) -> tuple[Course | None, list[FileIssue]]:
    document, issues = read_yaml(path, str(path))
    if document is None:
        return None, [FileIssue(i.file, i.field, i.problem) for i in issues]
    try:
        course = parse_course(document)
    except FieldError as e:
        return None, [FileIssue(str(path), e.field, e.message)]
    if path.stem != course.id:
        problem = f"is {course.id!r}: name the file {course.id}.yaml"
        return None, [FileIssue(str(path), "id", problem)]
    return replace(course, source=str(path)), []


def read_directories(
    directories, catalog: Catalog | None = None
) -> tuple[dict[str, Course], list[FileIssue]]:
    """Every course of the directories (by id) and every problem found; with a catalog,
    a course it does not allow is a problem too (the service still shows it, broken)."""
    courses: dict[str, Course] = {}
    issues: list[FileIssue] = []
    for directory in map(Path, directories):
        if not directory.is_dir():
            issues.append(FileIssue(str(directory), "", "is not a directory"))
            continue
        files = course_files(directory)
        if len(files) > MAX_FILES:
            issues.append(FileIssue(str(directory), "", f"holds over {MAX_FILES} course files"))
            files = files[:MAX_FILES]
        for path in files:
            course, problems = read_course_file(path)
            issues += problems
            if course is None:
                continue
            if course.id in courses:
                first = courses[course.id].source
                issues.append(FileIssue(str(path), "id", f"{course.id!r} is also {first}'s"))
                continue
            if catalog is not None:
                problem = catalog_problem(course, catalog)
                if problem:
                    issues.append(FileIssue(str(path), *problem))
            courses[course.id] = course
    return courses, issues


def stamp(directories) -> tuple:
    """What changes when a course file changes (names, sizes, times)."""
    marks = []
    for directory in map(Path, directories):
        try:
            for path in course_files(directory):
                st = path.stat()
                marks.append((str(path), st.st_size, st.st_mtime_ns))
        except OSError:
            marks.append((str(directory), None, None))
    return tuple(marks)
