"""Onyxia Hub's user-server side of git (docs/git.md in the Onyxia Hub repository).

- `pull`: `onyxia-git-pull`, the start-time clone or update, hardened;
- `credential`: `git-credential-onyxia`, the token for the configured https hosts only;
- `checks`: repository URL and branch checks, before any git command;
- `server`: the Jupyter server extension (git configuration, the pull in the
  background, its status for the JupyterLab notification in `labextension/`).
"""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    return [{"module": "onyxia_git"}]


def _load_jupyter_server_extension(serverapp):
    from .server import load

    load(serverapp)
