"""The start-time pull of a private repository: `onyxia-git-pull` against plain git.

Both run side by side in one script against one real git server over HTTPS (git's
`http-backend` behind tests/helpers/gitserver.py, HTTP Basic with a token), on a private
repository of `--files` files:

- baseline: what Onyxia's init script does, `git clone https://oauth2:<token>@host/...`
  (the token ends up in `.git/config`), and `git pull` for an update;
- onyxia: `onyxia-git-pull` with the hub's git configuration and the token file, read by
  the credential helper; an update goes through nbgitpuller's merge (fetch, keep the
  user's edits, merge).

Rounds alternate between the two (A B A B ...) so that machine noise hits both alike.
Prints the median of each, for a clone and for an update with nothing new, and the ratio
(onyxia / baseline):

    .venv/bin/python benchmarks/git_pull.py --rounds 10 --files 50
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onyxia_git.server import use_hub_git_config  # noqa: E402

from onyxia_hub.providers.git.settings import GitSettings, git_config  # noqa: E402
from tests.helpers.gitserver import CertificateAuthority, GitServer  # noqa: E402

BIN = str(Path(sys.executable).parent)


def timed(command: list[str], env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="onyxia-bench-git-"))
    token = "glpat-" + secrets.token_urlsafe(24)
    ca = CertificateAuthority(root / "ca")
    server = GitServer(root / "forge", ca, token=token)
    files = {f"src/module_{i}.py": f"VALUE = {i}\n" * 40 for i in range(args.files)}
    server.create_repo("survey", files, private=True)
    url = server.url("survey")

    secrets_dir = root / "secrets"
    (secrets_dir / "git").mkdir(parents=True)
    settings = GitSettings("Ann Example", "ann@example.org", url, None, token, (server.host,))
    (secrets_dir / "git" / "config").write_text(git_config(settings))
    (secrets_dir / "git" / "token").write_text(token)
    (secrets_dir / "git" / "token").chmod(0o600)
    base_env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "GIT_SSL_CAINFO": str(ca.path),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    with_token = url.replace("https://", f"https://oauth2:{token}@")
    times: dict[str, list[float]] = {
        "baseline clone": [], "onyxia clone": [], "baseline update": [], "onyxia update": []
    }  # fmt: skip
    try:
        for _ in range(args.rounds):
            home = root / "home-baseline"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            env = {**base_env, "HOME": str(home)}
            command = ["git", "clone", "--quiet", "--", with_token, "survey"]
            times["baseline clone"].append(timed(command, env, home))
            command = ["git", "pull", "--quiet"]
            times["baseline update"].append(timed(command, env, home / "survey"))

            home = root / "home-onyxia"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            env = {**base_env, "HOME": str(home), "ONYXIA_HUB_SECRETS_DIR": str(secrets_dir),
                   "GIT_REPOSITORY": url}  # fmt: skip
            env.pop("GIT_CONFIG_NOSYSTEM")
            use_hub_git_config(env, logging.getLogger("benchmark"))
            command = [sys.executable, "-m", "onyxia_git.pull", "--work-dir", str(home)]
            times["onyxia clone"].append(timed(command, env, home))
            times["onyxia update"].append(timed(command, env, home))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:16} median {value * 1000:7.1f} ms over {args.rounds} rounds")
    for what in ("clone", "update"):
        ratio = medians[f"onyxia {what}"] / medians[f"baseline {what}"]
        print(f"{what}: onyxia / baseline = {ratio:.2f}")


if __name__ == "__main__":
    main()
