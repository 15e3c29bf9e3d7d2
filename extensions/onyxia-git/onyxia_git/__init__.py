"""Onyxia Hub's user-server side of git (docs/git.md in the Onyxia Hub repository).

- `pull`: `onyxia-git-pull`, the start-time clone or update, hardened;
- `credential`: `git-credential-onyxia`, the token for the configured https hosts only;
- `checks`: repository URL and branch checks, before any git command;
- `init`: `onyxia-init`, the region and personal init scripts before the server starts;
- `server`: the Jupyter server extension (git configuration, the pull in the
  background, its status and the init scripts' outcome for the JupyterLab notification
  in `labextension/`).
"""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    return [{"module": "onyxia_git"}]


def _load_jupyter_server_extension(serverapp):
    from .server import load

    load(serverapp)
