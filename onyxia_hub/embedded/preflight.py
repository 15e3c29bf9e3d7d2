"""Checks run before the hub starts, each turning a likely failure into one clear message.

Every check raises `OnyxiaHubError(problem, fix)`; none of them changes anything.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import sys
from pathlib import Path

from traitlets import TraitError
from traitlets.config import Config, LazyConfigValue, PyFileConfigLoader

from ..errors import OnyxiaHubError
from .ports import bind_error


def check_listen_address(
    ip: str, ssl_cert: str | None, ssl_key: str | None, allow_insecure_http: bool
) -> list[str]:
    """Refuse clear-text HTTP off loopback; returns warnings to print loudly."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise OnyxiaHubError(
            f"--ip {ip!r} is not an IP address",
            "give an address of this machine, e.g. --ip 127.0.0.1 or --ip 0.0.0.0",
        ) from None
    if bool(ssl_cert) != bool(ssl_key):
        raise OnyxiaHubError(
            "--ssl-cert and --ssl-key go together: only one was given",
            "pass both the certificate and its private key, or neither",
        )
    for label, path in (("--ssl-cert", ssl_cert), ("--ssl-key", ssl_key)):
        if path and not os.access(path, os.R_OK):
            raise OnyxiaHubError(
                f"{label} {path}: no such readable file", f"check the path given to {label}"
            )
    warnings = []
    if not address.is_loopback and not ssl_cert:
        message = (
            f"--ip {ip} makes the hub reachable from the network over plain HTTP: passwords "
            "and session cookies would cross the network in clear"
        )
        if not allow_insecure_http:
            raise OnyxiaHubError(
                message,
                "pass --ssl-cert and --ssl-key (or put an HTTPS reverse proxy in front and "
                "keep --ip 127.0.0.1); --allow-insecure-http overrides this check",
            )
        warnings.append("INSECURE: " + message + ".")
    return warnings


def check_port(ip: str, port: int, what: str, option: str) -> None:
    reason = bind_error(ip, port)
    if reason:
        raise OnyxiaHubError(
            f"cannot listen on {ip}:{port} for the {what}: {reason}",
            f"stop what uses it, or choose another port with {option} (0 picks a free one)",
        )


def find_proxy() -> str:
    """Path of configurable-http-proxy, checking Node.js can run it."""
    candidates = [Path(sys.prefix) / "bin" / "configurable-http-proxy"]
    found = shutil.which("configurable-http-proxy")
    if found:
        candidates.append(Path(found))
    proxy = next((p for p in candidates if p.exists() and os.access(p, os.X_OK)), None)
    if proxy is None:
        raise OnyxiaHubError(
            "configurable-http-proxy (the hub's web proxy, a Node.js program) is not installed",
            "run scripts/setup from the repository (it installs it into .venv/), or "
            "npm install -g configurable-http-proxy",
        )
    if shutil.which("node") is None:
        raise OnyxiaHubError(
            "Node.js is not installed (configurable-http-proxy needs it)",
            "install Node.js 18 or newer, e.g. apt-get install nodejs",
        )
    return str(proxy)


def check_reachable_by_others(path: Path, why: str) -> None:
    """Every directory from / down to path must be traversable by other accounts."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        try:
            mode = directory.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            return  # created later, with the right mode (or refused then, clearly)
        if not stat.S_ISDIR(mode):
            return
        if not mode & stat.S_IXOTH:
            raise OnyxiaHubError(
                f"{directory} is not traversable by other accounts (mode "
                f"{stat.S_IMODE(mode):04o}), so users' servers cannot reach {why}",
                f"chmod o+x {directory}, or choose a --state-dir (or --homes-dir) outside it",
            )


def load_operator_config(path: str) -> Config:
    """Load a jupyterhub_config.py given with --config, reporting errors in one line."""
    file = Path(path)
    if not file.is_file():
        raise OnyxiaHubError(f"--config {path}: no such file", "check the path")
    loader = PyFileConfigLoader(file.name, path=str(file.parent.resolve()))
    try:
        return loader.load_config()
    except SyntaxError as e:
        raise OnyxiaHubError(
            f"--config {path}: syntax error on line {e.lineno}: {e.msg}",
            "fix the file (it is Python, as jupyterhub_config.py)",
        ) from None
    except Exception as e:  # the file is code: any error it raises is the operator's to fix
        cause = e.__cause__ or e
        raise OnyxiaHubError(
            f"--config {path}: loading it failed: {type(cause).__name__}: {cause}",
            "fix the file (it is Python, as jupyterhub_config.py)",
        ) from None


def check_classes(config: Config) -> None:
    """Every class named in the configuration can be imported: a typo in a provider or
    authenticator class otherwise surfaces as an error page at the first launch."""
    from traitlets.utils.importstring import import_item

    named = []
    for section in ("OnyxiaLocalSpawner", "OnyxiaSpawner", "OnyxiaSpawnerMixin"):
        value = config[section].get("provider_classes", []) if section in config else []
        if isinstance(value, LazyConfigValue):  # `.append(...)` with nothing before it
            value = value.get_value([])
        for name in value:
            named.append((f"c.{section}.provider_classes", name))
    for trait in ("authenticator_class", "spawner_class"):
        value = config.JupyterHub.get(trait)
        if isinstance(value, str) and "." in value:
            named.append((f"c.JupyterHub.{trait}", value))
    for where, name in named:
        if not isinstance(name, str):
            continue
        try:
            cls = import_item(name)
        except Exception as e:  # ImportError, AttributeError, or the module's own error
            raise OnyxiaHubError(
                f"{where}: {name!r} cannot be imported ({type(e).__name__}: {e})",
                "check the name, and that its package is installed in the hub's Python",
            ) from None
        if where.endswith(".provider_classes"):
            check_settings(cls, config)


def check_settings(cls, config: Config) -> None:
    """A provider's settings pass its own checks (`c.GitProvider.git_config`...): made
    once with the configuration here, so a wrong value stops `up` with its message instead
    of failing every launch."""
    try:
        cls(config=config)
    except TraitError as e:
        raise OnyxiaHubError(
            f"c.{cls.__name__}: {e}", "fix the value in your --config file"
        ) from None
