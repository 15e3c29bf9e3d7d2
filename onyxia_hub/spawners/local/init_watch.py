"""The init scripts on the progress page: what `onyxia-init` writes, as the user sees it.

`onyxia-init` (extensions/onyxia-git/onyxia_git/init.py) runs the scripts inside the
server, as its user, and keeps its outcome in the server's runtime directory
(`builders.init_status_file`): `{"pid", "state", "script", "message"}`. `follow` reads it
a few times a second until it is final, the server's process is gone, or the time is up,
and says each change on the progress page. Nothing of a script's output is read: it is
in the user's `~/.onyxia/init.log`.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Callable

POLL = 0.25
MAX_STATUS = 4096  # bytes: the file is the user's, read by the hub
PROGRESS = 60  # between "Starting" (50) and "Waiting for it to answer" (70)


def read(path: str, pid: int) -> dict | None:
    """The outcome for this start (written by the process `pid`), or None. The file is
    in a directory of the user's, read by the hub (root when accounts are isolated):
    never through a link, never a FIFO or a device, at most MAX_STATUS bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_STATUS + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_STATUS:
        return None
    try:
        outcome = json.loads(data)
    except ValueError:
        return None
    if not isinstance(outcome, dict) or outcome.get("pid") != pid:
        return None
    return outcome


def message(outcome: dict) -> str:
    """What the progress page says of an outcome."""
    text = str(outcome.get("message") or "")[:300]
    if outcome.get("state") == "failed":
        return f"{text} Your server starts all the same."
    return text


async def follow(
    path: str, pid: int, emit: Callable[[int, str], None], timeout: float, log=None
) -> dict | None:
    """Emit each new state of the init scripts until a final one; the last outcome."""
    deadline = time.monotonic() + timeout
    said = None
    outcome = None
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(read, path, pid)
        if outcome is not None:
            text = message(outcome)
            if text and text != said:
                emit(PROGRESS, text)
                said = text
                if outcome.get("state") == "failed" and log is not None:
                    # the file is the user's: only words of ours in the hub's log
                    script = outcome.get("script")
                    which = script if script in ("region", "personal") else "an"
                    log.info("Init scripts of pid %s: %s init script failed", pid, which)
            if outcome.get("state") in ("done", "failed"):
                return outcome
        await asyncio.sleep(POLL)
    return outcome
