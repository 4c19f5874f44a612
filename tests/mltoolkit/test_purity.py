"""mltoolkit is the pure layer: it imports neither Prefect nor Typer."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys

import mltoolkit

FORBIDDEN = ("prefect", "typer")


def _module_names() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(mltoolkit.__path__, prefix="mltoolkit.")
        # step scripts and the zygote's client run as scripts, not imported modules
    )


def test_no_forbidden_import_statements(repo_root):
    offenders = []
    for path in (repo_root / "mltoolkit").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(repo_root)}:{node.lineno} imports {name}")
    assert offenders == []


def test_importing_every_module_loads_neither_prefect_nor_typer():
    modules = [name for name in _module_names() if not name.startswith("mltoolkit.analysis.fun_with_ml.")]
    assert "mltoolkit.analysis.ml" in modules and "mltoolkit.analysis.pipeline" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
