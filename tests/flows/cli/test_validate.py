"""``mltoolkit validate`` and ``mltoolkit spec --validate``: a spec checked, nothing run, in this process.

No Prefect server is needed or started: the check never imports Prefect. Docker
is pointed at a socket where nothing answers, so images need an image-map entry.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from tests.constants import SPECS

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/mltoolkit-test.sock", "COLUMNS": "200"}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=NO_ENGINE)


def test_a_spec_that_runs_here_prints_its_report_and_exits_0():
    result = _invoke("validate", "workflow.yml", "inputs.yml", "--toplevel", str(SPECS / "human_steps"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"workflow: {SPECS / 'human_steps' / 'workflow.yml'}"
    assert "stages (5):" in lines
    assert "  count [singlestep-stage] after: choose_window, calibration" in lines
    assert "      runs: a person (human step: the run pauses for high, low)" in lines
    assert lines[-1] == "ok: the workflow would run here"
    assert result.stderr == ""


def test_what_would_stop_a_run_is_one_error_line_each_and_exit_1(tmp_path):
    result = _invoke("validate", "workflow.yml", "inputs.yml", "--toplevel", str(SPECS / "stub_wiring"))
    assert result.exit_code == 1, result.output
    assert "  select [singlestep-stage] after: init" in result.stdout  # the report still comes first
    errors = result.stderr.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors), result.stderr
    assert any("--provide CVMFS=" in line for line in errors)
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_image_map_and_provide_make_it_pass_and_draw_draws(tmp_path):
    result = _invoke(
        "validate",
        "workflow.yml",
        "inputs.yml",
        "--toplevel",
        str(SPECS / "stub_wiring"),
        *("--image-map", "mltoolkit-test/selection=local", "--image-map", "mltoolkit-test/fitter=local"),
        *("--provide", "CVMFS=/cvmfs", "--draw", str(tmp_path / "picture")),
    )
    assert result.exit_code == 0, result.output
    assert "CVMFS (provided by --provide CVMFS=/cvmfs)" in result.stdout
    dot = (tmp_path / "picture" / "workflow.dot").read_text()
    assert "select" in dot and "combine" in dot


def test_nested_scopes_and_implied_dependencies_are_reported():
    nested = _invoke("validate", "workflow.yml", "--toplevel", str(SPECS / "nested"))
    assert nested.exit_code == 0, nested.output
    assert "      leaf in /map/inner [singlestep-stage] after: init" in nested.stdout
    implied = _invoke("validate", "workflow.yml", "--toplevel", str(SPECS / "implied_dependency"))
    assert implied.exit_code == 0, implied.output
    assert any(line.startswith("warning: ") and "'reader'" in line for line in implied.stdout.splitlines())


def test_spec_validate_checks_without_running(tmp_path):
    workdir = tmp_path / "work"
    result = _invoke(
        "spec", str(workdir), "workflow.yml", "inputs.yml", "--toplevel", str(SPECS / "human_steps"), "--validate"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ok: the workflow would run here"
    assert not workdir.exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["missing.yml", "--toplevel", str(SPECS / "human_steps")], ["missing.yml"]),
        (["steps.yml", "--toplevel", str(SPECS / "human_steps")], ["steps.yml"]),
        (["workflow.yml", "--toplevel", str(SPECS / "human_steps"), "-p", "masses"], ["-p", "masses"]),
        (["workflow.yml", "absent_inputs.yml", "--toplevel", str(SPECS / "human_steps")], ["absent_inputs.yml"]),
        (["workflow.yml", "--toplevel", str(SPECS / "human_steps"), "--provide", "=x"], ["--provide"]),
    ],
    ids=["no-such-workflow", "not-a-workflow", "bad-parameter", "no-such-inputs", "bad-provide"],
)
def test_bad_input_is_one_line_and_exit_1(flow_cli, args, fragments):
    flow_cli.assert_error_line(_invoke("validate", *args), *fragments)
