"""`onyxia-init`: a server's init scripts, run before it starts, as Onyxia's images run them.

    onyxia-init -- jupyterhub-singleuser --ip=...      (python -m onyxia_git.init -- ...)

Runs, as the account it is started as (the server's user, inside the server's limits),
the operator's region script (`REGION_INIT_SCRIPT`) and then the user's personal script
(`PERSONAL_INIT_SCRIPT`, with `PERSONAL_INIT_ARGS`), then replaces itself with the server
(`exec`), whatever happened: a failed script never keeps a server from starting.
Onyxia's images do `curl $PERSONAL_INIT_SCRIPT | bash -s -- $PERSONAL_INIT_ARGS`; here:

- each script is fetched from inside the server (never by the hub), over HTTPS with the
  server's CAs (or plain HTTP where the operator allowed such a URL), at most 1 MiB;
- it runs with `bash <file> <arg>...`: the arguments are `PERSONAL_INIT_ARGS` split at
  whitespace, as the unquoted shell variable would be, but never expanded by a shell;
- its standard output and error go to `~/.onyxia/init.log` (mode 0600; a script may
  print secrets: never into the server's log, which the hub keeps);
- all scripts together get `ONYXIA_INIT_TIMEOUT` seconds (default 120); a script still
  running then is ended with its whole process group;
- the outcome is written to `$ONYXIA_INIT_STATUS_FILE` (default `~/.onyxia/init-status.json`):
  `{"pid", "state": "running" | "done" | "failed", "script", "message", ...}`, which the
  hub's progress page (one machine) and this package's JupyterLab notification (through
  the server extension) show. `pid` is this process's, hence the server's after `exec`.

Standard library only; nothing of a script's output or URL goes to standard error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_TIMEOUT = 120.0
MAX_SCRIPT = 1024 * 1024
FETCH_TIMEOUT = 30.0
STATUS_ENV = "ONYXIA_INIT_STATUS_FILE"
TIMEOUT_ENV = "ONYXIA_INIT_TIMEOUT"
SCRIPTS = (  # (which, URL variable, arguments variable)
    ("region", "REGION_INIT_SCRIPT", None),
    ("personal", "PERSONAL_INIT_SCRIPT", "PERSONAL_INIT_ARGS"),
)
_PREFIX = "onyxia-init: "


class ScriptFailed(Exception):
    """One script could not be fetched, failed or ran out of time; the message says so."""


def _say(message: str) -> None:
    sys.stderr.write(_PREFIX + message + "\n")
    sys.stderr.flush()


def private_dir(home: Path) -> Path:
    directory = home / ".onyxia"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def write_status(path: Path, status: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: the hub allowed this URL, not where it leads."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise ScriptFailed(f"its address redirects elsewhere (HTTP {code}), which is not followed")


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, timeout: float) -> bytes:
    """The script at url, within timeout seconds in all (read in pieces against the
    deadline: a server sending a byte a second cannot hold the start up)."""
    if not url.startswith(("https://", "http://")):
        raise ScriptFailed("its URL is not http(s)")
    deadline = time.monotonic() + timeout
    body = b""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            while len(body) <= MAX_SCRIPT:
                if time.monotonic() > deadline:
                    raise ScriptFailed(f"its download took more than {timeout:.0f} s")
                piece = response.read1(65536)
                if not piece:
                    break
                body += piece
    except ScriptFailed:
        raise
    except urllib.error.HTTPError as e:
        raise ScriptFailed(f"it could not be downloaded (HTTP {e.code})") from None
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, str) else type(e.reason).__name__
        raise ScriptFailed(f"it could not be downloaded ({reason})") from None
    except Exception as e:  # noqa: BLE001 - any failure of any layer, never its text (a URL)
        raise ScriptFailed(f"it could not be downloaded ({type(e).__name__})") from None
    if len(body) > MAX_SCRIPT:
        raise ScriptFailed("it is larger than 1 MiB")
    return body


def run_script(body: bytes, args: list[str], log, cwd: str, timeout: float, budget: float) -> None:
    """Run body with bash, output into log, within timeout (what is left of the scripts'
    `budget`); ScriptFailed if it fails."""
    with tempfile.NamedTemporaryFile("wb", prefix="init-", suffix=".sh", delete=False) as f:
        f.write(body)
        path = f.name
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv, no shell
            ["/bin/bash", path, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # its group ends with it at the time limit
        )
        try:
            code = proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            _end_group(proc)
            raise ScriptFailed(
                f"it was still running when the init scripts' {budget:g} s were up, and was ended"
            ) from None
    finally:
        os.unlink(path)
    if code != 0:
        raise ScriptFailed(f"it failed (exit status {code})")


def _end_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_all(environ, home: Path, now=time.time) -> dict:
    """Run the scripts environ names; the final status (also written to the status file)."""
    wanted = [(which, environ[var], args) for which, var, args in SCRIPTS if environ.get(var)]
    directory = private_dir(home)
    status_path = Path(environ.get(STATUS_ENV) or directory / "init-status.json")
    log_path = directory / "init.log"
    try:
        budget = float(environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    except ValueError:
        budget = DEFAULT_TIMEOUT
    deadline = now() + budget
    status = {"pid": os.getpid(), "state": "running", "script": "", "message": "",
              "log": "~/.onyxia/init.log", "started": now()}  # fmt: skip
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab", buffering=0) as log:
        for which, url, args_var in wanted:
            status.update(script=which, message=f"Running your {which} init script")
            write_status(status_path, status)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n--- {stamp} {which} init script ---\n".encode())
            args = (environ.get(args_var) or "").split() if args_var else []
            try:
                left = deadline - now()
                if left <= 0:
                    raise ScriptFailed(f"the init scripts' {budget:g} s were spent before it")
                body = fetch(url, min(FETCH_TIMEOUT, left))
                run_script(body, args, log, str(home), deadline - now(), budget)
            except ScriptFailed as e:
                message = f"Your {which} init script did not complete: {e}. See ~/.onyxia/init.log."
                log.write(f"--- {which} init script: {e} ---\n".encode())
                status.update(state="failed", message=message, finished=now())
                write_status(status_path, status)
                _say(f"the {which} init script did not complete: {e}")
                return status
            log.write(f"--- {which} init script done ---\n".encode())
    status.update(state="done", message="Your init scripts ran.", finished=now())
    write_status(status_path, status)
    return status


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        _say("usage: onyxia-init -- program [args...]")
        sys.exit(2)
    environ = os.environ
    if any(environ.get(var) for _, var, _ in SCRIPTS):
        try:
            run_all(environ, Path(environ.get("HOME") or os.path.expanduser("~")))
        except OSError as e:  # the home cannot be written: the server starts all the same
            _say(f"the init scripts could not run: {e.strerror or type(e).__name__}")
        except Exception as e:  # noqa: BLE001 - never a server kept from starting
            _say(f"the init scripts could not run ({type(e).__name__})")
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the server, as given
    except OSError as e:
        _say(f"cannot run {argv[0]}: {e.strerror or e}")
        sys.exit(127)


if __name__ == "__main__":
    main()
