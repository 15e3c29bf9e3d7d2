"""The environment and command of a kernel whose S3 credentials refresh (pure, testable).

The kernel keeps Onyxia's variables, as SSP Cloud's do (code reads
`os.environ["AWS_ACCESS_KEY_ID"]`), with `AWS_CREDENTIAL_EXPIRATION`; an IPython
extension (`refresh.py`) rewrites them before expiry, and botocore re-reads them. Here:

- `kernel_environment`: a private, memory-backed state directory for the credentials
  cache (`ONYXIA_STORAGE_STATE_DIR`), and an `AWS_CONFIG_FILE` with the region and the
  addressing style (`AWS_PATH_STYLE_ACCESS` has no botocore equivalent);
- `kernel_command`: the IPython kernel's command with `--ext=onyxia_storage.refresh`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

EXTENSION_ARG = "--ext=onyxia_storage.refresh"  # IPython's InteractiveShellApp.extra_extensions
URL_ENV = "ONYXIA_STORAGE_CREDENTIALS_URL"
REFRESH_ENV = "ONYXIA_STORAGE_KERNEL_REFRESH"  # "1": the hub wants kernels refreshed
STATE_ENV = "ONYXIA_STORAGE_STATE_DIR"


def state_dir(env: dict | None = None) -> Path:
    """A private, memory-backed directory for the config and the helper's cache: never
    the home (it would keep secrets on disk)."""
    env = os.environ if env is None else env
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    base = env.get("XDG_RUNTIME_DIR") or env.get("JUPYTER_RUNTIME_DIR")
    if not base:
        shm = "/dev/shm"  # noqa: S108 - a private subdirectory is made below
        base = shm if os.path.isdir(shm) else tempfile.gettempdir()
        return Path(base) / f"onyxia-storage-{os.getuid()}"
    return Path(base) / "onyxia-storage"


def make_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != os.getuid():
        raise RuntimeError(f"{path} is not a private directory of this account")
    path.chmod(0o700)
    return path


def aws_config(env: dict) -> str:
    lines = ["[default]"]
    if env.get("AWS_DEFAULT_REGION"):
        lines.append(f"region = {env['AWS_DEFAULT_REGION']}")
    if env.get("AWS_PATH_STYLE_ACCESS", "").lower() == "true":
        lines += ["s3 =", "    addressing_style = path"]
    return "\n".join(lines) + "\n"


def requested(env) -> bool:
    """Whether the hub asks for refreshing credentials (and says where to get them)."""
    return env.get(REFRESH_ENV) == "1" and bool(env.get(URL_ENV))


def wanted(env: dict, language: str, languages=("python",)) -> bool:
    """Whether a kernel of this language gets refreshing credentials."""
    return requested(env) and (language or "").lower() in languages


def kernel_command(cmd: list[str]) -> list[str]:
    """cmd with the refresh extension loaded, if it starts an IPython kernel (ipykernel's
    launcher, as every Python kernel spec does); other commands unchanged."""
    if not any("ipykernel" in part for part in cmd[:4]) or EXTENSION_ARG in cmd:
        return list(cmd)
    return [*cmd, EXTENSION_ARG]


def kernel_environment(env: dict, language: str, languages=("python",)) -> dict:
    """env changed in place (and returned) for a kernel of this language."""
    if not wanted(env, language, languages):
        return env
    directory = make_private_dir(state_dir(env))
    config = directory / "aws-config"
    tmp = directory / ".aws-config.tmp"
    tmp.write_text(aws_config(env))
    tmp.replace(config)
    env["AWS_CONFIG_FILE"] = str(config)
    env[STATE_ENV] = str(directory)
    env["AWS_SDK_LOAD_CONFIG"] = "1"
    return env
