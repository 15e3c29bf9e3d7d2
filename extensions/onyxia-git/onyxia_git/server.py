"""The Jupyter server extension: git set up at server start, the pull in the background.

When the server starts (before any kernel or terminal), it

- points `GIT_CONFIG_SYSTEM` at the configuration the hub wrote for this server
  (`$ONYXIA_HUB_SECRETS_DIR/git/config`: the operator's settings, identity, credential
  helper per host), so that git in terminals, notebooks and JupyterLab's own git tools
  uses it; system scope is git's lowest, so the user's ~/.gitconfig and repositories'
  settings still win;
- when `GIT_REPOSITORY` is set, runs `onyxia-git-pull` in a background thread (the
  server answers at once, a slow or failed clone never holds it up nor stops it), with
  every line of its output in the server's log;
- serves the pull's state at `<base_url>onyxia-git/status` (JSON), which this package's
  JupyterLab extension shows as a notification (in progress, then done or failed).

Servers started from inside the server (`jupyter lab` in a terminal) do not pull again:
the first one marks the environment it hands down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .pull import DEFAULT_TIMEOUT, hub_git_config

STARTED_ENV = "ONYXIA_GIT_PULL_STARTED"
GRACE = 30  # seconds after the pull's own time limit before the thread ends it


@dataclass
class PullStatus:
    """What the status endpoint answers; one per server process."""

    state: str = "none"  # none, running, done, failed, refused, skipped
    id: str = ""
    repository: str = ""
    message: str = ""
    started: float | None = None
    finished: float | None = None
    init: dict | None = None  # the init scripts' outcome for this server (init.py)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def update(self, **changes) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def as_json(self) -> dict:
        with self.lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lock"}


class StatusHandler(APIHandler):
    """GET: the pull's status; for whoever may read the server's files."""

    auth_resource = "contents"

    def initialize(self, status: PullStatus):
        self.status = status

    @web.authenticated
    @authorized
    def get(self):
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self.status.as_json()))


def use_hub_git_config(environ, log) -> str | None:
    """Point GIT_CONFIG_SYSTEM at the hub's configuration, if this server has one."""
    path = hub_git_config(environ)
    if path is None:
        return None
    environ["GIT_CONFIG_SYSTEM"] = path
    log.info("onyxia-git: git reads its system configuration from %s", path)
    return path


def init_outcome(environ, pid: int) -> dict | None:
    """What `onyxia-init` wrote for this very server (its pid is the server's, since it
    exec'd it), or None: no scripts, or a file left by an earlier start."""
    from .init import SCRIPTS, STATUS_ENV, TIMEOUT_ENV

    # a file of an earlier start may carry the same pid (a pod's), not the variables
    if not environ.get(TIMEOUT_ENV) or not any(environ.get(var) for _, var, _ in SCRIPTS):
        return None
    home = environ.get("HOME") or os.path.expanduser("~")
    path = Path(environ.get(STATUS_ENV) or Path(home) / ".onyxia" / "init-status.json")
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(outcome, dict) or outcome.get("pid") != pid:
        return None
    keep = ("state", "script", "message", "started", "finished")
    return {k: outcome.get(k) for k in keep} | {"id": f"{outcome.get('started')}"}


def run_pull(status: PullStatus, work_dir: str, log, environ=None, cwd=None) -> None:
    """Run onyxia-git-pull to its end, logging its output and keeping status."""
    environ = dict(os.environ if environ is None else environ)
    timeout = float(environ.get("ONYXIA_GIT_PULL_TIMEOUT") or DEFAULT_TIMEOUT)
    status.update(
        state="running",
        id=f"{time.time():.3f}",
        repository=environ.get("GIT_REPOSITORY", ""),
        message="Getting your git repository ready",
        started=time.time(),
    )
    # as the server runs: without the user's site-packages nor the home on sys.path (it
    # handles the git token; docs/environments.md)
    cmd = [sys.executable, "-s", "-P", "-m", "onyxia_git.pull", "--json", "--work-dir", work_dir]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd or work_dir,
            start_new_session=True,  # its own group: ended as one at the time limit
            text=True,
        )
    except OSError as e:
        log.error("onyxia-git: could not run the pull: %s", e)
        status.update(state="failed", message=f"Could not run the pull: {e}", finished=time.time())
        return
    guard = threading.Timer(timeout + GRACE, _end_group, args=(proc,))
    guard.daemon = True
    guard.start()
    final = None
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            event = {"event": "git", "message": line.rstrip()}
        message = str(event.get("message", ""))[:1000]
        if event.get("event") == "result":
            final = event
        elif event.get("event") == "progress":
            status.update(message=message)
        log.info("onyxia-git: %s", message)
    code = proc.wait()
    guard.cancel()
    if final is None:
        final = {"state": "failed", "message": f"The pull ended unexpectedly (status {code})."}
        log.warning("onyxia-git: %s", final["message"])
    status.update(
        state=final.get("state", "failed"), message=final.get("message", ""), finished=time.time()
    )


def _end_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def load(serverapp) -> None:
    """`_load_jupyter_server_extension`: see the module docstring."""
    log = serverapp.log
    use_hub_git_config(os.environ, log)
    status = PullStatus(init=init_outcome(os.environ, os.getpid()))
    if status.init and status.init.get("state") == "failed":
        which = status.init.get("script")
        which = which if which in ("region", "personal") else "an"
        log.warning("onyxia-init: the %s init script did not complete (~/.onyxia/init.log)", which)
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], "onyxia-git", "status")
    web_app.add_handlers(".*$", [(route, StatusHandler, {"status": status})])
    if not os.environ.get("GIT_REPOSITORY") or os.environ.get(STARTED_ENV):
        return
    os.environ[STARTED_ENV] = "1"  # servers started from this one do not pull again
    work_dir = os.environ.get("ONYXIA_GIT_WORK_DIR") or serverapp.root_dir
    thread = threading.Thread(
        target=run_pull,
        args=(status, work_dir, log),
        kwargs={"cwd": serverapp.root_dir},
        name="onyxia-git-pull",
        daemon=True,
    )
    thread.start()
