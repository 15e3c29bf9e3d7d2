"""`OnyxiaLocalSpawner`: user servers as local processes, one account per user when root.

What it adds to JupyterHub's `LocalProcessSpawner`:

- accounts and homes are created on first launch (`accounts.Accounts`), never looked up
  from an existing `/etc/passwd` entry of the same name;
- the process is started with `Popen(user=, group=, extra_groups=[], umask=0o077)`
  instead of a `preexec_fn`, so no Python runs between fork and exec;
- each server's output goes to its own log file, not into the hub's;
- stopping a server (or finding it dead after a hub crash) ends every process it
  started, kernels and terminals included (`processes.end_tagged`);
- after a hub restart a server is recognised by its tag, so a recycled pid is never
  mistaken for it;
- progress events say what is happening in words a user understands.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path
from subprocess import DEVNULL, STDOUT, Popen

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import CaselessStrEnum, Unicode, default

from ...embedded.state import default_state_dir
from .accounts import AccountError, Accounts, safe_name
from .processes import TAG, carries_tag, end_tagged, is_alive

_ACCOUNTS: dict[tuple, Accounts] = {}
_LOG_ROTATE_BYTES = 20 * 1024 * 1024


class OnyxiaLocalSpawner(LocalProcessSpawner):
    """Runs each user server as a JupyterLab process on this machine (see module docstring)."""

    homes_root = Unicode(
        help="""
        Directory holding one private home per hub user, `<homes_root>/<username>`.

        Created if missing. When the hub runs as root with `isolation` on, each home is
        owned by the user's own account with mode 0700, and every directory above it must
        be traversable by other accounts (mode o+x): `onyxia-hub up` checks this.
        Default: `<state dir>/homes`, e.g. `/var/lib/onyxia-hub/homes` for root.

            c.OnyxiaLocalSpawner.homes_root = "/srv/homes"
        """,
    ).tag(config=True)

    @default("homes_root")
    def _homes_root_default(self):
        return str(default_state_dir() / "homes")

    isolation = CaselessStrEnum(
        ["auto", "accounts", "none"],
        default_value="auto",
        help="""
        Whether each hub user's servers run under their own system account.

        - `auto` (default): `accounts` when the hub runs as root, `none` otherwise.
        - `accounts`: create `<account_prefix><username>` on first launch (needs root).
        - `none`: run every server as the hub's own account. Users then share one
          identity: any user's code can read any other user's files. For a single user only.
        """,
    ).tag(config=True)

    account_prefix = Unicode(
        "onyxia-",
        help="""
        Prefix of the system accounts created for hub users (`onyxia-alice`).

        Accounts are created with this prefix and a marker in their comment field; an
        existing account of the same name without the marker is never used.
        """,
    ).tag(config=True)

    server_log_dir = Unicode(
        "",
        help="""
        Directory for the servers' output, one file per server
        (`<dir>/<username>/<servername or 'default'>.log`, readable by the hub's account only).

        Empty (the default) sends the servers' output to the hub's own standard output.
        """,
    ).tag(config=True)

    server_id = Unicode(
        "",
        help="Tag of the running server's processes (state; not configurable).",
    )

    @default("interrupt_timeout")
    def _interrupt_timeout_default(self):
        return 10

    @default("term_timeout")
    def _term_timeout_default(self):
        return 10

    @default("cmd")
    def _cmd_default(self):
        singleuser = Path(sys.prefix) / "bin" / "jupyterhub-singleuser"
        return [str(singleuser) if singleuser.exists() else "jupyterhub-singleuser"]

    @default("default_url")
    def _default_url_default(self):
        return "/lab"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._events: list[dict] = []
        self._account = None

    # -- accounts --------------------------------------------------------------------
    @property
    def accounts(self) -> Accounts:
        isolate = self.isolation == "accounts" or (self.isolation == "auto" and os.geteuid() == 0)
        key = (self.homes_root, isolate, self.account_prefix)
        if key not in _ACCOUNTS:
            _ACCOUNTS[key] = Accounts(
                Path(self.homes_root), isolate=isolate, prefix=self.account_prefix
            )
        return _ACCOUNTS[key]

    def user_env(self, env):
        account = self._account
        env["USER"] = env["LOGNAME"] = account.name
        env["HOME"] = str(account.home)
        env["SHELL"] = self.accounts.shell
        env.setdefault("LANG", "C.UTF-8")
        bin_dir = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"])
        return env

    # -- progress ----------------------------------------------------------------------
    def _event(self, progress: int, message: str) -> None:
        self._events.append({"progress": progress, "message": message})

    async def progress(self):
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            await asyncio.sleep(0.25)

    # -- lifecycle ---------------------------------------------------------------------
    def load_state(self, state):
        super().load_state(state)
        self.server_id = state.get("server_id", "")

    def get_state(self):
        state = super().get_state()
        if self.server_id:
            state["server_id"] = self.server_id
        return state

    def clear_state(self):
        super().clear_state()
        self.server_id = ""

    async def start(self):
        self._events = []
        self._event(10, "Preparing your account and home directory")
        if self.isolation == "accounts" and os.geteuid() != 0:
            raise RuntimeError(
                "isolation = 'accounts' needs the hub to run as root; "
                "set c.OnyxiaLocalSpawner.isolation = 'none' or run the hub as root"
            )
        try:
            self._account = await self.accounts.ensure(self.user.name)
        except AccountError as e:
            raise RuntimeError(f"Your account could not be prepared: {e}") from None

        if self.port == 0:
            self.port = random_port()
        self.server_id = secrets.token_hex(12)
        env = self.get_env()
        env[TAG] = self.server_id
        cmd = [*self.cmd, *self.get_args()]

        self._event(40, "Starting JupyterLab")
        kwargs = dict(
            env=env,
            cwd=str(self._account.home),
            start_new_session=True,
            stdin=DEVNULL,
            umask=0o077,
            close_fds=True,
        )
        if self._account.isolated:
            kwargs.update(user=self._account.uid, group=self._account.gid, extra_groups=[])
        log = self._open_log()
        if log is not None:
            kwargs.update(stdout=log, stderr=STDOUT)
        self.log.info(
            "Starting server %s for %s as %s", self._log_name, self.user.name, self._account.name
        )
        try:
            self.proc = Popen(cmd, **kwargs)
        except OSError as e:
            raise RuntimeError(f"Could not start {cmd[0]}: {e.strerror}") from None
        finally:
            if log is not None:
                log.close()
        self.pid = self.proc.pid
        self._event(70, "Waiting for JupyterLab to answer")
        return (self.ip or "127.0.0.1", self.port)

    async def poll(self):
        if self.proc is not None:
            status = self.proc.poll()
            if status is not None:
                with self.proc:
                    pass
                await self._end_leftovers()
                self.proc = None
                self.clear_state()
            return status
        if not self.pid:
            self.clear_state()
            return 0
        # resumed from stored state after a hub restart: the pid must still be ours
        if is_alive(self.pid) and carries_tag(self.pid, self.server_id) is not False:
            return None
        await self._end_leftovers()
        self.clear_state()
        return 0

    async def stop(self, now=False):
        server_id = self.server_id
        await super().stop(now=now)
        if server_id:
            ended = await end_tagged(server_id, grace=2.0)
            if ended:
                self.log.info("Ended %d leftover process(es) of %s", ended, self._log_name)

    async def _end_leftovers(self):
        """A dead server may leave kernels and terminals behind: end them."""
        if self.server_id:
            ended = await end_tagged(self.server_id, grace=2.0)
            if ended:
                self.log.info("Ended %d orphaned process(es) of %s", ended, self._log_name)

    # -- logs --------------------------------------------------------------------------
    @property
    def _log_name(self) -> str:
        return f"{self.user.name}/{self.name or 'default'}"

    def _open_log(self):
        if not self.server_log_dir:
            return None
        directory = Path(self.server_log_dir) / safe_name(self.user.name)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"{self.name or 'default'}.log"
        if path.exists() and path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_suffix(".log.1"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")
