"""Per-server memory and CPU limits for the local spawner: cgroups, or a memory watchdog.

A user server on one machine must not take the machine's memory, and the limit must
work for every program a user may run, the JVM under pyspark included. `RLIMIT_AS` is
never used: it caps *virtual* memory, which the JVM, CUDA, Go programs and many
allocators reserve by the gigabyte without touching, so they fail to start under it.
What is limited instead is memory really used, by one of three backends, chosen once at
hub start by `detect_backend`:

- `cgroup2`: the unified hierarchy, when the memory controller can be handed down to a
  child of the hub's own cgroup. The kernel enforces `memory.max` (the OOM killer ends
  the process of the group it picks, usually the largest), `memory.swap.max` is set to 0
  so swap cannot bypass it, and `cpu.max` caps CPU time.
- `cgroup1`: the legacy hierarchies (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/cpu`),
  when they are writable (the hub runs as root, or the directories were delegated to
  it). `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` when the kernel
  accounts swap) is enforced by the kernel, whose OOM killer then ends the *largest*
  process of the group: usually the kernel that allocated too much, sometimes the
  server itself. `cpu.cfs_quota_us` / `cpu.cfs_period_us` cap CPU time.
- `watchdog`: neither is usable. `MemoryWatchdog`, one asyncio task for every server,
  sums the resident memory of each server's process tree once a second and ends the
  largest process of a tree over its limit. It is a safety net, not a jail: a program
  can outgrow its limit between two samples, and a determined user can leave the tree
  (double fork with a cleared environment). CPU limits are *not* enforced in this mode.

Server cgroups are created under the hub's *own* cgroup, `<own>/<group>/<server id>`
(`group` is `onyxia-hub` unless `detect_backend` is given another name) in each
hierarchy used (v1: memory and cpu; v2: one directory), so that the limits of whatever
runs the hub (a container, a systemd unit) still bound every server, and two hubs in two
cgroups never see each other's servers. The launcher `enter.py` writes its
own pid into `ServerCgroup.procs_files` before it drops privileges and executes the
server, so nothing the server starts escapes the group.

Making cgroup v2 usable (what an operator must do). Under cgroup v2 a cgroup that holds
processes cannot hand a controller down to children ("no internal processes" rule),
and the hub lives in its own cgroup. The hub therefore needs a *delegated* parent in
which it runs as one leaf and its servers as siblings:

- under systemd >= 254: `Delegate=memory cpu` and `DelegateSubgroup=hub` in the hub's
  unit. The hub then runs in `<unit>/hub` and servers go to `<unit>/onyxia-hub/<id>`;
- in a container with its own cgroup namespace: move every process of the container's
  root cgroup into a leaf before the hub starts (`mkdir /sys/fs/cgroup/hub; echo $$ >
  /sys/fs/cgroup/hub/cgroup.procs`), as docker-in-docker images do;
- or run the hub in the root cgroup of the machine (exempt from the rule).

`detect_backend` recognises these cases (memory in `cgroup.subtree_control`, the
hierarchy root, or a parent marked `trusted.delegate`/`user.delegate` by systemd or seen
as the root of the hub's cgroup namespace) and says in `Backend.reason` why v2 was or was
not chosen. The cgroup v2 code paths are untested here: the machines this was written on
mount cgroup v1 for memory and cpu, and their cgroup v2 hierarchy only carries `hugetlb`,
so no delegated v2 memory controller exists to test against.

Caveats that hold for every backend:

- one hub per cgroup and group name: `remove_stale` ends the processes of the server
  cgroups under `<own>/<group>` that the hub does not know about;
- `ServerCgroup.memory_usage()` includes the page cache the server's files occupy,
  which the kernel reclaims before it kills anything;
- v1 `memory.failcnt` is not a reliable OOM signal: on kernel 6.18 it stayed 0 after an
  OOM kill; `memory.oom_control`'s `oom_kill` counter is used when present.

The cgroup functions are synchronous and short (a few file writes); the blocking ones
(`ServerCgroup.kill_all`, `ServerCgroup.remove`, `remove_stale`) wait at most their
`timeout`, and the hub calls them through `asyncio.to_thread`. `MemoryWatchdog` is an
asyncio task of the hub's loop.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Backend",
    "CgroupError",
    "LimitsUnavailable",
    "ServerCgroup",
    "attach_server_cgroup",
    "create_server_cgroup",
    "detect_backend",
    "remove_parents",
    "remove_stale",
]

GROUP = "onyxia-hub"
"""Name of the directory, under the hub's own cgroup, that holds one cgroup per server."""

_SERVER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CPU_PERIOD_US = 100_000
_MIN_CPU_QUOTA_US = 1_000  # the kernel refuses less

log = logging.getLogger(__name__)


class LimitsUnavailable(Exception):
    """The backend asked for (`detect_backend(prefer=...)`) cannot be used; says why."""


class CgroupError(Exception):
    """A server cgroup could not be created, entered, emptied or removed; says why."""


# -- where the cgroup hierarchies are ---------------------------------------------------


@dataclass(frozen=True)
class _Mount:
    root: str  # the path inside the hierarchy that is mounted here ("/" usually)
    mountpoint: Path
    fstype: str
    options: frozenset[str]  # super options: the v1 controllers, e.g. {"rw", "memory"}


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _mounts(mountinfo: str = "/proc/self/mountinfo") -> list[_Mount]:
    found = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3 or not tail[0].startswith("cgroup"):
                continue
            found.append(
                _Mount(
                    root=_unescape(fields[3]),
                    mountpoint=Path(_unescape(fields[4])),
                    fstype=tail[0],
                    options=frozenset(tail[2].split(",")),
                )
            )
    return found


def _own_paths(cgroup_file: str = "/proc/self/cgroup") -> dict[str, str]:
    """controller -> path of this process's cgroup; cgroup v2's path is under key ""."""
    paths: dict[str, str] = {}
    with open(cgroup_file) as f:
        for line in f:
            hierarchy_id, controllers, path = line.rstrip("\n").split(":", 2)
            if hierarchy_id == "0" and controllers == "":
                paths[""] = path
            else:
                for controller in controllers.split(","):
                    paths[controller] = path
    return paths


def _locate(mount: _Mount, path: str) -> Path | None:
    """The directory of cgroup `path` (as /proc/self/cgroup names it) under `mount`."""
    root = mount.root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    candidate = mount.mountpoint / path.lstrip("/")
    return candidate if candidate.is_dir() else None


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def _write(path: Path, value: str | int) -> None:
    """Write one value to a cgroup control file (no O_CREAT: the file must exist)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _keyed(path: Path) -> dict[str, int]:
    """`key value` lines (memory.events, memory.oom_control, cpu.stat) as a dict."""
    values = {}
    try:
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                values[key] = int(value)
    except OSError:
        pass
    return values


# -- the backend ------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """How limits are enforced on this machine, and why (see the module docstring).

    `kind` is "cgroup2", "cgroup1" or "watchdog"; `reason` is a sentence for the hub's
    log and `onyxia-hub up` saying which mechanism was picked and why the others were not.
    `memory_parent` is the directory under which server cgroups are created (v2: the
    only one), `cpu_parent` the v1 cpu hierarchy's one (v2: same as memory_parent), or
    None when CPU limits cannot be enforced, `cpu_reason` then saying why.
    """

    kind: str
    reason: str
    memory_parent: Path | None = None
    cpu_parent: Path | None = None
    cpu_reason: str = ""

    @property
    def enforces_cpu(self) -> bool:
        """Whether `create_server_cgroup` can cap CPU time (never in watchdog mode)."""
        return self.cpu_parent is not None

    @property
    def uses_cgroups(self) -> bool:
        """True for cgroup2 and cgroup1: `create_server_cgroup` may be called."""
        return self.kind in ("cgroup2", "cgroup1")


def detect_backend(prefer: str = "auto", group: str = GROUP) -> Backend:
    """The limits backend to use: `prefer` ("auto", "cgroup2", "cgroup1", "watchdog").

    "auto" tries cgroup v2 (only when the memory controller can be given to a child of
    the hub's cgroup, see the module docstring), then cgroup v1 (a writable memory
    hierarchy), then falls back to the watchdog; the returned `reason` says why each
    was or was not taken. Any other value forces that backend and raises
    `LimitsUnavailable` with the reason when it cannot be used.

    `group` names the directory under the hub's own cgroup that holds its servers'
    groups (default `onyxia-hub`). Hubs sharing one cgroup must each have their own
    (e.g. a hash of their state directory), or each would take the other's servers for
    leftovers in `remove_stale`: the test suite, whose hubs all run in pytest's cgroup,
    is such a case.

    Side effect: for a cgroup backend, the parent directories `<own>/<group>` are
    created (this is how writability is checked) and, for v2, the memory and cpu
    controllers are enabled in their `cgroup.subtree_control`. `remove_parents` undoes it.
    """
    if not _SERVER_ID.fullmatch(group):
        raise ValueError(f"invalid cgroup name {group!r}: 1-64 of A-Z a-z 0-9 _ -")
    if prefer not in ("auto", "cgroup2", "cgroup1", "watchdog"):
        raise ValueError(
            f"unknown limits backend {prefer!r}: use auto, cgroup2, cgroup1 or watchdog"
        )
    if prefer == "watchdog":
        return Backend(
            "watchdog",
            "the memory watchdog was asked for: memory is sampled once a second and the "
            "largest process of a server over its limit is ended; CPU limits are not enforced",
            cpu_reason="CPU limits need cgroups; the memory watchdog was asked for",
        )
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as e:
        mounts, own = [], {}
        unreadable = f"cannot read /proc/self/mountinfo or /proc/self/cgroup ({e.strerror})"
    else:
        unreadable = ""
    reasons = []
    for kind, probe in (("cgroup2", _probe_v2), ("cgroup1", _probe_v1)):
        if prefer not in ("auto", kind):
            continue
        backend, why = probe(mounts, own, group) if not unreadable else (None, unreadable)
        if backend is not None:
            return backend
        if prefer == kind:
            raise LimitsUnavailable(f"{kind} limits were asked for but cannot be used: {why}")
        reasons.append(why)
    return Backend(
        "watchdog",
        f"no usable cgroup memory controller ({'; '.join(reasons)}): memory limits are "
        "enforced by a watchdog that samples each server's processes once a second and "
        "ends the largest one over the limit; CPU limits are not enforced",
        cpu_reason="CPU limits need cgroups, and none is usable here",
    )


def _probe_v1(
    mounts: list[_Mount], own: dict[str, str], group: str = GROUP
) -> tuple[Backend | None, str]:
    memory = _v1_parent(mounts, own, "memory", "memory.limit_in_bytes", group)
    if isinstance(memory, str):
        return None, memory
    mount, parent = memory
    where = f"cgroup v1 memory controller at {mount.mountpoint} (writable"
    if not (parent.parent / "memory.memsw.limit_in_bytes").exists():
        where += "; swap is not limited: the kernel does not account it (swapaccount=0)"
    reason = f"{where}; servers go under {parent})"
    cpu = _v1_parent(mounts, own, "cpu", "cpu.cfs_quota_us", group)
    if isinstance(cpu, str):
        return Backend("cgroup1", reason, parent, None, f"no CPU limits: {cpu}"), reason
    cpu_mount, cpu_parent = cpu
    cpu_reason = f"cgroup v1 cpu controller at {cpu_mount.mountpoint} (cpu.cfs_quota_us)"
    return Backend("cgroup1", reason, parent, cpu_parent, cpu_reason), reason


def _v1_parent(
    mounts: list[_Mount], own: dict[str, str], controller: str, control_file: str, group: str
) -> tuple[_Mount, Path] | str:
    """(mount, <own>/<group> created) for a v1 controller, or why it cannot be used."""
    candidates = [m for m in mounts if m.fstype == "cgroup" and controller in m.options]
    if not candidates:
        return f"no cgroup v1 {controller} hierarchy is mounted"
    if controller not in own:
        return f"this process is in no cgroup v1 {controller} hierarchy"
    for mount in candidates:
        own_dir = _locate(mount, own[controller])
        if own_dir is None:
            continue
        if not (own_dir / control_file).exists():
            return (
                f"the cgroup v1 {controller} controller at {mount.mountpoint} has no {control_file}"
            )
        parent = own_dir / group
        try:
            parent.mkdir(exist_ok=True)
        except OSError as e:
            return (
                f"the cgroup v1 {controller} controller at {mount.mountpoint} is not writable "
                f"({own_dir}: {e.strerror})"
            )
        return mount, parent
    return (
        f"the hub's cgroup v1 {controller} cgroup {own[controller]} is not visible under "
        + ", ".join(str(m.mountpoint) for m in candidates)
    )


def _delegated(directory: Path) -> bool:
    for name in ("trusted.delegate", "user.delegate"):
        try:
            if os.getxattr(directory, name).strip(b"\0") == b"1":
                return True
        except OSError:
            pass
    return False


def _controllers(directory: Path, name: str = "cgroup.controllers") -> set[str]:
    try:
        return set(_read(directory / name).split())
    except OSError:
        return set()


def _probe_v2(
    mounts: list[_Mount], own: dict[str, str], group: str = GROUP
) -> tuple[Backend | None, str]:
    v2 = [m for m in mounts if m.fstype == "cgroup2"]
    if not v2:
        return None, "no cgroup v2 hierarchy is mounted"
    if "" not in own:
        return None, "this process is in no cgroup v2 cgroup"
    for mount in v2:
        own_dir = _locate(mount, own[""])
        if own_dir is not None:
            break
    else:
        return None, f"the hub's cgroup v2 cgroup {own['']} is not visible under {v2[0].mountpoint}"
    available = _controllers(own_dir)
    v1_memory = [m for m in mounts if m.fstype == "cgroup" and "memory" in m.options]
    if "memory" not in available and v1_memory:
        return None, (
            f"cgroup v2 at {mount.mountpoint} has no memory controller: it is bound to the "
            f"cgroup v1 hierarchy at {v1_memory[0].mountpoint} (a hybrid setup)"
        )
    if "memory" not in available:
        return None, (
            f"cgroup v2 at {mount.mountpoint}: the memory controller is not delegated to the "
            f"hub's cgroup {own_dir} (available there: {' '.join(sorted(available)) or 'none'}); "
            "an operator must delegate it, e.g. systemd Delegate=memory cpu with "
            "DelegateSubgroup=hub"
        )
    is_root = own_dir == mount.mountpoint
    if "memory" in _controllers(own_dir, "cgroup.subtree_control") or is_root:
        base = own_dir
    else:
        parent = own_dir.parent
        parent_ok = (
            parent != own_dir
            and (parent == mount.mountpoint or _delegated(parent))
            and "memory" in _controllers(parent)
            and not _read_or_empty(parent / "cgroup.procs").strip()
        )
        if not parent_ok:
            return None, (
                f"cgroup v2 at {mount.mountpoint}: the hub's cgroup {own_dir} has the memory "
                "controller but holds the hub's processes, so it cannot give the controller "
                "to children (cgroup v2's no-internal-processes rule), and its parent is not "
                "a delegated cgroup the hub may use; run the hub in a leaf of a delegated "
                "cgroup (systemd >= 254: Delegate=memory cpu and DelegateSubgroup=hub)"
            )
        base = parent
    try:
        _enable(base, available)
        parent_dir = base / group
        parent_dir.mkdir(exist_ok=True)
        _enable(parent_dir, _controllers(parent_dir))
    except OSError as e:
        return None, (
            f"cgroup v2 at {mount.mountpoint}: cannot enable the memory controller for "
            f"children of {base} ({e.strerror})"
        )
    reason = (
        f"cgroup v2 memory controller at {mount.mountpoint} (delegated and writable; "
        f"servers go under {parent_dir})"
    )
    if "cpu" in _controllers(parent_dir, "cgroup.subtree_control"):
        return Backend("cgroup2", reason, parent_dir, parent_dir, "cgroup v2 cpu.max"), reason
    return Backend(
        "cgroup2",
        reason,
        parent_dir,
        None,
        "no CPU limits: the cgroup v2 cpu controller is not delegated",
    ), reason


def _read_or_empty(path: Path) -> str:
    try:
        return _read(path)
    except OSError:
        return ""


def _enable(directory: Path, available: set[str]) -> None:
    """Enable memory (and cpu when available) for the children of `directory` (v2)."""
    enabled = _controllers(directory, "cgroup.subtree_control")
    wanted = [c for c in ("memory", "cpu") if c in available and c not in enabled]
    if wanted:
        _write(directory / "cgroup.subtree_control", " ".join("+" + c for c in wanted))


# -- one server's cgroup ----------------------------------------------------------------


@dataclass(frozen=True)
class ServerCgroup:
    """The cgroup(s) of one user server: `memory_dir` and, for v1, `cpu_dir`.

    `procs_files` are what the launcher (`enter.py --cgroup-procs`) writes its pid into.
    Methods read the kernel's own accounting; they never raise for a group already gone
    (they report 0 / nothing) except `kill_all` and `remove` when the kernel refuses.
    """

    kind: str
    server_id: str
    memory_dir: Path
    cpu_dir: Path | None = None
    memory_bytes: int | None = None
    cpu_cores: float | None = None

    @property
    def dirs(self) -> tuple[Path, ...]:
        """Every directory of this server, memory first (v2: a single one)."""
        extra = (self.cpu_dir,) if self.cpu_dir and self.cpu_dir != self.memory_dir else ()
        return (self.memory_dir, *extra)

    @property
    def procs_files(self) -> tuple[str, ...]:
        """The `cgroup.procs` files a process must join, in order (memory first)."""
        return tuple(str(d / "cgroup.procs") for d in self.dirs)

    def pids(self) -> list[int]:
        """Live processes in the group (zombies excluded by the kernel), sorted."""
        found: set[int] = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in _read(d / "cgroup.procs").split())
            except OSError:
                pass
        return sorted(found)

    def memory_usage(self) -> int:
        """Bytes charged to the group now, page cache included (0 when it is gone)."""
        name = "memory.current" if self.kind == "cgroup2" else "memory.usage_in_bytes"
        try:
            return int(_read(self.memory_dir / name))
        except (OSError, ValueError):
            return 0

    def oom_kills(self) -> int:
        """How many processes the kernel ended because the group hit its memory limit.

        v2: `oom_kill` of memory.events. v1: `oom_kill` of memory.oom_control (kernel >=
        4.13); on older kernels memory.failcnt, which counts hits of the limit rather
        than kills (and which stayed 0 after a kill on kernel 6.18 with swap accounting).
        """
        if self.kind == "cgroup2":
            return _keyed(self.memory_dir / "memory.events").get("oom_kill", 0)
        counters = _keyed(self.memory_dir / "memory.oom_control")
        if "oom_kill" in counters:
            return counters["oom_kill"]
        try:
            return int(_read(self.memory_dir / "memory.failcnt"))
        except (OSError, ValueError):
            return 0

    def kill_all(self, timeout: float = 5.0) -> int:
        """SIGKILL every process of the group until it is empty; how many were signalled.

        Processes forking while they are killed are caught by looping until the group is
        empty. A launcher that has not yet written its pid (`enter.py` just started) is
        not in the group: also signal the pid you started. Raises `CgroupError` if the
        group is not empty after `timeout` seconds (a process stuck in the kernel, state
        D). Blocking: call through `asyncio.to_thread`.
        """
        if self.kind == "cgroup2" and (self.memory_dir / "cgroup.kill").exists():
            try:
                _write(self.memory_dir / "cgroup.kill", 1)
            except OSError:
                pass
        signalled: set[int] = set()
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return len(signalled)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    signalled.add(pid)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                raise CgroupError(
                    f"processes {pids} of server {self.server_id} did not end within {timeout:g} s"
                )
            time.sleep(0.02)

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the group's directories once its processes are gone; idempotent.

        The kernel refuses (EBUSY) while a process is still exiting: retried for up to
        `timeout` seconds, then `CgroupError`. Blocking: call through `asyncio.to_thread`.
        """
        deadline = time.monotonic() + timeout
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(
                            f"cannot remove the cgroup of server {self.server_id} ({d}): "
                            f"{e.strerror}; processes left: {self.pids() or 'none'}"
                        ) from None
                    time.sleep(0.05)


def _check_server_id(server_id: str) -> None:
    if not _SERVER_ID.fullmatch(server_id):
        raise ValueError(f"invalid server id {server_id!r}: 1-64 of A-Z a-z 0-9 _ -")


def _dirs_for(backend: Backend, server_id: str) -> tuple[Path, Path | None]:
    if not backend.uses_cgroups or backend.memory_parent is None:
        raise ValueError(f"the {backend.kind} backend has no cgroups: {backend.reason}")
    _check_server_id(server_id)
    cpu = backend.cpu_parent / server_id if backend.cpu_parent is not None else None
    return backend.memory_parent / server_id, cpu


def create_server_cgroup(
    backend: Backend, server_id: str, memory_bytes: int | None, cpu_cores: float | None
) -> ServerCgroup:
    """Create the cgroup(s) of one server and write its limits; returns it, empty.

    `memory_bytes` None or 0: no memory limit; `cpu_cores` None or 0: no CPU limit (also
    when `backend.enforces_cpu` is False: the caller says so to the user). v1 writes
    memory.limit_in_bytes and memory.memsw.limit_in_bytes (same value, so swap cannot be
    used to exceed it) and cpu.cfs_quota_us = cores x cpu.cfs_period_us; v2 writes
    memory.max, memory.swap.max = 0 and cpu.max. A group left over under the same id is
    reused and its limits rewritten. Anything the kernel refuses removes what was created
    and raises `CgroupError`. Only for cgroup backends (ValueError for the watchdog).
    """
    memory_dir, cpu_dir = _dirs_for(backend, server_id)
    if backend.kind == "cgroup1" and not cpu_cores:
        cpu_dir = None  # no cpu limit: the server stays in the hub's cpu cgroup
    group = ServerCgroup(
        backend.kind,
        server_id,
        memory_dir,
        cpu_dir,
        memory_bytes or None,
        cpu_cores if (cpu_cores and backend.enforces_cpu) else None,
    )
    try:
        for d in group.dirs:
            d.mkdir(exist_ok=True)
        if group.memory_bytes:
            _set_memory(group, group.memory_bytes)
        if group.cpu_cores:
            _set_cpu(group, group.cpu_cores)
    except OSError as e:
        try:
            group.remove(timeout=0.5)
        except CgroupError:
            pass
        raise CgroupError(
            f"cannot set up the cgroup of server {server_id} under {memory_dir.parent}: "
            f"{e.strerror} ({getattr(e, 'filename', None) or ''})"
        ) from None
    return group


def _set_memory(group: ServerCgroup, limit: int) -> None:
    d = group.memory_dir
    if group.kind == "cgroup2":
        _write(d / "memory.max", limit)
        if (d / "memory.swap.max").exists():
            _write(d / "memory.swap.max", 0)
        return
    memsw = d / "memory.memsw.limit_in_bytes"
    if not memsw.exists():
        _write(d / "memory.limit_in_bytes", limit)
        return
    # memory <= memory+swap at every step: raise memsw first, lower memory first
    current = int(_read(d / "memory.limit_in_bytes"))
    order = (
        (memsw, d / "memory.limit_in_bytes")
        if limit > current
        else (d / "memory.limit_in_bytes", memsw)
    )
    for path in order:
        _write(path, limit)


def _set_cpu(group: ServerCgroup, cores: float) -> None:
    d = group.cpu_dir
    if group.kind == "cgroup2":
        quota = max(_MIN_CPU_QUOTA_US, round(cores * _CPU_PERIOD_US))
        _write(d / "cpu.max", f"{quota} {_CPU_PERIOD_US}")
        return
    period = int(_read(d / "cpu.cfs_period_us"))
    _write(d / "cpu.cfs_quota_us", max(_MIN_CPU_QUOTA_US, round(cores * period)))


def attach_server_cgroup(backend: Backend, server_id: str) -> ServerCgroup | None:
    """The existing cgroup of a server (after a hub restart), or None when there is none.

    The limits are read back from the kernel. Only for cgroup backends.
    """
    memory_dir, cpu_dir = _dirs_for(backend, server_id)
    if not memory_dir.is_dir():
        return None
    if cpu_dir is not None and not cpu_dir.is_dir():
        cpu_dir = None
    memory_bytes: int | None = None
    cores: float | None = None
    try:
        if backend.kind == "cgroup2":
            text = _read(memory_dir / "memory.max").strip()
            memory_bytes = None if text == "max" else int(text)
            if cpu_dir is not None:
                quota, period = _read(cpu_dir / "cpu.max").split()
                cores = None if quota == "max" else int(quota) / int(period)
        else:
            value = int(_read(memory_dir / "memory.limit_in_bytes"))
            memory_bytes = value if value < (1 << 62) else None
            if cpu_dir is not None:
                quota = int(_read(cpu_dir / "cpu.cfs_quota_us"))
                cores = quota / int(_read(cpu_dir / "cpu.cfs_period_us")) if quota > 0 else None
    except (OSError, ValueError):
        pass
    return ServerCgroup(backend.kind, server_id, memory_dir, cpu_dir, memory_bytes, cores)


def remove_stale(
    backend: Backend, keep: Iterable[str], min_age: float = 30.0, timeout: float = 5.0
) -> list[str]:
    """At hub start: end and remove the server cgroups the hub does not know about.

    Every group under the hub's `<own memory cgroup>/<group>` whose name is not in
    `keep` (the server ids of servers being resumed) has its processes killed and is
    removed, in every hierarchy. A v1 cpu hierarchy may be *shared* with other hubs (when
    the hub's cpu cgroup is the root, as on these machines): a group found only there is
    removed when empty and older than `min_age` seconds, and nothing in it is killed.
    Returns the removed server ids; a group the kernel will not let go of is logged and
    left. Idempotent; a no-op for the watchdog. Blocking: call through asyncio.to_thread.
    """
    if not backend.uses_cgroups or backend.memory_parent is None:
        return []
    keep = set(keep)
    removed = []
    for entry in _children(backend.memory_parent):
        if entry.name in keep or not _SERVER_ID.fullmatch(entry.name):
            continue
        group = attach_server_cgroup(backend, entry.name)
        if group is None:
            continue
        try:
            group.kill_all(timeout=timeout)
            group.remove(timeout=timeout)
            removed.append(entry.name)
        except CgroupError as e:
            log.warning("Leaving a stale server cgroup: %s", e)
    if backend.cpu_parent is not None and backend.cpu_parent != backend.memory_parent:
        now = time.time()
        for entry in _children(backend.cpu_parent):
            if entry.name in keep or entry.name in removed or not _SERVER_ID.fullmatch(entry.name):
                continue
            try:
                if now - entry.stat().st_mtime < min_age:
                    continue
                if not _read(entry / "cgroup.procs").strip():
                    entry.rmdir()
                    removed.append(entry.name)
            except OSError:
                pass
    return removed


def remove_parents(backend: Backend) -> bool:
    """Remove the `<own>/<group>` directories if no server group is left in them.

    For hub shutdown (servers survive a hub restart, so they are not ended) and tests.
    Returns True when none is left. Never raises.
    """
    gone = True
    for parent in {backend.memory_parent, backend.cpu_parent} - {None}:
        try:
            parent.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            gone = False
    return gone


def _children(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir())
    except OSError:
        return []
