"""`onyxia-git-pull`: the server's repository cloned, or updated keeping the user's edits.

One entry point for every server: the Jupyter server extension of this package runs it
at start (in a background thread, see `server`), and an image's start script may run it
too. It reads `GIT_REPOSITORY` and `GIT_BRANCH` (Onyxia's names, set by the hub's git
provider) and clones into `<work dir>/<repository name>` (or `<work dir>/<target>`, when
the launch said where: `ONYXIA_GIT_TARGET`, `--target`, such as `courses/intro`, its
parents made), or updates a clone already there with nbgitpuller's `GitPuller`: the
user's changes are committed, then the remote branch is merged with `-Xours` (the user's
side wins a conflict), files deleted locally come back, and local files in the way of new
remote ones are renamed.

Before any git command runs, the URL, branch and target are checked (`checks`), and no
part of the clone's path under the work directory may be a symbolic link; a refusal says
why and runs nothing. Every git command then runs with:

- the hub's configuration for this server (`$ONYXIA_HUB_SECRETS_DIR/git/config`: the
  credential helper, the operator's settings such as a private CA) as git's system
  configuration, `GIT_CONFIG_SYSTEM`, whether the server extension set it already or an
  image's start script runs the pull before the server (`GIT_CONFIG_NOSYSTEM` is then
  dropped: that file is the pull's own);
- the URL after `--` (nbgitpuller's fix for CVE-2021-39160);
- `GIT_TERMINAL_PROMPT=0`, no askpass program: git never waits for a password;
- `GIT_ALLOW_PROTOCOL` (https, and ssh only where the operator allows it) and
  `protocol.file.allow=never`: no local, `ext::` or other transports, even via redirects;
- no submodules (`submodule.recurse`, `fetch.recurseSubmodules` off), no hooks
  (`core.hooksPath=/dev/null`), a stalled transfer stopped (under 1 kB/s for 60 s);
- a time limit for the whole pull (`--timeout`), after which its git processes are ended;
- a lock per target directory (`~/.cache/onyxia-git/locks`): a second pull of the same
  repository while one runs is skipped, with a message.

A directory of the repository's name (or the target) that is not a clone of that URL is
left alone; an empty one is cloned into.
Exit status: 0 done (or nothing to do), 1 failed, 2 refused, 3 skipped, 4 timed out.
With `--json`, each line of output is a JSON event the server extension reads.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .checks import (
    PROTOCOLS,
    branch_problem,
    directory_name,
    directory_problem,
    repository_problem,
)

SECRETS_DIR_ENV = "ONYXIA_HUB_SECRETS_DIR"
HUB_CONFIG = "git/config"  # in the server's secrets directory, written by the hub
DONE, FAILED, REFUSED, SKIPPED, TIMED_OUT = 0, 1, 2, 3, 4
STATES = {DONE: "done", FAILED: "failed", REFUSED: "refused", SKIPPED: "skipped"}
STATES[TIMED_OUT] = "failed"
DEFAULT_TIMEOUT = 300
MAX_REASON = 300
HARDENING = (
    ("protocol.file.allow", "never"),
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.askPass", ""),
    ("http.lowSpeedLimit", "1000"),
    ("http.lowSpeedTime", "60"),
)
_GIT_MESSAGE = re.compile(r"^(?:fatal|error|remote|ERROR):\s*(.*)$")
_REASONS = (
    ("terminal prompts disabled", "it asks for a password and none may be sent there"),
    ("Authentication failed", "it refused the credentials"),
    ("not found", "there is no such repository (or it is private)"),
    ("Could not resolve host", "its host name is unknown"),
    ("Failed to connect", "its server does not answer"),
    ("SSL certificate problem", "its server's certificate is not trusted here"),
    ("certificate verification failed", "its server's certificate is not trusted here"),
    ("not allowed", "its protocol is not allowed"),
)


class Reporter:
    """Lines for people (default) or JSON events for the server extension (--json)."""

    def __init__(self, as_json: bool, stream=None):
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def _write(self, event: dict, text: str) -> None:
        with self.lock:
            self.stream.write((json.dumps(event) if self.as_json else text) + "\n")
            self.stream.flush()

    def progress(self, message: str) -> None:
        self._write({"event": "progress", "message": message}, message)

    def git(self, line: str) -> None:
        self._write({"event": "git", "message": line}, "  " + line)

    def result(self, status: int, message: str) -> int:
        self._write({"event": "result", "state": STATES[status], "message": message}, message)
        return status


def hub_git_config(environ) -> str | None:
    """The configuration the hub wrote for this server, if it has one (its path)."""
    directory = environ.get(SECRETS_DIR_ENV)
    if not directory:
        return None
    path = os.path.join(directory, HUB_CONFIG)
    return path if os.path.isfile(path) else None


def hardened_environment(environ, protocols) -> dict[str, str]:
    """environ with every git setting above; the user's own GIT_CONFIG_* pairs dropped."""
    env = {k: v for k, v in environ.items() if not k.startswith("GIT_CONFIG_KEY_")}
    env = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG_VALUE_")}
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_PARAMETERS"):
        env.pop(name, None)
    hub_config = hub_git_config(environ)
    if hub_config:  # run before the server extension set it (an image's start script)
        if not env.get("GIT_CONFIG_SYSTEM"):
            env["GIT_CONFIG_SYSTEM"] = hub_config
        if env["GIT_CONFIG_SYSTEM"] == hub_config:
            env.pop("GIT_CONFIG_NOSYSTEM", None)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL=":".join(protocols), LANG="C")
    settings = list(HARDENING)
    if "ssh" in protocols:
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for i, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def reason(output: list[str]) -> str:
    """A short account of why git failed, from its last messages."""
    messages = [m.group(1) for m in map(_GIT_MESSAGE.match, output) if m and m.group(1)]
    said = messages[-1] if messages else (output[-1] if output else "")
    for words, meaning in _REASONS:
        if any(words in line for line in output):
            return f"{meaning} (git: {said})"[:MAX_REASON]
    return (f"git: {said}" if said else "git failed")[:MAX_REASON]


def _git(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )


def clone_dir(url: str, target: str | None = None) -> str | None:
    """Where the clone goes, relative to the work directory: target when given (checked
    by the caller), else the repository's directory name; None when there is none."""
    return target or directory_name(url)


def path_problem(work_dir: Path, relative: str) -> str | None:
    """Why nothing may be pulled into work_dir/relative, or None: a part of the path
    under work_dir is a symbolic link (it would send the clone elsewhere), or a file
    where a directory is needed."""
    parts = relative.split("/")
    path = work_dir
    for i, part in enumerate(parts):
        path = path / part
        shown = "/".join(parts[: i + 1])
        if path.is_symlink():
            return f"{shown} is a symbolic link"
        if i < len(parts) - 1 and path.exists() and not path.is_dir():
            return f"{shown} is not a directory"
    return None


def clone_problem(target: Path, url: str, env: dict) -> str | None:
    """Why target must not be updated from url (not a clone of it), or None."""
    if target.is_symlink() or not target.is_dir():
        return "is not a directory"
    top = _git("rev-parse", "--show-toplevel", cwd=target, env=env)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != target.resolve():
        return "is not a git clone"
    origin = _git("config", "--get", "remote.origin.url", cwd=target, env=env)
    if origin.stdout.strip() != url:
        return "is a clone of another repository"
    return None


def _lock(target: Path) -> int | None:
    """An exclusive lock on target's pulls (an open descriptor), or None if held."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = cache / "onyxia-git" / "locks"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:24]
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _puller_class():
    # late imports: checks and refusals need no Jupyter at all
    from nbgitpuller import GitPuller
    from nbgitpuller.pull import execute_cmd

    class Puller(GitPuller):
        """nbgitpuller's GitPuller without its round trips to the remote before the work.

        GitPuller asks the remote first: `ls-remote --symref HEAD` for the default branch,
        or two `ls-remote`s (heads, tags) to check a named branch, each an authenticated
        HTTPS exchange (a third of a clone's time against a nearby server). Here a clone
        without a branch lets git take the remote's default itself, an update follows the
        clone's `origin/HEAD` (as `git pull` does), and a named branch is found out by the
        clone or the merge; a failure is explained afterwards (`_why_no_branch`).
        """

        def branch_exists(self, branch):
            return None

        def resolve_default_branch(self):
            if not os.path.isdir(self.repo_dir):
                return None  # the clone takes the remote's default branch
            head = subprocess.run(
                ["git", "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"],
                cwd=self.repo_dir,
                capture_output=True,
                text=True,
                timeout=30,
            )
            name = head.stdout.strip()
            if head.returncode == 0 and name.startswith("origin/"):
                return name.removeprefix("origin/")
            return super().resolve_default_branch()  # a clone made without origin/HEAD

        def initialize_repo(self):
            if self.branch_name is not None:
                yield from super().initialize_repo()
                return
            args = ["git", "clone"]
            if self.depth and self.depth > 0:
                args += ["--depth", str(self.depth)]
            yield from execute_cmd([*args, "--", self.git_url, self.repo_dir])

    return Puller


def _why_no_branch(url, branch, output: list) -> bool:
    """After a failure: True when the remote answers but has no such branch (or tag), or,
    without a branch, no default one."""
    try:
        refs = subprocess.run(
            ["git", "ls-remote", "--heads", "--tags", "--", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        output.append("error: the repository did not answer")
        return False
    if refs.returncode != 0:
        output.extend(refs.stderr.splitlines())
        return False
    names = {line.split("\t", 1)[-1] for line in refs.stdout.splitlines()}
    if branch:
        return not names & {f"refs/heads/{branch}", f"refs/tags/{branch}"}
    return not names


def _run_puller(url, target, branch, depth, report, output: list, outcome: dict, stopping):
    from nbgitpuller.errors import BranchExistError, BranchResolveError

    outcome["ok"] = False
    try:
        puller = _puller_class()(url, str(target), branch=branch, depth=depth)
        for line in puller.pull():
            for part in line.rstrip("\n").splitlines():
                output.append(part)
                report.git(part)
        outcome["ok"] = True
    except (subprocess.CalledProcessError, BranchExistError, BranchResolveError) as e:
        for text in (getattr(e, "stderr", None), getattr(e, "stdout", None)):
            if isinstance(text, str):
                output.extend(text.splitlines())
        if not stopping.is_set():
            outcome["branch"] = _why_no_branch(url, branch, output)
    except Exception as e:  # a stale index.lock (nbgitpuller), an OSError...
        output.append(f"error: {e}")


def _end_our_git_processes() -> None:
    """End the git processes of this pull: our process group, ourselves spared."""
    if os.getpgrp() != os.getpid():
        return  # not a group leader: the group is someone else's
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGTERM)


def pull(
    url,
    branch,
    work_dir,
    *,
    target=None,
    protocols=("https",),
    timeout=DEFAULT_TIMEOUT,
    depth=0,
    report,
) -> int:
    """Clone or update url into work_dir (into work_dir/target when given); the exit status
    (see the module docstring)."""
    if not url:
        return report.result(DONE, "No repository to clone.")
    problem = repository_problem(url, protocols)
    if problem:  # the URL is not repeated: it may hold a password
        return report.result(REFUSED, f"Refused the repository: the URL {problem}.")
    if branch:
        problem = branch_problem(branch)
        if problem:
            return report.result(REFUSED, f"Refused the branch {branch[:60]!r}: it {problem}.")
    if target:
        problem = directory_problem(target)
        if problem:
            return report.result(
                REFUSED, f"Refused the target directory {target[:60]!r}: it {problem}."
            )
    name = clone_dir(url, target)
    if name is None:
        return report.result(REFUSED, "Refused the repository: its name is no directory name.")
    work_dir = Path(work_dir).expanduser()
    work_dir.mkdir(parents=True, exist_ok=True)
    problem = path_problem(work_dir, name)
    if problem:
        return report.result(
            REFUSED, f"Refused to pull into {name}/: {problem}; nothing was changed."
        )
    target = work_dir / name
    on_branch = f" (branch {branch})" if branch else ""

    lock = _lock(target)
    if lock is None:
        return report.result(
            SKIPPED, f"{name}/ is being cloned or updated by another start: skipped."
        )
    target.parent.mkdir(parents=True, exist_ok=True)  # a target's parents (courses/)
    env = hardened_environment(os.environ, protocols)
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # an empty directory of that name: clone into it
    updating = target.exists() or target.is_symlink()
    if updating:
        problem = clone_problem(target, url, env)
        if problem:
            return report.result(
                FAILED, f"{name}/ {problem} of {url}: it was left as it is, nothing was pulled."
            )
        report.progress(f"Updating {name}/ from {url}{on_branch}")
    else:
        report.progress(f"Cloning {url}{on_branch} into {name}/")

    os.environ.clear()
    os.environ.update(env)  # GitPuller's git commands inherit it
    output: list[str] = []
    outcome: dict = {}
    stopping = threading.Event()
    worker = threading.Thread(
        target=_run_puller,
        args=(url, target, branch or None, depth, report, output, outcome, stopping),
        daemon=True,
    )
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        stopping.set()
        _end_our_git_processes()
        worker.join(10)
        _end_our_git_processes()  # one started meanwhile
        return report.result(
            TIMED_OUT,
            f"Stopped {'updating' if updating else 'cloning'} {url} after {timeout:g} s: "
            f"the server works without it.",
        )
    if outcome.get("ok") and updating:
        kept = "; your changes are kept"
        return report.result(DONE, f"Updated {name}/ from {url}{on_branch}{kept}.")
    if outcome.get("ok"):
        return report.result(DONE, f"Cloned {url}{on_branch} into {name}/.")
    why = reason(output)
    if outcome.get("branch"):
        why = f"the branch {branch} does not exist there" if branch else "no default branch found"
    verb = "update" if updating else "clone"
    return report.result(FAILED, f"Could not {verb} {url}{on_branch}: {why}.")


def _protocols(value: str) -> tuple[str, ...]:
    wanted = [p.strip().lower() for p in re.split(r"[:,\s]+", value or "") if p.strip()]
    return tuple(p for p in PROTOCOLS if p in wanted) or ("https",)


def main(argv=None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="onyxia-git-pull",
        description="Clone the server's git repository, or update it keeping your changes.",
    )
    for flag, variable, default, kind, text in (
        ("--repository", "GIT_REPOSITORY", "", str, "https URL"),
        ("--branch", "GIT_BRANCH", "", str, "branch (none: the remote's default)"),
        ("--work-dir", "ONYXIA_GIT_WORK_DIR", os.getcwd(), str, "where the clone goes"),
        ("--target", "ONYXIA_GIT_TARGET", "", str, "the clone's path in the work dir"),
        ("--timeout", "ONYXIA_GIT_PULL_TIMEOUT", DEFAULT_TIMEOUT, float, "seconds"),
        ("--protocols", "ONYXIA_GIT_ALLOW_PROTOCOL", "https", str, "https, or https:ssh"),
        ("--depth", "ONYXIA_GIT_DEPTH", 0, int, "clone depth (0: the whole history)"),
    ):
        parser.add_argument(
            flag,
            type=kind,
            default=kind(env.get(variable) or default),
            help=f"{text} (default: ${variable}, else {default!r})",
        )
    parser.add_argument("--json", action="store_true", help="JSON events, one a line")
    args = parser.parse_args(argv)
    logging.getLogger().addHandler(logging.NullHandler())  # nbgitpuller's logs: we report
    try:
        os.setpgid(0, 0)  # our git processes in a group of our own, to end them at timeout
    except OSError:
        pass  # a session leader already leads its group
    report = Reporter(args.json)
    try:
        return pull(
            args.repository.strip(),
            args.branch.strip(),
            args.work_dir,
            target=args.target.strip() or None,
            protocols=_protocols(args.protocols),
            timeout=args.timeout,
            depth=max(args.depth, 0),
            report=report,
        )
    except OSError as e:  # the work directory or the lock could not be made
        return report.result(FAILED, f"Could not pull: {e.strerror} ({e.filename}).")


if __name__ == "__main__":
    sys.exit(main())
