"""Init scripts in real servers of the session hub (docs/init-scripts.md).

The session hub allows personal scripts from `<script server>/allowed/` only, with 6
seconds for all of them (tests/conftest.py). Two spawns of one user:

- an allowed script, named with Onyxia's option names, runs as the user, with its
  arguments as argv, in the process that then becomes the server (so before it); its
  output is in the user's `~/.onyxia/init.log` and nowhere in the hub's or the server's
  logs; the progress page and the JupyterLab notification's endpoint say it ran;
- a script that hangs is ended at the time limit, the server starts and answers, and
  the progress page and the notification's endpoint say what happened;
- a URL outside the allowed sources is refused at launch with a message (nothing starts),
  and a link pre-filling one shows it on the form, starting nothing.
"""

from __future__ import annotations

import json
import pwd
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import INIT_TIMEOUT
from tests.helpers import procs

pytestmark = pytest.mark.root  # the script runs as the user's own account

USER = "init-user"
SCRIPT = """\
echo "args: $# [$1] [$2]"
id -un > "$HOME/init-ran-as"
echo "$PPID" > "$HOME/init-parent"
echo "init-output-MARKER"
sleep 2
"""


def progress_of(client, token: str, user: str, into: list[str]) -> threading.Thread:
    """Collect the progress page's messages of user's default server, until it is ready
    or failed (JupyterHub's event stream, which replays a start's events from the first)."""

    def follow():
        with requests.get(
            client.url(f"/hub/api/users/{user}/server/progress"),
            headers={"Authorization": f"token {token}"}, stream=True, timeout=120,
        ) as r:  # fmt: skip
            for line in r.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                into.append(event.get("message", ""))
                if event.get("ready") or event.get("failed"):
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def start(admin, token: str, options: dict, events: list[str]):
    """Start USER's server, following its progress page while it starts (the POST answers
    only once the server is up or slow: the progress is followed meanwhile)."""
    answers = []
    post = threading.Thread(
        target=lambda: answers.append(
            admin.api("POST", f"/users/{USER}/server", json={"user_options": options})
        )
    )
    post.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the spawn is pending
        model = admin.api("GET", f"/users/{USER}").json()
        if model.get("servers", {}).get("", {}).get("pending") == "spawn":
            break
        time.sleep(0.05)
    follower = progress_of(admin, token, USER, events)
    post.join(120)
    assert answers and answers[0].status_code in (201, 202), answers and answers[0].text
    admin.wait_ready(USER, timeout=120)
    follower.join(30)


def init_status(admin, token: str) -> dict | None:
    """What the JupyterLab notification reads (onyxia-git's status endpoint)."""
    r = requests.get(
        admin.url(f"/user/{USER}/onyxia-git/status"),
        headers={"Authorization": f"token {token}"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["init"]


@pytest.fixture(scope="module")
def user(hub, admin, make_user):
    """(their HubClient, an API token of theirs); their account exists from the first spawn"""
    client = make_user(USER)
    yield client, admin.new_token(USER)
    try:
        admin.stop_server(USER)
    except Exception:  # noqa: S110 - not started
        pass


def test_an_allowed_script_runs_as_the_user_before_the_server(hub, admin, user, init_scripts):
    _, token = user
    url = init_scripts.put("allowed/course.sh", SCRIPT)
    events: list[str] = []
    start(admin, token, {"service": "jupyter-python", "init.personalInit": url,
                  "init.personalInitArgs": "fr  fundamentals"}, events)  # fmt: skip
    assert "Running your personal init script" in events, events
    assert "Your init scripts ran." in events, events
    account = pwd.getpwnam(f"onyxia-{USER}")
    (server,) = procs.user_servers(USER)
    home = Path(server.environ["HOME"])
    assert (home / "init-ran-as").read_text().strip() == account.pw_name
    assert int((home / "init-parent").read_text()) == server.pid  # it became the server
    log = home / ".onyxia" / "init.log"
    assert log.stat().st_uid == account.pw_uid and log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "args: 2 [fr] [fundamentals]" in text and "init-output-MARKER" in text
    server_logs = "".join(p.read_text() for p in (hub.state_dir / "logs").rglob("*.log"))
    assert "init-output-MARKER" not in hub.output() + server_logs
    assert init_status(admin, token)["state"] == "done"
    admin.stop_server(USER)


def test_a_hanging_script_leaves_a_working_server_and_a_visible_failure(
    hub, admin, user, init_scripts
):
    _, token = user
    url = init_scripts.put("allowed/hang.sh", "echo started\nsleep 120\n")
    events: list[str] = []
    start(admin, token, {"service": "jupyter-python", "init_script": url}, events)
    said = (
        "Your personal init script did not complete: it was still running when the init "
        f"scripts' {INIT_TIMEOUT} s were up, and was ended. See ~/.onyxia/init.log. "
        "Your server starts all the same."
    )
    assert said in events, events
    status = init_status(admin, token)
    assert status["state"] == "failed" and "still running" in status["message"]
    r = requests.get(
        admin.url(f"/user/{USER}/api/status"),
        headers={"Authorization": f"token {token}"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 200  # the server works
    admin.stop_server(USER)


def test_a_script_from_elsewhere_is_refused_and_a_link_only_shows_it(
    hub, admin, user, init_scripts
):
    elsewhere = init_scripts.put("other/x.sh", "echo should never run\n")
    options = {"service": "jupyter-python", "init_script": elsewhere}
    r = admin.api("POST", f"/users/{USER}/servers/refused", json={"user_options": options})
    assert r.status_code == 403, r.text
    assert (
        "this datalab runs personal init scripts only from "
        f"{init_scripts.url}/allowed/" in r.json()["message"]
    )
    admin.api("DELETE", f"/users/{USER}/servers/refused", json={"remove": True})
    # a link pre-fills the form, where the script is shown; nothing starts
    allowed = init_scripts.put("allowed/shown.sh", "true\n")
    client, _ = user
    page = client.get(f"/hub/spawn?opt-init_script={allowed}&opt-init_args=a%20b")
    assert page.status_code == 200
    assert f'value="{allowed}"' in page.text and 'value="a b"' in page.text
    assert "Allowed sources" in page.text
    assert not procs.user_servers(USER)
    assert (
        "/other/x.sh" not in init_scripts.requests
        and "/allowed/shown.sh" not in init_scripts.requests
    )
