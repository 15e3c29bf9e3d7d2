"""The layers of onyxia_hub, enforced by reading every module's imports (AST, no import).

Data enters at the top (a catalog file, a user's choice) and leaves at the bottom (a pod,
a process); docs/architecture.md draws it. What each rule keeps out:

- services (any package that builds on the service skeleton `onyxia_hub.service`: the
  portal, the courses...) sit on top: nothing under them (catalog, choices, plan, quotas,
  providers, spawners, db, the value rules) may import one, so a service's code can change
  without touching a launch, and the store layer never depends on who reads it;
- above the plan, nothing knows where a server runs: catalog, choices, plan, quotas,
  providers, db and the value rules import no spawner, no embedded one-machine code, no
  authenticator;
- the store layer (`db`) stands on nothing of the hub but the variable names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "onyxia_hub"

BELOW_SERVICES = (
    "providers",
    "spawners",
    "catalog",
    "db",
    "choices",
    "plan",
    "quotas",
    "fields",
    "gitvalues",
    "quantities",
    "envnames",
    "errors",
)
ABOVE_PLAN = ("catalog", "choices", "plan", "quotas", "providers", "db", "fields", "gitvalues")
WHERE_IT_RUNS = ("spawners", "embedded", "auth", "cli")
DB_MAY_IMPORT = ("db", "envnames", "errors")
ALWAYS_SERVICES = ("portal", "service", "courses")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(root: Path, path: Path) -> set[str]:
    """Every onyxia_hub module path imports, absolute (relative imports resolved), at any
    depth of the file (a late import inside a function counts as much as one at the top)."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from . import x` may import the module x: count both
            targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t == root.name or t.startswith(root.name + ".")}
    return found


def top(module: str) -> str:
    """The first-level part under onyxia_hub: 'providers' for onyxia_hub.providers.git."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def service_packages(root: Path, graph: dict[str, set[str]]) -> set[str]:
    """The fixed names, and every package with a module that imports the skeleton."""
    found = set(ALWAYS_SERVICES)
    for module, targets in graph.items():
        if any(top(t) == "service" for t in targets) and top(module) not in BELOW_SERVICES:
            if (root / top(module)).is_dir():
                found.add(top(module))
    return found


def violations(root: Path) -> list[str]:
    """'module imports target: why' for every import that crosses a layer the wrong way."""
    graph = {module_name(root, p): imports_of(root, p) for p in sorted(root.rglob("*.py"))}
    services = service_packages(root, graph)
    found = []
    for module, targets in sorted(graph.items()):
        layer = top(module)
        first: dict[str, str] = {}  # one line per layer reached: `from x import y` names two
        for target in sorted(targets, key=len):
            first.setdefault(top(target), target)
        for into, target in sorted(first.items()):
            if into == layer:
                continue
            if layer in BELOW_SERVICES and into in services:
                found.append(f"{module} imports {target}: a service, above it")
            elif layer in ABOVE_PLAN and into in WHERE_IT_RUNS:
                found.append(f"{module} imports {target}: where servers run, below the plan")
            elif layer == "db" and into and into not in DB_MAY_IMPORT:
                found.append(f"{module} imports {target}: the store layer stands on nothing")
    return found


def test_no_import_crosses_a_layer_the_wrong_way():
    assert violations(PACKAGE) == []


def test_the_portal_builds_on_the_skeleton_and_is_found_as_a_service():
    graph = {module_name(PACKAGE, p): imports_of(PACKAGE, p) for p in PACKAGE.rglob("*.py")}
    assert "onyxia_hub.service.app" in graph["onyxia_hub.portal.app"]
    assert {"portal", "service"} <= service_packages(PACKAGE, graph)


@pytest.mark.parametrize(
    "module, source, why",
    [
        ("providers/git/leak.py", "from ...portal.store import Store\n", "a service"),
        ("db/leak.py", "def f():\n    from onyxia_hub.portal import app\n", "a service"),
        ("choices.py", "from .spawners.local import spawner\n", "where servers run"),
        ("plan.py", "import onyxia_hub.embedded.up\n", "where servers run"),
        ("quotas.py", "from .classroom import views\n", "a service"),  # found by its imports
        ("db/engine.py", "from ..catalog import model\n", "stands on nothing"),
        ("spawners/x.py", "from .. import portal\n", "a service"),
    ],
    ids=["provider-portal", "db-late-import", "choices-spawner", "plan-embedded",
         "new-service", "db-catalog", "spawner-from-dot"],
)  # fmt: skip
def test_each_crossing_is_caught(tmp_path, module, source, why):
    """The checker on a small tree of the same shape: clean, then with one bad import."""
    root = tmp_path / "onyxia_hub"
    for path in ("__init__.py", "choices.py", "plan.py", "quotas.py", "db/__init__.py",
                 "db/engine.py", "providers/__init__.py", "providers/git/__init__.py",
                 "spawners/__init__.py", "catalog/__init__.py", "portal/__init__.py",
                 "service/__init__.py", "classroom/__init__.py"):  # fmt: skip
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("")
    (root / "classroom" / "views.py").write_text("from ..service import app\n")
    (root / "db" / "engine.py").write_text("from ..envnames import PORTAL\n")
    assert violations(root) == []
    (root / module).parent.mkdir(parents=True, exist_ok=True)
    with open(root / module, "a") as f:
        f.write(source)
    [found] = violations(root)
    assert why in found
