"""Every module stays small enough to read in one sitting, every function short.

The limits are the project's rule (developers' guide, architecture issue): a module
of at most 400 lines, a function of at most 60. The largest ones are printed with
``pytest -s`` so a growing module is noticed before it crosses the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.constants import REPO_ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: The code the rule covers: the toolkit, its Prefect wiring, deployments and benchmarks.
CHECKED_FOLDERS = ("mltoolkit", "flows", "deployments", "bench")


def _python_files() -> list[Path]:
    files = [path for folder in CHECKED_FOLDERS for path in sorted((REPO_ROOT / folder).rglob("*.py"))]
    return [path for path in files if "__pycache__" not in path.parts]


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    ]


def test_the_checked_folders_hold_code():
    assert len(_python_files()) > 50


@pytest.mark.parametrize("path", _python_files(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_module_is_at_most_400_lines(path: Path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO_ROOT)} has {lines} lines; split it by concern"


def test_every_function_is_at_most_60_lines():
    functions = [item for path in _python_files() for item in _functions(path)]
    functions.sort(key=lambda item: item[1], reverse=True)
    print("\nlargest functions:", *(f"  {lines:3d} {name}" for name, lines in functions[:10]), sep="\n")
    too_long = [f"{name} ({lines} lines)" for name, lines in functions if lines > MAX_FUNCTION_LINES]
    assert too_long == [], "functions over 60 lines: " + "; ".join(too_long)
