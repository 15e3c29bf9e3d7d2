"""Processes a crashed `onyxia-hub up` left behind: its proxy, portal and store.

Each wrote its pid to a file of the state directory. At the next start (under the state
directory's lock, so never while their own hub runs) they are stopped before the port
checks, since they may still hold the ports. A pid is trusted only while the process's
command line still names what was started: a recycled pid is left alone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def stop_stale(pid_file: Path, markers: tuple[bytes, ...]) -> None:
    """Stop the process named by pid_file if its command line holds one of markers;
    the pid file is removed either way."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if any(marker in cmdline for marker in markers):
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)
