"""`StorageKernelProvisioner`: the local provisioner, with refreshing S3 credentials.

Selected for every kernel wherever the package is installed: its server extension
(enabled by `jupyter-config/onyxia_storage.json`, installed into `<env>/etc/jupyter/
jupyter_server_config.d/`) makes it `KernelProvisionerFactory.default_provisioner_name`,
unless the operator chose another provisioner.
When the hub asks for it (`ONYXIA_STORAGE_KERNEL_REFRESH=1`, with a credentials URL), it
changes the environment of kernels in `refresh_languages` with
`kernelenv.kernel_environment`; otherwise every kernel starts as with the local
provisioner. (The hub does not select it by `JUPYTER_DEFAULT_PROVISIONER_NAME`: in an
image without this package, jupyter_client would then hide every kernel.)

    c.StorageKernelProvisioner.refresh_languages = ["python"]
"""

from __future__ import annotations

from jupyter_client.provisioning import LocalProvisioner
from traitlets import List, Unicode

from .kernelenv import kernel_environment


class StorageKernelProvisioner(LocalProvisioner):
    refresh_languages = List(
        Unicode(),
        ["python"],
        help="""Kernel languages (kernel spec `language`) whose S3 credentials refresh:
        their kernels lose the static AWS_* keys and use a `credential_process` instead.
        R's aws.s3 reads only the variables, so R is not listed.""",
    ).tag(config=True)

    def _finalize_env(self, env: dict) -> None:
        super()._finalize_env(env)
        language = getattr(self.kernel_spec, "language", "") or ""
        try:
            kernel_environment(env, language, tuple(self.refresh_languages))
        except OSError as e:  # never stop a kernel from starting: it keeps the variables
            self.log.warning("S3 credentials will not refresh in this kernel: %s", e)
