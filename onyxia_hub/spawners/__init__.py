"""Adapters that realise a launch on a machine.

- `local`: `OnyxiaLocalSpawner`, one process tree per server on this machine, each user
  under their own system account when the hub runs as root.
- `kube`: `OnyxiaSpawner`, a KubeSpawner subclass for Kubernetes.
"""
