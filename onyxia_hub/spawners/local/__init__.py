"""The one-machine spawner and what it needs from the system.

- `spawner`: `OnyxiaLocalSpawner`, a launch plan realised as local processes.
- `accounts`: one unprivileged system account and private home per hub user.
- `homefiles`: writing the plan's files into a home without following users' links.
- `availability`: which services can run here (programs, kernels, modules, GPUs).
- `limits` and `enter`: memory and CPU limits (cgroups, or a watchdog), and the
  launcher that joins a server's cgroup before dropping root.
- `gpus`: GPU discovery and one-holder-per-device allocation.
- `machine`: what all servers of one hub share (limits backend, watchdog, GPU pool).
- `processes`: finding and ending every process of one server, kernels included.
"""

from .spawner import OnyxiaLocalSpawner

__all__ = ["OnyxiaLocalSpawner"]
