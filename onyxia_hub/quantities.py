"""CPU and memory amounts, written as Kubernetes writes them.

Memory: bytes, or a number with a suffix: `Ki Mi Gi Ti` (powers of 1024) or `k M G T`
(powers of 1000); `512Mi`, `4Gi`, `1.5Gi`. CPU: cores, as a number (`0.5`, `2`) or in
millicores (`500m`). Parsing is strict: anything else raises `ValueError` with a message
that says what is expected, and is shown to users and operators as it is.
"""

from __future__ import annotations

import math
import re

_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_CPU = re.compile(r"(\d+(?:\.\d+)?)(m)?")
MAX_MEMORY = 2**50  # 1 PiB: anything larger is a typo or an attack
MAX_CPU = 4096.0


def parse_memory(value) -> int:
    """Bytes from 4Gi, 512Mi, 1.5G, 1073741824 (int or str)."""
    if isinstance(value, bool):
        raise ValueError("a memory size is a number of bytes or a string such as 4Gi")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value):
        number = int(value)
    elif isinstance(value, str) and len(value) <= 32:
        match = _MEMORY.fullmatch(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a memory size (write it as 512Mi, 4Gi, 2G...)")
        number = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""])
    else:
        raise ValueError("a memory size is a number of bytes or a string such as 4Gi")
    if number <= 0 or number > MAX_MEMORY:
        raise ValueError(f"{value!r} is not a memory size between 1 byte and 1Pi")
    return number


def parse_cpu(value) -> float:
    """Cores from 0.5, 2, '500m', '1.5' (int, float or str)."""
    if isinstance(value, bool):
        raise ValueError("a CPU amount is a number of cores (0.5, 2) or millicores (500m)")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 16:
        match = _CPU.fullmatch(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a CPU amount (write it as 0.5, 2 or 500m)")
        number = float(match.group(1)) / (1000 if match.group(2) else 1)
    else:
        raise ValueError("a CPU amount is a number of cores (0.5, 2) or millicores (500m)")
    if not math.isfinite(number) or number <= 0 or number > MAX_CPU:
        raise ValueError(f"{value!r} is not a CPU amount between 0.001 and {MAX_CPU:g} cores")
    return round(number, 3)


def format_memory(size: int) -> str:
    """The shortest exact binary form: 4294967296 -> '4Gi', 1610612736 -> '1536Mi'."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        if size % _MEMORY_UNITS[unit] == 0:
            return f"{size // _MEMORY_UNITS[unit]}{unit}"
    return str(size)


def format_cpu(cores: float) -> str:
    """'2', '0.5': the way Kubernetes and people write cores."""
    return f"{cores:g}"


def human_memory(size: int | float) -> str:
    """Bytes for people, everywhere (pages, progress, limits, the watchdog's messages):
    the largest binary unit in which the number is at least 1, with three significant
    digits at most and never an exponent: 4 GiB, 1.5 GiB, 1.15 GiB, 12.5 GiB, 512 MiB,
    1023 MiB, 300 B."""
    size = float(size)
    for unit, label in (("Ti", "TiB"), ("Gi", "GiB"), ("Mi", "MiB"), ("Ki", "KiB")):
        if abs(size) >= _MEMORY_UNITS[unit]:
            value = size / _MEMORY_UNITS[unit]
            digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
            text = f"{value:.{digits}f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + f" {label}"
    return f"{int(size)} B"
