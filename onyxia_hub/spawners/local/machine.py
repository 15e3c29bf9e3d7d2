"""What every server of one hub shares on this machine: limits, watchdog, GPUs.

One `Machine` per hub (keyed by the cgroup name derived from its homes directory, so
two hubs on one machine, as in the test suite, never share one): the limits backend
chosen once (`limits.detect_backend`), the memory watchdog when no cgroup is usable, the
GPU pool, and the ids of the servers the hub knows, so that server cgroups left by a
crash can be cleaned up once, at the first start after the hub's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from .gpus import GpuPool, probe_gpus
from .limits import Backend, detect_backend, remove_stale
from .watchdog import MemoryWatchdog

_MACHINES: dict[tuple, Machine] = {}


def cgroup_name(homes_root: str) -> str:
    """One name per hub: its servers' cgroups live in `<hub's cgroup>/<name>/`."""
    return "onyxia-hub-" + hashlib.sha256(homes_root.encode()).hexdigest()[:10]


class Machine:
    def __init__(self, *, group: str, enforcement: str, gpu_devices, log: logging.Logger):
        self.log = log
        self.backend: Backend = detect_backend(enforcement, group=group)
        log.info("Resource limits: %s", self.backend.reason)
        if self.backend.uses_cgroups and not self.backend.enforces_cpu:
            log.info("CPU limits: %s", self.backend.cpu_reason)
        self.watchdog = MemoryWatchdog(logger=log) if not self.backend.uses_cgroups else None
        if gpu_devices is None:
            gpus, reason = probe_gpus()
            self.gpus = GpuPool(gpus)
            log.info("GPUs: %s", reason)
        else:
            self.gpus = GpuPool(gpu_devices)
            log.info("GPUs (configured): %s", ", ".join(gpu_devices) or "none")
        self.known_servers: set[str] = set()
        self._swept = False
        self._sweep_lock = asyncio.Lock()

    async def sweep_once(self) -> None:
        """End server cgroups that no known server owns (left by a crash), once."""
        if self._swept or not self.backend.uses_cgroups:
            return
        async with self._sweep_lock:
            if self._swept:
                return
            removed = await asyncio.to_thread(remove_stale, self.backend, set(self.known_servers))
            if removed:
                self.log.info("Removed %d server cgroup(s) left by an earlier run", len(removed))
            self._swept = True


def machine_for(*, homes_root: str, enforcement: str, gpu_devices, log) -> Machine:
    key = (homes_root, enforcement, None if gpu_devices is None else tuple(gpu_devices))
    if key not in _MACHINES:
        _MACHINES[key] = Machine(
            group=cgroup_name(homes_root), enforcement=enforcement, gpu_devices=gpu_devices, log=log
        )
    return _MACHINES[key]
