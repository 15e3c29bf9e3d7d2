"""Hostile launch options, as a table every launch path is tested with.

Each `Hostile` case is what a user (or an attacker) could send as options, with the HTTP
status and the words the refusal must carry. `as_form`, `as_query` and the REST body
helpers turn one case into what each path sends, so that one table covers the spawn
form, links, the REST API (both body shapes) and options stored by PUT/PATCH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass(frozen=True)
class Hostile:
    id: str
    options: dict = field(hash=False)
    status: int
    message: str  # a part of the refusal message shown to the user


def _many_keys() -> dict:
    return {f"key{i}": "x" for i in range(20)}


HOSTILE = [
    Hostile("unknown-image", {"image": "evil.example/miner:latest"}, 400, "Unknown option 'image'"),
    Hostile(
        "unknown-privileged",
        {"service": "jupyter-python", "privileged": "true"},
        400,
        "Unknown option 'privileged'",
    ),
    Hostile("gpu-resource-as-key", {"nvidia.com/gpu": "4"}, 400, "Unknown option"),
    Hostile("node-selector", {"node_selector": "gpu=a100"}, 400, "Unknown option 'node_selector'"),
    Hostile("tolerations", {"tolerations": "all"}, 400, "Unknown option 'tolerations'"),
    Hostile("command", {"cmd": "/bin/sh -c id"}, 400, "Unknown option 'cmd'"),
    Hostile("environment", {"environment": "LD_PRELOAD=/tmp/x.so"}, 400, "Unknown option"),
    Hostile("unknown-service", {"service": "does-not-exist"}, 400, "There is no service"),
    Hostile("service-path", {"service": "../../etc/passwd"}, 400, "There is no service"),
    Hostile("service-lookalike", {"service": "jupyter\u2010python"}, 400, "There is no service"),
    Hostile("service-nul", {"service": "jupyter\x00python"}, 400, "There is no service"),
    Hostile("service-huge", {"service": "a" * 5000}, 400, "is too long"),
    Hostile("service-number", {"service": 42}, 400, "There is no service"),
    Hostile("version-unknown", {"version": "latest"}, 400, "has no version 'latest'"),
    Hostile("version-shell", {"version": "1; rm -rf /"}, 400, "has no version"),
    Hostile("version-image", {"version": "docker.io/evil/image:1"}, 400, "has no version"),
    Hostile("cpu-negative", {"cpu": "-1"}, 400, "is not a CPU amount"),
    Hostile("cpu-zero", {"cpu": 0}, 400, "is not a CPU amount"),
    Hostile("cpu-huge-float", {"cpu": 1e308}, 400, "is not a CPU amount"),
    Hostile("cpu-nan", {"cpu": "NaN"}, 400, "is not a CPU amount"),
    Hostile("cpu-inf", {"cpu": "inf"}, 400, "is not a CPU amount"),
    Hostile("cpu-exponent", {"cpu": "1e3"}, 400, "is not a CPU amount"),
    Hostile("cpu-over-bound", {"cpu": 64}, 400, "cpu: 64 cores is outside what"),
    Hostile("cpu-millicores-over", {"cpu": "999999m"}, 400, "cpu: 999.999 cores is outside"),
    Hostile("cpu-text", {"cpu": "lots"}, 400, "is not a CPU amount"),
    Hostile("memory-negative", {"memory": "-1Gi"}, 400, "is not a memory size"),
    Hostile("memory-overflow", {"memory": "9" * 30 + "Gi"}, 400, "memory"),
    Hostile("memory-over-bound", {"memory": "1Ti"}, 400, "memory: 1 TiB is outside what"),
    Hostile("memory-under-bound", {"memory": "1Mi"}, 400, "memory: 1 MiB is outside what"),
    Hostile("memory-unit", {"memory": "4GB"}, 400, "is not a memory size"),
    Hostile("memory-garbage", {"memory": "4.5.6Gi"}, 400, "is not a memory size"),
    Hostile(
        "gpus-on-cpu-service", {"service": "jupyter-python", "gpus": 1}, 400, "has no GPU option"
    ),
    Hostile(
        "gpu-type-on-cpu-service",
        {"service": "jupyter-python", "gpu_type": "a100"},
        400,
        "has no GPU option",
    ),
    Hostile("gpus-negative", {"service": "pytorch-gpu", "gpus": -1}, 400, "gpus:"),
    Hostile("gpus-too-many", {"service": "pytorch-gpu", "gpus": 99}, 400, "not 99"),
    Hostile("gpus-fraction", {"service": "pytorch-gpu", "gpus": "1.5"}, 400, "gpus:"),
    Hostile(
        "gpu-type-unknown",
        {"service": "pytorch-gpu", "gpu_type": "h100-fake"},
        400,
        "has no GPU type 'h100-fake'",
    ),
    Hostile(
        "gpu-type-resource-name",
        {"service": "pytorch-gpu", "gpu_type": "nvidia.com/gpu"},
        400,
        "has no GPU type",
    ),
    Hostile("too-many-options", _many_keys(), 400, "Too many options"),
    Hostile("huge-key", {"k" * 1000: "v"}, 400, "Unknown option"),
    Hostile(
        "alias-conflict",
        {"profile": "jupyter-python", "service": "jupyter-r"},
        400,
        "given twice with different values",
    ),
]


def as_query(case: Hostile) -> str:
    """The link a hostile page would point at: /hub/spawn?opt-..."""
    return urlencode({f"opt-{k}": v for k, v in case.options.items()})


def as_form(case: Hostile) -> dict:
    """Form fields as the spawn form's POST would carry them (values as strings)."""
    return {k: v if isinstance(v, str) else str(v) for k, v in case.options.items()}
