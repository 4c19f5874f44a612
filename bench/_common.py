"""Shared helpers of the benchmark scripts: timing commands, isolated Prefect homes, servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "REPO_ROOT",
    "TreeMemory",
    "base_env",
    "free_port",
    "kept_server",
    "kept_server_cpu",
    "kept_server_record",
    "load_average",
    "median_time",
    "output_on_kept_server",
    "prefect_server",
    "run_measured",
    "time_command",
]


def base_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a benchmarked command: its own Prefect home, no configured API."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLTOOLKIT_"))}
    environment.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PYTHONPATH=str(REPO_ROOT),
    )
    environment.update(extra)
    return environment


def time_command(command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> float:
    """Wall time of one run of ``command``; raises if it fails."""
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def median_time(command: list[str], env: dict[str, str], repeats: int) -> float:
    """Median wall time over ``repeats`` runs."""
    return statistics.median(time_command(command, env) for _ in range(repeats))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server(env: dict[str, str], timeout: float = 180) -> Iterator[str]:
    """Run ``prefect server start`` on 127.0.0.1; yield its API URL; stop it afterwards."""
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- the server writes to it until it stops, below
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"prefect server exited: {log.read()[-2000:]!r}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start in time")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


class TreeMemory(NamedTuple):
    """Peaks of a command's process tree, in bytes.

    ``rss_sum``: the largest sum of RSS seen; it counts memory shared by several
    processes once per process, and a child between fork and exec (every step
    spawned from the multi-threaded flow process) as a second copy of the flow
    process. ``distinct``: the largest sum of PSS (shared pages split among their
    users), leaving out those spawn copies (a single-threaded child with its
    multi-threaded parent's command line): memory the tree really holds.
    """

    rss_sum: int
    distinct: int


def _tree_memory(roots: list[Any]) -> TreeMemory:
    import psutil

    members = {member.pid: member for root in roots for member in [root, *root.children(recursive=True)]}.values()
    rss = distinct = 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            info = member.memory_full_info()
            rss += info.rss
            parent = member.parent()
            spawning = (
                parent is not None
                and member.num_threads() == 1
                and parent.num_threads() > 1
                and member.cmdline() == parent.cmdline()
            )
            distinct += 0 if spawning else info.pss
    return TreeMemory(rss, distinct)


def run_measured(
    command: list[str],
    env: dict[str, str],
    cwd: Path = REPO_ROOT,
    poll_seconds: float = 0.1,
    terminal: bool = False,
    memory: bool = True,
) -> tuple[float, TreeMemory, str]:
    """Run ``command``; return (wall seconds, peak memory of it plus all its descendants, stdout).

    A warm command runs in a fork of the kept command process of ``env``: that
    process and its descendants count as the command's too. The peaks are taken
    over the process tree while polling every ``poll_seconds``
    (psutil), so short-lived children between polls can be missed; with
    ``terminal``, its stderr is a pseudo-terminal (read and dropped), so it shows
    what it shows a person; raises if the command fails. A poll costs CPU (reading every
    member's ``smaps``: ~6 ms for one idle kept process, tens of ms for a busy tree), which
    the measured command then lacks: without ``memory`` nothing is polled (TreeMemory(0, 0)).
    """
    import psutil

    start = time.perf_counter()
    with tempfile.TemporaryFile() as output, _stderr(terminal, output) as stderr:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=stderr)
        peak = TreeMemory(0, 0)
        roots = [psutil.Process(process.pid), *kept_command_processes(env)] if memory else []
        while memory and process.poll() is None:
            with contextlib.suppress(psutil.Error):
                now = _tree_memory(roots)
                peak = TreeMemory(max(peak.rss_sum, now.rss_sum), max(peak.distinct, now.distinct))
            time.sleep(poll_seconds)
        process.wait()
        elapsed = time.perf_counter() - start
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{text[-2000:]}")
    return elapsed, peak, text


@contextlib.contextmanager
def kept_server(prefect_home: Path, **extra: str) -> Iterator[dict[str, str]]:
    """The default configuration: no ``PREFECT_API_URL``, so the first command leaves a kept server.

    Yields the environment of the commands (their own Prefect home); the kept
    server is stopped afterwards (``mltoolkit server stop``).
    """
    env = base_env(prefect_home, MLTOOLKIT_API_IDLE_TIMEOUT="900", **extra)
    try:
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "flows.cli", "server", "stop"], env=env, capture_output=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the line printed with every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def kept_server_record(env: dict[str, str]) -> Any:
    """The record of the kept server of ``env``'s Prefect home (a ``ServerRecord``), ``None`` if none."""
    from flows.startup.server_state import STATE_FILE_NAME, read_record

    return read_record(Path(env["PREFECT_HOME"]) / STATE_FILE_NAME)


def output_on_kept_server(env: dict[str, str], command: list[str], what: str) -> str:
    """Run ``command`` against the kept server of ``env``'s Prefect home, as our commands are; its output.

    Raises:
        RuntimeError: no kept server is recorded, or the command failed (``what`` names it).
    """
    record = kept_server_record(env)
    if record is None:
        raise RuntimeError(f"no kept API server recorded in {env['PREFECT_HOME']}")
    from flows.startup.temporary_server import plain_http_client_settings

    client = {**env, "PREFECT_API_URL": record.api_url, "PREFECT_API_AUTH_STRING": record.auth_string}
    # the client settings our commands use (without them, every Prefect client Prefect
    # makes in a task run loads ~150 CA certificates: ~35 ms each, ~0.3 s a cached run)
    client.update(plain_http_client_settings(record.api_url, client))
    output = subprocess.run(command, env=client, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{output.stderr[-2000:]}")
    return output.stdout


def kept_server_cpu(env: dict[str, str]) -> float:
    """CPU seconds used so far by the kept server of ``env``'s Prefect home (keeper and app), 0 if none."""
    import psutil

    record = kept_server_record(env)
    if record is None:
        return 0.0
    try:
        root = psutil.Process(record.pid)
        tree = [root, *root.children(recursive=True)]
        return sum(times.user + times.system for times in (process.cpu_times() for process in tree))
    except psutil.Error:
        return 0.0


def kept_command_processes(env: dict[str, str]) -> list[Any]:
    """The kept command processes (flows.startup.warm_commands) of ``env``'s Prefect home."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "mltoolkit.processes.kept_zygote" in (process.info["cmdline"] or []) and (
                process.environ().get("PREFECT_HOME") == env.get("PREFECT_HOME")
            ):
                found.append(process)
    return found


def wait_for_warm_commands(env: dict[str, str], cwd: Path = REPO_ROOT) -> None:
    """After a warm-up command: wait until the kept command process it started serves commands."""
    command = [sys.executable, "-m", "flows.startup.warm_commands", "wait"]
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"no kept command process: {result.stdout}{result.stderr[-2000:]}")


@contextlib.contextmanager
def _stderr(terminal: bool, output: Any) -> Iterator[Any]:
    """Where a measured command's stderr goes: with its stdout, or a pseudo-terminal drained by a thread."""
    if not terminal:
        yield subprocess.STDOUT
        return
    import pty
    import threading

    leader, follower = pty.openpty()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(leader, 65536):
                pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield follower
    finally:
        os.close(follower)  # the reader sees EOF (EIO) once the command has exited
        reader.join(timeout=5)
        os.close(leader)
