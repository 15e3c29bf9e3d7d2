"""Reading one catalog file: a regular file, at most 1 MiB of UTF-8, one YAML document,
no anchors, aliases, merge keys or duplicate keys, at most 32 levels deep, and only
`yaml.SafeLoader`. Anything else is refused before a value is built.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from .checker import CatalogIssue, key_path

MAX_FILE_BYTES = 1 << 20  # a catalog file; real ones are about 1 KiB
MAX_DEPTH = 32  # nested mappings and lists in one file


class NotRegularFile(Exception):
    """A path that is a directory, a FIFO, a device...: nothing a catalog may read."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most limit + 1 bytes of path, which must be a regular file.

    Opened without blocking and checked once open, so that a FIFO named `x.yaml` cannot
    hang the hub and a file swapped for something else meanwhile is still caught.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(str(path))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_yaml(path: Path, file: str) -> tuple[object, list[CatalogIssue]]:
    """The document in path, or None and the issues that prevent reading it.

    file is the name issues give the file. Refused: non-regular files, files over 1 MiB,
    non-UTF-8 text, invalid YAML, several documents, anchors, aliases, merge keys,
    duplicate keys, nesting deeper than 32 levels and empty files.
    """

    def refuse(problem: str, field: str = ""):
        return None, [CatalogIssue(file, field, problem)]

    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except NotRegularFile:
        return refuse("is not a regular file")
    except OSError as e:
        return refuse(f"cannot be read: {e.strerror or e}")
    if len(raw) > MAX_FILE_BYTES:
        return refuse("is larger than 1 MiB, the limit for catalog files")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return refuse(f"is not UTF-8 text (byte {e.start})")
    try:
        problem = _check_events(text)
        if problem:
            return refuse(problem)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return refuse("is empty")
            issues = [CatalogIssue(file, f, p) for f, p in _check_keys(node, "")]
            if issues:
                return None, issues
            return loader.construct_document(node), []
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        where = e.problem_mark or e.context_mark
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        return refuse(f"is not valid YAML: {e.problem or e.context}{at}")
    except yaml.YAMLError as e:
        return refuse(f"is not valid YAML: {e}")
    except RecursionError:
        return refuse(f"is nested too deeply (more than {MAX_DEPTH} levels)")


def _check_events(text: str) -> str | None:
    """What makes text unacceptable before it is built: anchors, aliases, depth, documents."""
    documents = depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            return (
                f"uses a YAML anchor or alias (line {line}): not allowed in catalog "
                "files, write each value out in full"
            )
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                return f"holds more than one YAML document (line {line}): one per file"
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return f"is nested too deeply (more than {MAX_DEPTH} levels, line {line})"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _check_keys(node, field: str) -> list[tuple[str, str]]:
    """(field, problem) for each duplicate or merge key in the tree under node."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                found.append(
                    (
                        field,
                        f"uses a YAML merge key '<<' (line {key.start_mark.line + 1}): "
                        "not allowed, write each key out",
                    )
                )
                continue
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    found.append(
                        (
                            key_path(field, key.value),
                            f"appears twice (lines {seen[key.value]} and {line}): keep one",
                        )
                    )
                else:
                    seen[key.value] = line
                found += _check_keys(value, key_path(field, key.value))
            else:
                found += _check_keys(value, field)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _check_keys(item, f"{field}[{i}]")
    return found
