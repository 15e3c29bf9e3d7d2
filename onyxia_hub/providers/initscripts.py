"""`InitScriptProvider`: the region's and the user's init scripts, as Onyxia's images run them.

    c.OnyxiaLocalSpawner.provider_classes.append(
        "onyxia_hub.providers.initscripts.InitScriptProvider")
    c.InitScriptProvider.region_script = "https://scripts.example.org/region-init.sh"
    c.InitScriptProvider.allowed_personal_scripts = [
        "https://raw.githubusercontent.com/InseeFrLab/",
    ]

It contributes Onyxia's variables (`REGION_INIT_SCRIPT`; `PERSONAL_INIT_SCRIPT` and
`PERSONAL_INIT_ARGS` through the secret channel, since a URL may carry a token) and the
time the scripts may take; adapters then start the server
through `onyxia-init` (extensions/onyxia-git), which fetches and runs the scripts inside
the server, as its user, before the server starts (docs/init-scripts.md). The hub never
fetches a script.

A personal script comes from the launch's choice (`init_script`, `init_args`: the form, a
link's pre-fill shown on the form, the API). Its URL must match one of the operator's
patterns: same scheme, same host and port, and a path under the pattern's path at a
segment boundary (`https://host/team` allows `https://host/team/x.sh`, never
`https://host/teammate/x.sh`). None is allowed by default. A refused URL stops the
launch with a message; so does a personal script on a datalab without this provider
(spawners/base.py).
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit

from traitlets import Float, List, TraitError, Unicode, validate

from ..catalog.model import frozen_map
from ..choices import ChoiceError, init_script_problem
from ..plan import Contribution
from .base import PlanProvider, PlanRequest

REGION_VAR = "REGION_INIT_SCRIPT"
PERSONAL_VAR = "PERSONAL_INIT_SCRIPT"
ARGS_VAR = "PERSONAL_INIT_ARGS"
TIMEOUT_VAR = "ONYXIA_INIT_TIMEOUT"


def pattern_problem(pattern: str) -> str | None:
    """Why pattern cannot be an allowed-script pattern, or None."""
    problem = init_script_problem(pattern)
    if problem:
        return problem
    parts = urlsplit(pattern)
    if parts.query:
        return "must not have a ?query"
    if not parts.path.startswith("/"):
        return "needs a path, at least /"
    return None


def _clean_path(path: str) -> str | None:
    """The path, decoded, or None if it could step out of a prefix (`..`, `.`, an encoded
    slash or backslash, a doubled slash)."""
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered or "%25" in lowered or "//" in path:
        return None
    decoded = unquote(path)
    segments = decoded.split("/")
    if any(s in (".", "..") for s in segments):
        return None
    if posixpath.normpath(decoded) != decoded.rstrip("/") and decoded != "/":
        return None
    return decoded


def allowed(url: str, patterns) -> bool:
    """Whether url matches one of patterns (module docstring)."""
    if init_script_problem(url):
        return False
    parts = urlsplit(url)
    path = _clean_path(parts.path)
    if path is None:
        return False
    for pattern in patterns:
        allow = urlsplit(pattern)
        if (allow.scheme, allow.netloc.lower()) != (parts.scheme, parts.netloc.lower()):
            continue
        prefix = unquote(allow.path)
        if prefix.endswith("/"):
            if path.startswith(prefix):
                return True
        elif path == prefix or path.startswith(prefix + "/"):
            return True
    return False


class InitScriptProvider(PlanProvider):
    """Region and personal init scripts for every launch; see the module docstring."""

    region_script = Unicode(
        "",
        help="""
        The region's init script: an https:// URL every server fetches and runs with bash
        at start, before the user's own script, as Onyxia's `region.initScript`. It runs
        as the user, with the user's credentials in its environment: only a script the
        operators control. Empty (default): none.

            c.InitScriptProvider.region_script = "https://scripts.example.org/init.sh"
        """,
    ).tag(config=True)

    allowed_personal_scripts = List(
        Unicode(),
        [],
        help="""
        URL patterns a user's personal init script must match: scheme, host and port
        exactly, and a path under the pattern's at a segment boundary (`https://host/a`
        allows `https://host/a/x.sh`, not `https://host/ab.sh`; end the pattern with `/`
        to say so plainly). A personal script runs as the user with their credentials, and
        a link can pre-fill it: allow only sources you trust. Empty (default): personal
        scripts are refused at launch.

            c.InitScriptProvider.allowed_personal_scripts = [
                "https://raw.githubusercontent.com/InseeFrLab/",
            ]
        """,
    ).tag(config=True)

    timeout = Float(
        120.0,
        help="""
        Seconds all the init scripts of one start may take, download included; a script
        still running then is ended and the server starts (the failure is shown). The
        spawner waits this much longer for the server to answer (`http_timeout`). Default:
        120.
        """,
    ).tag(config=True)

    @validate("allowed_personal_scripts")
    def _check_patterns(self, proposal):
        for pattern in proposal.value:
            problem = pattern_problem(pattern)
            if problem:
                raise TraitError(f"allowed_personal_scripts: {pattern!r} {problem}")
        return proposal.value

    @validate("region_script")
    def _check_region(self, proposal):
        value = proposal.value.strip()
        if value:
            problem = init_script_problem(value)
            if problem:
                raise TraitError(f"region_script: the URL {problem}")
        return value

    @validate("timeout")
    def _check_timeout(self, proposal):
        if not 1 <= proposal.value <= 3600:
            raise TraitError("timeout must be between 1 and 3600 seconds")
        return proposal.value

    async def contribute(self, request: PlanRequest) -> Contribution:
        choice = request.choice
        environment, secret = {}, {}
        if self.region_script:
            environment[REGION_VAR] = self.region_script
        if choice.init_script:
            if not allowed(choice.init_script, self.allowed_personal_scripts):
                sources = ", ".join(self.allowed_personal_scripts)
                raise ChoiceError(
                    (
                        f"init_script: this datalab runs personal init scripts only from "
                        f"{sources}; the URL given is not one of them."
                    )
                    if sources
                    else "init_script: this datalab runs no personal init scripts (its "
                    "administrator allows none); empty the field to launch.",
                    status_code=403,
                    reason="init-script-refused",
                    field="init_script",
                )
            # the user's: a URL may carry a token, arguments a password (the secret
            # channel: never a pod spec)
            secret[PERSONAL_VAR] = choice.init_script
            if choice.init_args:
                secret[ARGS_VAR] = choice.init_args
        if not environment and not secret:
            return Contribution()
        request.emit(14, "Your server will run its init scripts before it starts")
        environment[TIMEOUT_VAR] = f"{self.timeout:g}"
        return Contribution(
            environment=frozen_map(environment),
            secret_environment=frozen_map(secret),
            init_timeout=self.timeout,
        )
