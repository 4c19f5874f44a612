"""The warden: every process of a command's steps dies with the command, however the command dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from mltoolkit.processes import warden
from mltoolkit.processes.warden import OWNER_VARIABLE, RUN_TOKEN_VARIABLE, find_tagged, step_environment, stop_tagged
from tests.constants import REPO_ROOT

# A command that starts a step from a worker thread (as Prefect's runner does), the step
# leaving a background child, a grandchild and a process in a session of its own.
_OWNER = """
import os, sys, threading, time
from pathlib import Path
from mltoolkit.yadage.packtivity.execute import execute
folder = Path(sys.argv[1])
script = "sleep 611 & (sleep 612; true) & setsid sleep 613 & echo ready; wait"
def step():
    execute(["sh", "-c", script], cwd=folder, env=dict(os.environ), log_path=folder / "log",
            timeout=None, on_output=lambda line: print(line, flush=True), label="step")
threading.Thread(target=step, daemon=True).start()
time.sleep(600)
"""


def _sleeps(*seconds: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"]
        if cmdline and cmdline[-1] in seconds and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_every_process_of_a_step_dies_when_its_command_is_killed(tmp_path, signum):
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert owner.stdout.readline().strip() == "ready"
        assert _wait_until(lambda: len(_sleeps("611", "612", "613")) == 3)
        owner.send_signal(signum)
        owner.wait(timeout=30)
        assert _wait_until(lambda: not _sleeps("611", "612", "613")), _sleeps("611", "612", "613")
    finally:
        owner.kill()
        owner.wait()
        for process in _sleeps("611", "612", "613"):
            process.kill()


def test_each_step_gets_its_own_tag_under_one_token_and_the_warden_carries_none():
    first, second = step_environment({}), step_environment({"A": "1"})
    token = first[OWNER_VARIABLE].rsplit(".", 1)[0]
    assert second == {"A": "1", OWNER_VARIABLE: second[OWNER_VARIABLE]}
    assert second[OWNER_VARIABLE].rsplit(".", 1)[0] == token and second[OWNER_VARIABLE] != first[OWNER_VARIABLE]
    keeper = warden._warden
    assert keeper is not None and OWNER_VARIABLE not in psutil.Process(keeper.process.pid).environ()


def test_stop_tagged_takes_processes_that_ignore_sigterm(tmp_path):
    environment = {**os.environ, OWNER_VARIABLE: "feedc0de.1"}
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 614 & wait"], env=environment)
    try:
        assert _wait_until(lambda: len(find_tagged("feedc0de")) == 2)
        assert stop_tagged("feedc0de", grace=0.5) >= 2
        assert not find_tagged("feedc0de")
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait()


def test_a_worker_process_has_a_warden_of_its_own_under_the_runs_token():
    parent_tag = step_environment({})[OWNER_VARIABLE]
    token = parent_tag.rsplit(".", 1)[0]
    pid = os.fork()  # as a process pool's worker is started
    if pid == 0:
        try:
            worker_token = step_environment({})[OWNER_VARIABLE].rsplit(".", 1)[0]
            os._exit(0 if worker_token == f"{token}.{os.getpid()}" and warden._warden is not None else 3)
        except BaseException:
            os._exit(4)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_a_step_passes_no_run_token_on():
    environment = step_environment({RUN_TOKEN_VARIABLE: "outer", "A": "1"})
    assert RUN_TOKEN_VARIABLE not in environment and environment["A"] == "1"
