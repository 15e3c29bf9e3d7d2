"""The state directory of the embedded hub: every file `onyxia-hub up` writes lives here.

Layout (modes in brackets; the owner is whoever runs `onyxia-hub up`)::

    <state>/            [0700, or 0711 when users have accounts of their own (isolation)]
      hub/              [0700] jupyterhub.sqlite, accounts.sqlite, pid files, ports.json, lock
      hub/secrets/      [0700] cookie_secret, crypt_key, proxy_token, admin-password, portal_key,
                               courses_key,
                               storage-admin.json (the embedded store's admin keys)
      portal/           [0700] portal.sqlite (the portal's store), portal.pid
      courses/          [0700] courses.sqlite (the courses service's store), courses.pid,
                               files/ (course files, `<id>.yaml`: docs/courses.md)
      storage/          [0700] the embedded store's pid file; MinIO's data/ (embedded/store.py)
      tls/              [0755] the store's CA, certificate and CA bundle; keys 0600 (tls.py)
      logs/             [0700] hub.log, servers/<user>/<server>.log
      homes/            [0711] one private [0700] home per hub user (unless --homes-dir)

Mode 0711 lets a user's processes reach their own home below it without being able to
list or read anything else: only the owner can read the state directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import OnyxiaHubError
from .ports import pick_free_port, port_is_free


def default_state_dir() -> Path:
    """Where state lives when `--state-dir` is not given.

    `$ONYXIA_HUB_STATE_DIR` if set; `/var/lib/onyxia-hub` for root (user homes below it must
    be reachable by unprivileged accounts, which `/root` is not); otherwise
    `$XDG_DATA_HOME/onyxia-hub` (`~/.local/share/onyxia-hub`).
    """
    if os.environ.get("ONYXIA_HUB_STATE_DIR"):
        return Path(os.environ["ONYXIA_HUB_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/onyxia-hub")
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "onyxia-hub"


def _ensure_dir(path: Path, mode: int) -> None:
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        info = path.stat()
        if info.st_uid != os.geteuid():
            raise OnyxiaHubError(
                f"{path} belongs to uid {info.st_uid}, not to the account running onyxia-hub "
                f"(uid {os.geteuid()})",
                "run onyxia-hub as the owner of the state directory, or pick another --state-dir",
            )
        if stat.S_IMODE(info.st_mode) != mode:
            path.chmod(mode)
    except PermissionError as e:
        raise OnyxiaHubError(
            f"cannot create or use the state directory {path}: permission denied",
            "pass a --state-dir you can write to",
        ) from e
    except OSError as e:
        if isinstance(e, OnyxiaHubError):
            raise
        raise OnyxiaHubError(
            f"cannot create or use the state directory {path}: {e.strerror}",
            "pass a --state-dir on a writable file system",
        ) from e


@dataclass(frozen=True)
class StateDir:
    """Paths inside one state directory, and the operations that keep it private."""

    root: Path
    homes_dir: Path | None = None  # None: <root>/homes

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def secrets(self) -> Path:
        return self.hub / "secrets"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_logs(self) -> Path:
        return self.logs / "servers"

    @property
    def homes(self) -> Path:
        return self.homes_dir or self.root / "homes"

    @property
    def portal(self) -> Path:
        return self.root / "portal"

    @property
    def portal_db(self) -> Path:
        return self.portal / "portal.sqlite"

    @property
    def portal_pid_file(self) -> Path:
        return self.portal / "portal.pid"

    @property
    def portal_key_file(self) -> Path:
        return self.secrets / "portal_key"

    @property
    def courses(self) -> Path:
        return self.root / "courses"

    @property
    def courses_db(self) -> Path:
        return self.courses / "courses.sqlite"

    @property
    def courses_pid_file(self) -> Path:
        return self.courses / "courses.pid"

    @property
    def courses_key_file(self) -> Path:
        return self.secrets / "courses_key"

    @property
    def course_files(self) -> Path:
        """Course files an operator drops in (`<id>.yaml`), read-only on the pages."""
        return self.courses / "files"

    @property
    def hub_db(self) -> Path:
        return self.hub / "jupyterhub.sqlite"

    @property
    def accounts_db(self) -> Path:
        return self.hub / "accounts.sqlite"

    @property
    def hub_pid_file(self) -> Path:
        return self.hub / "jupyterhub.pid"

    @property
    def proxy_pid_file(self) -> Path:
        return self.hub / "proxy.pid"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def hub_log(self) -> Path:
        return self.logs / "hub.log"

    def prepare(self, *, shared_homes: bool) -> None:
        """Create the directories with their modes; fix modes that drifted.

        `shared_homes` is true when homes belong to other accounts (isolation as root): the
        root and homes directories then get 0711 so those accounts can reach their own home
        and the store's CA bundle (`tls/`), wherever the homes are.
        """
        root_mode = 0o711 if shared_homes else 0o700
        _ensure_dir(self.root, root_mode)
        private = (self.hub, self.secrets, self.logs, self.server_logs, self.portal, self.courses)
        for path in (*private, self.course_files):
            _ensure_dir(path, 0o700)
        _ensure_dir(self.homes, 0o711 if shared_homes else 0o700)
        probe = self.hub / ".write-test"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise OnyxiaHubError(
                f"the state directory {self.root} is not writable: {e.strerror}",
                "pass a --state-dir on a writable file system",
            ) from e

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock for as long as this process runs the hub.

        The kernel releases it when the process ends, even after `kill -9`, so a crash never
        leaves a stale lock behind.
        """
        path = self.hub / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise OnyxiaHubError(
                    f"another onyxia-hub (pid {holder}) is already running with the state "
                    f"directory {self.root}",
                    "stop it first, or start this one with a different --state-dir",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    def internal_ports(self, host: str, requested: dict[str, int | None]) -> dict[str, int]:
        """Ports for the hub's internal endpoints, stable across restarts.

        A port given explicitly is used as is (the preflight checks it is free). Otherwise
        the port used last time is reused when still free, so that user servers still
        running after a crash keep reaching the hub; else a free port is picked and saved.
        """
        saved_path = self.hub / "ports.json"
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, ValueError):
            saved = {}
        ports: dict[str, int] = {}
        for name, value in requested.items():
            if value:
                ports[name] = value
            elif isinstance(saved.get(name), int) and port_is_free(host, saved[name]):
                ports[name] = saved[name]
            else:
                taken = set(ports.values())
                port = pick_free_port(host)
                while port in taken:
                    port = pick_free_port(host)
                ports[name] = port
        saved_path.write_text(json.dumps(ports, indent=1))
        saved_path.chmod(0o600)
        return ports
