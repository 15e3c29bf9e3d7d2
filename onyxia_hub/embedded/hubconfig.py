"""The JupyterHub configuration of the embedded default, and its redacted rendering.

`build_config` turns the resolved settings of `onyxia-hub up` into a traitlets `Config`;
the hub is started from that object directly (no generated file to go stale).
`render_config` prints any `Config` as the `jupyterhub_config.py` that would produce it,
with secret values replaced by `<redacted>`: that is what `onyxia-hub config` shows.
"""

from __future__ import annotations

import ipaddress
import json
import pprint
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config, LazyConfigValue

from ..envnames import COURSES, COURSES_INIT_SCRIPTS, COURSES_PATHS, PORTAL, STORAGE_ACCOUNTS_DB
from .state import StateDir

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE_DIR / "templates"
LOGO = PACKAGE_DIR / "static" / "logo.svg"
ADMIN_NAME = "admin"
REDACTED = "<redacted>"

# The portal service (onyxia_hub/portal; docs/portal.md says why each scope).
PORTAL_NAME = PORTAL.service
PORTAL_ROLE = "onyxia-portal"
# what a user's portal token (its OAuth cookie) may do: their own servers only
PORTAL_USER_SCOPES = ["read:servers!user", "start:servers!user", "delete:servers!user"]
# what the service's own token may do: the admin view (list every server, stop any)
PORTAL_SERVICE_SCOPES = ["list:users", "read:servers", "delete:servers"]

# The courses service (onyxia_hub/courses; docs/courses.md says why each scope).
COURSES_NAME = COURSES.service
COURSES_ROLE = "onyxia-courses"
# a trainee's courses token: read and start their own servers, nothing else
COURSES_USER_SCOPES = ["read:servers!user", "start:servers!user"]
# the service's own token: read servers, to keep the courses' record in line with the hub
COURSES_SERVICE_SCOPES = ["list:users", "read:servers"]


@dataclass(frozen=True)
class Resolved:
    """Everything `build_config` needs, decided by `up` (or placeholders for `config`)."""

    state: StateDir
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    proxy_command: str
    ssl_cert: str | None
    ssl_key: str | None
    crypt_key: str
    proxy_token: str
    isolate: bool
    log_level: str = "INFO"
    portal_port: int = 0
    courses_port: int = 0
    storage: dict | None = None  # c.StorageProvider settings of the embedded store


def url_host(ip: str) -> str:
    """ip as it appears in a URL ('::1' -> '[::1]')."""
    try:
        return f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    except ValueError:
        return ip


def build_config(r: Resolved) -> Config:
    c = Config()
    scheme = "https" if r.ssl_cert else "http"
    state = r.state

    # where it listens: the public proxy port, and loopback-only internal endpoints
    c.JupyterHub.bind_url = f"{scheme}://{url_host(r.ip)}:{r.port}/"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{r.hub_port}"
    if r.ssl_cert:
        c.JupyterHub.ssl_cert = r.ssl_cert
        c.JupyterHub.ssl_key = r.ssl_key

    # the proxy: Node's configurable-http-proxy, started and stopped by the hub
    c.ConfigurableHTTPProxy.command = [r.proxy_command]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{r.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state.proxy_pid_file)
    c.ConfigurableHTTPProxy.auth_token = r.proxy_token
    c.ConfigurableHTTPProxy.should_start = True

    # every file under the state directory
    c.JupyterHub.db_url = f"sqlite:///{state.hub_db}"
    c.JupyterHub.cookie_secret_file = str(state.secrets / "cookie_secret")
    c.JupyterHub.pid_file = str(state.hub_pid_file)
    c.CryptKeeper.keys = [r.crypt_key]

    # users, servers and what they see
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 5
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.logo_file = str(LOGO)
    c.JupyterHub.template_vars = {"onyxia_product_name": "Onyxia Hub"}
    c.JupyterHub.log_level = r.log_level

    c.JupyterHub.authenticator_class = "onyxia-local"
    c.OnyxiaLocalAuthenticator.admin_users = {ADMIN_NAME}
    c.OnyxiaLocalAuthenticator.db_url = f"sqlite:///{state.accounts_db}"
    # keep each user's name and e-mail (encrypted with the CryptKeeper key above): the git
    # provider's default identity
    c.OnyxiaLocalAuthenticator.enable_auth_state = True

    c.JupyterHub.spawner_class = "onyxia-local"
    c.OnyxiaLocalSpawner.homes_root = str(state.homes)
    # git identity, token and repository from My account (docs/git.md), and init scripts
    # (docs/init-scripts.md: none allowed until c.InitScriptProvider says which); storage
    # appends its provider below. Git and storage find the portal's store from the
    # portal service's environment (onyxia_hub.db.stores).
    c.OnyxiaLocalSpawner.provider_classes = [GIT_PROVIDER, INIT_PROVIDER]
    c.OnyxiaLocalSpawner.server_log_dir = str(state.server_logs)
    c.OnyxiaLocalSpawner.isolation = "accounts" if r.isolate else "none"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60

    # the portal (My services, My account, My storage, Admin > Servers), a service the hub
    # starts and stops
    c.JupyterHub.services = [
        {
            "name": PORTAL_NAME,
            "url": f"http://127.0.0.1:{r.portal_port}",
            "command": [sys.executable, "-m", "onyxia_hub.portal"],
            "cwd": str(state.portal),
            # paths only: the key stays in its file, never on a command line or in config
            "environment": {
                PORTAL.db_url: f"sqlite:///{state.portal_db}",
                PORTAL.key_file: str(state.portal_key_file),
                PORTAL.pid_file: str(state.portal_pid_file),
            },
            "oauth_no_confirm": True,
            "oauth_client_allowed_scopes": list(PORTAL_USER_SCOPES),
            "display": False,  # the nav bar links to it (templates/page.html)
        }
    ]
    c.JupyterHub.services.append(
        {
            "name": COURSES_NAME,
            "url": f"http://127.0.0.1:{r.courses_port}",
            "command": [sys.executable, "-m", "onyxia_hub.courses"],
            "cwd": str(state.courses),
            "environment": {
                COURSES.db_url: f"sqlite:///{state.courses_db}",
                COURSES.key_file: str(state.courses_key_file),
                COURSES.pid_file: str(state.courses_pid_file),
                COURSES_PATHS: json.dumps([str(state.course_files)]),
            },
            "oauth_no_confirm": True,
            "oauth_client_allowed_scopes": list(COURSES_USER_SCOPES),
            "display": False,  # the nav bar links to it (templates/page.html)
        }
    )
    c.JupyterHub.load_roles = [
        {
            "name": PORTAL_ROLE,
            "description": "The portal's admin view: list every server, stop any",
            "scopes": list(PORTAL_SERVICE_SCOPES),
            "services": [PORTAL_NAME],
        },
        {
            "name": COURSES_ROLE,
            "description": "The courses' record: read every server's state",
            "scopes": list(COURSES_SERVICE_SCOPES),
            "services": [COURSES_NAME],
        },
    ]
    c.JupyterHub.extra_user_scopes = {
        f"access:services!service={PORTAL_NAME}",
        f"access:services!service={COURSES_NAME}",
    }
    # a server's own token: its activity, and the courses service (its material's pull
    # status, extensions/onyxia-git); storage adds the portal (fresh credentials)
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)
    c.GitProvider.pull_report_url = (
        f"http://127.0.0.1:{r.courses_port}/services/{COURSES_NAME}/api/pull-status"
    )
    if r.storage:
        configure_storage(c, r)
    return c


GIT_PROVIDER = "onyxia_hub.providers.git.GitProvider"
INIT_PROVIDER = "onyxia_hub.providers.initscripts.InitScriptProvider"

# Storage (onyxia_hub/providers/storage, docs/storage.md): the embedded store's provider.
STORAGE_PROVIDER = "onyxia_hub.providers.storage.StorageProvider"
# What a server's own token may do: JupyterHub's `server` role, and report its material's
# pull to the courses service; with storage, also reach the portal for fresh credentials.
SERVER_TOKEN_SCOPES = [
    "access:servers!server",
    "users:activity!user",
    f"access:services!service={COURSES_NAME}",
]


def configure_storage(c: Config, r: Resolved) -> None:
    c.OnyxiaLocalSpawner.provider_classes.append(STORAGE_PROVIDER)
    for key, value in r.storage.items():
        c.StorageProvider[key] = value
    # the credentials cache lives in the portal's store, found (as the git provider finds
    # My account) from the portal service's environment: onyxia_hub.db.stores
    c.Spawner.server_token_scopes.append(f"access:services!service={PORTAL_NAME}")


def finish_storage(config: Config, *, local_accounts: bool = False) -> None:
    """Hand the portal the storage settings (it refreshes running servers' credentials)."""
    from ..providers.storage.provider import portal_environment

    services = config.JupyterHub.get("services", [])
    portal = next((s for s in services if s.get("name") == PORTAL_NAME), None)
    environment = portal_environment(config)
    if not environment:
        return
    if portal is None:  # the operator's services replaced ours: no refresh through it
        if "Spawner" in config and "server_token_scopes" in config.Spawner:
            scopes = [s for s in config.Spawner.server_token_scopes if "service=portal" not in s]
            config.Spawner.server_token_scopes = scopes
        config.StorageProvider.credentials_url = ""
        return
    local_db = config.OnyxiaLocalAuthenticator.get("db_url") if local_accounts else None
    if local_db:  # the sweep revokes disapproved local accounts too
        environment[STORAGE_ACCOUNTS_DB] = local_db
    portal["environment"] = {**portal.get("environment", {}), **environment}
    for service in services:  # the other services' nav bars show My storage too
        if service is not portal and service.get("name") == COURSES_NAME:
            service["environment"] = {**service.get("environment", {}), COURSES.storage_page: "1"}
    template_vars = dict(config.JupyterHub.get("template_vars", {}))
    template_vars["onyxia_storage"] = True
    config.JupyterHub.template_vars = template_vars


def _service(config: Config, name: str) -> dict | None:
    services = config.JupyterHub.get("services", [])
    return next((s for s in services if s.get("name") == name), None)


def _forget_service(config: Config, name: str, role: str) -> None:
    """The operator's services replaced ours: no role, no user scope left for it."""
    roles = config.JupyterHub.get("load_roles", [])
    config.JupyterHub.load_roles = [r for r in roles if r.get("name") != role]
    scopes = set(config.JupyterHub.get("extra_user_scopes", set()))
    config.JupyterHub.extra_user_scopes = scopes - {f"access:services!service={name}"}


def _hand_service(
    config: Config, service: dict, variables, *, local_accounts: bool, template_var: str
) -> str:
    """What every Onyxia Hub service gets from the merged configuration: its URL in the
    nav bar (the hub's template variable), the catalog the spawner reads, whether
    accounts are local. Its URL."""
    base_url = config.JupyterHub.get("base_url", "/").rstrip("/") + "/"
    url = f"{base_url}services/{service['name']}/"
    template_vars = dict(config.JupyterHub.get("template_vars", {}))
    template_vars.setdefault(template_var, url)
    config.JupyterHub.template_vars = template_vars
    catalog_paths = None
    for section in ("OnyxiaLocalSpawner", "OnyxiaSpawner"):
        if section in config and "catalog_paths" in config[section]:
            catalog_paths = config[section]["catalog_paths"]
    environment = dict(service.get("environment", {}))
    if catalog_paths:
        environment.setdefault(variables.catalog_paths, json.dumps(list(catalog_paths)))
    environment.setdefault(variables.local_accounts, "1" if local_accounts else "0")
    service["environment"] = environment
    return url


def finish_portal(config: Config, *, local_accounts: bool) -> None:
    """Settings of the portal that depend on the merged configuration (operator files
    included): its URL in the nav bar, the catalog it reads, the nav bar's links."""
    portal = _service(config, PORTAL_NAME)
    if portal is None:
        _forget_service(config, PORTAL_NAME, PORTAL_ROLE)
        return
    _hand_service(
        config, portal, PORTAL, local_accounts=local_accounts, template_var="onyxia_portal_url"
    )


def finish_courses(config: Config, *, local_accounts: bool) -> None:
    """Settings of the courses service that depend on the merged configuration: the
    catalog it checks courses against, the nav bar's Courses entry on every page; or,
    when the operator's services replaced ours, nothing left pointing at it."""
    courses = _service(config, COURSES_NAME)
    if courses is None:
        _forget_service(config, COURSES_NAME, COURSES_ROLE)
        if "Spawner" in config and "server_token_scopes" in config.Spawner:
            config.Spawner.server_token_scopes = [
                s for s in config.Spawner.server_token_scopes if f"service={COURSES_NAME}" not in s
            ]
        if "GitProvider" in config and "pull_report_url" in config.GitProvider:
            del config.GitProvider["pull_report_url"]
        return
    url = _hand_service(
        config, courses, COURSES, local_accounts=local_accounts, template_var="onyxia_courses_url"
    )
    courses["environment"].setdefault(COURSES.courses_url, url)
    if "InitScriptProvider" in config and "allowed_personal_scripts" in config.InitScriptProvider:
        patterns = list(config.InitScriptProvider.allowed_personal_scripts)
        courses["environment"][COURSES_INIT_SCRIPTS] = json.dumps(patterns)
    portal = _service(config, PORTAL_NAME)
    if portal is not None:
        portal["environment"] = {**portal.get("environment", {}), PORTAL.courses_url: url}


# -- rendering -----------------------------------------------------------------------
_SECRET_NAME = re.compile(
    r"(secret|password|passwd|token|credential|private|_keys?$|^keys?$)", re.IGNORECASE
)
_NOT_SECRET = re.compile(r"(_file|_path|_url|_dir|_class|_env|ssl_key|_scopes)$", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True for names like client_secret, auth_token, keys, AWS_SECRET_ACCESS_KEY."""
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.search(name)


def redact(value, name: str = ""):
    """value with every secret-looking entry, at any depth, replaced by REDACTED."""
    if name and is_secret_name(name) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, set):
        return {redact(v) for v in value}
    return value


def _python_literal(value) -> str:
    if isinstance(value, type):
        return repr(f"{value.__module__}.{value.__qualname__}")
    if callable(value):
        name = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}"
        return f"{name!r}  # a callable"
    if isinstance(value, LazyConfigValue):
        return f"{value!r}  # modifies the default"
    return pprint.pformat(value, width=88, sort_dicts=True)


def render_config(config: Config, *, redacted: bool = True, header: str = "") -> str:
    """config as `jupyterhub_config.py` source, secrets redacted unless redacted=False."""
    lines = [header.rstrip()] if header else []
    lines += ["c = get_config()  # noqa: F821", ""]
    for section in sorted(config):
        values = config[section]
        if not isinstance(values, Config):
            continue
        for key in sorted(values):
            value = values[key]
            if redacted:
                value = redact(value, key)
            lines.append(f"c.{section}.{key} = {_python_literal(value)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
