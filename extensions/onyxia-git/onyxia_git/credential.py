"""`git-credential-onyxia`: git's credential helper for the hosts the hub configured.

The hub's git configuration (`onyxia_hub.providers.git.settings.git_config`) sets, for
each host the user's token may go to,

    [credential "https://git.example.org"]
        helper = "onyxia --host=git.example.org"

so git runs `git credential-onyxia --host=git.example.org get` when that host asks for a
password, and writes the request on standard input (`protocol=https`, `host=...`; see
gitcredentials(7)). The helper answers with the token only when the request is over
https and for a host given with `--host`; to anything else it answers nothing, and git
goes on as without it (no prompt: the start-time pull sets `GIT_TERMINAL_PROMPT=0`).

The token is the file `git/token` of the server's secrets directory
(`$ONYXIA_HUB_SECRETS_DIR`: memory-backed, private to the server). It is never written
anywhere: `store` and `erase` are ignored, and nothing goes into `.git/config` or a URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SECRETS_DIR_ENV = "ONYXIA_HUB_SECRETS_DIR"
TOKEN_FILE = "git/token"  # noqa: S105 - a file name
MAX_INPUT = 64 * 1024
MAX_TOKEN = 4096
_DEFAULT_PORT = ":443"


def token_path(environ=os.environ) -> Path | None:
    directory = environ.get(SECRETS_DIR_ENV)
    return Path(directory) / TOKEN_FILE if directory else None


def read_request(stream) -> dict[str, str]:
    """The attributes git sends (key=value lines up to a blank line), bounded in size."""
    data = stream.read(MAX_INPUT)
    attributes: dict[str, str] = {}
    for line in data.splitlines():
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep:
            attributes[key] = value
    return attributes


def _host(value: str) -> str:
    value = value.lower()
    return value[: -len(_DEFAULT_PORT)] if value.endswith(_DEFAULT_PORT) else value


def answer(attributes: dict[str, str], hosts: list[str], environ=os.environ) -> str:
    """What to print for a `get` request: the credentials, or "" (not for us)."""
    if attributes.get("protocol") != "https":
        return ""
    if _host(attributes.get("host", "")) not in {_host(h) for h in hosts}:
        return ""
    path = token_path(environ)
    if path is None:
        return ""
    try:
        token = path.read_text()[:MAX_TOKEN].strip()
    except OSError:
        return ""
    if not token or any(c in token for c in "\n\r\0"):
        return ""
    username = attributes.get("username") or "oauth2"
    if any(c in username for c in "\n\r\0"):
        return ""
    return f"username={username}\npassword={token}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="git-credential-onyxia",
        description="git credential helper: the user's token, for the configured https hosts",
    )
    parser.add_argument("--host", action="append", default=[], help="a host the token is for")
    parser.add_argument("action", nargs="?", default="get", help="get, store or erase")
    args = parser.parse_args(argv)
    attributes = read_request(sys.stdin)
    if args.action != "get":  # store, erase: the token is never written anywhere
        return 0
    reply = answer(attributes, args.host)
    if reply:
        sys.stdout.write(reply)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
