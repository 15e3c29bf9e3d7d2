"""The hub process of the embedded default: JupyterHub configured from one `Config` object."""

from __future__ import annotations

import logging
import os

from jupyterhub.app import JupyterHub
from tornado.ioloop import IOLoop
from traitlets.config import Config

from ..errors import OnyxiaHubError
from .state import StateDir


class OnyxiaHub(JupyterHub):
    """JupyterHub configured from a `Config` object only, logging to a file as well."""

    log_file = None  # set before initialize()

    def load_config_file(self, *args, **kwargs):
        # Everything comes from the Config we were given (operator file included):
        # never pick up a stray jupyterhub_config.py from the working directory.
        return

    _shutting_down = False

    async def shutdown_cancel_tasks(self, sig=None):
        # A second Ctrl-C (or SIGTERM from both a supervisor and its wrapper) would start
        # a second clean-up that cancels the first one half-way, leaving servers behind.
        if self._shutting_down:
            self.log.warning("Already stopping: waiting for user servers to end")
            return
        self._shutting_down = True
        await super().shutdown_cancel_tasks(sig)

    def init_logging(self):
        if self.log_file is not None:
            handler = logging.FileHandler(self.log_file, encoding="utf8")
            os.chmod(self.log_file, 0o600)
            self.extra_log_handlers.append(handler)
        super().init_logging()


def run_hub(config: Config, state: StateDir, banner: str) -> int:
    OnyxiaHub.log_file = str(state.hub_log)
    app = OnyxiaHub.instance(config=config)
    app._init_asyncio_patch()
    loop = IOLoop(make_current=False)

    async def boot():
        await app.initialize([])
        await app.start()
        print(banner, flush=True)

    try:
        loop.run_sync(boot)
    except SystemExit as e:
        loop.close()
        raise OnyxiaHubError(
            f"the hub stopped while starting (exit code {e.code})",
            f"see the messages above and {state.hub_log}",
        ) from None
    except OnyxiaHubError:
        loop.close()
        raise
    except Exception as e:
        app.log.debug("Start-up failure", exc_info=True)
        loop.close()
        raise OnyxiaHubError(
            f"the hub could not start: {type(e).__name__}: {e}", f"see {state.hub_log} for details"
        ) from None
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
    return 0
