"""Terminals opened late get the current S3 set, not the launch's.

A terminal's shell inherits the server's environment, fixed at launch: a terminal opened
hours later would get keys that expired long ago. Before each new terminal, the same
`Refresher` as kernels' (refresh.py) updates the terminal manager's `extra_env` (which
terminado lays over the server's environment), on the server's event loop: the server's
own `os.environ` is never written. A terminal already open keeps what it started with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping

from .refresh import Refresher


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


def refresh_new_terminals(manager, base: MutableMapping[str, str] = os.environ) -> Refresher:
    """Make manager (terminado's) refresh the S3 set before each new terminal."""
    if manager.extra_env is None:
        manager.extra_env = {}
    refresher = Refresher(LayeredEnv(manager.extra_env, base))
    new_terminal = manager.new_terminal

    def refreshed_terminal(**kwargs):
        refresher()
        return new_terminal(**kwargs)

    manager.new_terminal = refreshed_terminal
    return refresher
