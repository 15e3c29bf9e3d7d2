"""Launch-to-ready of a server on one machine: Onyxia Hub against vanilla JupyterHub.

Both run side by side in one run, on the same machine, each with Node's
configurable-http-proxy and a real JupyterLab server per launch:

- baseline: `jupyterhub` with JupyterHub's own `SimpleLocalProcessSpawner`, its server
  the same JupyterLab as Onyxia Hub's (the `python` environment, `.envs/python`);
- onyxia: `onyxia-hub up` launching the catalog's `jupyter-python` (choice checked,
  quota claimed, plan built, account and home prepared, cgroup limits, launcher).

Launches alternate between the two hubs (A B A B ...) so that machine noise hits both
alike. Each launch is `POST /hub/api/users/<user>/server` followed by polling the user
model until the server is ready; the server is then stopped. Prints the medians, and
their ratio (onyxia / baseline). Run as root or as an ordinary user:

    .venv/bin/python benchmarks/launch_local.py --rounds 10

Not run by CI: launches cost about a CPU-second each.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from onyxia_hub.embedded.ports import pick_free_port
from onyxia_hub.spawners.local.software import default_environments_dir

BIN = Path(sys.prefix) / "bin"
SERVER_BIN = Path(default_environments_dir()) / "python" / "bin"  # built by scripts/setup
TOKEN = secrets.token_hex(16)
SERVICE = f"""
# appended: Onyxia Hub's own services (the portal) and roles stay
c.JupyterHub.services.append({{"name": "bench", "api_token": "{TOKEN}"}})
c.JupyterHub.load_roles.append({{"name": "bench", "services": ["bench"],
    "scopes": ["admin:users", "admin:servers", "read:users", "tokens"]}})
"""


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hub exited ({proc.returncode}) while starting")
        try:
            if requests.get(url + "/hub/api/", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


def start_baseline(root: Path, extra: str = "") -> tuple[subprocess.Popen, str]:
    """Vanilla JupyterHub; extra: configuration appended."""
    port = pick_free_port()
    config = root / "baseline_config.py"
    config.write_text(f"""
c = get_config()
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{pick_free_port()}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{pick_free_port()}"
c.ConfigurableHTTPProxy.command = ["{BIN / "configurable-http-proxy"}"]
c.JupyterHub.db_url = "sqlite:///{root}/baseline.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/baseline_cookie"
c.JupyterHub.pid_file = "{root}/baseline.pid"
c.ConfigurableHTTPProxy.pid_file = "{root}/baseline_proxy.pid"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{root}/baseline-homes/{{username}}"
c.Spawner.cmd = ["{SERVER_BIN / "jupyterhub-singleuser"}"]
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--allow-root"] if {os.geteuid() == 0} else []
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"bench-user"}}
{SERVICE}
{extra}
""")
    log = open(root / "baseline.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "jupyterhub"), "-f", str(config)], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url, proc)
    return proc, url


def start_onyxia(root: Path, extra: str = "") -> tuple[subprocess.Popen, str]:
    """`onyxia-hub up`; extra: configuration appended."""
    port = pick_free_port()
    config = root / "onyxia_extra.py"
    config.write_text(
        "c = get_config()\nc.Authenticator.allowed_users = {'bench-user'}\n" + SERVICE + extra
    )
    state = root / "onyxia-state"
    log = open(root / "onyxia.log", "wb")  # noqa: SIM115
    env = dict(os.environ, ONYXIA_HUB_ADMIN_PASSWORD=secrets.token_hex(8))
    proc = subprocess.Popen(
        [
            str(BIN / "onyxia-hub"),
            "up",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url, proc)
    return proc, url


def launch_once(url: str, options: dict | None) -> float:
    headers = {"Authorization": f"token {TOKEN}"}
    api = url + "/hub/api"
    requests.post(f"{api}/users/bench-user", headers=headers, timeout=30)  # exists is fine
    body = {"user_options": options} if options is not None else None
    started = time.perf_counter()
    r = requests.post(f"{api}/users/bench-user/server", headers=headers, json=body, timeout=120)
    r.raise_for_status()
    while True:
        model = requests.get(f"{api}/users/bench-user", headers=headers, timeout=30).json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    requests.delete(f"{api}/users/bench-user/server", headers=headers, timeout=120)
    while (
        requests.get(f"{api}/users/bench-user", headers=headers, timeout=30).json().get("servers")
    ):
        time.sleep(0.1)
    return elapsed


def report(times: dict[str, list[float]]) -> None:
    """Each side's median, min and max, and the ratio of the medians (onyxia / baseline)."""
    for name, values in times.items():
        print(
            f"{name:9s} median {statistics.median(values):.3f} s  "
            f"min {min(values):.3f}  max {max(values):.3f}  (n={len(values)})"
        )
    ratio = statistics.median(times["onyxia"]) / statistics.median(times["baseline"])
    print(f"ratio onyxia/baseline (medians): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--cpu",
        default="4",
        help="CPU limit of the onyxia launches (default 4: no cap on a "
        "machine of 4 cores or fewer, like the baseline; 1 shows the "
        "cost of the cap itself on JupyterLab's start-up)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="onyxia-bench-"))
    root.chmod(0o711)
    hubs = []
    try:
        baseline, baseline_url = start_baseline(root)
        hubs.append(baseline)
        onyxia, onyxia_url = start_onyxia(root)
        hubs.append(onyxia)
        options = {"service": "jupyter-python", "cpu": args.cpu, "memory": "2Gi"}
        launch_once(baseline_url, None)  # warm both (first JupyterLab start fills caches)
        launch_once(onyxia_url, options)
        times: dict[str, list[float]] = {"baseline": [], "onyxia": []}
        for _ in range(args.rounds):
            times["baseline"].append(launch_once(baseline_url, None))
            times["onyxia"].append(launch_once(onyxia_url, options))
        report(times)
    finally:
        for proc in hubs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
