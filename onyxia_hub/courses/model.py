"""A course, and the one function that reads one from anywhere: `parse_course`.

A course comes from the service's API (a JSON body), its pages (a form, turned into the
same dict) or an operator's course file (YAML). All three go through `parse_course`, which
either returns an immutable `Course` or raises a `FieldError` naming the field that is
wrong (`id`, `options.cpu`, `join.groups`...), so each path answers the same message.

What a course holds:

- `id`: its link is `<hub>/services/courses/<id>`, and a trainee's course server is named
  after it, so it follows JupyterHub's rule for server names (`fields.check_server_name`:
  1 to 30 lowercase letters, digits and '-') and is none of the service's own paths
  (`RESERVED`);
- `title`, `description`: shown on the course's page;
- `options`: the launch options of every trainee's server (service, version, cpu, memory,
  gpus, gpu_type, repository, branch; `COURSE_OPTIONS`). The form is checked here
  (`choices.normalize`); whether the catalog allows them is `catalog_problem`'s question,
  asked at save, on every page, and by the hub again at every launch with the trainee's
  own groups and quota (the one launch path);
- `open`: what to open in the material, a relative path (`check_open`);
- `join`: who may join (anyone signed in, or listed groups and accounts);
- `instructors`: who may edit it and (issue 17) see its class, besides the hub's admins;
- `autostart`: a trainee's visit starts their server without a Start button.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import quote

from ..catalog.model import Catalog
from ..choices import ChoiceError, check, normalize
from ..fields import FieldError, check_server_name
from ..gitvalues import branch_problem, repository_problem

COURSE_OPTIONS = (
    "service", "version", "cpu", "memory", "gpus", "gpu_type", "repository", "branch",
)  # fmt: skip
# the service's own paths under /services/courses/: never a course's
RESERVED = frozenset(
    {
        "api", "launcher", "static", "oauth_callback", "logout", "new", "courses", "admin",
        "edit", "start", "status", "files", "user", "hub", "services", "login", "home",
    }
)  # fmt: skip
KEYS = ("id", "title", "description", "options", "open", "join", "instructors", "autostart")
MAX_TITLE = 120
MAX_DESCRIPTION = 4000
MAX_OPEN = 1024
MAX_OPEN_SEGMENTS = 32
MAX_NAMES = 1000
MAX_NAME = 255
MATERIAL_ROOT = "courses"  # each course's material is cloned into ~/courses/<id>
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Who:
    """A set of people: listed accounts and members of listed groups (or anyone)."""

    anyone: bool = False
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def includes(self, user: str, groups) -> bool:
        return self.anyone or user in self.users or bool(set(self.groups) & set(groups))

    def as_json(self, *, with_anyone: bool = True) -> dict:
        if with_anyone and self.anyone:
            return {"anyone": True}
        return {"users": list(self.users), "groups": list(self.groups)}


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    description: str = ""
    options: Mapping[str, object] = field(default_factory=dict)
    open: str = ""
    join: Who = Who(anyone=True)
    instructors: Who = Who()
    autostart: bool = False
    archived: bool = False
    source: str = ""  # "" for the service's store, else the course file it was read from
    created_by: str = ""
    updated_at: datetime | None = None
    invalid: str = ""  # why the rules now refuse a stored course ("" when they accept it)

    @property
    def read_only(self) -> bool:
        """A course file's course: shown, never changed through the service."""
        return bool(self.source)

    @property
    def repository(self) -> str | None:
        value = self.options.get("repository")
        return value if isinstance(value, str) else None

    @property
    def material_dir(self) -> str:
        """Where the material is, relative to the server's root ('' without material)."""
        return f"{MATERIAL_ROOT}/{self.id}" if self.repository else ""

    @property
    def open_path(self) -> str:
        """What to open, relative to the server's root."""
        return "/".join(p for p in (self.material_dir, self.open) if p)

    def launch_options(self) -> dict:
        """The user_options of a trainee's server: the course's, and the material in a
        directory of its own (never the clone of the user's default repository)."""
        options = dict(self.options)
        if self.repository:
            options["repository_dir"] = self.material_dir
        return options

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "options": dict(self.options),
            "open": self.open,
            "join": self.join.as_json(),
            "instructors": self.instructors.as_json(with_anyone=False),
            "autostart": self.autostart,
            "archived": self.archived,
            "read_only": self.read_only,
            "created_by": self.created_by,
        }


# -- reading one ---------------------------------------------------------------------------
def parse_course(raw, *, creator: str = "", course_id: str | None = None) -> Course:
    """A `Course` from a JSON body, a form or a course file; `FieldError` naming the field.

    course_id: the course's id when it exists already (a PUT names it in the URL; a body
    that names another id is refused). creator: who creates it, its instructor when the
    body names none.
    """
    if not isinstance(raw, Mapping):
        raise FieldError("course", "must be an object with " + ", ".join(KEYS))
    unknown = [str(k)[:40] for k in raw if k not in KEYS and k not in ("archived", "read_only")]
    if unknown:
        raise FieldError(unknown[0], "is not a course field; the fields are " + ", ".join(KEYS))
    cid = check_course_id(raw.get("id", course_id))
    if course_id is not None and cid != course_id:
        raise FieldError("id", f"is {course_id!r} in the URL: a course's id cannot change")
    instructors = _who(raw.get("instructors"), "instructors", anyone_allowed=False)
    if creator and creator not in instructors.users:  # its creator always teaches it
        instructors = Who(users=(creator, *instructors.users), groups=instructors.groups)
    return Course(
        id=cid,
        title=_text(raw.get("title"), "title", MAX_TITLE, required=True),
        description=_text(raw.get("description"), "description", MAX_DESCRIPTION),
        options=_options(raw.get("options")),
        open=check_open(raw.get("open")),
        join=_who(raw.get("join"), "join", anyone_allowed=True),
        instructors=instructors,
        autostart=_flag(raw.get("autostart"), "autostart"),
        created_by=creator,
    )


def check_course_id(value) -> str:
    if value is None or value == "":
        raise FieldError("id", "is required: the course's name in its link, e.g. intro-python")
    if not isinstance(value, str):
        raise FieldError("id", "must be text, e.g. intro-python")
    try:
        name = check_server_name(value, "id")
    except FieldError:
        raise FieldError(
            "id",
            "1 to 30 lowercase letters, digits and '-', starting with a letter, ending with "
            "a letter or digit, without '--' (it names the link and trainees' servers)",
        ) from None
    if not name:
        raise FieldError("id", "is required: the course's name in its link, e.g. intro-python")
    if name in RESERVED:
        raise FieldError("id", f"{name!r} is reserved by the courses service: choose another")
    return name


def check_open(value) -> str:
    """A relative path inside the material ('' opens the material's folder)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError("open", "must be a path inside the material, e.g. lessons/01.ipynb")
    if len(value) > MAX_OPEN:
        raise FieldError("open", f"at most {MAX_OPEN} characters, not {len(value)}")
    if _CONTROL.search(value):
        raise FieldError("open", "must not contain control characters (NUL, newline...)")
    value = value.strip()
    if value.startswith("/") or value.startswith("~") or "\\" in value:
        raise FieldError("open", "must be relative to the material, e.g. lessons/01.ipynb")
    parts = [p for p in value.split("/")]
    if value.endswith("/"):
        parts = parts[:-1]
    if not value:
        return ""
    if any(p in ("", ".", "..") for p in parts):
        raise FieldError("open", "must not contain empty, '.' or '..' segments")
    if len(parts) > MAX_OPEN_SEGMENTS:
        raise FieldError("open", f"at most {MAX_OPEN_SEGMENTS} segments")
    return "/".join(parts)


def quoted_path(path: str) -> str:
    """path for a URL, each segment percent-encoded (a '#', '?' or '%' stays a name)."""
    return "/".join(quote(p, safe="") for p in path.split("/") if p)


def _text(value, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(name, "must be text")
    value = value.strip()
    if required and not value:
        raise FieldError(name, "is required")
    if len(value) > limit:
        raise FieldError(name, f"at most {limit} characters, not {len(value)}")
    multiline = name == "description"
    if any((ord(c) < 32 and not (multiline and c in "\n\r\t")) or c == "\x7f" for c in value):
        raise FieldError(
            name, "must not contain control characters" if multiline else "must be one line"
        )
    return value


def _flag(value, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(name, "must be true or false")
    return value


def _names(value, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, (list, tuple)):
        raise FieldError(name, "must be a list of names")
    if len(value) > MAX_NAMES:
        raise FieldError(name, f"at most {MAX_NAMES} names, not {len(value)}")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise FieldError(name, "must be a list of names (text)")
        item = item.strip()
        if len(item) > MAX_NAME or _CONTROL.search(item):
            raise FieldError(name, f"{item[:40]!r} is not a name")
        if item not in names:
            names.append(item)
    return tuple(names)


def _who(value, name: str, *, anyone_allowed: bool) -> Who:
    if value is None:
        return Who(anyone=anyone_allowed)
    if not isinstance(value, Mapping):
        raise FieldError(name, 'must be an object: {"users": [...], "groups": [...]}')
    allowed = ("anyone", "users", "groups") if anyone_allowed else ("users", "groups")
    for key in value:
        if key not in allowed:
            raise FieldError(f"{name}.{str(key)[:40]}", "is not known; use " + ", ".join(allowed))
    anyone = _flag(value.get("anyone"), f"{name}.anyone") if anyone_allowed else False
    users = _names(value.get("users"), f"{name}.users")
    groups = _names(value.get("groups"), f"{name}.groups")
    if anyone and (users or groups):
        raise FieldError(f"{name}.anyone", "is true: list no users or groups with it")
    if anyone_allowed and not anyone and not users and not groups:
        raise FieldError(name, 'names nobody: give users, groups, or {"anyone": true}')
    return Who(anyone=anyone, users=users, groups=groups)


def _options(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("options", "must be an object of launch options")
    for key in value:
        if key not in COURSE_OPTIONS:
            raise FieldError(
                f"options.{str(key)[:40]}",
                "is not a course's launch option; they are " + ", ".join(COURSE_OPTIONS),
            )
    try:
        options = normalize(value)
    except ChoiceError as e:
        raise FieldError(*_choice_field(e)) from None
    # the git rules need no catalog: refused here, even for a course file
    repository, branch = options.get("repository"), options.get("branch")
    if repository is not None:
        problem = repository_problem(repository) if isinstance(repository, str) else "is no URL"
        if problem:  # the value is not repeated: it may hold a password
            raise FieldError("options.repository", f"the URL {problem}")
    if branch is not None:
        problem = branch_problem(branch) if isinstance(branch, str) else "is no branch name"
        if problem:
            raise FieldError("options.branch", f"{str(branch)[:40]!r} {problem}")
    return options


def _choice_field(error: ChoiceError) -> tuple[str, str]:
    """(`options.<name>`, message) of a refused launch option, the name said once."""
    message = str(error)
    if error.field and message.startswith(f"{error.field}: "):
        message = message[len(error.field) + 2 :]
    return (f"options.{error.field}" if error.field else "options", message)


# -- what the catalog says of it -------------------------------------------------------------
def catalog_problem(course: Course, catalog: Catalog | None) -> tuple[str, str] | None:
    """(field, why) when the catalog as it is now does not allow the course's options for
    any group; None when it does. Each trainee's own groups and quota are the hub's to
    check, at their launch."""
    if catalog is None:
        return ("options", "the catalog cannot be read right now")
    every_group = frozenset().union(*(s.groups for s in catalog.services))
    try:
        check(course.launch_options(), catalog, every_group)
    except ChoiceError as e:
        return _choice_field(e)
    return None


def checked(course: Course, catalog: Catalog | None) -> Course:
    """course, or `FieldError` if the catalog does not allow it (at save)."""
    problem = catalog_problem(course, catalog)
    if problem:
        raise FieldError(*problem)
    return course


def duplicate_of(course: Course, new_id: str, creator: str) -> Course:
    """A copy to edit: a new id, its creator its instructor, in the store (archived until
    its instructor restores it: a copy left as it is never opens by mistake)."""
    return replace(
        course,
        id=check_course_id(new_id),
        title=(f"{course.title} (copy)")[:MAX_TITLE],
        instructors=Who(users=(creator,), groups=course.instructors.groups),
        archived=True,
        source="",
        created_by=creator,
        updated_at=None,
    )
