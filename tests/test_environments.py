"""The environments user servers run in (docs/environments.md), in real servers of the
session hub: two users with a Jupyter Python server each, one Jupyter R server.

- what the Jupyter Python card promises imports in a kernel, and pandas writes and reads
  Parquet on the user's own bucket;
- every snippet My storage shows runs as shown: the Python ones in a kernel, rclone's in
  a terminal (so no snippet names a tool the servers lack);
- `python`, `pip` and `jupyter` in a JupyterLab terminal are the kernel's;
- a wheel the user installs with pip, from a local file, imports in the same kernel, in
  their next kernel and after a server restart, and not in another user's;
- a user's package cannot reach the server: the server runs without user site-packages,
  so a `.pth` file (code run at every Python start) runs in the user's kernels only;
- an R package installed from a local source tarball is the installing user's only;
- a user who never opened My account commits with git from their first cell: the identity
  defaults to their name and a no-reply address.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest

from tests.helpers import packages, procs
from tests.helpers.kernels import Kernel
from tests.helpers.terminals import run_in_terminal

pytestmark = pytest.mark.root  # two users, each their own account

ALICE, BOB = "env-alice", "env-bob"


def account(user: str) -> pwd.struct_passwd:
    return pwd.getpwnam(f"onyxia-{user}")


def give(path: Path, user: str, directory: Path) -> str:
    """Copy path into directory (in user's home), owned by user: a file they uploaded."""
    directory.mkdir(exist_ok=True)
    target = directory / path.name
    shutil.copy(path, target)
    entry = account(user)
    for p in (directory, target):
        os.chown(p, entry.pw_uid, entry.pw_gid)
    return str(target)


def start(admin, user: str) -> None:
    r = admin.api(
        "POST", f"/users/{user}/server", json={"user_options": {"service": "jupyter-python"}}
    )
    assert r.status_code in (201, 202), r.text
    admin.wait_ready(user)


def run(admin, user: str, code: str, *, kernel: str = "python3", server: str = "") -> str:
    with Kernel(admin, user, kernel_name=kernel, server=server) as k:
        return k.run(code, timeout=180).check().stdout


@pytest.fixture(scope="module")
def servers(hub, admin, make_user):
    """Jupyter Python for ALICE and BOB; their homes."""
    homes = {}
    for user in (ALICE, BOB):
        make_user(user)
        start(admin, user)
        homes[user] = Path(procs.user_servers(user)[0].environ["HOME"])
    yield homes
    for user in (ALICE, BOB):
        admin.stop_server(user)


def test_the_promised_stack_imports_and_pandas_uses_the_bucket(admin, servers):
    out = run(
        admin,
        ALICE,
        "import numpy, pandas as pd, scipy, sklearn, matplotlib, pyarrow, polars, duckdb\n"
        "import s3fs, boto3, os\n"
        "bucket = 'user-' + os.environ['JUPYTERHUB_USER']\n"
        "df = pd.DataFrame({'x': numpy.arange(5), 'y': list('abcde')})\n"
        "df.to_parquet(f's3://{bucket}/first.parquet')\n"
        "back = pd.read_parquet(f's3://{bucket}/first.parquet')\n"
        "print(back.equals(df), polars.read_parquet(pyarrow.BufferReader("
        "s3fs.S3FileSystem().cat(f'{bucket}/first.parquet'))).height)\n",
    )
    assert out.split() == ["True", "5"]


PYTHON_SNIPPETS = {"boto3", "s3fs", "pandas", "duckdb"}
TERMINAL_SNIPPETS = {"rclone"}


def test_every_storage_snippet_runs_as_shown(hub, admin, servers, make_user, portal_client):
    r = portal_client(make_user(ALICE)).api("GET", "storage")
    assert r.status_code == 200, r.text
    shown = {s["id"]: s["code"] for s in r.json()["snippets"]}
    assert set(shown) == PYTHON_SNIPPETS | TERMINAL_SNIPPETS  # a new one must be run here
    bucket = r.json()["bucket"]
    prepare = (  # what the snippets read: data.parquet
        "import boto3, io, pandas as pd\n"
        "buf = io.BytesIO(); pd.DataFrame({'x': [1, 2, 3]}).to_parquet(buf)\n"
        f"boto3.client('s3').put_object(Bucket={bucket!r}, Key='data.parquet',"
        " Body=buf.getvalue())\n"
    )
    for name in sorted(PYTHON_SNIPPETS):
        run(admin, ALICE, prepare + shown[name])  # .check() raises on any error
    out = run_in_terminal(
        hub.url, ALICE, admin.new_token(ALICE), shown["rclone"].replace("\n", "\r")
    )
    assert "data.parquet" in out and "hello.txt" in out, out


def test_python_pip_and_jupyter_in_a_terminal_are_the_kernels(hub, admin, servers):
    kernel_python = run(admin, ALICE, "import sys; print(sys.executable)").strip()
    assert kernel_python.endswith("/.envs/python/bin/python")
    token = admin.new_token(ALICE)
    out = run_in_terminal(
        hub.url,
        ALICE,
        token,
        "python -c 'import sys; print(\"PY\", sys.executable)'; "
        "pip --version; command -v jupyter python3",
    )
    env_bin = str(Path(kernel_python).parent)
    assert f"PY {kernel_python}" in out
    assert f"{Path(env_bin).parent}/lib/python3" in out  # pip's own location
    assert f"{env_bin}/jupyter" in out and f"{env_bin}/python3" in out


def test_a_first_git_commit_works_without_my_account_settings(admin, servers):
    out = run(
        admin,
        BOB,
        "import os, subprocess, tempfile\n"
        "d = tempfile.mkdtemp(dir=os.path.expanduser('~'))\n"
        "for args in (['init', '-q'], ['commit', '-q', '--allow-empty', '-m', 'first'],\n"
        "             ['log', '--format=%an <%ae>']):\n"
        "    r = subprocess.run(['git', *args], cwd=d, capture_output=True, text=True)\n"
        "    print(r.returncode, r.stdout.strip(), r.stderr.strip())\n",
    )
    assert out.splitlines()[-1] == f"0 {BOB} <{BOB}@users.noreply.localhost> ", out


def test_a_users_pip_package_is_theirs_only_and_survives_a_restart(
    admin, servers, tmp_path, make_user
):
    wheel = packages.wheel(tmp_path, "onyxia_probe", {"onyxia_probe.py": "ANSWER = 42\n"})
    path = give(wheel, ALICE, servers[ALICE] / "uploads")
    out = run(
        admin,
        ALICE,
        "import subprocess, sys\n"  # what %pip install does
        f"r = subprocess.run([sys.executable, '-m', 'pip', 'install', {path!r}], "
        "capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout, r.stderr[-300:])\n"
        "import onyxia_probe; print('same kernel', onyxia_probe.ANSWER, onyxia_probe.__file__)",
    )
    assert out.startswith("0 ") and "Defaulting to user installation" in out, out
    user_site = f"{servers[ALICE]}/.local/lib/python3"
    assert f"same kernel 42 {user_site}" in out
    # the shared environment did not change
    assert not list(
        Path(procs.user_servers(ALICE)[0].cmdline[0]).parent.parent.rglob("onyxia_probe*")
    )
    assert run(admin, ALICE, "import onyxia_probe; print(onyxia_probe.ANSWER)").strip() == "42"
    assert "ModuleNotFoundError" in run(
        admin, BOB, "try:\n import onyxia_probe\nexcept ImportError as e: print(type(e).__name__)"
    )
    admin.stop_server(ALICE)
    start(admin, ALICE)
    assert run(admin, ALICE, "import onyxia_probe; print(onyxia_probe.ANSWER)").strip() == "42"


def test_a_users_package_cannot_run_code_in_the_server(admin, servers, tmp_path):
    """Neither a `.pth` in the user's site-packages nor a module in their home (the
    server's working directory) named like one the server imports."""
    log = servers[ALICE] / "pth-ran.log"
    hook = (
        "import os, sys; open(os.path.expanduser('~/pth-ran.log'), 'a')"
        ".write(repr(sys.argv) + chr(10))\n"
    )
    wheel = packages.wheel(
        tmp_path, "zz_onyxia_hook", {"zz_onyxia_hook.pth": hook, "zz_onyxia_hook_mod.py": ""}
    )
    path = give(wheel, ALICE, servers[ALICE] / "uploads")
    out = run(
        admin,
        ALICE,
        "import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'pip', 'install', {path!r}], "
        "capture_output=True, text=True); print(r.returncode, r.stderr[-300:])",
    )
    assert out.startswith("0"), out
    log.unlink(missing_ok=True)
    shadow = servers[ALICE] / "uuid.py"  # jupyter_server imports uuid at start
    shadow.write_text(
        "import sys; open(__file__ + '.ran', 'w').write(repr(sys.argv))\n"
        "raise SystemExit('a user module shadowed the standard library')\n"
    )
    entry = account(ALICE)
    os.chown(shadow, entry.pw_uid, entry.pw_gid)
    admin.stop_server(ALICE)
    try:
        start(admin, ALICE)
    finally:
        shadow.unlink()
    server = procs.user_servers(ALICE)[0]
    assert server.cmdline[1:5] == ["-s", "-P", "-m", "jupyterhub.singleuser"]
    assert not log.exists()  # the server started without running the user's code
    assert not (servers[ALICE] / "uuid.py.ran").exists()
    run(admin, ALICE, "print('a kernel')")
    ran = log.read_text().splitlines()
    # kernels only (at .pth time a kernel's argv is still ['-m', '-f', '<connection file>'])
    assert ran and all("/kernel-" in line for line in ran), ran


def test_an_r_package_installs_for_one_user_only(admin, servers, tmp_path):
    tarball = packages.r_source_package(tmp_path, "onyxiaprobe", "hello from alice")
    path = give(tarball, ALICE, servers[ALICE] / "uploads")
    r = admin.api(
        "POST", f"/users/{ALICE}/servers/r", json={"user_options": {"service": "jupyter-r"}}
    )
    assert r.status_code in (201, 202), r.text
    try:
        admin.wait_ready(ALICE, "r")
        out = run(
            admin,
            ALICE,
            f'install.packages("{path}", repos = NULL, type = "source", quiet = TRUE)\n'
            'library(onyxiaprobe); cat(hello(), "|", find.package("onyxiaprobe"))',
            kernel="ir",
            server="r",
        )
        assert out.startswith("hello from alice | " + str(servers[ALICE] / "R")), out
    finally:
        admin.stop_server(ALICE, "r")
    entry = account(BOB)
    other = procs.run_as(
        entry.pw_uid,
        entry.pw_gid,
        "env",
        f"HOME={servers[BOB]}",
        "R",
        "--no-echo",
        "-e",
        'cat(requireNamespace("onyxiaprobe", quietly = TRUE))',
    )
    assert other.stdout.strip() == "FALSE", other.stderr
    # and it is in alice's private home, out of bob's reach
    assert (servers[ALICE].stat().st_mode & 0o077) == 0
