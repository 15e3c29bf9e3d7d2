"""The one-machine spawner and the two things it needs from the system.

- `accounts`: one unprivileged system account and private home per hub user.
- `processes`: finding and ending every process of one server, kernels included.
"""

from .spawner import OnyxiaLocalSpawner

__all__ = ["OnyxiaLocalSpawner"]
