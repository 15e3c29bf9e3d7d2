"""The git provider: identity, token and repository for every server (docs/git.md).

- `provider`: `GitProvider`, the traitlets-configured `PlanProvider` (sources, I/O);
- `settings`: pure functions from the sources to the plan's contribution (precedence,
  the git configuration file, the token file, Onyxia's variables).

The server side (the start-time pull, the credential helper, JupyterLab notifications)
is the `onyxia-git` package in extensions/onyxia-git.
"""

from .provider import GitProvider

__all__ = ["GitProvider"]
