"""The direction of imports: app (CLI, receiver) → deployments → flows → tasks → core.

Read from the source (every import statement, also those inside functions), so a lazy import
that goes the wrong way is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crmbooks", "deployments", "flows", "tasks", "mappings")


def project_modules() -> dict[str, Path]:
    """Dotted module name → file, for the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path) -> set[str]:
    """Every absolute module name an import statement of this file names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def layer(module: str) -> str:
    """app, deployments, flows, tasks, mappings, or core (crmbooks outside crmbooks.app)."""
    top = module.split(".")[0]
    if top == "crmbooks":
        return "app" if module == "crmbooks.app" or module.startswith("crmbooks.app.") else "core"
    return top


IMPORTS = {module: imported_names(path) for module, path in project_modules().items()}


def imports_of(importer_layer: str, imported_layers: set[str]) -> list[tuple[str, str]]:
    """(module, imported name) pairs from one layer into any of the given layers."""
    return sorted((module, name) for module, names in IMPORTS.items()
                  if layer(module) == importer_layer
                  for name in names if name.split(".")[0] in PACKAGES
                  and layer(name) in imported_layers)


def test_the_core_imports_no_app_deployments_flows_or_tasks():
    assert imports_of("core", {"app", "deployments", "flows", "tasks"}) == []


def test_only_the_app_imports_the_app():
    for importer in ("deployments", "flows", "tasks", "mappings"):
        assert imports_of(importer, {"app"}) == [], importer


def test_cli_commands_import_only_common():
    """A command module may use crmbooks.app.cli.common, never another command module."""
    wrong = []
    for module, names in IMPORTS.items():
        if not module.startswith("crmbooks.app.cli.") or module.endswith("__main__"):
            continue
        for name in names:
            if name.startswith("crmbooks.app.cli.") and not name.startswith(
                    "crmbooks.app.cli.common"):
                wrong.append((module, name))
    assert wrong == []


def test_the_schedules_control_is_core_and_imports_no_deployment():
    assert not any(n.split(".")[0] == "deployments" for n in IMPORTS["crmbooks.schedules"])
