"""A refused launch brings the spawn form back with what the user sent, and nothing else.

JupyterHub renders the form again after a refused form POST or link (SpawnHandler calls
`get_options_form()` once more, the message at the top, the refusal's HTTP status). The
form then holds exactly what was typed or what the link gave, the refused field is marked
(`is-invalid`, `aria-invalid`, `aria-describedby` to its message beside it), and nothing
of the previous launch comes back; the next visit shows the usual form.

A launch's `repository_dir` (a course's, a link's) has no field: the form carries it
hidden with its repository and says where the clone goes; a refused one is not carried.

First on a spawner alone (the mixin over JupyterHub's `Spawner`, the shipped catalog and
tests/profiles), then through the session hub: forms, a link, and a launch refused at
start, none of which starts a server; last in chromium, where the refused field takes the
focus.
"""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.spawner import Spawner

from onyxia_hub.catalog.loader import default_catalog_path
from onyxia_hub.choices import ChoiceError
from onyxia_hub.providers.initscripts import InitScriptProvider
from onyxia_hub.spawners import base
from onyxia_hub.spawners.base import OnyxiaSpawnerMixin, PrefillOnly
from tests.helpers import procs
from tests.helpers.k8s_double import hub_user

CATALOG_PATHS = [str(default_catalog_path()), str(Path(__file__).parent / "profiles")]
EARLIER = {  # the last launch's options, as the hub stores them
    "service": "jupyter-python",
    "version": "2026.08",
    "cpu": "0.5",
    "memory": "1Gi",
    "repository": "https://git.example.org/earlier/project.git",
    "branch": "earlier-branch",
}


class FormSpawner(OnyxiaSpawnerMixin, Spawner):
    """The spawn form's part of the Onyxia spawners, without a place to run servers."""

    async def start(self):
        raise NotImplementedError

    async def stop(self, now=False):
        pass

    async def poll(self):
        return 0


def spawner(user="alice", server="", *, groups=("gpu-users",), options=None, **config):
    config.setdefault("catalog_paths", CATALOG_PATHS)
    if server:  # a named server's name comes from its database row
        config["orm_spawner"] = SimpleNamespace(name=server, server=None, user_options={})
    return FormSpawner(user=hub_user(user, groups), user_options=dict(options or {}), **config)


def render(spawner) -> str:
    return asyncio.run(spawner.get_options_form())


def post(spawner, fields: dict) -> ChoiceError:
    """The spawn form's POST, refused: the refusal (the form rendered next shows it)."""
    form = {key: [value] for key, value in fields.items()}
    with pytest.raises(ChoiceError) as refused:
        spawner.run_options_from_form(form)
    return refused.value


def form(service="jupyter-python", **fields) -> dict:
    """Form fields as the page sends them: the card's options suffixed with its service."""
    cards = {"version", "cpu", "memory", "gpus", "gpu_type"}
    return {"service": service} | {
        f"{name}--{service}" if name in cards else name: value for name, value in fields.items()
    }


def element(html: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    match = re.search(rf'<(input|select)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert match, f"no element {element_id}"
    return match.group(0)


def feedback(html: str, element_id: str) -> str | None:
    match = re.search(
        rf'<div class="invalid-feedback d-block" id="{re.escape(element_id)}-error">(.*?)</div>',
        html,
        re.S,
    )
    return unescape(match.group(1)) if match else None


def selected(html: str, select_id: str) -> list[str]:
    body = html[html.index(f'id="{select_id}"') :]
    body = body[: body.index("</select>")]
    return [unescape(v) for v in re.findall(r'<option value="([^"]*)"\s*selected', body)]


def text_value(html: str, input_id: str) -> str:
    return unescape(re.search(r'value="([^"]*)"', element(html, input_id)).group(1))


def assert_marked(html: str, element_id: str, message: str) -> None:
    tag = element(html, element_id)
    assert "is-invalid" in tag and 'aria-invalid="true"' in tag, tag
    assert f'aria-describedby="{element_id}-error"' in tag, tag
    assert feedback(html, element_id) == message


def assert_clean(html: str) -> None:
    assert "is-invalid" not in html and 'aria-invalid="true"' not in html
    assert "invalid-feedback" not in html


@pytest.fixture(autouse=True)
def nothing_kept():
    """Each test starts with nothing sent and kept (base._SENT is the hub's, per user)."""
    base._SENT.clear()
    yield
    base._SENT.clear()


# -- on one spawner ----------------------------------------------------------------------
def test_a_refused_form_shows_what_was_typed_and_nothing_of_the_last_launch():
    s = spawner(options=EARLIER)
    assert text_value(render(s), "repository") == EARLIER["repository"]  # the usual form
    error = post(
        s,
        form(
            version="2026.06",
            cpu="2",
            memory="4Gi",
            repository="https://git.example.org/typed/now.git",
            branch="a..b",
        ),
    )
    assert error.field == "branch" and error.status_code == 400
    html = render(s)
    assert text_value(html, "repository") == "https://git.example.org/typed/now.git"
    assert text_value(html, "branch") == "a..b"
    assert selected(html, "version--jupyter-python") == ["2026.06"]
    assert selected(html, "cpu--jupyter-python") == ["2"]
    assert selected(html, "memory--jupyter-python") == ["4Gi"]
    assert 'id="service-jupyter-python" value="jupyter-python"' in html
    assert re.search(r'id="service-jupyter-python"[^>]*checked', html)
    assert_marked(html, "branch", "branch: 'a..b' must not contain '..'.")
    for earlier in ("earlier/project", "earlier-branch"):
        assert earlier not in html
    assert "is-invalid" not in element(html, "repository")
    # shown once: the next visit shows the usual form
    html = render(s)
    assert text_value(html, "repository") == EARLIER["repository"]
    assert selected(html, "cpu--jupyter-python") == ["0.5"]
    assert_clean(html)


def test_empty_fields_stay_empty_rather_than_taking_the_last_launchs():
    s = spawner(options=EARLIER)
    post(s, form(cpu="lots"))
    html = render(s)
    assert text_value(html, "repository") == "" and text_value(html, "branch") == ""
    assert selected(html, "version--jupyter-python") == ["2026.08"]  # the service's default
    assert selected(html, "memory--jupyter-python") == ["2Gi"]  # not the last launch's 1Gi


GPU_CARD = {"service": "gpu-test"}
FIELDS = [
    # (id, form fields, the refused element's id, the values it shows as selected)
    ("service", form("no-such-service"), "service-jupyter-python", None),
    ("version", form(version="latest"), "version--jupyter-python", ["latest"]),
    ("cpu-text", form(cpu="lots"), "cpu--jupyter-python", ["lots"]),
    ("cpu-bound", form(cpu="64"), "cpu--jupyter-python", ["64"]),
    ("memory", form(memory="4GB"), "memory--jupyter-python", ["4GB"]),
    ("gpus", form("gpu-test", gpus="3"), "gpus--gpu-test", ["3"]),
    ("gpu_type", form("gpu-test", gpu_type="h100"), "gpu_type--gpu-test", ["h100"]),
    ("repository", form(repository="git@github.com:o/r.git"), "repository", None),
    ("branch", form(branch="--orphan"), "branch", None),
    ("init_script", form(init_script="ftp://scripts.example.org/x.sh"), "init_script", None),
    ("init_args", form(init_args="--verbose"), "init_args", None),
]


@pytest.mark.parametrize(
    "fields, element_id, shown", [c[1:] for c in FIELDS], ids=[c[0] for c in FIELDS]
)
def test_the_refused_field_is_marked_with_its_message_beside_it(fields, element_id, shown):
    s = spawner(options=EARLIER)
    error = post(s, fields)
    assert error.field and error.field in element_id
    html = render(s)
    if error.field == "service":
        assert feedback(html, "service") == error.message
        radio = element(html, element_id)
        assert "is-invalid" in radio and 'aria-invalid="true"' in radio
        assert "service-error" in radio and "checked" not in radio
    else:
        assert_marked(html, element_id, error.message)
    if shown:  # a value that is none of the options stays selected, as sent
        assert selected(html, element_id) == shown
    for name, value in fields.items():
        if name != "service" and "--" not in name:
            assert text_value(html, name) == value
    assert "earlier/project" not in html
    assert html.count('aria-invalid="true"') == (
        len(re.findall(r'type="radio"\s+name="service"', html)) if error.field == "service" else 1
    )


def test_typed_values_are_escaped():
    s = spawner()
    hostile = 'https://git.example.org/x"><script>alert(1)</script>'
    post(s, form(repository=hostile, branch='"><img src=x onerror=alert(2)>'))
    html = render(s)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert 'value="https://git.example.org/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert text_value(html, "repository") == hostile


def test_a_refused_link_keeps_its_other_options_and_marks_the_bad_one():
    s = spawner(options=EARLIER)
    query = {"service": ["jupyter-python"], "cpu": ["2"], "repository": ["bad"]}
    with pytest.raises(ChoiceError) as refused:
        s.options_from_query(query)
    assert not isinstance(refused.value, PrefillOnly)
    assert refused.value.field == "repository" and refused.value.status_code == 400
    html = render(s)
    assert 'id="prefill-notice"' in html
    assert selected(html, "cpu--jupyter-python") == ["2"]
    assert text_value(html, "repository") == "bad"
    assert_marked(html, "repository", refused.value.message)
    assert "earlier" not in html
    html = render(s)  # once
    assert (
        'id="prefill-notice"' not in html
        and text_value(html, "repository") == (EARLIER["repository"])
    )


def test_a_link_that_passes_prefills_the_form_once():
    s = spawner(options=EARLIER)
    with pytest.raises(PrefillOnly):
        s.options_from_query({"cpu": ["4"], "branch": ["main"]})
    html = render(s)
    assert 'id="prefill-notice"' in html
    assert selected(html, "cpu--jupyter-python") == ["4"]
    assert text_value(html, "branch") == "main" and text_value(html, "repository") == ""
    assert_clean(html)
    assert selected(render(s), "cpu--jupyter-python") == ["0.5"]


def test_a_named_servers_refusal_is_shown_by_the_default_spawner_jupyterhub_renders():
    """SpawnHandler.post renders `user.spawner.get_options_form()` (the default server's)
    after a named server's refused form: it shows what was typed, not the default's."""
    default = spawner(options=EARLIER)
    named = spawner(server="work", options={**EARLIER, "repository": "https://h/work.git"})
    post(named, form(cpu="1", repository="http://git.example.org/typed.git"))
    html = render(default)
    assert text_value(html, "repository") == "http://git.example.org/typed.git"
    assert selected(html, "cpu--jupyter-python") == ["1"]
    assert "earlier" not in html and "work.git" not in html
    assert text_value(render(named), "repository") == "https://h/work.git"  # used once


def test_an_older_refusal_waits_for_its_own_servers_form(monkeypatch):
    monkeypatch.setattr(base, "_FRESH", 0.0)  # the answer to the POST has gone
    default = spawner(options=EARLIER)
    named = spawner(server="work")
    post(named, form(branch="a..b"))
    assert text_value(render(default), "branch") == EARLIER["branch"]
    html = render(named)
    assert_marked(html, "branch", "branch: 'a..b' must not contain '..'.")


def test_a_launch_refused_at_start_from_the_spawn_page_is_shown_once():
    asked = {"service": "jupyter-python", "cpu": "2", "init_script": "https://s.example.org/x.sh"}
    s = spawner(options=asked, provider_classes=[])  # no InitScriptProvider: refused at start
    s.handler = object.__new__(SpawnHandler)  # as user.spawn sets it for the spawn page
    with pytest.raises(ChoiceError) as refused:
        asyncio.run(s.make_plan())
    assert refused.value.field == "init_script" and refused.value.status_code == 403
    html = render(s)
    assert_marked(html, "init_script", refused.value.message)
    assert selected(html, "cpu--jupyter-python") == ["2"]
    html = render(s)
    assert text_value(html, "init_script") == asked["init_script"]  # the stored options
    assert_clean(html)


def test_a_launch_refused_at_start_through_the_api_keeps_nothing_for_the_form():
    asked = {"service": "jupyter-python", "init_script": "https://elsewhere.example.org/x.sh"}
    s = spawner(options=asked, provider_classes=[InitScriptProvider])
    with pytest.raises(ChoiceError):
        asyncio.run(s.make_plan())  # handler: the API's (None here)
    assert base._SENT == {}
    assert_clean(render(s))


COURSE = {  # a course's launch (the courses service's), as the hub stores it
    "service": "jupyter-python",
    "repository": "https://git.example.org/course/intro.git",
    "repository_dir": "courses/intro",
}


def test_a_courses_directory_rides_along_with_its_repository_unseen_but_said():
    s = spawner("alice", "intro", options=COURSE)
    html = render(s)  # the course server's usual form: its last launch
    assert text_value(html, "repository") == COURSE["repository"]
    hidden = element(html, "repository_dir")
    assert 'type="hidden"' in hidden and 'name="repository_dir"' in hidden
    assert text_value(html, "repository_dir") == "courses/intro"
    assert "cloned into <code>courses/intro/</code> in your home" in html
    fields = {"repository": [COURSE["repository"]], "repository_dir": ["courses/intro"]}
    options = s.run_options_from_form({"service": ["jupyter-python"], **fields})
    assert options["repository_dir"] == "courses/intro"  # launched again from the form
    emptied = s.run_options_from_form({**fields, "repository": [""]})
    assert "repository" not in emptied and "repository_dir" not in emptied
    # a form without one shows none
    assert 'id="repository_dir"' not in render(spawner(options=EARLIER))


def test_a_link_may_place_its_repository_and_a_bad_place_is_not_carried():
    s = spawner()
    with pytest.raises(PrefillOnly):
        s.options_from_query({"repository": [COURSE["repository"]],
                              "repository_dir": ["courses/intro"]})  # fmt: skip
    html = render(s)
    assert 'id="prefill-notice"' in html and text_value(html, "repository_dir") == "courses/intro"
    with pytest.raises(ChoiceError) as refused:
        s.options_from_query({"repository": [COURSE["repository"]],
                              "repository_dir": ["../../etc"]})  # fmt: skip
    assert refused.value.field == "repository_dir"
    html = render(s)  # the message at the top (JupyterHub's); nothing to send it again
    assert 'id="repository_dir"' not in html and "../../etc" not in html
    assert text_value(html, "repository") == COURSE["repository"]


# -- through the session hub -------------------------------------------------------------
USER = "typist"
LATER_REFUSED = "https://scripts.example.org/not-allowed.sh"  # no allowed source's


def spawn_page(client, path: str, timeout: float = 10):
    """The spawn page, once the server is no longer pending (a refused start ends fast)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path, allow_redirects=False)
        if r.status_code != 302 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def top_message(html: str) -> str:
    match = re.search(r'class="spawn-error-msg[^"]*">(.*?)</p>', html, re.S)
    return unescape(match.group(1)).strip() if match else ""


@pytest.fixture(scope="module")
def typist(hub, make_user):
    return make_user(USER)


EARLIER_FIELDS = form(
    cpu="0.5",
    memory="1Gi",
    repository="https://git.example.org/earlier/project.git",
    init_script=LATER_REFUSED,
)


def earlier_launch(client):
    """A launch from the form that passes the form's checks and is refused at start (the
    init script's source is not allowed): the page answering it."""
    r = client.post_form("/hub/spawn", EARLIER_FIELDS, allow_redirects=False)
    if r.status_code == 302:  # refused after JupyterHub's first second: the pending page
        return spawn_page(client, "/hub/spawn")
    assert r.status_code == 403, top_message(r.text)
    assert "runs personal init scripts only from" in top_message(r.text)
    return r


def test_hub_a_launch_refused_at_start_shows_what_was_asked(hub, typist):
    r = earlier_launch(typist)
    for html in (r.text, spawn_page(typist, "/hub/spawn").text):  # and the next visit
        assert text_value(html, "init_script") == LATER_REFUSED
        assert text_value(html, "repository") == "https://git.example.org/earlier/project.git"
        assert selected(html, "cpu--jupyter-python") == ["0.5"]
        assert selected(html, "memory--jupyter-python") == ["1Gi"]
    assert not procs.user_servers(USER)


def test_hub_a_refused_form_shows_what_was_typed_not_the_earlier_launch(hub, typist):
    earlier_launch(typist)  # its options are stored: the usual form preselects them
    typed = form(
        cpu="2", memory="4Gi", repository="https://git.example.org/typed/now.git", branch="a..b"
    )
    r = typist.post_form("/hub/spawn", typed)
    assert r.status_code == 400
    assert top_message(r.text) == "Error: branch: 'a..b' must not contain '..'."
    html = r.text
    assert text_value(html, "repository") == "https://git.example.org/typed/now.git"
    assert text_value(html, "branch") == "a..b"
    assert selected(html, "cpu--jupyter-python") == ["2"]
    assert selected(html, "memory--jupyter-python") == ["4Gi"]
    assert_marked(html, "branch", "branch: 'a..b' must not contain '..'.")
    assert "earlier/project" not in html and LATER_REFUSED not in html
    html = spawn_page(typist, "/hub/spawn").text  # the next visit: the usual form
    assert text_value(html, "repository") == "https://git.example.org/earlier/project.git"
    assert "is-invalid" not in html


def test_hub_a_named_servers_refused_form_and_link(hub, typist):
    stored = {"service": "jupyter-python", "cpu": "4", "repository": "https://h.example.org/w.git"}
    r = typist.api("PUT", f"/users/{USER}/servers/work", json={"user_options": stored})
    assert r.status_code == 201, r.text  # options stored as a launch stores them
    assert (
        text_value(spawn_page(typist, f"/hub/spawn/{USER}/work").text, "repository")
        == (stored["repository"])
    )
    # the form: JupyterHub renders the default server's spawner, which shows what was typed
    r = typist.post_form(
        f"/hub/spawn/{USER}/work",
        form(cpu="1", repository="http://git.example.org/typed/plain.git", branch="dev"),
    )
    assert r.status_code == 400
    html = r.text
    assert text_value(html, "repository") == "http://git.example.org/typed/plain.git"
    assert text_value(html, "branch") == "dev"
    assert selected(html, "cpu--jupyter-python") == ["1"]
    assert_marked(html, "repository", top_message(html).removeprefix("Error: "))
    assert "h.example.org/w.git" not in html and "earlier/project" not in html
    # a link: one bad option, the others kept
    r = typist.get(
        f"/hub/spawn/{USER}/work?opt-service=jupyter-python&opt-cpu=2&opt-repository=bad"
    )
    assert r.status_code == 400
    html = r.text
    assert 'id="prefill-notice"' in html
    assert selected(html, "cpu--jupyter-python") == ["2"]
    assert text_value(html, "repository") == "bad"
    assert_marked(html, "repository", "repository: the URL must start with https://.")
    assert "h.example.org/w.git" not in html
    html = spawn_page(typist, f"/hub/spawn/{USER}/work").text
    assert text_value(html, "repository") == stored["repository"]
    assert "is-invalid" not in html and 'id="prefill-notice"' not in html
    typist.api("DELETE", f"/users/{USER}/servers/work", json={"remove": True})
    assert not procs.user_servers(USER)


# -- in a browser (one chromium, last in this module) ------------------------------------
@pytest.mark.browser
def test_browser_the_refused_field_takes_the_focus_with_its_message(hub, make_user):
    from tests.helpers.browser import launch_chromium, new_page

    user = make_user("typist-browser")
    with launch_chromium() as browser:
        page = new_page(browser, base_url=hub.url)
        page.set_default_timeout(30_000)
        page.goto("/hub/login")
        page.locator("#username_input").fill("typist-browser")
        page.locator("#password_input").fill(user.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/hub/spawn(\?|$)"))
        page.locator("#cpu--jupyter-python").select_option("2")
        page.locator("#repository").fill("http://git.example.org/typed.git")
        page.locator("#branch").fill("dev")
        page.locator("#launch").click()
        page.locator(".spawn-error-msg").wait_for()
        assert page.locator(".spawn-error-msg").get_attribute("role") == "alert"
        repository = page.locator("#repository")
        assert repository.evaluate("e => e === document.activeElement")
        assert repository.input_value() == "http://git.example.org/typed.git"
        assert page.locator("#branch").input_value() == "dev"
        assert page.locator("#cpu--jupyter-python").input_value() == "2"
        message = page.locator("#repository-error")
        assert message.is_visible()
        assert message.inner_text() == "repository: the URL must start with https://."
        page.context.close()
    assert not procs.user_servers("typist-browser")
