"""A secret scanner: proving that secrets never leak into logs, pages, files, processes or objects.

    scanner = SecretScanner({"admin password": password, "alice's token": token})
    findings = scanner.scan_logs(hub) + scanner.scan_command_lines()
    findings += scanner.scan_environments(except_uids=[alice_uid])
    scanner.assert_clean(findings)

Each `scan_*` method returns a list of `Finding(secret_label, where, form, context)`: which secret,
where ("file /x/.git/config line 3", "process 456 (onyxia-bob, sleep) command line"), in which
form, and the surrounding text with every secret replaced by `<label>`. The secret values
themselves never appear in a finding, its repr or `assert_clean`'s message, so a failing test
does not leak them either (into CI logs, for instance).

Besides the value as is ("plain"), simple encodings of it are matched, since a leak through a
data URI, a query string or a Kubernetes Secret is still a leak: "base64" (standard and URL-safe
alphabets, at any alignment inside a longer base64 text), "url" (percent-encoded), "json" and
"html" (escaped), whenever they differ from the plain value.

Values shorter than 8 characters are refused: they would be found by chance.
"""

from __future__ import annotations

import base64
import html
import json
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

MIN_LENGTH = 8
MAX_BINARY_SIZE = 5 * 1024 * 1024
CONTEXT = 40  # characters of context kept on each side of a match


@dataclass(frozen=True)
class Finding:
    """One occurrence of a secret: its label, never its value."""

    secret_label: str
    where: str
    form: str = "plain"
    context: str = ""

    def __str__(self) -> str:
        form = "" if self.form == "plain" else f" ({self.form})"
        context = f": {self.context}" if self.context else ""
        return f"{self.secret_label}{form} in {self.where}{context}"


def _base64_forms(value: bytes) -> set[bytes]:
    """The part of base64(... + value + ...) that only depends on value, at the three alignments."""
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + value)
        start = -(-8 * shift // 6)  # first character made of value bits only
        end = 8 * (shift + len(value)) // 6
        core = encoded[start:end]
        forms.add(core)
        forms.add(core.translate(bytes.maketrans(b"+/", b"-_")))
    return forms


class SecretScanner:
    def __init__(self, secrets: dict[str, str]):
        self.patterns: list[tuple[str, str, bytes]] = []  # (label, form, bytes), longest first
        for label, value in secrets.items():
            if not isinstance(value, str) or len(value) < MIN_LENGTH:
                raise ValueError(
                    f"secret {label!r} is shorter than {MIN_LENGTH} characters: "
                    "it would be found by chance"
                )
            plain = value.encode()
            forms: dict[bytes, str] = {plain: "plain"}
            for form, encoded in [
                ("url", quote(value, safe="").encode()),
                ("url", quote(value).encode()),
                ("url", quote_plus(value).encode()),
                ("json", json.dumps(value)[1:-1].encode()),
                ("json", json.dumps(value, ensure_ascii=False)[1:-1].encode()),
                ("html", html.escape(value).encode()),
                ("html", html.escape(value, quote=False).encode()),
                *(("base64", core) for core in _base64_forms(plain)),
            ]:
                forms.setdefault(encoded, form)
            self.patterns += [(label, form, pattern) for pattern, form in forms.items()]
        self.patterns.sort(key=lambda p: -len(p[2]))

    def __repr__(self) -> str:
        labels = sorted({label for label, _, _ in self.patterns})
        return f"<SecretScanner {labels}>"

    # -- core ------------------------------------------------------------------------
    def redact(self, data: str | bytes) -> str:
        """data as text with every form of every secret replaced by <label>."""
        if isinstance(data, str):
            data = data.encode(errors="surrogateescape")
        for label, _, pattern in self.patterns:
            data = data.replace(pattern, f"<{label}>".encode())
        return data.decode(errors="replace")

    def scan_text(self, where: str, text: str | bytes) -> list[Finding]:
        """Findings in text; for text of several lines, `where` gets the line number."""
        data = text.encode(errors="surrogateescape") if isinstance(text, str) else text
        multiline = b"\n" in data
        findings, seen = [], set()
        for label, form, pattern in self.patterns:
            start = data.find(pattern)
            while start != -1:
                line = data.count(b"\n", 0, start) + 1
                place = f"{where} line {line}" if multiline else where
                if (label, place, form) not in seen:  # one finding per secret, form and line
                    seen.add((label, place, form))
                    findings.append(
                        Finding(label, self.redact(place), form, self._context(data, start, label))
                    )
                start = data.find(pattern, start + 1)
        return findings

    def _context(self, data: bytes, start: int, label: str) -> str:
        """The line of the match, redacted as a whole, cut around the label's first marker."""
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start)
        line = self.redact(data[line_start : len(data) if line_end == -1 else line_end]).strip()
        at = max(line.find(f"<{label}>"), 0)
        begin, end = max(at - CONTEXT, 0), min(at + len(label) + 2 + CONTEXT, len(line))
        return ("..." if begin else "") + line[begin:end] + ("..." if end < len(line) else "")

    # -- sources ---------------------------------------------------------------------
    def scan_files(self, paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Finding]:
        """Every regular file under these files or directories (recursively, dotfiles included,
        symbolic links inside directories not followed); binary files over 5 MiB are skipped.
        File names are scanned too."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        findings = []
        for root in map(Path, paths):
            if not root.exists():  # a mistyped path must not pass for a clean one
                raise FileNotFoundError(f"nothing to scan at {root}")
            for path in self._walk(root):
                findings += self._scan_file(path, f"file {path}")
        return findings

    def _walk(self, root: Path) -> Iterable[Path]:
        if not root.is_dir():
            yield root
            return
        for directory, dirs, files in os.walk(root, onerror=lambda e: None):
            dirs.sort()
            for name in sorted(files):
                if not (path := Path(directory) / name).is_symlink():
                    yield path

    def _scan_file(self, path: Path, where: str) -> list[Finding]:
        findings = self.scan_text(f"the name of {where}", str(path))
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):  # no FIFO (it would block), socket or device
                return findings
            with open(path, "rb") as f:
                if info.st_size > MAX_BINARY_SIZE and b"\0" in f.read(8192):
                    return findings
                f.seek(0)
                data = f.read()
        except OSError:
            return findings
        return findings + self.scan_text(where, data)

    def scan_logs(self, hub) -> list[Finding]:
        """Everything a `HubProcess` printed (each start's output file) and wrote under its
        state directory's `logs/` (the hub's log, each server's log)."""
        state = Path(hub.state_dir)
        findings = []
        for path in sorted(state.parent.glob(f"{state.name}-output-*.log")):
            findings += self._scan_file(path, f"hub output {path.name}")
        logs = state / "logs"
        for path in self._walk(logs) if logs.exists() else []:
            findings += self._scan_file(path, f"log {path.relative_to(logs)}")
        return findings

    def scan_pages(self, client, paths: Iterable[str]) -> list[Finding]:
        """GET each path with a `HubClient` (following redirects): the HTML of the final page,
        its headers and those of each redirect (a Location carrying a token is a leak)."""
        findings = []
        for path in paths:
            r = client.get(path)
            where = f"page {path} (HTTP {r.status_code})"
            for response in [*r.history, r]:
                headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
                findings += self.scan_text(f"{where} headers of {response.url}", headers)
            findings += self.scan_text(where, r.content)
        return findings

    def scan_command_lines(self) -> list[Finding]:
        """Every process's command line, as `ps` shows it to every account."""
        findings = []
        for pid, uid, name in _processes():
            data = _read(pid, "cmdline")
            if data:
                where = f"process {pid} ({_account(uid)}, {name}) command line"
                findings += self.scan_text(where, data.replace(b"\0", b" "))
        return findings

    def scan_environments(
        self, except_uids: Iterable[int] = (), except_pids: Iterable[int] = ()
    ) -> list[Finding]:
        """Every process's environment except those of processes run by except_uids (a user's
        own server may hold that user's secrets) or listed in except_pids."""
        except_uids, except_pids = set(except_uids), set(except_pids)
        findings = []
        for pid, uid, name in _processes():
            if uid in except_uids or pid in except_pids:
                continue
            for item in (_read(pid, "environ") or b"").split(b"\0"):
                variable = item.partition(b"=")[0].decode(errors="replace")
                where = f"process {pid} ({_account(uid)}, {name}) environment variable {variable}"
                findings += self.scan_text(where, item)
        return findings

    def scan_objects(self, where: str, obj) -> list[Finding]:
        """JSON-like data (dicts, lists, strings, numbers; Kubernetes client models too) that
        must not contain secrets, e.g. a rendered Pod; a finding names the key path
        (`spec.containers[0].env[2].value`).

        A Kubernetes Secret holding a secret WILL be reported: its `data` is base64, which is
        matched. Scan the objects that must not hold secrets, not the Secrets themselves."""
        findings = []
        for path, leaf in _leaves(_plain(obj)):
            place = f"{where} at {path}" if path else where
            findings += self.scan_text(place, leaf)
        return findings

    @staticmethod
    def assert_clean(findings: Iterable[Finding], limit: int = 50) -> None:
        """AssertionError listing the findings (labels and places only) if there are any."""
        findings = list(findings)
        if findings:
            lines = [f"  - {f}" for f in findings[:limit]]
            if len(findings) > limit:
                lines.append(f"  ... and {len(findings) - limit} more")
            raise AssertionError(f"{len(findings)} secret leak(s):\n" + "\n".join(lines))


# -- helpers -----------------------------------------------------------------------------
def _read(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def _processes() -> list[tuple[int, int, str]]:
    """(pid, real uid, program name) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _read(int(entry), "status")
        if status is None:
            continue
        fields = dict(
            line.split(":", 1)
            for line in status.decode(errors="replace").splitlines()
            if ":" in line
        )
        uid = int(fields.get("Uid", "-1").split()[0])
        found.append((int(entry), uid, fields.get("Name", "?").strip()))
    return found


def _account(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _plain(obj):
    """Kubernetes client models (and anything with to_dict) as plain JSON-like data."""
    if hasattr(obj, "openapi_types") and hasattr(obj, "attribute_map"):
        return {
            obj.attribute_map[name]: _plain(getattr(obj, name))
            for name in obj.openapi_types
            if getattr(obj, name) is not None
        }
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict())
    return obj


def _leaves(obj, path: str = ""):
    """(key path, text) for every key and scalar value."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            child = f"{path}.{key}" if path else key
            yield child + " (key)", key
            yield from _leaves(value, child)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _leaves(value, f"{path}[{i}]")
    elif isinstance(obj, bytes):
        yield path, obj
    elif obj is not None:
        yield path, obj if isinstance(obj, str) else json.dumps(obj, default=str)
