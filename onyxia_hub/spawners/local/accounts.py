"""One unprivileged system account and one private home per hub user.

When the hub runs as root (as on many servers), each hub user's servers run under their
own account, `onyxia-<name>`, created at first launch as The Littlest JupyterHub does:
other users' homes (mode 0700) and process environments (`/proc/<pid>/environ` is
readable only by the same account) are out of reach, and so is the state directory.

When the hub runs as an ordinary user it cannot switch accounts: servers run as that
user, each in a home of its own, but nothing stops one user's code from reading another
user's files. `onyxia-hub up` says so at start.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ACCOUNT_MARKER = "onyxia-hub account"
_LINUX_NAME = re.compile(r"[a-z_][a-z0-9_-]*")


@dataclass(frozen=True)
class Account:
    """The system identity one hub user's servers run as."""

    name: str
    uid: int
    gid: int
    home: Path
    isolated: bool  # False: the hub's own account, shared by every user


def safe_name(hub_name: str, max_len: int = 32) -> str:
    """A file- and account-name-safe form of a hub username, distinct for distinct names.

    Names made only of lowercase letters, digits and '-' are kept; any other, or one too
    long, gets its unsafe characters replaced and a short hash of the original appended.
    """
    if _LINUX_NAME.fullmatch(hub_name) and len(hub_name) <= max_len:
        return hub_name
    digest = hashlib.sha256(hub_name.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^a-z0-9-]+", "-", hub_name.lower()).strip("-") or "user"
    return f"{cleaned[: max_len - 9]}-{digest}"


class AccountError(Exception):
    """An account could not be created or used; the message says why."""


class Accounts:
    """Maps hub users to accounts and creates them on first use."""

    def __init__(
        self, homes_root: Path, *, isolate: bool, prefix: str = "onyxia-", shell: str = "/bin/bash"
    ):
        self.homes_root = Path(homes_root)
        self.isolate = isolate
        self.prefix = prefix
        self.shell = shell
        self._lock = asyncio.Lock()

    def system_name(self, hub_name: str) -> str:
        return self.prefix + safe_name(hub_name, max_len=32 - len(self.prefix))

    def home_of(self, hub_name: str) -> Path:
        return self.homes_root / safe_name(hub_name)

    async def ensure(self, hub_name: str) -> Account:
        """The account for hub_name, creating it (and its home) when missing."""
        async with self._lock:
            return await asyncio.to_thread(self._ensure, hub_name)

    def _ensure(self, hub_name: str) -> Account:
        home = self.home_of(hub_name)
        if not self.isolate:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            return Account(
                pwd.getpwuid(os.getuid()).pw_name, os.getuid(), os.getgid(), home, isolated=False
            )
        name = self.system_name(hub_name)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = self._create(name, hub_name, home)
        if ACCOUNT_MARKER not in (entry.pw_gecos or ""):
            raise AccountError(
                f"the system account {name!r} exists but was not created by onyxia-hub; "
                "refusing to run a user's server under it"
            )
        if entry.pw_uid == 0:
            raise AccountError(f"the system account {name!r} has uid 0; refusing to use it")
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)
        return Account(name, entry.pw_uid, entry.pw_gid, home, isolated=True)

    def _create(self, name: str, hub_name: str, home: Path) -> pwd.struct_passwd:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        comment = f"{ACCOUNT_MARKER} for {safe_name(hub_name)}"
        cmd = [
            useradd,
            "--user-group",
            "--no-create-home",
            "--home-dir",
            str(home),
            "--shell",
            self.shell,
            "--comment",
            comment,
            name,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AccountError(
                f"could not create the system account {name!r}: "
                f"{(result.stderr or result.stdout).strip()[:200]}"
            )
        return pwd.getpwnam(name)

    @staticmethod
    def group_name(gid: int) -> str:
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)
