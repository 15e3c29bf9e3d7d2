"""The memory watchdog: memory limits for one machine's servers when no cgroup is usable.

See `MemoryWatchdog`. `limits.detect_backend` decides when it is used (its module
docstring explains the three backends); this module only watches and ends processes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...quantities import human_memory
from .processes import TAG

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Watched:
    server_id: str
    root_pid: int
    root_start: int | None
    limit: int
    on_kill: Callable[[str], object]


@dataclass
class _Proc:
    ppid: int
    start: int
    rss: int


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, starttime, rss bytes) of pid, None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    if len(rest) < 22 or rest[0] in (b"Z", b"X"):
        return None
    return int(rest[1]), int(rest[19]), int(rest[21]) * _PAGE


def _snapshot() -> dict[int, _Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                procs[int(entry)] = _Proc(*found)
    return procs


def _pss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _tagged_server(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    prefix = f"{TAG}=".encode()
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def describe_process(pid: int) -> str:
    """`python -m ipykernel_launcher`: the program and its first arguments, for messages."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        args = []
    if not args:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
        except OSError:
            return "?"
    words = [os.path.basename(args[0])]
    for arg in args[1:3]:
        if arg.startswith("/") or len(arg) > 40:
            break
        words.append(arg)
    return " ".join(words)[:60]


@dataclass
class _Decision:
    server_id: str
    pid: int
    start: int
    size: int
    total: int
    is_root: bool


class MemoryWatchdog:
    """Memory limits without cgroups: one asyncio task watching every server's processes.

    Once per `interval` the task reads `/proc/*/stat` (in a worker thread), builds the
    process tree from parent pids and, for each registered server, sums the resident
    memory (RSS) of the tree under its root pid. A tree over its limit is measured again
    with PSS (`smaps_rollup`, which counts shared pages once) and, if still over, its
    largest process is ended with SIGKILL through a pidfd checked against the process's
    start time (a recycled pid is never hit): usually a kernel, the root itself when it
    is the largest. `on_kill(message)` is then called (it may be async) and the message
    logged. The task sleeps without scanning while no server is registered.

    Processes that left the tree (their parent died, they were adopted by pid 1) are
    still counted when their environment carries the server's `ONYXIA_HUB_SERVER_ID`
    tag: each such orphan's environment is read once and remembered. A process that
    clears its environment and double-forks escapes; so does memory allocated faster
    than one interval. This is a safety net; cgroups are the enforcement.

    Use from one event loop: `register` and `unregister` are synchronous and start the
    task on first use; `await stop()` at hub shutdown.
    """

    def __init__(self, interval: float = 1.0, logger: logging.Logger | None = None):
        self.interval = interval
        self.log = logger or log
        self._servers: dict[str, _Watched] = {}
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._killed: dict[int, int] = {}  # pid -> start time, until gone
        self._orphans: dict[tuple[int, int], str | None] = {}
        self._callbacks: set[asyncio.Future] = set()
        self.usage: dict[str, int] = {}
        """server id -> resident bytes of its tree at the last scan."""

    @property
    def servers(self) -> tuple[str, ...]:
        """The server ids being watched."""
        return tuple(self._servers)

    def register(
        self, server_id: str, root_pid: int, limit_bytes: int, on_kill: Callable[[str], object]
    ) -> None:
        """Watch the process tree under `root_pid` against `limit_bytes` (replaces any
        earlier registration of `server_id`). Must be called from the running loop."""
        if limit_bytes <= 0:
            raise ValueError("limit_bytes must be positive")
        found = _stat(root_pid)
        self._servers[server_id] = _Watched(
            server_id, root_pid, found[1] if found else None, limit_bytes, on_kill
        )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="onyxia-hub memory watchdog"
            )
        self._wake.set()

    def unregister(self, server_id: str) -> None:
        """Stop watching `server_id` (unknown ids are ignored)."""
        self._servers.pop(server_id, None)
        self.usage.pop(server_id, None)

    async def stop(self) -> None:
        """Cancel the task; registrations are forgotten."""
        self._servers.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self._servers:
                self._wake.clear()
                self._orphans.clear()
                await self._wake.wait()
            try:
                watched = list(self._servers.values())
                decisions = await asyncio.to_thread(self._scan, watched)
                for decision in decisions:
                    self._end(decision)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("The memory watchdog failed a scan; it goes on")
            await asyncio.sleep(self.interval)

    def _scan(self, watched: list[_Watched]) -> list[_Decision]:
        """In a worker thread: measure every tree, decide what to end (no side effects
        other than the orphan cache)."""
        procs = _snapshot()
        self._killed = {p: s for p, s in self._killed.items() if p in procs and procs[p].start == s}
        children: dict[int, list[int]] = {}
        for pid, proc in procs.items():
            children.setdefault(proc.ppid, []).append(pid)

        def tree(root: int) -> list[int]:
            members, stack = [], [root]
            while stack:
                pid = stack.pop()
                members.append(pid)
                stack.extend(children.get(pid, ()))
            return members

        members: dict[str, list[int]] = {}
        roots: dict[str, int] = {}
        for w in watched:
            root = procs.get(w.root_pid)
            if root is None or (w.root_start is not None and root.start != w.root_start):
                members[w.server_id] = []
                continue
            members[w.server_id] = tree(w.root_pid)
            roots[w.server_id] = w.root_pid
        # orphans adopted by pid 1 that carry a watched server's tag, and their trees
        seen = {pid for pids in members.values() for pid in pids}
        live_keys = set()
        for pid in children.get(1, ()):
            if pid in seen:
                continue
            key = (pid, procs[pid].start)
            live_keys.add(key)
            if key not in self._orphans:
                self._orphans[key] = _tagged_server(pid)
            owner = self._orphans[key]
            if owner in members:
                members[owner].extend(tree(pid))
        self._orphans = {k: v for k, v in self._orphans.items() if k in live_keys}

        decisions = []
        for w in watched:
            pids = [p for p in members[w.server_id] if p in procs and p not in self._killed]
            total = sum(procs[p].rss for p in pids)
            self.usage[w.server_id] = total
            if total <= w.limit or not pids:
                continue
            sizes = {p: _pss(p) or procs[p].rss for p in pids}
            total = sum(sizes.values())
            if total <= w.limit:
                continue
            root = roots.get(w.server_id)
            victim = max(pids, key=lambda p: (sizes[p], p != root))
            decisions.append(
                _Decision(
                    w.server_id, victim, procs[victim].start, sizes[victim], total, victim == root
                )
            )
        return decisions

    def _end(self, d: _Decision) -> None:
        watched = self._servers.get(d.server_id)
        if watched is None:
            return  # unregistered during the scan
        name = describe_process(d.pid)
        try:
            fd = os.pidfd_open(d.pid)
        except OSError:
            return  # already gone
        try:
            found = _stat(d.pid)
            if found is None or found[1] != d.start:
                return  # the pid now names another process
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError as e:
            self.log.warning("Could not end process %d of server %s: %s", d.pid, d.server_id, e)
            return
        finally:
            os.close(fd)
        self._killed[d.pid] = d.start
        limit = human_memory(watched.limit)
        if d.is_root:
            message = (
                f"Memory limit of {limit} reached: ended the server's main process {d.pid} "
                f"({name}, {human_memory(d.size)}). Start it again with more memory."
            )
        else:
            message = (
                f"Memory limit of {limit} reached: ended process {d.pid} ({name}, "
                f"{human_memory(d.size)}). Restart the kernel or choose more memory."
            )
        self.log.warning("Server %s: %s", d.server_id, message)
        try:
            result = watched.on_kill(message)
            if inspect.isawaitable(result):
                future = asyncio.ensure_future(result)
                self._callbacks.add(future)
                future.add_done_callback(self._callback_done)
        except Exception:
            self.log.exception("on_kill of server %s failed", d.server_id)

    def _callback_done(self, future: asyncio.Future) -> None:
        self._callbacks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self.log.error("on_kill failed: %r", future.exception())
