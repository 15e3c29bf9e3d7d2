"""The courses service's parts without a hub: a course's rules, course files, the store,
and the decisions about a trainee's server (its name, the record, the material, the URL).

Rules are tables: each row a value and the field-naming message (or none). The store runs
on a real SQLite file, then on PostgreSQL. Course files go through `onyxia-hub courses
check`, the command operators run.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from onyxia_hub import cli
from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.courses import trainees
from onyxia_hub.courses.files import read_directories
from onyxia_hub.courses.library import Access, Library
from onyxia_hub.courses.model import (
    Course,
    Who,
    catalog_problem,
    check_open,
    duplicate_of,
    parse_course,
    quoted_path,
)
from onyxia_hub.db import make_engine
from onyxia_hub.db.courses import SCHEMA, CourseExists, CourseStore
from onyxia_hub.fields import FieldError

CATALOG = load_catalog(default_catalog_path())
VALID = {
    "id": "intro-python",
    "title": "Introduction to Python",
    "description": "Week 1.\nBring questions.",
    "options": {"service": "jupyter-python", "cpu": 1, "memory": "2Gi",
                "repository": "https://git.example.org/teach/intro.git", "branch": "main"},
    "open": "lessons/01 first steps.ipynb",
    "join": {"groups": ["l3-stats"], "users": ["guest-ann"]},
    "instructors": {"users": ["prof-bob"], "groups": ["teachers"]},
    "autostart": True,
}  # fmt: skip


def refused(raw, **kwargs) -> FieldError | None:
    try:
        parse_course(raw, **kwargs)
    except FieldError as e:
        return e
    return None


def test_a_full_course_reads_back_as_the_api_shows_it():
    course = parse_course(VALID, creator="prof-bob")
    assert course.as_json() | {"read_only": False} == {
        **VALID,
        "options": {**VALID["options"], "cpu": 1},
        "archived": False,
        "read_only": False,
        "created_by": "prof-bob",
    }
    # the material gets a directory of its own, and the file opens inside it
    assert course.material_dir == "courses/intro-python"
    assert course.open_path == "courses/intro-python/lessons/01 first steps.ipynb"
    assert course.launch_options()["repository_dir"] == "courses/intro-python"
    assert catalog_problem(course, CATALOG) is None


def test_a_course_without_material_opens_relative_to_the_home():
    course = parse_course({"id": "scratch", "title": "Scratch", "open": "notes.ipynb"})
    assert course.material_dir == "" and course.open_path == "notes.ipynb"
    assert "repository_dir" not in course.launch_options()
    # defaults: anyone signed in joins, its creator teaches it
    created = parse_course({"id": "scratch", "title": "Scratch"}, creator="ann")
    assert created.join == Who(anyone=True) and created.instructors == Who(users=("ann",))
    # naming other instructors never locks its creator out of the course they made
    others = {"id": "scratch", "title": "S", "instructors": {"users": ["bob"], "groups": ["t"]}}
    assert parse_course(others, creator="ann").instructors == Who(
        users=("ann", "bob"), groups=("t",)
    )


# field, value, part of the message
BAD = [
    ("id", None, "is required"),
    ("id", "Intro", "lowercase"),
    ("id", "a--b", "lowercase"),
    ("id", "x" * 31, "lowercase"),
    ("id", "  ", "is required"),
    ("id", "api", "reserved"),
    ("id", "oauth_callback", "lowercase"),
    ("id", "launcher", "reserved"),
    ("id", 12, "must be text"),
    ("title", "", "is required"),
    ("title", "two\nlines", "one line"),
    ("title", "t" * 121, "at most 120"),
    ("description", "bell\x07", "control"),
    ("options", ["service"], "must be an object"),
    ("options.init_script", {"init_script": "https://x.example/s.sh"}, "not a course's"),
    ("options.repository_dir", {"repository_dir": "elsewhere"}, "not a course's"),
    ("options.cpu", {"cpu": True}, "string or a number"),
    ("options.memory", {"memory": "m" * 300}, "too long"),
    ("options.repository", {"repository": "http://plain.example.org/x.git"}, "https"),
    ("options.repository", {"repository": "https://u:s3cret@x.example/r.git"}, "the URL"),
    ("options.branch", {"repository": "https://x.example/r.git", "branch": "a..b"}, "a..b"),
    ("open", "../../etc/passwd", "'..'"),
    ("open", "lessons/../../x", "'..'"),
    ("open", "/etc/passwd", "relative"),
    ("open", "~/x", "relative"),
    ("open", "a\\b", "relative"),
    ("open", "a//b", "empty"),
    ("open", "a\x00b", "control"),
    ("open", "x" * 1025, "at most 1024"),
    ("open", 3, "path inside"),
    ("join", {}, "names nobody"),
    ("join", {"anyone": True, "users": ["x"]}, "list no users"),
    ("join", {"anyone": "yes"}, "true or false"),
    ("join", {"users": "ann", "everyone": True}, "is not known"),
    ("join", "everyone", "must be an object"),
    ("join", {"users": [["nested"]]}, "list of names"),
    ("instructors", {"anyone": True}, "is not known"),
    ("autostart", "yes", "true or false"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), BAD, ids=[f"{f}-{i}" for i, (f, *_) in enumerate(BAD)]
)
def test_each_bad_field_is_refused_by_name(field, value, message):
    key = field.split(".")[0]
    raw = {**VALID, key: value}
    if key == "options":
        raw = {**VALID, "options": value}
    error = refused(raw)
    assert error is not None, f"{field}={value!r} was accepted"
    expected = {"join": "join", "instructors": "instructors"}.get(key, field)
    assert error.field.startswith(expected), (error.field, error.message)
    if message:
        assert message in error.message, error.message
    assert "s3cret" not in error.message  # a password in a URL is never repeated


def test_unknown_fields_and_a_changed_id_are_refused():
    assert refused({**VALID, "image": "evil:latest"}).field == "image"
    assert refused("intro") is not None
    error = refused({**VALID, "id": "other"}, course_id="intro-python")
    assert error.field == "id" and "cannot change" in error.message


def test_what_the_catalog_no_longer_allows_is_named():
    course = parse_course({**VALID, "options": {"service": "jupyter-python", "cpu": 64}})
    field, why = catalog_problem(course, CATALOG)
    assert field == "options.cpu" and "64" in why and not why.startswith("cpu:")
    gone = parse_course({**VALID, "options": {"service": "retired-service"}})
    assert catalog_problem(gone, CATALOG)[0] == "options.service"
    assert catalog_problem(gone, None) == ("options", "the catalog cannot be read right now")


def test_open_paths_are_quoted_segment_by_segment():
    assert check_open("lessons/") == "lessons"
    assert quoted_path("a b/c#d?e%f/é.ipynb") == "a%20b/c%23d%3Fe%25f/%C3%A9.ipynb"


def test_a_copy_is_its_creators_and_in_the_store():
    original = parse_course(VALID, creator="prof-bob")
    copy = duplicate_of(original, "intro-python-2", "prof-cat")
    assert copy.id == "intro-python-2" and copy.title.endswith("(copy)")
    assert copy.instructors.users == ("prof-cat",) and not copy.read_only
    assert copy.archived, "a copy opens only once its instructor restores it"
    with pytest.raises(FieldError):
        duplicate_of(original, "API", "prof-cat")


def test_who_may_do_what():
    course = parse_course(VALID, creator="prof-bob")
    trainee = Access("guest-ann", frozenset(), False, "instructors")
    member = Access("zoe", frozenset({"l3-stats"}), False, "instructors")
    outsider = Access("eve", frozenset({"other"}), False, "instructors")
    teacher = Access("tim", frozenset({"teachers", "instructors"}), False, "instructors")
    admin = Access("root", frozenset(), True, "instructors")
    assert trainee.may_join(course) and member.may_join(course)
    assert not outsider.may_use(course) and not outsider.may_create
    assert not trainee.may_edit(course) and not trainee.may_create
    assert teacher.may_edit(course) and teacher.may_create and admin.may_edit(course)
    assert Access("x", frozenset({"instructors"}), False, "").may_create is False


# -- a trainee's server -------------------------------------------------------------------
def row(state="starting", started=None, pull=None, pull_at=None, server="intro"):
    now = datetime.now(UTC).replace(tzinfo=None)
    return trainees.TraineeServer(
        "intro", "ann", server, state, started, pull, None, pull_at, now, now
    )


T0, T1 = "2026-12-03T10:00:00.000000Z", "2026-12-03T11:00:00.000000Z"
STEPS = [
    ("ready on the hub", row("starting"), trainees.Seen("intro", True, None, T0),
     [("ready", "ready")]),
    ("still starting", row("starting"), trainees.Seen("intro", False, "spawn", None), []),
    ("gone before ready", row("starting"), None, [("failed", "failure")]),
    ("stopped elsewhere", row("ready", T0), None, [("stopped", "stop")]),
    ("started again elsewhere", row("ready", T0), trainees.Seen("intro", True, None, T1),
     [("stopped", "stop"), ("starting", "start"), ("ready", "ready")]),
    ("My services' Start", row("stopped", T0), trainees.Seen("intro", False, "spawn", None),
     [("starting", "start")]),
    ("joined only", row("joined"), trainees.Seen("intro", True, None, T0), []),
]  # fmt: skip


@pytest.mark.parametrize(("what", "before", "seen", "expected"), STEPS, ids=[s[0] for s in STEPS])
def test_the_record_follows_the_hub(what, before, seen, expected):
    assert [(s, e) for s, e, _ in trainees.transitions(before, seen)] == expected


def test_a_trainees_own_server_is_never_taken_over():
    assert trainees.choose_name("intro", None, {}) == "intro"
    assert trainees.choose_name("intro", None, {"intro": {}}) == "intro-course"
    assert trainees.choose_name("intro", None, {"intro": {}, "intro-course": {}}) is None
    # once started by the service, the name is the course's
    assert trainees.choose_name("intro", row("stopped"), {"intro": {}}) == "intro"
    long = "a" * 22 + "-" + "b" * 7
    assert trainees.second_name(long) == "a" * 22 + "-course"  # no '--', 30 at most


def test_the_material_is_there_once_reported_for_this_start():
    course = parse_course(VALID)
    seen = trainees.Seen("intro", True, None, T1)
    after = datetime.fromisoformat(T1.replace("Z", "+00:00")).timestamp() + 3
    assert trainees.material(course, row("ready", pull=None), seen) == "waiting"
    assert trainees.material(course, row("ready", pull="running", pull_at=after), seen) == "waiting"
    assert trainees.material(course, row("ready", pull="done", pull_at=after - 3600), seen) == (
        "waiting"  # a report of the previous start
    )
    assert trainees.material(course, row("ready", pull="done", pull_at=after), seen) == "ready"
    assert trainees.material(course, row("ready", pull="failed", pull_at=after), seen) == "failed"
    bare = parse_course({"id": "intro", "title": "x"})
    assert trainees.material(bare, None, seen) == "none"


def test_where_the_trainee_lands():
    course = parse_course(VALID)
    url = trainees.open_url("/", "ann o'neil", "intro-python", course, "/lab")
    assert url == (
        "/user/ann%20o%27neil/intro-python/lab/tree/courses/intro-python/lessons/01%20first%20steps.ipynb"
    )
    assert trainees.open_url("/jh/", "ann", "s", course, "/vscode/") == "/jh/user/ann/s/vscode/"


# -- the store -----------------------------------------------------------------------------
@pytest.fixture
def store(db_url):
    SCHEMA.prepare(db_url)
    engine = make_engine(db_url)
    yield CourseStore(engine)
    engine.dispose()


def test_courses_and_the_record_are_kept(store):
    raw = parse_course(VALID).as_json()
    stored = store.create(raw, "prof-bob")
    assert stored.as_raw()["options"] == VALID["options"] | {"cpu": 1}
    with pytest.raises(CourseExists):
        store.create(raw, "prof-bob")
    # a visit twice, one join; a state change and its event in one transaction
    for _ in range(2):
        store.join("intro-python", "ann", "intro-python")
    store.transition("intro-python", "ann", "starting", "start", server_name="intro-python")
    # a change another process recorded first is not recorded twice
    assert store.transition("intro-python", "ann", "ready", "ready", expect=("ready",)) is None
    store.transition("intro-python", "ann", "ready", "ready", started=T0, expect=("starting",))
    assert store.pull_report("ann", "intro-python", "done", "Cloned.", 1.0) == 1
    assert store.pull_report("ann", "other-server", "done", "", 1.0) == 0
    assert [e.event for e in store.events("intro-python")] == ["join", "start", "ready"]
    assert store.trainee("intro-python", "ann").pull_state == "done"
    assert [r.username for r in store.live()] == ["ann"]
    assert store.set_archived("intro-python", True).archived
    assert store.delete("intro-python") and store.course("intro-python") is None
    assert store.events("intro-python"), "the record outlives the course"


def test_ten_trainees_joining_at_once_get_ten_joins(store, db_url):
    engines = [make_engine(db_url) for _ in range(10)]
    errors = []

    def visit(i):
        try:
            CourseStore(engines[i]).join("intro", f"t{i}", "intro")
            CourseStore(engines[i]).join("intro", f"t{i}", "intro")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for engine in engines:
        engine.dispose()
    assert not errors
    assert store.event_counts("intro") == {"join": 10}


# -- course files and the library ------------------------------------------------------------
GOOD_FILE = """\
id: stats-101
title: Statistics 101
options: {service: jupyter-r, memory: 2Gi, repository: "https://git.example.org/t/stats.git"}
open: week1.ipynb
join: {groups: [l1]}
"""


def test_course_files_are_checked_as_the_service_reads_them(tmp_path, capsys):
    directory = tmp_path / "courses"
    directory.mkdir()
    (directory / "stats-101.yaml").write_text(GOOD_FILE)
    assert cli.main(["courses", "check", str(directory)]) == 0
    assert "courses ok: 1 course (stats-101)" in capsys.readouterr().out

    (directory / "wrong-name.yaml").write_text(GOOD_FILE.replace("stats-101", "stats-102"))
    (directory / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    (directory / "gpu.yml").write_text(
        "id: gpu\ntitle: GPU\noptions: {service: jupyter-python, gpus: 1}\n"
    )
    (directory / "alias.yaml").write_text("id: &a alias\ntitle: *a\n")
    assert cli.main(["courses", "check", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "wrong-name.yaml: id: is 'stats-102': name the file stats-102.yaml" in err
    assert "broken.yaml: is not valid YAML" in err
    assert "gpu.yml: options.gpus:" in err
    assert "alias.yaml:" in err and "alias" in err
    assert "courses invalid: 4 problems" in err
    assert cli.main(["courses", "check", str(tmp_path / "missing")]) == 2


def test_a_file_course_is_read_only_and_keeps_its_id(tmp_path, store):
    directory = tmp_path / "files"
    directory.mkdir()
    (directory / "stats-101.yaml").write_text(GOOD_FILE)
    library = Library(store, [directory], lambda: CATALOG)
    entry = library.get("stats-101")
    assert entry.course.read_only and entry.problem is None
    with pytest.raises(CourseExists):
        library.create(parse_course({**VALID, "id": "stats-101"}))
    courses, issues = read_directories([directory], CATALOG)
    assert list(courses) == ["stats-101"] and not issues


def test_a_stored_course_the_rules_refuse_shows_broken(store):
    store.create({"id": "old", "title": "Old", "options": {"sevrice": "typo"}}, "prof-bob")
    entry = Library(store, [], lambda: CATALOG).get("old")
    assert entry.course.options == {} and entry.problem[0] == "course"
    assert "options.sevrice" in entry.broken
    assert Access("prof-bob", frozenset(), False, "instructors").teaches(entry.course)


def test_a_course_the_catalog_no_longer_allows_shows_broken(store):
    store.create(parse_course({**VALID, "options": {"cpu": 4}}).as_json(), "prof-bob")
    small = load_catalog(default_catalog_path())
    assert Library(store, [], lambda: small).get("intro-python").problem is None
    assert Library(store, [], lambda: None).get("intro-python").broken == (
        "options: the catalog cannot be read right now"
    )


def test_a_course_is_a_value():
    course = Course(id="a", title="A")
    with pytest.raises(AttributeError):
        course.title = "B"  # type: ignore[misc]
