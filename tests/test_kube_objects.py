"""The pod and Secret of a server, without a cluster.

- The pure builders of `onyxia_hub.spawners.k8s_objects`, one feature per test, against
  literal dicts (the kubespawner `objects.py` style).
- For every catalog entry (and every GPU type), the pod and Secret built by OnyxiaSpawner
  itself, KubeSpawner's configuration loading and API client patched out: valid against
  the Kubernetes 1.32 schemas, GPUs exactly as the catalog says, no secret in the pod nor
  in the logs, every secret in the Secret.
"""

from __future__ import annotations

import logging
import re
import shutil

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from traitlets import TraitError

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog
from onyxia_hub.catalog.model import frozen_map
from onyxia_hub.plan import GpuRequest, PlanFile
from onyxia_hub.quotas import LEDGER
from onyxia_hub.spawners.base import OnyxiaSpawnerMixin
from onyxia_hub.spawners.k8s_objects import (
    env_from_plan,
    event_message,
    files_from_plan,
    make_secret,
    plan_overrides,
    split_environment,
)
from tests.helpers.k8s_double import PLANTED, S3_KEY_ID, make_spawner
from tests.helpers.plans import a_plan
from tests.helpers.secrets import SecretScanner

CATALOG = load_catalog([default_catalog_path()])
ALL_GROUPS = sorted(set().union(*(s.groups for s in CATALOG.services)))
SCANNER = SecretScanner(PLANTED)
GIB = 1024**3


def as_json(model) -> dict:
    """A kubernetes_asyncio model as the client sends it (camelCase keys), without opening
    the HTTP session that `ApiClient()` creates."""
    return ApiClient.sanitize_for_serialization(ApiClient.__new__(ApiClient), model)


def assert_valid(obj: dict) -> None:
    """Valid for Kubernetes 1.32 (strict: no unknown field); the error names the path only,
    since the validator's own message quotes the whole object (secrets included)."""
    try:
        kubernetes_validate.validate(obj, "1.32", strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.caught.absolute_path)
        message = SCANNER.redact(e.caught.message)
        raise AssertionError(f"{obj['kind']} invalid at {path}: {message}") from None


A100 = GpuRequest(
    2,
    "a100",
    "NVIDIA A100",
    "nvidia.com/gpu",
    frozen_map({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}),
    (frozen_map({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}),),
)


# -- which variables are secret ---------------------------------------------------------
def test_the_hub_tokens_are_secret_whatever_the_pattern():
    env = {"JUPYTERHUB_API_TOKEN": "t1", "JPY_API_TOKEN": "t1", "JUPYTERHUB_USER": "alice"}
    assert split_environment(env, pattern="") == (
        {"JUPYTERHUB_USER": "alice"},
        {"JUPYTERHUB_API_TOKEN": "t1", "JPY_API_TOKEN": "t1"},
    )


def test_the_plans_secret_variables_are_secret():
    env = {"S3_KEY": "k", "LANG": "C.UTF-8"}
    assert split_environment(env, ["S3_KEY"], pattern="") == ({"LANG": "C.UTF-8"}, {"S3_KEY": "k"})


def test_names_that_look_secret_are_secret_in_any_case():
    env = {
        "HF_TOKEN": "a",
        "db_password": "b",
        "AWS_SECRET_ACCESS_KEY": "c",
        "GIT_CREDENTIALS": "d",
        "AWS_ACCESS_KEY_ID": "public",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/alice/oauth_callback",
    }
    public, secret = split_environment(env)
    assert public == {
        "AWS_ACCESS_KEY_ID": "public",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/alice/oauth_callback",
    }
    assert secret == {
        "HF_TOKEN": "a",
        "db_password": "b",
        "AWS_SECRET_ACCESS_KEY": "c",
        "GIT_CREDENTIALS": "d",
    }


def test_references_stay_in_the_pod():
    ref = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
    assert split_environment({"DB_PASSWORD": ref}) == ({"DB_PASSWORD": ref}, {})


def test_a_secret_variable_must_be_usable_as_a_secret_key():
    with pytest.raises(ValueError, match="cannot be a Secret key"):
        split_environment({"MY TOKEN": "x"})


# -- environment entries ----------------------------------------------------------------
def test_secret_variables_are_read_from_the_servers_secret():
    env = env_from_plan({"LANG": "C.UTF-8"}, ["JUPYTERHUB_API_TOKEN"], "jupyter-alice-secret")
    assert env == {
        "LANG": "C.UTF-8",
        "JUPYTERHUB_API_TOKEN": {
            "name": "JUPYTERHUB_API_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "jupyter-alice-secret", "key": "JUPYTERHUB_API_TOKEN"}
            },
        },
    }


# -- files ------------------------------------------------------------------------------
def test_files_are_secret_entries_mounted_one_by_one_secret_ones_outside_the_home():
    files = (
        PlanFile(".config/rclone/rclone.conf", "[s3]\n", mode=0o600, secret=True),
        PlanFile("README-onyxia.md", "Hello\n", mode=0o644),
    )
    data, volume, mounts = files_from_plan(files, "jupyter-alice-secret", "/home/jovyan")
    assert data == {"file-0": "[s3]\n", "file-1": "Hello\n"}
    assert volume == {
        "name": "server-files",
        "secret": {
            "secretName": "jupyter-alice-secret",
            "items": [
                {"key": "file-0", "path": "file-0", "mode": 0o600},
                {"key": "file-1", "path": "file-1", "mode": 0o644},
            ],
        },
    }
    assert mounts == [
        {
            "name": "server-files",
            "mountPath": "/var/run/onyxia-hub/secrets/.config/rclone/rclone.conf",
            "subPath": "file-0",
            "readOnly": True,
        },
        {
            "name": "server-files",
            "mountPath": "/home/jovyan/README-onyxia.md",
            "subPath": "file-1",
            "readOnly": True,
        },
    ]


def test_no_files_no_volume():
    assert files_from_plan((), "jupyter-alice-secret", "/home/jovyan") == ({}, None, [])


@pytest.mark.parametrize("path", ["/etc/passwd", "../bob/.bashrc", "a/../../x", "", "."])
def test_files_stay_inside_the_home(path):
    with pytest.raises(ValueError, match="inside the home"):
        files_from_plan((PlanFile(path, "x"),), "s", "/home/jovyan")


# -- the Secret -------------------------------------------------------------------------
def test_secret():
    secret = make_secret("jupyter-alice-secret", "onyxia", {"JPY_API_TOKEN": "t"})
    assert as_json(secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "jupyter-alice-secret", "namespace": "onyxia"},
        "type": "Opaque",
        "immutable": True,
        "stringData": {"JPY_API_TOKEN": "t"},
    }


def test_secret_owned_by_its_pod_and_labelled():
    secret = make_secret(
        "jupyter-alice-secret",
        "onyxia",
        {},
        owner_pod=("jupyter-alice", "0b5c6a52-1d0e-4a57-9b7c-2f3c9e1d2a10"),
        labels={"component": "singleuser-secret"},
        annotations={"hub.jupyter.org/username": "alice"},
    )
    assert as_json(secret)["metadata"] == {
        "name": "jupyter-alice-secret",
        "namespace": "onyxia",
        "labels": {"component": "singleuser-secret"},
        "annotations": {"hub.jupyter.org/username": "alice"},
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "jupyter-alice",
                "uid": "0b5c6a52-1d0e-4a57-9b7c-2f3c9e1d2a10",
            }
        ],
    }


# -- the pod's settings -----------------------------------------------------------------
def test_image_and_resources_requests_equal_limits():
    assert plan_overrides(a_plan()) == {
        "image": "quay.io/jupyter/scipy-notebook:2026-08-03",
        "cpu_guarantee": 1.0,
        "cpu_limit": 1.0,
        "mem_guarantee": 2 * GIB,
        "mem_limit": 2 * GIB,
        "extra_resource_limits": {},
        "node_selector": {},
        "tolerations": [],
        "default_url": "/lab",
    }


def test_gpus_are_the_catalogs_resource_with_its_placement():
    settings = plan_overrides(a_plan(gpu=A100))
    assert settings["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert settings["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert settings["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_the_operators_placement_is_kept_and_the_catalog_wins_on_a_key():
    settings = plan_overrides(
        a_plan(gpu=A100),
        node_selector={"pool": "users", "nvidia.com/gpu.product": "T4"},
        tolerations=[
            {"key": "pool", "value": "users", "effect": "NoSchedule"},
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ],
        extra_resource_limits={"ephemeral-storage": "10Gi"},
    )
    assert settings["node_selector"] == {
        "pool": "users",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    }
    assert settings["tolerations"] == [
        {"key": "pool", "value": "users", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert settings["extra_resource_limits"] == {"ephemeral-storage": "10Gi", "nvidia.com/gpu": "2"}


# -- events in words --------------------------------------------------------------------
IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-2026-08-03"
EVENTS = [
    ("00", "Scheduled", "Successfully assigned onyxia/jupyter-alice to gpu-node-3",
     (40, "A machine was found for your server")),
    ("01", "FailedScheduling",
     "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are "
     "available: 4 No preemption victims found for incoming pod.",
     (30, "Waiting for a machine with a free GPU (NVIDIA A100)")),
    ("02", "FailedScheduling", "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.5gb.",
     (30, "Waiting for a machine with a free GPU (NVIDIA A100)")),
    ("03", "FailedScheduling",
     "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.",
     (30, "Waiting for a machine with enough free processors and memory")),
    ("04", "FailedScheduling",
     "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
     (30, "Waiting for a machine with NVIDIA A100")),
    ("05", "TriggeredScaleUp", "pod triggered scale-up: [{gpu-pool 0->1 (max: 4)}]",
     (30, "The cluster is adding a machine for your server (this takes a few minutes)")),
    ("06", "Pulling", f'Pulling image "{IMAGE}"',
     (50, "Downloading the image of PyTorch GPU (first launch on this machine can take minutes)")),
    ("07", "Pulled", f'Successfully pulled image "{IMAGE}" in 41.2s',
     (70, "The image of PyTorch GPU is ready")),
    ("08", "Pulled", f'Container image "{IMAGE}" already present on machine',
     (70, "The image of PyTorch GPU is ready")),
    ("09", "Created", "Created container: notebook", (80, "Starting PyTorch GPU")),
    ("10", "Started", "Started container notebook",
     (90, "PyTorch GPU started, waiting for it to answer")),
    ("11", "Failed", 'Error: secret "jupyter-alice-secret" not found', None),
    ("12", "FailedMount",
     'MountVolume.SetUp failed for volume "server-files" : secret "jupyter-alice-secret" not found',
     None),
    ("13", "Failed", f'Failed to pull image "{IMAGE}": rpc error: code = NotFound',
     (50, "The image of PyTorch GPU could not be downloaded; trying again")),
    ("14", "BackOff", f'Back-off pulling image "{IMAGE}"',
     (50, "Retrying the download of the image of PyTorch GPU")),
    ("15", "BackOff", "Back-off restarting failed container notebook in pod jupyter-alice",
     (80, "PyTorch GPU stopped right after starting; trying again")),
    ("16", "FailedMount", "Unable to attach or mount volumes: timed out waiting for the condition",
     (40, "Waiting for your storage to be attached")),
    ("17", "Killing", "Stopping container notebook", None),
    ("18", "SomethingNew", "anything", None),
]  # fmt: skip


@pytest.mark.parametrize(
    "reason, message, said", [e[1:] for e in EVENTS], ids=[e[0] for e in EVENTS]
)
def test_event_in_words(reason, message, said):
    event = {"reason": reason, "message": message, "type": "Normal"}
    got = event_message(
        event, service="PyTorch GPU", secret_name="jupyter-alice-secret", gpu="NVIDIA A100"
    )
    assert got == said


# -- through OnyxiaSpawner --------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    """KubeSpawner without a cluster: no configuration loading, no API client."""
    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **kwargs: None)
    monkeypatch.setattr("kubespawner.spawner.shared_client", lambda *args, **kwargs: None)


async def build(spawner, options: dict) -> tuple[dict, dict]:
    """(pod, Secret) as OnyxiaSpawner sends them for these options; the claim released."""
    spawner.user_options = options
    try:
        await spawner.load_user_options()
        pod = as_json(await spawner.get_pod_manifest())
        secret = as_json(spawner.get_server_secret_manifest("9d1f7e2a-0000-4000-8000-00000000c0de"))
    finally:
        spawner.release_plan()
    return pod, secret


CASES = [
    pytest.param(s.name, t.name if t else None, id=f"{s.name}-{t.name}" if t else s.name)
    for s in CATALOG.services
    for t in (s.gpu.types if s.gpu else [None])
]


@pytest.mark.parametrize("service_name, gpu_type", CASES)
async def test_catalog_entry_pod_and_secret(offline, caplog, service_name, gpu_type):
    caplog.set_level(logging.DEBUG)
    service = CATALOG.get(service_name)
    spawner = make_spawner("alice", ALL_GROUPS, namespace="onyxia")
    options = {"service": service_name}
    if gpu_type:
        options["gpu_type"] = gpu_type
    pod, secret = await build(spawner, options)

    assert_valid(pod)
    assert_valid(secret)
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == service.default_version.image
    resources = container["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == service.cpu.default
    assert (
        resources["requests"]["memory"] == resources["limits"]["memory"] == service.memory.default
    )
    if gpu_type:
        gpu = service.gpu.type(gpu_type)
        assert resources["limits"][gpu.resource] == str(service.gpu.default_count)
        assert set(resources["limits"]) == {"cpu", "memory", gpu.resource}
        assert spec["nodeSelector"] == dict(gpu.node_selector)
        assert spec["tolerations"] == [dict(t) for t in gpu.tolerations]
    else:
        assert set(resources["limits"]) == {"cpu", "memory"}
        assert "nodeSelector" not in spec and "tolerations" not in spec

    SCANNER.assert_clean(SCANNER.scan_objects("pod", pod))
    env = {e["name"]: e for e in container["env"]}
    for name in (
        "JUPYTERHUB_API_TOKEN",
        "JPY_API_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        assert env[name] == {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": "jupyter-alice-secret", "key": name}},
        }
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID", "value": S3_KEY_ID}
    assert env["ONYXIA_HUB_SERVICE"] == {"name": "ONYXIA_HUB_SERVICE", "value": service_name}

    stored = secret["stringData"]
    assert stored == {
        "JUPYTERHUB_API_TOKEN": PLANTED["hub token"],
        "JPY_API_TOKEN": PLANTED["hub token"],
        "AWS_SECRET_ACCESS_KEY": PLANTED["S3 secret key"],
        "AWS_SESSION_TOKEN": PLANTED["S3 session token"],
        "file-0": f"token = {PLANTED['credentials file']}\n",
        "file-1": "theme = 'dark'\n",
    }
    assert secret["metadata"]["ownerReferences"][0]["name"] == pod["metadata"]["name"]
    secrets_dir = {"name": "ONYXIA_HUB_SECRETS_DIR", "value": "/var/run/onyxia-hub/secrets"}
    assert secrets_dir in container["env"]
    credentials = "/var/run/onyxia-hub/secrets/.config/onyxia/credentials"
    assert {"name": "server-files", "mountPath": credentials,
            "subPath": "file-0", "readOnly": True} in container["volumeMounts"]  # fmt: skip
    SCANNER.assert_clean(SCANNER.scan_text("logs", caplog.text))


async def test_no_claim_is_left_behind(offline):
    spawner = make_spawner("carol", namespace="onyxia")
    await build(spawner, {"service": "jupyter-python"})
    assert LEDGER.claims_of("carol") == {}


def test_the_spawn_form_is_the_catalogs(offline):
    spawner = make_spawner("alice", namespace="onyxia")
    assert spawner.options_form is OnyxiaSpawnerMixin._render_options_form
    assert spawner.options_from_form == spawner._onyxia_options_from_form
    assert spawner.profile_list == []


def test_profile_list_is_refused(offline):
    with pytest.raises(TraitError, match="catalog"):
        make_spawner("alice", namespace="onyxia", profile_list=[{"display_name": "Small"}])


async def test_operator_settings_are_kept_without_piling_up(offline):
    spawner = make_spawner(
        "alice",
        ALL_GROUPS,
        namespace="onyxia",
        node_selector={"pool": "users"},
        tolerations=[{"key": "pool", "operator": "Exists", "effect": "NoSchedule"}],
        volumes=[{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}],
        volume_mounts=[{"name": "shared", "mountPath": "/shared"}],
    )
    gpu_pod, _ = await build(spawner, {"service": "pytorch-gpu"})
    for pod in (gpu_pod, (await build(spawner, {"service": "jupyter-python"}))[0]):
        assert_valid(pod)
    cpu_pod = pod
    assert gpu_pod["spec"]["nodeSelector"] == {
        "pool": "users",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    }
    assert len(gpu_pod["spec"]["tolerations"]) == 2
    assert cpu_pod["spec"]["nodeSelector"] == {"pool": "users"}
    assert cpu_pod["spec"]["tolerations"] == [
        {"key": "pool", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert [v["name"] for v in cpu_pod["spec"]["volumes"]] == ["shared", "server-files"]
    assert set(cpu_pod["spec"]["containers"][0]["resources"]["limits"]) == {"cpu", "memory"}


async def test_operator_variables_that_look_secret_go_to_the_secret(offline):
    token = "hf_" + "x" * 30
    spawner = make_spawner(
        "alice",
        namespace="onyxia",
        environment={"HF_TOKEN": token, "PIP_INDEX_URL": "https://pypi"},
    )
    pod, secret = await build(spawner, {"service": "jupyter-python"})
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert "valueFrom" in env["HF_TOKEN"] and token not in str(pod)
    assert env["PIP_INDEX_URL"]["value"] == "https://pypi"
    assert secret["stringData"]["HF_TOKEN"] == token


async def test_file_paths_with_braces_stay_literal(offline, monkeypatch):
    from onyxia_hub.plan import Contribution
    from onyxia_hub.providers.base import PlanProvider

    class Braces(PlanProvider):
        async def contribute(self, request):
            return Contribution(files=(PlanFile("notes/{draft}.md", "x"),))

    spawner = make_spawner("alice", namespace="onyxia", provider_classes=[Braces])
    pod, _ = await build(spawner, {"service": "jupyter-python"})
    mounts = [m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]]
    assert mounts == ["/home/jovyan/notes/{draft}.md"]


def test_secret_env_pattern_must_compile(offline):
    with pytest.raises(TraitError, match="regular expression"):
        make_spawner("alice", namespace="onyxia", secret_env_pattern="(")
    assert re.compile(make_spawner("alice", namespace="onyxia").secret_env_pattern)


def test_catalog_changes_are_seen_after_the_recheck_interval(offline, tmp_path):
    shutil.copytree(default_catalog_path(), tmp_path / "profiles")
    spawner = make_spawner(
        "alice", namespace="onyxia", catalog_paths=[str(tmp_path / "profiles")],
        catalog_recheck_interval=3600,
    )  # fmt: skip
    assert spawner.catalog.get("jupyter-python").display_name == "Jupyter Python"
    path = tmp_path / "profiles" / "jupyter-python.yaml"
    path.write_text(path.read_text().replace("Jupyter Python", "Python (JupyterLab)"))
    assert spawner.catalog.get("jupyter-python").display_name == "Jupyter Python"
    spawner.catalog_recheck_interval = 0
    assert spawner.catalog.get("jupyter-python").display_name == "Python (JupyterLab)"
