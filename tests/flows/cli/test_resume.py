"""``mltoolkit resume``: a person answers a paused spec run from another terminal.

The spec command runs as a subprocess against the session's Prefect server;
``mltoolkit resume WORKDIR -p ...`` (also a subprocess) answers its human
steps. Wrong answers are refused with one line and exit 1, and the run keeps
waiting for a right one.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.constants import REPO_ROOT, SPECS
from tests.flows.test_human_steps import paused_run

CASE = SPECS / "human_steps"


def _resume(run_cli, env, *args: str):
    return run_cli(["-m", "flows.cli", "resume", *args], env, timeout=120)


def test_a_paused_run_is_answered_from_the_command_line(prefect_api, run_cli, cli_env, flow_cli, run_records, tmp_path):
    workdir = (tmp_path / "a run").resolve()  # a space on purpose
    command = [sys.executable, "-m", "flows.spec_workflow", str(workdir), "workflow.yml", "inputs.yml"]
    log = tmp_path / "run.log"  # a file, not a pipe: nobody reads the run's output while it waits
    with log.open("w") as output:
        run = subprocess.Popen(
            [*command, "--toplevel", str(CASE)], env=cli_env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        seen: set[str] = set()
        paused_run(workdir, seen)
        shown = flow_cli.check(_resume(run_cli, cli_env, str(workdir), "--show"))
        assert "Open the histogram file" in shown.stdout and "-p high=...  (required)" in shown.stdout
        flow_cli.assert_error_line(_resume(run_cli, cli_env, str(workdir), "-p", "low=120"), "high", "-p high=VALUE")
        flow_cli.assert_error_line(
            _resume(run_cli, cli_env, str(workdir), "-p", "low=1", "-p", "high=2", "-p", "width=3"), "-p width"
        )
        answered = flow_cli.check(_resume(run_cli, cli_env, str(workdir), "-p", "low=120", "-p", "high=130"))
        assert "resumed flow run" in answered.stdout
        paused_run(workdir, seen)  # the second human step: sign_off
        (workdir / "sign_off" / "summary.txt").write_text("four in the window\n")
        flow_cli.check(_resume(run_cli, cli_env, str(workdir)))
        run.wait(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    said = log.read_text()
    assert run.returncode == 0, said[-3000:]
    assert (
        f"mltoolkit resume '{workdir}' -p high=VALUE -p low=VALUE" in said and "waits for a person" in said
    )  # how to answer
    steps = run_records.by_name(run_records.read(workdir))
    assert steps["choose_window"]["published"] == {"low": 120, "high": 130}
    assert steps["choose_window"]["human"]["answer"] == {"low": 120, "high": 130}
    assert (workdir / "count" / "counted.txt").read_text() == "4 in [120, 130] (calibration 1.5)\n"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["/nonexistent/mltoolkit-run"], ["RUN", "neither a folder nor a flow run id"]),
        ([str(uuid.UUID(int=7))], ["not found on the Prefect API"]),
        (["{here}"], ["no paused run of this folder"]),
        (["{here}", "-p", "low"], ["low"]),
    ],
    ids=["no-such-folder", "unknown-run-id", "nothing-paused", "malformed-value"],
)
def test_bad_input_is_one_line_and_exit_1(prefect_api, run_cli, cli_env, flow_cli, tmp_path, args, fragments):
    args = [str(tmp_path) if arg == "{here}" else arg for arg in args]
    flow_cli.assert_error_line(_resume(run_cli, cli_env, *args), *fragments)
