"""The code's layout rules that import-linter does not check: no module takes another
module's private (underscore) names, and tests share helpers through tests/support (fixtures
through conftest), never by importing another test module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crmbooks", "tasks", "flows", "deployments", "emulators", "mappings", "bench",
            "tests")
OURS = PACKAGES[:-1] + ("support",)


def python_files() -> list[Path]:
    return [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]


def private_imports(path: Path) -> list[str]:
    """`from <our module> import _name` lines of one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in OURS:
            found += [f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import "
                      f"{alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_module_imports_another_modules_private_names():
    offenders = [line for path in python_files() for line in private_imports(path)]
    assert offenders == []


def imports_of_test_modules(path: Path) -> list[str]:
    """Import lines of one file that name a test module (`test_*`) or a conftest."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [])
        found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}" for name in names
                  if name == "conftest"
                  or any(part.startswith("test_") for part in name.split("."))]
    return found


def test_no_test_module_imports_another():
    offenders = [line for path in (ROOT / "tests").rglob("*.py")
                 for line in imports_of_test_modules(path)]
    assert offenders == [], "move what is shared into tests/support"
