"""Terminals opened late get the current S3 set, not the launch's.

A terminal's shell inherits the server's environment, fixed at launch: a terminal opened
hours later would get keys that expired long ago. Every `INTERVAL` seconds (more often
when the set has less than 2 minutes left), in a worker thread (a fetch may wait for
the portal: never on the server's event loop), the same `Refresher` as kernels'
(refresh.py) works on a private copy of the S3 variables, and a changed set is handed
to the terminal manager as a new `extra_env` dict (terminado lays it over the server's
environment for each new terminal; one reference swap, never a dict changed while
terminado reads it). The server's own `os.environ` is never written. A
terminal already open keeps what it started with.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, MutableMapping

from .refresh import Refresher

INTERVAL = 30.0  # seconds between two checks (each one comparison unless the set is due)


class LayeredEnv(MutableMapping):
    """Reads `layer` over `base`; writes go to `layer` (None: removed, terminado's rule)."""

    def __init__(self, layer: dict, base: MutableMapping[str, str]):
        self.layer, self.base = layer, base

    def __getitem__(self, name: str) -> str:
        if name in self.layer:
            value = self.layer[name]
            if value is None:
                raise KeyError(name)
            return value
        return self.base[name]

    def __setitem__(self, name: str, value: str) -> None:
        self.layer[name] = value

    def __delitem__(self, name: str) -> None:
        self[name]  # KeyError when absent, as a dict
        self.layer[name] = None

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for name in (*self.layer, *self.base):
            if name not in seen and name in self:
                seen.add(name)
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TerminalCredentials:
    """The S3 set new terminals get: `refresh()` (blocking: in a thread) renews it when
    due and swaps `manager.extra_env` for a new dict holding it."""

    def __init__(self, manager, base: MutableMapping[str, str] = os.environ):
        self.manager = manager
        self.fixed = dict(manager.extra_env or {})  # the terminal manager's own variables
        self.layer: dict = {}
        self.refresher = Refresher(LayeredEnv(self.layer, base))
        self.lock = threading.Lock()

    def next_check(self, now: float) -> float:
        """Seconds until the next check: INTERVAL, or a quarter of what the set has left."""
        expiry = self.refresher.expiry()
        if expiry is None:
            return INTERVAL
        return min(INTERVAL, max(1.0, (expiry - now) / 4))

    def refresh(self) -> None:
        if not self.lock.acquire(blocking=False):
            return  # one at a time
        try:
            before = dict(self.layer)
            self.refresher()
            if self.layer != before:
                self.manager.extra_env = {**self.fixed, **self.layer}
        finally:
            self.lock.release()


def refresh_new_terminals(manager, base: MutableMapping[str, str] = os.environ):
    """Keep manager's (terminado's) new terminals on the current S3 set: checks
    scheduled on the event loop, each run in a worker thread."""
    from tornado.ioloop import IOLoop

    loop = IOLoop.current()
    credentials = TerminalCredentials(manager, base)

    def tick() -> None:
        future = loop.run_in_executor(None, credentials.refresh)
        future.add_done_callback(
            lambda _: loop.add_callback(loop.call_later, credentials.next_check(time.time()), tick)
        )

    tick()
    return credentials
