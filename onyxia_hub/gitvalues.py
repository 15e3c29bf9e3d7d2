"""The rules for git values everywhere in the hub: repository URLs, branch names, clone
directories and the pull's report URL.

A launch's `repository`, `branch` and `repository_dir` options (`choices`), My account's
default repository and branch (`fields`) and the git provider's settings all go through
`repository_problem`, `branch_problem` and `directory_problem`, which say why a value is
refused (or None), never repeating a URL: it may hold a password. `report_url_problem`
checks `GitProvider.pull_report_url`. The server side (extensions/onyxia-git,
`onyxia_git.checks`, which must run without this package) applies the same rules again;
tests/test_git_checks.py makes both agree on the same tables.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_URL = 2048
MAX_BRANCH = 255
MAX_DIRECTORY = 200  # a launch's repository_dir: characters
MAX_DIRECTORY_PARTS = 4  # ... parts between slashes
MAX_DIRECTORY_PART = 64  # ... characters of each part
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
# what a URL may hold (RFC 3986's unreserved and reserved characters, and '%')
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
_BRANCH_FORBIDDEN = set(" ~^:?*[\\")
_DIRECTORY_PART = re.compile(r"[A-Za-z0-9._-]+")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def repository_problem(value: str, schemes=("https",)) -> str | None:
    """Why value is not a repository URL the hub accepts, or None.

    An absolute URL with one of `schemes` (https, or ssh where an operator allows it),
    a host, a path, and nothing git could read as an option or a credential: no
    `user:password@` (an ssh:// URL may name a user), no query or fragment, no space,
    control character (plain or %-encoded) or character outside a URL's.
    """
    if len(value) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _has_control(value) or any(c.isspace() for c in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    allowed = " or ".join(f"{s}://" for s in schemes)
    if parts.scheme.lower() not in schemes or not value.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        return f"must start with {allowed}"
    if not _URL_CHARS.fullmatch(value) or _ENCODED_CONTROL.search(value):
        return "must contain only the characters of a URL"
    if "@" in parts.netloc:
        user, _, _ = parts.netloc.rpartition("@")
        if parts.scheme.lower() != "ssh" or not _SSH_USER.fullmatch(user):
            return (
                "must not contain a user name or password (user:pass@): put a token in "
                "My account's personal access token"
            )
    host = parts.hostname or ""
    if not (_HOST.fullmatch(host) or _is_ipv6(host)):
        return "must name a host, as in https://git.example.org/team/repo.git"
    if parts.fragment or "#" in value:
        return "must not contain a #fragment"
    if parts.query or "?" in value:
        return "must not contain a ?query"
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return "must name a repository, as in https://git.example.org/team/repo.git"
    if any(s.startswith("-") for s in segments):
        return "must not have a path starting with '-'"
    if any(unquote(s) in (".", "..") for s in segments):
        return "must not contain '.' or '..' path segments"
    return None


def branch_problem(name: str) -> str | None:
    """Why git would refuse name as a branch (`git check-ref-format --branch`), or None."""
    if len(name) > MAX_BRANCH:
        return f"must be at most {MAX_BRANCH} characters"
    if name == "HEAD":
        return "'HEAD' is not a branch name"
    if name.startswith("-"):
        return "must not start with '-'"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "must not contain control characters"
    if set(name) & _BRANCH_FORBIDDEN:
        return "must not contain spaces or any of ~ ^ : ? * [ \\"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "must not start or end with '/' nor contain '//'"
    if ".." in name:
        return "must not contain '..'"
    if "@{" in name:
        return "must not contain '@{'"
    if name.endswith("."):
        return "must not end with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "no part between slashes may start with '.'"
        if part.endswith(".lock"):
            return "no part between slashes may end with '.lock'"
    return None


def directory_problem(value: str) -> str | None:
    """Why value is not a directory a clone may go to (a launch's `repository_dir`), or None.

    A path relative to the server's work directory (the home): 1 to 4 parts separated by
    `/`, each of 1 to 64 letters, digits, `.`, `_` or `-` and not starting with `.` (no
    `..`, no hidden directory), at most 200 characters in all; no leading or trailing `/`,
    no `//`, no `\\`, no control character. `courses/intro` is one.
    """
    if len(value) > MAX_DIRECTORY:
        return f"must be at most {MAX_DIRECTORY} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must not contain control characters"
    if "\\" in value:
        return "must not contain '\\' (parts are separated by '/')"
    if value.startswith("/"):
        return "must be a path inside your home, not start with '/'"
    parts = value.split("/")
    if "" in parts:
        return "must not end with '/' nor contain '//'"
    if len(parts) > MAX_DIRECTORY_PARTS:
        return f"must have at most {MAX_DIRECTORY_PARTS} parts separated by '/'"
    for part in parts:
        if part.startswith("."):
            return "no part between slashes may start with '.' (no '..', no hidden directory)"
        if not _DIRECTORY_PART.fullmatch(part):
            return "may contain only letters, digits, '.', '_', '-' and '/'"
        if len(part) > MAX_DIRECTORY_PART:
            return f"no part between slashes may be longer than {MAX_DIRECTORY_PART} characters"
    return None


def report_url_problem(value: str) -> str | None:
    """Why value cannot be where servers report their pull (`GitProvider.pull_report_url`),
    or None: an http(s) URL with a host, without credentials, query or fragment."""
    if len(value) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _has_control(value) or any(c.isspace() for c in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if "@" in parts.netloc:
        return "must not contain a user name or password: servers send their own token"
    if parts.query or "?" in value:
        return "must not contain a ?query"
    if parts.fragment or "#" in value:
        return "must not contain a #fragment"
    return None
