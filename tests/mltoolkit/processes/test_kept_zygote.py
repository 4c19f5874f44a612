"""The kept zygote: main requests with the caller's stdio, one per lock, idle exit, retiring on changed code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltoolkit.errors import ZygoteError
from mltoolkit.processes.kept_zygote import FileStamps, fork_zygote, stop_kept_zygote
from mltoolkit.processes.lifeline import ForkedChild, stop_child
from tests.constants import REPO_ROOT

WARM_MODULE = """
import os, sys

def main(text, code):
    print(f"{text} from {os.getpid()} argv={sys.argv[1:]} env={os.environ.get('GREETING')}")
    sys.stdout.flush()
    if code:
        raise SystemExit(code)

def sleep_then_say(seconds):
    import time
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        print("interrupted")
        raise SystemExit(42)
"""

# A client process: python CLIENT SOCKET FUNCTION ARGS_JSON -> exits with the warm child's code (3 = refused).
CLIENT = """
import json, sys
from mltoolkit.processes.zygote_wire import run_with_callers_stdio
socket_path, function, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
request = {"kind": "main", "function": function, "args": args, "kwargs": {}, "argv": ["prog", "--flag"]}
code = run_with_callers_stdio(socket_path, request)
print("client: refused" if code is None else f"client: {code}", file=sys.stderr)
sys.exit(77 if code is None else code)
"""


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _environment(extra_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(extra_path)])
    env["GREETING"] = "hi"
    return env


class KeptZygote:
    """A kept zygote subprocess serving ``folder/socket`` with ``warm_module`` preloaded."""

    def __init__(self, folder: Path, idle_timeout: float = 60.0, starter_pid: int | None = None) -> None:
        self.folder = folder
        (folder / "warm_module.py").write_text(WARM_MODULE)
        self.socket = folder / "socket"
        self.lock = folder / "lock"
        self.env = _environment(folder)
        config = {
            "socket": str(self.socket),
            "lock": str(self.lock),
            "preload": ["warm_module"],
            "sys_path": [str(folder), *sys.path],
            "idle_timeout": idle_timeout,
            "watch": [str(folder / "settings.toml")],
            "starter_pid": starter_pid,
        }
        self.log = open(folder / "log", "ab")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mltoolkit.processes.kept_zygote", json.dumps(config)],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def ready(self) -> bool:
        return "ready" in (self.folder / "log").read_text()

    def client(self, function: str, *args: object, extra_env: dict[str, str] | None = None, **options):
        env = {**self.env, **(extra_env or {})}
        command = [sys.executable, "-c", CLIENT, str(self.socket), function, json.dumps(list(args))]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, **options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[KeptZygote]:
    server = KeptZygote(tmp_path)
    try:
        assert _wait_for(server.ready), (tmp_path / "log").read_text()
        yield server
    finally:
        server.stop()


def test_file_stamps_notice_a_changed_a_new_and_a_removed_file(tmp_path: Path):
    kept_file, new_file = tmp_path / "kept.py", tmp_path / "new.toml"
    kept_file.write_text("x = 1\n")
    stamps = FileStamps([str(kept_file), str(new_file)])
    assert stamps.first_changed() is None
    new_file.write_text("")
    assert stamps.first_changed() == str(new_file)
    new_file.unlink()
    assert stamps.first_changed() is None
    kept_file.write_text("x = 22\n")
    assert stamps.first_changed() == str(kept_file)
    kept_file.unlink()
    assert stamps.first_changed() == str(kept_file)


def test_a_main_request_runs_with_the_callers_streams_environment_and_exit_code(kept: KeptZygote):
    result = kept.client("warm_module:main", "hello", 3, extra_env={"PWD": "/elsewhere"})  # PWD may differ
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("hello from ")
    assert "argv=['--flag'] env=hi" in result.stdout
    child_pid = int(result.stdout.split()[2])
    assert child_pid not in (kept.process.pid, os.getpid())
    assert "serving process" in (kept.folder / "log").read_text()


def test_a_caller_with_another_environment_is_refused(kept: KeptZygote):
    result = kept.client("warm_module:main", "hello", 0, extra_env={"GREETING": "hello"})
    assert (result.returncode, result.stderr.strip()) == (77, "client: refused")


def test_an_unknown_function_is_refused_and_the_caller_runs_it_itself(kept: KeptZygote):
    result = kept.client("warm_module:no_such_function")
    assert (result.returncode, result.stderr.strip()) == (77, "client: refused")
    assert kept.process.poll() is None  # still serving


def test_ctrl_c_of_the_caller_reaches_the_warm_child(kept: KeptZygote):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(kept.socket), "warm_module:sleep_then_say", "[30]"],
        env=kept.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _wait_for(lambda: (kept.folder / "log").read_text().count("serving process") == 1)
    time.sleep(0.5)  # the child is sleeping
    client.send_signal(signal.SIGINT)
    stdout, stderr = client.communicate(timeout=30)
    assert (client.returncode, stdout.strip()) == (42, "interrupted"), stderr


def test_a_second_kept_zygote_for_the_same_lock_exits_at_once(kept: KeptZygote):
    second = KeptZygote(kept.folder)
    try:
        assert second.process.wait(timeout=30) == 0
    finally:
        second.stop()
    assert kept.process.poll() is None


def test_changed_code_retires_it_the_caller_runs_cold_and_a_successor_can_start(kept: KeptZygote):
    module = kept.folder / "warm_module.py"
    module.write_text(WARM_MODULE + "\n# changed\n")
    result = kept.client("warm_module:main", "hello", 0)
    assert (result.returncode, result.stderr.strip()) == (77, "client: refused")
    assert "retiring: " + str(module) in (kept.folder / "log").read_text()
    assert kept.process.wait(timeout=30) == 0  # no child was running: it ends at once
    assert not kept.socket.exists()
    assert stop_kept_zygote(str(kept.lock)) is False  # the lock is free


def test_a_changed_watched_file_retires_it_too(kept: KeptZygote):
    (kept.folder / "settings.toml").write_text("[api]\n")
    assert kept.client("warm_module:main", "hello", 0).returncode == 77
    assert kept.process.wait(timeout=30) == 0


def test_it_exits_when_idle_and_stop_ends_a_busy_one(tmp_path: Path):
    for name in ("idle", "busy"):
        (tmp_path / name).mkdir()
    idle = KeptZygote(tmp_path / "idle", idle_timeout=1.0)
    busy = KeptZygote(tmp_path / "busy", idle_timeout=60.0)
    try:
        assert idle.process.wait(timeout=60) == 0
        assert not idle.socket.exists()
        assert _wait_for(busy.ready)
        assert stop_kept_zygote(str(busy.lock)) is True
        assert busy.process.wait(timeout=30) != 0
    finally:
        idle.stop()
        busy.stop()


def test_it_waits_for_the_command_that_started_it(tmp_path: Path):
    starter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = KeptZygote(tmp_path, starter_pid=starter.pid)
    try:
        time.sleep(1.5)
        assert not server.socket.exists() and server.process.poll() is None
        starter.kill()
        starter.wait()
        assert _wait_for(server.ready)
        assert server.client("warm_module:main", "hello", 0).returncode == 0
    finally:
        starter.kill()
        server.stop()


def test_fork_zygote_refuses_a_process_with_threads():
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        with pytest.raises(ZygoteError, match="several threads"):
            fork_zygote()
    finally:
        release.set()
        thread.join()


def test_fork_zygote_serves_calls_with_this_process_modules_and_stops(tmp_path: Path):
    script = textwrap.dedent(
        """
        import atexit, os, sys
        import warm_module
        from mltoolkit.processes.kept_zygote import fork_zygote
        from mltoolkit.processes.zygote import run_script_via_zygote
        atexit.register(os._exit, 7)  # this process's exit handler: not the zygote's children's
        running = fork_zygote()
        client = running.client()
        child = client.call("os:getpid")
        preloaded = client.call("sys:modules.__contains__", "warm_module")
        script_code = run_script_via_zygote(running.socket_path, [sys.argv[1]])
        running.stop()
        print(child != os.getpid(), preloaded, script_code, running.process.poll() is not None)
        print(os.path.exists(running.socket_path))
        atexit.unregister(os._exit)
        """
    )
    (tmp_path / "warm_module.py").write_text(WARM_MODULE)
    (tmp_path / "script.py").write_text("print('script ran')\n")
    command = [sys.executable, "-c", script, str(tmp_path / "script.py")]
    result = subprocess.run(command, env=_environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["script", "ran", "True", "True", "0", "True", "False"], result.stderr


def test_stop_child_stops_a_forked_child():
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    child = ForkedChild(pid)
    assert child.poll() is None
    stop_child(child, grace=5)
    assert child.returncode == -signal.SIGTERM
