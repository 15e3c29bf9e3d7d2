"""What pages and the API show: servers, quota gauges, saved configurations, share links.

Pure functions from the hub's server models, the catalog and the store's records to plain
values: the HTML pages and the JSON API show the same data, built once here.

Quota usage is summed from the options of the user's starting and running servers as the
hub's API reports them (the hub's own ledger lives in another process); the limits come
from the catalog for the user's groups, as on the spawn page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from ..catalog.model import Catalog
from ..choices import OPTIONS
from ..quantities import format_cpu, human_memory, parse_cpu, parse_memory
from ..quotas import Claim, Usage, gauges

STATUSES = ("starting", "ready", "stopping", "stopped")


@dataclass(frozen=True)
class ServerView:
    user: str
    name: str  # '' for the default server
    label: str
    service: str | None
    service_name: str  # the catalog's display name, or the raw name
    version: str | None
    cpu: str | None  # '2'
    memory: str | None  # '4 GiB'
    gpus: int
    gpu_type: str | None
    status: str  # one of STATUSES
    started: str | None  # ISO 8601, as the hub gives it
    last_activity: str | None
    url: str  # where the server answers (open)
    user_options: dict

    @property
    def active(self) -> bool:
        return self.status in ("starting", "ready")

    def as_json(self) -> dict:
        return asdict(self)


def _status(model: dict) -> str:
    if model.get("pending") == "spawn":
        return "starting"
    if model.get("pending") == "stop":
        return "stopping"
    if model.get("ready"):
        return "ready"
    if model.get("stopped", False) or not model.get("pending"):
        return "stopped"
    return "starting"


def _claim(options: dict) -> Claim:
    """What a server's options hold against the quota (0 for what cannot be read)."""

    def read(parse, value, fallback):
        try:
            return parse(value) if value is not None else fallback
        except (TypeError, ValueError):
            return fallback

    gpus = options.get("gpus", 0)
    return Claim(
        str(options.get("service") or options.get("profile") or ""),
        read(parse_cpu, options.get("cpu"), 0.0),
        read(parse_memory, options.get("memory"), 0),
        gpus if isinstance(gpus, int) and not isinstance(gpus, bool) else 0,
    )


def server_view(user: str, model: dict, catalog: Catalog | None) -> ServerView:
    options = model.get("user_options") or {}
    if not isinstance(options, dict):
        options = {}
    claim = _claim(options)
    service = claim.service or None
    entry = catalog.get(service) if catalog and service else None
    name = model.get("name") or ""
    return ServerView(
        user=user,
        name=name,
        label=name or "Default server",
        service=service,
        service_name=entry.display_name if entry else (service or "—"),
        version=str(options["version"]) if options.get("version") is not None else None,
        cpu=format_cpu(claim.cpu) if claim.cpu else None,
        memory=human_memory(claim.memory) if claim.memory else None,
        gpus=claim.gpus,
        gpu_type=str(options["gpu_type"]) if claim.gpus and options.get("gpu_type") else None,
        status=_status(model),
        started=model.get("started"),
        last_activity=model.get("last_activity"),
        url=model.get("url") or "",
        user_options=options,
    )


def server_views(user: str, servers: dict[str, dict], catalog) -> list[ServerView]:
    """The user's servers, default first; a stopped server never launched is left out."""
    views = [server_view(user, model, catalog) for model in servers.values()]
    views = [v for v in views if v.status != "stopped" or v.user_options]
    return sorted(views, key=lambda v: (v.name != "", v.name))


def usage(views: list[ServerView]) -> Usage:
    return Usage.of(_claim(v.user_options) for v in views if v.active)


def quota(views: list[ServerView], catalog, groups) -> list[dict]:
    """The user's quota as gauges (label, used, limit, text, fraction, level)."""
    if catalog is None:
        return []
    limits = catalog.quotas.for_groups(groups)
    return [
        {
            "label": g.label,
            "used": g.used,
            "limit": g.limit,
            "text": g.text,
            "fraction": round(g.fraction, 4),
            "level": g.level,
        }
        for g in gauges(usage(views), limits)
    ]


def share_path(hub_prefix: str, options: dict, user: str | None = None, server: str = "") -> str:
    """A link that pre-fills the spawn form with options (it never starts anything).

    For anyone: `/hub/spawn?opt-service=...`; for the owner's named server:
    `/hub/spawn/<user>/<server>?opt-...`.
    """
    query = urlencode(
        [(f"opt-{key}", str(options[key])) for key in OPTIONS if options.get(key) is not None]
    )
    path = hub_prefix + "spawn"
    if user and server:
        path += f"/{quote(user, safe='')}/{quote(server, safe='')}"
    return f"{path}?{query}"


def describe(options: dict, catalog) -> str:
    """'Jupyter Python 3.12, 2 CPU, 4 GiB, 1 GPU (A100)' for a configuration's options."""
    claim = _claim(options)
    entry = catalog.get(claim.service) if catalog and claim.service else None
    parts = [entry.display_name if entry else claim.service or "?"]
    if options.get("version") is not None:
        parts[0] += f" {options['version']}"
    if claim.cpu:
        parts.append(f"{format_cpu(claim.cpu)} CPU")
    if claim.memory:
        parts.append(human_memory(claim.memory))
    if claim.gpus:
        gpu_type = f" ({options['gpu_type']})" if options.get("gpu_type") else ""
        parts.append(f"{claim.gpus} GPU{gpu_type}")
    return ", ".join(parts)


def configuration_json(config, hub_prefix: str, user: str, catalog) -> dict:
    return {
        "id": config.id,
        "name": config.name,
        "server_name": config.server_name,
        "user_options": config.user_options,
        "description": describe(config.user_options, catalog),
        "share_url": share_path(hub_prefix, config.user_options),
        "edit_url": share_path(hub_prefix, config.user_options, user, config.server_name),
        "created_at": config.created_at.isoformat() + "Z",
        "updated_at": config.updated_at.isoformat() + "Z",
    }


def account_json(account) -> dict:
    return {
        "git_name": account.git_name,
        "git_email": account.git_email,
        "git_repository": account.git_repository,
        "git_branch": account.git_branch,
        "git_token_set": account.token_set,
        "git_token_hint": account.token_hint,
        "git_token_unreadable": account.token_unreadable,
        "updated_at": account.updated_at.isoformat() + "Z" if account.updated_at else None,
    }


def admin_filter(views: list[ServerView], *, user="", service="", status="", gpus="") -> list:
    """Servers whose user name contains `user`, of `service`, in `status`; `gpus`='yes'
    keeps those holding GPUs, 'no' those without."""
    user, service, status = user.strip().lower(), service.strip(), status.strip()
    kept = []
    for v in views:
        if user and user not in v.user.lower():
            continue
        if service and v.service != service:
            continue
        if status and v.status != status:
            continue
        if gpus == "yes" and not v.gpus or gpus == "no" and v.gpus:
            continue
        kept.append(v)
    return kept


def totals(views: list[ServerView]) -> dict:
    used = Usage.of(_claim(v.user_options) for v in views if v.active)
    return {
        "servers": used.servers,
        "cpu": format_cpu(used.cpu),
        "memory": human_memory(used.memory) if used.memory else "0 GiB",
        "gpus": used.gpus,
    }


def when(iso: str | None) -> str:
    """'2026-05-20 14:03 UTC' from the hub's ISO 8601 times; '—' for none."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
