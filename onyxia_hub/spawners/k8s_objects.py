"""Pure builders for the Kubernetes objects of one server, and a reader of its events.

Plain values in, plain dicts or kubernetes_asyncio models out; no I/O, no spawner (the
style of kubespawner's `objects.py`). `OnyxiaSpawner` (`kube.py`) calls them and does the
API requests. Each is tested against literal dicts in `tests/test_kube_objects.py`.

- `split_environment`: which variables are secret (the rule is in its docstring).
- `env_from_plan`: entries for KubeSpawner's `env`: public values in clear, secret ones
  as `valueFrom.secretKeyRef` to the server's Secret.
- `files_from_plan`: the plan's files as Secret entries, one Secret volume and one
  read-only `subPath` mount per file, with the file's mode.
- `make_secret`: the server's Secret (immutable, owned by the pod when its UID is known).
- `plan_overrides`: the KubeSpawner settings a plan decides (image, resources, GPUs as the
  catalog's extended resource, node selector, tolerations), over the operator's own.
- `event_message`: a Kubernetes event of the server's pod in words a user understands.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from kubernetes_asyncio.client.models import V1ObjectMeta, V1OwnerReference, V1Secret

from ..plan import LaunchPlan, PlanFile

ALWAYS_SECRET = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})
DEFAULT_SECRET_PATTERN = r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PRIVATE_KEY|CREDENTIAL"  # noqa: S105
FILES_VOLUME = "server-files"
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


# -- environment ------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _looks_secret(name: str, pattern: str) -> bool:
    return bool(pattern) and re.search(pattern, name, re.IGNORECASE) is not None


def split_environment(
    env: Mapping[str, object],
    secret_names: Iterable[str] = (),
    pattern: str = DEFAULT_SECRET_PATTERN,
    public_names: Iterable[str] = (),
) -> tuple[dict[str, object], dict[str, str]]:
    """(public, secret) variables of env.

    A variable with a text value is secret when it is the hub's token
    (`JUPYTERHUB_API_TOKEN`, `JPY_API_TOKEN`), when it is in secret_names (the plan's
    `secret_environment`), or when its name matches pattern (searched, any case: by
    default names containing TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE, PRIVATE_KEY or
    CREDENTIAL) and it is not in public_names (paths whose names only look secret, such
    as `ONYXIA_HUB_SECRETS_DIR`). Entries that are already Kubernetes `EnvVar` dicts
    (`valueFrom`...) stay public: they hold a reference, not a value.
    """
    names = ALWAYS_SECRET | set(secret_names)
    plain = set(public_names) - names
    public: dict[str, object] = {}
    secret: dict[str, str] = {}
    for name, value in env.items():
        looks_secret = name not in plain and _looks_secret(name, pattern or "")
        if isinstance(value, str) and (name in names or looks_secret):
            if not _SECRET_KEY.fullmatch(name):
                raise ValueError(f"secret variable {name!r} cannot be a Secret key")
            secret[name] = value
        else:
            public[name] = value
    return public, secret


def env_from_plan(
    public: Mapping[str, object], secret: Iterable[str], secret_name: str
) -> dict[str, object]:
    """KubeSpawner `env` entries: public values as they are, each secret variable read
    from the key of the same name in the Secret `secret_name` (the container does not
    start until that Secret exists)."""
    env = dict(public)
    for name in secret:
        env[name] = {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}},
        }
    return env


# -- files ------------------------------------------------------------------------------
def _relative_path(path: str) -> str:
    normal = posixpath.normpath(path)
    if not path or path.startswith("/") or normal == "." or normal.split("/")[0] == "..":
        raise ValueError(f"a plan file's path must stay inside the home: {path!r}")
    return normal


SECRETS_DIR = "/var/run/onyxia-hub/secrets"
"""Where secret plan files are mounted in a pod (a Secret volume: memory-backed)."""


def files_from_plan(
    files: Iterable[PlanFile], secret_name: str, home: str
) -> tuple[dict[str, str], dict | None, list[dict]]:
    """(Secret entries, volume, mounts) placing each file with its mode: public files at
    `home/path`, secret ones at `SECRETS_DIR/path` (never in the home's volume).

    Files are entries `file-0`, `file-1`... of the server's Secret (public files too: one
    object, one lifecycle), projected by one Secret volume and mounted one by one with
    `subPath`, read-only. No files: no volume, no mounts.
    """
    data: dict[str, str] = {}
    items: list[dict] = []
    mounts: list[dict] = []
    for index, file in enumerate(files):
        key = f"file-{index}"
        data[key] = file.content
        items.append({"key": key, "path": key, "mode": file.mode})
        mounts.append(
            {
                "name": FILES_VOLUME,
                "mountPath": posixpath.join(
                    SECRETS_DIR if file.secret else home, _relative_path(file.path)
                ),
                "subPath": key,
                "readOnly": True,
            }
        )
    if not items:
        return data, None, mounts
    volume = {"name": FILES_VOLUME, "secret": {"secretName": secret_name, "items": items}}
    return data, volume, mounts


# -- the Secret -------------------------------------------------------------------------
def make_secret(
    name: str,
    namespace: str,
    string_data: Mapping[str, str],
    owner_pod: tuple[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> V1Secret:
    """The server's Secret: immutable, `Opaque`, its values as `stringData`.

    owner_pod is the pod's (name, uid): Kubernetes' garbage collector then deletes the
    Secret with the pod, whoever deletes the pod and even if the hub is down.
    """
    owners = None
    if owner_pod is not None:
        pod_name, pod_uid = owner_pod
        owners = [V1OwnerReference(api_version="v1", kind="Pod", name=pod_name, uid=pod_uid)]
    return V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels=dict(labels or {}) or None,
            annotations=dict(annotations or {}) or None,
            owner_references=owners,
        ),
        type="Opaque",
        immutable=True,
        string_data=dict(string_data),
    )


# -- the pod ----------------------------------------------------------------------------
def plan_overrides(
    plan: LaunchPlan,
    *,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Iterable[Mapping] = (),
    extra_resource_limits: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """KubeSpawner settings for the plan, over the operator's node_selector, tolerations
    and extra_resource_limits (the catalog's values win on the same key).

    Requests equal limits; GPUs are a limit on the catalog's extended resource
    (`nvidia.com/gpu`, `nvidia.com/mig-1g.5gb`...), which Kubernetes also requests.
    """
    limits = dict(extra_resource_limits or {})
    selector = dict(node_selector or {})
    tolerating = [dict(t) for t in tolerations]
    if plan.gpu is not None:
        limits[plan.gpu.resource] = str(plan.gpu.count)
        selector.update(plan.gpu.node_selector)
        tolerating += [dict(t) for t in plan.gpu.tolerations if dict(t) not in tolerating]
    resources = plan.resources
    return {
        "image": plan.image,
        "cpu_guarantee": resources.cpu_request,
        "cpu_limit": resources.cpu_limit,
        "mem_guarantee": resources.memory_request,
        "mem_limit": resources.memory_limit,
        "extra_resource_limits": limits,
        "node_selector": selector,
        "tolerations": tolerating,
        "default_url": plan.default_url,
    }


def init_settings(plan: LaunchPlan, cmd, http_timeout: float) -> dict[str, object]:
    """`cmd` through `onyxia-init` (extensions/onyxia-git, in the image) and a longer
    `http_timeout` when the plan has init scripts; the operator's values otherwise.
    ValueError when the command is the image's own (`cmd` None: nothing to wrap)."""
    if plan.init_timeout is None:
        return {"cmd": cmd, "http_timeout": http_timeout}
    if not cmd:
        raise ValueError(
            "Init scripts need the server's command (KubeSpawner.cmd, the chart's "
            "singleuser.cmd), which this datalab leaves to the image; ask an administrator."
        )
    return {
        "cmd": ["onyxia-init", "--", *cmd],
        "http_timeout": http_timeout + plan.init_timeout,
    }


# -- events -----------------------------------------------------------------------------
def _scheduling(message: str, gpu: str | None) -> str:
    text = message.lower()
    if "insufficient nvidia.com" in text or (gpu and "insufficient" in text and "gpu" in text):
        return (
            f"Waiting for a machine with a free GPU ({gpu})"
            if gpu
            else ("Waiting for a machine with a free GPU")
        )
    if "insufficient cpu" in text or "insufficient memory" in text:
        return "Waiting for a machine with enough free processors and memory"
    if "persistentvolumeclaim" in text:
        return "Waiting for your storage to be ready"
    if "node affinity" in text or "node selector" in text or "untolerated taint" in text:
        kind = f" with {gpu}" if gpu else " this service may run on"
        return f"Waiting for a machine{kind}"
    return "Waiting for a free machine"


def event_message(
    event: Mapping, *, service: str, secret_name: str, gpu: str | None = None
) -> tuple[int, str] | None:
    """(progress, words) for a Kubernetes event of the server's pod, or None to say nothing.

    service is the catalog's display name, gpu the GPU type's (None: no GPU). The brief
    wait for the server's own Secret (created right after the pod) is not reported.
    """
    reason = event.get("reason") or ""
    message = event.get("message") or ""
    if secret_name and f'"{secret_name}"' in message:
        return None  # CreateContainerConfigError / FailedMount until the Secret exists
    if reason == "FailedScheduling":
        return 30, _scheduling(message, gpu)
    if reason == "TriggeredScaleUp":
        return 30, "The cluster is adding a machine for your server (this takes a few minutes)"
    if reason == "Scheduled":
        return 40, "A machine was found for your server"
    if reason == "Pulling":
        return 50, (
            f"Downloading the image of {service} (first launch on this machine can take minutes)"
        )
    if reason == "Pulled":
        return 70, f"The image of {service} is ready"
    if reason == "Created":
        return 80, f"Starting {service}"
    if reason == "Started":
        return 90, f"{service} started, waiting for it to answer"
    if reason == "BackOff":
        if "pull" in message.lower():
            return 50, f"Retrying the download of the image of {service}"
        return 80, f"{service} stopped right after starting; trying again"
    if reason in ("Failed", "ErrImagePull", "InspectFailed") and "image" in message.lower():
        return 50, f"The image of {service} could not be downloaded; trying again"
    if reason in ("FailedMount", "FailedAttachVolume"):
        return 40, "Waiting for your storage to be attached"
    if reason == "FailedCreatePodSandBox":
        return 40, "The machine is preparing the network of your server; trying again"
    if reason in ("Evicted", "Preempting", "OOMKilling"):
        return 90, "The machine ran short of resources and stopped your server"
    return None
