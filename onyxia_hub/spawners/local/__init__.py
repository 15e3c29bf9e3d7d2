"""The one-machine spawner and what it needs from the system.

- `spawner`: `OnyxiaLocalSpawner`, a launch plan realised as local processes.
- `accounts`: one unprivileged system account and private home per hub user.
- `homefiles`: writing the plan's files into a home without following users' links.
- `availability`: which services can run here (programs, kernels, modules, GPUs).
- `limits`, `watchdog` and `enter`: memory and CPU limits (cgroups, or a watchdog), and the
  launcher that joins a server's cgroup before dropping root.
- `gpus`: GPU discovery and one-holder-per-device allocation.
- `machine`: what all servers of one hub share (limits backend, watchdog, GPU pool).
- `processes`: finding and ending every process of one server, kernels included.
"""

__all__ = ["OnyxiaLocalSpawner"]


def __getattr__(name):
    # Imported on first use: the launcher (`python -m onyxia_hub.spawners.local.enter`)
    # runs as root at every server start and must not import JupyterHub.
    if name == "OnyxiaLocalSpawner":
        from .spawner import OnyxiaLocalSpawner

        return OnyxiaLocalSpawner
    raise AttributeError(name)
