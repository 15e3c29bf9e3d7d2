"""Onyxia Hub's user-server side of S3 storage (see README.md).

Also a Jupyter server extension, enabled by `jupyter-config/onyxia_storage.json` where
the package is installed: it makes the `onyxia-storage` kernel provisioner the default,
and, when the hub asks for refreshing credentials, gives each new terminal the current
set (terminals.py).
"""

__version__ = "0.1.0"

PROVISIONER = "onyxia-storage"
PROVISIONER_ENV = "JUPYTER_DEFAULT_PROVISIONER_NAME"


def _jupyter_server_extension_points():
    return [{"module": "onyxia_storage"}]


def _refresh_terminals(serverapp) -> None:
    """Hook the terminal manager once it exists (jupyter_server_terminals may load after
    this extension: then on the event loop's first turn)."""
    from tornado.ioloop import IOLoop

    from .terminals import refresh_new_terminals

    def hook() -> bool:
        manager = serverapp.web_app.settings.get("terminal_manager")
        if manager is None or getattr(manager, "_onyxia_storage", False):
            return manager is not None
        refresh_new_terminals(manager)
        manager._onyxia_storage = True
        serverapp.log.info("onyxia-storage: new terminals get the current S3 credentials")
        return True

    if not hook():
        IOLoop.current().add_callback(hook)


def _load_jupyter_server_extension(serverapp):
    import os

    from jupyter_client.provisioning import KernelProvisionerFactory

    from .kernelenv import requested

    if requested(os.environ):
        _refresh_terminals(serverapp)
    chosen = serverapp.config.get("KernelProvisionerFactory", {}).get("default_provisioner_name")
    if chosen or os.environ.get(PROVISIONER_ENV):
        serverapp.log.info("onyxia-storage: kernels keep the provisioner chosen by the operator")
        return
    # before any kernel starts; the provisioner changes nothing unless the hub asks
    # (ONYXIA_STORAGE_KERNEL_REFRESH=1), so selecting it is harmless otherwise
    factory = KernelProvisionerFactory.instance(parent=serverapp.kernel_manager)
    factory.default_provisioner_name = PROVISIONER
