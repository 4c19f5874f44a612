"""jq in a helper process: answers like the jq library, and a program that never ends or eats memory is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psutil
import pytest

from mltoolkit.errors import JqProgramError, LimitExceededError
from mltoolkit.processes import bounded_jq
from mltoolkit.processes.bounded_jq import run_jq_bounded
from tests.constants import REPO_ROOT


def test_first_output_all_outputs_and_no_output():
    assert run_jq_bounded(".items[] | . * 2", {"items": [1, 2, 3]}) == 2
    assert run_jq_bounded(".items[] | . * 2", {"items": [1, 2, 3]}, multiple=True) == [2, 4, 6]
    assert run_jq_bounded("empty", {}) is None
    assert run_jq_bounded("{a: .x}", {"x": [None, True, 1.5, "é"]}) == {"a": [None, True, 1.5, "é"]}


def test_compile_and_run_errors_are_jq_program_errors():
    with pytest.raises(JqProgramError) as caught:
        run_jq_bounded(".a |||", {})
    assert caught.value.compiling and "syntax error" in str(caught.value)
    with pytest.raises(JqProgramError) as caught:
        run_jq_bounded('error("stop here")', {})
    assert not caught.value.compiling and str(caught.value) == "stop here"


@pytest.mark.parametrize("program", ["last(range(1e12))", "[repeat(.)]", "def f: f; f"])
def test_a_program_that_never_ends_is_stopped_at_the_time_limit(monkeypatch, program):
    monkeypatch.setenv("MLTOOLKIT_JQ_TIMEOUT", "1")
    with pytest.raises(LimitExceededError) as caught:
        run_jq_bounded(program, {"a": 1})
    assert "jq run time is over the limit of 1 s" in str(caught.value) and "MLTOOLKIT_JQ_TIMEOUT=" in str(caught.value)
    assert run_jq_bounded(".a", {"a": 7}) == 7  # a new helper answers the next call


def test_a_program_over_the_memory_limit_is_stopped(monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_JQ_MEMORY_MB", "200")
    monkeypatch.setenv("MLTOOLKIT_JQ_TIMEOUT", "120")
    with pytest.raises(LimitExceededError, match="jq memory is over the limit of 200 MiB"):
        run_jq_bounded("[range(1e9)]", {})
    assert run_jq_bounded(".", 3) == 3


def test_calls_from_several_threads_each_get_their_own_answer():
    results: dict[int, object] = {}

    def ask(number: int) -> None:
        results[number] = run_jq_bounded(". * 2", number)

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {number: number * 2 for number in range(20)}


_CALLER = """
import sys, time
from mltoolkit.processes import bounded_jq
bounded_jq.run_jq_bounded(".", 1)
print(bounded_jq._helper.process.pid, flush=True)
time.sleep(120)
"""


def test_the_helper_leaves_when_its_caller_is_killed():
    caller = subprocess.Popen(
        [sys.executable, "-c", _CALLER],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        helper = psutil.Process(int(caller.stdout.readline()))
        caller.kill()
        caller.wait()
        helper.wait(timeout=30)  # raises psutil.TimeoutExpired if it stays
    finally:
        caller.kill()
        caller.wait()


def test_a_forked_child_gets_its_own_helper():
    run_jq_bounded(".", 1)
    helper = bounded_jq._helper
    assert helper is not None and psutil.pid_exists(helper.process.pid)
    pid = os.fork()
    if pid == 0:  # a forked child starts its own helper, never talks to the parent's
        try:
            os._exit(0 if run_jq_bounded(". + 1", 1) == 2 and bounded_jq._helper is not helper else 3)
        except BaseException:
            os._exit(4)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert run_jq_bounded(". + 2", 1) == 3
