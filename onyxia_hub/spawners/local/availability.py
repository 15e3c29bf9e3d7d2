"""Can a service run on this machine? Its environment, programs, kernels, modules, GPUs.

The spawn page shows a service whose needs are not met as unavailable, naming what is
missing ("needs the program R and the ir kernel"); a launch of it is refused with the
same words. Results are cached for a few seconds: the spawn page asks for every card.
"""

from __future__ import annotations

import os
import shutil
import time
from importlib.machinery import PathFinder

from ...catalog.model import Requirements
from .software import Software

CACHE_SECONDS = 30.0
_cache: dict[tuple, tuple[float, list[str]]] = {}


def _has_kernel(software: Software, name: str) -> bool:
    return any(os.path.isfile(os.path.join(d, name, "kernel.json")) for d in software.kernel_dirs)


def _has_module(software: Software, name: str) -> bool:
    top = name.partition(".")[0]
    return PathFinder.find_spec(top, list(software.site_packages)) is not None


def missing(
    requires: Requirements,
    *,
    software: Software,
    path: str,
    gpus_needed: int = 0,
    gpus_total: int = 0,
) -> list[str]:
    """What is missing to run something that needs `requires` in `software`, with `path`
    as its PATH, in words; [] if nothing."""
    key = (requires, software, path, gpus_needed, gpus_total)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    absent = [
        f"the program {name}"
        for name in requires.executables
        if shutil.which(name, path=path) is None
    ]
    absent += [f"the {name} kernel" for name in requires.kernels if not _has_kernel(software, name)]
    absent += [
        f"the Python module {name}"
        for name in requires.python_modules
        if not _has_module(software, name)
    ]
    if gpus_needed > gpus_total:
        absent.append(
            f"{gpus_needed} GPU{'s' if gpus_needed > 1 else ''} (this machine has "
            f"{gpus_total or 'none'})"
        )
    _cache[key] = (now, absent)
    return absent


def in_words(items: list[str]) -> str:
    """'needs a, b and c'."""
    if len(items) == 1:
        return f"needs {items[0]}"
    return f"needs {', '.join(items[:-1])} and {items[-1]}"


def forget() -> None:
    """Drop cached answers (after installing something, in tests)."""
    _cache.clear()
