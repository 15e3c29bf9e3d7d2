"""The launcher of a user server: join its cgroups, become its account, execute it.

    python -I enter.py --cgroup-procs FILE [--cgroup-procs FILE ...] \\
        [--uid UID --gid GID] -- program args...

(`python -I -m onyxia_hub.spawners.local.enter ...` works too, but imports the spawner's
package and so JupyterHub, ~0.6 s per start: `command()` builds the by-path form.)

The hub starts it as root. It writes its own pid into every given `cgroup.procs` (memory
first), so the server and all it ever starts are inside the limits from the first
byte; then, with `--uid`, it drops root for good (no supplementary groups, real,
effective and saved ids all set, and a check that `setuid(0)` now fails); then it
replaces itself with the program (`execv`, after searching the PATH of its environment
as the shell does, as the new account).
The umask, working directory, session and environment are inherited from the caller.

Nothing secret belongs on this command line (any account can read it in /proc): the
environment carries secrets. That environment is seen by this Python while it is still
root, so it must be under the hub's control: `-I` makes Python ignore `PYTHON*`
variables and the user's site-packages, but the dynamic loader honours `LD_PRELOAD` and
`LD_LIBRARY_PATH`, which users must therefore never be able to set.

Errors are one line on stderr, never a traceback: exit 127 when the program does not
exist, 126 when it cannot be executed, 1 for anything else (bad arguments, a cgroup that
cannot be joined, privileges that cannot be dropped). It imports only `os` and `sys`.
"""

import os
import sys

_PREFIX = "onyxia-hub enter: "


def command(argv, procs_files=(), uid=None, gid=None, python=None):
    """The argument list that runs `argv` through this launcher (by path, with `-I`)."""
    cmd = [python or sys.executable, "-I", os.path.abspath(__file__)]
    for path in procs_files:
        cmd += ["--cgroup-procs", str(path)]
    if uid is not None:
        cmd += ["--uid", str(uid), "--gid", str(gid)]
    return [*cmd, "--", *argv]


def _fail(message, code=1):
    try:
        os.write(2, (_PREFIX + message.replace("\n", " ") + "\n").encode(errors="replace"))
    finally:
        os._exit(code)


def _parse(args):
    procs, uid, gid = [], None, None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if i + 1 >= len(args):
                _fail("no program given after --")
            return procs, uid, gid, args[i + 1 :]
        if arg not in ("--cgroup-procs", "--uid", "--gid") or i + 1 >= len(args):
            _fail(
                f"unexpected argument {arg!r}; usage: enter.py --cgroup-procs FILE ... "
                "[--uid UID --gid GID] -- program args..."
            )
        value = args[i + 1]
        if arg == "--cgroup-procs":
            if os.path.basename(value) != "cgroup.procs":
                _fail(f"--cgroup-procs must name a cgroup.procs file, not {value!r}")
            procs.append(value)
        else:
            if not value.isdigit():
                _fail(f"{arg} must be a number, not {value!r}")
            if arg == "--uid":
                uid = int(value)
            else:
                gid = int(value)
        i += 2
    _fail("missing -- before the program to run")


def _join(path, pid):
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"%d\n" % pid)
        finally:
            os.close(fd)
    except OSError as e:
        _fail(f"cannot enter the cgroup {os.path.dirname(path)}: {e.strerror}")


def _drop(uid, gid):
    if uid == 0 or gid == 0:
        _fail("refusing to switch to uid or gid 0: leave out --uid to keep the current account")
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        _fail(f"cannot switch to uid {uid} gid {gid}: {e.strerror}")
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        _fail(f"switching to uid {uid} gid {gid} did not take")
    try:
        os.setuid(0)
    except PermissionError:
        return
    _fail("privileges could not be dropped for good: setuid(0) still succeeds")


def _which(name):
    """The file `name` names, searching PATH as the shell does (as the new account: a
    directory it may not search is skipped, not an error), or None."""
    if "/" in name:
        return name if os.path.exists(name) else None
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.path.isfile(path):
            return path  # not executable: exec says "permission denied", exit 126
    return None


def main(args):
    """Join the cgroups, drop to --uid/--gid, exec the program; exits on any error."""
    procs, uid, gid, argv = _parse(args)
    if (uid is None) != (gid is None):
        _fail("--uid and --gid go together")
    pid = os.getpid()
    for path in procs:
        _join(path, pid)
    if uid is not None:
        _drop(uid, gid)
    program = _which(argv[0])
    if program is None:
        _fail(f"cannot run {argv[0]!r}: no such program", 127)
    try:
        os.execv(program, argv)  # noqa: S606 (no shell: the program and its arguments)
    except FileNotFoundError:
        _fail(f"cannot run {argv[0]!r}: no such program", 127)
    except PermissionError:
        _fail(f"cannot run {argv[0]!r}: permission denied", 126)
    except OSError as e:
        _fail(f"cannot run {argv[0]!r}: {e.strerror}", 126)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BaseException as e:  # never a traceback: one line and a status
        _fail(f"unexpected error: {e.__class__.__name__}: {e}")
