"""Every value users send, checked; a refusal names the field and what is allowed.

The rules the hub and its services share: the git provider takes the identity rules from
here (an identity provider's name and e-mail pass the same checks as My account's), the
portal its form and API fields, and any other service the same.

Each `check_*` takes the raw value (a form's string or a JSON value) and returns the clean
value, or raises `FieldError(field, message)`. A service's pages show the message next to
the form (HTTP 400); its JSON API answers `{"error": message, "field": field}` (HTTP 400).

A message never repeats a secret's value (the personal access token): it says what is
wrong with it, not what it was.
"""

from __future__ import annotations

import re
import unicodedata

from .choices import Choice, ChoiceError, check, normalize
from .gitvalues import branch_problem, repository_problem

MAX_GIT_NAME = 100
MAX_EMAIL = 254
MAX_TOKEN = 255
MAX_CONFIG_NAME = 64

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[^@\s<>(),;:\"\[\]\\]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
_SERVER_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?")


class FieldError(ValueError):
    """A refused value: `field` is the name the form and the API use."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _text(field: str, value, *, allow_none: bool = True) -> str | None:
    if value is None:
        return None if allow_none else ""
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    return value


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def check_git_name(value) -> str | None:
    """1-100 characters, no control characters; empty means "not set"."""
    value = (_text("git_name", value) or "").strip()
    if not value:
        return None
    if len(value) > MAX_GIT_NAME:
        raise FieldError("git_name", f"at most {MAX_GIT_NAME} characters, not {len(value)}")
    if _has_control(value) or "<" in value or ">" in value:
        raise FieldError("git_name", "must not contain control characters, '<' or '>'")
    return value


def check_email(value) -> str | None:
    """An address like name@example.org, at most 254 characters; empty means "not set"."""
    value = (_text("git_email", value) or "").strip()
    if not value:
        return None
    if len(value) > MAX_EMAIL:
        raise FieldError("git_email", f"at most {MAX_EMAIL} characters, not {len(value)}")
    if _has_control(value) or not _EMAIL.fullmatch(value):
        raise FieldError("git_email", "must be an e-mail address such as name@example.org")
    return value


def check_token(value) -> str | None:
    """Printable ASCII without spaces, 1-255 characters; empty means "leave unchanged"."""
    value = _text("git_token", value) or ""
    if not value:
        return None
    if len(value) > MAX_TOKEN:
        raise FieldError("git_token", f"at most {MAX_TOKEN} characters")
    if not all("!" <= c <= "~" for c in value):
        raise FieldError(
            "git_token", "must be printable ASCII characters, without spaces or line breaks"
        )
    return value


def check_repository(value, schemes=("https",)) -> str | None:
    """An https:// URL (or another allowed scheme) without credentials, <= 2048 chars
    (`gitvalues.repository_problem`: the rules of every launch's repository)."""
    value = (_text("git_repository", value) or "").strip()
    if not value:
        return None
    problem = repository_problem(value, tuple(schemes))
    if problem:
        raise FieldError("git_repository", problem)
    return value


def check_branch(value) -> str | None:
    """A branch name git accepts (`gitvalues.branch_problem`)."""
    value = (_text("git_branch", value) or "").strip()
    if not value:
        return None
    problem = branch_problem(value)
    if problem:
        raise FieldError("git_branch", problem)
    return value


def check_config_name(value, field: str = "name") -> str:
    """1-64 characters, no control characters."""
    value = (_text(field, value, allow_none=False) or "").strip()
    if not value:
        raise FieldError(field, "is required (1 to 64 characters)")
    if len(value) > MAX_CONFIG_NAME:
        raise FieldError(field, f"at most {MAX_CONFIG_NAME} characters, not {len(value)}")
    if _has_control(value):
        raise FieldError(field, "must not contain control characters")
    return value


def check_server_name(value, field: str = "server") -> str:
    """'' for the default server, else JupyterHub 6's named-server rules."""
    value = (_text(field, value) or "").strip()
    if not value:
        return ""
    if not _SERVER_NAME.fullmatch(value) or "--" in value:
        raise FieldError(
            field,
            "1 to 30 lowercase letters, digits and '-', starting with a letter, ending "
            "with a letter or digit, without '--' (or empty for your default server)",
        )
    return value


def check_options(raw, catalog, groups, field: str = "user_options") -> Choice:
    """Launch options checked as the hub checks them: `choices.normalize`, then `check`
    against the catalog as it is now and the user's groups."""
    if catalog is None:
        raise FieldError(field, "the catalog could not be read: try again later")
    try:
        normalize(raw)
        return check(raw, catalog, groups)
    except ChoiceError as e:
        raise FieldError(field, str(e)) from None
