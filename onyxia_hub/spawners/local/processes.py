"""Every process of one user server, found by a tag in its environment.

A user server starts kernels and terminals in sessions of their own, so its process
group does not hold them, and after a hub crash they are no longer the hub's children.
Each server therefore starts with `ONYXIA_HUB_SERVER_ID=<random id>` in its environment,
which every descendant inherits; `/proc/<pid>/environ` shows it to the account that runs
them and to root, and nobody else. Stopping a server ends every process carrying its tag.
"""

from __future__ import annotations

import asyncio
import os
import signal

TAG = "ONYXIA_HUB_SERVER_ID"


def _environ(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None


def carries_tag(pid: int, server_id: str) -> bool | None:
    """True/False when pid's environment can be read, None when it cannot (or pid is gone)."""
    data = _environ(pid)
    if data is None:
        return None
    return f"{TAG}={server_id}".encode() in data.split(b"\0")


def tagged_processes(server_id: str) -> list[int]:
    """Pids of live processes whose environment carries this server's tag."""
    needle = f"{TAG}={server_id}".encode()
    found = []
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        data = _environ(int(entry))
        if data and needle in data.split(b"\0") and not _is_zombie(int(entry)):
            found.append(int(entry))
    return found


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    # the state field follows the command name in parentheses, which may hold spaces
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] in (b"Z", b"X")


def is_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


async def end_tagged(server_id: str, grace: float = 5.0) -> int:
    """SIGTERM every process of the server, then SIGKILL what is left after `grace` s.

    Returns how many processes had to be ended.
    """
    pids = tagged_processes(server_id)
    if not pids:
        return 0
    _signal_all(pids, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        if not tagged_processes(server_id):
            return len(pids)
    _signal_all(tagged_processes(server_id), signal.SIGKILL)
    for _ in range(50):
        if not tagged_processes(server_id):
            break
        await asyncio.sleep(0.1)
    return len(pids)
