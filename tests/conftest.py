"""Test-wide set-up and fixtures: an isolated Prefect home, one Prefect API server per session,
and the helpers every test of a command line or a flow run shares.

Pure tests never touch Prefect. Tests that run flows (in-process or as CLI
subprocesses) use the session-scoped ``prefect_api`` fixture: one
``prefect_test_harness`` server for the whole run, whose URL subprocesses get
through ``PREFECT_API_URL`` (``cli_env``). The helpers:

* ``run_cli`` runs ``python ARGS`` as a subprocess; ``flow_cli`` builds the command
  lines of the flows and checks how they ended (``check``, ``assert_error_line``);
* ``run_records`` reads what a run left in ``WORKDIR/_mltoolkit/run.json``;
* ``snapshot`` digests a folder, to prove a failed command changed nothing;
* ``python_holding_lock`` starts another process that holds a work directory's lock;
* ``shared_run`` gives the session's one native run and one seed-spec run, which
  several modules only read (each made on first use).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.constants import MOON, NATIVE_CLASSIFIERS, REPO_ROOT, SPECS

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mltoolkit-tests-"))

# Must be set before anything imports prefect.
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["MLTOOLKIT_API_IDLE_TIMEOUT"] = "0"
os.environ["MLTOOLKIT_CACHE"] = str(_SESSION_DIR / "download-cache")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)


def _subprocess_env(api_url: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PREFECT_API_URL"] = api_url
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return environment


# --- Prefect and the environments of command-line subprocesses ---------------------------


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the session; returns its API URL (also set in the env)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def session_cli_env(prefect_api: str) -> dict[str, str]:
    """``cli_env`` for session- and module-scoped fixtures (do not change it)."""
    return _subprocess_env(prefect_api)


@pytest.fixture
def cli_env(session_cli_env: dict[str, str]) -> dict[str, str]:
    """Environment for CLI subprocesses: the session's Prefect API, no kept-alive servers."""
    return dict(session_cli_env)


@pytest.fixture
def offline_env() -> dict[str, str]:
    """Environment for CLI subprocesses that must fail before touching Prefect's API."""
    return _subprocess_env("http://127.0.0.1:9/api")  # discard port: nothing answers


# --- running command lines ---------------------------------------------------------------


def _run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(args, env, cwd=None, timeout=300)``: ``python ARGS`` as a subprocess (text mode)."""
    return _run_cli


class FlowCommands:
    """The flows' command lines as subprocesses, and how their outcomes are checked."""

    @staticmethod
    def native(env: dict[str, str], workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``python -m flows.ml_workflow --workdir WORKDIR ARGS...``."""
        return _run_cli(["-m", "flows.ml_workflow", "--workdir", str(workdir), *args], env, timeout=timeout)

    @staticmethod
    def spec(
        env: dict[str, str],
        workdir: Path,
        case: str | Path,
        *args: str,
        inputs: bool | Path = True,
        timeout: float = 300,
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
        return _run_cli([*command, "--toplevel", str(toplevel), *args], env, timeout=timeout)

    @staticmethod
    def native_args(workdir: Path, classifiers: list[Any] | None = None, *extra: str) -> list[str]:
        """``python -m flows.ml_workflow`` arguments for a run on the moon data (default: the quick classifiers)."""
        return [
            *("-m", "flows.ml_workflow", "-p", f"dataset={MOON}"),
            *("-p", f"classifiers={json.dumps(classifiers or NATIVE_CLASSIFIERS)}"),
            *("--workdir", str(workdir), *extra),
        ]

    @staticmethod
    def seed_spec_args(workdir: Path, *extra: str) -> list[str]:
        """``python -m flows.spec_workflow`` arguments for the seed spec (its inputs file, offline)."""
        return [
            *("-m", "flows.spec_workflow", str(workdir), "workflow.yml", "inputs.yml"),
            *("--toplevel", str(SPECS / "seed_parallel"), *extra),
        ]

    @staticmethod
    def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        """``result`` if the command succeeded; otherwise fail with its output."""
        assert result.returncode == 0, (
            f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
        return result

    @staticmethod
    def assert_error_line(result: Any, *fragments: str, only_line: bool = True) -> str:
        """The command failed with exit 1, no traceback, and ``error: ...`` as its (last or only) stderr line.

        ``result``: a ``CompletedProcess`` or a typer ``CliRunner`` result. ``only_line``:
        the error must be the only line on stderr (failures found before the flow
        starts); otherwise Prefect's log lines may come first.
        """
        code = getattr(result, "returncode", getattr(result, "exit_code", None))
        output = result.stdout + result.stderr
        assert code == 1, (code, result.stdout[-3000:], result.stderr[-3000:])
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


@pytest.fixture(scope="session")
def flow_cli() -> FlowCommands:
    """The flows' command lines (:class:`FlowCommands`)."""
    return FlowCommands()


# --- what runs leave behind ----------------------------------------------------------------


class RunRecords:
    """Reading ``WORKDIR/_mltoolkit/run.json``."""

    @staticmethod
    def read(workdir: Path) -> dict[str, Any]:
        """The run record."""
        return json.loads((Path(workdir) / "_mltoolkit" / "run.json").read_text())

    @staticmethod
    def by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The record's steps keyed by name (names must be unique)."""
        steps = {step["name"]: step for step in record["steps"]}
        assert len(steps) == len(record["steps"]), "step names in run.json are not unique"
        return steps

    @staticmethod
    def by_id(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The record's steps keyed by step id (completion order varies between runs)."""
        steps = {step["id"]: step for step in record["steps"]}
        assert len(steps) == len(record["steps"]), "step ids in run.json are not unique"
        return steps

    def states(self, workdir: Path) -> dict[str, str]:
        """``{step name: state}``."""
        return {name: step["state"] for name, step in self.by_name(self.read(workdir)).items()}

    def summary(self, record: dict[str, Any]) -> dict[str, tuple]:
        """``{id: (scope, stage, index, name, workdir, parameters, published, state)}`` for exact comparison."""
        keys = ("scope", "stage", "index", "name", "workdir", "parameters", "published", "state")
        return {step_id: tuple(step[key] for key in keys) for step_id, step in self.by_id(record).items()}

    @staticmethod
    def assert_outputs_match_files(workdir: Path, record: dict[str, Any]) -> int:
        """Every completed or cached step lists outputs, each an existing file with that sha256; return the count."""
        from mltoolkit.workdir.artifacts import sha256_file

        checked = 0
        for step in record["steps"]:
            if step["state"] not in ("COMPLETED", "CACHED"):
                continue
            assert step["outputs"], f"step {step['name']} has no outputs in run.json"
            for relative, digest in step["outputs"].items():
                path = Path(relative) if os.path.isabs(relative) else Path(workdir) / relative
                assert path.is_file(), (step["name"], relative)
                assert sha256_file(path) == digest, (step["name"], relative)
                checked += 1
        return checked


@pytest.fixture(scope="session")
def run_records() -> RunRecords:
    """Readers of run records (:class:`RunRecords`)."""
    return RunRecords()


def _snapshot(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if not root.exists():
        return found
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = f"<link to {os.readlink(path)}>"
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            found[relative] = "<dir>"
    return found


@pytest.fixture(scope="session")
def snapshot() -> Callable[[Path], dict[str, str]]:
    """``snapshot(root)``: ``{relative path: sha256}`` of every file below ``root`` (folders and links marked)."""
    return _snapshot


def _python_holding_lock(workdir: Path, env: dict[str, str], note: str) -> subprocess.Popen:
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


@pytest.fixture(scope="session")
def python_holding_lock() -> Callable[[Path, dict[str, str], str], subprocess.Popen]:
    """``python_holding_lock(workdir, env, note)``: a Python process that has taken ``workdir``'s lock
    (recording ``note`` as its command) and sleeps; the caller kills it."""
    return _python_holding_lock


# --- runs several modules only read ----------------------------------------------------------


@dataclass(frozen=True)
class SharedRun:
    """A finished command and its work directory (callers must not change it: copy it)."""

    workdir: Path
    result: subprocess.CompletedProcess


#: Folder names of the shared runs: a space and non-ASCII letters on purpose.
_SHARED_RUNS: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "native": ("native run ü", lambda workdir: FlowCommands.native_args(workdir)),
    "seed-spec": ("seed spec ∂ run", lambda workdir: FlowCommands.seed_spec_args(workdir)),
}


@pytest.fixture(scope="session")
def shared_run(session_cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SharedRun]:
    """``shared_run(kind)``: the session's one ``kind`` run ("native" or "seed-spec"), made on first use."""
    made: dict[str, SharedRun] = {}
    lock = threading.Lock()

    def shared(kind: str) -> SharedRun:
        with lock:
            if kind not in made:
                folder, make_args = _SHARED_RUNS[kind]
                workdir = tmp_path_factory.getbasetemp() / "shared-runs" / folder
                if workdir.exists():
                    shutil.rmtree(workdir)
                made[kind] = SharedRun(workdir, _run_cli(make_args(workdir), session_cli_env))
            return made[kind]

    return shared
