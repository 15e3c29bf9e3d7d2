"""Memory and CPU limits of local servers, with real processes, cgroups and a real JVM.

- cgroup tests need root and a writable cgroup (v1 on the machines this was written on);
  they run programs through `enter.py` as `onyxia-test-limits`, an ordinary account
  created here on first use, exactly as the spawner starts servers;
- watchdog tests need neither: they watch small process trees of the test's own account;
- `GpuPool` and `probe_gpus` are exercised without a GPU (a fake nvidia-smi).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onyxia_hub.quantities import human_memory as format_bytes
from onyxia_hub.spawners.local import enter, limits
from onyxia_hub.spawners.local.gpus import GpuConflict, GpuPool, NoGpuFree, probe_gpus
from onyxia_hub.spawners.local.limits import (
    Backend,
    LimitsUnavailable,
    ServerCgroup,
    attach_server_cgroup,
    create_server_cgroup,
    detect_backend,
    remove_parents,
    remove_stale,
)
from onyxia_hub.spawners.local.processes import TAG
from onyxia_hub.spawners.local.watchdog import MemoryWatchdog

MiB = 1024 * 1024
PYTHON = "/usr/bin/python3"  # readable by every account, unlike a venv under a private dir
TEST_ACCOUNT = "onyxia-test-limits"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are written as root")


# -- fixtures -------------------------------------------------------------------------


def unique_group() -> str:
    """A cgroup directory name of its own, so that parallel runs, and the suite's hubs
    (which run in pytest's cgroup too), never take each other's groups for leftovers."""
    return f"onyxia-hub-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def backend() -> Backend:
    if os.geteuid() != 0:
        pytest.skip("cgroups are written as root")
    found = detect_backend(group=unique_group())
    if not found.uses_cgroups:
        pytest.skip(f"no usable cgroup here: {found.reason}")
    yield found
    assert remove_parents(found), "a server cgroup was left behind"
    assert not found.memory_parent.exists()


@pytest.fixture(scope="module")
def account() -> tuple[int, int]:
    """(uid, gid) of an ordinary account, created if missing (safe to run twice at once)."""
    try:
        entry = pwd.getpwnam(TEST_ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", TEST_ACCOUNT],
            capture_output=True,
        )  # fmt: skip
        entry = pwd.getpwnam(TEST_ACCOUNT)  # KeyError here: useradd really failed
    assert entry.pw_uid != 0
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def groups(backend):
    """Factory of server cgroups with random ids; all are emptied and removed afterwards."""
    made: list[ServerCgroup] = []

    def make(memory_bytes=None, cpu_cores=None) -> ServerCgroup:
        group = create_server_cgroup(backend, secrets.token_hex(6), memory_bytes, cpu_cores)
        made.append(group)
        return group

    yield make
    for group in made:
        group.kill_all()
        group.remove()


def launch(group: ServerCgroup, argv, account=None, **kwargs) -> subprocess.Popen:
    """Start argv as the spawner does: through enter.py, in the group, as the account."""
    uid, gid = account if account else (None, None)
    cmd = enter.command(argv, group.procs_files, uid, gid)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(cmd, cwd="/", start_new_session=True, umask=0o077, text=True, **kwargs)


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def program_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# -- backend detection ----------------------------------------------------------------


def v1_memory_mountpoint() -> str | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        tail = right.split()
        if tail and tail[0] == "cgroup" and "memory" in tail[2].split(","):
            return left.split()[4]
    return None


@needs_root
def test_detection_picks_cgroup1_when_v1_memory_is_mounted_and_says_why():
    mountpoint = v1_memory_mountpoint()
    if mountpoint is None:
        pytest.skip("no cgroup v1 memory hierarchy on this machine")
    # a controller bound to v1 cannot be in v2: v2 cannot win here
    group = unique_group()
    backend = detect_backend(group=group)
    try:
        assert backend.kind == "cgroup1", backend.reason
        assert f"cgroup v1 memory controller at {mountpoint} (writable" in backend.reason
        assert backend.memory_parent.name == group and backend.memory_parent.is_dir()
        assert backend.enforces_cpu, backend.cpu_reason
        with pytest.raises(LimitsUnavailable, match="cgroup2 limits were asked for but cannot"):
            detect_backend("cgroup2", group=group)
        assert detect_backend("cgroup1", group=group) == backend
    finally:
        assert remove_parents(backend)


def test_the_watchdog_can_be_forced_and_says_cpu_is_not_limited():
    backend = detect_backend("watchdog")
    assert backend.kind == "watchdog" and not backend.enforces_cpu
    assert "CPU limits are not enforced" in backend.reason
    with pytest.raises(ValueError, match="no cgroups"):
        create_server_cgroup(backend, "abc", 100 * MiB, 1)
    with pytest.raises(ValueError, match="unknown limits backend"):
        detect_backend("rlimit")


def fake_v2_tree(root: Path, cgroups: dict[str, tuple[str, str, str]]) -> None:
    """Directories with (cgroup.controllers, cgroup.subtree_control, cgroup.procs) texts."""
    for path, (controllers, subtree, procs) in cgroups.items():
        d = root / path.strip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.controllers").write_text(controllers)
        (d / "cgroup.subtree_control").write_text(subtree)
        (d / "cgroup.procs").write_text(procs)


def test_cgroup2_decisions_on_a_fake_tree(tmp_path):
    """v2 cannot run here (no delegated memory controller): its choices, on plain files."""
    v2 = limits._Mount("/", tmp_path, "cgroup2", frozenset({"rw"}))
    v1_memory = limits._Mount("/", Path("/sys/fs/cgroup/memory"), "cgroup", frozenset({"memory"}))
    fake_v2_tree(tmp_path, {"/": ("hugetlb", "", "1\n")})
    assert limits._probe_v2([v2, v1_memory], {"": "/"}) == (
        None,
        f"cgroup v2 at {tmp_path} has no memory controller: it is bound to the cgroup v1 "
        "hierarchy at /sys/fs/cgroup/memory (a hybrid setup)",
    )
    backend, why = limits._probe_v2([v2], {"": "/"})
    assert backend is None and "not delegated to the hub's cgroup" in why
    assert "Delegate=memory cpu with DelegateSubgroup=hub" in why

    # the hub sits in a cgroup holding its processes, whose parent is not delegated
    fake_v2_tree(
        tmp_path,
        {"/": ("cpu memory", "cpu memory", ""), "/a": ("cpu memory", "", ""),
         "/a/unit": ("cpu memory", "", "")},
    )  # fmt: skip
    backend, why = limits._probe_v2([v2], {"": "/a/unit"})
    assert backend is None and "no-internal-processes rule" in why
    # systemd's DelegateSubgroup=hub: the hub in <unit>/hub, servers beside it
    fake_v2_tree(tmp_path, {"/a/unit/hub": ("cpu memory", "", "4242\n")})
    try:
        os.setxattr(tmp_path / "a/unit", "trusted.delegate", b"1")  # as systemd marks it
    except OSError as e:
        pytest.skip(f"cannot set a trusted.* attribute here: {e.strerror}")
    backend, why = limits._probe_v2([v2], {"": "/a/unit/hub"})
    assert backend.kind == "cgroup2"
    assert backend.memory_parent == tmp_path / "a/unit/onyxia-hub"
    assert (tmp_path / "a/unit/cgroup.subtree_control").read_text() == "+memory +cpu"


@pytest.mark.parametrize(
    "n, text",
    [(2 * 1024 * MiB, "2 GiB"), (int(1.9 * 1024 * MiB), "1.9 GiB"), (512 * MiB, "512 MiB"),
     (300, "300 B"), (1536, "1.5 KiB")],
)  # fmt: skip
def test_format_bytes(n, text):
    assert format_bytes(n) == text


# -- memory through cgroups -----------------------------------------------------------

ALLOCATE = """
import os, sys
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
print("Uid", status["Uid"].split(), "Gid", status["Gid"].split(),
      "Groups", status["Groups"].split(), "CapEff", status["CapEff"].strip())
try:
    os.setuid(0)
    print("setuid(0) succeeded")
except PermissionError:
    print("setuid(0) refused")
sys.stdout.flush()
data = b"x" * ({mib} * 1024 * 1024)
print("allocated", len(data) // 1048576, "MiB")
"""


def test_a_cgroup_memory_limit_ends_a_big_allocation_of_an_unprivileged_process(groups, account):
    uid, gid = account
    group = groups(memory_bytes=100 * MiB)
    assert group.oom_kills() == 0

    small = launch(group, [PYTHON, "-c", ALLOCATE.format(mib=20)], account)
    out, err = small.communicate(timeout=20)
    assert small.returncode == 0, err
    assert f"Uid {[str(uid)] * 4} Gid {[str(gid)] * 4}" in out  # real, effective, saved, fs
    assert "Groups [] CapEff 0000000000000000" in out
    assert "setuid(0) refused" in out
    assert "allocated 20 MiB" in out
    assert group.oom_kills() == 0

    big = launch(group, [PYTHON, "-c", ALLOCATE.format(mib=300)], account)
    out, err = big.communicate(timeout=20)
    assert big.returncode == -9, (out, err)  # SIGKILL from the kernel's OOM killer
    assert "setuid(0) refused" in out and "allocated" not in out
    assert group.oom_kills() == 1
    assert group.pids() == []


def test_a_jvm_sees_the_cgroup_memory_limit(groups, account):
    java = shutil.which("java")
    if java is None:
        pytest.skip("java is not installed (scripts/test-prerequisites installs it)")
    group = groups(memory_bytes=512 * MiB)
    proc = launch(
        group, [java, "-XshowSettings:system", "-XX:+PrintFlagsFinal", "-version"], account
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Memory Limit: 512.00M" in err, err
    max_heap = int(re.search(r"\bMaxHeapSize\s*=\s*(\d+)", out).group(1))
    # the default heap is MaxRAMPercentage (25 %) of the limit, not of the machine's RAM
    assert max_heap == 128 * MiB, max_heap


# -- CPU through cgroups --------------------------------------------------------------


def test_a_cpu_limit_of_a_fifth_of_a_core_holds_a_busy_loop(groups, account, backend):
    if not backend.enforces_cpu:
        pytest.skip(f"no CPU limits here: {backend.cpu_reason}")
    group = groups(memory_bytes=100 * MiB, cpu_cores=0.2)
    if backend.kind == "cgroup1":
        period = int((group.cpu_dir / "cpu.cfs_period_us").read_text())
        assert int((group.cpu_dir / "cpu.cfs_quota_us").read_text()) == round(0.2 * period)
    else:
        assert (group.cpu_dir / "cpu.max").read_text().split() == ["20000", "100000"]

    loop = launch(group, [PYTHON, "-c", "while True: pass"], account)
    try:
        # enter.py's own command line holds the program's too: wait for the exec
        assert wait_until(lambda: program_of(loop.pid) == PYTHON)
        assert status_field(loop.pid, "Uid").split()[0] == str(account[0])
        assert group.pids() == [loop.pid]
        time.sleep(0.2)
        start_cpu, start = cpu_seconds(loop.pid), time.monotonic()
        time.sleep(1.0)
        share = (cpu_seconds(loop.pid) - start_cpu) / (time.monotonic() - start)
        print(f"busy loop limited to 0.2 core used {share:.0%} of a core")
        assert share < 0.4
        if backend.kind == "cgroup1":
            stat = dict(
                line.split() for line in (group.cpu_dir / "cpu.stat").read_text().splitlines()
            )
            assert int(stat["nr_throttled"]) > 0
    finally:
        loop.kill()  # in case enter.py had not joined the group yet
        group.kill_all()
        loop.wait(timeout=5)


# -- emptying and removing ------------------------------------------------------------

TREE = "import subprocess as s, time; [s.Popen(['sleep', '60']) for _ in 'abc']; time.sleep(60)"


def test_kill_all_and_remove_leave_no_process_and_no_directory(groups, account):
    group = groups(memory_bytes=100 * MiB, cpu_cores=1)
    root = launch(group, [PYTHON, "-c", TREE], account)
    assert wait_until(lambda: len(group.pids()) == 4), group.pids()
    assert group.memory_usage() > 0
    assert group.kill_all() == 4
    assert group.pids() == []
    group.remove()  # the root is still an unreaped zombie: the kernel lets the group go
    assert all(not d.exists() for d in group.dirs)
    group.remove()  # idempotent
    root.wait(timeout=5)
    assert root.returncode == -9


def test_stale_groups_are_ended_and_removed_at_hub_start(backend, groups, account):
    kept = groups(memory_bytes=100 * MiB)
    stale = groups(memory_bytes=100 * MiB, cpu_cores=0.5)
    sleeper = launch(stale, ["sleep", "60"], account)
    assert wait_until(lambda: stale.pids() == [sleeper.pid])

    reattached = attach_server_cgroup(backend, stale.server_id)
    assert reattached.memory_bytes == 100 * MiB and reattached.pids() == [sleeper.pid]
    if backend.enforces_cpu:
        assert reattached.cpu_cores == 0.5
    assert attach_server_cgroup(backend, "not-there") is None

    removed = remove_stale(backend, keep={kept.server_id})
    assert stale.server_id in removed and kept.server_id not in removed
    assert sleeper.wait(timeout=5) == -9
    assert all(not d.exists() for d in stale.dirs)
    assert kept.memory_dir.is_dir()


# -- the watchdog ---------------------------------------------------------------------

GROWING_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time; time.sleep({delay}); data = b'x' * ({mib} * 1048576); time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def start_tree(mib: int, delay: float = 0.0, env=None) -> tuple[subprocess.Popen, int]:
    """A process whose child allocates `mib` MiB after `delay` s: (root, child pid)."""
    root = subprocess.Popen(
        [PYTHON, "-c", GROWING_TREE.format(mib=mib, delay=delay)],
        stdout=subprocess.PIPE, text=True, start_new_session=True, env=env,
    )  # fmt: skip
    return root, int(root.stdout.readline())


def end_tree(root: subprocess.Popen) -> None:
    try:
        os.killpg(root.pid, 9)
    except ProcessLookupError:
        pass
    root.wait(timeout=5)
    root.stdout.close()


async def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def test_the_watchdog_ends_the_hungry_child_and_says_so():
    watchdog = MemoryWatchdog(interval=0.1)
    messages: list[str] = []
    root, child = start_tree(mib=250)
    try:
        watchdog.register("hungry", root.pid, 150 * MiB, messages.append)
        assert await wait_for(lambda: messages), watchdog.usage
        assert re.fullmatch(
            rf"Memory limit of 150 MiB reached: ended process {child} \(python3 -c, "
            r"\d+(\.\d)? MiB\)\. Restart the kernel or choose more memory\.",
            messages[0],
        ), messages
        assert await wait_for(lambda: not alive(child))
        assert alive(root.pid)  # the server itself is left alone
        await asyncio.sleep(0.3)
        assert len(messages) == 1  # nothing more to end
    finally:
        await watchdog.stop()
        end_tree(root)


async def test_the_watchdog_leaves_a_tree_under_its_limit_and_stops_on_unregister():
    watchdog = MemoryWatchdog(interval=0.1)
    messages: list[str] = []
    small, small_child = start_tree(mib=20)
    later, later_child = start_tree(mib=250, delay=0.5)
    try:
        watchdog.register("small", small.pid, 150 * MiB, messages.append)
        watchdog.register("later", later.pid, 150 * MiB, messages.append)
        assert await wait_for(lambda: watchdog.usage.get("small", 0) > 20 * MiB)
        watchdog.unregister("later")
        assert watchdog.servers == ("small",)
        await asyncio.sleep(1.0)  # "later" has grown past its limit meanwhile
        assert messages == []
        assert alive(small_child) and alive(later_child)
        watchdog.unregister("small")
        assert watchdog.servers == ()
    finally:
        await watchdog.stop()
        end_tree(small)
        end_tree(later)


ORPHAN = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        data = b"x" * (250 * 1048576)
        time.sleep(60)
    os._exit(0)
os.wait()
time.sleep(60)
"""


async def test_the_watchdog_follows_tagged_orphans_adopted_by_init():
    watchdog = MemoryWatchdog(interval=0.1)
    messages: list[str] = []
    server_id = "orphan-" + secrets.token_hex(4)
    root = subprocess.Popen(
        [PYTHON, "-c", ORPHAN], env={**os.environ, TAG: server_id}, start_new_session=True
    )
    try:
        watchdog.register(server_id, root.pid, 150 * MiB, messages.append)
        assert await wait_for(lambda: messages), watchdog.usage
        orphan = int(re.search(r"ended process (\d+)", messages[0]).group(1))
        assert orphan != root.pid
        assert await wait_for(lambda: not alive(orphan))
    finally:
        await watchdog.stop()
        root.kill()
        root.wait(timeout=5)


# -- GPUs -----------------------------------------------------------------------------


def test_gpu_pool_gives_distinct_devices_and_explains_exhaustion():
    pool = GpuPool(["GPU-a", "GPU-b", "GPU-c"])
    assert pool.allocate("alice/default", 2) == ("GPU-a", "GPU-b")
    assert pool.allocate("alice/default", 2) == ("GPU-a", "GPU-b")  # same ask, same answer
    assert pool.allocate("bob/default", 1) == ("GPU-c",)
    assert pool.allocate("carol/cpu-only", 0) == ()
    assert pool.free == () and pool.total == 3
    with pytest.raises(NoGpuFree, match=r"^1 GPU asked for, but only 0 of 3 are free: try again"):
        pool.allocate("carol/default", 1)
    with pytest.raises(NoGpuFree, match=r"^4 GPUs asked for, but this machine has 3"):
        pool.allocate("carol/default", 4)
    assert pool.release("alice/default") == ("GPU-a", "GPU-b")
    assert pool.release("alice/default") == ()
    with pytest.raises(NoGpuFree, match=r"^3 GPUs asked for, but only 2 of 3 are free"):
        pool.allocate("carol/default", 3)
    assert pool.allocate("carol/default", 2) == ("GPU-a", "GPU-b")
    assert pool.holders == {"bob/default": ("GPU-c",), "carol/default": ("GPU-a", "GPU-b")}


def test_gpu_pool_restores_holders_after_a_restart_and_refuses_conflicts():
    pool = GpuPool(["GPU-a", "GPU-b"])  # a new hub process: nobody holds anything yet
    assert pool.restore("alice/default", ["GPU-b"]) == ("GPU-b",)
    assert pool.restore("alice/default", ["GPU-b"]) == ("GPU-b",)  # idempotent
    assert pool.allocate("bob/default", 1) == ("GPU-a",)  # never alice's
    with pytest.raises(GpuConflict, match="carol/default was running on GPU.s. GPU-a, which bob"):
        pool.restore("carol/default", ["GPU-a"])
    with pytest.raises(GpuConflict, match="GPU-z, no longer on this machine"):
        pool.restore("carol/default", ["GPU-z"])
    assert "carol/default" not in pool.holders


def test_probe_gpus_reads_nvidia_smi_and_survives_its_failures(tmp_path):
    def fake(name, body):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
        return str(path)

    ok = fake(
        "ok", "echo '0, GPU-1111, NVIDIA A100-SXM4-40GB'; echo '1, GPU-2222, NVIDIA A100, rev 2'"
    )
    gpus, reason = probe_gpus(nvidia_smi=ok)
    assert [(g.index, g.id, g.name) for g in gpus] == [
        (0, "GPU-1111", "NVIDIA A100-SXM4-40GB"),
        (1, "GPU-2222", "NVIDIA A100, rev 2"),
    ]
    assert reason.startswith("2 GPU(s) found by nvidia-smi")
    assert GpuPool(gpus).allocate("x", 1) == ("GPU-1111",)

    failing = fake("failing", "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9")
    assert probe_gpus(nvidia_smi=failing) == (
        [],
        "no GPU: nvidia-smi failed (exit 9: NVIDIA-SMI has failed: no driver)",
    )
    hanging = fake("hanging", "exec sleep 10")
    assert probe_gpus(timeout=0.3, nvidia_smi=hanging) == (
        [],
        "no GPU: nvidia-smi did not answer within 0.3 s",
    )
    missing = probe_gpus(nvidia_smi=str(tmp_path / "missing"))
    assert missing[0] == [] and missing[1].startswith("no GPU: nvidia-smi could not run")


# -- enter.py errors ------------------------------------------------------------------


def run_enter(*args, module=False):
    prefix = (
        [sys.executable, "-I", "-m", "onyxia_hub.spawners.local.enter"]
        if module
        else enter.command([])[:-1]
    )
    return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("module", [False, True], ids=["by-path", "as-module"])
def test_enter_says_in_one_line_that_a_program_is_missing(module):
    result = run_enter("--", "no-such-program-xyz", "arg", module=module)
    assert result.returncode == 127
    assert result.stderr == "onyxia-hub enter: cannot run 'no-such-program-xyz': no such program\n"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--cgroup-procs", "/etc/passwd", "--", "true"], 1,
         "--cgroup-procs must name a cgroup.procs file, not '/etc/passwd'"),
        (["--cgroup-procs", "/nonexistent/cgroup.procs", "--", "true"], 1,
         "cannot enter the cgroup /nonexistent: No such file or directory"),
        (["--uid", "12345", "--", "true"], 1, "--uid and --gid go together"),
        (["--uid", "x", "--gid", "1", "--", "true"], 1, "--uid must be a number, not 'x'"),
        (["true"], 1, "unexpected argument 'true'; usage: enter.py --cgroup-procs FILE ..."),
        (["--"], 1, "no program given after --"),
        (["--", "/etc/passwd"], 126, "cannot run '/etc/passwd': permission denied"),
    ],
    ids=["not-cgroup-procs", "no-cgroup", "uid-alone", "uid-not-number", "no-separator",
         "no-program", "not-executable"],
)  # fmt: skip
def test_enter_fails_in_one_line_without_a_traceback(args, code, message):
    result = run_enter(*args)
    assert result.returncode == code
    assert result.stderr.startswith("onyxia-hub enter: " + message)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@needs_root
def test_enter_refuses_to_switch_to_root(account):
    result = run_enter("--uid", "0", "--gid", "0", "--", "true")
    assert result.returncode == 1
    assert "refusing to switch to uid or gid 0" in result.stderr


@needs_root
def test_enter_without_cgroups_only_drops_privileges(account):
    uid, gid = account
    result = run_enter("--uid", str(uid), "--gid", str(gid), "--", "id", "-u")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{uid}\n", "")
