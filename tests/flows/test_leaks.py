"""Nothing a run starts outlives it: a killed command, Ctrl-C, and what a finished step left behind.

The spec ``tests/specs/leaks`` has a step ('hold') that leaves a background sleep
and a grandchild running and waits for a gate file. Every process the command
starts carries a tag in its environment (``process_tags``), so the tests can see
whether any of them is still running afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.constants import MOON, REPO_ROOT, SPECS

SPEC = SPECS / "leaks"


def _spec_command(workdir: Path, gate: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "flows.spec_workflow", str(workdir), "workflow.yml", "inputs.yml"),
        *("--toplevel", str(SPEC), "-p", f"gate={gate}"),
    ]


def _start_and_wait_for(argv: list[str], env: dict[str, str], log: Path, started: Path) -> subprocess.Popen:
    """Start a command; return once the file ``started`` exists (its output so far goes to ``log``)."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal signals: the test sends its own
        )
    deadline = time.monotonic() + 180
    while not started.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process


def _start_and_wait_for_hold(workdir: Path, gate: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start the spec command; return once 'hold' runs."""
    return _start_and_wait_for(_spec_command(workdir, gate), env, log, workdir / "hold" / "started.txt")


def _assert_nothing_left(process_tags, tag: str) -> None:
    leftovers = process_tags.wait_until_gone(tag, timeout=30)
    assert not leftovers, [(process.pid, process.cmdline()) for process in leftovers]


def _resume(flow_cli, run_records, workdir: Path, gate: Path, env: dict[str, str]) -> None:
    """The same command again, gate open: the finished step is reused, the stopped one runs."""
    gate.write_text("open\n")
    result = flow_cli.check(flow_cli.spec(env, workdir, "leaks", "-p", f"gate={gate}"))
    assert "completed: 2 steps" in result.stdout
    assert run_records.states(workdir) == {"first": "CACHED", "hold": "COMPLETED"}
    assert (workdir / "hold" / "hold.txt").read_text() == "hello\nheld\n"


@pytest.mark.slow
def test_a_killed_command_takes_its_steps_with_it_and_the_next_run_resumes(
    flow_cli, run_records, process_tags, cli_env, tmp_path
):
    env, tag = process_tags.tagged_env(cli_env)
    workdir, gate = tmp_path / "workdir", tmp_path / "gate"
    with process_tags.reaping(tag):
        command = _start_and_wait_for_hold(workdir, gate, env, tmp_path / "killed.log")
        running = {process.pid for process in process_tags.processes(tag)}
        assert len(running) >= 4  # the command, the warden, the step's shell and what it left running
        os.kill(command.pid, signal.SIGKILL)  # the command alone: its helpers are in other sessions
        command.wait()
        _assert_nothing_left(process_tags, tag)
        _resume(flow_cli, run_records, workdir, gate, env)
        _assert_nothing_left(process_tags, tag)


@pytest.mark.slow
def test_ctrl_c_stops_the_running_step_at_once_releases_the_lock_and_the_run_resumes(
    flow_cli, run_records, process_tags, cli_env, tmp_path
):
    env, tag = process_tags.tagged_env(cli_env)
    workdir, gate = tmp_path / "workdir", tmp_path / "gate"
    log = tmp_path / "interrupted.log"
    with process_tags.reaping(tag):
        command = _start_and_wait_for_hold(workdir, gate, env, log)
        command.send_signal(signal.SIGINT)
        # 'hold' would wait for its gate for ever: only a cancelled run ends here
        assert command.wait(timeout=120) == 130, log.read_text()
        errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
        assert errors == [
            "error: interrupted (Ctrl-C): the running steps were stopped and the flow run cancelled; "
            "finished steps are kept: run the same command again to resume"
        ], log.read_text()
        assert "Traceback" not in log.read_text()
        _assert_nothing_left(process_tags, tag)
        _resume(flow_cli, run_records, workdir, gate, env)  # takes the lock: it was released


def test_what_a_finished_step_left_running_is_stopped_with_it(flow_cli, run_records, process_tags, cli_env, tmp_path):
    env, tag = process_tags.tagged_env(cli_env)
    workdir, gate = tmp_path / "workdir", tmp_path / "gate"
    gate.write_text("open\n")
    with process_tags.reaping(tag):
        flow_cli.check(flow_cli.spec(env, workdir, "leaks", "-p", f"gate={gate}"))
        assert run_records.states(workdir) == {"first": "COMPLETED", "hold": "COMPLETED"}
        # 'hold' left a background sleep and a grandchild, both holding its output open
        _assert_nothing_left(process_tags, tag)


@pytest.mark.slow
def test_ctrl_c_stops_a_native_step_in_the_warm_workers_and_the_run_resumes(
    flow_cli, run_records, process_tags, cli_env, tmp_path
):
    env, tag = process_tags.tagged_env(cli_env)
    workdir, gate, waiting = tmp_path / "workdir", tmp_path / "gate", tmp_path / "waiting"
    gated = {
        "name": "gated",
        "estimator": "tests.slow_classifiers.GatedClassifier",
        "params": {"gate": str(gate), "waiting": str(waiting), "limit": 3600},
    }
    args = ("-p", f"dataset={MOON}", "-p", f"classifiers={json.dumps([gated])}")
    log = tmp_path / "interrupted.log"
    with process_tags.reaping(tag):
        argv = [sys.executable, "-m", "flows.ml_workflow", *args, "--workdir", str(workdir)]
        command = _start_and_wait_for(argv, env, log, waiting)
        command.send_signal(signal.SIGINT)
        assert command.wait(timeout=120) == 130, log.read_text()  # the step would wait an hour
        assert log.read_text().splitlines()[-1].startswith("error: interrupted (Ctrl-C)"), log.read_text()
        _assert_nothing_left(process_tags, tag)
        gate.write_text("open\n")
        flow_cli.check(flow_cli.native(env, workdir, *args))
        assert run_records.states(workdir) == {
            "data_prep": "CACHED",
            "classification_0": "COMPLETED",
            "merge_and_visualize": "COMPLETED",
        }
