"""Onyxia Hub's user-server side of S3 storage (see README.md).

Also a Jupyter server extension, enabled by `jupyter-config/onyxia_storage.json` where
the package is installed: it makes the `onyxia-storage` kernel provisioner the default.
"""

__version__ = "0.1.0"

PROVISIONER = "onyxia-storage"
PROVISIONER_ENV = "JUPYTER_DEFAULT_PROVISIONER_NAME"


def _jupyter_server_extension_points():
    return [{"module": "onyxia_storage"}]


def _load_jupyter_server_extension(serverapp):
    import os

    from jupyter_client.provisioning import KernelProvisionerFactory

    chosen = serverapp.config.get("KernelProvisionerFactory", {}).get("default_provisioner_name")
    if chosen or os.environ.get(PROVISIONER_ENV):
        serverapp.log.info("onyxia-storage: kernels keep the provisioner chosen by the operator")
        return
    # before any kernel starts; the provisioner changes nothing unless the hub asks
    # (ONYXIA_STORAGE_KERNEL_REFRESH=1), so selecting it is harmless otherwise
    factory = KernelProvisionerFactory.instance(parent=serverapp.kernel_manager)
    factory.default_provisioner_name = PROVISIONER
