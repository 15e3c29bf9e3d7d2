"""Per-user quotas: what a user's running servers use, summed, against their limits.

Every server that is starting or running holds a `Claim` (one server, its CPU, memory and
GPUs, and its service) in the process-wide `LEDGER`. A new launch is checked and claimed
in one synchronous step: the hub runs one event loop, so two launches arriving together
are checked one after the other and cannot both pass. Claims are released when a server
stops or fails to start, and re-made from the saved state of servers found running at
hub start.

Limits come from the catalog (`_catalog.yaml`): each limit is the largest that the
default or any of the user's groups grants (`Quotas.for_groups`); a service may also cap
how many of its own servers a user runs at once (`max_servers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog.model import Limits
from .choices import ChoiceError
from .quantities import format_cpu, human_memory

WARN = 0.75  # Onyxia shows a warning at 75% and an alert at 95%
ALERT = 0.95


@dataclass(frozen=True)
class Claim:
    """What one server holds against its user's quota."""

    service: str
    cpu: float
    memory: int
    gpus: int = 0


@dataclass(frozen=True)
class Usage:
    servers: int = 0
    cpu: float = 0.0
    memory: int = 0
    gpus: int = 0

    @classmethod
    def of(cls, claims) -> Usage:
        claims = list(claims)
        return cls(
            len(claims),
            round(sum(c.cpu for c in claims), 3),
            sum(c.memory for c in claims),
            sum(c.gpus for c in claims),
        )

    def plus(self, claim: Claim) -> Usage:
        return Usage(
            self.servers + 1,
            round(self.cpu + claim.cpu, 3),
            self.memory + claim.memory,
            self.gpus + claim.gpus,
        )


@dataclass(frozen=True)
class Gauge:
    """One dimension of a user's quota, as the spawn page shows it."""

    label: str
    used: float
    limit: float | None
    text: str

    @property
    def fraction(self) -> float:
        if not self.limit:
            return 0.0 if self.limit is None else 1.0
        return min(self.used / self.limit, 1.0)

    @property
    def level(self) -> str:
        """'ok', 'warning' (from 75%) or 'alert' (from 95%)."""
        if self.limit is None:
            return "ok"
        if self.fraction >= ALERT:
            return "alert"
        return "warning" if self.fraction >= WARN else "ok"


def gauges(usage: Usage, limits: Limits) -> list[Gauge]:
    def text(used: str, limit: str | None) -> str:
        return f"{used} of {limit}" if limit is not None else f"{used} (no limit)"

    return [
        Gauge(
            "Servers",
            usage.servers,
            limits.servers,
            text(str(usage.servers), None if limits.servers is None else str(limits.servers)),
        ),
        Gauge(
            "CPU",
            usage.cpu,
            limits.cpu,
            text(
                format_cpu(usage.cpu),
                None if limits.cpu is None else f"{format_cpu(limits.cpu)} cores",
            ),
        ),
        Gauge(
            "Memory",
            usage.memory,
            limits.memory,
            text(
                human_memory(usage.memory) if usage.memory else "0 GiB",
                None if limits.memory is None else human_memory(limits.memory),
            ),
        ),
        Gauge(
            "GPUs",
            usage.gpus,
            limits.gpus,
            text(str(usage.gpus), None if limits.gpus is None else str(limits.gpus)),
        ),
    ]


def over_limit(usage: Usage, limits: Limits) -> str | None:
    """Which limit `usage` exceeds, in words, or None."""
    if limits.servers is not None and usage.servers > limits.servers:
        return f"at most {limits.servers} server(s) at once"
    if limits.cpu is not None and usage.cpu > limits.cpu + 1e-9:
        return f"at most {format_cpu(limits.cpu)} CPU cores in all"
    if limits.memory is not None and usage.memory > limits.memory:
        return f"at most {human_memory(limits.memory)} of memory in all"
    if limits.gpus is not None and usage.gpus > limits.gpus:
        return f"at most {limits.gpus} GPU(s) in all" if limits.gpus else "no GPU"
    return None


class Ledger:
    """Claims of every starting or running server, keyed by (user, server name)."""

    def __init__(self):
        self._claims: dict[tuple[str, str], Claim] = {}

    def claims_of(self, user: str) -> dict[str, Claim]:
        return {server: c for (u, server), c in self._claims.items() if u == user}

    def usage(self, user: str, *, excluding: str | None = None) -> Usage:
        return Usage.of(c for server, c in self.claims_of(user).items() if server != excluding)

    def claim(
        self,
        user: str,
        server: str,
        claim: Claim,
        limits: Limits,
        max_servers_of_service: int | None = None,
    ) -> None:
        """Check and record in one step; raise a ChoiceError (HTTP 403) when over quota."""
        others = {s: c for s, c in self.claims_of(user).items() if s != server}
        after = Usage.of(others.values()).plus(claim)
        problem = over_limit(after, limits)
        if problem is None and max_servers_of_service is not None:
            same = sum(1 for c in others.values() if c.service == claim.service)
            if same + 1 > max_servers_of_service:
                problem = f"at most {max_servers_of_service} server(s) of {claim.service} at once"
        if problem:
            raise ChoiceError(
                f"This launch would exceed your quota ({problem}): you use "
                f"{usage_words(Usage.of(others.values()))}. Stop a server or choose fewer "
                "resources.",
                status_code=403,
                reason="quota",
            )
        self._claims[(user, server)] = claim

    def restore(self, user: str, server: str, claim: Claim) -> None:
        """Re-make the claim of a server found running at hub start (no check)."""
        self._claims[(user, server)] = claim

    def release(self, user: str, server: str) -> None:
        self._claims.pop((user, server), None)


def usage_words(usage: Usage) -> str:
    return (
        f"{usage.servers} server(s), {format_cpu(usage.cpu)} cores, "
        f"{human_memory(usage.memory) if usage.memory else '0 GiB'}, {usage.gpus} GPU(s)"
    )


LEDGER = Ledger()
