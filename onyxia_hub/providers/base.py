"""The base of every provider that contributes to a launch plan.

A provider receives a `PlanRequest` (who launches what, with their auth_state) and returns
a `plan.Contribution`: public environment, secret environment, files for the home, a
repository to pull. It may do I/O (issue credentials, read settings); `plan.build_plan`
stays pure by receiving contributions already made.

What a subclass may override, from least to most invasive:

1. `enabled_for(request)`: skip some launches (a service without storage, say).
2. `contribute(request)`: the contribution itself (async).
3. `released(username, server_name)`: called when a server stops, to revoke or forget.

A provider that cannot contribute raises `ProviderError` with a message for the user;
the spawner turns it into a `SpawnException` (shown, logged in one line, not counted as a
hub failure) or launches without it, as the provider's `required` setting says.
"""

from __future__ import annotations

from dataclasses import dataclass

from traitlets import Bool
from traitlets.config import LoggingConfigurable

from ..catalog.model import Service
from ..choices import Choice
from ..plan import Contribution


class ProviderError(Exception):
    """A provider could not contribute; the message is for the user."""


@dataclass(frozen=True)
class PlanRequest:
    username: str
    server_name: str
    groups: frozenset[str]
    service: Service
    choice: Choice
    auth_state: dict | None = None


class PlanProvider(LoggingConfigurable):
    """Contributes to launch plans; see the module docstring."""

    required = Bool(
        True,
        help="""
        Whether a launch fails when this provider cannot contribute.

        True (default): the launch stops with the provider's message. False: the server
        starts without this contribution and the progress page says so.
        """,
    ).tag(config=True)

    def enabled_for(self, request: PlanRequest) -> bool:
        return True

    async def contribute(self, request: PlanRequest) -> Contribution:
        return Contribution()

    async def released(self, username: str, server_name: str) -> None:
        return None
