"""`onyxia-hub up` as a subprocess, for tests: start, wait until ready, stop, crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from onyxia_hub.embedded.ports import pick_free_port

REPO = Path(__file__).resolve().parents[2]
ONYXIA_HUB = Path(sys.prefix) / "bin" / "onyxia-hub"
READY_LINE = "Onyxia Hub is running at"


class HubStartError(RuntimeError):
    pass


@dataclass
class HubProcess:
    """One embedded hub, restartable on the same state directory and ports."""

    state_dir: Path
    admin_password: str
    config_files: list[Path] = field(default_factory=list)
    port: int = field(default_factory=pick_free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    starts: int = 0
    run_as: tuple[int, int] | None = None  # (uid, gid): run the hub as this account

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.state_dir.name}-output-{self.starts}.log"

    def command(self) -> list[str]:
        cmd = [str(ONYXIA_HUB), "up", "--port", str(self.port), "--state-dir", str(self.state_dir)]
        for config in self.config_files:
            cmd += ["--config", str(config)]
        return cmd + self.extra_args

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        env = dict(os.environ, ONYXIA_HUB_ADMIN_PASSWORD=self.admin_password)
        out = open(self.log_path, "wb")  # noqa: SIM115 - kept open by the child
        if not self.admin_password:
            env.pop("ONYXIA_HUB_ADMIN_PASSWORD")
        account = {}
        if self.run_as:
            account = dict(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
            env["HOME"] = str(self.state_dir.parent)
            env["USER"] = "operator"
        self.proc = subprocess.Popen(
            self.command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            **account,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.output():
                return
            if self.proc.poll() is not None:
                raise HubStartError(
                    f"onyxia-hub up exited with {self.proc.returncode}:\n" + self.output()[-3000:]
                )
            time.sleep(0.1)
        raise HubStartError("onyxia-hub up did not become ready:\n" + self.output()[-3000:])

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def all_output(self) -> str:
        """Everything every start of this hub printed, and the hub's own log file."""
        parts = []
        for i in range(1, self.starts + 1):
            path = self.state_dir.parent / f"{self.state_dir.name}-output-{i}.log"
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the hub and wait for it to exit; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def crash(self) -> None:
        """kill -9: no clean-up at all, as after a power cut or an OOM kill."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def api_ready(self) -> bool:
        try:
            return requests.get(self.url + "/hub/api/", timeout=5).status_code == 200
        except requests.RequestException:
            return False
