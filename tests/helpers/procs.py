"""Looking at the processes a hub started, the way an administrator (root) would."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    uid: int
    cmdline: list[str]
    environ: dict[str, str]


def _read(pid: str, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def processes() -> list[Proc]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        cmdline, environ, status = (_read(pid, n) for n in ("cmdline", "environ", "status"))
        if cmdline is None or status is None:
            continue
        uid_line = next(
            (line for line in status.decode().splitlines() if line.startswith("Uid:")), "Uid:\t-1"
        )
        env = {}
        for item in (environ or b"").split(b"\0"):
            key, sep, value = item.decode(errors="replace").partition("=")
            if sep:
                env[key] = value
        found.append(
            Proc(
                int(pid),
                int(uid_line.split()[1]),
                [a.decode(errors="replace") for a in cmdline.split(b"\0") if a],
                env,
            )
        )
    return found


def parent_of(pid: int) -> int | None:
    """The parent's pid (field 4 of /proc/<pid>/stat, after the parenthesised name)."""
    stat = _read(str(pid), "stat")
    return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else None


def user_servers(username: str, server: str = "") -> list[Proc]:
    """The single-user server processes serving username's server (`python -s -P -m
    jupyterhub.singleuser`, or a `jupyterhub-singleuser` script)."""
    return [
        p
        for p in processes()
        if p.environ.get("JUPYTERHUB_USER") == username
        and p.environ.get("JUPYTERHUB_SERVER_NAME", "") == server
        and any(a == "jupyterhub.singleuser" or "jupyterhub-singleuser" in a for a in p.cmdline[:5])
    ]


def tagged(server_id: str) -> list[Proc]:
    return [p for p in processes() if p.environ.get("ONYXIA_HUB_SERVER_ID") == server_id]


def run_as(uid: int, gid: int, *cmd: str) -> subprocess.CompletedProcess:
    """Run cmd as another account, as a user's server runs: that uid, its group, no others."""
    return subprocess.run(
        list(cmd),
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def alive(pid: int) -> bool:
    status = _read(str(pid), "status")
    if status is None:
        return False
    state = next((line for line in status.decode().splitlines() if line.startswith("State:")), "")
    return "Z" not in state.split()[1:2]
