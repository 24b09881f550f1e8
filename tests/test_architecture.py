"""The import rules that keep the architecture visible (issue 13): services meet only on
the bus and the store.

* ``services/core`` knows no service and no process plumbing: it imports only itself;
* ``services/runtime`` (process plumbing) imports only core;
* a service (ingest, scorer, api, alerts) imports core, runtime and itself, never another
  service or a launcher;
* only the launchers (``embedded.py``, ``cli.py``, ``asgi.py``) compose services, and only
  they import ``embedded.py``.

Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[1] / "services"
PACKAGES = ("ingest", "scorer", "api", "alerts")
LAUNCHERS = ("embedded", "cli", "asgi")


def owner(path: Path) -> str:
    """``core``, ``runtime``, a service's name, or a launcher's (top-level module) name."""
    parts = path.relative_to(SERVICES).parts
    return parts[0] if len(parts) > 1 else path.stem


def imports(path: Path) -> set[str]:
    """The ``services.*`` modules ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.startswith("services.")}


def allowed(source: str, target: str) -> bool:
    if source == target:
        return True
    if source == "core":
        return False
    if source == "runtime":
        return target == "core"
    if source in PACKAGES:
        return target in ("core", "runtime")
    if source == "__init__":
        return False
    return (source in LAUNCHERS and target != "embedded") or source in ("embedded", "cli")


def violations() -> list[str]:
    out = []
    for path in sorted(SERVICES.rglob("*.py")):
        source = owner(path)
        for module in sorted(imports(path)):
            target = module.split(".")[1]
            if not allowed(source, target):
                out.append(f"{path.relative_to(SERVICES.parent)} imports {module}")
    return out


def test_services_meet_only_on_the_bus_and_the_store() -> None:
    found = violations()
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        ("core", "core", True),
        ("core", "scorer", False),
        ("core", "runtime", False),
        ("runtime", "core", True),
        ("runtime", "api", False),
        ("scorer", "core", True),
        ("scorer", "runtime", True),
        ("scorer", "api", False),
        ("ingest", "embedded", False),
        ("alerts", "cli", False),
        ("embedded", "scorer", True),
        ("cli", "embedded", True),
        ("asgi", "alerts", True),
        ("asgi", "embedded", False),
    ],
)
def test_the_rules_themselves(source: str, target: str, ok: bool) -> None:
    assert allowed(source, target) is ok
