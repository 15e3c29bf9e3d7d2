"""moto's S3, IAM and STS server for the embedded store, without moto's control API.

moto serves `/moto-api/` with no authentication at all. On one machine every local
account can reach every loopback port, users' servers included, so through it anyone
could read every user's secret key (`/moto-api/data.json`) or switch IAM checks off
(`/moto-api/reset-auth`), then read any bucket. This runs moto's own WSGI application,
as `python -m moto.server` does, behind a filter that answers 403 to those paths (moto
picks its control API by that path prefix alone: `DomainDispatcherApplication`).

    python -m onyxia_hub.embedded.motostore --host 127.0.0.1 --port 9000
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

CONTROL_PREFIX = "/moto-api"


def without_control_api(app):
    """app, refusing moto's control API (any case, any number of leading slashes)."""

    def guarded(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        if ("/" + path.lstrip("/")).lower().startswith(CONTROL_PREFIX):
            body = b"moto's control API is not served by Onyxia Hub's embedded store\n"
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return guarded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs with it

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        without_control_api(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
