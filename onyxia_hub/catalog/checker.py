"""Checking a catalog document's values: `Checker` collects every problem of a file as a
`CatalogIssue` (file, field path, what is wrong) instead of stopping at the first, so that
an operator fixes a file in one pass. Messages name the field and show the value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogIssue:
    """One problem in a catalog file: where it is and what is wrong.

    `field` is a path into the document (`resources.memory.max`, `versions[1].image`),
    empty for problems with the file as a whole.
    """

    file: str
    field: str
    problem: str

    def __str__(self) -> str:
        if self.field:
            return f"{self.file}: {self.field}: {self.problem}"
        return f"{self.file}: {self.problem}"


def key_path(field: str, key) -> str:
    """The field path of key inside field: `a.b`, or `a['x/y']` when key is not a word."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{field}.{key}" if field else key
    return f"{field}[{key!r}]"


def show(value) -> str:
    """value as a message shows it: repr, shortened."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind(value) -> str:
    """What value is, for messages: 'an integer (4)', 'a list', 'null'..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value:g})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({show(value)})"


def has_control(text: str, *, multiline: bool = False) -> bool:
    """Whether text holds control characters (newlines and tabs allowed if multiline)."""
    allowed = "\n\t" if multiline else ""
    return any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text)


class Checker:
    """Checks the values of one file, collecting every issue instead of stopping."""

    def __init__(self, file: str, directory: Path | None = None):
        self.file = file
        self.directory = directory
        self.issues: list[CatalogIssue] = []

    def fail(self, field: str, problem: str) -> None:
        """Record one issue; returns None so that checks can `return self.fail(...)`."""
        self.issues.append(CatalogIssue(self.file, field, problem))

    def wrong_type(self, value, field: str, expected: str) -> None:
        """Record that value is not of the expected type."""
        hint = ""
        if expected.startswith("a string") and isinstance(value, (bool, int, float)):
            hint = ': quote it in YAML ("...")'
        if not field:
            return self.fail("", f"must be {expected} (key: value lines), not {kind(value)}")
        return self.fail(field, f"must be {expected}, not {kind(value)}{hint}")

    def mapping(self, value, field: str, *, required=(), optional=(), free=False, hints=None):
        """value if it is a mapping: keys strings, none unknown (unless free), none missing.

        Unknown and missing keys are recorded, and the mapping is still returned so that
        its known keys get checked too. Returns None when value is not a mapping. hints
        maps likely misplaced keys to what to say about them.
        """
        if not isinstance(value, dict):
            return self.wrong_type(value, field, "a mapping")
        allowed = tuple(dict.fromkeys((*required, *optional)))
        for key in value:
            if not isinstance(key, str):
                self.fail(key_path(field, key), f"keys must be strings, not {kind(key)}")
            elif not free and key not in allowed and hints and key in hints:
                self.fail(key_path(field, key), f"unknown key ({hints[key]})")
            elif not free and key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                if close:
                    self.fail(key_path(field, key), f"unknown key (did you mean {close[0]}?)")
                else:
                    self.fail(key_path(field, key), f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.fail(key_path(field, key), "is required")
        return {k: v for k, v in value.items() if isinstance(k, str)}

    def string(self, value, field, *, max_length=200, pattern=None, rule="", multiline=False):
        """value if it is a non-empty string that fits max_length and pattern, else None."""
        if not isinstance(value, str):
            return self.wrong_type(value, field, "a string")
        if not value.strip():
            return self.fail(field, "must not be empty")
        if len(value) > max_length:
            return self.fail(field, f"is {len(value)} characters long; at most {max_length}")
        if has_control(value, multiline=multiline):
            return self.fail(field, f"{show(value)} contains control characters")
        if pattern is not None and not pattern.fullmatch(value):
            return self.fail(field, f"{show(value)} is not {rule}")
        return value

    def integer(self, value, field, *, minimum=None, maximum=None):
        """value if it is an integer (not a boolean) within [minimum, maximum], else None."""
        if isinstance(value, bool) or not isinstance(value, int):
            return self.wrong_type(value, field, "an integer")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            if maximum is None:
                return self.fail(field, f"{value} is below the minimum, {minimum}")
            return self.fail(field, f"{value} is not between {minimum} and {maximum}")
        return value

    def boolean(self, value, field):
        """value if it is true or false, else None."""
        if not isinstance(value, bool):
            return self.wrong_type(value, field, "true or false")
        return value

    def sequence(self, value, field, *, min_items=0, max_items=100):
        """value if it is a list of min_items to max_items items, else None."""
        if not isinstance(value, list):
            return self.wrong_type(value, field, "a list")
        if len(value) < min_items:
            return self.fail(
                field,
                "must not be empty" if min_items == 1 else f"needs at least {min_items} items",
            )
        if len(value) > max_items:
            return self.fail(field, f"has {len(value)} items; at most {max_items}")
        return value

    def names(self, value, field, *, pattern, rule, max_items=100):
        """A tuple of unique strings matching pattern, or None if any is wrong."""
        items = self.sequence(value, field, max_items=max_items)
        if items is None:
            return None
        before = len(self.issues)
        out = []
        for i, item in enumerate(items):
            name = self.string(item, f"{field}[{i}]", max_length=128, pattern=pattern, rule=rule)
            if name is not None and name in out:
                self.fail(f"{field}[{i}]", f"{show(name)} is listed twice")
            elif name is not None:
                out.append(name)
        return tuple(out) if len(self.issues) == before else None
