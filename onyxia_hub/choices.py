"""User choices, from every path a launch can come from, parsed into one checked `Choice`.

Paths: the spawn form (POST), a link (`/hub/spawn?opt-service=...`, which only pre-fills
the form), the REST API (`{"user_options": {...}}` or the legacy bare body), options stored
by PUT/PATCH on a server, and options reused from the previous start. All of them arrive
here as a mapping and leave as a `Choice` or a `ChoiceError`.

Checks run against the catalog *as it is now* and the user's groups *as they are now*, at
every start: options stored yesterday for a service since removed, or for a group the user
has left, are refused then, not honoured.

A `ChoiceError` is a JupyterHub `SpawnException`: the hub shows its message to the user,
logs one line and does not count it toward `consecutive_failure_limit`. Its `field` names
the option refused (None when the refusal is not about one option), so that the spawn
form can show the message beside that field. `entered` keeps what a user sent, as text,
for showing it back with the refusal (spawners/base.py).

Besides the catalog's options, a launch may name a git `repository` (https:// only: a
link is where CVE-2021-39160 came from) and a `branch`, cloned or updated into the server
at start. `gitvalues` holds the rules for those values, which the portal's My account
applies too; the server-side puller (extensions/onyxia-git) checks them again before any
git command runs. A launch that names a repository may also say where it is cloned
(`repository_dir`, a relative path such as `courses/intro`), so that a course gets a clone
of its own; without a repository named by the same launch it is refused, so that it never
moves the user's default repository.

A launch may also name a personal init script (`init_script`, an http(s) URL, with
`init_args`), Onyxia's `init.personalInit` and `init.personalInitArgs`. Here only its form
is checked; whether the operator allows that URL is the init script provider's
decision, at launch (providers/initscripts.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from jupyterhub.spawner import SpawnException

from .catalog.model import Catalog, Service
from .gitvalues import MAX_URL, branch_problem, directory_problem, repository_problem
from .quantities import format_cpu, format_memory, human_memory, parse_cpu, parse_memory

OPTIONS = (
    "service", "version", "cpu", "memory", "gpus", "gpu_type", "repository", "branch",
    "init_script", "init_args", "repository_dir",
)  # fmt: skip
ALIASES = {
    "profile": "service",  # KubeSpawner's name; kept for the admin panel's column
    "init.personalInit": "init_script",  # Onyxia's chart values
    "init.personalInitArgs": "init_args",
}
IGNORED = {"_xsrf"}  # the spawn form's XSRF token is not an option
MAX_KEYS = 16
MAX_TEXT = 256
MAX_TEXT_OF = {"repository": MAX_URL, "init_script": 1024, "init_args": 1024}
MAX_MESSAGE = 300
_GPU_COUNT = re.compile(r"\d{1,2}")


class ChoiceError(SpawnException):
    """A refused choice: the message says what is wrong and what is allowed.

    `field` is the option refused (one of OPTIONS), or None when the refusal is about no
    single option (an unknown option, too many of them, a quota).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 400,
        reason: str = "invalid-choice",
        field: str | None = None,
    ):
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
        super().__init__(message, reason=reason, status_code=status_code)
        self.field = field

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Choice:
    """What a user asked for, checked against the catalog: every field has a value."""

    service: str
    version: str
    cpu: float
    memory: int
    gpus: int = 0
    gpu_type: str | None = None
    repository: str | None = None  # a git repository for this launch (None: the user's default)
    branch: str | None = None
    init_script: str | None = None  # a personal init script's URL (Onyxia's personalInit)
    init_args: str | None = None  # its arguments, split at whitespace
    # where the repository is cloned, relative to the home (None: its name); only with
    # `repository`
    repository_dir: str | None = None

    def as_user_options(self) -> dict:
        """The canonical form stored in the hub's database (and shown by the admin panel)."""
        options = {
            "profile": self.service,
            "service": self.service,
            "version": self.version,
            "cpu": format_cpu(self.cpu),
            "memory": format_memory(self.memory),
            "gpus": self.gpus,
        }
        if self.gpu_type:
            options["gpu_type"] = self.gpu_type
        if self.repository:
            options["repository"] = self.repository
        if self.branch:
            options["branch"] = self.branch
        if self.repository_dir:
            options["repository_dir"] = self.repository_dir
        if self.init_script:
            options["init_script"] = self.init_script
        if self.init_args:
            options["init_args"] = self.init_args
        return options


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def normalize(raw) -> dict[str, object]:
    """Flatten any path's options to {canonical option: scalar}, refusing anything odd.

    Form and query values arrive as one-element lists of strings, API values as JSON
    scalars. Unknown options, repeated values, nested structures, booleans, huge strings
    and non-finite numbers are refused here, before anything looks at their meaning.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ChoiceError("Options must be an object of option names to values.")
    if len(raw) > MAX_KEYS:
        raise ChoiceError(
            f"Too many options ({len(raw)}); the known ones are: " + ", ".join(OPTIONS) + "."
        )
    options: dict[str, object] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or len(key) > 64:
            raise ChoiceError(
                f"Unknown option {_short(key)}; known options: " + ", ".join(OPTIONS) + "."
            )
        if key in IGNORED:
            continue
        name = ALIASES.get(key, key)
        if name not in OPTIONS:
            raise ChoiceError(
                f"Unknown option {_short(key)}; known options: " + ", ".join(OPTIONS) + "."
            )
        if isinstance(value, list):
            if len(value) != 1:
                raise ChoiceError(
                    f"The option {name!r} must have one value, not {len(value)}.", field=name
                )
            value = value[0]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ChoiceError(f"The option {name!r} must be a string or a number.", field=name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ChoiceError(f"The option {name!r} must be a finite number.", field=name)
        if isinstance(value, str):
            if len(value) > MAX_TEXT_OF.get(name, MAX_TEXT):
                raise ChoiceError(
                    f"The option {name!r} is too long ({len(value)} characters).", field=name
                )
            value = value.strip()
            if value == "":
                continue
        if name in options and options[name] != value:
            raise ChoiceError(
                f"The option {name!r} is given twice with different values.", field=name
            )
        options[name] = value
    return options


def check(raw, catalog: Catalog, groups) -> Choice:
    """A `Choice` from raw options, or a `ChoiceError` naming the problem.

    Missing options take the service's defaults; the service defaults to the catalog's
    default among those the user's groups may use.
    """
    options = normalize(raw)
    service = _service(options.get("service"), catalog, groups)
    version = _version(options.get("version"), service)
    cpu = _cpu(options.get("cpu"), service)
    memory = _memory(options.get("memory"), service)
    gpus, gpu_type = _gpus(options.get("gpus"), options.get("gpu_type"), service)
    repository = _repository(options.get("repository"))
    branch = _branch(options.get("branch"))
    repository_dir = _repository_dir(options.get("repository_dir"), repository)
    init_script, init_args = _init(options.get("init_script"), options.get("init_args"))
    return Choice(
        service.name, version, cpu, memory, gpus, gpu_type, repository, branch,
        init_script, init_args, repository_dir=repository_dir,
    )  # fmt: skip


def _service(value, catalog: Catalog, groups) -> Service:
    visible = catalog.visible_to(groups)
    if value is None:
        if not visible:
            raise ChoiceError(
                "No service of the catalog is open to your groups: ask an administrator.",
                status_code=403,
                reason="no-service",
            )
        default = catalog.default_service
        return default if default in visible else visible[0]
    service = catalog.get(value) if isinstance(value, str) else None
    if service is None or service not in visible:
        # the same answer whether it does not exist or is reserved to other groups
        names = ", ".join(s.name for s in visible) or "none"
        raise ChoiceError(
            f"There is no service {_short(value)} in your catalog; choose one of: {names}.",
            field="service",
        )
    return service


def _version(value, service: Service) -> str:
    if value is None:
        return service.default_version.name
    if not isinstance(value, str) or service.version(value) is None:
        names = ", ".join(v.name for v in service.versions)
        raise ChoiceError(
            f"{service.display_name} has no version {_short(value)}; choose one of: {names}.",
            field="version",
        )
    return value


def _cpu(value, service: Service) -> float:
    bounds = service.cpu
    if value is None:
        return bounds.default
    try:
        cores = parse_cpu(value)
    except ValueError as e:
        raise ChoiceError(f"cpu: {e}.", field="cpu") from None
    if not bounds.min <= cores <= bounds.max:
        raise ChoiceError(
            f"cpu: {format_cpu(cores)} cores is outside what "
            f"{service.display_name} allows ({format_cpu(bounds.min)} to "
            f"{format_cpu(bounds.max)} cores).",
            field="cpu",
        )
    return cores


def _memory(value, service: Service) -> int:
    bounds = service.memory
    if value is None:
        return bounds.default
    try:
        size = parse_memory(value)
    except ValueError as e:
        raise ChoiceError(f"memory: {e}.", field="memory") from None
    if not bounds.min <= size <= bounds.max:
        raise ChoiceError(
            f"memory: {human_memory(size)} is outside what "
            f"{service.display_name} allows ({human_memory(bounds.min)} to "
            f"{human_memory(bounds.max)}).",
            field="memory",
        )
    return size


def _gpus(count, gpu_type, service: Service) -> tuple[int, str | None]:
    gpu = service.gpu
    if count is None:
        count = gpu.default_count if gpu else 0
    elif isinstance(count, str) and _GPU_COUNT.fullmatch(count):
        count = int(count)
    elif not isinstance(count, int) or isinstance(count, bool):
        raise ChoiceError("gpus: the number of GPUs is a whole number.", field="gpus")
    if gpu is None:
        if count != 0:
            raise ChoiceError(f"gpus: {service.display_name} has no GPU option.", field="gpus")
        if gpu_type is not None:
            raise ChoiceError(
                f"gpu_type: {service.display_name} has no GPU option.", field="gpu_type"
            )
        return 0, None
    if count not in gpu.counts:
        allowed = ", ".join(str(c) for c in gpu.counts)
        raise ChoiceError(
            f"gpus: {service.display_name} can have {allowed} GPU(s), not {_short(count)}.",
            field="gpus",
        )
    if count == 0:
        return 0, None
    if gpu_type is None:
        return count, gpu.default_type
    if not isinstance(gpu_type, str) or gpu.type(gpu_type) is None:
        names = ", ".join(t.name for t in gpu.types)
        raise ChoiceError(
            f"gpu_type: {service.display_name} has no GPU type "
            f"{_short(gpu_type)}; choose one of: {names}.",
            field="gpu_type",
        )
    return count, gpu_type


def _repository(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChoiceError(
            "repository: a git repository is a URL such as "
            "https://git.example.org/team/project.git.",
            field="repository",
        )
    problem = repository_problem(value)
    if problem:  # the value is not repeated: it may hold a password (user:token@host)
        raise ChoiceError(f"repository: the URL {problem}.", field="repository")
    return value


def _branch(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChoiceError("branch: a branch is a name such as main.", field="branch")
    problem = branch_problem(value)
    if problem:
        raise ChoiceError(f"branch: {_short(value)} {problem}.", field="branch")
    return value


def _repository_dir(value, repository: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChoiceError(
            "repository_dir: a directory is a relative path such as courses/intro.",
            field="repository_dir",
        )
    problem = directory_problem(value)
    if problem:
        raise ChoiceError(f"repository_dir: {_short(value)} {problem}.", field="repository_dir")
    if repository is None:  # never a new place for the user's default repository
        raise ChoiceError(
            "repository_dir: only with a repository named by this launch.",
            field="repository_dir",
        )
    return value


def _init(script, args) -> tuple[str | None, str | None]:
    if args is not None and not isinstance(args, str):
        args = str(args)  # a number given through the API
    if script is None:
        if args:
            raise ChoiceError(
                "init_args: arguments need an init script (init_script).", field="init_args"
            )
        return None, None
    problem = init_script_problem(script)
    if problem:  # the value is not repeated: it may hold a token
        raise ChoiceError(f"init_script: the URL {problem}.", field="init_script")
    if args and any(ord(c) < 32 and c not in " \t" for c in args):
        raise ChoiceError(
            "init_args: arguments are one line of text, without control characters.",
            field="init_args",
        )
    return script, args or None


def init_script_problem(url) -> str | None:
    """Why url cannot be an init script's URL, or None (its form only: providers/initscripts.py
    decides whether the operator allows it)."""
    if not isinstance(url, str):
        return "must be text"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a valid address"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// (or http://) address"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password"
    if parts.fragment:
        return "must not have a #fragment"
    if any(not 32 < ord(c) < 127 or c == "\\" for c in url):
        return (
            "must be printable ASCII, without spaces or backslashes "
            "(write international host names in punycode, other characters %-encoded)"
        )
    return None


def from_form(form: Mapping[str, list]) -> dict[str, object]:
    """The spawn form's fields for the chosen service, as raw options.

    The form carries every service's fields, suffixed `--<service>` (`cpu--jupyter-r`),
    so that each card keeps its own values; only the chosen service's are kept. A
    `repository_dir` (a hidden field: a link or the last launch set it, no one types it)
    goes with the form's repository: with the repository field emptied it is dropped,
    rather than refused for a field the user cannot change.
    """
    if not isinstance(form, Mapping):
        raise ChoiceError("The form could not be read.")
    if len(form) > 64 * MAX_KEYS:
        raise ChoiceError("The form has too many fields.")
    service = form.get("service")
    raw: dict[str, object] = {"service": service} if service is not None else {}
    chosen = service[0] if isinstance(service, list) and len(service) == 1 else None
    for key, value in form.items():
        if key in IGNORED or key == "service":
            continue
        name, sep, owner = key.partition("--")
        if not sep:
            raw[key] = value  # a plain option: checked (and refused if unknown) later
        elif owner == chosen:
            raw[name] = value
        elif name not in OPTIONS:
            raise ChoiceError(f"Unknown option {_short(key)}.")
    if "repository_dir" in raw and not (_one_text(raw.get("repository")) or "").strip():
        del raw["repository_dir"]
    return raw


def entered(raw, *, form: bool = False) -> dict[str, str]:
    """What a user sent, as text by option, to show back with a refusal; never refuses.

    raw is what `normalize` takes (a link's query, stored options) or, with form, what
    `from_form` takes, of which only the chosen service's fields are kept as it keeps them.
    Values are kept as sent (not stripped), within the bounds `normalize` sets: what it
    would refuse as a whole (a key that is no option, a repeated value, a structure, a
    value longer than its option allows) is left out, as is an empty value. A URL's
    `user:password@` is dropped.
    """
    if not isinstance(raw, Mapping) or len(raw) > 64 * MAX_KEYS:
        return {}
    chosen = _one_text(raw.get("service")) if form else None
    values: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        name, sep, owner = key.partition("--") if form else (key, "", "")
        if sep and owner != chosen:
            continue
        name = ALIASES.get(name, name)
        text = _one_text(value)
        if name not in OPTIONS or name in values or text is None or not text.strip():
            continue
        if name in ("repository", "init_script"):
            text = _without_credentials(text)
        if text is not None and len(text) <= MAX_TEXT_OF.get(name, MAX_TEXT):
            values[name] = text
    return values


def _without_credentials(url: str) -> str | None:
    """url without its `user:password@`: a token typed into a URL (which is refused) is
    never shown back in the page. None when the URL cannot be parsed and holds an '@'."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _one_text(value) -> str | None:
    """One value as text: a one-element list's element, a string, a finite number."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, str) else str(value)
