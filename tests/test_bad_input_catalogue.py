"""Bad input, across the three command lines: one ``error:`` line, exit 1, no traceback, nothing lost.

Each case of the catalogue (``tests/bad_input_cases.py``) runs a command line
(its ``python -m`` entry point, and again as its ``mltoolkit`` subcommand) on a
case folder holding an *earlier result*
(files a previous run left in the work directory) and checks:

* exit code 1 and no ``Traceback`` anywhere in stdout or stderr;
* failures found before the flow starts (most cases, run against an API that does
  not answer, so a case that wrongly reached the flow fails loudly): exactly one
  stderr line, ``error: ...``, and the case folder unchanged, file by file;
* failures found while a flow runs (a spec step reading a bad dataset...): Prefect
  may log first, but the last stderr line is the one ``error:`` line, and every
  file that was there before is unchanged (the run's own bookkeeping under
  ``_mltoolkit/`` and new step folders aside).

Work directory paths with spaces and non-ASCII letters are not bad input: the
last tests check that all three command lines succeed with one.

The cases that fail before the flow starts only pay for process start-up, so they
run a few at a time (``_offline_outcome``); each still reports as its own test.
Through ``mltoolkit`` they run in this process with typer's ``CliRunner``; the
cases found during a run go through ``python -m flows.cli`` (marked slow: the same
flows, another entry point).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.bad_input_cases import CASES, CLIS, EARLIER, SUBCOMMANDS, Case
from tests.constants import MOON, SPECS

OFFLINE = sorted(name for name, case in CASES.items() if not case.during_run)
DURING_RUN = sorted(name for name, case in CASES.items() if case.during_run)


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, str]
    after: dict[str, str]
    workdir: Path


def _substitute(text: str, folder: Path, workdir: Path) -> str:
    return (
        text.replace("@TMP@", str(folder))
        .replace("@WORK@", str(workdir))
        .replace("@SPECS@", str(SPECS))
        .replace("@SPEC@", str(folder / "spec"))
        .replace("@MOON@", str(MOON))
    )


def _prepare(case: Case, folder: Path) -> tuple[list[str], Path]:
    """Create the case's files and work directory; return the command's arguments and the workdir."""
    workdir = {
        "folder": folder / "work dir",
        "file": folder / "work dir",
        "under-file": folder / "a file" / "work dir",
    }[case.workdir]
    if case.prepped:
        from mltoolkit.analysis.fun_with_ml import data_prep

        assert data_prep.main(["--dataset", str(MOON), "--outfile", str(folder / "prepped.pkl")]) == 0
    for relative, text in case.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_substitute(text, folder, workdir))
    if case.workdir == "folder":
        for relative, text in EARLIER.items():
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            (workdir / relative).write_text(text)
    elif case.workdir == "file":
        workdir.write_text("an earlier result that is a file\n")
    else:
        workdir.parent.write_text("a file where a folder would have to be\n")
    return [_substitute(arg, folder, workdir) for arg in case.args], workdir


def _entry_point(case: Case, entry: str) -> list[str]:
    """``python`` arguments that start the case's command line through ``entry``."""
    return ["-m", CLIS[case.cli]] if entry == "python -m" else ["-m", "flows.cli", SUBCOMMANDS[case.cli]]


def _run_case(
    name: str, folder: Path, env: dict[str, str], run_cli: Callable, snapshot: Callable, entry: str = "python -m"
) -> Outcome:
    case = CASES[name]
    args, workdir = _prepare(case, folder)
    before = snapshot(folder)
    result = run_cli([*_entry_point(case, entry), *args], env, cwd=folder, timeout=300)
    return Outcome(result, before, snapshot(folder), workdir)


_offline_outcomes: dict[str, Outcome] = {}


def _offline_outcome(case: str, request: pytest.FixtureRequest, env: dict[str, str]) -> Outcome:
    """The outcome of an offline case; the first call runs every selected one, a few at a time."""
    if case not in _offline_outcomes:
        selected = {
            item.callspec.params["case"]
            for item in request.session.items
            if item.module is request.module
            and getattr(item, "callspec", None)
            and item.originalname == "test_bad_input_before_the_flow"
        }
        pending = sorted((selected | {case}) - set(_offline_outcomes))
        factory = request.getfixturevalue("tmp_path_factory")
        run_cli, snapshot = request.getfixturevalue("run_cli"), request.getfixturevalue("snapshot")
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(_run_case, name, factory.mktemp("bad-input"), env, run_cli, snapshot)
                for name in pending
            }
            _offline_outcomes.update({name: future.result() for name, future in futures.items()})
    return _offline_outcomes[case]


def test_catalogue_is_large_and_covers_every_cli():
    assert len(CASES) >= 40
    assert {case.cli for case in CASES.values()} == set(CLIS) == set(SUBCOMMANDS)
    assert {case.workdir for case in CASES.values()} == {"folder", "file", "under-file"}


@pytest.mark.parametrize("case", OFFLINE)
def test_bad_input_before_the_flow(case, request, flow_cli, offline_env):
    outcome = _offline_outcome(case, request, offline_env)
    line = flow_cli.assert_error_line(outcome.result, CASES[case].fragment)
    assert "flow run failed" not in line  # caught as bad input, not as a crash of the run
    assert outcome.after == outcome.before, "the failed command changed files"


@pytest.mark.parametrize("case", OFFLINE)
def test_bad_input_before_the_flow_through_mltoolkit(case, flow_cli, snapshot, offline_env, tmp_path, monkeypatch):
    from flows.cli.app import app

    args, _ = _prepare(CASES[case], tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [SUBCOMMANDS[CASES[case].cli], *args], env=offline_env)
    assert isinstance(result.exception, SystemExit), result.exception  # not an exception that escaped
    line = flow_cli.assert_error_line(result, CASES[case].fragment)
    assert "flow run failed" not in line
    assert snapshot(tmp_path) == before, "the failed command changed files"


@pytest.mark.parametrize(
    "entry", ["python -m", pytest.param("mltoolkit", marks=pytest.mark.slow)], ids=["python-m", "mltoolkit"]
)
@pytest.mark.parametrize("case", DURING_RUN)
def test_bad_input_found_during_the_run(case, entry, run_cli, flow_cli, snapshot, cli_env, tmp_path):
    if "docker" in case:
        from mltoolkit.yadage.packtivity import docker_available

        if docker_available():
            pytest.skip("a Docker engine answers here: the image would be pulled, not refused")
    outcome = _run_case(case, tmp_path, cli_env, run_cli, snapshot, entry)
    flow_cli.assert_error_line(outcome.result, CASES[case].fragment, only_line=False)
    changed = {
        path: digest
        for path, digest in outcome.before.items()
        if outcome.after.get(path) != digest and "_mltoolkit/" not in path
    }
    assert not changed, f"earlier files changed: {sorted(changed)}"


# --- spaces and non-ASCII letters in work directory paths are fine --------------------------


def test_native_cli_succeeds_in_a_workdir_with_spaces_and_unicode(shared_run):
    run = shared_run("native")
    assert " " in run.workdir.name and not run.workdir.name.isascii()
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    assert "error:" not in run.result.stderr
    assert (run.workdir / "merge_and_visualize" / "ml_results.png").is_file()


def test_spec_cli_succeeds_in_a_workdir_with_spaces_and_unicode(shared_run):
    run = shared_run("seed-spec")
    assert " " in run.workdir.name and not run.workdir.name.isascii()
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    assert (run.workdir / "merge_and_visualize" / "ml_results.png").is_file()


def test_spec_step_cli_succeeds_in_a_workdir_with_spaces_and_unicode(run_cli, cli_env, tmp_path):
    workdir = tmp_path / "stép wörk ✓ dir"
    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "steps.yml#/write_step",
            str(workdir),
            "--toplevel",
            str(SPECS / "trust"),
            "-p",
            "message=grüße",
            "-p",
            "outfile={workdir}/out.txt",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == {"written": str(workdir / "out.txt")}
    assert (workdir / "out.txt").read_text(encoding="utf-8") == "grüße\n"
