"""Catalog files -> `model` values, strictly.

One YAML file describes one service (`<name>.yaml`, see `profiles/README.md` for every
key); `_catalog.yaml` holds catalog-wide settings (quotas). Each problem becomes a
`CatalogIssue` naming the file, the field and what is wrong, and all problems of a file
are reported together, so that an operator fixes a file in one pass.

Choices made here, on purpose:

- Unknown keys are refused everywhere, naming the key (and the closest known one): a
  typo must not be silently ignored. Duplicate keys, YAML anchors, aliases and merge keys
  (`&`, `*`, `<<`), several documents in one file, files over 1 MiB and nesting deeper
  than 32 levels are refused before anything is built. Only `yaml.SafeLoader` is used.
- Environment values must be YAML strings. `OMP_NUM_THREADS: 4` is refused with a hint
  to write `"4"`: converting would turn `1.10` into `"1.1"` and `yes` into `"True"`.
- Version names must be strings too (`name: "2025.10"`): unquoted, YAML reads a float.
- An optional key set to null is the same as leaving it out (`icon: null`, `gpu: null`).
  A required key set to null is refused.
- Images must name their registry and pin a tag or a digest: no implicit Docker Hub and
  no implicit `latest`.

Here: the rules of a service file and of `_catalog.yaml` (with their GPUs). Reading a file
safely is `yamlfile`, the generic value checker `checker`, Kubernetes' name grammar
`kubernetes`. Nothing here knows about directories of files or reloading: that is
`loader`.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from ..quantities import format_cpu, format_memory, parse_cpu, parse_memory
from . import model
from .checker import CatalogIssue, Checker, has_control, key_path, kind, show
from .kubernetes import extended_resource, node_selector, toleration
from .yamlfile import MAX_DEPTH, MAX_FILE_BYTES, NotRegularFile, read_regular_file, read_yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "CatalogIssue",
    "quotas_from_document",
    "read_yaml",
    "service_from_document",
]

MAX_ICON_BYTES = 64 << 10
MAX_TEXT = 2000  # characters of a description; other strings are shorter still
MAX_ENV_VALUE = 32 << 10
MAX_GPUS = 16

SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SOFTWARE_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
GPU_TYPE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
EXECUTABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
KERNEL = re.compile(r"[A-Za-z0-9._-]{1,128}")
PYTHON_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

# Container image references, after the grammar of distribution/reference, made stricter:
# the registry host is required and so is a tag or a sha256 digest.
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    rf"(?P<registry>{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?)"
    rf"/(?P<path>{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
MAX_IMAGE = 255
IMAGE_FORM = "registry/path:tag or registry/path@sha256:<64 hex>"

# Environment variables that belong to someone else; checked without regard to case.
_RESERVED_PREFIXES = {
    "JUPYTERHUB_": "JupyterHub sets JUPYTERHUB_* variables",
    "JPY_": "JupyterHub sets JPY_* variables",
    "ONYXIA_HUB_": "ONYXIA_HUB_* variables are reserved for Onyxia Hub",
    "AWS_": "AWS_* variables belong to the storage provider (per-user S3 credentials)",
    "GIT_": (
        "GIT_* variables belong to the git provider (per-user identity and token); "
        "give git settings such as a CA bundle with c.GitProvider.git_config (docs/git.md)"
    ),
}
_RESERVED_NAMES = {
    **dict.fromkeys(
        ("MEM_LIMIT", "MEM_GUARANTEE", "CPU_LIMIT", "CPU_GUARANTEE"),
        "it is set from the resources the user chose",
    ),
    **dict.fromkeys(
        ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"),
        "it is set from the GPUs the user was given",
    ),
    **dict.fromkeys(
        ("HOME", "USER", "LOGNAME", "SHELL", "PATH"),
        "it is set for the user's account",
    ),
}

SERVICE_KEYS = (
    "name",
    "display_name",
    "description",
    "icon",
    "order",
    "default",
    "versions",
    "resources",
    "gpu",
    "groups",
    "max_servers",
    "environment",
    "local",
)
SERVICE_REQUIRED = ("name", "display_name", "description", "versions", "resources")
LIMIT_KEYS = model.Limits.DIMENSIONS
_MISPLACED_GPU = {
    key: "gpu is a key of its own, beside resources" for key in ("gpu", "gpus", "nvidia.com/gpu")
}


# --- Services ----------------------------------------------------------------------


def service_from_document(data, *, file: str, directory: Path, name: str):
    """(Service, []) from one parsed service file, or (None, issues).

    name is the file's name without `.yaml`, which the service's `name` must equal;
    directory is where the file is, which `icon` paths are relative to.
    """
    c = Checker(file, directory)
    doc = c.mapping(data, "", required=SERVICE_REQUIRED, optional=SERVICE_KEYS)
    if doc is None:
        return None, c.issues
    fields = {}
    if "name" in doc:
        fields["name"] = _service_name(c, doc["name"], name)
    if "display_name" in doc:
        fields["display_name"] = c.string(doc["display_name"], "display_name", max_length=80)
    if "description" in doc:
        fields["description"] = c.string(
            doc["description"], "description", max_length=MAX_TEXT, multiline=True
        )
    if "versions" in doc:
        fields["versions"] = _versions(c, doc["versions"], "versions")
    if "resources" in doc:
        res = c.mapping(
            doc["resources"], "resources", required=("cpu", "memory"), hints=_MISPLACED_GPU
        )
        if res is not None:
            if "cpu" in res:
                fields["cpu"] = _range(c, res["cpu"], "resources.cpu", _CPU)
            if "memory" in res:
                fields["memory"] = _range(c, res["memory"], "resources.memory", _MEMORY)
    optional = {
        "icon": _icon,
        "order": lambda c, v, f: c.integer(v, f, minimum=-(10**6), maximum=10**6),
        "default": Checker.boolean,
        "gpu": _gpu,
        "groups": _groups,
        "max_servers": lambda c, v, f: c.integer(v, f, minimum=1, maximum=1000),
        "environment": _environment,
        "local": _local,
    }
    for key, check in optional.items():
        if doc.get(key) is not None:
            fields[key] = check(c, doc[key], key)
    if c.issues:
        return None, c.issues
    return model.Service(source=file, **fields), []


def _service_name(c: Checker, value, file_name: str):
    """The service's name: a lowercase slug, equal to its file's name."""
    rule = (
        "a service name (2 to 40 lowercase letters, digits and '-', starting with a "
        "letter and ending with a letter or digit)"
    )
    name = c.string(value, "name", max_length=40, pattern=SERVICE_NAME, rule=rule)
    if name is not None and name != file_name:
        c.fail("name", f"{name!r} does not match the file name: rename the file {name}.yaml")
        return None
    return name


def _versions(c: Checker, value, field: str):
    """The versions, the first being the default; names unique."""
    items = c.sequence(value, field, min_items=1, max_items=50)
    if items is None:
        return None
    before = len(c.issues)
    versions, seen = [], set()
    rule = "a version name (up to 64 letters, digits, '.', '_', '-'; a letter or digit first)"
    for i, item in enumerate(items):
        here = f"{field}[{i}]"
        entry = c.mapping(item, here, required=("name", "image"))
        if entry is None:
            continue
        name = image = None
        if "name" in entry:
            name = c.string(
                entry["name"], f"{here}.name", max_length=64, pattern=VERSION_NAME, rule=rule
            )
            if name is not None and name in seen:
                c.fail(f"{here}.name", f"{name!r} is listed twice")
            seen.add(name)
        if "image" in entry:
            image = _image(c, entry["image"], f"{here}.image")
        versions.append(model.Version(name=name, image=image))
    return tuple(versions) if len(c.issues) == before else None


def _image(c: Checker, value, field: str):
    """A container image reference with its registry and a tag or sha256 digest."""
    if not isinstance(value, str):
        return c.wrong_type(value, field, "a string")
    if len(value) > MAX_IMAGE:
        return c.fail(field, f"is {len(value)} characters long; at most {MAX_IMAGE}")
    if any(ch.isspace() for ch in value) or has_control(value):
        return c.fail(field, f"{show(value)} contains spaces or control characters")
    match = IMAGE.fullmatch(value)
    if not match:
        return c.fail(
            field, f"{show(value)} is not a container image reference (write it as {IMAGE_FORM})"
        )
    registry = match["registry"]
    if "." not in registry and ":" not in registry and registry != "localhost":
        return c.fail(
            field,
            f"{show(value)} does not name its registry (write it in full: quay.io/..., "
            "docker.io/library/...)",
        )
    if not match["tag"] and not match["digest"]:
        return c.fail(
            field,
            f"{show(value)} has no tag or digest: pin one (...:2026-08-03 or ...@sha256:...)",
        )
    return value


class _Quantity:
    """How one kind of resource amount is parsed, shown and stored."""

    def __init__(self, parse, show, make):
        self.parse, self.show, self.make = parse, show, make


_CPU = _Quantity(parse_cpu, format_cpu, model.CpuRange)
_MEMORY = _Quantity(parse_memory, format_memory, model.MemoryRange)


def _range(c: Checker, value, field: str, kind: _Quantity):
    """A CpuRange or MemoryRange: presets and default within [min, max]."""
    before = len(c.issues)
    spec = c.mapping(value, field, required=("presets", "default", "min", "max"))
    if spec is None:
        return None

    def amount(v, f):
        try:
            return kind.parse(v)
        except ValueError as e:
            return c.fail(f, str(e))

    low = amount(spec["min"], f"{field}.min") if "min" in spec else None
    high = amount(spec["max"], f"{field}.max") if "max" in spec else None
    if low is not None and high is not None and low > high:
        c.fail(f"{field}.min", f"{kind.show(low)} is above max ({kind.show(high)})")
        low = high = None
    inside = (
        f"[{kind.show(low)}, {kind.show(high)}]" if low is not None and high is not None else ""
    )

    def within(v, f):
        if v is not None and inside and not low <= v <= high:
            return c.fail(f, f"{kind.show(v)} is outside [min, max] = {inside}")
        return v

    presets = []
    items = None
    if "presets" in spec:
        items = c.sequence(spec["presets"], f"{field}.presets", min_items=1, max_items=20)
    for i, item in enumerate(items or ()):
        here = f"{field}.presets[{i}]"
        v = within(amount(item, here), here)
        if v is not None and v in presets:
            c.fail(here, f"{kind.show(v)} is listed twice")
        elif v is not None:
            presets.append(v)
    default = None
    if "default" in spec:
        default = within(amount(spec["default"], f"{field}.default"), f"{field}.default")
    if len(c.issues) != before:
        return None
    return kind.make(presets=tuple(sorted(presets)), default=default, min=low, max=high)


def _icon(c: Checker, value, field: str):
    """An .svg or .png file inside the catalog directory, as a data: URI."""
    rel = c.string(value, field, max_length=255)
    if rel is None:
        return None
    path = Path(rel)
    if path.is_absolute() or rel.startswith(("~", "\\")):
        return c.fail(field, f"{show(rel)} must be relative to the catalog directory")
    if ".." in path.parts:
        return c.fail(field, f"{show(rel)} must stay inside the catalog directory (no '..')")
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        return c.fail(field, f"{show(rel)} must be an .svg or .png file")
    base = c.directory.resolve()
    try:
        real = (c.directory / path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return c.fail(field, f"{show(rel)}: no such file in {c.directory}")
    if not real.is_relative_to(base):
        return c.fail(field, f"{show(rel)} leads outside the catalog directory (a symbolic link?)")
    try:
        data = read_regular_file(real, MAX_ICON_BYTES)
    except NotRegularFile:
        return c.fail(field, f"{show(rel)} is not a regular file")
    except OSError as e:
        return c.fail(field, f"{show(rel)} cannot be read: {e.strerror or e}")
    if len(data) > MAX_ICON_BYTES:
        return c.fail(field, f"{show(rel)} is larger than 64 KiB, the limit for icons")
    if suffix == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            return c.fail(field, f"{show(rel)} is not a PNG image")
        mime = "image/png"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return c.fail(field, f"{show(rel)} is not an SVG image (not UTF-8 text)")
        if "<svg" not in text:
            return c.fail(field, f"{show(rel)} is not an SVG image (no <svg> element)")
        if "<script" in text.lower():
            return c.fail(field, f"{show(rel)}: SVG icons must not contain scripts")
        mime = "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _groups(c: Checker, value, field: str):
    """The JupyterHub groups allowed to use the service; empty: everyone."""
    items = c.sequence(value, field, max_items=100)
    if items is None:
        return None
    before = len(c.issues)
    groups = []
    for i, item in enumerate(items):
        group = c.string(item, f"{field}[{i}]", max_length=255)
        if group is not None and group in groups:
            c.fail(f"{field}[{i}]", f"{group!r} is listed twice")
        elif group is not None:
            groups.append(group)
    return frozenset(groups) if len(c.issues) == before else None


def _environment(c: Checker, value, field: str):
    """Environment variables: valid names, none reserved, string values."""
    before = len(c.issues)
    env = c.mapping(value, field, free=True)
    if env is None:
        return None
    for name, text in env.items():
        here = key_path(field, name)
        if not ENV_NAME.fullmatch(name):
            c.fail(
                here,
                f"{show(name)} is not an environment variable name "
                "(letters, digits and '_', not starting with a digit; at most 128)",
            )
            continue
        reason = _reserved(name)
        if reason:
            c.fail(here, f"{name} is reserved: {reason}")
            continue
        if isinstance(text, (bool, int, float)):
            shown = str(text).lower() if isinstance(text, bool) else str(text)
            c.fail(here, f'must be a string, not {kind(text)}: write it "{shown}" in quotes')
        elif not isinstance(text, str):
            c.wrong_type(text, here, "a string")
        elif len(text) > MAX_ENV_VALUE:
            c.fail(here, f"is {len(text)} characters long; at most {MAX_ENV_VALUE}")
        elif "\x00" in text:
            c.fail(here, "contains a NUL character")
    return model.frozen_map(env) if len(c.issues) == before else None


def _reserved(name: str) -> str | None:
    """Why name may not be set by the catalog, or None if it may."""
    upper = name.upper()
    if upper in _RESERVED_NAMES:
        return _RESERVED_NAMES[upper]
    for prefix, reason in _RESERVED_PREFIXES.items():
        if upper.startswith(prefix):
            return reason
    return None


def _local(c: Checker, value, field: str):
    """How the service runs on one machine: software, command, landing URL, variables, needs."""
    before = len(c.issues)
    spec = c.mapping(
        value,
        field,
        optional=("software", "command", "default_url", "environment", "requires"),
    )
    if spec is None:
        return None
    fields = {}
    if spec.get("software") is not None:
        fields["software"] = c.string(
            spec["software"],
            f"{field}.software",
            max_length=40,
            pattern=SOFTWARE_NAME,
            rule="an environment name (a directory of environments/: python, pyspark, r)",
        )
    if spec.get("command") is not None:
        fields["command"] = _command(c, spec["command"], f"{field}.command")
    if spec.get("default_url") is not None:
        url = c.string(spec["default_url"], f"{field}.default_url", max_length=255)
        if url is not None and (not url.startswith("/") or url.startswith("//")):
            c.fail(
                f"{field}.default_url", f"{url!r} must be a path on the server, starting with one /"
            )
        elif url is not None and any(ch.isspace() or ch == "\\" for ch in url):
            c.fail(f"{field}.default_url", f"{url!r} must not contain spaces or backslashes")
        fields["default_url"] = url
    if spec.get("environment") is not None:
        fields["environment"] = _environment(c, spec["environment"], f"{field}.environment")
    if spec.get("requires") is not None:
        fields["requires"] = _requires(c, spec["requires"], f"{field}.requires")
    return model.LocalMode(**fields) if len(c.issues) == before else None


def _command(c: Checker, value, field: str):
    """A program and its arguments, no shell: a non-empty list of strings."""
    items = c.sequence(value, field, min_items=1, max_items=100)
    if items is None:
        return None
    before = len(c.issues)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            c.wrong_type(item, f"{field}[{i}]", "a string")
        elif "\x00" in item or len(item) > 4096:
            c.fail(f"{field}[{i}]", "must be at most 4096 characters, without NUL")
    if isinstance(items[0], str) and not items[0].strip():
        c.fail(f"{field}[0]", "the program must not be empty")
    return tuple(items) if len(c.issues) == before else None


def _requires(c: Checker, value, field: str):
    """What one-machine mode needs installed: executables, kernels, python modules."""
    spec = c.mapping(value, field, optional=("executables", "kernels", "python_modules"))
    if spec is None:
        return None
    rules = {
        "executables": (EXECUTABLE, "a program name (no path: it is looked up on PATH)"),
        "kernels": (KERNEL, "a Jupyter kernel name (letters, digits, '.', '_', '-')"),
        "python_modules": (PYTHON_MODULE, "a Python module name (like pyspark or torch.cuda)"),
    }
    fields = {}
    for key, (pattern, rule) in rules.items():
        if spec.get(key) is not None:
            fields[key] = c.names(spec[key], f"{field}.{key}", pattern=pattern, rule=rule)
    if any(v is None for v in fields.values()):
        return None
    return model.Requirements(**fields)


# --- GPUs --------------------------------------------------------------------------


def _gpu(c: Checker, value, field: str):
    """GPU counts and types a service may get; defaults: the first count and type."""
    before = len(c.issues)
    spec = c.mapping(
        value, field, required=("counts", "types"), optional=("default_count", "default_type")
    )
    if spec is None:
        return None
    counts = []
    items = None
    if "counts" in spec:
        items = c.sequence(spec["counts"], f"{field}.counts", min_items=1, max_items=MAX_GPUS + 1)
    for i, item in enumerate(items or ()):
        n = c.integer(item, f"{field}.counts[{i}]", minimum=0, maximum=MAX_GPUS)
        if n is not None and n in counts:
            c.fail(f"{field}.counts[{i}]", f"{n} is listed twice")
        elif n is not None:
            counts.append(n)
    types = []
    items = None
    if "types" in spec:
        items = c.sequence(spec["types"], f"{field}.types", min_items=1, max_items=20)
    for i, item in enumerate(items or ()):
        gpu_type = _gpu_type(c, item, f"{field}.types[{i}]")
        if gpu_type is not None and any(t.name == gpu_type.name for t in types):
            c.fail(f"{field}.types[{i}].name", f"{gpu_type.name!r} is listed twice")
        elif gpu_type is not None:
            types.append(gpu_type)
    default_count = counts[0] if counts else None
    if spec.get("default_count") is not None:
        default_count = c.integer(spec["default_count"], f"{field}.default_count")
        if default_count is not None and counts and default_count not in counts:
            c.fail(
                f"{field}.default_count",
                f"{default_count} is not one of counts ({', '.join(map(str, counts))})",
            )
    default_type = types[0].name if types else None
    if spec.get("default_type") is not None:
        default_type = c.string(spec["default_type"], f"{field}.default_type", max_length=40)
        names = [t.name for t in types]
        if default_type is not None and types and default_type not in names:
            c.fail(
                f"{field}.default_type",
                f"{default_type!r} is not one of the types ({', '.join(names)})",
            )
    if len(c.issues) != before:
        return None
    return model.GpuOptions(
        counts=tuple(counts),
        default_count=default_count,
        types=tuple(types),
        default_type=default_type,
    )


def _gpu_type(c: Checker, value, field: str):
    """One kind of GPU: its name, label, Kubernetes resource and placement."""
    before = len(c.issues)
    spec = c.mapping(
        value,
        field,
        required=("name", "display_name", "resource"),
        optional=("node_selector", "tolerations"),
    )
    if spec is None:
        return None
    rule = "a GPU type name (1 to 40 lowercase letters, digits and '-')"
    fields = {}
    if "name" in spec:
        fields["name"] = c.string(
            spec["name"], f"{field}.name", max_length=40, pattern=GPU_TYPE_NAME, rule=rule
        )
    if "display_name" in spec:
        fields["display_name"] = c.string(
            spec["display_name"], f"{field}.display_name", max_length=80
        )
    if "resource" in spec:
        fields["resource"] = extended_resource(c, spec["resource"], f"{field}.resource")
    if spec.get("node_selector") is not None:
        fields["node_selector"] = node_selector(c, spec["node_selector"], f"{field}.node_selector")
    if spec.get("tolerations") is not None:
        items = c.sequence(spec["tolerations"], f"{field}.tolerations", max_items=20)
        fields["tolerations"] = tuple(
            toleration(c, t, f"{field}.tolerations[{i}]") for i, t in enumerate(items or ())
        )
    if len(c.issues) != before:
        return None
    return model.GpuType(**fields)


# --- Catalog-wide settings ---------------------------------------------------------


def quotas_from_document(data, *, file: str):
    """(Quotas, []) from a parsed `_catalog.yaml`, or (None, issues).

    `quotas.default` applies to everyone; a key left out there is unbounded, as is a key
    set to null. `quotas.groups.<group>` raises limits for a group's members: a key left
    out is the default's value, null is unbounded, and a number below the default is
    refused (groups only raise limits; a user gets the most generous of their groups).
    """
    c = Checker(file)
    doc = c.mapping(data, "", optional=("quotas",))
    if doc is None or doc.get("quotas") is None:
        return (model.Quotas(), []) if not c.issues else (None, c.issues)
    spec = c.mapping(doc["quotas"], "quotas", optional=("default", "groups"))
    if spec is None:
        return None, c.issues
    default = model.Limits()
    if spec.get("default") is not None:
        default = _limits(c, spec["default"], "quotas.default", model.Limits())
    groups = {}
    if spec.get("groups") is not None:
        table = c.mapping(spec["groups"], "quotas.groups", free=True)
        for name, limits in (table or {}).items():
            here = key_path("quotas.groups", name)
            if not name.strip() or len(name) > 255:
                c.fail(here, "a group name must be 1 to 255 characters")
            elif limits is None:
                c.fail(here, "must be a mapping of limits ({} to take every default)")
            elif default is not None:
                groups[name] = _limits(c, limits, here, default)
    if c.issues:
        return None, c.issues
    return model.Quotas(default=default, groups=model.frozen_map(groups)), []


def _limits(c: Checker, value, field: str, base: model.Limits):
    """Limits from a mapping; keys left out take base's value, null is unbounded."""
    before = len(c.issues)
    spec = c.mapping(value, field, optional=LIMIT_KEYS)
    if spec is None:
        return None
    shown = {"servers": str, "gpus": str, "cpu": format_cpu, "memory": format_memory}
    fields = {}
    for key in LIMIT_KEYS:
        here = f"{field}.{key}"
        if key not in spec:
            fields[key] = getattr(base, key)
            continue
        v = spec[key]
        if v is None:
            fields[key] = None
            continue
        if key == "servers":
            v = c.integer(v, here, minimum=1, maximum=1000)
        elif key == "gpus":
            v = c.integer(v, here, minimum=0, maximum=1024)
        else:
            try:
                v = parse_cpu(v) if key == "cpu" else parse_memory(v)
            except ValueError as e:
                v = c.fail(here, str(e))
        floor = getattr(base, key)
        if v is not None and field != "quotas.default":
            if floor is None:
                c.fail(
                    here,
                    "the default is unbounded: a group can only raise limits "
                    "(leave it out, or null)",
                )
            elif v < floor:
                c.fail(
                    here,
                    f"{shown[key](v)} is below the default ({shown[key](floor)}): "
                    "a group can only raise limits",
                )
        fields[key] = v
    return model.Limits(**fields) if len(c.issues) == before else None
