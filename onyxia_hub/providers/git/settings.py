"""What one launch gets of git, decided from its sources: pure functions, no I/O.

Sources, by precedence (docs/git.md):

1. the launch itself: `Choice.repository` and `Choice.branch` (the spawn form, a link
   that pre-filled it, the REST API);
2. the user's My account settings in the portal's store (name, e-mail, token, default
   repository and branch);
3. the identity provider's userinfo in auth_state (`oauth_user`: `name`, `email`), for the
   name and e-mail only.

`resolve` picks the values; `git_config` writes the configuration git reads (through
`GIT_CONFIG_SYSTEM`, set in the server by extensions/onyxia-git); `contribution` turns
both into the provider's `plan.Contribution`. The token never enters the configuration,
the environment (unless the operator opts in to `GIT_PERSONAL_ACCESS_TOKEN`) nor a URL:
it is a secret file read by the `onyxia` credential helper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...catalog.model import frozen_map
from ...choices import Choice
from ...fields import FieldError, check_email, check_git_name
from ...gitvalues import branch_problem, repository_problem
from ...plan import Contribution, PlanFile, Repository

CONFIG_FILE = "git/config"  # in the server's secrets directory (ONYXIA_HUB_SECRETS_DIR)
TOKEN_FILE = "git/token"  # noqa: S105 - a file name, not a password
SYSTEM_CONFIG = "/etc/gitconfig"  # included first: GIT_CONFIG_SYSTEM replaces it
HELPER = "onyxia"  # git runs `git credential-onyxia` (extensions/onyxia-git)
_HOST_PORT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_DEFAULT_PORTS = {"https": 443, "ssh": 22}


@dataclass(frozen=True)
class Account:
    """The git fields of My account, as the provider reads them from the store."""

    name: str | None = None
    email: str | None = None
    repository: str | None = None
    branch: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class GitSettings:
    """What one launch gets: identity, repository, and where the token may go."""

    name: str | None = None
    email: str | None = None
    repository: str | None = None
    branch: str | None = None
    token: str | None = None
    credential_hosts: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.name or self.email or self.repository or self.credential_hosts)


def credential_host(url: str) -> str | None:
    """'host' or 'host:port' (port only when not the scheme's default) of an https URL:
    the form git gives credential helpers in their `host` attribute."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literals are not offered a token (see docs/git.md)
        return None
    port = parts.port
    return host if port in (None, _DEFAULT_PORTS["https"]) else f"{host}:{port}"


def check_host(host: str) -> str:
    """A credential host as operators write it (`git.example.org`, `git.example.org:8443`)."""
    if not isinstance(host, str) or not _HOST_PORT.fullmatch(host):
        raise ValueError(
            f"{host!r} is not a host name with an optional port, such as git.example.org:8443"
        )
    name, _, port = host.lower().partition(":")
    if port and not 0 < int(port) < 65536:
        raise ValueError(f"{host!r} has a port outside 1-65535")
    return name if port in ("", "443") else f"{name}:{port}"


def _identity(value, check) -> str | None:
    try:
        return check(value) if isinstance(value, str) else None
    except FieldError:
        return None


def resolve(
    choice: Choice,
    account: Account,
    oauth_user: Mapping | None,
    *,
    schemes: tuple[str, ...] = ("https",),
    hosts: tuple[str, ...] | None = None,
) -> tuple[GitSettings, list[str]]:
    """(settings, notes): notes say, for the log, what was left out and why.

    hosts: where the token may be sent; None means the host of the user's default
    repository (My account), never that of a repository named by a link or the form.
    """
    notes: list[str] = []
    oauth_user = oauth_user if isinstance(oauth_user, Mapping) else {}
    name = account.name or _identity(oauth_user.get("name"), check_git_name)
    email = account.email
    if not email and oauth_user.get("email_verified") is not False:
        email = _identity(oauth_user.get("email"), check_email)

    default_repository = account.repository
    if default_repository and repository_problem(default_repository, schemes):
        notes.append("the default repository of My account is not allowed here: left out")
        default_repository = None
    if choice.repository:  # the default repository named again keeps its default branch
        repository = choice.repository
        same = choice.repository == default_repository
        branch = choice.branch or (account.branch if same else None)
    else:
        repository = default_repository
        branch = choice.branch or account.branch
    if branch and branch_problem(branch):
        notes.append("the default branch of My account is not a valid branch: left out")
        branch = None
    if branch and not repository:
        branch = None

    if hosts is None:
        own = credential_host(default_repository) if default_repository else None
        hosts = (own,) if own else ()
    token = account.token if hosts else None
    if account.token and not hosts:
        notes.append("a token is stored but no host may receive it: not delivered")
    return GitSettings(name, email, repository, branch, token, tuple(hosts)), notes


# -- the configuration file -------------------------------------------------------------
def _quoted(value: str) -> str:
    """value as a double-quoted git configuration value (or subsection name)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a git configuration value cannot hold control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def git_config(settings: GitSettings, *, username: str = "oauth2") -> str:
    """The configuration git reads as its system file in the server (GIT_CONFIG_SYSTEM).

    System scope is the lowest: the user's ~/.gitconfig and each repository's settings
    win over it. The credential helper is configured per https host, so git asks it for
    nothing else; the helper checks the host and the protocol again.
    """
    lines = [
        "# Written by Onyxia Hub for this server, read through GIT_CONFIG_SYSTEM (docs/git.md).",
        "# Your ~/.gitconfig and each repository's own settings take precedence over it.",
        "[include]",
        f"\tpath = {_quoted(SYSTEM_CONFIG)}",
    ]
    if settings.name or settings.email:
        lines.append("[user]")
        if settings.name:
            lines.append(f"\tname = {_quoted(settings.name)}")
        if settings.email:
            lines.append(f"\temail = {_quoted(settings.email)}")
    if settings.token:
        for host in settings.credential_hosts:
            lines += [
                f"[credential {_quoted('https://' + host)}]",
                f"\thelper = {_quoted(f'{HELPER} --host={host}')}",
                f"\tusername = {_quoted(username)}",
            ]
    return "\n".join(lines) + "\n"


def contribution(
    settings: GitSettings,
    *,
    username: str = "oauth2",
    protocols: tuple[str, ...] = ("https",),
    pull_timeout: int = 300,
    token_variable: bool = False,
) -> Contribution:
    """The plan's share of git: Onyxia's variables, the configuration and the token files."""
    if settings.empty:
        return Contribution()
    environment: dict[str, str] = {}
    if settings.name:
        environment["GIT_USER_NAME"] = settings.name
    if settings.email:
        environment["GIT_USER_MAIL"] = settings.email
    repository = None
    if settings.repository:
        environment["GIT_REPOSITORY"] = settings.repository
        if settings.branch:
            environment["GIT_BRANCH"] = settings.branch
        environment["ONYXIA_GIT_ALLOW_PROTOCOL"] = ":".join(protocols)
        environment["ONYXIA_GIT_PULL_TIMEOUT"] = str(pull_timeout)
        repository = Repository(settings.repository, settings.branch)
    # secret files: memory-backed, private to the server, never in the home (plan.PlanFile)
    files = [PlanFile(CONFIG_FILE, git_config(settings, username=username), 0o600, secret=True)]
    secret_environment: dict[str, str] = {}
    if settings.token:
        files.append(PlanFile(TOKEN_FILE, settings.token, 0o600, secret=True))
        if token_variable:
            secret_environment["GIT_PERSONAL_ACCESS_TOKEN"] = settings.token
    return Contribution(
        environment=frozen_map(environment),
        secret_environment=frozen_map(secret_environment),
        files=tuple(files),
        repository=repository,
    )
