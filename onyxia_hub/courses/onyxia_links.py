"""Onyxia's launcher links, read as onyxia-web reads them, and translated to a launch.

`<hub>/services/courses/launcher/<catalog>/<chart>?<query>` is an Onyxia link with its host
swapped. `parse_query` reads the query exactly as onyxia-web's launcher route does (its
query-string serializer, InseeFrLab/onyxia `web/src/ui/pages/launcher/route.ts`, 2026-07):

- `&`-separated parameters, each `key=value`; a key is never percent-decoded;
- reserved keys `name`, `version`, `s3` (percent-decoded text), `shared`, `autoLaunch`
  (exactly `true` or `false`, anything else ignored), the last occurrence winning;
- keys starting with `oidc-spa.` ignored, and any other key without a `.`;
- any other key is a Helm values path: split at `.`, `[N]` an array index, `\\.` or
  `%5C.` (either case) a literal dot, a trailing empty segment dropped;
- values: `true`/`false`, `null`, `-` (unset), a number, or `«...»` (raw or
  `%C2%AB...%C2%BB`) with URI-encoded content; anything else fails.

One difference, on purpose: JavaScript's `parseFloat` reads `2Gi` as 2 and `1500m` as 1500,
silently; here a value that is a number only by its prefix is refused, naming the
parameter and saying to write `«2Gi»`. Everything that fails is a `LinkError` naming the
parameter: the page answers 400 with it.

`translate` then maps the chart to a catalog service and the paths Onyxia Hub can honour
to launch options (`HONOURED`); every other parameter is listed with why it is not
applied, never dropped silently. Nothing here starts anything: the Start page does, on a
POST.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

MAX_QUERY = 8192
MAX_PARAMETERS = 64
MAX_KEY = 256
MAX_DEPTH = 16
RESERVED = ("name", "version", "shared", "s3", "autoLaunch")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_PREFIX = re.compile(r"\s*[+-]?(?:\d|\.\d)")
_INDEX = re.compile(r"\[(\d{1,4})\]")
_ESCAPED_DOT = re.compile(r"(?:\\|%5c)\.", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
UNSET = object()  # the value `-`: remove the key


class LinkError(ValueError):
    """A link onyxia-web would not read either; `parameter` names the culprit."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class OnyxiaQuery:
    name: str | None = None
    version: str | None = None
    shared: bool | None = None
    s3: str | None = None
    auto_launch: bool | None = None
    values: tuple[tuple[tuple, object], ...] = ()  # (path, value) in the link's order
    ignored: tuple[str, ...] = ()  # keys without a dot that are not reserved


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_path(key: str) -> tuple:
    """A values path from a key: `a.b[0]`, `nvidia\\.com/gpu`, `x%5C.y`."""
    marker = "\x00"
    text = _ESCAPED_DOT.sub(marker, key)
    text = _INDEX.sub(lambda m: f".\x01{m.group(1)}", text)
    parts = text.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    path: list = []
    for part in parts:
        if part.startswith("\x01"):
            path.append(int(part[1:]))
        else:
            path.append(part.replace(marker, "."))
    return tuple(path)


def path_text(path: tuple) -> str:
    """A path as the links write it (`resources.limits.nvidia\\.com/gpu`, `a[0].b`)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part.replace(".", "\\.")
    return out


def parse_value(raw: str, key: str):
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if raw == "-":
        return UNSET
    if _NUMBER.fullmatch(raw.strip()):
        number = float(raw)
        return (
            int(number)
            if number.is_integer() and "." not in raw and "e" not in raw.lower()
            else number
        )
    if _NUMBER_PREFIX.match(raw) or raw.strip() in ("Infinity", "-Infinity", "+Infinity"):
        raise LinkError(
            key,
            f"{_short(raw)!r} is a number only by its beginning (Onyxia would read "
            f"{_js_prefix(raw)}): write «{_short(raw)}» for the text",
        )
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise LinkError(key, "its value is not valid percent-encoding") from None
    if "%" in raw and re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise LinkError(key, "its value is not valid percent-encoding")
    match = re.fullmatch(r"«([^»]*)»", decoded, re.DOTALL)
    if match is None:
        raise LinkError(
            key,
            f"{_short(decoded)!r} is no value of a link: true, false, null, -, a number, "
            "or text between « and »",
        )
    text = match.group(1)
    if _CONTROL.search(text):
        raise LinkError(key, "its text holds control characters")
    return text


def _js_prefix(raw: str) -> str:
    match = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", raw)
    return match.group(1) if match else "a number"


def parse_query(raw_query: str) -> OnyxiaQuery:
    """The query of an Onyxia launcher link (without `?`); `LinkError` if it fails."""
    if len(raw_query) > MAX_QUERY:
        raise LinkError("query", f"is {len(raw_query)} characters long; at most {MAX_QUERY}")
    if "\x00" in raw_query or "%00" in raw_query:
        raise LinkError("query", "holds a NUL character")
    parts = [p for p in raw_query.split("&") if p]
    if len(parts) > MAX_PARAMETERS:
        raise LinkError("query", f"has {len(parts)} parameters; at most {MAX_PARAMETERS}")
    reserved: dict[str, str] = {}
    values: list[tuple[tuple, object]] = []
    ignored: list[str] = []
    for part in parts:
        key, sep, value = part.partition("=")
        if "=" in value:
            raise LinkError(_short(key), "a value may hold '=' only percent-encoded (%3D)")
        if len(key) > MAX_KEY:
            raise LinkError(_short(key), f"the name is longer than {MAX_KEY} characters")
        if "." in key and not key.startswith("oidc-spa."):
            if not sep:
                raise LinkError(_short(key), "has no value (key=value)")
            path = parse_path(key)
            if len(path) > MAX_DEPTH:
                raise LinkError(_short(key), f"is deeper than {MAX_DEPTH} levels")
            if not path or isinstance(path[0], int):
                raise LinkError(_short(key), "is no values path")
            values.append((path, parse_value(value, _short(key))))
        elif key in RESERVED:
            if sep:
                reserved[key] = value
        elif not key.startswith("oidc-spa."):
            ignored.append(_short(key))
    return OnyxiaQuery(
        name=_text(reserved, "name"),
        version=_text(reserved, "version"),
        shared=_flag(reserved, "shared"),
        s3=_text(reserved, "s3"),
        auto_launch=_flag(reserved, "autoLaunch"),
        values=tuple(values),
        ignored=tuple(ignored),
    )


def _text(reserved: dict, key: str) -> str | None:
    if key not in reserved:
        return None
    try:
        value = unquote(reserved[key], errors="strict")
    except UnicodeDecodeError:
        raise LinkError(key, "is not valid percent-encoding") from None
    if _CONTROL.search(value):
        raise LinkError(key, "holds control characters")
    return value[:200]


def _flag(reserved: dict, key: str) -> bool | None:
    value = reserved.get(key)
    return {"true": True, "false": False}.get(value) if value is not None else None


# -- translation --------------------------------------------------------------------------
DEFAULT_CHARTS = {
    "jupyter-python": "jupyter-python",
    "jupyter-python-gpu": "pytorch-gpu",
    "jupyter-pytorch": "pytorch-gpu",
    "jupyter-pytorch-gpu": "pytorch-gpu",
    "jupyter-pyspark": "jupyter-pyspark",
    "vscode-python": "vscode-python",
    "vscode-pytorch": "vscode-python",
    "jupyter-r": "jupyter-r",
    "rstudio": "jupyter-r",
    "rstudio-sparkr": "jupyter-r",
}

# Why a path is not applied, by its first segments (the longest prefix wins).
NOT_APPLIED = {
    ("security",): "security settings are the datalab's own; a link cannot change them",
    ("kubernetes",): "servers get no Kubernetes role; a link cannot grant one",
    ("vault",): "there is no Vault here; secrets come from My account and My storage",
    ("networking",): "servers expose no extra ports; web UIs are proxied behind the login",
    ("extraEnvVars",): "a link cannot set environment variables",
    ("service", "image", "custom"): "only the catalog's images run here",
    ("init", "regionInit"): "the region's init script is the operator's",
    ("persistence",): "your home is persistent; its size is the operator's",
    ("s3",): "My storage gives every server its S3 credentials",
    ("git", "enabled"): "every server gets your git identity (My account)",
    ("git", "token"): "git tokens come from My account, never from a link",
    ("git", "name"): "the git identity comes from My account",
    ("git", "email"): "the git identity comes from My account",
    ("git", "cache"): "the token is a private file; there is no credentials cache",
    ("discovery",): "there are no services to discover here",
    ("onyxia",): "Onyxia's own settings have no meaning here",
    ("userPreferences",): "preferences are JupyterLab's own",
    ("nodeSelector",): "placement follows the catalog (GPU types)",
    ("tolerations",): "placement follows the catalog (GPU types)",
}


@dataclass(frozen=True)
class Translation:
    chart: str
    service: str | None
    options: Mapping[str, object] = field(default_factory=dict)
    applied: tuple[tuple[str, str], ...] = ()  # (parameter, what it became)
    not_applied: tuple[tuple[str, str], ...] = ()  # (parameter, why not)
    name: str | None = None


def _why_not(path: tuple) -> str:
    for length in range(len(path), 0, -1):
        reason = NOT_APPLIED.get(tuple(path[:length]))
        if reason:
            return reason
    return "not an option of this datalab"


def _shown(value) -> str:
    if value is UNSET:
        return "-"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def translate(
    query: OnyxiaQuery,
    chart: str,
    catalog,
    charts: Mapping[str, str],
    init_allowed: Callable[[str], bool] = lambda url: False,
) -> Translation:
    """The launch options a link can honour, and why each other parameter is not applied."""
    service_name = charts.get(chart)
    service = catalog.get(service_name) if catalog and service_name else None
    options: dict[str, object] = {}
    applied: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    if service is not None:
        options["service"] = service.name
    values = {path: value for path, value in query.values}  # the last one wins
    for path, value in values.items():
        key = path_text(path)
        if value is UNSET:
            skipped.append((key, "unsetting a value keeps this datalab's default"))
            continue
        if path == ("onyxia", "friendlyName") and isinstance(value, str) and not query.name:
            applied.append((key, "the server's name"))  # Onyxia's name before `name=`
            continue
        option, reason = _option(path, value, service, init_allowed)
        if option is None:
            skipped.append((key, reason or _why_not(path)))
            continue
        name, converted = option
        if name in options and name != "service" and options[name] != converted:
            # requests and limits both given: the limit is what the server gets
            if path[:2] != ("resources", "limits"):
                skipped.append((key, f"the limit sets {name}"))
                continue
        options[name] = converted
        applied.append((key, f"{name} = {converted}"))
    if "init_args" in options and "init_script" not in options:
        options.pop("init_args")
        applied = [a for a in applied if a[0] != "init.personalInitArgs"]
        skipped.append(("init.personalInitArgs", "its init script is not applied"))
    if query.version is not None:
        skipped.append(("version", "Onyxia's chart versions have no meaning here; the "
                        "catalog's version applies"))  # fmt: skip
    if query.shared:
        skipped.append(("shared", "servers are personal here"))
    if query.s3 is not None:
        skipped.append(("s3", "My storage gives every server its S3 credentials"))
    if query.auto_launch:
        skipped.append(("autoLaunch", "a link never starts a server here: press Start"))
    for key in query.ignored:
        skipped.append((key, "not a parameter of Onyxia's launcher"))
    return Translation(
        chart, service.name if service else None, options, tuple(applied), tuple(skipped),
        name=query.name or _friendly(values),
    )  # fmt: skip


def _friendly(values: dict) -> str | None:
    value = values.get(("onyxia", "friendlyName"))
    return value if isinstance(value, str) else None


def _option(path: tuple, value, service, init_allowed) -> tuple[tuple | None, str | None]:
    """((option, value), None) for a path honoured, else (None, why not or None)."""
    text = value if isinstance(value, str) else None
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if path == ("git", "repository") and text is not None:
        return (("repository", text), None) if text else (None, "empty")
    if path == ("git", "branch") and text is not None:
        return (("branch", text), None) if text else (None, "empty")
    if path[:1] == ("resources",) and len(path) == 3 and path[1] in ("requests", "limits"):
        kind = path[2]
        if kind in ("cpu", "memory") and (text or number is not None):
            return ((kind, text if text is not None else number), None)
        if kind == "nvidia.com/gpu" and (text or number is not None):
            return (("gpus", _count(text if text is not None else number)), None)
    if path == ("resources", "limits", "nvidia", "com/gpu") and (text or number is not None):
        # the dot left unescaped, as many real links write it: Onyxia reads another path
        return (("gpus", _count(text if text is not None else number)), None)
    if path == ("service", "image", "version") and text:
        if service is not None:
            for version in service.versions:
                if text in (version.name, version.image):
                    return (("version", version.name), None)
            names = ", ".join(v.name for v in service.versions)
            return (None, f"{service.display_name} has no image {_short(text)!r} ({names})")
    if path == ("init", "personalInit") and text:
        if init_allowed(text):
            return (("init_script", text), None)
        return (None, "the operator does not allow this init script (docs/init-scripts.md)")
    if path == ("init", "personalInitArgs") and text is not None:
        return (("init_args", text), None)
    return (None, None)


def _count(value) -> object:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
