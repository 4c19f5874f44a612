"""The warm zygote: calls, errors, timeouts, the ``python`` shim, and nothing outliving its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mltoolkit.errors import MLToolkitError, ZygoteError, ZygoteTimeout
from mltoolkit.processes.zygote import RunningZygote, ZygoteClient, start_zygote, write_python_shim
from tests.constants import REPO_ROOT


@pytest.fixture(scope="module")
def zygote() -> Iterator[RunningZygote]:
    """A zygote with nothing preloaded (starts fast)."""
    running = start_zygote([])
    try:
        yield running
    finally:
        running.stop()


def _processes_running(argument: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if argument in (process.info["cmdline"] or []) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _environment_of(pid: int) -> dict[str, str]:
    """A process's environment (as it started): a step whose environment is the zygote's runs warm."""
    return psutil.Process(pid).environ()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_call_returns_the_value_computed_in_a_forked_child(zygote):
    client = zygote.client()
    assert client.call("operator:add", 2, 3) == 5
    assert client.call("os:getppid") == zygote.process.pid


def test_a_call_reraises_the_childs_exception(zygote):
    with pytest.raises(ValueError, match="math domain error"):
        zygote.client().call("math:sqrt", -1)


def test_a_call_past_its_timeout_is_killed_and_raises_zygote_timeout(zygote):
    with pytest.raises(ZygoteTimeout, match=r"did not finish within 0\.5 s") as caught:
        zygote.client().call_with_timeout("time:sleep", (60,), {}, 0.5)
    assert isinstance(caught.value, MLToolkitError)


def test_an_unreachable_zygote_is_a_zygote_error(tmp_path):
    with pytest.raises(ZygoteError, match="cannot reach the zygote"):
        ZygoteClient(str(tmp_path / "no-socket")).call("operator:add", 1, 2)


def test_the_python_shim_runs_scripts_warm_and_quotes_its_paths(zygote, tmp_path):
    # A socket path and a shim folder that a bare '...' would break: a quote and spaces.
    odd = tmp_path / 'it\'s a "folder" $HOME'
    odd.mkdir()
    socket_link = odd / "zygote socket"
    socket_link.symlink_to(zygote.socket_path)
    shim = write_python_shim(odd / "bin", str(socket_link))
    script = tmp_path / "probe.py"
    script.write_text("import os, sys\nprint(os.getppid(), sys.argv[1:])\nsys.exit(3)\n")
    env = {**_environment_of(zygote.process.pid), "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}

    warm = subprocess.run(["python", str(script), "a b"], env=env, capture_output=True, text=True, timeout=60)
    assert (warm.returncode, warm.stdout.strip()) == (3, f"{zygote.process.pid} ['a b']")
    cold = subprocess.run(["python", "-c", "import sys; print(sys.flags.isolated)"], env=env, capture_output=True)
    assert (cold.returncode, cold.stdout.strip()) == (0, b"0")  # not a zygote child: the real interpreter


_OWNER = """
import sys, threading, time
from mltoolkit.processes.zygote import start_zygote
zygote = start_zygote([])
client = zygote.client()
seconds = str(float(sys.stdin.readline()))  # not in our own argv, where it would be found too
threading.Thread(target=client.call, args=("subprocess:call", ["sleep", seconds]), daemon=True).start()
print(zygote.process.pid, flush=True)
time.sleep(120)
"""


def test_the_zygote_and_everything_it_runs_die_when_its_owner_is_killed(tmp_path):
    marker = "417.25"  # a sleep started inside a zygote call, found by its argument
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        owner.stdin.write(marker + "\n")
        owner.stdin.flush()
        zygote_pid = int(owner.stdout.readline())
        assert _wait_for(lambda: len(_processes_running(marker)) == 1)
        worker = _processes_running(marker)[0].ppid()  # the forked child running the call
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        assert _wait_for(lambda: _gone(zygote_pid) and _gone(worker) and not _processes_running(marker))
    finally:
        owner.kill()
        owner.wait()


def test_stopping_the_zygote_kills_what_its_children_started():
    marker = "418.75"
    running = start_zygote([])
    client = running.client()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.call("subprocess:call", ["sleep", marker])
        except BaseException as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert _wait_for(lambda: len(_processes_running(marker)) == 1)
    finally:
        running.stop()
    caller.join(timeout=30)
    assert _wait_for(lambda: not _processes_running(marker))
    assert len(errors) == 1 and isinstance(errors[0], ZygoteError)
    assert not Path(running.socket_path).exists()
