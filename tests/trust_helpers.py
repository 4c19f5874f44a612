"""Helpers shared by the trust tests (integrity, locking, retries, provenance, bad input).

The expensive part of these tests is running a flow: a fresh command-line
process per run. Runs that several test modules only *read* (a native run and a
seed-spec run) are done once per session, on demand, by :func:`shared_run`;
tests that change a work directory copy it or make their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT, run_cli

SPECS = REPO_ROOT / "tests" / "specs"
MOON = REPO_ROOT / "data" / "moon.txt"

#: Classifiers of the shared native run: three of the seed's, the quick ones.
NATIVE_CLASSIFIERS = ["nearest_neighbours", "rbf_svm", "decision_tree"]
#: Folder names of the shared runs: a space and non-ASCII letters on purpose.
NATIVE_DIR = "native run ü"
SEED_SPEC_DIR = "seed spec ∂ run"


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``root`` (folders as ``<dir>``)."""
    found: dict[str, str] = {}
    if not root.exists():
        return found
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            found[relative] = "<dir>"
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_error_line(result: subprocess.CompletedProcess, *fragments: str, only_line: bool = True) -> str:
    """The command failed with exit 1, no traceback, and ``error: ...`` as its (last or only) stderr line.

    ``only_line``: the error must be the only line on stderr (failures found before
    the flow starts); otherwise Prefect's log lines may come first.
    """
    output = result.stdout + result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    assert "Traceback" not in output, output[-5000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    if only_line:
        assert len(lines) == 1, result.stderr[-5000:]
    line = lines[-1]
    assert line.startswith("error: "), result.stderr[-5000:]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def run_record(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "_mltoolkit" / "run.json").read_text())


def steps_by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in record["steps"]}


def assert_outputs_match_files(workdir: Path, record: dict[str, Any]) -> int:
    """Every ``outputs`` entry of every completed step names an existing file with that sha256."""
    checked = 0
    for step in record["steps"]:
        if step["state"] not in ("COMPLETED", "CACHED"):
            continue
        assert step["outputs"], f"step {step['name']} has no outputs in run.json"
        for relative, digest in step["outputs"].items():
            path = Path(relative) if os.path.isabs(relative) else workdir / relative
            assert path.is_file(), (step["name"], relative)
            assert sha256_of(path) == digest, (step["name"], relative)
            checked += 1
    return checked


class _Canary:
    """Unpickling this creates ``path``: proof that a file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_pickle(canary: Path) -> bytes:
    """A pickle whose loading creates ``canary`` (it must never be loaded)."""
    return pickle.dumps(_Canary(canary))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def native_args(workdir: Path, classifiers: list[Any] | None = None, *extra: str) -> list[str]:
    """``python -m flows.ml_workflow`` arguments for a run on the moon data."""
    return [
        "-m",
        "flows.ml_workflow",
        "-p",
        f"dataset={MOON}",
        "-p",
        f"classifiers={json.dumps(classifiers or NATIVE_CLASSIFIERS)}",
        "--workdir",
        str(workdir),
        *extra,
    ]


def seed_spec_args(workdir: Path, *extra: str) -> list[str]:
    """``python -m flows.spec_workflow`` arguments for the seed spec (its inputs file, offline)."""
    return [
        "-m",
        "flows.spec_workflow",
        str(workdir),
        "workflow.yml",
        "inputs.yml",
        "--toplevel",
        str(SPECS / "seed_parallel"),
        *extra,
    ]


@dataclass(frozen=True)
class SharedRun:
    workdir: Path
    result: subprocess.CompletedProcess


_shared: dict[str, SharedRun] = {}
_shared_lock = threading.Lock()

_SHARED_RUNS: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "native": (NATIVE_DIR, lambda workdir: native_args(workdir)),
    "seed-spec": (SEED_SPEC_DIR, lambda workdir: seed_spec_args(workdir)),
}


def shared_run(kind: str, base: Path, env: dict[str, str]) -> SharedRun:
    """The session's one ``kind`` run ("native" or "seed-spec"), made on first use under ``base``.

    Callers must not change its work directory (copy it instead).
    """
    with _shared_lock:
        if kind not in _shared:
            folder, make_args = _SHARED_RUNS[kind]
            workdir = base / "shared-runs" / folder
            if workdir.exists():
                shutil.rmtree(workdir)
            _shared[kind] = SharedRun(workdir, run_cli(make_args(workdir), env))
        return _shared[kind]


def python_holding_lock(workdir: Path, env: dict[str, str], note: str) -> subprocess.Popen:
    """A Python process that takes ``workdir``'s lock, says ``locked`` and sleeps."""
    code = (
        "import sys, time\n"
        "from mltoolkit.workdir.locking import workdir_lock\n"
        "with workdir_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(workdir), note], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process
