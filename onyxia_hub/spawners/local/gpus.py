"""The machine's NVIDIA GPUs and which server holds which.

`detect_gpus()` asks `nvidia-smi` once, at hub start. `GpuPool` then hands whole devices
to servers: distinct devices to concurrent holders, `NoGpuFree` when too few are free,
and `restore` for servers found running after a hub restart (their devices are read from
the stored state and claimed again).

The caller exposes the returned ids to the server with `CUDA_VISIBLE_DEVICES=<ids joined
by ",">` (and `NVIDIA_VISIBLE_DEVICES` for containers). The ids are the GPUs' UUIDs when
known: CUDA numbers devices fastest first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so the
index nvidia-smi prints may name another device to CUDA, while a UUID never does.

Nothing here is enforced by the kernel: a program can ignore `CUDA_VISIBLE_DEVICES` and
open any `/dev/nvidia*` its account may open. The pool is a scheduler, not a jail.

`GpuPool` is not thread-safe: its methods are synchronous and meant to be called from the
hub's one asyncio loop, where they never interleave.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Gpu", "GpuConflict", "GpuError", "GpuPool", "NoGpuFree", "detect_gpus", "probe_gpus"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    """One device as nvidia-smi lists it; `id` is what goes into CUDA_VISIBLE_DEVICES."""

    index: int
    uuid: str
    name: str

    @property
    def id(self) -> str:
        return self.uuid or str(self.index)


def probe_gpus(timeout: float = 10.0, nvidia_smi: str | None = None) -> tuple[list[Gpu], str]:
    """(GPUs, a sentence saying what was found or why none): never raises.

    Runs `nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader` when it is on
    the PATH (or `nvidia_smi` names it), with `timeout` seconds to answer: a driver in a
    bad state can make it hang. Any failure means no GPU, and the reason says why.
    """
    program = nvidia_smi or shutil.which("nvidia-smi")
    if not program:
        return [], "no GPU: nvidia-smi is not installed (no NVIDIA driver)"
    cmd = [program, "--query-gpu=index,uuid,name", "--format=csv,noheader"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"no GPU: nvidia-smi did not answer within {timeout:g} s"
    except OSError as e:
        return [], f"no GPU: nvidia-smi could not run ({e.strerror})"
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return [], (
            f"no GPU: nvidia-smi failed (exit {result.returncode}"
            + (f": {detail[0][:200]}" if detail else "")
            + ")"
        )
    gpus = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        gpus.append(Gpu(int(parts[0]), parts[1], parts[2]))
    if not gpus:
        return [], "no GPU: nvidia-smi lists none"
    names = ", ".join(f"{g.index}: {g.name}" for g in gpus)
    return gpus, f"{len(gpus)} GPU(s) found by nvidia-smi ({names})"


def detect_gpus(timeout: float = 10.0) -> list[Gpu]:
    """The machine's NVIDIA GPUs (empty when none or nvidia-smi fails); logs the reason."""
    gpus, reason = probe_gpus(timeout)
    log.info("%s", reason)
    return gpus


class GpuError(Exception):
    """GPUs could not be given; the message says why, in words for the user."""


class NoGpuFree(GpuError):
    """Fewer devices are free than were asked for."""


class GpuConflict(GpuError):
    """A restored server claims a device another holder already has, or one that is gone."""


class GpuPool:
    """Whole devices handed to holders (a server's key), each device to one holder.

    `devices` are ids (strings) or `Gpu`s (their `id`, the UUID). Devices are given in
    the order listed, first free first. Synchronous, for one asyncio loop (see module).
    """

    def __init__(self, devices: Iterable[str | Gpu]):
        self._devices = tuple(d.id if isinstance(d, Gpu) else str(d) for d in devices)
        if len(set(self._devices)) != len(self._devices):
            raise ValueError(f"duplicate GPU ids in {self._devices}")
        self._holders: dict[str, tuple[str, ...]] = {}

    @property
    def total(self) -> int:
        """How many devices the pool hands out."""
        return len(self._devices)

    @property
    def free(self) -> tuple[str, ...]:
        """Ids of the devices nobody holds, in pool order."""
        held = {d for devices in self._holders.values() for d in devices}
        return tuple(d for d in self._devices if d not in held)

    @property
    def holders(self) -> dict[str, tuple[str, ...]]:
        """key -> devices held (a copy)."""
        return dict(self._holders)

    def allocate(self, key: str, count: int) -> tuple[str, ...]:
        """`count` free devices for `key`, now held by it; () when count is 0.

        Asking again with the same key and count returns the same devices; with another
        count it is an error (release first). Raises `NoGpuFree` when too few are free.
        """
        if count < 0:
            raise ValueError("count must be 0 or more")
        if key in self._holders:
            held = self._holders[key]
            if len(held) == count:
                return held
            raise GpuError(f"{key} already holds {len(held)} GPU(s); release them first")
        if count == 0:
            return ()
        free = self.free
        if count > len(free):
            if count > self.total:
                raise NoGpuFree(
                    f"{_gpus(count)} asked for, but this machine has {self.total}: ask for fewer."
                )
            raise NoGpuFree(
                f"{_gpus(count)} asked for, but only {len(free)} of {self.total} "
                f"{'is' if len(free) == 1 else 'are'} free: try again when another server "
                "stops, or ask for fewer."
            )
        self._holders[key] = free[:count]
        return self._holders[key]

    def release(self, key: str) -> tuple[str, ...]:
        """Give back what `key` holds (nothing when it holds nothing); returns it."""
        return self._holders.pop(key, ())

    def restore(self, key: str, devices: Iterable[str]) -> tuple[str, ...]:
        """Claim again the devices a server found running after a hub restart holds.

        Idempotent for the same key and devices. Raises `GpuConflict` when a device is no
        longer on this machine or is held by another key: two servers would share it, and
        the caller should stop one of them.
        """
        devices = tuple(str(d) for d in devices)
        gone = [d for d in devices if d not in self._devices]
        if gone:
            raise GpuConflict(
                f"{key} was running on GPU(s) {', '.join(gone)}, no longer on this machine"
            )
        for other, held in self._holders.items():
            clash = sorted(set(held) & set(devices))
            if other != key and clash:
                raise GpuConflict(
                    f"{key} was running on GPU(s) {', '.join(clash)}, which {other} holds"
                )
        if devices:
            self._holders[key] = devices
        else:
            self._holders.pop(key, None)
        return devices


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"
