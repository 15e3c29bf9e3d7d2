"""`StorageKernelProvisioner`: the local provisioner, with refreshing S3 credentials.

Selected for every kernel wherever the package is installed: its server extension
(enabled by `jupyter-config/onyxia_storage.json`, installed into `<env>/etc/jupyter/
jupyter_server_config.d/`) makes it `KernelProvisionerFactory.default_provisioner_name`,
unless the operator chose another provisioner.
When the hub asks for it (`ONYXIA_STORAGE_KERNEL_REFRESH=1`, with a credentials URL),
IPython kernels of the languages in `refresh_languages` start with the extension that
keeps their S3 variables current (`refresh.py`, through `kernelenv`); otherwise every
kernel starts as with the local provisioner. (The hub does not select it by
`JUPYTER_DEFAULT_PROVISIONER_NAME`: in an image without this package, jupyter_client
would then hide every kernel.)

    c.StorageKernelProvisioner.refresh_languages = ["python"]
"""

from __future__ import annotations

from jupyter_client.provisioning import LocalProvisioner
from traitlets import List, Unicode

from .kernelenv import kernel_command, kernel_environment, wanted


class StorageKernelProvisioner(LocalProvisioner):
    refresh_languages = List(
        Unicode(),
        ["python"],
        help="""Kernel languages (kernel spec `language`) whose S3 variables are kept
        current: their IPython kernels load `onyxia_storage.refresh`, which rewrites
        `os.environ` before a cell when the set nears its expiry. Only IPython kernels can
        (other kernels of these languages start unchanged); R's kernel keeps the
        variables of the launch.""",
    ).tag(config=True)

    async def pre_launch(self, **kwargs):
        kwargs = await super().pre_launch(**kwargs)
        language = getattr(self.kernel_spec, "language", "") or ""
        if wanted(kwargs.get("env") or {}, language, tuple(self.refresh_languages)):
            kwargs["cmd"] = kernel_command(kwargs["cmd"])
        return kwargs

    def _finalize_env(self, env: dict) -> None:
        super()._finalize_env(env)
        language = getattr(self.kernel_spec, "language", "") or ""
        try:
            kernel_environment(env, language, tuple(self.refresh_languages))
        except OSError as e:  # never stop a kernel from starting: it keeps the variables
            self.log.warning("S3 credentials will not refresh in this kernel: %s", e)
