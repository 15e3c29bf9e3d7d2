"""The catalog: `profiles/*.yaml` -> `model.Catalog`, strictly, reloaded while running.

- The shipped catalog loads and is what the README says it is.
- Tables of invalid service files, whole files and `_catalog.yaml` files, each with the
  exact issue (file, field, problem) it must give, and only that one. Each case starts
  from `valid_service()`, which a test proves valid, and changes one thing.
- Cross-file rules (one default, unique names, not empty), icon paths that escape.
- Quotas: keys left out of a group inherit the default, null is unbounded, a user gets
  the most generous of their groups.
- `CatalogSource` reloads on change, keeps the last good catalog on a bad one and logs
  its issues once; mtimes are bumped with os.utime, nothing sleeps.
- `onyxia-hub catalog check` as a subprocess: exit codes, output, never a traceback.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import onyxia_hub
from onyxia_hub.catalog import model
from onyxia_hub.catalog.loader import (
    CatalogError,
    CatalogSource,
    check_catalog,
    default_catalog_path,
    load_catalog,
)
from onyxia_hub.catalog.schema import CatalogIssue, service_from_document

ONYXIA_HUB = Path(sys.prefix) / "bin" / "onyxia-hub"
PROFILES = Path(onyxia_hub.__file__).parent.parent / "profiles"
Mi, Gi = 2**20, 2**30
DELETE = object()  # a change that removes the key
NOT_A_SIZE = "'16G!' is not a memory size (write it as 512Mi, 4Gi, 2G...)"
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>'
)


def valid_service(name: str = "svc") -> dict:
    """A service document using every key, valid: the base every invalid case changes."""
    return {
        "name": name,
        "display_name": "Service",
        "description": "A service for tests.",
        "icon": "icons/svc.svg",
        "order": 5,
        "default": False,
        "versions": [
            {"name": "2026.08", "image": "quay.io/jupyter/scipy-notebook:2026-08-03"},
            {"name": "old", "image": f"registry.example:5000/team/img@sha256:{'a' * 64}"},
        ],
        "resources": {
            "cpu": {"presets": [0.5, 1, 2], "default": 1, "min": 0.5, "max": 4},
            "memory": {"presets": ["1Gi", "2Gi"], "default": "2Gi", "min": "512Mi", "max": "16Gi"},
        },
        "gpu": {
            "counts": [1, 2],
            "default_count": 1,
            "default_type": "a100",
            "types": [
                {
                    "name": "a100",
                    "display_name": "NVIDIA A100",
                    "resource": "nvidia.com/gpu",
                    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                }
            ],
        },
        "groups": ["gpu-users"],
        "max_servers": 2,
        "environment": {"LANG": "C.UTF-8"},
        "local": {
            "command": None,
            "default_url": "/lab",
            "environment": {"EXTRA": "1"},
            "requires": {"executables": ["R"], "kernels": ["python3"], "python_modules": ["torch"]},
        },
    }


def change(doc: dict, path: str, value) -> None:
    """Set (or, with DELETE, remove) the value at path, e.g. `versions[0].name`, in doc."""
    steps = [int(i) if i else key for key, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]
    target = doc
    for step in steps[:-1]:
        target = target[step]
    if value is DELETE:
        del target[steps[-1]]
    else:
        target[steps[-1]] = value


@pytest.fixture()
def catalog_dir(tmp_path) -> Path:
    """An empty catalog directory with icons/svc.svg."""
    directory = tmp_path / "catalog"
    (directory / "icons").mkdir(parents=True)
    (directory / "icons" / "svc.svg").write_text(ICON)
    return directory


class PlainDumper(yaml.SafeDumper):
    """Writes a value used twice out twice: catalog files refuse anchors and aliases."""

    def ignore_aliases(self, data) -> bool:
        """Never use an alias."""
        return True


def write(directory: Path, doc, name: str = "svc") -> Path:
    """doc (a dict, dumped as YAML, or text as it is) as directory/<name>.yaml."""
    path = directory / f"{name}.yaml"
    text = doc if isinstance(doc, str) else yaml.dump(doc, Dumper=PlainDumper, sort_keys=False)
    path.write_text(text)
    return path


def bump(path: Path) -> None:
    """Move path's modification time forward, as a later write would."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))


# --- The shipped catalog -----------------------------------------------------------


def test_shipped_catalog_loads_as_documented():
    """The five shipped services, in order, with the needs profiles/README.md lists."""
    assert default_catalog_path() == PROFILES
    catalog = load_catalog(default_catalog_path())
    names = [s.name for s in catalog.services]
    assert names == [
        "jupyter-python",
        "jupyter-r",
        "vscode-python",
        "jupyter-pyspark",
        "pytorch-gpu",
    ]
    assert catalog.default_service.name == "jupyter-python"
    assert [s.name for s in catalog.services if s.default] == ["jupyter-python"]
    for service in catalog.services:
        assert service.icon.startswith("data:image/svg+xml;base64,"), service.name
        assert service.source == str(PROFILES / f"{service.name}.yaml")
        assert service.cpu.min <= service.cpu.default <= service.cpu.max
        assert service.memory.min <= service.memory.default <= service.memory.max
        assert service.memory.default <= 8 * Gi, "defaults must suit a small machine"
    python = catalog.get("jupyter-python")
    assert python.default_version.image.startswith("quay.io/jupyter/scipy-notebook:")
    assert (python.cpu.default, python.memory.default) == (1.0, 2 * Gi)
    assert python.local == model.LocalMode(
        default_url="/lab", requires=model.Requirements(kernels=("python3",))
    )
    r = catalog.get("jupyter-r")
    assert r.local.requires == model.Requirements(executables=("R",), kernels=("ir",))
    vscode = catalog.get("vscode-python")
    assert vscode.default_version.image.startswith("ghcr.io/onyxia-hub/vscode-python:")
    assert vscode.local.default_url == "/vscode/"
    assert vscode.local.requires.executables == ("code-server",)
    spark = catalog.get("jupyter-pyspark")
    assert spark.local.requires == model.Requirements(
        executables=("java",), kernels=("python3",), python_modules=("pyspark",)
    )
    torch = catalog.get("pytorch-gpu")
    assert torch.default_version.image.startswith("quay.io/jupyter/pytorch-notebook:cuda12-")
    assert torch.local.requires.python_modules == ("torch",)
    assert torch.groups == frozenset({"gpu-users"})
    assert [s.name for s in catalog.visible_to([])] == names[:4]
    for service in catalog.services[:4]:
        assert service.gpu is None


def test_shipped_gpu_types_are_exact():
    """pytorch-gpu offers a whole A100 and a MIG slice, placed by selector and toleration."""
    torch = load_catalog(PROFILES).get("pytorch-gpu")
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert torch.gpu.counts == (1, 2)
    assert torch.gpu.default_count == 1
    assert torch.gpu.default_type == "a100"
    assert torch.gpu.types == (
        model.GpuType(
            name="a100",
            display_name="NVIDIA A100 40 GB (whole GPU)",
            resource="nvidia.com/gpu",
            node_selector=model.frozen_map({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}),
            tolerations=(model.frozen_map(toleration),),
        ),
        model.GpuType(
            name="a100-mig-1g-5gb",
            display_name="NVIDIA A100 slice, 1/7 of a GPU with 5 GB (MIG 1g.5gb)",
            resource="nvidia.com/mig-1g.5gb",
            node_selector=model.frozen_map(
                {
                    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
                    "nvidia.com/mig.strategy": "mixed",
                }
            ),
            tolerations=(model.frozen_map(toleration),),
        ),
    )
    assert torch.gpu.type("a100-mig-1g-5gb").resource == "nvidia.com/mig-1g.5gb"


def test_shipped_quotas():
    """3 servers, 8 CPUs, 16 GiB and no GPU each; gpu-users get GPUs and more memory."""
    quotas = load_catalog(PROFILES).quotas
    assert quotas.default == model.Limits(servers=3, cpu=8.0, memory=16 * Gi, gpus=0)
    assert quotas.for_groups(["gpu-users"]) == model.Limits(
        servers=3, cpu=8.0, memory=32 * Gi, gpus=2
    )


def test_valid_service_uses_every_key(catalog_dir):
    """The base of every invalid case is valid, and every key reaches the model."""
    write(catalog_dir, valid_service())
    catalog, issues = check_catalog(catalog_dir)
    assert issues == []
    (service,) = catalog.services
    assert service.versions[1] == model.Version(
        "old", f"registry.example:5000/team/img@sha256:{'a' * 64}"
    )
    assert service.cpu == model.CpuRange(presets=(0.5, 1.0, 2.0), default=1.0, min=0.5, max=4.0)
    assert service.memory == model.MemoryRange(
        presets=(Gi, 2 * Gi), default=2 * Gi, min=512 * Mi, max=16 * Gi
    )
    assert service.local.command is None
    assert dict(service.local.environment) == {"EXTRA": "1"}
    assert dict(service.environment) == {"LANG": "C.UTF-8"}
    assert service.max_servers == 2 and service.order == 5
    assert service.icon.startswith("data:image/svg+xml;base64,")
    assert catalog.quotas == model.Quotas()


def test_optional_keys_may_be_left_out_or_null(catalog_dir):
    """Optional keys absent or null take the model's defaults."""
    doc = valid_service()
    for key in ("icon", "order", "default", "gpu", "groups", "max_servers", "environment"):
        del doc[key]
    doc["local"] = None
    doc["resources"]["cpu"]["presets"] = ["500m", "1"]
    write(catalog_dir, doc)
    service = load_catalog(catalog_dir).services[0]
    assert (service.icon, service.order, service.default, service.gpu) == (None, 100, False, None)
    assert service.local == model.LocalMode()
    assert service.cpu.presets == (0.5, 1.0)


# --- Invalid service files: one change, one exact issue ----------------------------

KEYS = "name, display_name, description, versions, resources, icon, order, default, gpu, " \
       "groups, max_servers, environment, local"  # fmt: skip
SERVICE_NAME_RULE = (
    "is not a service name (2 to 40 lowercase letters, digits and '-', starting with a "
    "letter and ending with a letter or digit)"
)
VERSION_RULE = (
    "is not a version name (up to 64 letters, digits, '.', '_', '-'; a letter or digit first)"
)
QUOTE = ': quote it in YAML ("...")'
TYPE = "gpu.types[0]"
TOLERATION = f"{TYPE}.tolerations[0]"

# id, {path: new value}, field, problem ("{dir}" is the catalog directory)
INVALID_SERVICES = [
    ("01-unknown-key-close", {"descripton": "x"}, "descripton",
     "unknown key (did you mean description?)"),
    ("02-unknown-key-far", {"colour": "red"}, "colour", f"unknown key (allowed: {KEYS})"),
    ("03-name-missing", {"name": DELETE}, "name", "is required"),
    ("04-name-uppercase", {"name": "Svc"}, "name", f"'Svc' {SERVICE_NAME_RULE}"),
    ("05-name-trailing-dash", {"name": "svc-"}, "name", f"'svc-' {SERVICE_NAME_RULE}"),
    ("06-name-not-file-name", {"name": "other"}, "name",
     "'other' does not match the file name: rename the file other.yaml"),
    ("07-display-name-number", {"display_name": 3}, "display_name",
     f"must be a string, not an integer (3){QUOTE}"),
    ("08-display-name-null", {"display_name": None}, "display_name", "must be a string, not null"),
    ("09-display-name-blank", {"display_name": "  "}, "display_name", "must not be empty"),
    ("10-display-name-long", {"display_name": "x" * 81}, "display_name",
     "is 81 characters long; at most 80"),
    ("11-description-control", {"description": "a\x07b"}, "description",
     "'a\\x07b' contains control characters"),
    ("12-order-boolean", {"order": True}, "order", "must be an integer, not a boolean (true)"),
    ("13-default-string", {"default": "yes"}, "default",
     "must be true or false, not a string ('yes')"),
    ("14-versions-empty", {"versions": []}, "versions", "must not be empty"),
    ("15-versions-mapping", {"versions": {"a": 1}}, "versions", "must be a list, not a mapping"),
    ("16-version-name-float", {"versions[0].name": 2025.10}, "versions[0].name",
     f"must be a string, not a number (2025.1){QUOTE}"),
    ("17-version-name-dash", {"versions[0].name": "-x"}, "versions[0].name",
     f"'-x' {VERSION_RULE}"),
    ("18-version-name-twice", {"versions[1].name": "2026.08"}, "versions[1].name",
     "'2026.08' is listed twice"),
    ("19-version-unknown-key", {"versions[0].tag": "x"}, "versions[0].tag",
     "unknown key (allowed: name, image)"),
    ("20-version-image-missing", {"versions[0].image": DELETE}, "versions[0].image", "is required"),
    ("21-image-no-registry", {"versions[0].image": "jupyter/scipy-notebook:1"}, "versions[0].image",
     "'jupyter/scipy-notebook:1' does not name its registry (write it in full: quay.io/..., "
     "docker.io/library/...)"),
    ("22-image-no-tag", {"versions[0].image": "quay.io/jupyter/scipy-notebook"},
     "versions[0].image",
     "'quay.io/jupyter/scipy-notebook' has no tag or digest: pin one (...:2026-08-03 or "
     "...@sha256:...)"),
    ("23-image-space", {"versions[0].image": "quay.io/a/b c:1"}, "versions[0].image",
     "'quay.io/a/b c:1' contains spaces or control characters"),
    ("24-image-uppercase", {"versions[0].image": "quay.io/Jupyter/b:1"}, "versions[0].image",
     "'quay.io/Jupyter/b:1' is not a container image reference (write it as registry/path:tag "
     "or registry/path@sha256:<64 hex>)"),
    ("25-image-short-digest", {"versions[0].image": "quay.io/a/b@sha256:abc"}, "versions[0].image",
     "'quay.io/a/b@sha256:abc' is not a container image reference (write it as "
     "registry/path:tag or registry/path@sha256:<64 hex>)"),
    ("26-image-too-long", {"versions[0].image": "quay.io/" + "a" * 250 + ":1"}, "versions[0].image",
     "is 260 characters long; at most 255"),
    ("27-resources-missing", {"resources": DELETE}, "resources", "is required"),
    ("28-cpu-missing", {"resources.cpu": DELETE}, "resources.cpu", "is required"),
    ("29-memory-not-a-size", {"resources.memory.max": "16G!"}, "resources.memory.max",
     "'16G!' is not a memory size (write it as 512Mi, 4Gi, 2G...)"),
    ("30-memory-preset-outside", {"resources.memory.presets": ["1Gi", "32Gi"]},
     "resources.memory.presets[1]", "32Gi is outside [min, max] = [512Mi, 16Gi]"),
    ("31-memory-default-missing", {"resources.memory.default": DELETE},
     "resources.memory.default", "is required"),
    ("32-cpu-min-above-max", {"resources.cpu.min": 8}, "resources.cpu.min", "8 is above max (4)"),
    ("33-cpu-default-outside", {"resources.cpu.default": 6}, "resources.cpu.default",
     "6 is outside [min, max] = [0.5, 4]"),
    ("34-cpu-not-an-amount", {"resources.cpu.max": "two"}, "resources.cpu.max",
     "'two' is not a CPU amount (write it as 0.5, 2 or 500m)"),
    ("35-cpu-preset-twice", {"resources.cpu.presets": [1, "1000m"]}, "resources.cpu.presets[1]",
     "1 is listed twice"),
    ("36-cpu-unknown-key", {"resources.cpu.maximum": 4}, "resources.cpu.maximum",
     "unknown key (did you mean max?)"),
    ("37-resources-gpu-key", {"resources.gpu": 1}, "resources.gpu",
     "unknown key (gpu is a key of its own, beside resources)"),
    ("37b-resources-disk-key", {"resources.disk": "10Gi"}, "resources.disk",
     "unknown key (allowed: cpu, memory)"),
    ("38-groups-string", {"groups": "gpu-users"}, "groups",
     "must be a list, not a string ('gpu-users')"),
    ("39-groups-twice", {"groups": ["a", "a"]}, "groups[1]", "'a' is listed twice"),
    ("40-max-servers-zero", {"max_servers": 0}, "max_servers", "0 is not between 1 and 1000"),
    ("41-env-path", {"environment.PATH": "/opt/bin"}, "environment.PATH",
     "PATH is reserved: it is set for the user's account"),
    ("42-env-aws", {"environment.AWS_ACCESS_KEY_ID": "x"}, "environment.AWS_ACCESS_KEY_ID",
     "AWS_ACCESS_KEY_ID is reserved: AWS_* variables belong to the storage provider "
     "(per-user S3 credentials)"),
    ("43-env-git", {"environment.GIT_USER_NAME": "x"}, "environment.GIT_USER_NAME",
     "GIT_USER_NAME is reserved: GIT_* variables belong to the git provider "
     "(per-user identity and token); give git settings such as a CA bundle with "
     "c.GitProvider.git_config (docs/git.md)"),
    ("44-env-jupyterhub", {"environment.JUPYTERHUB_API_TOKEN": "x"},
     "environment.JUPYTERHUB_API_TOKEN",
     "JUPYTERHUB_API_TOKEN is reserved: JupyterHub sets JUPYTERHUB_* variables"),
    ("45-env-jpy", {"environment.JPY_API_TOKEN": "x"}, "environment.JPY_API_TOKEN",
     "JPY_API_TOKEN is reserved: JupyterHub sets JPY_* variables"),
    ("46-env-onyxia", {"local.environment.ONYXIA_HUB_X": "x"}, "local.environment.ONYXIA_HUB_X",
     "ONYXIA_HUB_X is reserved: ONYXIA_HUB_* variables are reserved for Onyxia Hub"),
    ("47-env-mem-limit", {"environment.MEM_LIMIT": "1"}, "environment.MEM_LIMIT",
     "MEM_LIMIT is reserved: it is set from the resources the user chose"),
    ("48-env-cuda-any-case", {"environment.cuda_visible_devices": "0"},
     "environment.cuda_visible_devices",
     "cuda_visible_devices is reserved: it is set from the GPUs the user was given"),
    ("49-env-integer", {"environment.OMP_NUM_THREADS": 4}, "environment.OMP_NUM_THREADS",
     'must be a string, not an integer (4): write it "4" in quotes'),
    ("50-env-boolean", {"environment.DEBUG": True}, "environment.DEBUG",
     'must be a string, not a boolean (true): write it "true" in quotes'),
    ("51-env-null", {"environment.EMPTY": None}, "environment.EMPTY", "must be a string, not null"),
    ("52-env-bad-name", {"environment.1X": "a"}, "environment['1X']",
     "'1X' is not an environment variable name (letters, digits and '_', not starting with "
     "a digit; at most 128)"),
    ("53-env-list", {"environment": ["LANG=C"]}, "environment", "must be a mapping, not a list"),
    ("54-url-relative", {"local.default_url": "lab"}, "local.default_url",
     "'lab' must be a path on the server, starting with one /"),
    ("55-url-other-host", {"local.default_url": "//evil.example/"}, "local.default_url",
     "'//evil.example/' must be a path on the server, starting with one /"),
    ("56-command-string", {"local.command": "jupyter lab"}, "local.command",
     "must be a list, not a string ('jupyter lab')"),
    ("57-command-empty", {"local.command": []}, "local.command", "must not be empty"),
    ("58-requires-typo", {"local.requires.kernal": ["ir"]}, "local.requires.kernal",
     "unknown key (did you mean kernels?)"),
    ("59-executable-path", {"local.requires.executables": ["/usr/bin/R"]},
     "local.requires.executables[0]",
     "'/usr/bin/R' is not a program name (no path: it is looked up on PATH)"),
    ("60-module-dash", {"local.requires.python_modules": ["torch-cuda"]},
     "local.requires.python_modules[0]",
     "'torch-cuda' is not a Python module name (like pyspark or torch.cuda)"),
    ("61-local-unknown-key", {"local.env": {}}, "local.env",
     "unknown key (allowed: software, command, default_url, environment, requires)"),
    ("61b-software-path", {"local.software": "../python"}, "local.software",
     "'../python' is not an environment name (a directory of environments/: python, pyspark, r)"),
    ("61c-software-upper", {"local.software": "Python"}, "local.software",
     "'Python' is not an environment name (a directory of environments/: python, pyspark, r)"),
    ("62-gpu-types-missing", {"gpu.types": DELETE}, "gpu.types", "is required"),
    ("63-gpu-count-17", {"gpu.counts": [1, 17]}, "gpu.counts[1]", "17 is not between 0 and 16"),
    ("64-gpu-count-float", {"gpu.counts": [1.5]}, "gpu.counts[0]",
     "must be an integer, not a number (1.5)"),
    ("65-gpu-default-count", {"gpu.default_count": 4}, "gpu.default_count",
     "4 is not one of counts (1, 2)"),
    ("66-gpu-default-type", {"gpu.default_type": "h100"}, "gpu.default_type",
     "'h100' is not one of the types (a100)"),
    ("67-gpu-type-twice", {"gpu.types": [valid_service()["gpu"]["types"][0]] * 2},
     "gpu.types[1].name", "'a100' is listed twice"),
    ("68-gpu-resource-no-domain", {f"{TYPE}.resource": "gpu"}, f"{TYPE}.resource",
     "'gpu' is not an extended resource name (domain/name, e.g. nvidia.com/gpu or "
     "nvidia.com/mig-1g.5gb)"),
    ("69-gpu-resource-kubernetes-io", {f"{TYPE}.resource": "kubernetes.io/gpu"}, f"{TYPE}.resource",
     "'kubernetes.io/gpu': the kubernetes.io domain is not for extended resources"),
    ("70-gpu-display-name-missing", {f"{TYPE}.display_name": DELETE}, f"{TYPE}.display_name",
     "is required"),
    ("71-node-selector-value", {f"{TYPE}.node_selector": {"nvidia.com/gpu.product": "NVIDIA A100"}},
     f"{TYPE}.node_selector['nvidia.com/gpu.product']",
     "'NVIDIA A100' is not a Kubernetes label value (at most 63 letters, digits, '-', '_', '.', "
     "alphanumeric at both ends)"),
    ("72-node-selector-key", {f"{TYPE}.node_selector": {"Nvidia.COM/x": "y"}},
     f"{TYPE}.node_selector['Nvidia.COM/x']",
     "'Nvidia.COM/x' is not a Kubernetes label key ([prefix/]name)"),
    ("73-node-selector-boolean", {f"{TYPE}.node_selector": {"gpu": True}},
     f"{TYPE}.node_selector.gpu", f"must be a string, not a boolean (true){QUOTE}"),
    ("74-toleration-operator", {f"{TOLERATION}.operator": "Maybe"}, f"{TOLERATION}.operator",
     "'Maybe' is not Exists or Equal"),
    ("75-toleration-effect", {f"{TOLERATION}.effect": "NoRun"}, f"{TOLERATION}.effect",
     "'NoRun' is not one of NoSchedule, PreferNoSchedule, NoExecute"),
    ("76-toleration-value-with-exists", {f"{TOLERATION}.value": "x"}, f"{TOLERATION}.value",
     "must be empty when operator is Exists"),
    ("77-toleration-seconds", {f"{TOLERATION}.tolerationSeconds": 30},
     f"{TOLERATION}.tolerationSeconds", "only applies with effect NoExecute"),
    ("78-toleration-typo", {f"{TOLERATION}.keys": "x"}, f"{TOLERATION}.keys",
     "unknown key (did you mean key?)"),
    ("79-toleration-equal-without-key", {TOLERATION: {"operator": "Equal", "value": "x"}},
     f"{TOLERATION}.key", "is required unless operator is Exists"),
    ("80-icon-absolute", {"icon": "/etc/icon.svg"}, "icon",
     "'/etc/icon.svg' must be relative to the catalog directory"),
    ("81-icon-dotdot", {"icon": "icons/../../x.svg"}, "icon",
     "'icons/../../x.svg' must stay inside the catalog directory (no '..')"),
    ("82-icon-missing", {"icon": "icons/none.svg"}, "icon",
     "'icons/none.svg': no such file in {dir}"),
    ("83-icon-gif", {"icon": "icons/svc.gif"}, "icon",
     "'icons/svc.gif' must be an .svg or .png file"),
    ("84-icon-directory", {"icon": "icons.svg"}, "icon", "'icons.svg' is not a regular file"),
    ("85-icon-number", {"icon": 1}, "icon", f"must be a string, not an integer (1){QUOTE}"),
]  # fmt: skip


@pytest.mark.parametrize(
    "changes, field, problem",
    [c[1:] for c in INVALID_SERVICES],
    ids=[c[0] for c in INVALID_SERVICES],
)
def test_invalid_service(catalog_dir, changes, field, problem):
    """One change to a valid service gives exactly one issue, word for word."""
    (catalog_dir / "icons.svg").mkdir()  # for 84-icon-directory
    doc = copy.deepcopy(valid_service())
    for path, value in changes.items():
        change(doc, path, value)
    path = write(catalog_dir, doc)
    catalog, issues = check_catalog(catalog_dir)
    assert catalog is None
    assert issues == [CatalogIssue(str(path), field, problem.format(dir=catalog_dir))]


def test_table_ids_are_stable_and_unique():
    """Case ids are unique, so a failure names one case."""
    ids = [c[0] for c in INVALID_SERVICES + INVALID_FILES + INVALID_CATALOG_FILES]
    assert len(ids) == len(set(ids))
    assert len(INVALID_SERVICES) + len(INVALID_FILES) >= 40


def field_paths(node, prefix: str = ""):
    """Every path in a document, in `change()` form (keys holding dots left out)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(key, str) and "." in key:
            continue
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}".lstrip(".")
        yield path
        if isinstance(value, (dict, list)):
            yield from field_paths(value, path)


WRONG_VALUES = [None, 0, -1, 1.5, True, "", " ", "x" * 300, [], [None], {}, {1: 2}, "\x00"]


def test_any_field_with_any_wrong_value_gives_issues_not_exceptions(catalog_dir):
    """No value anywhere makes the checker raise instead of reporting."""
    base = valid_service()
    paths = list(field_paths(base))
    assert len(paths) > 60
    for path in paths:
        for value in WRONG_VALUES:
            doc = copy.deepcopy(base)
            change(doc, path, value)
            service, issues = service_from_document(
                doc, file="svc.yaml", directory=catalog_dir, name="svc"
            )
            assert (service is None) == bool(issues), (path, value)
            assert all(isinstance(i, CatalogIssue) and i.problem for i in issues)


def test_all_issues_of_a_file_are_reported(catalog_dir):
    """A file's problems come all at once, in document order."""
    doc = valid_service()
    doc["display_name"] = 3
    doc["versions"][0]["image"] = "scipy-notebook"
    doc["resources"]["memory"]["max"] = "16G!"
    doc["environment"] = {"PATH": "/x", "N": 4}
    path = write(catalog_dir, doc)
    _, issues = check_catalog(catalog_dir)
    assert [(i.file, i.field) for i in issues] == [
        (str(path), "display_name"),
        (str(path), "versions[0].image"),
        (str(path), "resources.memory.max"),
        (str(path), "environment.PATH"),
        (str(path), "environment.N"),
    ]
    assert str(issues[2]) == (
        f"{path}: resources.memory.max: '16G!' is not a memory size (write it as 512Mi, 4Gi, 2G...)"
    )


# --- Invalid files: refused before their content is looked at ----------------------

VALID = "<the valid service>\n"  # replaced by valid_service() as YAML
LAUGHS = 'a: &a ["lol","lol"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\nd: [*c,*c,*c]\n'

# id, file content, field, problem
INVALID_FILES = [
    ("f01-billion-laughs", LAUGHS, "",
     "uses a YAML anchor or alias (line 1): not allowed in catalog files, write each value out "
     "in full"),
    ("f02-alias-only", "name: svc\ndisplay_name: *x\n", "",
     "uses a YAML anchor or alias (line 2): not allowed in catalog files, write each value out "
     "in full"),
    ("f03-merge-key", "<<: {name: svc}\n", "",
     "uses a YAML merge key '<<' (line 1): not allowed, write each key out"),
    ("f04-duplicate-key", "name: svc\nresources:\n  cpu: 1\n  cpu: 2\n", "resources.cpu",
     "appears twice (lines 3 and 4): keep one"),
    ("f05-two-documents", "name: svc\n---\nname: svc\n", "",
     "holds more than one YAML document (line 2): one per file"),
    ("f06-list", "- name: svc\n", "", "must be a mapping (key: value lines), not a list"),
    ("f07-scalar", "just text\n", "",
     "must be a mapping (key: value lines), not a string ('just text')"),
    ("f08-empty", "# nothing yet\n", "", "is empty"),
    ("f09-syntax", "name: [svc\n", "",
     "is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
    ("f10-tab-indent", "name: svc\n\tdisplay_name: x\n", "",
     "is not valid YAML: found character '\\t' that cannot start any token (line 2, column 1)"),
    ("f11-python-tag", "name: !!python/object/apply:os.system [id]\n", "",
     "is not valid YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system' (line 1, column 7)"),
    ("f12-too-deep", "a: " + "[" * 40 + "]" * 40 + "\n", "",
     "is nested too deeply (more than 32 levels, line 1)"),
    ("f13-oversized", "# padding\n" * 110_000, "",
     "is larger than 1 MiB, the limit for catalog files"),
    ("f14-not-utf8", b"name: caf\xe9\n", "", "is not UTF-8 text (byte 9)"),
    ("f15-key-not-string", VALID + "1: x\n", "[1]", "keys must be strings, not an integer (1)"),
]  # fmt: skip


@pytest.mark.parametrize(
    "content, field, problem", [c[1:] for c in INVALID_FILES], ids=[c[0] for c in INVALID_FILES]
)
def test_invalid_file(catalog_dir, content, field, problem):
    """Files refused as a whole, before their content is checked."""
    path = catalog_dir / "svc.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace(VALID, yaml.safe_dump(valid_service())))
    catalog, issues = check_catalog(catalog_dir)
    assert catalog is None
    assert issues == [CatalogIssue(str(path), field, problem)]


# --- Catalog-wide file and rules across files --------------------------------------

# id, _catalog.yaml content, field, problem
INVALID_CATALOG_FILES = [
    ("c01-unknown-top-key", "quota: {}\n", "quota", "unknown key (did you mean quotas?)"),
    ("c02-unknown-quota-key", "quotas: {defaults: {}}\n", "quotas.defaults",
     "unknown key (did you mean default?)"),
    ("c03-unknown-limit", "quotas: {default: {gpu: 1}}\n", "quotas.default.gpu",
     "unknown key (did you mean gpus?)"),
    ("c04-servers-zero", "quotas: {default: {servers: 0}}\n", "quotas.default.servers",
     "0 is not between 1 and 1000"),
    ("c05-memory-bad", "quotas: {default: {memory: lots}}\n", "quotas.default.memory",
     "'lots' is not a memory size (write it as 512Mi, 4Gi, 2G...)"),
    ("c06-group-below-default", "quotas: {default: {cpu: 8}, groups: {a: {cpu: 4}}}\n",
     "quotas.groups.a.cpu", "4 is below the default (8): a group can only raise limits"),
    ("c07-group-above-unbounded", "quotas: {default: {servers: 2}, groups: {a: {gpus: 1}}}\n",
     "quotas.groups.a.gpus",
     "the default is unbounded: a group can only raise limits (leave it out, or null)"),
    ("c08-group-null", "quotas: {groups: {a: null}}\n", "quotas.groups.a",
     "must be a mapping of limits ({} to take every default)"),
    ("c09-groups-list", "quotas: {groups: [a]}\n", "quotas.groups",
     "must be a mapping, not a list"),
    ("c10-alias", "quotas: {default: &d {cpu: 1}, groups: {a: *d}}\n", "",
     "uses a YAML anchor or alias (line 1): not allowed in catalog files, write each value out "
     "in full"),
]  # fmt: skip


@pytest.mark.parametrize(
    "content, field, problem",
    [c[1:] for c in INVALID_CATALOG_FILES],
    ids=[c[0] for c in INVALID_CATALOG_FILES],
)
def test_invalid_catalog_file(catalog_dir, content, field, problem):
    """Problems in _catalog.yaml, each exactly."""
    write(catalog_dir, valid_service())
    path = write(catalog_dir, content, "_catalog")
    catalog, issues = check_catalog(catalog_dir)
    assert catalog is None
    assert issues == [CatalogIssue(str(path), field, problem)]


def test_one_default_service_in_the_whole_catalog(tmp_path):
    """A second `default: true`, even in another directory, is an issue."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write(first, {**valid_service("one"), "icon": None, "default": True}, "one")
    path = write(second, {**valid_service("two"), "icon": None, "default": True}, "two")
    catalog, issues = check_catalog([first, second])
    assert catalog is None
    assert issues == [
        CatalogIssue(
            str(path),
            "default",
            f"{first / 'one.yaml'} is already the default (at most one may be)",
        )
    ]


def test_later_directories_add_services_and_names_stay_unique(tmp_path):
    """Directories add up; a later _catalog.yaml wins; a name defined twice is refused."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write(first, {**valid_service("one"), "icon": None, "order": 50}, "one")
    write(second, {**valid_service("two"), "icon": None, "order": 1}, "two")
    write(first, "quotas: {default: {servers: 1}}\n", "_catalog")
    write(second, "quotas: {default: {servers: 5}}\n", "_catalog")
    catalog = load_catalog([first, second])
    assert [s.name for s in catalog.services] == ["two", "one"]  # by order, then name
    assert catalog.quotas.default.servers == 5  # the later _catalog.yaml wins
    assert catalog.source == f"{first}, {second}"

    again = write(second, {**valid_service("one"), "icon": None}, "one")
    catalog, issues = check_catalog([first, second])
    assert issues == [
        CatalogIssue(str(again), "name", f"'one' is already defined in {first / 'one.yaml'}")
    ]


def test_services_sort_by_order_then_name(catalog_dir):
    """Display order is (order, name), whatever the files' names."""
    for name, order in (("bb", 1), ("aa", 1), ("cc", 0)):
        write(catalog_dir, {**valid_service(name), "order": order}, name)
    assert [s.name for s in load_catalog(catalog_dir).services] == ["cc", "aa", "bb"]
    assert load_catalog(catalog_dir).default_service.name == "cc"


def test_directory_level_issues(tmp_path, catalog_dir):
    """Missing and empty directories, ignored files, misnamed ones."""
    missing = tmp_path / "missing"
    assert check_catalog(missing) == (None, [CatalogIssue(str(missing), "", "no such directory")])
    assert check_catalog(catalog_dir) == (
        None,
        [CatalogIssue(str(catalog_dir), "", "no services: add one <name>.yaml file per service")],
    )
    write(catalog_dir, valid_service())
    (catalog_dir / "README.md").write_text("ignored")
    (catalog_dir / ".svc.yaml.swp").write_text("ignored")
    (catalog_dir / "svc.yaml~").write_text("ignored")
    assert check_catalog(catalog_dir)[1] == []
    (catalog_dir / "extra.yml").write_text("name: extra\n")
    (catalog_dir / "_catalgo.yaml").write_text("quotas: {}\n")
    assert check_catalog(catalog_dir)[1] == [
        CatalogIssue(str(catalog_dir / "_catalgo.yaml"), "",
                     "unknown catalog-wide file (the only one is _catalog.yaml)"),
        CatalogIssue(str(catalog_dir / "extra.yml"), "", "is not read: name it *.yaml"),
    ]  # fmt: skip


def test_special_files_are_refused_without_blocking(catalog_dir):
    """A FIFO or directory named like a catalog file is refused; reading never hangs."""
    write(catalog_dir, {**valid_service(), "icon": "icons/pipe.svg"})
    os.mkfifo(catalog_dir / "fifo.yaml")
    os.mkfifo(catalog_dir / "icons" / "pipe.svg")
    (catalog_dir / "folder.yaml").mkdir()
    assert check_catalog(catalog_dir)[1] == [
        CatalogIssue(str(catalog_dir / "fifo.yaml"), "", "is not a regular file"),
        CatalogIssue(str(catalog_dir / "folder.yaml"), "", "is not a regular file"),
        CatalogIssue(
            str(catalog_dir / "svc.yaml"), "icon", "'icons/pipe.svg' is not a regular file"
        ),
    ]


def test_catalog_error_lists_every_issue(catalog_dir):
    """load_catalog raises one error whose message lists every issue and the fix."""
    doc = valid_service()
    doc["max_servers"] = 0
    doc["order"] = "first"
    path = write(catalog_dir, doc)
    with pytest.raises(CatalogError) as raised:
        load_catalog(catalog_dir)
    assert raised.value.issues == check_catalog(catalog_dir)[1]
    assert str(raised.value).splitlines() == [
        "the catalog has 2 problems:",
        f"  {path}: order: must be an integer, not a string ('first')",
        f"  {path}: max_servers: 0 is not between 1 and 1000",
        "  fix: correct the files named above; `onyxia-hub catalog check DIR` checks a "
        "catalog without starting anything",
    ]


def test_issue_text_with_and_without_field():
    """`file: field: problem`, or `file: problem` for a whole file."""
    assert str(CatalogIssue("p/x.yaml", "a.b", "is wrong")) == "p/x.yaml: a.b: is wrong"
    assert str(CatalogIssue("p/x.yaml", "", "is empty")) == "p/x.yaml: is empty"


# --- Icons -------------------------------------------------------------------------


def test_icon_symlink_out_of_the_directory_is_refused(tmp_path, catalog_dir):
    """Symbolic links may point inside the directory, never out of it."""
    outside = tmp_path / "outside.svg"
    outside.write_text(ICON)
    (catalog_dir / "icons" / "escape.svg").symlink_to(outside)
    (catalog_dir / "icons" / "inside.svg").symlink_to(catalog_dir / "icons" / "svc.svg")
    (catalog_dir / "icons" / "up").symlink_to(tmp_path)
    write(catalog_dir, {**valid_service(), "icon": "icons/inside.svg"})
    assert check_catalog(catalog_dir)[1] == []
    for icon in ("icons/escape.svg", "icons/up/outside.svg"):
        path = write(catalog_dir, {**valid_service(), "icon": icon})
        assert check_catalog(catalog_dir)[1] == [
            CatalogIssue(str(path), "icon",
                         f"'{icon}' leads outside the catalog directory (a symbolic link?)")
        ]  # fmt: skip


@pytest.mark.parametrize(
    "name, content, problem",
    [
        (
            "big.svg",
            "<svg>" + " " * (64 << 10) + "</svg>",
            "is larger than 64 KiB, the limit for icons",
        ),
        ("fake.png", "<svg/>", "is not a PNG image"),
        ("text.svg", "hello", "is not an SVG image (no <svg> element)"),
        (
            "script.svg",
            "<svg><SCRIPT>alert(1)</SCRIPT></svg>",
            ": SVG icons must not contain scripts",
        ),
    ],
    ids=["oversized", "png-not-png", "svg-not-svg", "svg-script"],
)
def test_icon_content_is_checked(catalog_dir, name, content, problem):
    """Icons are small, of the type their name says, and script-free."""
    (catalog_dir / "icons" / name).write_text(content)
    path = write(catalog_dir, {**valid_service(), "icon": f"icons/{name}"})
    sep = "" if problem.startswith(":") else " "
    assert check_catalog(catalog_dir)[1] == [
        CatalogIssue(str(path), "icon", f"'icons/{name}'{sep}{problem}")
    ]


def test_png_icon_becomes_a_data_uri(catalog_dir):
    """A PNG icon is embedded as a data: URI."""
    (catalog_dir / "icons" / "svc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    write(catalog_dir, {**valid_service(), "icon": "icons/svc.png"})
    icon = load_catalog(catalog_dir).services[0].icon
    assert icon == "data:image/png;base64,iVBORw0KGgoAAAAAAAAAAAAAAAAAAAAA"


# --- Quotas ------------------------------------------------------------------------


def quotas_from(catalog_dir: Path, text: str) -> model.Quotas:
    """The quotas of a catalog whose _catalog.yaml is text."""
    write(catalog_dir, valid_service())
    write(catalog_dir, text, "_catalog")
    return load_catalog(catalog_dir).quotas


def test_group_quotas_inherit_the_default_and_null_is_unbounded(catalog_dir):
    """Left out: the default's value; null: unbounded; several groups: the largest each."""
    quotas = quotas_from(
        catalog_dir,
        "quotas:\n"
        "  default: {servers: 3, cpu: 8, memory: 16Gi, gpus: 0}\n"
        "  groups:\n"
        "    gpu-users: {gpus: 2}\n"
        "    teachers: {servers: 10, cpu: 16, memory: 64Gi}\n"
        "    admins: {servers: null, cpu: null, memory: null, gpus: null}\n"
        "    same: {}\n",
    )
    default = model.Limits(servers=3, cpu=8.0, memory=16 * Gi, gpus=0)
    assert quotas.default == default
    assert quotas.groups["gpu-users"] == model.Limits(servers=3, cpu=8.0, memory=16 * Gi, gpus=2)
    assert quotas.groups["same"] == default
    assert quotas.groups["admins"] == model.Limits()
    assert quotas.for_groups([]) == default
    assert quotas.for_groups(["unknown-group"]) == default
    assert quotas.for_groups(["gpu-users", "teachers"]) == model.Limits(
        servers=10, cpu=16.0, memory=64 * Gi, gpus=2
    )
    assert quotas.for_groups(["teachers", "admins"]) == model.Limits()


def test_default_quota_keys_left_out_or_null_are_unbounded(catalog_dir):
    """In the default, left out and null both mean unbounded."""
    quotas = quotas_from(catalog_dir, "quotas:\n  default: {servers: 2, cpu: null}\n")
    assert quotas.default == model.Limits(servers=2)
    assert quotas_from(catalog_dir, "quotas: {}\n") == model.Quotas()
    assert quotas_from(catalog_dir, "# quotas come later\n{}\n") == model.Quotas()


# --- Reloading ---------------------------------------------------------------------


@pytest.fixture()
def log(caplog):
    """A logger for CatalogSource whose records the test reads."""
    caplog.set_level(logging.INFO, logger="test.catalog")
    return logging.getLogger("test.catalog")


def messages(caplog) -> list[str]:
    """What was logged, and forget it."""
    out = [r.getMessage() for r in caplog.records if r.name == "test.catalog"]
    caplog.clear()
    return out


def test_reload_picks_up_valid_changes(catalog_dir, log, caplog):
    """Edits, new files, removed files and icon changes are seen at the next call."""
    path = write(catalog_dir, valid_service())
    source = CatalogSource(catalog_dir, log)
    first = source.current()
    assert source.current() is first  # nothing changed: nothing read
    write(catalog_dir, {**valid_service(), "display_name": "Renamed"})
    bump(path)
    assert source.current().services[0].display_name == "Renamed"
    assert messages(caplog) == ["Catalog reloaded: 1 services (svc)"]

    added = write(catalog_dir, {**valid_service("more"), "order": 1}, "more")
    assert [s.name for s in source.current().services] == ["more", "svc"]
    added.unlink()
    assert [s.name for s in source.current().services] == ["svc"]

    before = source.current().services[0].icon
    icon = catalog_dir / "icons" / "svc.svg"
    icon.write_text(ICON.replace('height="8"', 'height="7"'))
    bump(icon)
    assert source.current().services[0].icon != before


def test_reload_keeps_the_last_good_catalog_and_logs_once(catalog_dir, log, caplog):
    """A bad change is logged once and the last good catalog stays in use."""
    path = write(catalog_dir, valid_service())
    source = CatalogSource(catalog_dir, log)
    good = source.current()
    broken = valid_service()
    broken["resources"]["memory"]["max"] = "16G!"
    write(catalog_dir, broken)
    bump(path)
    assert source.current() is good
    assert messages(caplog) == [
        "Catalog not reloaded, 1 problem; the previous catalog stays in use:",
        f"  {path}: resources.memory.max: {NOT_A_SIZE}",
    ]
    assert source.current() is good
    assert source.current() is good
    assert messages(caplog) == []  # once per change, not once per call

    path.unlink()  # no service left: still invalid, a new change, logged again
    assert source.current() is good
    assert messages(caplog)[1:] == [
        f"  {catalog_dir}: no services: add one <name>.yaml file per service"
    ]
    write(catalog_dir, {**valid_service(), "display_name": "Back"})
    assert source.current().services[0].display_name == "Back"


def test_reload_log_lines_are_bounded(catalog_dir, log, caplog):
    """A hostile file cannot flood the log: 20 issues at most, 300 characters each."""
    path = write(catalog_dir, valid_service())
    source = CatalogSource(catalog_dir, log)
    doc = valid_service()
    doc["environment"] = {f"AWS_{i}_{'X' * 400}": "x" for i in range(30)}
    write(catalog_dir, doc)
    bump(path)
    source.current()
    lines = messages(caplog)
    assert lines[0] == "Catalog not reloaded, 30 problems; the previous catalog stays in use:"
    assert len(lines) == 22 and lines[-1] == "  ... and 10 more"
    assert all(len(line) <= 302 for line in lines)


def test_source_refuses_an_invalid_catalog_at_start(catalog_dir, log):
    """With no good catalog to keep, start-up fails with the issues."""
    write(catalog_dir, {**valid_service(), "versions": []})
    with pytest.raises(CatalogError) as raised:
        CatalogSource(catalog_dir, log)
    assert [str(i) for i in raised.value.issues] == [
        f"{catalog_dir / 'svc.yaml'}: versions: must not be empty"
    ]


def test_reload_when_the_directory_disappears(tmp_path, log, caplog):
    """A vanished directory is an issue; the last good catalog stays."""
    directory = tmp_path / "gone"
    directory.mkdir()
    write(directory, {**valid_service(), "icon": None})
    source = CatalogSource([directory], log)
    good = source.current()
    (directory / "svc.yaml").unlink()
    directory.rmdir()
    assert source.current() is good
    assert messages(caplog)[1:] == [f"  {directory}: no such directory"]


# --- The command line --------------------------------------------------------------


def onyxia_hub_catalog(*args: str) -> subprocess.CompletedProcess:
    """`onyxia-hub catalog check ARGS` as an operator runs it."""
    result = subprocess.run(
        [str(ONYXIA_HUB), "catalog", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_cli_catalog_check_shipped():
    """The shipped catalog checks out, with or without its path given."""
    result = onyxia_hub_catalog()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "catalog ok: 5 services (jupyter-python, jupyter-r, vscode-python, jupyter-pyspark, "
        "pytorch-gpu)\n"
    )
    assert onyxia_hub_catalog(str(PROFILES)).stdout == result.stdout


def test_cli_catalog_check_invalid(catalog_dir):
    """Each problem on its own line on stderr, a count, exit status 1."""
    doc = valid_service()
    doc["resources"]["memory"]["max"] = "16G!"
    doc["environment"] = {"PATH": "/x"}
    path = write(catalog_dir, doc)
    write(catalog_dir, "a: &x 1\nb: *x\n", "_catalog")
    result = onyxia_hub_catalog(str(catalog_dir))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"{catalog_dir / '_catalog.yaml'}: uses a YAML anchor or alias (line 1): not allowed in "
        "catalog files, write each value out in full",
        f"{path}: resources.memory.max: {NOT_A_SIZE}",
        f"{path}: environment.PATH: PATH is reserved: it is set for the user's account",
        "catalog invalid: 3 problems",
    ]


def test_cli_catalog_check_several_directories(tmp_path, catalog_dir):
    """Several directories are checked as one catalog."""
    write(catalog_dir, valid_service())
    other = tmp_path / "other"
    other.mkdir()
    write(other, {**valid_service("extra"), "icon": None, "order": 0}, "extra")
    result = onyxia_hub_catalog(str(catalog_dir), str(other))
    assert (result.returncode, result.stdout) == (0, "catalog ok: 2 services (extra, svc)\n")


def test_cli_catalog_check_missing_path(tmp_path):
    """A path that is missing or not a directory: one error, exit status 2."""
    missing = tmp_path / "nowhere"
    result = onyxia_hub_catalog(str(PROFILES), str(missing))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"onyxia-hub: error: catalog directory {missing} does not exist\n"
    result = onyxia_hub_catalog(str(PROFILES / "README.md"))
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[0]
        == f"onyxia-hub: error: {PROFILES / 'README.md'} is not a directory"
    )
