"""Running code in a real kernel of a user's server, through the hub's proxy, as JupyterLab does.

A kernel is created with the Jupyter Server REST API (`POST /user/<name>/api/kernels`), code is
sent over the kernel's websocket (`/api/kernels/<id>/channels`) as a Jupyter messaging protocol
`execute_request` on the shell channel, and the iopub replies for that request are collected
until the kernel reports `idle`:

    with Kernel(admin, "alice") as kernel:          # a token for alice is made with admin's session
        assert kernel.run("x = 21").ok
        assert kernel.run("x * 2").result == "42"
        assert kernel.run("print(x)").stdout == "21\\n"

    run_code(client, "alice", "1/0").error.ename    # "ZeroDivisionError" (one kernel, then deleted)

Any kernel works (`kernel_name="ir"` for R). A kernel that dies while running code (killed, out of
memory) raises `KernelDied` as soon as the server says so (within its 3 s heartbeat), never a
timeout; the server then restarts it, with a fresh state, and the next `run()` waits for that and
reconnects. Code still running after `timeout` raises `KernelTimeout`, once the kernel has been
interrupted (so the next `run()` works).

The websocket is websocket-client's synchronous one (a dependency of jupyter_server), so the
helpers work from plain test functions, repeatedly, from any thread, even under a running loop.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

import requests
import websocket

from tests.helpers.client import HubClient

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# iopub states with which the server (not the kernel) announces that the kernel process is gone
DEATH_STATES = {"restarting", "autorestarting", "dead"}


class KernelError(RuntimeError):
    """The kernel could not be created or reached."""


class KernelDied(KernelError):
    """The kernel process died (or its websocket closed) before the code finished.

    `execution`: what the code had output until then (when raised by `run()`)."""

    execution: Execution | None = None


class KernelTimeout(TimeoutError):
    """The code was still running after its timeout (the kernel was interrupted)."""


@dataclass(frozen=True)
class ExecutionError:
    ename: str
    evalue: str
    traceback: list[str]

    @property
    def text(self) -> str:
        """The traceback as a terminal shows it, without colour codes."""
        return ANSI.sub("", "\n".join(self.traceback))


@dataclass
class Execution:
    """What one `execute_request` produced.

    stdout / stderr: the `stream` outputs, concatenated; result: the `text/plain` of the
    `execute_result` (the value of the last expression), None if there was none; displays: the
    `text/plain` of each `display_data`; error: the `error` output, None if the code succeeded.
    """

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: ExecutionError | None = None
    displays: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def check(self) -> Execution:
        """self if the code succeeded, else AssertionError with the kernel's traceback."""
        if self.error is not None:
            raise AssertionError(
                f"code failed with {self.error.ename}: {self.error.evalue}\n{self.error.text}"
            )
        return self


def _short(code: str, limit: int = 200) -> str:
    code = code.strip()
    return repr(code if len(code) <= limit else code[:limit] + "...")


class Kernel:
    """One kernel on `user`'s server `server` ("" for the default one): created on enter
    (or `start()`), deleted on exit (or `shutdown()`); `run()` may be called any number of times.

    client: a `HubClient` (its base URL is used, and if no token is given a new one is created
    for `user` with its session: the user's own client or an admin's) or the hub's base URL.
    """

    def __init__(
        self,
        client: HubClient | str,
        user: str,
        *,
        token: str | None = None,
        server: str = "",
        kernel_name: str = "python3",
        start_timeout: float = 60,
    ):
        base_url = client if isinstance(client, str) else client.base_url
        if token is None:
            if isinstance(client, str):
                raise ValueError("a token is needed when the client is only a URL")
            token = client.new_token(user)
        self.token = token
        self.user = user
        self.server = server
        self.kernel_name = kernel_name
        self.start_timeout = start_timeout
        prefix = f"/user/{quote(user, safe='')}/"
        if server:
            prefix += f"{quote(server, safe='')}/"
        self.api_url = base_url.rstrip("/") + prefix + "api"
        self.id: str | None = None
        self.session_id = uuid.uuid4().hex
        self._ws: websocket.WebSocket | None = None
        self._died = False

    def __repr__(self) -> str:
        return f"<Kernel {self.kernel_name} {self.id} of {self.label}>"

    @property
    def label(self) -> str:
        return f"{self.user}/{self.server}" if self.server else self.user

    # -- life cycle ------------------------------------------------------------------
    def __enter__(self) -> Kernel:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _request(self, method: str, path: str, timeout: float | None = None, **kwargs):
        headers = {"Authorization": f"token {self.token}"}
        timeout = self.start_timeout if timeout is None else timeout
        return requests.request(
            method, self.api_url + path, headers=headers, timeout=timeout, **kwargs
        )

    def start(self) -> Kernel:
        r = self._request("POST", "/kernels", json={"name": self.kernel_name})
        if r.status_code != 201:
            raise KernelError(
                f"could not create a {self.kernel_name} kernel on {self.label}'s server: "
                f"HTTP {r.status_code} {r.text[:500]}"
            )
        self.id = r.json()["id"]
        self._connect()
        return self

    def _connect(self) -> None:
        ws_url = "ws" + self.api_url.removeprefix("http")
        ws_url += f"/kernels/{self.id}/channels?session_id={self.session_id}"
        try:
            self._ws = websocket.create_connection(
                ws_url,
                header=[f"Authorization: token {self.token}"],
                timeout=self.start_timeout,
            )
        except (OSError, websocket.WebSocketException) as e:
            raise KernelError(f"could not open the websocket of {self!r}: {e}") from e

    def _reconnect(self) -> None:
        """After a death: a new websocket to the restarted kernel (the old one's channels still
        point at the dead process), checked with execute round trips until one is answered on
        both channels. A kernel_info reply can come while the restarted kernel's shell is not
        serving requests yet, and jupyter_server skips its iopub "nudge" for a kernel it still
        believes busy (the one killed mid-cell), so a shell reply alone does not prove that the
        next run()'s outputs and idle status will reach this websocket."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            r = self._request("GET", f"/kernels/{self.id}", timeout=30)
            if r.status_code == 404:
                raise KernelDied(f"{self!r} is gone: the server did not restart it")
            if r.json().get("execution_state") in DEATH_STATES and time.monotonic() < deadline:
                time.sleep(0.3)  # still restarting: a request sent now may be lost
                continue
            self._close_websocket()
            self.session_id = uuid.uuid4().hex
            try:
                self._connect()
                while time.monotonic() < deadline:
                    if self._heard_on_both_channels(min(2.0, deadline - time.monotonic())):
                        self._died = False
                        return
                raise KernelError("no answer on both of its channels")
            except (KernelError, OSError, websocket.WebSocketException) as e:
                if time.monotonic() > deadline:
                    raise KernelDied(f"{self!r} did not come back after its death: {e}") from e
                time.sleep(0.5)

    def _heard_on_both_channels(self, wait: float) -> bool:
        """Send an empty silent execute_request; True once its shell reply and its iopub idle
        status have both come back within wait seconds."""
        msg = self._message(
            "execute_request",
            {
                "code": "",
                "silent": True,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
        )
        msg_id = msg["header"]["msg_id"]
        self._ws.send(json.dumps(msg))
        until = time.monotonic() + max(wait, 0.1)
        replied = idle = False
        while not (replied and idle):
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            self._ws.settimeout(remaining)
            try:
                frame = self._ws.recv()
            except websocket.WebSocketTimeoutException:
                return False
            if frame == "":
                raise KernelError("websocket closed")
            if not isinstance(frame, str):
                continue
            reply = json.loads(frame)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["header"]["msg_type"]
            replied = replied or kind == "execute_reply"
            idle = idle or (
                kind == "status" and reply.get("content", {}).get("execution_state") == "idle"
            )
        return True

    def _close_websocket(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close(timeout=1)
            except (OSError, websocket.WebSocketException):
                pass
            self._ws = None

    def shutdown(self) -> None:
        """Close the websocket and delete the kernel (quietly if the server is already gone)."""
        self._close_websocket()
        if self.id is not None:
            try:
                self._request("DELETE", f"/kernels/{self.id}", timeout=30)
            except requests.RequestException:
                pass
            self.id = None

    def interrupt(self) -> None:
        self._request("POST", f"/kernels/{self.id}/interrupt", timeout=30)

    def state(self) -> str | None:
        """The kernel's execution state as the server sees it (idle, busy, starting, dead...)."""
        r = self._request("GET", f"/kernels/{self.id}", timeout=30)
        return r.json().get("execution_state") if r.status_code == 200 else None

    # -- execution -------------------------------------------------------------------
    def _message(self, msg_type: str, content: dict, channel: str = "shell") -> dict:
        return {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": msg_type,
                "username": self.user,
                "session": self.session_id,
                "date": datetime.now(UTC).isoformat(),
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "buffers": [],
            "channel": channel,
        }

    def run(self, code: str, timeout: float = 60) -> Execution:
        """Execute code and wait for the kernel to be idle again; see `Execution`."""
        if self._ws is None:
            raise KernelError(f"{self!r} is not started (use it as a context manager)")
        if self._died:
            self._reconnect()
        msg = self._message(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        msg_id = msg["header"]["msg_id"]
        where = f"{_short(code)} in {self!r}"
        try:
            self._ws.send(json.dumps(msg))
        except (OSError, websocket.WebSocketException) as e:
            raise KernelDied(f"websocket closed before running {where}: {e}") from e

        execution = Execution()
        try:
            self._collect(msg_id, execution, time.monotonic() + timeout, where)
        except KernelDied as e:
            self._died = True
            e.execution = execution
            raise
        except _Deadline:
            # interrupt, and wait for the interrupted code to end: requests sent before that
            # would be aborted by the kernel (stop_on_error), so the next run() could not work
            try:
                self.interrupt()
                self._collect(msg_id, Execution(), time.monotonic() + 10, where)
            except (_Deadline, requests.RequestException):
                pass
            raise KernelTimeout(
                f"{where} still running after {timeout}s (kernel interrupted)"
            ) from None
        return execution

    def _collect(self, msg_id: str, execution: Execution, deadline: float, where: str) -> None:
        """Fill execution with the outputs of msg_id until the kernel is idle and has replied."""
        idle = replied = False
        while not (idle and replied):
            if idle:  # the reply (on another channel) may come just after: not for long
                deadline = min(deadline, time.monotonic() + 2)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if idle:
                    return
                raise _Deadline
            self._ws.settimeout(remaining)
            try:
                frame = self._ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException) as e:
                raise KernelDied(f"websocket closed while running {where}: {e}") from e
            if frame == "":  # a close frame
                raise KernelDied(f"websocket closed by the server while running {where}")
            if isinstance(frame, bytes):  # binary frames carry buffers, never our outputs
                continue
            reply = json.loads(frame)
            msg_type = reply["header"]["msg_type"]
            content = reply.get("content", {})
            if msg_type == "status" and content.get("execution_state") in DEATH_STATES:
                raise KernelDied(
                    f"kernel died while running {where} (status {content['execution_state']!r})"
                )
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply.get("channel") == "shell" and msg_type == "execute_reply":
                replied = True
                if content.get("status") == "aborted" and execution.error is None:
                    execution.error = ExecutionError(
                        "Aborted", "the kernel aborted this request (after an earlier error)", []
                    )
            elif reply.get("channel") != "iopub":
                continue
            elif msg_type == "stream":
                if content.get("name") == "stderr":
                    execution.stderr += content.get("text", "")
                else:
                    execution.stdout += content.get("text", "")
            elif msg_type == "execute_result":
                execution.result = content.get("data", {}).get("text/plain")
            elif msg_type == "display_data":
                execution.displays.append(content.get("data", {}).get("text/plain", ""))
            elif msg_type == "error":
                execution.error = ExecutionError(
                    content.get("ename", ""),
                    content.get("evalue", ""),
                    content.get("traceback", []),
                )
            elif msg_type == "status" and content.get("execution_state") == "idle":
                idle = True


class _Deadline(Exception):
    pass


def run_code(
    client: HubClient | str,
    user: str,
    code: str,
    *,
    token: str | None = None,
    server: str = "",
    kernel_name: str = "python3",
    timeout: float = 60,
) -> Execution:
    """Run code in a new kernel of user's server, then delete the kernel."""
    with Kernel(client, user, token=token, server=server, kernel_name=kernel_name) as kernel:
        return kernel.run(code, timeout=timeout)
