"""`OnyxiaSpawner`: the Kubernetes side of Onyxia Hub, a KubeSpawner subclass.

Registered as the `onyxia` spawner (`c.JupyterHub.spawner_class = "onyxia"`). It is
KubeSpawner itself until it realises launch plans from the catalog as pods and Secrets.
"""

from kubespawner import KubeSpawner


class OnyxiaSpawner(KubeSpawner):
    """Runs user servers as Kubernetes pods (currently KubeSpawner's behaviour)."""
