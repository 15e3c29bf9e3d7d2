"""Courses in the session hub: a teacher's link lands each trainee in their environment,
with the material pulled and the notebook open.

Real parts: the session hub and its courses service, real trainee accounts, a course's
material in a git repository served over HTTPS by git's own http-backend
(tests/helpers/gitserver.py, its CA trusted by the hub's servers as docs/git.md says),
JupyterLab servers, and Debian's Chromium for the trainee's path.

Real spawns (about a CPU-second and 130 MiB each), shared between the checks:

1. trainee-ann in Chromium: signed out -> login -> Start page -> Start -> progress ->
   the notebook open in JupyterLab; a second visit goes straight there;
2. her server relaunched from the link: her edit is kept, the teacher's new lesson is
   pulled, and the record has every step, the stop included though it happened while
   the service was killed (-9);
3. eleven for the autostart course: ten trainees open its link at once and all land,
   with ten records; one of them had a server of their own named like the course,
   which is left alone.

The other checks start nothing, and assert it: a cross-site GET (and one that went
through the login form) shows the Start page; a trainee outside a course gets 403; posts
without XSRF, hostile `next` parameters, bad ids and bad API bodies get a clear 4xx.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
import yaml

from tests.conftest import GIT_TEST_CA
from tests.helpers.browser import launch_chromium, new_page, screenshot, signed_in
from tests.helpers.client import HubClient, page_message
from tests.helpers.gitserver import CertificateAuthority, GitServer

PREFIX = "/services/courses/"
COURSE = "stats-intro"
LESSON = "lessons/01 first steps.ipynb"
SMALL = {"service": "jupyter-python", "cpu": 0.5, "memory": "1Gi"}
TEN = [f"warm-{i}" for i in range(10)]
LINKS = yaml.safe_load((Path(__file__).parent / "data" / "onyxia-links.yaml").read_text())


def notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": source, "id": f"c{i}"}
        for i, source in enumerate(sources)
    ]
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    metadata = {"kernelspec": kernel, "language_info": {"name": "python"}}
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def material(test_catalog, tmp_path_factory):
    """The course's repository, public, on an HTTPS git server the hub's servers trust."""
    ca = CertificateAuthority(
        tmp_path_factory.mktemp("courses-ca"), path=test_catalog.parent / GIT_TEST_CA
    )
    server = GitServer(tmp_path_factory.mktemp("courses-git"), ca)
    server.create_repo(
        "stats", {LESSON: notebook("# Lesson 1: first steps"), "README.md": "# Stats\n"},
        private=False,
    )  # fmt: skip
    yield server
    server.stop()


class CoursesClient:
    """A signed-in HubClient on the courses service: pages, forms (XSRF added), API."""

    def __init__(self, client: HubClient):
        self.client, self.session = client, client.session

    def url(self, path: str) -> str:
        return self.client.url(PREFIX + path.lstrip("/"))

    def get(self, path: str, **kwargs):
        kwargs.setdefault("timeout", 60)
        return self.session.get(self.url(path), **kwargs)

    @property
    def xsrf(self) -> str:
        token = self.session.cookies.get("_xsrf", path=PREFIX)
        if token is None:
            assert self.get("").status_code == 200
            token = self.session.cookies.get("_xsrf", path=PREFIX)
        return token

    def post(self, path: str, data: dict, *, xsrf: bool = True, **kwargs):
        data = {**data, **({"_xsrf": self.xsrf} if xsrf else {})}
        kwargs.setdefault("timeout", 60)
        return self.session.post(self.url(path), data=data, **kwargs)

    def api(self, method: str, path: str, **kwargs):
        headers = {"X-XSRFToken": self.xsrf, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url("api/" + path), headers=headers, **kwargs)

    def record(self, course: str) -> list[tuple[str, str]]:
        r = self.api("GET", f"courses/{course}/record")
        assert r.status_code == 200, r.text
        return [(e["user"], e["event"]) for e in r.json()["events"]]


@pytest.fixture(scope="module")
def teacher(make_user, admin):
    """prof-tim, a member of the instructors group, on the courses service."""
    client = make_user("prof-tim")
    r = admin.api("POST", "/groups/instructors")
    assert r.status_code in (201, 409), r.text
    r = admin.api("POST", "/groups/instructors/users", json={"users": ["prof-tim"]})
    assert r.status_code == 200, r.text
    return CoursesClient(client)


@pytest.fixture(scope="module")
def course(teacher, material):
    """The teacher creates the course on the page, as a teacher would, and copies its link."""
    r = teacher.post(
        "new",
        {
            "id": COURSE,
            "title": "Statistics, first steps",
            "description": "Week 1: the notebook opens by itself.",
            **{k: str(v) for k, v in SMALL.items()},
            "repository": material.url("stats"),
            "branch": "main",
            "open": LESSON,
            "join_anyone": "on",
            "instructor_users": "prof-tim",
        },
        allow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = teacher.get("")
    link = re.search(rf'value="(http[^"]+{PREFIX}{COURSE})"', page.text)
    assert link, page.text
    return link.group(1)


def servers_of(admin, user: str) -> dict:
    r = admin.api("GET", f"/users/{user}", params={"include_stopped_servers": 1})
    return r.json().get("servers", {}) if r.status_code == 200 else {}


def lab_url(user: str, server: str, path: str) -> str:
    quoted = "/".join(quote(p, safe="") for p in path.split("/"))
    return f"/user/{user}/{server}/lab/tree/{quoted}"


def wait_for(condition, timeout: float = 90, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"{what} not met after {timeout}s")


# -- 1. the trainee's path, in Chromium ------------------------------------------------------
def test_a_trainee_lands_in_the_notebook_from_the_link(hub, admin, make_user, course):
    ann = make_user("trainee-ann")
    file_url = lab_url("trainee-ann", COURSE, f"courses/{COURSE}/{LESSON}")
    with launch_chromium() as browser:
        page = new_page(browser, base_url=hub.url)
        page.set_default_timeout(60_000)
        page.goto(course)  # signed out: the hub's login, then back
        page.wait_for_url(re.compile(r"/hub/login"))
        page.locator("#username_input").fill("trainee-ann")
        page.locator("#password_input").fill(ann.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(rf"{PREFIX}{COURSE}$"))
        assert page.locator("#course-facts").inner_text().count("Jupyter Python") == 1
        assert "lessons/01 first steps.ipynb" in page.locator("#course-facts").inner_text()
        assert COURSE not in servers_of(admin, "trainee-ann"), "a GET started a server"
        screenshot(page, "course-start.png")
        page.locator("#start").click()
        page.wait_for_url(re.compile(r"/hub/spawn-pending/trainee-ann/"))
        page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(hub.url + file_url).path)
        heading = page.locator(".jp-Notebook .jp-RenderedMarkdown h1", has_text="Lesson 1")
        heading.first.wait_for(timeout=60_000)
        screenshot(page, "course-notebook.png")
        # a second visit goes straight to the file
        page.goto(course)
        page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(hub.url + file_url).path)
        page.context.close()
    options = servers_of(admin, "trainee-ann")[COURSE]["user_options"]
    assert options["repository_dir"] == f"courses/{COURSE}" and options["cpu"] == "0.5"


# -- 2. relaunch: edits kept, new material pulled, every step recorded --------------------------
def test_a_relaunch_keeps_the_trainees_edit(hub, admin, make_user, course, material, teacher):
    ann = make_user("trainee-ann")
    token = ann.new_token("trainee-ann")
    contents = f"/user/trainee-ann/{COURSE}/api/contents/courses/{COURSE}/"
    auth = {"Authorization": f"token {token}"}
    lesson = contents + quote(LESSON)
    r = ann.session.get(ann.url(lesson), headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    model = r.json()["content"]
    model["cells"].append(
        {"cell_type": "markdown", "metadata": {}, "source": "My answer: 42", "id": "mine"}
    )
    r = ann.session.put(ann.url(lesson), headers=auth, timeout=30,
                        json={"type": "notebook", "format": "json", "content": model})  # fmt: skip
    assert r.status_code == 200, r.text
    material.commit("stats", {"lessons/02 next.ipynb": notebook("# Lesson 2")}, "Lesson 2")

    # the service killed (-9) while the server stops: the hub starts it again, and it
    # records the stop it missed, from its store and the hub's state
    service_pid = int((hub.state_dir / "courses" / "courses.pid").read_text())
    os.kill(service_pid, signal.SIGKILL)
    admin.stop_server("trainee-ann", COURSE)

    def recorded_stop():
        try:
            return ("trainee-ann", "stop") in teacher.record(COURSE)
        except (AssertionError, requests.RequestException):  # the service is starting again
            # (its cookie, signed with a secret derived from its hub token, stays valid)
            return False

    wait_for(recorded_stop, 120, "the stop recorded")  # the hub polls its services every 30 s
    assert int((hub.state_dir / "courses" / "courses.pid").read_text()) != service_pid
    trainee = CoursesClient(ann)
    r = trainee.get(COURSE)
    assert r.status_code == 200 and 'id="start"' in r.text
    r = trainee.post(f"{COURSE}/start", {}, allow_redirects=False)
    assert r.status_code == 302 and "/hub/spawn-pending/trainee-ann/" in r.headers["Location"]
    ann.wait_ready("trainee-ann", COURSE)

    def landed():
        r = trainee.get(COURSE, allow_redirects=False)
        return r.status_code == 302 and r.headers["Location"]

    assert wait_for(landed, 60, "the material pulled") == lab_url(
        "trainee-ann", COURSE, f"courses/{COURSE}/{LESSON}"
    )
    r = ann.session.get(ann.url(lesson), headers=auth, timeout=30)
    assert "My answer: 42" in json.dumps(r.json()["content"]), "the edit was lost"
    r = ann.session.get(
        ann.url(contents + quote("lessons/02 next.ipynb")), headers=auth, timeout=30
    )
    assert r.status_code == 200, "the teacher's new lesson was not pulled"
    steps = [e for u, e in teacher.record(COURSE) if u == "trainee-ann"]
    assert steps == ["join", "start", "ready", "stop", "start", "ready"]
    admin.stop_server("trainee-ann", COURSE)


# -- what starts nothing ------------------------------------------------------------------------
def test_a_cross_site_get_starts_nothing(hub, admin, make_user, course):
    bob = make_user("trainee-bob")
    r = bob.session.get(course, headers={"Sec-Fetch-Site": "cross-site"}, timeout=60)
    assert r.status_code == 200 and 'id="start"' in r.text
    # signed out, the link goes through the login form and comes back same-origin
    fresh = HubClient(hub.url)
    r = fresh.session.get(course, timeout=60)
    assert urlsplit(r.url).path == "/hub/login"
    r = fresh.session.post(
        r.url,
        data={"username": "trainee-bob", "password": bob.password, "_xsrf": fresh.xsrf},
        headers={"Sec-Fetch-Site": "same-origin"},
        timeout=60,
    )
    assert (
        r.status_code == 200 and urlsplit(r.url).path == PREFIX + COURSE and 'id="start"' in r.text
    )
    # a post without the XSRF token, or with another's
    trainee = CoursesClient(bob)
    for token in (None, "forged"):
        data = {"_xsrf": token} if token else {}
        r = bob.session.post(trainee.url(f"{COURSE}/start"), data=data, timeout=60)
        assert r.status_code == 403, r.text
    # hostile next parameters are no redirect at all
    for hostile in (
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "%2F%2Fevil.example",
    ):
        r = bob.session.get(course + "?next=" + hostile, allow_redirects=False, timeout=60)
        assert r.status_code == 200 and "evil" not in r.headers.get("Location", "")
    assert COURSE not in servers_of(admin, "trainee-bob")


def test_bad_ids_and_bodies_get_a_clear_4xx(make_user, teacher):
    bob = CoursesClient(make_user("trainee-bob"))
    for path in ("..%2F..%2Fhub", "%00", "x" * 3000, "Intro", "api%2Fcourses", "no-such-course"):
        r = bob.get(path, allow_redirects=False)
        assert r.status_code == 404, (path, r.status_code)
        assert "Traceback" not in r.text
    for body, field, status in (
        ({"id": "x", "title": "X"}, None, 403),  # bob is no instructor
    ):
        r = bob.api("POST", "courses", json=body)
        assert r.status_code == status and r.json()["field"] == field
    cases = [
        (b"not json", "body", 400),
        ([1], "body", 400),
        ({"id": "launcher", "title": "x"}, "id", 400),
        ({"id": "ok-id", "title": "x", "open": "../../x"}, "open", 400),
        ({"id": "ok-id", "title": "x", "options": {"cpu": 99}}, "options.cpu", 400),
        ({"id": COURSE, "title": "again"}, "id", 409),
        ({"id": "big", "title": "x" * 70_000}, "body", 400),
    ]
    for body, field, status in cases:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = teacher.api("POST", "courses", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (body[:60], r.text)
        assert r.json()["field"] == field, r.text
    # the form keeps what was typed and names the field
    r = teacher.post("new", {"id": "Bad Id", "title": "Kept title", "join_anyone": "on"})
    assert r.status_code == 400 and 'value="Kept title"' in r.text
    assert "lowercase" in page_message(r.text, "id-help")


def test_a_trainee_outside_the_course_gets_403(admin, make_user, teacher):
    body = {"id": "closed-course", "title": "Closed", "options": SMALL, "join": {"groups": ["l3"]}}
    r = teacher.api("POST", "courses", json=body)
    assert r.status_code == 201, r.text
    bob = CoursesClient(make_user("trainee-bob"))
    r = bob.get("closed-course")
    assert r.status_code == 403 and "trainee-bob" in r.text
    r = bob.post("closed-course/start", {})
    assert r.status_code == 403
    assert "closed-course" not in servers_of(admin, "trainee-bob")
    assert bob.api("GET", "courses/closed-course").status_code == 404


def test_the_hub_refuses_what_the_trainees_groups_do_not_allow(admin, make_user, teacher):
    """The course is fine for its teachers' group; a trainee outside it is refused by the
    hub at launch, as any launch, and the page says why and what runs."""
    body = {"id": "teachers-lab", "title": "Lab", "options": {"service": "teachers-only"}}
    r = teacher.api("POST", "courses", json=body)
    assert r.status_code == 201, r.text
    bob = CoursesClient(make_user("trainee-bob"))
    assert 'id="start"' in bob.get("teachers-lab").text
    r = bob.post("teachers-lab/start", {})
    assert r.status_code == 400, r.text
    assert "There is no service 'teachers-only' in your catalog" in page_message(r.text, "refused")
    assert "My services" in r.text
    refused = servers_of(admin, "trainee-bob")["teachers-lab"]  # stopped, as the hub leaves it
    assert not refused["ready"] and not refused["pending"]
    assert ("trainee-bob", "failure") in teacher.record("teachers-lab")


# -- 3. an autostart course: ten trainees at once -----------------------------------------------
def test_ten_trainees_opening_an_autostart_link_at_once_all_land(
    hub, admin, make_user, teacher, material
):
    body = {
        "id": "warmup",
        "title": "Warm-up",
        "options": {**SMALL, "repository": material.url("stats")},
        "open": LESSON,
        "join": {"users": TEN},
        "autostart": True,
    }
    r = teacher.api("POST", "courses", json=body)
    assert r.status_code == 201, r.text
    clients = [make_user(name) for name in TEN]
    # warm-3 has a server of their own named like the course: never taken over
    own = clients[3]
    r = own.api("POST", "/users/warm-3/servers/warmup", json={"user_options": SMALL})
    assert r.status_code in (201, 202), r.text
    own.wait_ready("warm-3", "warmup")

    # someone not enrolled: 403, nothing starts
    bob = make_user("trainee-bob")
    assert bob.session.get(hub.url + PREFIX + "warmup", timeout=60).status_code == 403

    def visit(named: tuple[str, HubClient]) -> tuple[str, str]:
        name, client = named
        r = client.session.get(hub.url + PREFIX + "warmup", timeout=60)  # signs in to it too
        # autostart: the GET started it, and sent the trainee to the progress page
        steps = [h.headers.get("Location", "") for h in r.history]
        assert any("/hub/spawn-pending/" in step for step in steps), (steps, r.url)
        courses = CoursesClient(client)

        def landed():
            r = courses.get("warmup", allow_redirects=False)
            return (
                r.status_code == 302
                and "/lab/tree/" in r.headers["Location"]
                and r.headers["Location"]
            )

        return name, wait_for(landed, 180, f"{name} landing")

    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            landings = dict(pool.map(visit, zip(TEN, clients, strict=True)))
        for name in TEN:
            server = "warmup-course" if name == "warm-3" else "warmup"
            assert landings[name] == lab_url(name, server, f"courses/warmup/{LESSON}")
        record = teacher.record("warmup")
        for event in ("join", "start", "ready"):
            assert sorted(u for u, e in record if e == event) == sorted(TEN), event
        assert "warmup" not in servers_of(admin, "trainee-bob")
        mine = servers_of(admin, "warm-3")["warmup"]
        assert mine["ready"] and "repository_dir" not in mine["user_options"]
    finally:  # the session hub's other tests need the CPU and memory back
        running = [(n, s) for n in TEN for s in servers_of(admin, n) if s]
        with ThreadPoolExecutor(len(running) or 1) as pool:
            list(pool.map(lambda server: admin.stop_server(*server), running))


# -- Onyxia's launcher links (docs/courses.md) ---------------------------------------------------
def test_an_onyxia_link_with_its_host_swapped_lands_after_one_click(
    hub, admin, make_user, material, teacher
):
    """A real SSP Cloud link (tests/data/onyxia-links.yaml), its host swapped for the hub's,
    its repository for the test git server's (github.com is not reachable here)."""
    [entry] = [e for e in LINKS if "methodes_ensemblistes" in e["link"]]
    published = urlsplit(entry["link"])
    query = published.query.replace(
        quote(entry["options"]["repository"], safe=""), quote(material.url("stats"), safe="")
    )
    link = f"{hub.url}/services/courses{published.path}?{query}"
    olga = make_user("onyxia-olga")
    # a cross-site GET, autoLaunch=true: the Start page, nothing started
    r = olga.session.get(link, headers={"Sec-Fetch-Site": "cross-site"}, timeout=60)
    assert r.status_code == 200 and 'id="start"' in r.text, r.text[-500:]
    assert "autoLaunch" in page_message(r.text, "not-applied") or "autoLaunch" in r.text
    assert "rf-classification" not in servers_of(admin, "onyxia-olga")
    # a link onyxia-web could not read either: 400 naming the parameter, nothing started
    r = olga.session.get(link + "&resources.limits.memory=2Gi", timeout=60)
    assert r.status_code == 400 and "resources.limits.memory" in r.text
    assert olga.session.post(link, data={}, timeout=60).status_code == 403  # no XSRF

    with launch_chromium() as browser:
        page = signed_in(browser, hub, "onyxia-olga", olga.password)
        page.goto(link)
        assert "git.repository" in page.locator("#applied").inner_text()
        assert "version" in page.locator("#not-applied").inner_text()
        screenshot(page, "onyxia-link-start.png")
        page.locator("#start").click()  # the one click
        page.wait_for_url(re.compile(r"/user/onyxia-olga/rf-classification/lab"), timeout=90_000)
        page.context.close()
    options = servers_of(admin, "onyxia-olga")["rf-classification"]["user_options"]
    assert options["service"] == "jupyter-python"
    assert options["repository"] == material.url("stats") and options["branch"] == "main"
    admin.stop_server("onyxia-olga", "rf-classification")

    # an instructor turns it into a course in one click
    r = teacher.session.post(
        f"{hub.url}/services/courses{published.path}/course?{query}",
        data={"_xsrf": teacher.xsrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 303 and "/rf-classification/edit" in r.headers["Location"]
    course = teacher.api("GET", "courses/rf-classification").json()
    assert course["options"]["repository"] == material.url("stats")
    assert course["archived"], "a course made from a link opens once its instructor checked it"
    assert (
        CoursesClient(olga)
        .session.post(
            f"{hub.url}/services/courses{published.path}/course?{query}",
            data={"_xsrf": CoursesClient(olga).xsrf},
            timeout=60,
        )
        .status_code
        == 403
    )
