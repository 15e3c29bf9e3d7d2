"""The environment of a kernel that gets refreshing S3 credentials (pure, testable).

botocore (boto3, s3fs through aiobotocore) and the AWS C++ SDK (pyarrow) take credentials
from the environment before any configuration file, and environment credentials never
refresh. So, for the languages listed, the static variables are removed and
`AWS_CONFIG_FILE` names a configuration whose `credential_process` asks the hub for the
current set whenever the SDK's copy nears its expiry.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

STATIC = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
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


def aws_config(env: dict, python: str) -> str:
    command = f"{shlex.quote(python)} -m onyxia_storage.process"
    lines = ["[default]", f"credential_process = {command}"]
    if env.get("AWS_DEFAULT_REGION"):
        lines.append(f"region = {env['AWS_DEFAULT_REGION']}")
    if env.get("AWS_PATH_STYLE_ACCESS", "").lower() == "true":
        lines += ["s3 =", "    addressing_style = path"]
    return "\n".join(lines) + "\n"


def kernel_environment(
    env: dict, language: str, languages=("python",), python: str | None = None
) -> dict:
    """env changed in place (and returned) for a kernel of this language."""
    if env.get(REFRESH_ENV) != "1" or not env.get(URL_ENV):
        return env
    if (language or "").lower() not in languages:
        return env
    directory = make_private_dir(state_dir(env))
    config = directory / "aws-config"
    tmp = directory / ".aws-config.tmp"
    tmp.write_text(aws_config(env, python or sys.executable))
    tmp.replace(config)
    for name in STATIC:
        env.pop(name, None)
    env["AWS_CONFIG_FILE"] = str(config)
    env[STATE_ENV] = str(directory)
    env["AWS_SDK_LOAD_CONFIG"] = "1"
    return env
