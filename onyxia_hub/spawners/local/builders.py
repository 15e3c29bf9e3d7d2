"""Pure builders for one server on this machine: plain values in, plain values out.

`OnyxiaLocalSpawner._realise` (`spawner.py`) only performs the I/O they describe (the
account, the runtime directory, the files, the cgroup, `Popen`), as `OnyxiaSpawner` does
with `k8s_objects.py`. Each is tested against literal values in
`tests/test_local_builders.py`.

- `file_destinations`: where each of the plan's files goes: public ones into the home,
  secret ones into the server's memory-backed secrets directory;
- `server_environment`: the mixin's layers (`environment.assemble`, with the service's
  `local.environment`), then what only this adapter adds: the process tag, the runtime
  directory, the GPUs the server holds;
- `server_argv`, `with_init_runner`, `launch_command`: what runs (in the service's
  environment, `software`), after the init scripts when there are some (`onyxia-init`),
  and through which launcher (`enter.py`: join the cgroup, drop root) when there is a
  cgroup or an account to become;
- `limits_summary`: the limits in the words of the progress page;
- `popen_options`: how the process starts (new session, closed stdin, umask 077, home).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from subprocess import DEVNULL

from ...plan import LaunchPlan, PlanFile, Resources
from ...quantities import format_cpu, human_memory
from ..environment import assemble
from . import enter
from .processes import TAG
from .software import Software

GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
INIT_STATUS_VARIABLE = "ONYXIA_INIT_STATUS_FILE"  # extensions/onyxia-git/onyxia_git/init.py
RUNTIME_VARIABLES = ("JUPYTER_RUNTIME_DIR", "XDG_RUNTIME_DIR")


@dataclass(frozen=True)
class FileDestination:
    """One plan file to write: `path` (relative) under `base`, with its mode."""

    base: str
    path: str
    content: str
    mode: int
    secret: bool


def secrets_directory(runtime_dir: str) -> str:
    """The server's secrets directory: inside its runtime directory (memory, 0700)."""
    return os.path.join(runtime_dir, "secrets")


def file_destinations(
    files: Iterable[PlanFile], home: str, secrets_dir: str
) -> tuple[FileDestination, ...]:
    """Public files into the home, secret ones into secrets_dir (never the home: it is on
    disk, backed up, and outlives the server)."""
    return tuple(
        FileDestination(secrets_dir if f.secret else home, f.path, f.content, f.mode, f.secret)
        for f in files
    )


def server_environment(
    base: Mapping[str, object],
    plan: LaunchPlan,
    *,
    server_id: str,
    runtime_dir: str,
    secrets_dir: str,
    gpus: Sequence[str],
) -> dict[str, str]:
    """Every variable of the server's process (secrets included: on one machine the
    process's environment is readable by its own account and root only)."""
    env = assemble(
        base, plan, secrets_dir=secrets_dir, adapter_environment=plan.local_environment
    ).variables
    env[TAG] = server_id
    for name in RUNTIME_VARIABLES:
        env[name] = runtime_dir
    for name in GPU_VARIABLES:  # empty: no GPU, whatever the machine has
        env[name] = ",".join(gpus)
    if plan.init_timeout is not None:
        env[INIT_STATUS_VARIABLE] = init_status_file(runtime_dir)
    return env


def init_status_file(runtime_dir: str) -> str:
    """Where `onyxia-init` says how the init scripts went: the server's runtime
    directory (its account's, private), which the spawner reads for the progress page."""
    return os.path.join(runtime_dir, "init-status.json")


def with_init_runner(argv: Sequence[str], plan: LaunchPlan, software: Software) -> list[str]:
    """argv, after the plan's init scripts (`onyxia-init` of the service's environment,
    without user site-packages) when it has some; as it is otherwise."""
    if plan.init_timeout is None:
        return list(argv)
    return [software.python, "-s", "-P", "-m", "onyxia_git.init", "--", *argv]


def server_argv(
    plan: LaunchPlan, software: Software, cmd: Sequence[str], args: Sequence[str]
) -> list[str]:
    """The service's command (catalog `local.command`), else the spawner's `cmd`, with
    the spawner's arguments. `cmd` left at JupyterHub's default (`jupyterhub-singleuser`)
    is the single-user server of the service's environment, without user site-packages
    (`Software.server_command`)."""
    if plan.command:
        command = plan.command
    elif list(cmd) == ["jupyterhub-singleuser"]:
        command = software.server_command
    else:
        command = cmd
    return [*command, *args]


def launch_command(
    argv: Sequence[str],
    procs_files: Sequence[str] | None,
    uid: int | None,
    gid: int | None,
    python: str = sys.executable,
) -> list[str]:
    """argv, through the launcher when it must join a cgroup (procs_files not None) or
    become the user's account (uid); as it is otherwise."""
    if procs_files is None and uid is None:
        return list(argv)
    return enter.command(list(argv), tuple(procs_files or ()), uid, gid, python=python)


def limits_summary(resources: Resources) -> str:
    """'2 CPU, 4 GiB', as the progress page says it."""
    return f"{format_cpu(resources.cpu_limit)} CPU, {human_memory(resources.memory_limit)}"


def popen_options(env: Mapping[str, str], home: str) -> dict:
    """Keyword arguments of `Popen` for the server (the output is the caller's)."""
    return dict(
        env=dict(env),
        cwd=home,
        start_new_session=True,
        stdin=DEVNULL,
        umask=0o077,
        close_fds=True,
    )
