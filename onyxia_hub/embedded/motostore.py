"""moto's S3, IAM and STS server for the embedded store, without moto's control API.

moto serves `/moto-api/` with no authentication at all. On one machine every local
account can reach every loopback port, users' servers included, so through it anyone
could read every user's secret key (`/moto-api/data.json`) or switch IAM checks off
(`/moto-api/reset-auth`), then read any bucket. This runs moto's own WSGI application,
as `python -m moto.server` does, behind filters:

- moto's control API gets 403 (moto picks it by that path prefix alone:
  `DomainDispatcherApplication`);
- a request signed with session credentials (STS `AssumeRole`) past their expiry gets
  403 `ExpiredToken`, as S3 answers: moto records each session's expiry but never checks
  it, and the hub's rotation is only proven if an old set stops working when it expires.
  One whose role was deleted (a revoked user) gets 403 `AccessDenied`, where moto would
  answer 500. Sessions expired for an hour are forgotten.

With `--certfile` and `--keyfile` it serves HTTPS (the hub makes both, and the CA that
signs them, under its state directory: `embedded/tls.py`).

    python -m onyxia_hub.embedded.motostore --host 127.0.0.1 --port 9000 \
        --certfile store.pem --keyfile store-key.pem
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import sys
import threading

CONTROL_PREFIX = "/moto-api"
FORGET_AFTER = datetime.timedelta(hours=1)
_KEY_ID = re.compile(r"Credential=([A-Za-z0-9]+)/")


def without_control_api(app):
    """app, refusing moto's control API (any case, any number of leading slashes)."""

    def guarded(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        if ("/" + path.lstrip("/")).lower().startswith(CONTROL_PREFIX):
            body = b"moto's control API is not served by Onyxia Hub's embedded store\n"
            return _forbidden(start_response, "text/plain", body)
        return app(environ, start_response)

    return guarded


def _forbidden(start_response, content_type: str, body: bytes) -> list[bytes]:
    start_response(
        "403 Forbidden", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    )
    return [body]


def _key_id(environ) -> str | None:
    """The access key id a request is signed with (header or presigned query)."""
    found = _KEY_ID.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:
        query = environ.get("QUERY_STRING", "")
        found = re.search(r"X-Amz-Credential=([A-Za-z0-9]+)(?:/|%2F)", query, re.IGNORECASE)
    return found.group(1) if found else None


def _session_refusals(
    now: datetime.datetime, roles_seen: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """{access key id: (S3 error code, message)} for moto's STS sessions that S3 would
    refuse: expired ones, and those whose role was deleted (moto answers 500 for them),
    even if a role of the same name was made since (moto grants by name: a revoked
    user's sessions would come back). `roles_seen` keeps, for each session, the id of
    the role it was first seen with; every signed request passes here, the hub's
    DeleteRole included, so a session is always seen before its role can change.
    Sessions expired for longer than FORGET_AFTER are dropped from moto's memory."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    refused: dict[str, tuple[str, str]] = {}
    for account_id, account in list(sts_backends.items()):
        for partition, backend in list(account.items()):
            roles = backend.assumed_roles
            for stale in [r for r in roles if r.expiration + FORGET_AFTER <= now]:
                roles.remove(stale)
                roles_seen.pop(stale.access_key_id, None)
            try:
                existing = {r.arn: r.id for r in iam_backends[account_id][partition].roles.values()}
            except KeyError:
                existing = {}
            for role in roles:
                current = existing.get(role.role_arn)
                first = roles_seen.setdefault(role.access_key_id, current or "")
                if role.expiration <= now:
                    refused[role.access_key_id] = (
                        "ExpiredToken",
                        "The provided token has expired.",
                    )
                elif current is None or current != first:
                    refused[role.access_key_id] = (
                        "AccessDenied",
                        "The role of this session was deleted: its credentials were revoked.",
                    )
    return refused


def refusing_expired_sessions(app, clock=None):
    """app, answering 403 to requests signed with expired or revoked session keys."""
    clock = clock or (lambda: datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    lock = threading.Lock()
    roles_seen: dict[str, str] = {}

    def checked(environ, start_response):
        key_id = _key_id(environ)
        if key_id and key_id.startswith("ASIA"):  # moto's (and AWS's) session keys
            with lock:
                refusal = _session_refusals(clock(), roles_seen).get(key_id)
            if refusal is not None:
                code, message = refusal
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                ).encode()
                return _forbidden(start_response, "application/xml", body)
        return app(environ, start_response)

    return checked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="and this private key (PEM)")
    args = parser.parse_args(argv)
    if bool(args.certfile) != bool(args.keyfile):
        parser.error("--certfile and --keyfile go together")
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
        without_control_api(refusing_expired_sessions(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
        ssl_context=(args.certfile, args.keyfile) if args.certfile else None,
    )


if __name__ == "__main__":
    main()
