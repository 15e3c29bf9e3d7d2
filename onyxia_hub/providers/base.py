"""The base of every provider that contributes to a launch plan.

A provider receives a `PlanRequest` (who launches what, with their auth_state) and returns
a `plan.Contribution`: public environment, secret environment, files for the home, a
repository to pull. It may do I/O (issue credentials, read settings); `plan.build_plan`
stays pure by receiving contributions already made.

Everything a provider may use of the launch comes in its request: the user, the service
and the checked choice, the auth_state, `emit(progress, message)` to tell the user what
it is doing, and `refresh_auth_state()` to have the authenticator renew the user's
tokens. A provider never reaches back into the spawner or the hub (`self.parent` is
only where its configuration comes from).

What a subclass may override, from least to most invasive:

1. `enabled_for(request)`: skip some launches (a service without storage, say).
2. `contribute(request)`: the contribution itself (async).

Nothing is called when a server stops: what a provider issued must expire or be revoked
by itself (the portal's sweep revokes the S3 credentials of deleted users).

A provider that cannot contribute raises `ProviderError` with a message for the user;
the spawner turns it into a `SpawnException` (shown, logged in one line, not counted as a
hub failure) or launches without it, as the provider's `required` setting says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from traitlets import Bool
from traitlets.config import LoggingConfigurable

from ..catalog.model import Service
from ..choices import Choice
from ..plan import Contribution


class ProviderError(Exception):
    """A provider could not contribute; the message is for the user."""


async def _no_refresh() -> dict | None:
    return None


def _no_progress(progress: int, message: str) -> None:
    return None


@dataclass(frozen=True)
class PlanRequest:
    """One launch, as a provider sees it (see the module docstring)."""

    username: str
    server_name: str
    groups: frozenset[str]
    service: Service
    choice: Choice
    auth_state: dict | None = None
    # tell the user what is happening: emit(progress 0-100, message)
    emit: Callable[[int, str], None] = field(default=_no_progress, compare=False)
    # renew the user's tokens through the authenticator: the new auth_state, or None
    refresh_auth_state: Callable[[], Awaitable[dict | None]] = field(
        default=_no_refresh, compare=False
    )


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
