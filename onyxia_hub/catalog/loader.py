"""Catalog directories -> one `model.Catalog`, checked, and reloaded when files change.

A catalog directory holds one `<name>.yaml` per service and, optionally, `_catalog.yaml`
(catalog-wide settings: quotas). Other names starting with `_` are refused (a typo of
`_catalog.yaml` must not go unnoticed), `*.yml` files are refused (rename them `.yaml`),
hidden entries (`.git`, editors' files, Kubernetes ConfigMap internals such as `..data`)
and every other file are ignored; icons usually live in `icons/`.

Several directories may be given: later ones add services (a name defined twice is an
issue) and a later `_catalog.yaml` replaces an earlier one. Across the whole catalog at
most one service is `default: true`, and there is at least one service.

- `check_catalog(paths)`: (Catalog or None, issues), for `onyxia-hub catalog check`.
- `load_catalog(paths)`: the Catalog, or `CatalogError` listing the issues (start-up).
- `CatalogSource(paths, log)`: `.current()` re-stats the files at each call and reloads
  when any changed; an invalid change keeps the last good catalog and logs its issues once.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import onyxia_hub

from ..errors import OnyxiaHubError
from . import model
from .schema import CatalogIssue, quotas_from_document, read_yaml, service_from_document

CATALOG_FILE = "_catalog.yaml"
SERVICE_SUFFIX = ".yaml"
ICONS_DIR = "icons"
MAX_LOGGED_ISSUES = 20
MAX_LOGGED_LINE = 300


class CatalogError(OnyxiaHubError):
    """The catalog cannot be used; `issues` lists every problem found."""

    def __init__(self, issues: list[CatalogIssue]):
        self.issues = list(issues)
        shown = "\n".join(f"  {issue}" for issue in self.issues[:50])
        more = f"\n  ... and {len(self.issues) - 50} more" if len(self.issues) > 50 else ""
        count = len(self.issues)
        super().__init__(
            f"the catalog has {count} problem{'s' if count != 1 else ''}:\n{shown}{more}",
            fix="correct the files named above; `onyxia-hub catalog check DIR` checks a "
            "catalog without starting anything",
        )


def default_catalog_path() -> Path:
    """The `profiles/` directory shipped next to the package, in the repository."""
    return Path(onyxia_hub.__file__).parent.parent / "profiles"


def _as_paths(paths) -> list[Path]:
    """One path or several, as a list of Paths."""
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    result = [Path(p) for p in paths]
    if not result:
        raise ValueError("no catalog directory given")
    return result


def check_catalog(paths) -> tuple[model.Catalog | None, list[CatalogIssue]]:
    """The catalog in paths (one directory or several) and every issue found.

    The catalog is None whenever there is an issue: a catalog is used whole or not at all.
    """
    directories = _as_paths(paths)
    services: list[model.Service] = []
    quotas = model.Quotas()
    issues: list[CatalogIssue] = []
    service_files = 0
    for directory in directories:
        try:
            names = sorted(entry.name for entry in os.scandir(directory))
        except FileNotFoundError:
            issues.append(CatalogIssue(str(directory), "", "no such directory"))
            continue
        except NotADirectoryError:
            issues.append(CatalogIssue(str(directory), "", "is not a directory"))
            continue
        except OSError as e:
            issues.append(CatalogIssue(str(directory), "", f"cannot be read: {e.strerror}"))
            continue
        for name in names:
            path = directory / name
            file = str(path)
            if name.startswith(".") or not name.endswith((SERVICE_SUFFIX, ".yml")):
                continue
            if name.endswith(".yml"):
                issues.append(CatalogIssue(file, "", "is not read: name it *.yaml"))
                continue
            if name.startswith("_"):
                if name != CATALOG_FILE:
                    issues.append(
                        CatalogIssue(
                            file, "", f"unknown catalog-wide file (the only one is {CATALOG_FILE})"
                        )
                    )
                    continue
                data, problems = read_yaml(path, file)
                if not problems:
                    found, problems = quotas_from_document(data, file=file)
                    quotas = found or quotas
                issues += problems
                continue
            service_files += 1
            data, problems = read_yaml(path, file)
            if not problems:
                service, problems = service_from_document(
                    data, file=file, directory=directory, name=name[: -len(SERVICE_SUFFIX)]
                )
                if service is not None:
                    services.append(service)
            issues += problems
    issues += _cross_file_issues(services)
    if not service_files and not issues:
        where = ", ".join(map(str, directories))
        issues.append(CatalogIssue(where, "", "no services: add one <name>.yaml file per service"))
    if issues:
        return None, issues
    services.sort(key=lambda s: (s.order, s.name))
    source = ", ".join(map(str, directories))
    return model.Catalog(services=tuple(services), quotas=quotas, source=source), []


def _cross_file_issues(services: list[model.Service]) -> list[CatalogIssue]:
    """Names defined twice and more than one default service, in file order."""
    issues = []
    first_by_name: dict[str, model.Service] = {}
    first_default = None
    for service in services:
        if service.name in first_by_name:
            other = first_by_name[service.name].source
            issues.append(
                CatalogIssue(
                    service.source, "name", f"{service.name!r} is already defined in {other}"
                )
            )
        else:
            first_by_name[service.name] = service
        if service.default:
            if first_default is None:
                first_default = service
            else:
                issues.append(
                    CatalogIssue(
                        service.source,
                        "default",
                        f"{first_default.source} is already the default (at most one may be)",
                    )
                )
    return issues


def load_catalog(paths) -> model.Catalog:
    """The catalog in paths; raises CatalogError listing every issue if there is one."""
    catalog, issues = check_catalog(paths)
    if catalog is None:
        raise CatalogError(issues)
    return catalog


def _signature(path: str) -> tuple:
    """What changes when a file is written, replaced, added or removed."""
    try:
        info = os.stat(path)
    except OSError as e:
        return (path, "missing", e.errno)
    return (path, info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_dev)


def fingerprint(paths) -> tuple:
    """The state of the files a catalog is read from, cheaply: os.stat of each entry.

    Covers every top-level entry of each directory and of its `icons/` subdirectory
    (symbolic links followed, as Kubernetes ConfigMap volumes use them). An icon kept in
    another subdirectory is read at each reload but its change alone does not trigger one.
    """
    state = []
    for directory in _as_paths(paths):
        state.append(_signature(str(directory)))
        for folder in (str(directory), os.path.join(directory, ICONS_DIR)):
            try:
                with os.scandir(folder) as entries:
                    names = sorted(e.name for e in entries if not e.name.startswith("."))
            except OSError:
                continue
            state += [_signature(os.path.join(folder, name)) for name in names]
    return tuple(state)


def _clip(text: str) -> str:
    """text on one line of at most MAX_LOGGED_LINE characters."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_LOGGED_LINE else text[: MAX_LOGGED_LINE - 3] + "..."


class CatalogSource:
    """The catalog of some directories, always the latest valid one.

    Created at start-up, it loads the catalog at once and raises `CatalogError` if that
    fails: there is no last good catalog to fall back on yet. Afterwards `current()`
    re-stats the files (a few microseconds) and reloads when anything was added, removed
    or modified. A valid new catalog replaces the old one; an invalid one is logged, one
    warning line per issue, once per change, and the last good catalog stays in use.
    """

    def __init__(
        self,
        paths,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        recheck_interval: float = 0.0,
    ):
        self.paths = _as_paths(paths)
        self.log = log or logging.getLogger("onyxia_hub.catalog")
        self.recheck_interval = recheck_interval
        self._fingerprint = fingerprint(self.paths)
        self._catalog = load_catalog(self.paths)
        self._checked = time.monotonic()

    def current(self) -> model.Catalog:
        """The catalog, reloaded first if its files changed since the last check.

        Files are checked at most every `recheck_interval` seconds: a burst of launches
        then stats the directory once rather than hundreds of times a second.
        """
        now = time.monotonic()
        if now - self._checked < self.recheck_interval:
            return self._catalog
        self._checked = now
        state = fingerprint(self.paths)
        if state == self._fingerprint:
            return self._catalog
        # Taken before reading: a change during the read is seen at the next call.
        self._fingerprint = state
        try:
            catalog, issues = check_catalog(self.paths)
        except Exception:  # a bug here must not take the hub down with it
            self.log.exception("Catalog reload failed; keeping the catalog in use")
            return self._catalog
        if catalog is None:
            self._log_issues(issues)
        else:
            self._catalog = catalog
            names = ", ".join(s.name for s in catalog.services)
            self.log.info("Catalog reloaded: %d services (%s)", len(catalog.services), names)
        return self._catalog

    def _log_issues(self, issues: list[CatalogIssue]) -> None:
        """One warning per issue, bounded in number and length."""
        count = len(issues)
        self.log.warning(
            "Catalog not reloaded, %d problem%s; the previous catalog stays in use:",
            count,
            "s" if count != 1 else "",
        )
        for issue in issues[:MAX_LOGGED_ISSUES]:
            self.log.warning("  %s", _clip(str(issue)))
        if count > MAX_LOGGED_ISSUES:
            self.log.warning("  ... and %d more", count - MAX_LOGGED_ISSUES)
