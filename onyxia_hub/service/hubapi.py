"""The hub's REST API as services use it: with the caller's token, or the service's own.

A user's own servers are read, started and stopped with the token the user authenticated
with (the service's OAuth token in their cookie, limited by the service's
`oauth_client_allowed_scopes`, e.g. the portal's `read:servers!user`,
`start:servers!user` and `delete:servers!user`; or the API token they sent): the hub
checks every call, so a service can never act on someone else's servers for them. The
service's own token (its role: the portal's `onyxia-portal` has `list:users`,
`read:servers`, `delete:servers`) is used only after the service checked the caller may.

Errors come back as `HubAPIError(status, message)` with the hub's own message (a refused
launch says why: quota, bad option, service unavailable).
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

MAX_MESSAGE = 500
log = logging.getLogger("onyxia_hub.portal")


class HubAPIError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message[:MAX_MESSAGE]


def _message(body: bytes, status: int) -> str:
    try:
        data = json.loads(body or b"{}")
        message = data.get("message") or data.get("error") or ""
    except (ValueError, AttributeError):
        message = ""
    return str(message) or f"the hub answered HTTP {status}"


def server_path(user: str, server: str = "") -> str:
    """The hub API path of a user's server (`/users/u/server` for the default one)."""
    base = f"/users/{quote(user, safe='')}"
    return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"


class HubAPI:
    def __init__(self, api_url: str, service_token: str, timeout: float = 30):
        self.api_url = api_url.rstrip("/")
        self.service_token = service_token
        self.timeout = timeout
        self._pending: set[asyncio.Future] = set()  # starts still waiting for the hub

    async def request(self, method: str, path: str, token: str, body=None, params=None):
        """The JSON answer of the hub (None for an empty one); HubAPIError otherwise."""
        url = self.api_url + path + (("?" + urlencode(params)) if params else "")
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            body = e.response.body if e.response is not None else b""
            status = e.code if e.code != 599 else 502
            raise HubAPIError(status, _message(body, e.code)) from None
        except OSError as e:
            raise HubAPIError(502, f"the hub cannot be reached: {e.strerror or e}") from None
        return json.loads(response.body) if response.body else None

    # -- as the user ---------------------------------------------------------------------
    async def user_servers(self, token: str, user: str) -> dict[str, dict]:
        """The user's servers, stopped named ones included, keyed by name."""
        model = await self.request(
            "GET", f"/users/{quote(user, safe='')}", token, params={"include_stopped_servers": 1}
        )
        return model.get("servers") or {}

    async def start(
        self, token: str, user: str, server: str, options: dict | None, wait: float = 1.0
    ) -> None:
        """Ask the hub to start the server; wait at most `wait` seconds for its answer.

        The hub answers a start once the server is up, or after its `slow_spawn_timeout`
        (10 s): a refusal (bad option, quota, unavailable service) comes back within
        milliseconds and is raised here; a start still going on after `wait` goes on in
        the background, and its page shows its progress.
        """
        body = {"user_options": options} if options is not None else None
        task = asyncio.ensure_future(self.request("POST", server_path(user, server), token, body))
        done, _ = await asyncio.wait({task}, timeout=wait)
        if task in done:
            task.result()
            return
        self._pending.add(task)
        task.add_done_callback(self._started_late)

    def _started_late(self, task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("A start finished with: %s", task.exception())

    async def stop(self, token: str, user: str, server: str, *, remove: bool = False) -> None:
        body = {"remove": True} if remove else None
        await self.request("DELETE", server_path(user, server), token, body=body)

    async def progress(self, token: str, user: str, server: str, wait: float = 1.0) -> list[dict]:
        """The progress events a starting server sent so far (the stream replays them all
        from the first), read for `wait` seconds at most."""
        events: list[dict] = []
        buffer = bytearray()

        def on_chunk(chunk: bytes) -> None:
            buffer.extend(chunk)
            while b"\n\n" in buffer:
                block, _, rest = bytes(buffer).partition(b"\n\n")
                buffer[:] = rest
                for line in block.splitlines():
                    if line.startswith(b"data:"):
                        try:
                            events.append(json.loads(line[5:]))
                        except ValueError:
                            pass

        request = HTTPRequest(
            self.api_url + server_path(user, server) + "/progress",
            headers={"Authorization": f"token {token}"},
            streaming_callback=on_chunk,
            request_timeout=wait,
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.code != 599:  # 599: our own time limit, the events read so far are good
                body = e.response.body if e.response else b""
                raise HubAPIError(e.code, _message(body, e.code)) from None
        return [e for e in events if isinstance(e, dict)]

    # -- as the service (admin view only) ------------------------------------------------
    async def active_users(self, page: int = 200) -> list[dict]:
        """Every user with a server starting, running or stopping, with their servers."""
        users, offset = [], 0
        while True:
            batch = await self.request(
                "GET",
                "/users",
                self.service_token,
                params={"state": "active", "offset": offset, "limit": page},
            )
            users += batch or []
            if not batch or len(batch) < page:
                return users
            offset += len(batch)

    async def stop_any(self, user: str, server: str) -> None:
        await self.request("DELETE", server_path(user, server), self.service_token)
