"""The embedded object store that `onyxia-hub up` starts on loopback for users' buckets.

- **MinIO** when a `minio` server binary is on PATH or given (`--minio PATH`), or asked
  for with `--storage minio`: data under `<state>/storage/data`, kept across restarts;
  its root credentials are generated once (`<state>/hub/secrets/storage-root.json`,
  passed in its environment, never on a command line); users get service accounts
  confined to their bucket (`admin_api = "minio"`).
- **moto** otherwise (`moto[server]`, run by `motostore`, which refuses moto's
  unauthenticated control API `/moto-api/`): S3, IAM and STS on one port, with IAM
  identity policies enforced on S3 once its first requests (the bootstrap of an admin
  user and key, `INITIAL_NO_AUTH_ACTION_COUNT`) are spent. It keeps
  everything **in memory**: buckets, objects and keys are lost when it stops, which the
  start banner, the README and My storage say. Each start gets a new `store_id`, so
  credentials cached for the previous store are issued anew.
- `--storage none`: no store, no storage provider.

Both serve HTTPS, with a certificate for `127.0.0.1` signed by a CA kept under the state
directory (`embedded/tls.py`); the hub, the portal and user servers trust it through a CA
bundle (`StorageProvider.ca_bundle`). moto gives users session credentials (a role per
user, kind `roles`: an access key, a session token and an expiry, as SSP Cloud does);
MinIO gives them service accounts (kind `accesskeys`: no session token).

The store's port is picked once and kept (`ports.json`, key `storage`). It is stopped
with the hub (Ctrl-C, SIGTERM); it dies with `onyxia-hub up` even after `kill -9`
(parent-death signal), and one left behind all the same is stopped at the next start
(`<state>/storage/store.pid`).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OnyxiaHubError
from . import tls
from .secrets import write_private
from .state import StateDir

MOTO_MODULE = "onyxia_hub.embedded.motostore"
BOOTSTRAP_REQUESTS = 3  # create the admin user, its policy, its access key
CHOICES = ("auto", "moto", "minio", "none")
SETTINGS = {  # c.StorageProvider settings that depend on the store
    "moto": {"kind": "roles", "admin_api": "iam", "data_lost_at_stop": True},
    "minio": {"kind": "accesskeys", "admin_api": "minio", "data_lost_at_stop": False},
}


def _die_with_parent() -> None:  # runs in the child, before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OnyxiaHubError(
                f"the embedded {what} store exited at start (status {proc.returncode})",
                "see the hub's output above; or start with --storage none",
            )
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise OnyxiaHubError(
        f"the embedded {what} store did not answer on 127.0.0.1:{port} within {timeout:g} s",
        "start with --storage none to run without storage",
    )


def pid_file(state: StateDir) -> Path:
    """Where the embedded store's pid is kept (a crashed hub's store is stopped at the
    next start: embedded/stale.py)."""
    return state.root / "storage" / "store.pid"


def find_minio(given: str | None) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("minio")


@dataclass
class EmbeddedStore:
    state: StateDir
    kind: str  # "moto" or "minio"
    port: int
    minio_binary: str | None = None
    proc: subprocess.Popen | None = None
    store_id: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.state.root / "storage"

    @property
    def admin_file(self) -> Path:
        return self.state.secrets / "storage-admin.json"

    @property
    def tls(self) -> tls.StoreTLS:
        return tls.StoreTLS(self.state.tls)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, log_file: Path | None = None) -> None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        tls.ensure(self.tls.directory)
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            if self.kind == "minio":
                self._start_minio(out)
            else:
                self._start_moto(out)
        finally:
            if log_file:
                out.close()
        pid_file(self.state).write_text(f"{self.proc.pid}\n")

    def _popen(self, argv: list[str], env: dict, out) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(self.directory),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet
        )

    def _start_moto(self, out) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_REQUESTS),
            "MOTO_ALLOW_NONEXISTENT_REGION": "false",
        }
        argv = [sys.executable, "-m", MOTO_MODULE, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--certfile", str(self.tls.cert), "--keyfile", str(self.tls.key)]
        self._popen(argv, env, out)
        _wait_for_port(self.port, self.proc, "moto")
        access, secret = self._bootstrap_moto()
        write_private(self.admin_file, json.dumps({"access_key": access, "secret_key": secret}))
        self.store_id = "moto-" + secrets.token_hex(8)
        self.settings = dict(SETTINGS["moto"])

    def _bootstrap_moto(self) -> tuple[str, str]:
        """Spend moto's unauthenticated requests on an admin user and its key."""
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",  # noqa: S106 - unchecked during bootstrap
            verify=str(self.tls.bundle),
        )
        iam.create_user(UserName="onyxia-hub-admin")
        iam.put_user_policy(
            UserName="onyxia-hub-admin",
            PolicyName="admin",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="onyxia-hub-admin")["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _start_minio(self, out) -> None:
        root_file = self.state.secrets / "storage-root.json"
        try:
            root = json.loads(root_file.read_text())
        except (OSError, ValueError):
            root = {"access_key": "onyxia-hub-root", "secret_key": secrets.token_urlsafe(30)}
            write_private(root_file, json.dumps(root))
        data = self.directory / "data"
        data.mkdir(mode=0o700, exist_ok=True)
        certs = self.directory / "certs"  # MinIO's layout: public.crt, private.key
        certs.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(self.tls.cert, certs / "public.crt")
        write_private(certs / "private.key", self.tls.key.read_text())
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "MINIO_ROOT_USER": root["access_key"],
            "MINIO_ROOT_PASSWORD": root["secret_key"],
            "MINIO_BROWSER": "off",
        }
        self._popen(
            [
                self.minio_binary,
                "server",
                str(data),
                "--address",
                f"127.0.0.1:{self.port}",
                "--certs-dir",
                str(certs),
                "--quiet",
            ],
            env,
            out,
        )
        _wait_for_port(self.port, self.proc, "MinIO")
        write_private(self.admin_file, json.dumps(root))
        id_file = self.directory / "store-id"
        if not id_file.exists():
            id_file.write_text("minio-" + secrets.token_hex(8))
        self.store_id = id_file.read_text().strip()
        self.settings = dict(SETTINGS["minio"])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        pid_file(self.state).unlink(missing_ok=True)
        self.proc = None


def choose_store(choice: str, minio: str | None) -> tuple[str, str | None]:
    """("moto" | "minio" | "none", the MinIO binary) for `--storage` and `--minio`."""
    if choice not in CHOICES:
        raise OnyxiaHubError(f"--storage must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "none":
        return "none", None
    binary = find_minio(minio)
    if choice == "minio" or minio:
        if binary is None:
            raise OnyxiaHubError(
                "--storage minio needs a MinIO server binary: none on PATH"
                + (f" and {minio} is not executable" if minio else ""),
                "install MinIO's `minio` server, give --minio /path/to/minio, or use "
                "--storage moto (in memory: data lost at stop)",
            )
        return "minio", binary
    if choice == "auto" and binary:
        return "minio", binary
    return "moto", None


def provider_config(store: EmbeddedStore, portal_port: int) -> dict:
    """`c.StorageProvider` settings for the embedded store."""
    return {
        "endpoint_url": store.url,
        "ca_bundle": str(store.tls.bundle),
        "credentials_file": str(store.admin_file),
        "store_id": store.store_id,
        "credentials_url": (
            f"http://127.0.0.1:{portal_port}/services/portal/api/storage/credentials"
        ),
        **store.settings,
    }
