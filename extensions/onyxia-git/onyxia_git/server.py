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
  JupyterLab extension shows as a notification (in progress, then done or failed);
- when `ONYXIA_GIT_REPORT_URL` is set (`GitProvider.pull_report_url`: the courses
  service), POSTs the pull's state there when it starts and when it ends (`PullReport`),
  with the server's own token, from the pull's thread.

Servers started from inside the server (`jupyter lab` in a terminal) do not pull again:
the first one marks the environment it hands down.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .checks import directory_problem, report_url_problem
from .pull import DEFAULT_TIMEOUT, clone_dir, hub_git_config

STARTED_ENV = "ONYXIA_GIT_PULL_STARTED"
GRACE = 30  # seconds after the pull's own time limit before the thread ends it
REPORT_URL_ENV = "ONYXIA_GIT_REPORT_URL"
REPORT_TIMEOUT = 10  # seconds for each try of a report
REPORT_TRIES = 3
REPORT_BACKOFF = 0.5  # seconds before the second try, twice that before the third


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

    def copy(self) -> PullStatus:
        """A snapshot: later updates do not change it."""
        return PullStatus(**self.as_json())


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect answers the report, it is not followed: the token goes to the report URL
    and nowhere else (urllib would send the same headers to the new location)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises the 3xx as an HTTPError


def _opener() -> urllib.request.OpenerDirector:
    """No redirect followed, and no proxy from the server's environment (an image may set
    one; over http:// it would read the token): the report goes straight to the hub's
    network, as the server's own calls to the hub do."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def clone_location(environ, work_dir, root_dir) -> str:
    """Where the pull puts the clone, as `pull.clone_dir` computes it: relative to root_dir
    (the server's root directory) when it is inside, else absolute; "" when the pull
    refuses to clone anything (no repository, a URL or target it refuses)."""
    url = environ.get("GIT_REPOSITORY", "").strip()
    target = environ.get("ONYXIA_GIT_TARGET", "").strip() or None
    if not url or (target and directory_problem(target)):
        return ""
    relative = clone_dir(url, target)
    if relative is None:
        return ""
    root = Path(os.path.normpath(Path(root_dir).expanduser().absolute()))
    clone = Path(os.path.normpath(root / Path(work_dir).expanduser() / relative))
    try:
        return str(clone.relative_to(root))
    except ValueError:
        return str(clone)


@dataclass(frozen=True)
class PullReport:
    """The pull's status, POSTed to `ONYXIA_GIT_REPORT_URL` (the courses service) with the
    server's own token: JSON `{"server", "id", "state", "message", "repository_dir"}`,
    `Authorization: token <JUPYTERHUB_API_TOKEN>`. Standard library only; no proxy, no
    redirect followed; a connection error or a 5xx answer is tried again (`REPORT_TRIES`
    in all), then the failure is one line of the server's log, naming the URL's host and
    what happened, never the token."""

    url: str
    token: str = field(repr=False)
    server: str = ""
    repository_dir: str = ""

    @classmethod
    def from_environment(cls, environ, work_dir, root_dir, log) -> PullReport | None:
        """The report environ asks for, or None (none asked for, or it cannot be sent:
        logged)."""
        url = environ.get(REPORT_URL_ENV, "").strip()
        if not url:
            return None
        problem = report_url_problem(url)
        if problem:  # the URL is not repeated: it may hold a password
            log.warning("onyxia-git: %s %s: the pull's status is not reported", REPORT_URL_ENV,
                        problem)  # fmt: skip
            return None
        token = environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            log.warning("onyxia-git: no JUPYTERHUB_API_TOKEN: the pull's status is not reported")
            return None
        return cls(
            url,
            token,
            environ.get("JUPYTERHUB_SERVER_NAME", ""),
            clone_location(environ, work_dir, root_dir),
        )

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def body(self, status: PullStatus) -> dict:
        state = status.as_json()
        return {
            "server": self.server,
            "id": state["id"],
            "state": state["state"],
            "message": state["message"],
            "repository_dir": self.repository_dir,
        }

    def send(self, status: PullStatus, log, *, backoff: float = REPORT_BACKOFF) -> bool:
        """POST status as it is now; True when the receiver took it (2xx)."""
        data = json.dumps(self.body(status)).encode()
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        problem, opener = "", _opener()
        for attempt in range(REPORT_TRIES):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            # the URL is http(s), checked (from_environment)
            request = urllib.request.Request(self.url, data, headers, method="POST")  # noqa: S310
            try:
                with opener.open(request, timeout=REPORT_TIMEOUT):
                    return True
            except urllib.error.HTTPError as e:
                e.close()
                problem = f"HTTP {e.code}"
                if e.code < 500:  # refused, or a redirect not followed: no use trying again
                    break
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", None) or e
                problem = (str(reason) or type(reason).__name__)[:200]
        log.warning(
            "onyxia-git: the pull's status (%s) was not reported to %s: %s",
            status.state,
            self.host,
            problem,
        )
        return False


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
    """Run onyxia-git-pull to its end, logging its output and keeping status; report the
    status when it starts and when it ends, if environ asks for it (`PullReport`).

    cwd: the server's root directory (default work_dir), where the pull runs and to
    which the report's `repository_dir` is relative."""
    environ = dict(os.environ if environ is None else environ)
    status.update(
        state="running",
        id=f"{time.time():.3f}",
        repository=environ.get("GIT_REPOSITORY", ""),
        message="Getting your git repository ready",
        started=time.time(),
    )
    report = PullReport.from_environment(environ, work_dir, cwd or work_dir, log)
    started = None
    if report is not None:  # the pull does not wait for the first report
        started = threading.Thread(target=report.send, args=(status.copy(), log), daemon=True)
        started.start()
    try:
        _run_pull(status, work_dir, log, environ, cwd)
    except Exception as e:  # the status must not stay "running"
        log.error("onyxia-git: the pull's thread failed: %s", e)
        status.update(state="failed", message="The pull ended unexpectedly.", finished=time.time())
    finally:
        if report is not None:
            started.join()  # in order: the final state after "running"
            report.send(status, log)


def _run_pull(status: PullStatus, work_dir: str, log, environ: dict, cwd) -> None:
    timeout = float(environ.get("ONYXIA_GIT_PULL_TIMEOUT") or DEFAULT_TIMEOUT)
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
