"""The launch plan: everything one launch gets, decided before anything runs.

`build_plan` is pure: from the catalog entry, the checked `Choice`, who launches it and
what the providers contributed (credentials, git identity...), it returns an immutable
`LaunchPlan`. Adapters realise it: `OnyxiaLocalSpawner` as processes on this machine,
`OnyxiaSpawner` as a Kubernetes pod and Secret. Nothing below this module knows whether
the choice came from a form, a link or the API; nothing above it knows where it runs.

Secrets travel apart from the public environment (`secret_environment`, secret files),
so each adapter can keep them out of places anyone can read (pod specs, command lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .catalog.model import Catalog, Requirements, frozen_map
from .choices import Choice
from .quantities import format_cpu, format_memory
from .quotas import Claim


@dataclass(frozen=True)
class Resources:
    """CPU in cores and memory in bytes; requests equal limits (predictable servers)."""

    cpu_request: float
    cpu_limit: float
    memory_request: int
    memory_limit: int


@dataclass(frozen=True)
class GpuRequest:
    """GPUs of one type, and where they can be found."""

    count: int
    type: str
    display_name: str
    resource: str
    node_selector: Mapping[str, str] = field(default_factory=frozen_map)
    tolerations: tuple[Mapping, ...] = ()


SECRETS_DIR_ENV = "ONYXIA_HUB_SECRETS_DIR"
"""Where a server finds its secret files: the adapter sets this variable."""


@dataclass(frozen=True)
class PlanFile:
    """A file the server gets, at `path` relative to where it belongs.

    Public files (`secret=False`) go into the user's home. Secret files never touch the
    home's disk: adapters put them in a memory-backed directory private to the server
    (one machine: `<runtime_root>/<server id>/secrets`; Kubernetes: a Secret volume at
    `/var/run/onyxia-hub/secrets`) and name that directory in `ONYXIA_HUB_SECRETS_DIR`.
    """

    path: str
    content: str
    mode: int = 0o600
    secret: bool = False


@dataclass(frozen=True)
class Repository:
    """A git repository to clone or update into the work directory at start."""

    url: str
    branch: str | None = None
    target: str | None = None  # the directory under the work directory (None: its name)


@dataclass(frozen=True)
class Contribution:
    """What one provider adds to a plan."""

    environment: Mapping[str, str] = field(default_factory=frozen_map)
    secret_environment: Mapping[str, str] = field(default_factory=frozen_map)
    files: tuple[PlanFile, ...] = ()
    repository: Repository | None = None
    # init scripts to run before the server, within this many seconds (None: none)
    init_timeout: float | None = None


@dataclass(frozen=True)
class Launcher:
    """Who launches: the hub user, the server's name, their groups."""

    username: str
    server_name: str = ""
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LaunchPlan:
    username: str
    server_name: str
    service: str
    service_display_name: str
    version: str
    image: str
    software: str  # one-machine mode: the environment it runs in (environments/<name>/)
    command: tuple[str, ...] | None  # one-machine mode; None: JupyterHub's single-user server
    default_url: str
    requires: Requirements
    resources: Resources
    gpu: GpuRequest | None
    environment: Mapping[str, str]
    local_environment: Mapping[str, str]
    secret_environment: Mapping[str, str]
    files: tuple[PlanFile, ...]
    repository: Repository | None
    # adapters start the server through `onyxia-init` (extensions/onyxia-git), and wait
    # this much longer for it to answer; None: no init script
    init_timeout: float | None = None

    @property
    def node_selector(self) -> Mapping[str, str]:
        return self.gpu.node_selector if self.gpu else frozen_map()

    @property
    def tolerations(self) -> tuple[Mapping, ...]:
        return self.gpu.tolerations if self.gpu else ()

    @property
    def claim(self) -> Claim:
        return Claim(
            self.service,
            self.resources.cpu_limit,
            self.resources.memory_limit,
            self.gpu.count if self.gpu else 0,
        )

    def summary(self) -> str:
        """One line for logs: never a secret."""
        gpus = f", {self.gpu.count} GPU {self.gpu.type}" if self.gpu else ""
        return (
            f"{self.service}:{self.version} ({format_cpu(self.resources.cpu_limit)} CPU, "
            f"{format_memory(self.resources.memory_limit)}{gpus})"
        )


def build_plan(
    catalog: Catalog,
    choice: Choice,
    launcher: Launcher,
    contributions: tuple[Contribution, ...] = (),
) -> LaunchPlan:
    """The plan of one launch. Pure: same inputs, same plan; no I/O."""
    service = catalog.get(choice.service)
    if service is None:  # choices.check guarantees it; a plan never guesses
        raise ValueError(f"service {choice.service!r} is not in the catalog")
    version = service.version(choice.version)
    if version is None:
        raise ValueError(f"service {choice.service!r} has no version {choice.version!r}")

    gpu = None
    if choice.gpus and service.gpu is not None:
        gpu_type = service.gpu.type(choice.gpu_type or service.gpu.default_type)
        gpu = GpuRequest(
            choice.gpus,
            gpu_type.name,
            gpu_type.display_name,
            gpu_type.resource,
            gpu_type.node_selector,
            gpu_type.tolerations,
        )

    environment = dict(service.environment)
    environment.update(
        {
            "ONYXIA_HUB_SERVICE": service.name,
            "ONYXIA_HUB_SERVICE_VERSION": version.name,
        }
    )
    secret_environment: dict[str, str] = {}
    files: list[PlanFile] = []
    repository = None
    init_timeout = None
    for contribution in contributions:
        environment.update(contribution.environment)
        secret_environment.update(contribution.secret_environment)
        files.extend(contribution.files)
        repository = contribution.repository or repository
        if contribution.init_timeout is not None:
            init_timeout = contribution.init_timeout
    overlap = set(environment) & set(secret_environment)
    if overlap:
        raise ValueError(f"variables both public and secret: {', '.join(sorted(overlap))}")

    return LaunchPlan(
        username=launcher.username,
        server_name=launcher.server_name,
        service=service.name,
        service_display_name=service.display_name,
        version=version.name,
        image=version.image,
        software=service.local.software,
        command=service.local.command,
        default_url=service.local.default_url,
        requires=service.local.requires,
        resources=Resources(choice.cpu, choice.cpu, choice.memory, choice.memory),
        gpu=gpu,
        environment=frozen_map(environment),
        local_environment=frozen_map(service.local.environment),
        secret_environment=frozen_map(secret_environment),
        files=tuple(files),
        repository=repository,
        init_timeout=init_timeout,
    )
