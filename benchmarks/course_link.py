"""A course link to an open notebook: Onyxia Hub's courses against JupyterHub + nbgitpuller.

Both run side by side in one run, on the same machine, each with Node's
configurable-http-proxy, a real JupyterLab server per launch (the same `.envs/python`),
and one real git server over HTTPS (tests/helpers/gitserver.py) holding the course's
material (`--files` notebooks):

- baseline: vanilla `jupyterhub` (`SimpleLocalProcessSpawner`), what an nbgitpuller
  course link amounts to: start the trainee's server (`POST .../server`, poll until
  ready), then nbgitpuller's pull (`/user/<u>/git-pull/api?repo=...`, its event stream
  read to the end), then the notebook's page (`lab/tree/<repo>/<file>`, 200);
- onyxia: `onyxia-hub up` with a course file: Start (`POST /services/courses/<id>/start`),
  then the link polled until it redirects to the notebook (server ready and material
  reported pulled), then the notebook's page (200).

Both use the trainee's API token (the courses service takes one as the hub does). Rounds
alternate (A B A B ...); each stops the server afterwards, so every round but the first
pulls into an existing clone (nothing new), as a second session of a course does. Prints
the medians and their ratio (onyxia / baseline):

    .venv/bin/python benchmarks/course_link.py --rounds 8

Not run by CI: each round costs two server starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from launch_local import TOKEN, report, start_baseline, start_onyxia  # noqa: E402

from tests.helpers.gitserver import CertificateAuthority, GitServer  # noqa: E402

USER = "bench-user"
COURSE = "bench"
LESSON = "lessons/01.ipynb"
POLL = 0.05


def notebook(title: str) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": f"# {title}", "id": "c0"}]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def user_token(url: str) -> str:
    admin = {"Authorization": f"token {TOKEN}"}
    requests.post(f"{url}/hub/api/users/{USER}", headers=admin, timeout=30)
    r = requests.post(f"{url}/hub/api/users/{USER}/tokens", headers=admin, json={}, timeout=30)
    r.raise_for_status()
    return r.json()["token"]


def stop(url: str, token: str) -> None:
    headers = {"Authorization": f"token {token}"}
    api = f"{url}/hub/api/users/{USER}"
    for path in ("/server", f"/servers/{COURSE}"):
        requests.delete(api + path, headers=headers, timeout=120)
    while any(
        s.get("ready") or s.get("pending")
        for s in (
            requests.get(api, headers=headers, timeout=30).json().get("servers") or {}
        ).values()
    ):
        time.sleep(0.1)


def baseline_round(url: str, token: str, repo: str) -> float:
    headers = {"Authorization": f"token {token}"}
    api = f"{url}/hub/api/users/{USER}"
    started = time.perf_counter()
    requests.post(api + "/server", headers=headers, timeout=120).raise_for_status()
    while not (requests.get(api, headers=headers, timeout=30).json()["servers"].get("") or {}).get(
        "ready"
    ):
        time.sleep(POLL)
    pull = requests.get(
        f"{url}/user/{USER}/git-pull/api",
        params={"repo": repo, "branch": "main", "targetpath": "course"},
        headers=headers,
        stream=True,
        timeout=120,
    )
    body = b"".join(pull.iter_content(None))
    if b'"phase": "finished"' not in body and b"finished" not in body:
        raise SystemExit(f"nbgitpuller did not finish ({pull.status_code}): {body[:600]!r}")
    r = requests.get(f"{url}/user/{USER}/lab/tree/course/{LESSON}", headers=headers, timeout=60)
    r.raise_for_status()
    return time.perf_counter() - started


def onyxia_round(url: str, token: str) -> float:
    headers = {"Authorization": f"token {token}"}
    link = f"{url}/services/courses/{COURSE}"
    started = time.perf_counter()
    r = requests.post(link + "/start", headers=headers, allow_redirects=False, timeout=120)
    if r.status_code != 302:
        raise SystemExit(f"Start answered {r.status_code}: {r.text[:300]}")
    while True:
        r = requests.get(link, headers=headers, allow_redirects=False, timeout=60)
        location = r.headers.get("Location", "")
        if r.status_code == 302 and "/lab/tree/" in location:
            break
        time.sleep(POLL)
    r = requests.get(url + location, headers=headers, timeout=60)
    r.raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--files", type=int, default=20, help="notebooks in the material")
    args = parser.parse_args()
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="onyxia-bench-courses-"))
    root.chmod(0o711)
    ca = CertificateAuthority(root / "ca")
    (root / "ca").chmod(0o755)
    git = GitServer(root / "git", ca)
    files = {LESSON: notebook("Lesson 1")}
    files |= {f"lessons/{i:02d}.ipynb": notebook(f"Lesson {i}") for i in range(2, args.files + 1)}
    git.create_repo("course", files, private=False)
    repo = git.url("course")
    courses = root / "onyxia-state" / "courses" / "files"
    courses.mkdir(parents=True)
    (courses / f"{COURSE}.yaml").write_text(
        f"id: {COURSE}\ntitle: Bench\nopen: {LESSON}\n"
        f"options: {{service: jupyter-python, cpu: 4, memory: 2Gi, repository: '{repo}'}}\n"
    )
    extra = (
        f"c.GitProvider.git_config = {{'http.sslCAInfo': {str(ca.path)!r}}}\n"
        f"c.Spawner.environment = {{'GIT_SSL_CAINFO': {str(ca.path)!r}}}\n"
    )
    hubs = []
    try:
        # the server environment ships nbgitpuller switched off (onyxia-git's config: no
        # pulls from links); the baseline switches it back on
        flag = "--ServerApp.jpserver_extensions=nbgitpuller=True"
        on = f"c.Spawner.args = [*c.Spawner.args, {flag!r}]\n"
        baseline, baseline_url = start_baseline(root, extra + on)
        hubs.append(baseline)
        onyxia, onyxia_url = start_onyxia(root, extra)
        hubs.append(onyxia)
        time.sleep(3)  # the courses service starts after the hub answers
        tokens = {"baseline": user_token(baseline_url), "onyxia": user_token(onyxia_url)}
        times: dict[str, list[float]] = {"baseline": [], "onyxia": []}
        for round_ in range(args.rounds + 1):  # the first round warms caches, not counted
            b = baseline_round(baseline_url, tokens["baseline"], repo)
            stop(baseline_url, tokens["baseline"])
            o = onyxia_round(onyxia_url, tokens["onyxia"])
            stop(onyxia_url, tokens["onyxia"])
            if round_:
                times["baseline"].append(b)
                times["onyxia"].append(o)
        report(times)
    finally:
        for proc in hubs:
            proc.terminate()
            proc.wait(60)
        git.stop()


if __name__ == "__main__":
    main()
