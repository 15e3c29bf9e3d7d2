"""`onyxia-hub up`: prepare the state directory, check, and run the embedded hub.

Order matters: the state directory is locked before anything else touches it (two
instances on one state directory would corrupt it), a proxy left behind by a crash is
stopped before ports are checked, and the admin's password is taken out of the
environment before any child process exists.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config

from .. import __version__
from ..envnames import ServiceVariables
from ..errors import OnyxiaHubError
from ..spawners.local.software import default_environments_dir
from . import hubconfig, preflight, store
from .hubconfig import ADMIN_NAME, REDACTED, Resolved, build_config, url_host
from .secrets import ADMIN_PASSWORD_ENV, ensure_secret, generate_password, write_private
from .stale import stop_stale
from .state import StateDir, default_state_dir

LOCAL_AUTHENTICATORS = {
    "onyxia-local",
    "onyxia_hub.auth.local.OnyxiaLocalAuthenticator",
}


@dataclass
class UpOptions:
    """The command-line options of `up` and `config`."""

    ip: str = "127.0.0.1"
    port: int = 8000
    state_dir: Path | None = None
    homes_dir: Path | None = None
    hub_port: int | None = None
    proxy_api_port: int | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    allow_insecure_http: bool = False
    config_files: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    storage: str = "auto"
    minio: str | None = None
    admin_password: str | None = field(default=None, repr=False)

    @property
    def state(self) -> StateDir:
        root = (self.state_dir or default_state_dir()).expanduser().resolve()
        homes = self.homes_dir.expanduser().resolve() if self.homes_dir else None
        return StateDir(root, homes)


def _isolating() -> bool:
    return os.geteuid() == 0


# -- the effective configuration ----------------------------------------------------
def effective_config(opts: UpOptions, resolved: Resolved) -> Config:
    """Our configuration, with the operator's --config file merged on top."""
    config = build_config(resolved)
    for path in opts.config_files:
        config.merge(preflight.load_operator_config(path))
    # the Password and Accounts links belong to local accounts only
    template_vars = dict(config.JupyterHub.get("template_vars", {}))
    template_vars.setdefault("onyxia_product_name", "Onyxia Hub")
    template_vars["onyxia_local_accounts"] = uses_local_accounts(config)
    config.JupyterHub.template_vars = template_vars
    hubconfig.finish_portal(config, local_accounts=uses_local_accounts(config))
    hubconfig.finish_courses(config, local_accounts=uses_local_accounts(config))
    hubconfig.finish_storage(config, local_accounts=uses_local_accounts(config))
    return config


def uses_local_accounts(config: Config) -> bool:
    cls = config.JupyterHub.get("authenticator_class", "")
    name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    return name in LOCAL_AUTHENTICATORS


def show_config(opts: UpOptions) -> str:
    """The `jupyterhub_config.py` that `up` would run with, secrets redacted. Changes nothing."""
    state = opts.state
    saved = {}
    try:
        saved = json.loads((state.hub / "ports.json").read_text())
    except (OSError, ValueError):
        pass
    resolved = Resolved(
        state=state,
        ip=opts.ip,
        port=opts.port,
        hub_port=opts.hub_port or saved.get("hub", 0),
        proxy_api_port=opts.proxy_api_port or saved.get("proxy_api", 0),
        portal_port=saved.get("portal", 0),
        courses_port=saved.get("courses", 0),
        proxy_command=_proxy_or_placeholder(),
        ssl_cert=opts.ssl_cert,
        ssl_key=opts.ssl_key,
        crypt_key=REDACTED,
        proxy_token=REDACTED,
        isolate=_isolating(),
        log_level=opts.log_level,
        storage=_storage_placeholder(opts, state, saved.get("storage", 0), saved.get("portal", 0)),
    )
    config = effective_config(opts, resolved)
    header = (
        f"# Effective configuration of `onyxia-hub up` (onyxia-hub {__version__}).\n"
        f"# State directory: {state.root}. Secret values are shown as '{REDACTED}'.\n"
        "# A port of 0 is picked free at the first start and kept afterwards."
    )
    return hubconfig.render_config(config, redacted=True, header=header)


def _storage_placeholder(opts: UpOptions, state: StateDir, port: int, portal_port: int):
    kind, binary = store.choose_store(opts.storage, opts.minio)
    if kind == "none":
        return None
    placeholder = store.EmbeddedStore(state, kind, port, binary, store_id="<set at start>")
    placeholder.settings = dict(store.SETTINGS[kind])
    return store.provider_config(placeholder, portal_port)


def _proxy_or_placeholder() -> str:
    try:
        return preflight.find_proxy()
    except OnyxiaHubError:
        return "configurable-http-proxy"


# -- processes left by a crash ------------------------------------------------------
def stop_stale_processes(state: StateDir) -> None:
    """Stop the proxy, portal and store a crashed hub left running (they hold our ports)."""
    stop_stale(state.proxy_pid_file, (b"configurable-http-proxy",))
    stop_stale(state.portal_pid_file, (b"onyxia_hub.portal",))
    stop_stale(state.courses_pid_file, (b"onyxia_hub.courses",))
    stop_stale(store.pid_file(state), (store.MOTO_MODULE.encode(), b"moto.server", b"minio"))


# -- the admin account ----------------------------------------------------------------
@dataclass
class AdminLogin:
    """How the banner tells the operator to sign in."""

    lines: list[str]


def bootstrap_admin(
    db_url: str, state: StateDir, env_password: str | None, *, on_terminal: bool
) -> AdminLogin:
    from ..auth.accounts import AccountStore, hash_password, open_session

    store = AccountStore(open_session(db_url))
    password_file = state.secrets / "admin-password"
    if store.exists(ADMIN_NAME):
        lines = [f"Sign in as '{ADMIN_NAME}' with the password you set."]
        if password_file.exists():
            lines = [
                f"Sign in as '{ADMIN_NAME}'; the first password (unless you changed it) "
                f"is in {password_file}."
            ]
        if env_password:
            lines.append(
                f"{ADMIN_PASSWORD_ENV} is ignored: the '{ADMIN_NAME}' account already "
                "exists (change its password from My account)."
            )
        return AdminLogin(lines)
    if env_password:
        if len(env_password) < 8 or len(env_password.encode()) > 72:
            raise OnyxiaHubError(
                f"{ADMIN_PASSWORD_ENV} must have 8 to 72 bytes",
                f"set a longer {ADMIN_PASSWORD_ENV}, or unset it to have one generated",
            )
        store.create(ADMIN_NAME, hash_password(env_password), authorized=True, must_change=False)
        return AdminLogin(
            [f"Sign in as '{ADMIN_NAME}' with the password from {ADMIN_PASSWORD_ENV}."]
        )
    password = generate_password()
    store.create(ADMIN_NAME, hash_password(password), authorized=True, must_change=False)
    if on_terminal:
        return AdminLogin(
            [
                f"Sign in as '{ADMIN_NAME}' with the password  {password}",
                "(shown once: keep it, or change it from My account).",
            ]
        )
    write_private(password_file, password + "\n")
    return AdminLogin(
        [f"Sign in as '{ADMIN_NAME}'; its password is in {password_file} (readable by you only)."]
    )


def _storage_lines(embedded: store.EmbeddedStore | None) -> list[str]:
    if embedded is None:
        return ["Storage: none (started with --storage none)."]
    if embedded.kind == "moto":
        return [
            f"Storage: users' S3 buckets on {embedded.url} (moto, IN MEMORY: every "
            "bucket and file stored there is LOST when Onyxia Hub stops).",
        ]
    return [
        f"Storage: users' S3 buckets on {embedded.url} (MinIO, data in {embedded.directory}/data)."
    ]


def _banner(
    opts: UpOptions,
    admin: AdminLogin | None,
    warnings: list[str],
    storage_lines: list[str] = (),
) -> str:
    scheme = "https" if opts.ssl_cert else "http"
    host = "127.0.0.1" if opts.ip in ("0.0.0.0", "::") else opts.ip
    lines = ["", f"Onyxia Hub is running at {scheme}://{url_host(host)}:{opts.port}/"]
    lines += [
        "  " + line
        for line in (
            admin.lines if admin else ["Sign in through the configured identity provider."]
        )
    ]
    state = opts.state
    lines.append(f"  State: {state.root} (database, secrets, logs; homes in {state.homes})")
    if _isolating():
        lines.append(
            "  Users are isolated: each one's servers run under their own system "
            "account (onyxia-<name>)."
        )
    else:
        lines.append(
            "  WARNING: users are NOT isolated: every user's servers run as "
            f"{os.environ.get('USER') or os.getuid()}, so any user can read any "
            "other user's files. Run as root to isolate them."
        )
    lines += ["  " + line for line in storage_lines]
    lines += ["  " + w for w in warnings]
    lines += ["  Stop with Ctrl-C.", ""]
    return "\n".join(lines)


def run_up(opts: UpOptions) -> int:
    os.umask(0o077)
    warnings = preflight.check_listen_address(
        opts.ip, opts.ssl_cert, opts.ssl_key, opts.allow_insecure_http
    )
    proxy = preflight.find_proxy()
    isolate = _isolating()
    state = opts.state
    if isolate:
        preflight.check_reachable_by_others(state.homes, "their home directories")
        for path in {
            Path(sys.prefix),
            Path(sys.base_prefix),
            Path(os.path.realpath(sys.executable)),
        }:
            preflight.check_reachable_by_others(path, f"the Python they run ({path})")
        environments = Path(default_environments_dir())
        if environments.is_dir():
            preflight.check_reachable_by_others(
                environments, f"the environments their servers run in ({environments})"
            )
    state.prepare(shared_homes=isolate)
    store_kind, minio_binary = store.choose_store(opts.storage, opts.minio)
    with state.lock():
        stop_stale_processes(state)
        if opts.port == 0:
            from .ports import pick_free_port

            opts.port = pick_free_port(opts.ip)
        preflight.check_port(opts.ip, opts.port, "public web address", "--port")
        for port, what, option in (
            (opts.hub_port, "hub", "--hub-port"),
            (opts.proxy_api_port, "proxy's API", "--proxy-api-port"),
        ):
            if port:
                preflight.check_port("127.0.0.1", port, what, option)
        wanted = {"hub": opts.hub_port, "proxy_api": opts.proxy_api_port, "portal": None}
        wanted["courses"] = None
        if store_kind != "none":
            wanted["storage"] = None
        ports = state.internal_ports("127.0.0.1", wanted)
        embedded = None
        if store_kind != "none":
            embedded = store.EmbeddedStore(state, store_kind, ports["storage"], minio_binary)
        try:
            return _run_with_store(opts, state, ports, proxy, isolate, warnings, embedded)
        finally:
            if embedded is not None:
                embedded.stop()


def _run_with_store(opts, state, ports, proxy, isolate, warnings, embedded) -> int:
    """Start the store (if any), then the hub; the caller stops the store."""
    if embedded is not None:
        embedded.start(state.logs / "storage.log")
    ensure_secret(state.secrets / "cookie_secret")
    ensure_secret(state.portal_key_file)  # read by the portal from its file
    ensure_secret(state.courses_key_file)  # the courses service's own key
    resolved = Resolved(
        state=state,
        ip=opts.ip,
        port=opts.port,
        hub_port=ports["hub"],
        proxy_api_port=ports["proxy_api"],
        portal_port=ports["portal"],
        courses_port=ports["courses"],
        proxy_command=proxy,
        ssl_cert=opts.ssl_cert,
        ssl_key=opts.ssl_key,
        crypt_key=ensure_secret(state.secrets / "crypt_key"),
        proxy_token=ensure_secret(state.secrets / "proxy_token"),
        isolate=isolate,
        log_level=opts.log_level,
        storage=store.provider_config(embedded, ports["portal"]) if embedded else None,
    )
    config = effective_config(opts, resolved)
    preflight.check_classes(config)
    admin = None
    if uses_local_accounts(config):
        db_url = config.OnyxiaLocalAuthenticator.get("db_url")
        admin = bootstrap_admin(db_url, state, opts.admin_password, on_terminal=sys.stdout.isatty())
    opts.admin_password = None
    prepare_stores(config)
    from .hub import run_hub  # imports JupyterHub: ~2 s, only once the checks passed

    banner = _banner(opts, admin, warnings, _storage_lines(embedded))
    return run_hub(config, state, banner)


def hub_stores() -> list[tuple]:
    """The stores the hub migrates before it starts (and so before its services start),
    each with the sections whose `db_url` may point the hub's providers at it."""
    from ..db import courses, portal

    return [(portal.SCHEMA, ("GitProvider", "StorageProvider")), (courses.SCHEMA, ())]


def store_urls(config: Config, schema, sections: tuple[str, ...]) -> list[str]:
    """The URLs of a store that its service and the hub's providers use (one, unless the
    operator pointed them at different databases)."""
    from ..db import service_environment

    variables = ServiceVariables(schema.name)
    urls = [service_environment(config, schema.name, environ={}).get(variables.db_url)]
    urls += [config[s].get("db_url") for s in sections if s in config]
    return list(dict.fromkeys(u for u in urls if isinstance(u, str) and u))


def prepare_stores(config: Config) -> None:
    """Every store at its head before the hub starts (`Schema.prepare`): the hub answers
    launches while its services are still starting, and its providers read their tables;
    the services only check the revision. Also when an operator's configuration replaced
    a service (the providers still keep their data in its store)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..db import safe_url

    for schema, sections in hub_stores():
        for db_url in store_urls(config, schema, sections):
            try:
                schema.prepare(db_url)
            except (SQLAlchemyError, OSError) as e:
                reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
                variables = ServiceVariables(schema.name)
                raise OnyxiaHubError(
                    f"The {schema.name}'s store {safe_url(db_url)} cannot be prepared: {reason}",
                    f"check {variables.db_url} of the {schema.name} service, and the "
                    "providers' db_url (reachable, writable)",
                ) from None


__all__ = ["UpOptions", "run_up", "show_config"]
