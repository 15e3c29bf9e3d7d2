"""`OnyxiaLocalSpawner`: a launch plan realised as processes on this machine.

For each server it

- runs the catalog's checks and builds the plan (`OnyxiaSpawnerMixin.make_plan`);
- prepares the user's account and private home (`accounts`; one system account per
  user when the hub runs as root) and writes the plan's files into it (`homefiles`);
- gives it the plan's environment, with secrets passed in the environment only (never
  on a command line), `CUDA_VISIBLE_DEVICES` set to the GPUs it holds (empty: none);
- enforces its memory and CPU limits with a cgroup (v2 or v1) that the launcher
  (`enter.py`) joins before it drops root and executes the server, or else with the
  memory watchdog (`limits`); never `RLIMIT_AS`, which breaks the JVM;
- tags every process of the server (`processes`), so that stopping it, or finding it
  dead after a hub crash, ends kernels and background jobs too;
- writes the server's output to its own log file.

Each server runs in the software environment its catalog service names (`software`;
`environments/`, built by `scripts/setup`), never in the hub's own. A service whose
environment, programs, kernels, Python modules or GPUs are missing here is shown as
unavailable on the spawn page, with what is missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from subprocess import STDOUT, Popen

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import CaselessStrEnum, List, Unicode, default

from ...catalog.model import Service
from ...choices import ChoiceError
from ...embedded.state import default_state_dir
from ...quantities import human_memory
from ..base import OnyxiaSpawnerMixin
from . import availability, builders, init_watch, software
from .accounts import AccountError, Accounts, safe_name
from .gpus import GpuError, NoGpuFree
from .homefiles import UnsafeHomePath, write_home_file
from .limits import CgroupError, attach_server_cgroup, create_server_cgroup
from .machine import machine_for
from .processes import carries_tag, end_tagged, is_alive

_ACCOUNTS: dict[tuple, Accounts] = {}
_LOG_ROTATE_BYTES = 20 * 1024 * 1024


class OnyxiaLocalSpawner(OnyxiaSpawnerMixin, LocalProcessSpawner):
    """Runs catalog services as local processes (see the module docstring)."""

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

    memory_enforcement = CaselessStrEnum(
        ["auto", "cgroup2", "cgroup1", "watchdog"],
        default_value="auto",
        help="""
        How each server's memory (and CPU) limit is enforced.

        - `auto` (default): cgroup v2 when the hub's cgroup can delegate the memory
          controller, else cgroup v1 when its memory hierarchy is writable (as root on
          most machines), else the watchdog. The choice and its reason are logged at start.
        - `cgroup2` / `cgroup1`: that one, or the hub refuses to start servers (with the
          reason) when it cannot be used.
        - `watchdog`: sample each server's processes once a second and end the largest
          one over the limit. A safety net, not a jail; CPU is not limited in this mode.

        Never `RLIMIT_AS`: it limits virtual memory, which the JVM (pyspark) and CUDA
        reserve by the gigabyte without using, so they would not start.
        """,
    ).tag(config=True)

    gpu_devices = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="""
        GPU device ids this hub hands out, one server at a time per device.

        None (default): the GPUs `nvidia-smi` lists, by UUID. Each server asking for GPUs
        gets distinct devices (`CUDA_VISIBLE_DEVICES`); a launch asking for more than are
        free is refused with a message saying how many are. Servers without GPUs get an
        empty `CUDA_VISIBLE_DEVICES`.

            c.OnyxiaLocalSpawner.gpu_devices = ["GPU-5fb7...", "GPU-0a1c..."]
        """,
    ).tag(config=True)

    runtime_root = Unicode(
        help="""
        A memory-backed directory holding one private directory per running server,
        `<runtime_root>/<server id>` (mode 0700, owned by the user's account), given to the
        server as `JUPYTER_RUNTIME_DIR` and `XDG_RUNTIME_DIR`.

        Jupyter writes its server's token into its runtime files: kept here, they never
        reach the disk nor outlive the server (the directory is removed when it stops).
        Default: `/dev/shm/onyxia-hub` for root, `/dev/shm/onyxia-hub-<uid>` otherwise
        (the system's temporary directory when there is no /dev/shm).
        """,
    ).tag(config=True)

    @default("runtime_root")
    def _runtime_root_default(self):
        # shared directory: _make_runtime_dir checks ownership and refuses links
        shm = "/dev/shm"  # noqa: S108
        base = shm if os.path.isdir(shm) else tempfile.gettempdir()
        suffix = "" if os.geteuid() == 0 else f"-{os.geteuid()}"
        return os.path.join(base, f"onyxia-hub{suffix}")

    environments_dir = Unicode(
        help="""
        Directory holding the software environments user servers run in, one per
        directory of the repository's `environments/` (`<environments_dir>/python`,
        `.../pyspark`), each built by `scripts/setup` from its lock file.

        A catalog service names its environment in `local.software`; a service whose
        environment is not built here is shown as unavailable, with the command that
        builds it. Default: `.envs` beside the hub's own environment (`.venv`), where
        `scripts/setup` puts them.

            c.OnyxiaLocalSpawner.environments_dir = "/opt/onyxia-hub/envs"
        """,
    ).tag(config=True)

    @default("environments_dir")
    def _environments_dir_default(self):
        return software.default_environments_dir()

    server_id = Unicode("", help="Tag of the running server's processes (state).")

    @default("interrupt_timeout")
    def _interrupt_timeout_default(self):
        return 10

    @default("term_timeout")
    def _term_timeout_default(self):
        return 10

    @default("cmd")
    def _cmd_default(self):
        # JupyterHub's default, run from the service's environment (builders.server_argv)
        return ["jupyterhub-singleuser"]

    @default("default_url")
    def _default_url_default(self):
        return "/lab"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._account = None
        self._software: software.Software | None = None
        self._gpus: tuple[str, ...] = ()
        self._memory_limit = 0
        self._base_http_timeout: float | None = None  # http_timeout as configured
        self._init_watch: asyncio.Future | None = None

    # -- the machine -------------------------------------------------------------------
    @property
    def machine(self):
        return machine_for(
            homes_root=self.homes_root,
            enforcement=self.memory_enforcement,
            gpu_devices=self.gpu_devices,
            log=self.log,
        )

    @property
    def accounts(self) -> Accounts:
        isolate = self.isolation == "accounts" or (self.isolation == "auto" and os.geteuid() == 0)
        key = (self.homes_root, isolate, self.account_prefix)
        if key not in _ACCOUNTS:
            _ACCOUNTS[key] = Accounts(
                Path(self.homes_root), isolate=isolate, prefix=self.account_prefix
            )
        return _ACCOUNTS[key]

    def software(self, name: str) -> software.Software:
        """The environment `name`, as built here (SoftwareMissing if it is not)."""
        return software.find(self.environments_dir, name)

    @property
    def _gpu_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    def unavailable_reason(self, service: Service) -> str | None:
        requires = service.local.requires
        if service.local.command:
            requires = dataclasses.replace(
                requires, executables=(service.local.command[0], *requires.executables)
            )
        try:
            env = self.software(service.local.software)
        except software.SoftwareMissing as e:
            return _missing_software(service.local.software, e)
        gpus_needed = 0
        if service.gpu is not None and 0 not in service.gpu.counts:
            gpus_needed = min(service.gpu.counts)
        missing = availability.missing(
            requires,
            software=env,
            path=os.pathsep.join((*env.bin_dirs, *software.SYSTEM_PATH)),
            gpus_needed=gpus_needed,
            gpus_total=self.machine.gpus.total,
        )
        return availability.in_words(missing) if missing else None

    def user_env(self, env):
        account = self._account
        env["USER"] = env["LOGNAME"] = account.name
        env["HOME"] = str(account.home)
        env["SHELL"] = self.accounts.shell
        env.setdefault("LANG", "C.UTF-8")
        env["PATH"] = software.server_path(self._software, str(account.home))
        return env

    # -- state -------------------------------------------------------------------------
    def load_state(self, state):
        super().load_state(state)
        self.server_id = state.get("server_id", "")
        self._gpus = tuple(state.get("gpus", ()))
        self._memory_limit = int(state.get("memory_limit", 0) or 0)
        if not self.server_id:
            return
        self.machine.known_servers.add(self.server_id)
        self.restore_claim(state)
        try:
            self.machine.gpus.restore(self._gpu_key, self._gpus)
        except GpuError as e:
            self.log.error("%s: %s", self._log_name, e)
        if self.machine.watchdog is not None and self.pid and self._memory_limit:
            self.machine.watchdog.register(
                self.server_id, self.pid, self._memory_limit, self._memory_note
            )

    def get_state(self):
        state = super().get_state()
        if self.server_id:
            state.update(
                server_id=self.server_id, gpus=list(self._gpus), memory_limit=self._memory_limit
            )
            state.update(self.claim_state())
        return state

    def clear_state(self):
        super().clear_state()
        self.server_id = ""
        self._gpus = ()
        self._memory_limit = 0

    # -- start -------------------------------------------------------------------------
    async def start(self):
        if self.isolation == "accounts" and os.geteuid() != 0:
            raise RuntimeError(
                "isolation = 'accounts' needs the hub to run as root; "
                "set c.OnyxiaLocalSpawner.isolation = 'none' or run the hub as root"
            )
        plan = await self.make_plan()
        try:
            self._software = self.software(plan.software)
        except software.SoftwareMissing as e:
            self.release_plan()  # the quota claimed by make_plan
            raise ChoiceError(
                f"{plan.service_display_name} cannot start here: "
                f"{_missing_software(plan.software, e)}.",
                status_code=409,
                reason="unavailable",
            ) from None
        self.server_id = secrets.token_hex(12)
        try:
            return await self._realise(plan)
        except BaseException:
            await self._teardown()
            raise

    async def _realise(self, plan):
        """The I/O the builders describe (`builders`), in order; nothing decided here."""
        machine = self.machine
        await machine.sweep_once()
        machine.known_servers.add(self.server_id)

        self.emit(20, "Preparing your home directory")
        try:
            self._account = account = await self.accounts.ensure(self.user.name)
            runtime = self._make_runtime_dir(account)
            secrets_dir = builders.secrets_directory(runtime)
            files = builders.file_destinations(plan.files, str(account.home), secrets_dir)
            await self._write_files(files, account, secrets_dir)
        except (AccountError, UnsafeHomePath) as e:
            raise RuntimeError(f"Your home directory could not be prepared: {e}") from None

        if plan.gpu:
            self.emit(25, f"Reserving {plan.gpu.count} GPU(s)")
            try:
                self._gpus = machine.gpus.allocate(self._gpu_key, plan.gpu.count)
            except NoGpuFree as e:
                raise ChoiceError(str(e), status_code=409, reason="no-gpu") from None

        resources = plan.resources
        self.mem_limit = self.mem_guarantee = resources.memory_limit
        self.cpu_limit = self.cpu_guarantee = resources.cpu_limit
        self._memory_limit = resources.memory_limit
        self.default_url = plan.default_url
        if self.port == 0:
            self.port = random_port()
        env = builders.server_environment(
            self.get_env(),
            plan,
            server_id=self.server_id,
            runtime_dir=runtime,
            secrets_dir=secrets_dir,
            gpus=self._gpus,
        )
        argv = builders.server_argv(plan, self._software, self.cmd, self.get_args())
        argv = builders.with_init_runner(argv, plan, self._software)

        self.emit(35, f"Setting your limits ({builders.limits_summary(resources)})")
        procs_files = None
        if machine.backend.uses_cgroups:
            try:
                group = await asyncio.to_thread(
                    create_server_cgroup,
                    machine.backend,
                    self.server_id,
                    resources.memory_limit,
                    resources.cpu_limit,
                )
            except CgroupError as e:
                raise RuntimeError(f"Your resource limits could not be set: {e}") from None
            procs_files = group.procs_files
        uid, gid = (account.uid, account.gid) if account.isolated else (None, None)
        cmd = builders.launch_command(argv, procs_files, uid, gid)

        self.emit(50, f"Starting {plan.service_display_name}")
        options = builders.popen_options(env, str(account.home))
        log = self._open_log()
        if log is not None:
            options.update(stdout=log, stderr=STDOUT)
        try:
            self.proc = Popen(cmd, **options)
        except OSError as e:
            raise RuntimeError(f"Could not start {cmd[0]}: {e.strerror}") from None
        finally:
            if log is not None:
                log.close()
        self.pid = self.proc.pid
        if machine.watchdog is not None:
            machine.watchdog.register(
                self.server_id, self.pid, resources.memory_limit, self._memory_note
            )
        self._wait_for_init(plan, runtime)
        self.emit(70, f"Waiting for {plan.service_display_name} to answer")
        return (self.ip or "127.0.0.1", self.port)

    def _wait_for_init(self, plan, runtime: str) -> None:
        """With init scripts: wait that much longer for the server, and tell the progress
        page how they go (`init_watch.follow`)."""
        if self._base_http_timeout is None:
            self._base_http_timeout = self.http_timeout
        self.http_timeout = self._base_http_timeout + (plan.init_timeout or 0)
        if plan.init_timeout is None:
            return
        path = builders.init_status_file(runtime)
        self._init_watch = asyncio.ensure_future(
            init_watch.follow(path, self.pid, self.emit, plan.init_timeout + 10, self.log)
        )

    async def _write_files(self, files, account, secrets_dir: str) -> None:
        """Write each file where `builders.file_destinations` put it, as the account."""
        uid, gid = (account.uid, account.gid) if account.isolated else (None, None)
        if any(f.secret for f in files) and not os.path.isdir(secrets_dir):
            os.mkdir(secrets_dir, 0o700)  # memory, private to this server, gone at stop
            if uid is not None:
                os.chown(secrets_dir, uid, gid)
        for file in files:
            await asyncio.to_thread(
                write_home_file,
                file.base,
                file.path,
                file.content,
                mode=file.mode,
                uid=uid,
                gid=gid,
            )

    # -- poll and stop -----------------------------------------------------------------
    async def poll(self):
        if self.proc is not None:
            status = self.proc.poll()
            if status is not None:
                with self.proc:
                    pass
                self.proc = None
                await self._teardown()
                self.clear_state()
            return status
        if not self.pid:
            self.clear_state()
            return 0
        # resumed from stored state after a hub restart: the pid must still be ours
        if is_alive(self.pid) and carries_tag(self.pid, self.server_id) is not False:
            return None
        await self._teardown()
        self.clear_state()
        return 0

    async def stop(self, now=False):
        await super().stop(now=now)
        await self._teardown()

    async def _teardown(self):
        """End what is left of the server and give back what it held. Idempotent."""
        watch, self._init_watch = self._init_watch, None
        if watch is not None:
            watch.cancel()
        machine = self.machine
        server_id = self.server_id
        if server_id:
            if machine.watchdog is not None:
                machine.watchdog.unregister(server_id)
            ended = await end_tagged(server_id, grace=2.0)
            if ended:
                self.log.info("Ended %d leftover process(es) of %s", ended, self._log_name)
            if machine.backend.uses_cgroups:
                group = attach_server_cgroup(machine.backend, server_id)
                if group is not None:
                    if group.oom_kills():
                        self._memory_note(
                            f"The memory limit of {human_memory(group.memory_bytes or 0)} was "
                            "reached: the kernel ended a process of this server."
                        )
                    try:
                        await asyncio.to_thread(group.kill_all)
                        await asyncio.to_thread(group.remove)
                    except CgroupError as e:
                        self.log.warning("%s: %s", self._log_name, e)
            machine.known_servers.discard(server_id)
            shutil.rmtree(Path(self.runtime_root) / server_id, ignore_errors=True)
        machine.gpus.release(self._gpu_key)
        self._gpus = ()
        self.release_plan()

    def _make_runtime_dir(self, account) -> str:
        """`<runtime_root>/<server id>`, new, private to the account (see runtime_root)."""
        root = Path(self.runtime_root)
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        if root.is_symlink() or root.stat().st_uid != os.geteuid():
            raise RuntimeError(f"{root} is not a directory of the hub's own account")
        root.chmod(0o711)
        path = root / self.server_id
        path.mkdir(mode=0o700)  # fails if anything (a user's link...) is already there
        if account.isolated:
            os.chown(path, account.uid, account.gid)
        return str(path)

    def _memory_note(self, message: str) -> None:
        """Say it in the hub's log and at the end of the server's own log."""
        self.log.warning("%s: %s", self._log_name, message)
        log = self._open_log()
        if log is not None:
            with log:
                log.write(f"\n[onyxia-hub] {message}\n".encode())

    # -- logs --------------------------------------------------------------------------
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


def _missing_software(name: str, why: software.SoftwareMissing) -> str:
    """'needs the pyspark environment: it is not built here (scripts/setup --with pyspark
    builds it)', as the spawn page and a refused launch say it."""
    hint = f" (scripts/setup --with {name} builds it)" if why.rebuild else ""
    return f"needs the {name} environment: {why}{hint}"


__all__ = ["OnyxiaLocalSpawner"]
