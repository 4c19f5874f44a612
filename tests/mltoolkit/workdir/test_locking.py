"""One run per work directory (pure: no Prefect): the holder is named, a stale lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltoolkit.errors import WorkdirError, WorkdirLockedError
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.workdir.locking import lock_holder, workdir_lock
from tests.constants import REPO_ROOT


@pytest.fixture()
def holder_env() -> dict[str, str]:
    """Environment of a helper process that imports this tree's mltoolkit."""
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT))


@pytest.fixture()
def live_holder(tmp_path: Path, holder_env: dict[str, str], python_holding_lock) -> Iterator[subprocess.Popen]:
    """Another process holding ``tmp_path``'s lock for the test."""
    process = python_holding_lock(tmp_path, holder_env, "the first run")
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def test_a_second_run_is_refused_with_one_line_naming_the_holder(tmp_path, live_holder):
    with pytest.raises(WorkdirLockedError) as raised, workdir_lock(tmp_path, "the second run"):
        pytest.fail("the block must not run while another process holds the lock")

    message = str(raised.value)
    assert isinstance(raised.value, WorkdirError)
    assert "\n" not in message
    assert message.startswith(f"workdir {tmp_path.resolve()}: in use by pid {live_holder.pid} on ")
    assert socket.gethostname() in message and " since " in message and "(the first run)" in message
    assert message.endswith("wait for that run to finish or use another --workdir")
    assert lock_holder(tmp_path)["command"] == "the first run"  # the refused run changed nothing


def test_the_holder_is_recorded_while_held_and_cleared_after(tmp_path):
    with workdir_lock(tmp_path, "a run") as stale:
        holder = lock_holder(tmp_path)
        assert stale is None
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "a run" and holder["started"] > 0

    assert WorkdirLayout(tmp_path).lock.is_file()
    assert lock_holder(tmp_path) is None


def test_the_lock_is_released_when_the_block_raises(tmp_path, holder_env, python_holding_lock):
    with pytest.raises(RuntimeError), workdir_lock(tmp_path, "a failing run"):
        raise RuntimeError("the run failed")

    process = python_holding_lock(tmp_path, holder_env, "the next run")  # it gets the lock
    process.kill()
    process.wait(timeout=30)


def test_nested_acquisitions_in_one_process_share_the_lock(tmp_path):
    with workdir_lock(tmp_path, "outer"):
        with workdir_lock(tmp_path / "." / "", "inner") as nested:
            assert nested is None
        assert lock_holder(tmp_path)["command"] == "outer"
    assert lock_holder(tmp_path) is None


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, holder_env, python_holding_lock):
    dead = python_holding_lock(tmp_path, holder_env, "a run that will be killed")
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=30)
    assert lock_holder(tmp_path)["pid"] == dead.pid  # its record survived it

    with workdir_lock(tmp_path, "the next run") as stale:
        assert stale["pid"] == dead.pid and stale["command"] == "a run that will be killed"
        assert lock_holder(tmp_path)["pid"] == os.getpid()


@pytest.mark.parametrize("content", ["", "not json", json.dumps({"pid": 1, "host": "elsewhere", "started": 0})])
def test_a_lock_file_nobody_holds_is_taken_over_whatever_it_says(tmp_path, content):
    lock = WorkdirLayout(tmp_path).lock
    lock.parent.mkdir(parents=True)
    lock.write_text(content)

    with workdir_lock(tmp_path, "the next run") as stale:
        assert lock_holder(tmp_path)["command"] == "the next run"
    assert stale == (json.loads(content) if content.startswith("{") else None)


def test_the_lock_file_is_writable_by_its_owner_only(tmp_path):
    previous = os.umask(0)  # the permissions must not depend on a permissive umask
    try:
        with workdir_lock(tmp_path, "a run"):
            mode = stat.S_IMODE(WorkdirLayout(tmp_path).lock.stat().st_mode)
    finally:
        os.umask(previous)

    assert mode == 0o644
