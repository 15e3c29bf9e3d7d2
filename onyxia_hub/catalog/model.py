"""The catalog as typed, immutable values: what `profiles/*.yaml` declare once validated.

Nothing here reads files or talks to anything: `loader` builds these from YAML, `choices`
checks user choices against them, `plan` turns a choice into a launch plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def frozen_map(mapping: Mapping | None = None) -> Mapping:
    """A read-only view of a copy of mapping."""
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Version:
    """One version of a service: a name users pick and the container image behind it."""

    name: str
    image: str


@dataclass(frozen=True)
class Requirements:
    """What a service needs on the machine to run in one-machine mode."""

    executables: tuple[str, ...] = ()
    kernels: tuple[str, ...] = ()
    python_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalMode:
    """How the service runs on one machine (OnyxiaLocalSpawner).

    `software` names the environment it runs in (`environments/<name>/`, built by
    `scripts/setup`); `command` None means that environment's JupyterHub single-user
    server (JupyterLab); `default_url` is where users land (`/lab`, `/vscode/`...).
    """

    software: str = "python"
    command: tuple[str, ...] | None = None
    default_url: str = "/lab"
    requires: Requirements = field(default_factory=Requirements)
    environment: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class CpuRange:
    """Cores a user may ask for: `presets` offered, any value in [min, max] accepted."""

    presets: tuple[float, ...]
    default: float
    min: float
    max: float


@dataclass(frozen=True)
class MemoryRange:
    """Bytes a user may ask for: `presets` offered, any value in [min, max] accepted."""

    presets: tuple[int, ...]
    default: int
    min: int
    max: int


@dataclass(frozen=True)
class GpuType:
    """A kind of GPU and how to get it. Set by the operator, never by users."""

    name: str
    display_name: str
    resource: str  # extended resource name: nvidia.com/gpu, nvidia.com/mig-1g.5gb...
    node_selector: Mapping[str, str] = field(default_factory=frozen_map)
    tolerations: tuple[Mapping, ...] = ()


@dataclass(frozen=True)
class GpuOptions:
    """How many GPUs of which type a service may get."""

    counts: tuple[int, ...]  # allowed counts, e.g. (1, 2) or (0, 1)
    default_count: int
    types: tuple[GpuType, ...]
    default_type: str

    def type(self, name: str) -> GpuType | None:
        return next((t for t in self.types if t.name == name), None)


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one user may use at once; None: no bound."""

    servers: int | None = None
    cpu: float | None = None
    memory: int | None = None
    gpus: int | None = None

    DIMENSIONS = ("servers", "cpu", "memory", "gpus")

    def most_generous(self, other: Limits) -> Limits:
        """Per dimension, the larger bound (None, unbounded, beats any number)."""

        def larger(a, b):
            return None if a is None or b is None else max(a, b)

        return Limits(*(larger(getattr(self, d), getattr(other, d)) for d in self.DIMENSIONS))


@dataclass(frozen=True)
class Quotas:
    """Per-user limits: `default` for everyone, raised by the groups a user is in."""

    default: Limits = field(default_factory=Limits)
    groups: Mapping[str, Limits] = field(default_factory=frozen_map)

    def for_groups(self, groups) -> Limits:
        """Each limit is the largest that any of the user's groups (or the default) grants."""
        limits = self.default
        for group in sorted(set(groups) & set(self.groups)):
            limits = limits.most_generous(self.groups[group])
        return limits


@dataclass(frozen=True)
class Service:
    """One catalog entry: what users see on its card and what a launch of it gets."""

    name: str
    display_name: str
    description: str
    versions: tuple[Version, ...]  # the first is the default
    cpu: CpuRange
    memory: MemoryRange
    local: LocalMode = field(default_factory=LocalMode)
    gpu: GpuOptions | None = None
    groups: frozenset[str] = frozenset()  # empty: everyone may use it
    max_servers: int | None = None  # concurrent servers of this service per user
    environment: Mapping[str, str] = field(default_factory=frozen_map)
    icon: str | None = None  # a data: URI, ready for <img src>
    order: int = 100
    default: bool = False
    source: str = ""  # the file it was read from

    @property
    def default_version(self) -> Version:
        return self.versions[0]

    def version(self, name: str) -> Version | None:
        return next((v for v in self.versions if v.name == name), None)

    def allowed_for(self, groups) -> bool:
        return not self.groups or bool(self.groups & set(groups))


@dataclass(frozen=True)
class Catalog:
    """Every service, in display order, and the quotas."""

    services: tuple[Service, ...]
    quotas: Quotas = field(default_factory=Quotas)
    source: str = ""

    def get(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def default_service(self) -> Service:
        return next((s for s in self.services if s.default), self.services[0])

    def visible_to(self, groups) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.allowed_for(groups))
