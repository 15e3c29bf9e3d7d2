"""The software environments user servers run in on this machine (`environments/`).

`scripts/setup` builds each `environments/<name>/` into `<environments_dir>/<name>`: a
Python virtual environment from the directory's lock file, and a description of it,
`onyxia-environment.json`:

    {"name": "r", "base": "python", "python": "3.11", "needs": ["/usr/lib/R/..."]}

`needs` lists paths the machine must have (what its Debian packages install). An
environment with a `base` is a layer: its own packages first, then its base's (the
layer's site-packages holds a `.pth` that adds the base's). A catalog service names its
environment in `local.software`; `find` reads the description, and the pure functions
below say what a server in it needs: its PATH, where its kernels and modules are, the
command of JupyterHub's single-user server.

The server itself runs with `python -s -P`: no user site-packages (`-s`), so nothing a
user installs (`pip install`, `%pip install`) runs in the server, and not the working
directory first on `sys.path` (`-P`; it is the user's home, where a `json.py` would
otherwise be imported by the server). Kernels and terminals do see the user's packages
(docs/environments.md).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DESCRIPTION = "onyxia-environment.json"
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
SYSTEM_KERNEL_DIRS = ("/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels")
_MAX_LAYERS = 8


def default_environments_dir() -> str:
    """`.envs` beside the hub's own environment (`.venv`), where `scripts/setup` builds them."""
    return str(Path(sys.prefix).parent / ".envs")


class SoftwareMissing(Exception):
    """The environment is not built here (or its description is unreadable), or the
    machine lacks what it needs; the message is a clause about it ("it is not built
    here"). `rebuild`: whether `scripts/setup` would fix it."""

    def __init__(self, message: str, *, rebuild: bool = True):
        super().__init__(message)
        self.rebuild = rebuild


@dataclass(frozen=True)
class Software:
    """One built environment: its prefixes, its own first, then its bases'."""

    name: str
    prefixes: tuple[str, ...]
    python_version: str  # "3.11"

    @property
    def prefix(self) -> str:
        return self.prefixes[0]

    @property
    def python(self) -> str:
        return os.path.join(self.prefix, "bin", "python")

    @property
    def bin_dirs(self) -> tuple[str, ...]:
        return tuple(os.path.join(p, "bin") for p in self.prefixes)

    @property
    def site_packages(self) -> tuple[str, ...]:
        lib = f"lib/python{self.python_version}/site-packages"
        return tuple(os.path.join(p, lib) for p in self.prefixes)

    @property
    def kernel_dirs(self) -> tuple[str, ...]:
        own = tuple(os.path.join(p, "share", "jupyter", "kernels") for p in self.prefixes)
        return own + SYSTEM_KERNEL_DIRS

    @property
    def server_command(self) -> tuple[str, ...]:
        """JupyterHub's single-user server of this environment, without user site-packages
        nor the working directory (the user's home) on sys.path."""
        return (self.python, "-s", "-P", "-m", "jupyterhub.singleuser")


def server_path(software: Software, home: str) -> str:
    """PATH of a server: the environment, then the user's own programs, then the system's."""
    return os.pathsep.join((*software.bin_dirs, os.path.join(home, ".local", "bin"), *SYSTEM_PATH))


def find(environments_dir: str, name: str) -> Software:
    """The environment `name` built under environments_dir, with its bases."""
    prefixes: list[str] = []
    version = ""
    current: str | None = name
    while current is not None:
        if len(prefixes) >= _MAX_LAYERS or current in {Path(p).name for p in prefixes}:
            raise SoftwareMissing("its bases loop or go too deep")
        prefix = os.path.join(environments_dir, current)
        try:
            with open(os.path.join(prefix, DESCRIPTION), encoding="utf-8") as f:
                description = json.load(f)
        except FileNotFoundError:
            which = "it is" if current == name else f"its base {current} is"
            raise SoftwareMissing(f"{which} not built here") from None
        except (OSError, ValueError) as e:
            raise SoftwareMissing(f"{current}'s {DESCRIPTION} cannot be read: {e}") from None
        if not isinstance(description, dict) or not isinstance(description.get("python"), str):
            raise SoftwareMissing(f"{current}'s {DESCRIPTION} is not valid")
        if version and description["python"] != version:
            raise SoftwareMissing(
                f"it has Python {version} but its base {current} has Python {description['python']}"
            )
        version = description["python"]
        needs = description.get("needs") or []
        absent = [path for path in needs if isinstance(path, str) and not os.path.exists(path)]
        if absent:
            raise SoftwareMissing(
                f"{'it' if current == name else f'its base {current}'} needs {', '.join(absent)} "
                f"(environments/{current}/debian-packages)",
                rebuild=False,
            )
        prefixes.append(prefix)
        base = description.get("base")
        current = base if isinstance(base, str) and base else None
    return Software(name=name, prefixes=tuple(prefixes), python_version=version)
