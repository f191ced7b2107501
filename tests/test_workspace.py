"""The workspace keeps its shape: services are independent packages that never import each other."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["consent", "case", "meeting", "notify", "projection"]


def imported_modules(package_dir: Path) -> set[str]:
    modules: set[str] = set()
    for source in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_each_service_and_contracts_is_its_own_installable_package() -> None:
    for folder in [*(f"services/{s}" for s in SERVICES), "contracts", "runtime"]:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        package = project["name"].replace("-", "_")
        assert (ROOT / folder / "src" / package / "__init__.py").exists(), folder


def test_no_service_imports_another_service() -> None:
    for service in SERVICES:
        others = {f"stafett_{other}" for other in SERVICES if other != service}
        imported = imported_modules(ROOT / "services" / service)
        assert not imported & others, f"{service} imports {imported & others}"


def test_libraries_never_import_services() -> None:
    services = {f"stafett_{s}" for s in SERVICES}
    for library in ["runtime", "contracts"]:
        assert not imported_modules(ROOT / library / "src") & services, library
