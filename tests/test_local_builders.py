"""What a server on one machine is made of, without starting one.

The pure builders of `onyxia_hub.spawners.local.builders` and the environment layers both
adapters share (`onyxia_hub.spawners.environment`), one feature per test, against literal
values (as tests/test_kube_objects.py does for pods); the claim kept across restarts by
the mixin for both adapters; and the one memory formatter.
"""

from __future__ import annotations

import json
import os
import re
import sys
from subprocess import DEVNULL

import pytest

from onyxia_hub.catalog.model import frozen_map
from onyxia_hub.plan import LaunchPlan, PlanFile, Resources
from onyxia_hub.quantities import human_memory
from onyxia_hub.quotas import LEDGER, Claim
from onyxia_hub.spawners import environment
from onyxia_hub.spawners.local import builders, enter, software
from onyxia_hub.spawners.local.software import Software
from tests.helpers import plans

GIB = 1024**3
MIB = 1024**2
ENTER = os.path.abspath(enter.__file__)
HUB_ENV = {"JUPYTERHUB_API_TOKEN": "hub-token", "LANG": "C.UTF-8", "HOME": "/homes/alice"}


def a_plan(**changes) -> LaunchPlan:
    """tests/helpers/plans.py's plan, with a variable of each kind."""
    fields = dict(
        environment=frozen_map({"LANG": "fr_FR.UTF-8", "AWS_DEFAULT_REGION": "us-east-1"}),
        local_environment=frozen_map({"SPARK_LOCAL_IP": "127.0.0.1"}),
        secret_environment=frozen_map({"AWS_SECRET_ACCESS_KEY": "s3-secret"}),
    )
    fields.update(changes)
    return plans.a_plan(**fields)


SECRET_FILE = PlanFile("git/token", "glpat-x", 0o600, secret=True)
PUBLIC_FILE = PlanFile(".config/app.json", "{}", 0o644)


# -- the layers both adapters share -------------------------------------------------------
def test_the_plan_overrides_the_hub_and_secrets_come_last():
    plan = a_plan(
        environment=frozen_map({"LANG": "fr_FR.UTF-8", "X": "plan"}),
        local_environment=frozen_map({"X": "local"}),
        secret_environment=frozen_map({"X": "secret", "S3": "k"}),
    )
    made = environment.assemble(
        HUB_ENV, plan, secrets_dir="/run/s", adapter_environment={"X": "local"}
    )
    assert made.variables == {
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "LANG": "fr_FR.UTF-8",
        "HOME": "/homes/alice",
        "X": "secret",
        "S3": "k",
    }
    assert made.secret_names == {"X", "S3"} and made.public_names == frozenset()


def test_kubernetes_takes_no_local_environment():
    made = environment.assemble(HUB_ENV, a_plan(), secrets_dir="/var/run/onyxia-hub/secrets")
    assert "SPARK_LOCAL_IP" not in made.variables


def test_the_secrets_directory_is_named_only_when_there_are_secret_files():
    without = environment.assemble({}, a_plan(files=(PUBLIC_FILE,)), secrets_dir="/run/s")
    assert "ONYXIA_HUB_SECRETS_DIR" not in without.variables
    made = environment.assemble({}, a_plan(files=(SECRET_FILE,)), secrets_dir="/run/s")
    assert made.variables["ONYXIA_HUB_SECRETS_DIR"] == "/run/s"
    assert made.public_names == {"ONYXIA_HUB_SECRETS_DIR"}  # a path, despite its name


def test_without_a_plan_the_base_alone():
    made = environment.assemble(HUB_ENV, None, secrets_dir="/run/s")
    assert made.variables == HUB_ENV and not made.secret_names


# -- the local builders ---------------------------------------------------------------------
def test_secret_files_go_to_memory_public_ones_to_the_home():
    assert builders.file_destinations((SECRET_FILE, PUBLIC_FILE), "/homes/alice", "/dev/shm/s") == (
        builders.FileDestination("/dev/shm/s", "git/token", "glpat-x", 0o600, True),
        builders.FileDestination("/homes/alice", ".config/app.json", "{}", 0o644, False),
    )
    assert (
        builders.secrets_directory("/dev/shm/onyxia-hub/ab12") == "/dev/shm/onyxia-hub/ab12/secrets"
    )


def test_the_local_environment():
    plan = a_plan(files=(SECRET_FILE,))
    env = builders.server_environment(
        HUB_ENV,
        plan,
        server_id="ab12",
        runtime_dir="/dev/shm/onyxia-hub/ab12",
        secrets_dir="/dev/shm/onyxia-hub/ab12/secrets",
        gpus=("GPU-0", "GPU-1"),
    )
    assert env == {
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "LANG": "fr_FR.UTF-8",
        "HOME": "/homes/alice",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
        "ONYXIA_HUB_SECRETS_DIR": "/dev/shm/onyxia-hub/ab12/secrets",
        "ONYXIA_HUB_SERVER_ID": "ab12",
        "JUPYTER_RUNTIME_DIR": "/dev/shm/onyxia-hub/ab12",
        "XDG_RUNTIME_DIR": "/dev/shm/onyxia-hub/ab12",
        "CUDA_VISIBLE_DEVICES": "GPU-0,GPU-1",
        "NVIDIA_VISIBLE_DEVICES": "GPU-0,GPU-1",
    }


def test_no_gpu_means_an_empty_device_list_whatever_the_machine_has():
    env = builders.server_environment(
        {"CUDA_VISIBLE_DEVICES": "0"}, a_plan(), server_id="x", runtime_dir="/r",
        secrets_dir="/r/secrets", gpus=(),
    )  # fmt: skip
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == ""


PYSPARK = Software("pyspark", ("/envs/pyspark", "/envs/python"), "3.11")


def test_the_command_is_the_environments_server_without_user_site_packages():
    default = ["jupyterhub-singleuser"]
    assert builders.server_argv(a_plan(), PYSPARK, default, ["--port=8888"]) == [
        "/envs/pyspark/bin/python", "-s", "-P", "-m", "jupyterhub.singleuser", "--port=8888",
    ]  # fmt: skip
    r_plan = a_plan(command=("R", "--no-save"))
    assert builders.server_argv(r_plan, PYSPARK, default, []) == ["R", "--no-save"]
    # an operator's own c.Spawner.cmd is run as given
    assert builders.server_argv(a_plan(), PYSPARK, ["/opt/lab/bin/serve"], []) == [
        "/opt/lab/bin/serve"
    ]


def test_an_environment_and_its_base_come_before_the_users_programs_and_the_system():
    assert software.server_path(PYSPARK, "/homes/alice") == (
        "/envs/pyspark/bin:/envs/python/bin:/homes/alice/.local/bin:/usr/local/bin:/usr/bin:/bin"
    )
    assert PYSPARK.site_packages == (
        "/envs/pyspark/lib/python3.11/site-packages",
        "/envs/python/lib/python3.11/site-packages",
    )


def describe(envs, env_name, **fields):
    (envs / env_name).mkdir(parents=True)
    (envs / env_name / software.DESCRIPTION).write_text(json.dumps(fields))


def test_an_environment_is_found_with_its_bases(tmp_path):
    describe(tmp_path, "python", base=None, python="3.11")
    describe(tmp_path, "pyspark", base="python", python="3.11")
    found = software.find(str(tmp_path), "pyspark")
    assert found == Software(
        "pyspark", (str(tmp_path / "pyspark"), str(tmp_path / "python")), "3.11"
    )


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "it is not built here"),
        ({"pyspark": {"base": "python", "python": "3.11"}}, "its base python is not built here"),
        ({"pyspark": {"base": "pyspark", "python": "3.11"}}, "its bases loop"),
        ({"pyspark": {"python": 3}}, "pyspark's onyxia-environment.json is not valid"),
        (
            {"pyspark": {"base": "python", "python": "3.11"}, "python": {"python": "3.12"}},
            "it has Python 3.11 but its base python has Python 3.12",
        ),
        (
            {"pyspark": {"python": "3.11", "needs": ["/nonexistent/IRkernel", "/"]}},
            "it needs /nonexistent/IRkernel (environments/pyspark/debian-packages)",
        ),
    ],
)
def test_a_missing_or_broken_environment_is_named(tmp_path, layout, message):
    for name, fields in layout.items():
        describe(tmp_path, name, **fields)
    with pytest.raises(software.SoftwareMissing, match=re.escape(message)):
        software.find(str(tmp_path), "pyspark")


@pytest.mark.parametrize(
    "procs_files, uid, expected",
    [
        (None, None, ["jupyterhub-singleuser", "--debug"]),
        (None, 1001, ["/py", "-I", ENTER, "--uid", "1001", "--gid", "1002", "--",
                      "jupyterhub-singleuser", "--debug"]),
        (["/sys/fs/cgroup/onyxia-hub/ab12/cgroup.procs"], 1001,
         ["/py", "-I", ENTER, "--cgroup-procs", "/sys/fs/cgroup/onyxia-hub/ab12/cgroup.procs",
          "--uid", "1001", "--gid", "1002", "--", "jupyterhub-singleuser", "--debug"]),
        ([], None, ["/py", "-I", ENTER, "--", "jupyterhub-singleuser", "--debug"]),
    ],
    ids=["plain", "account", "cgroup-and-account", "cgroup-v1-empty"],
)  # fmt: skip
def test_the_launcher_only_when_a_cgroup_or_an_account_is_involved(procs_files, uid, expected):
    argv = ["jupyterhub-singleuser", "--debug"]
    gid = 1002 if uid else None
    assert builders.launch_command(argv, procs_files, uid, gid, python="/py") == expected


def test_the_process_options():
    assert builders.popen_options({"A": "1"}, "/homes/alice") == {
        "env": {"A": "1"},
        "cwd": "/homes/alice",
        "start_new_session": True,
        "stdin": DEVNULL,
        "umask": 0o077,
        "close_fds": True,
    }
    assert builders.launch_command(["x"], None, None, None) == ["x"]
    assert builders.launch_command(["x"], [], None, None)[0] == sys.executable


@pytest.mark.parametrize(
    "cpu, memory, text",
    [(0.5, GIB, "0.5 CPU, 1 GiB"), (2, int(1.15 * GIB), "2 CPU, 1.15 GiB"),
     (16, 512 * MIB, "16 CPU, 512 MiB")],
)  # fmt: skip
def test_the_limits_in_words(cpu, memory, text):
    assert builders.limits_summary(Resources(cpu, cpu, memory, memory)) == text


# -- one memory formatter -----------------------------------------------------------------
@pytest.mark.parametrize(
    "size, text",
    [(0, "0 B"), (300, "300 B"), (1536, "1.5 KiB"), (150 * MIB, "150 MiB"),
     (1023 * MIB, "1023 MiB"), (GIB, "1 GiB"), (int(1.15 * GIB), "1.15 GiB"),
     (int(12.5 * GIB), "12.5 GiB"), (100 * GIB, "100 GiB"), (1024 * GIB, "1 TiB")],
)  # fmt: skip
def test_memory_is_written_one_way_everywhere(size, text):
    assert human_memory(size) == text


# -- the claim, kept across restarts by the mixin ------------------------------------------
def test_a_restored_claim_is_saved_again_without_a_plan():
    """After a hub restart the plan is gone but the claim must stay in the state both
    adapters save (`claim_state`): a second restart would otherwise free the quota of a
    server still running."""
    from onyxia_hub.spawners.base import OnyxiaSpawnerMixin

    class Adapter(OnyxiaSpawnerMixin):
        _log_name = "claim-alice/srv"

    spawner = Adapter.__new__(Adapter)  # the mixin's methods only: no hub, no traits
    spawner.__dict__.update(user=type("User", (), {"name": "claim-alice"})(), name="srv")
    claim = Claim("jupyter-python", 2.0, 4 * GIB, 0)
    try:
        spawner.restore_claim({"claim": claim.__dict__})
        assert LEDGER.usage("claim-alice").cpu == 2.0
        assert spawner.claim_state() == {"claim": claim.__dict__}  # no plan since the restart
        spawner.__dict__["plan"] = None
        spawner.release_plan()
        assert spawner.claim_state() == {} and LEDGER.usage("claim-alice").cpu == 0
    finally:
        LEDGER.release("claim-alice", "srv")


def test_the_spawn_page_says_how_to_fix_a_missing_environment(tmp_path):
    from onyxia_hub.spawners.local.spawner import _missing_software

    with pytest.raises(software.SoftwareMissing) as unbuilt:
        software.find(str(tmp_path), "pyspark")
    assert _missing_software("pyspark", unbuilt.value) == (
        "needs the pyspark environment: it is not built here "
        "(scripts/setup --with pyspark builds it)"
    )
    describe(tmp_path, "r", python="3.11", needs=["/nonexistent/IRkernel"])
    with pytest.raises(software.SoftwareMissing) as lacking:
        software.find(str(tmp_path), "r")
    # built, but the machine lacks Debian's packages: setup would not help
    assert _missing_software("r", lacking.value) == (
        "needs the r environment: it needs /nonexistent/IRkernel (environments/r/debian-packages)"
    )
