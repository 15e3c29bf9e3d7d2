"""OnyxiaSpawner's start(), poll(), stop() and progress() against a Kubernetes API double.

The double (`tests.helpers.k8s_double.KubeDouble`) is a real HTTP server on 127.0.0.1
that KubeSpawner's kubernetes_asyncio client reaches through a kubeconfig, as it would a
cluster: reflectors list and watch pods and events, the spawner creates and deletes pods
and Secrets, a simulated kubelet moves pods along and a simulated garbage collector
deletes the Secrets a pod owns. Each test checks the exact writes (POST, DELETE) and
objects, that the Secret never outlives its server (also when the API refuses the pod or
the Secret halfway), that no quota claim is left behind, and that the logs, read at DEBUG
level, hold no secret value and no pod spec.
"""

from __future__ import annotations

import asyncio
import base64
import logging

import jupyterhub
import kubespawner
import pytest
import pytest_asyncio
from kubespawner import KubeSpawner
from kubespawner import clients as kubespawner_clients

from onyxia_hub.quotas import LEDGER
from onyxia_hub.spawners.kube import KubernetesRefusal
from tests.helpers.k8s_double import PLANTED, KubeDouble, make_spawner
from tests.helpers.secrets import SecretScanner

NAMESPACE = "onyxia"
SCANNER = SecretScanner(PLANTED)
POD_SPEC_MARKERS = ("secretKeyRef", "JUPYTERHUB_API_URL", "containerPort", "Failed for")


@pytest_asyncio.fixture(scope="module")
async def double(tmp_path_factory):
    """One API double for the module (KubeSpawner keeps one client and one set of
    reflectors per process), reset before each test."""
    import kubernetes_asyncio.config.kube_config as kube_config

    api = KubeDouble(NAMESPACE)
    await api.start()
    kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    with pytest.MonkeyPatch.context() as patch:
        # KUBECONFIG as kubernetes_asyncio read it at import
        patch.setenv("KUBECONFIG", str(kubeconfig))
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        kubespawner_clients.load_config.cache_clear()
        kubespawner_clients._client_cache.clear()
        try:
            yield api
        finally:
            await KubeSpawner._stop_all_reflectors()
            for client in kubespawner_clients._client_cache.values():
                await client.api_client.close()
            kubespawner_clients._client_cache.clear()
            kubespawner_clients.load_config.cache_clear()
            await api.stop()


@pytest.fixture
def kube(double, caplog):
    double.reset()
    caplog.set_level(logging.DEBUG)
    return double


def spawner_for(user: str, groups=(), **config):
    config.setdefault("start_timeout", 10)
    config.setdefault("k8s_api_request_retry_timeout", 10)
    return make_spawner(user, groups, namespace=NAMESPACE, **config)


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def follow_progress(spawner) -> tuple[asyncio.Task, list[dict]]:
    seen: list[dict] = []

    async def read():
        async for event in spawner.progress():
            seen.append(event)

    return asyncio.ensure_future(read()), seen


def assert_logs_clean(caplog) -> None:
    text = caplog.text
    SCANNER.assert_clean(SCANNER.scan_text("logs", text))
    for marker in POD_SPEC_MARKERS:
        assert marker not in text, f"a pod spec reached the logs ({marker!r})"
    assert not [r for r in caplog.records if str(r.msg).startswith("response body")]


def assert_nothing_left(kube, user: str) -> None:
    assert kube.pods == {}
    assert kube.secrets == {}
    assert LEDGER.claims_of(user) == {}
    assert kube.invalid == []


def secret_value(secret: dict, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


# -- start and stop ---------------------------------------------------------------------
async def test_start_creates_the_pod_then_its_secret_owned_by_it_and_stop_deletes_both(
    kube, caplog
):
    spawner = spawner_for("alice")
    spawner.user_options = {"service": "jupyter-python"}

    assert await spawner.start() == "http://10.1.2.3:8888"

    assert kube.writes() == [
        ("POST", "pods", "jupyter-alice"),
        ("POST", "secrets", "jupyter-alice-secret"),
    ]
    (pod,) = kube.created("pods")
    (secret,) = kube.created("secrets")
    SCANNER.assert_clean(SCANNER.scan_objects("pod", pod))
    uid = kube.pods["jupyter-alice"]["metadata"]["uid"]
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "jupyter-alice-secret",
            "namespace": NAMESPACE,
            "labels": {
                "hub.jupyter.org/username": "alice",
                "component": "singleuser-secret",
                "app.kubernetes.io/name": "jupyterhub",
                "app.kubernetes.io/managed-by": "kubespawner",
                "app": "jupyterhub",
                "heritage": "jupyterhub",
            },
            "annotations": {
                "hub.jupyter.org/username": "alice",
                "hub.jupyter.org/kubespawner-version": kubespawner.__version__,
                "hub.jupyter.org/jupyterhub-version": jupyterhub.__version__,
            },
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "jupyter-alice", "uid": uid}
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "stringData": {
            "JUPYTERHUB_API_TOKEN": PLANTED["hub token"],
            "JPY_API_TOKEN": PLANTED["hub token"],
            "AWS_SECRET_ACCESS_KEY": PLANTED["S3 secret key"],
            "AWS_SESSION_TOKEN": PLANTED["S3 session token"],
            "file-0": f"token = {PLANTED['credentials file']}\n",
            "file-1": "theme = 'dark'\n",
        },
    }
    assert LEDGER.claims_of("alice")[""].service == "jupyter-python"
    assert await spawner.poll() is None

    await spawner.stop()
    assert kube.writes()[2:] == [
        ("DELETE", "secrets", "jupyter-alice-secret"),
        ("DELETE", "pods", "jupyter-alice"),
    ]
    assert_nothing_left(kube, "alice")
    assert_logs_clean(caplog)


async def test_a_named_server_gets_its_own_pod_and_secret(kube, caplog):
    spawner = spawner_for("alice", server_name="course")
    spawner.user_options = {"service": "jupyter-python"}
    await spawner.start()
    assert kube.writes() == [
        ("POST", "pods", "jupyter-alice--course"),
        ("POST", "secrets", "jupyter-alice--course-secret"),
    ]
    await spawner.stop()
    assert_nothing_left(kube, "alice")


async def test_gpu_placement_and_progress_in_words(kube, caplog):
    spawner = spawner_for("gina", ["gpu-users"])
    spawner.user_options = {"service": "pytorch-gpu", "gpu_type": "a100"}
    kube.scheduling_hold = (
        "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are "
        "available: 4 No preemption victims found for incoming pod."
    )
    reader, seen = follow_progress(spawner)
    start = asyncio.ensure_future(spawner.start())
    gpu_wait = "Waiting for a machine with a free GPU (NVIDIA A100 40 GB (whole GPU))"
    await wait_for(lambda: gpu_wait in [e["message"] for e in seen], what="the GPU wait")
    assert not start.done()
    kube.scheduling_hold = None
    await start
    started = "PyTorch GPU started, waiting for it to answer"
    await wait_for(lambda: seen and seen[-1]["message"] == started, what="the last message")
    reader.cancel()

    assert [e["message"] for e in seen] == [
        "Checking your choice",
        "Reserving resources within your quota",
        "Asking the cluster for 2 CPU, 8 GiB, 1 GPU",
        gpu_wait,
        "A machine was found for your server",
        "Downloading the image of PyTorch GPU (first launch on this machine can take minutes)",
        "The image of PyTorch GPU is ready",
        "Starting PyTorch GPU",
        started,
    ]
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress)
    (pod,) = kube.created("pods")
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    await spawner.stop()
    assert_nothing_left(kube, "gina")
    assert_logs_clean(caplog)


async def test_the_brief_wait_for_the_secret_is_not_a_failure(kube, caplog):
    kube.delays[("POST", "secrets")] = 0.3  # the kubelet reaches the container first
    spawner = spawner_for("bruno")
    spawner.user_options = {"service": "jupyter-python"}
    reader, seen = follow_progress(spawner)

    assert await spawner.start() == "http://10.1.2.3:8888"
    await wait_for(lambda: seen and "started" in seen[-1]["message"], what="the last message")
    reader.cancel()

    waited = [
        e for e in kube.objects["events"].values()
        if e["reason"] == "Failed" and "jupyter-bruno-secret" in e["message"]
    ]  # fmt: skip
    assert waited, "the kubelet did not have to wait: the test proves nothing"
    messages = " ".join(e["message"] for e in seen)
    assert "secret" not in messages.lower() and "could not" not in messages
    await spawner.stop()
    assert_nothing_left(kube, "bruno")
    assert_logs_clean(caplog)


# -- failures halfway -------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 422, 403])
async def test_a_refused_pod_leaves_no_secret_and_no_spec_in_the_logs(kube, caplog, status):
    kube.fail("POST", "pods", status)
    spawner = spawner_for("rita")
    spawner.user_options = {"service": "jupyter-python"}

    with pytest.raises(KubernetesRefusal) as refused:
        await spawner.start()

    assert str(refused.value).startswith("Kubernetes refused the pod of rita (HTTP")
    assert str(status) in str(refused.value)
    assert ("POST", "secrets", "jupyter-rita-secret") not in kube.writes()
    assert kube.writes() == [
        ("POST", "pods", "jupyter-rita"),
        ("DELETE", "secrets", "jupyter-rita-secret"),  # nothing there: 404, made sure
        ("DELETE", "pods", "jupyter-rita"),
    ]
    assert_nothing_left(kube, "rita")
    assert_logs_clean(caplog)
    assert f"HTTP {status}" in caplog.text


async def test_a_refused_secret_takes_the_pod_with_it(kube, caplog):
    kube.fail("POST", "secrets", 500)
    spawner = spawner_for("sam")
    spawner.user_options = {"service": "jupyter-python"}

    with pytest.raises(KubernetesRefusal, match=r"the Secret of sam \(HTTP 500"):
        await spawner.start()

    assert kube.writes() == [
        ("POST", "pods", "jupyter-sam"),
        ("POST", "secrets", "jupyter-sam-secret"),
        ("DELETE", "secrets", "jupyter-sam-secret"),
        ("DELETE", "pods", "jupyter-sam"),
    ]
    assert_nothing_left(kube, "sam")
    assert_logs_clean(caplog)


async def test_a_start_that_times_out_removes_pod_and_secret(kube, caplog):
    kube.image_pull_fails = True
    spawner = spawner_for("tom", start_timeout=1)
    spawner.user_options = {"service": "jupyter-python"}
    reader, seen = follow_progress(spawner)

    with pytest.raises(TimeoutError):
        await spawner.start()
    reader.cancel()

    assert kube.writes() == [
        ("POST", "pods", "jupyter-tom"),
        ("POST", "secrets", "jupyter-tom-secret"),
        ("DELETE", "secrets", "jupyter-tom-secret"),
        ("DELETE", "pods", "jupyter-tom"),
    ]
    assert any("could not be downloaded" in e["message"] for e in seen)
    assert_nothing_left(kube, "tom")
    assert_logs_clean(caplog)


async def test_leftovers_of_the_same_name_are_replaced(kube, caplog):
    old = kube.put(
        "pods",
        {
            "metadata": {"name": "jupyter-uma", "labels": {"component": "singleuser-server"}},
            "spec": {"containers": [{"name": "notebook", "image": "old:1"}]},
        },
    )
    kube.put(
        "secrets",
        {
            "metadata": {
                "name": "jupyter-uma-secret",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": "jupyter-uma",
                        "uid": old["metadata"]["uid"],
                    }  # fmt: skip
                ],
            },
            "data": {"JUPYTERHUB_API_TOKEN": base64.b64encode(b"an-old-token").decode()},
        },
    )
    spawner = spawner_for("uma")
    spawner.user_options = {"service": "jupyter-python"}
    await spawner.start()

    assert kube.writes() == [
        ("POST", "pods", "jupyter-uma"),  # 409
        ("DELETE", "secrets", "jupyter-uma-secret"),
        ("DELETE", "pods", "jupyter-uma"),
        ("POST", "pods", "jupyter-uma"),
        ("POST", "secrets", "jupyter-uma-secret"),
    ]
    secret = kube.secrets["jupyter-uma-secret"]
    assert secret_value(secret, "JUPYTERHUB_API_TOKEN") == PLANTED["hub token"]
    owner = secret["metadata"]["ownerReferences"][0]["uid"]
    assert owner == kube.pods["jupyter-uma"]["metadata"]["uid"] != old["metadata"]["uid"]
    await spawner.stop()
    assert_nothing_left(kube, "uma")
    assert_logs_clean(caplog)


# -- poll, and a hub restart ------------------------------------------------------------
async def test_a_server_that_exits_is_reported_and_its_secret_deleted(kube, caplog):
    spawner = spawner_for("vera")
    spawner.user_options = {"service": "jupyter-python"}
    await spawner.start()
    assert await spawner.poll() is None

    await kube.terminate("jupyter-vera", exit_code=3)
    await wait_for(
        lambda: (
            KubeSpawner.reflectors[("pods", NAMESPACE)].pods[f"{NAMESPACE}/jupyter-vera"]["status"][
                "phase"
            ]
            == "Failed"
        ),
        what="the pod reflector",
    )
    assert await spawner.poll() == 3

    assert kube.writes()[2:] == [
        ("DELETE", "secrets", "jupyter-vera-secret"),
        ("DELETE", "pods", "jupyter-vera"),
    ]
    assert_nothing_left(kube, "vera")
    assert_logs_clean(caplog)


async def test_state_carries_the_claim_and_secret_across_a_hub_restart(kube, caplog):
    first = spawner_for("wade")
    first.user_options = {"service": "jupyter-python", "cpu": 2}
    await first.start()
    state = first.get_state()
    assert state["secret_name"] == "jupyter-wade-secret"
    assert state["claim"]["cpu"] == 2

    LEDGER.release("wade", "")  # the hub restarts: its ledger is empty
    second = spawner_for("wade")
    second.load_state(state)
    assert LEDGER.claims_of("wade")[""].cpu == 2
    assert second.get_state()["claim"] == state["claim"]
    assert await second.poll() is None

    await second.stop()
    assert kube.writes()[2:] == [
        ("DELETE", "secrets", "jupyter-wade-secret"),
        ("DELETE", "pods", "jupyter-wade"),
    ]
    second.clear_state()
    assert "claim" not in second.get_state()
    assert_nothing_left(kube, "wade")
    assert_logs_clean(caplog)


async def test_a_pod_deleted_behind_the_hubs_back_takes_its_secret(kube, caplog):
    spawner = spawner_for("xena")
    spawner.user_options = {"service": "jupyter-python"}
    await spawner.start()

    kube.remove("pods", "jupyter-xena")  # kubectl delete, an eviction...
    assert kube.secrets == {}  # the garbage collector followed the owner reference
    await wait_for(
        lambda: f"{NAMESPACE}/jupyter-xena" not in KubeSpawner.reflectors[("pods", NAMESPACE)].pods,
        what="the pod reflector",
    )
    assert await spawner.poll() == 1
    assert kube.writes()[2:] == [("DELETE", "secrets", "jupyter-xena-secret")]  # 404: gone
    spawner.clear_state()  # what the hub does next
    assert_nothing_left(kube, "xena")
    assert_logs_clean(caplog)


async def test_kubespawners_own_objects_are_not_logged_when_refused(kube, caplog):
    """KubeSpawner's TLS Secret (internal_ssl) holds a private key: refused, it is not logged."""
    from onyxia_hub.spawners.k8s_objects import make_secret

    spawner = spawner_for("yann")
    key = make_secret("jupyter-yann", NAMESPACE, {"ssl.key": PLANTED["credentials file"]})
    kube.fail("POST", "secrets", 500)
    with pytest.raises(KubernetesRefusal, match=r"the secret of yann \(HTTP 500"):
        await spawner._make_create_resource_request("secret", key)
    assert await spawner._make_create_resource_request("secret", key) is True
    kube.fail("POST", "secrets", 409)  # already there: fine, as in KubeSpawner
    assert await spawner._make_create_resource_request("secret", key) is True
    assert_logs_clean(caplog)
