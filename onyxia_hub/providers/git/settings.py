"""What one launch gets of git, decided from its sources: pure functions, no I/O.

Sources, by precedence (docs/git.md):

1. the launch itself: `Choice.repository`, `Choice.branch` and `Choice.repository_dir`
   (the spawn form, a link that pre-filled it, the REST API, the courses service);
2. the user's My account settings in the portal's store (name, e-mail, token, default
   repository and branch);
3. the identity provider's userinfo in auth_state (`oauth_user`: `name`, `email`), for the
   name and e-mail only;
4. defaults, so that `git commit` always works: the hub user name as the name, and an
   address made from the operator's template (`default_address`) as the e-mail.

`resolve` picks the values; `check_config` checks the operator's own git settings
(`GitProvider.git_config`) against `REFUSED_CONFIG`; `git_config` writes the configuration
git reads (through `GIT_CONFIG_SYSTEM`, set in the server by extensions/onyxia-git);
`contribution` turns them into the provider's `plan.Contribution`. The token never enters
the configuration, the environment (unless the operator opts in to
`GIT_PERSONAL_ACCESS_TOKEN`) nor a URL: it is a secret file read by the `onyxia`
credential helper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
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
DEFAULT_EMAIL = "{username}@users.noreply.localhost"  # GitProvider.default_email
_NOT_IN_ADDRESS = re.compile(r"[@\s<>(),;:\"\[\]\\]")  # outside an address's local part


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
    target: str | None = None  # where the clone goes, under the work dir (None: its name)

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


def default_address(template: str, username: str) -> str | None:
    """template with `{username}` replaced by the hub user name, or None when that is no
    e-mail address (or template is empty: no default). Characters an address's local part
    cannot hold (`@`, spaces, `<>(),;:"[]\\`) become `-`: `ann@example.org` gives
    `ann-example.org@users.noreply.localhost` with the default template."""
    if not template:
        return None
    local = _NOT_IN_ADDRESS.sub("-", username or "")[:64]
    return _identity(template.replace("{username}", local), check_email) if local else None


def resolve(
    choice: Choice,
    account: Account,
    oauth_user: Mapping | None,
    *,
    schemes: tuple[str, ...] = ("https",),
    hosts: tuple[str, ...] | None = None,
    username: str | None = None,
    default_email: str = "",
) -> tuple[GitSettings, list[str]]:
    """(settings, notes): notes say, for the log, what was left out and why.

    hosts: where the token may be sent; None means the host of the user's default
    repository (My account), never that of a repository named by a link or the form.
    username, default_email: the last resort for the identity (the hub user name as the
    name, `default_address(default_email, username)` as the e-mail); None and "" give
    none.
    """
    notes: list[str] = []
    oauth_user = oauth_user if isinstance(oauth_user, Mapping) else {}
    name = (
        account.name
        or _identity(oauth_user.get("name"), check_git_name)
        or _identity(username, check_git_name)
    )
    email = account.email
    if not email and oauth_user.get("email_verified") is not False:
        email = _identity(oauth_user.get("email"), check_email)
    if not email and username:
        email = default_address(default_email, username)

    default_repository = account.repository
    if default_repository and repository_problem(default_repository, schemes):
        notes.append("the default repository of My account is not allowed here: left out")
        default_repository = None
    target = None
    if choice.repository:  # the default repository named again keeps its default branch
        repository = choice.repository
        same = choice.repository == default_repository
        branch = choice.branch or (account.branch if same else None)
        target = choice.repository_dir  # only ever with the launch's own repository
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
    return GitSettings(name, email, repository, branch, token, tuple(hosts), target), notes


# -- the operator's git settings (GitProvider.git_config) -----------------------------------
# What the operator may not set, checked before anything else (docs/git.md, "Git settings
# for every server"): each pattern is `section.name`, or `section.<sub>.name` for a key
# with a subsection, lower case (git compares sections and names without regard to case),
# `*` matching anything. An alias whose value starts with `!` (a shell command) is refused
# too (`config_problem`).
# fmt: off
REFUSED_CONFIG: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "the provider writes the identity itself (My account, the identity provider, "
        "GitProvider.default_email)",
        ("user.*", "author.*", "committer.*"),
    ),
    (
        "the provider configures the credential helper itself: the token goes to "
        "GitProvider.credential_hosts only",
        ("credential.*", "credentialcache.*", "credentialstore.*"),
    ),
    (
        "it would bring in settings from files nobody checked",
        ("include.*", "includeif.*"),
    ),
    (
        "it belongs to each repository's own configuration",
        ("remote.*", "branch.*", "submodule.*", "core.worktree", "core.bare"),
    ),
    (
        "it names a program or hooks that git would run",
        (
            "core.sshcommand", "core.gitproxy", "core.askpass", "core.editor", "core.pager",
            "core.fsmonitor", "core.hookspath", "core.alternaterefscommand", "init.templatedir",
            "sequence.editor", "pager.*", "interactive.difffilter", "diff.external",
            "diff.<sub>.command", "diff.<sub>.textconv", "merge.<sub>.driver", "filter.*",
            "difftool.*", "mergetool.*", "guitool.*", "browser.*", "man.*", "gpg.program",
            "gpg.<sub>.program", "gpg.<sub>.defaultkeycommand", "trailer.<sub>.command",
            "trailer.<sub>.cmd", "sendemail.*", "imap.*", "instaweb.*", "uploadpack.*",
        ),
    ),
    (
        "it would turn off one of git's defences (the transports allowed, the ownership "
        "and file name checks)",
        ("protocol.*", "safe.*", "core.protecthfs", "core.protectntfs"),
    ),
    (
        "it turns certificate checks off, and the token would go to whoever answers: give "
        "the server's CA with http.sslCAInfo instead",
        ("http.sslverify", "http.<sub>.sslverify"),
    ),
    (
        "traces record every git command (and, with trace2.envVars, environment values) "
        "wherever they point",
        ("trace2.*",),
    ),
)
# fmt: on
_SECTION = re.compile(r"[A-Za-z0-9-]+")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_KEY_FORM = (
    "section[.subsection].name, such as http.sslCAInfo or http.https://git.example.org/.proxy"
)


@dataclass(frozen=True)
class ConfigEntry:
    """One key of the operator's git settings: `[section "subsection"] name = value`
    (one line per value: a list sets a multi-valued key such as http.extraHeader)."""

    section: str
    subsection: str | None
    name: str
    values: tuple[str, ...]

    @property
    def pattern_key(self) -> str:
        """The key as `REFUSED_CONFIG` writes its patterns."""
        middle = ".<sub>" if self.subsection is not None else ""
        return f"{self.section.lower()}{middle}.{self.name.lower()}"


def _config_value(value) -> str:
    if isinstance(value, bool):  # before int: True is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"a value is a string, a boolean or an integer, not {value!r}")
    _quoted(value)  # no line breaks, NUL nor other control characters
    return value


def config_entry(key, value) -> ConfigEntry:
    """key (`section[.subsection].name`) and its value(s), checked for form only."""
    if not isinstance(key, str) or key.count(".") < 1:
        raise ValueError(f"{key!r} is not a git configuration key: {_KEY_FORM}")
    section, _, rest = key.partition(".")
    subsection, _, name = rest.rpartition(".")
    if not _SECTION.fullmatch(section) or not _NAME.fullmatch(name) or rest.startswith("."):
        raise ValueError(f"{key!r} is not a git configuration key: {_KEY_FORM}")
    values = value if isinstance(value, list | tuple) else [value]
    if not values:
        raise ValueError(f"{key!r}: an empty list sets nothing")
    try:
        _quoted(subsection)
        checked = tuple(_config_value(v) for v in values)
    except ValueError as e:
        raise ValueError(f"{key!r}: {e}") from None
    return ConfigEntry(section, subsection if "." in rest else None, name, checked)


def config_problem(entry: ConfigEntry) -> str | None:
    """Why the operator may not set this key (`REFUSED_CONFIG`), or None."""
    key = entry.pattern_key
    for reason, patterns in REFUSED_CONFIG:
        if any(fnmatchcase(key, pattern) for pattern in patterns):
            return reason
    if entry.section.lower() == "alias" and any(v.lstrip().startswith("!") for v in entry.values):
        return "an alias starting with ! runs a shell command"
    return None


def check_config(settings: Mapping) -> tuple[ConfigEntry, ...]:
    """The operator's git settings ({key: value or [values]}), in their order; ValueError
    naming the first key that is malformed, refused or given twice."""
    if not isinstance(settings, Mapping):
        raise ValueError("git settings are a mapping of keys to values")
    entries: list[ConfigEntry] = []
    seen: set[tuple] = set()
    for key, value in settings.items():
        entry = config_entry(key, value)
        problem = config_problem(entry)
        if problem:
            raise ValueError(f"{key} may not be set: {problem}")
        same = (entry.section.lower(), entry.subsection, entry.name.lower())
        if same in seen:
            raise ValueError(f"{key} is given twice (keys differing in case only are one key)")
        seen.add(same)
        entries.append(entry)
    return tuple(entries)


# -- the configuration file -------------------------------------------------------------
def _quoted(value: str) -> str:
    """value as a double-quoted git configuration value (or subsection name)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a git configuration value cannot hold control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _operator_lines(entries: tuple[ConfigEntry, ...]) -> list[str]:
    """The operator's settings, one section header per (section, subsection)."""
    lines: list[str] = []
    sections: dict[tuple, list[str]] = {}
    for entry in entries:
        where = (entry.section.lower(), entry.subsection)
        if where not in sections:
            sub = f" {_quoted(entry.subsection)}" if entry.subsection is not None else ""
            sections[where] = [f"[{entry.section}{sub}]"]
        sections[where] += [f"\t{entry.name} = {_quoted(v)}" for v in entry.values]
    for section_lines in sections.values():
        lines += section_lines
    return lines


def git_config(
    settings: GitSettings, *, username: str = "oauth2", operator: tuple[ConfigEntry, ...] = ()
) -> str:
    """The configuration git reads as its system file in the server (GIT_CONFIG_SYSTEM).

    System scope is the lowest: the user's ~/.gitconfig and each repository's settings
    win over it. The operator's settings (`check_config`) come after /etc/gitconfig, whose
    values they replace, and before the provider's own. The credential helper is
    configured per https host, so git asks it for nothing else; the helper checks the
    host and the protocol again.
    """
    lines = [
        "# Written by Onyxia Hub for this server, read through GIT_CONFIG_SYSTEM (docs/git.md).",
        "# Your ~/.gitconfig and each repository's own settings take precedence over it.",
        "[include]",
        f"\tpath = {_quoted(SYSTEM_CONFIG)}",
    ]
    if operator:
        lines.append("# The operator's settings (c.GitProvider.git_config).")
        lines += _operator_lines(operator)
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
    operator: tuple[ConfigEntry, ...] = (),
    report_url: str = "",
) -> Contribution:
    """The plan's share of git: Onyxia's variables, the configuration and the token files
    (operator: the operator's git settings, `check_config`; report_url: where the server
    reports its pull, `GitProvider.pull_report_url`, "" for nowhere)."""
    if settings.empty and not operator:
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
        if settings.target:
            environment["ONYXIA_GIT_TARGET"] = settings.target
        if report_url:
            environment["ONYXIA_GIT_REPORT_URL"] = report_url
        repository = Repository(settings.repository, settings.branch, settings.target)
    # secret files: memory-backed, private to the server, never in the home (plan.PlanFile)
    config = git_config(settings, username=username, operator=operator)
    files = [PlanFile(CONFIG_FILE, config, 0o600, secret=True)]
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
