"""Checks of a repository URL, a branch, a target directory and the report URL, made
before any git command runs (or any report is sent).

The hub refuses bad values where they enter (`onyxia_hub.gitvalues.repository_problem`,
`branch_problem`, `directory_problem` and `report_url_problem`, the same rules); the
server checks them again, since this package runs in images the hub does not build and
reads its input from the environment. Only the standard library: nothing here may fail to
import.

Refused, whatever the protocols allowed:

- git's remote helpers (`ext::sh -c ...`, `fd::`, any `<transport>::<address>`) and every
  scheme but https (and ssh where the operator enables it): `file://`, `git://`, `http://`;
- anything git could read as an option (a value, host, user or path starting with `-`:
  `--upload-pack=...`, `ssh://-oProxyCommand=...`);
- credentials in the URL (`user:token@host`; an ssh URL may name a user, not a password);
- scp-style ssh (`user@host:path`) without a user, so that `word:...` is never a host;
- spaces, control characters (plain or %-encoded), characters outside a URL's, a query
  or fragment, `.` and `..` path segments, more than 2048 characters.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_URL = 2048
MAX_BRANCH = 255
MAX_DIRECTORY = 200  # a target directory (ONYXIA_GIT_TARGET): characters
MAX_DIRECTORY_PARTS = 4  # ... parts between slashes
MAX_DIRECTORY_PART = 64  # ... characters of each part
PROTOCOLS = ("https", "ssh")

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
# scp-like ssh: user@host:path (git's rule: a ':' before any '/', no '://'); the user is
# required here, so that a word and a colon (`javascript:...`) is never taken for a host
_SCP = re.compile(r"(?P<user>[^@/:]+)@(?P<host>[^@/:\[\]]+):(?P<path>.+)")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_BRANCH_FORBIDDEN = set(" ~^:?*[\\")
_DIRECTORY_PART = re.compile(r"[A-Za-z0-9._-]+")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _path_problem(path: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    if not segments:
        return "must name a repository, as in https://git.example.org/team/repo.git"
    if path.startswith("-") or any(s.startswith("-") for s in segments):
        return "must not have a path starting with '-'"
    if any(unquote(s) in (".", "..") for s in segments):
        return "must not contain '.' or '..' path segments"
    return None


def repository_problem(url, protocols=("https",)) -> str | None:
    """Why url must not be given to git, or None. protocols: those the operator allows."""
    if not isinstance(url, str) or not url:
        return "is empty"
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _has_control(url) or any(c.isspace() for c in url):
        return "must not contain spaces or control characters"
    allowed = " or ".join(f"{p}://" for p in protocols)
    if url.startswith("-"):
        return "must not start with '-'"
    if _REMOTE_HELPER.match(url):
        return f"must start with {allowed}, not name a git remote helper (transport::)"
    if not _URL_CHARS.fullmatch(url) or _ENCODED_CONTROL.search(url):
        return "must contain only the characters of a URL"
    if "#" in url:
        return "must not contain a #fragment"
    if "?" in url:
        return "must not contain a ?query"
    if "://" not in url:
        return _scp_problem(url, protocols, allowed)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in protocols:
        return f"must start with {allowed}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc:
        user = parts.netloc.rpartition("@")[0]
        if scheme != "ssh" or not _USER.fullmatch(user):
            return "must not contain a user name or password (user:pass@)"
    host = parts.hostname or ""
    if not (_HOST.fullmatch(host) or _is_ipv6(host)):
        return "must name a host, as in https://git.example.org/team/repo.git"
    return _path_problem(parts.path)


def _scp_problem(url: str, protocols, allowed: str) -> str:
    match = _SCP.fullmatch(url)
    if "ssh" not in protocols or match is None:
        return f"must start with {allowed}"
    user, host, path = match["user"], match["host"], match["path"]
    if not _USER.fullmatch(user):
        return "must not contain a password, nor a user name starting with '-'"
    if not _HOST.fullmatch(host):
        return "must name a host, as in git@git.example.org:team/repo.git"
    return _path_problem(path) or None


def branch_problem(name) -> str | None:
    """Why git would refuse name as a branch (`git check-ref-format --branch`), or None."""
    if not isinstance(name, str) or not name:
        return "is empty"
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


def directory_problem(value) -> str | None:
    """Why value must not be the directory a clone goes to (`--target`), or None: a path
    relative to the work directory of 1 to 4 parts separated by `/`, each of 1 to 64
    letters, digits, `.`, `_` or `-` not starting with `.`, at most 200 characters."""
    if not isinstance(value, str) or not value:
        return "is empty"
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


def report_url_problem(url) -> str | None:
    """Why url must not receive the pull's status with the server's token
    (`ONYXIA_GIT_REPORT_URL`), or None: http(s), a host, no credentials, query or fragment."""
    if not isinstance(url, str) or not url:
        return "is empty"
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _has_control(url) or any(c.isspace() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if "@" in parts.netloc:
        return "must not contain a user name or password: servers send their own token"
    if parts.query or "?" in url:
        return "must not contain a ?query"
    if parts.fragment or "#" in url:
        return "must not contain a #fragment"
    return None


def directory_name(url: str) -> str | None:
    """The directory a clone of url goes to, as `git clone` names it ('repo' for
    .../team/repo.git), or None when that would not be a plain directory name."""
    path = url.split("://", 1)[1].split("/", 1)[-1] if "://" in url else url.split(":", 1)[-1]
    last = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if last.endswith(".git"):
        last = last[: -len(".git")]
    if not _NAME.fullmatch(last) or last in (".", "..") or last.startswith("."):
        return None
    return last
