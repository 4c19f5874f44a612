"""Helpers shared by the end-to-end tests of runners, caching and resuming.

Both command lines run as subprocesses against the session's Prefect test server
(``cli_env``); these helpers build their command lines and read what a run left
behind: ``run.json`` step states, output file digests, classifier scores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltoolkit.workdir.artifacts import load_pickle, sha256_file
from tests.conftest import REPO_ROOT, run_cli

__all__ = [
    "SEED_CLASSIFIERS",
    "SPECS",
    "check",
    "cli_environment",
    "copy_workdir",
    "native",
    "output_digests",
    "reaping",
    "run_record",
    "spec",
    "spec_scores",
    "states",
    "tagged_env",
    "tagged_processes",
    "wait_until_gone",
]

SPECS = REPO_ROOT / "tests" / "specs"
SEED_CLASSIFIERS = ["nearest_neighbours", "linear_svm", "rbf_svm", "gaussian_process", "decision_tree"]
#: Environment variable that marks every process a test's command starts (children inherit it).
TAG_VARIABLE = "MLTOOLKIT_TEST_PROCESS_TAG"


def cli_environment(api_url: str) -> dict[str, str]:
    """What the ``cli_env`` fixture gives, for module-scoped fixtures (``cli_env`` is per test)."""
    environment = dict(os.environ)
    environment["PREFECT_API_URL"] = api_url
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return environment


def native(env: dict[str, str], workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m flows.ml_workflow --workdir WORKDIR ARGS...``."""
    return run_cli(["-m", "flows.ml_workflow", "--workdir", str(workdir), *args], env, timeout=timeout)


def spec(
    env: dict[str, str], workdir: Path, case: str | Path, *args: str, inputs: bool | Path = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m flows.spec_workflow WORKDIR workflow.yml [INPUTS] --toplevel SPECS/CASE ARGS...``.

    ``inputs``: ``True`` for the case's ``inputs.yml``, ``False`` for none, or a file.
    """
    toplevel = case if isinstance(case, Path) else SPECS / case
    command = ["-m", "flows.spec_workflow", str(workdir), "workflow.yml"]
    if inputs is True:
        command.append("inputs.yml")
    elif inputs:
        command.append(str(inputs))
    return run_cli([*command, "--toplevel", str(toplevel), *args], env, timeout=timeout)


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``result`` if the command succeeded; otherwise fail with its output."""
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return result


def run_record(workdir: Path) -> dict[str, Any]:
    """``WORKDIR/_mltoolkit/run.json``."""
    return json.loads((workdir / "_mltoolkit" / "run.json").read_text())


def states(workdir: Path) -> dict[str, str]:
    """``{step name: state}`` from the run record (names are unique in these workflows)."""
    steps = run_record(workdir)["steps"]
    named = {step["name"]: step["state"] for step in steps}
    assert len(named) == len(steps), "step names are not unique"
    return named


#: What a run writes about itself (rewritten by every run), as opposed to step outputs.
RUN_RECORDS = frozenset({"_mltoolkit", "ro-crate-metadata.json"})


def output_digests(workdir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file the steps produced (the run's own records excluded)."""
    return {
        path.relative_to(workdir).as_posix(): sha256_file(path)
        for path in sorted(workdir.rglob("*"))
        if path.is_file() and path.relative_to(workdir).parts[0] not in RUN_RECORDS
    }


def spec_scores(workdir: Path, count: int) -> dict[str, float]:
    """``{classifier: test score}`` read from the seed spec's ``classification_<i>/*.pkl``."""
    scores: dict[str, float] = {}
    for index in range(count):
        pickles = sorted((workdir / f"classification_{index}").glob("*.pkl"))
        assert len(pickles) == 1, pickles
        result = load_pickle(pickles[0])
        scores[result.name] = result.score
    return scores


def tagged_env(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """A copy of ``env`` with a fresh tag that every process started with it inherits."""
    tag = uuid.uuid4().hex
    return {**env, TAG_VARIABLE: tag}, tag


def tagged_processes(tag: str) -> list[Any]:
    """Live processes (psutil) whose environment carries ``tag``."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if (
                process.pid != os.getpid()
                and process.environ().get(TAG_VARIABLE) == tag
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def wait_until_gone(tag: str, timeout: float) -> list[Any]:
    """Wait up to ``timeout`` s for every process tagged ``tag`` to end; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = tagged_processes(tag)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@contextlib.contextmanager
def reaping(tag: str) -> Iterator[None]:
    """Kill whatever is still running under ``tag`` when the block ends (a failed test leaks nothing)."""
    try:
        yield
    finally:
        for process in tagged_processes(tag):
            with contextlib.suppress(Exception):
                process.kill()


def copy_workdir(source: Path, target: Path) -> Path:
    """Copy a work directory (records, cache and all) to ``target``, keeping file times."""
    shutil.copytree(source, target, symlinks=True)
    return target
