""".dockerignore: run outputs, caches and version control stay out; everything the image needs stays in."""

from __future__ import annotations

import pytest

from mltoolkit.analysis.fun_with_ml import SCRIPT_NAMES
from tests.constants import REPO_ROOT
from tests.docker.dockerfile_reader import is_ignored


def test_matcher_follows_docker_rules() -> None:
    patterns = ["**/__pycache__", "workdir*", "*.egg-info", "docs", "!docs/keep.md", "deploy/*", "!deploy/certs"]
    assert is_ignored("mltoolkit/__pycache__/x.pyc", patterns)
    assert is_ignored("__pycache__", patterns)
    assert is_ignored("workdir_2/data_prep/prepped_data.pkl", patterns)
    assert is_ignored("mltoolkit.egg-info/PKG-INFO", patterns)
    assert not is_ignored("mltoolkit/analysis/data.py", patterns)
    assert not is_ignored("sub/workdir", patterns)  # a root pattern does not match deeper
    assert is_ignored("docs/a.md", patterns)
    assert not is_ignored("docs/keep.md", patterns)
    assert is_ignored("deploy/prefect.yaml", patterns)
    assert not is_ignored("deploy/certs/proxy.crt", patterns)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        "workdir/data_prep/prepped_data.pkl",
        "workdir_test/_mltoolkit/run.json",
        "workdirs/seed-analysis/scores.json",
        "out/workdir/merge_and_visualize/ml_results.png",
        "mltoolkit/__pycache__/ml.cpython-311.pyc",
        "flows/__pycache__/ml_workflow.cpython-311.pyc",
        "mltoolkit.egg-info/SOURCES.txt",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        "build/lib/mltoolkit/analysis/ml.py",
        ".venv/bin/python",
        "deployments/prefect.yaml",
        "tests/conftest.py",
    ],
)
def test_excludes_vcs_workdirs_caches_and_what_the_image_does_not_use(path: str) -> None:
    assert is_ignored(path)


def test_keeps_every_file_of_the_packages() -> None:
    # Every module and data file of mltoolkit and flows, including the mltoolkit.workdir
    # package (a `**/workdir` pattern once dropped it and the image failed to import).
    package_files = [
        path.relative_to(REPO_ROOT).as_posix()
        for package in ("mltoolkit", "flows")
        for path in (REPO_ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    assert "mltoolkit/workdir/layout.py" in package_files
    assert [path for path in package_files if is_ignored(path)] == []


def test_keeps_the_rest_of_what_the_image_needs() -> None:
    for path in [
        "pyproject.toml",
        "README.md",
        "inputs.yml",
        "data/moon.txt",
        "deployments/ca-certificates/README.md",
        "deployments/ca-certificates/proxy.crt",
        *(f"mltoolkit/analysis/fun_with_ml/{name}" for name in SCRIPT_NAMES),
    ]:
        assert not is_ignored(path), path
