"""CPU used by an idle kept API server, next to a sleeping process measured in the same run.

For each process: start it, wait until it answers (servers) and settles
(``--settle`` seconds), then read its CPU time (user + system, all threads,
with its child processes) over ``--seconds`` of idleness. Printed as a
percentage of one core.

(s)  baseline: a Python process sleeping;
(k)  the kept API server our commands leave running (`python -m flows.startup.api_server`);
(w)  the kept command process (warm commands: `python -m mltoolkit.processes.kept_zygote`
     with Prefect, the flows and the step modules imported), waiting for a command;
(p)  optional, ``--compare-tree DIR``: the same from another checkout, e.g. the
     `main` branch before this work (its `flows.api_server`, started with `--port`),
     so before and after are measured side by side.

All servers share one Prefect home (the database is migrated once, first).
Target: (k) <= 0.2 % of a core (and (w), kept by the same setting). Run: `python bench/idle.py [--seconds 60]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, base_env


def _cpu_percent(pid: int, seconds: float) -> float:
    import psutil

    root = psutil.Process(pid)
    tree = [root, *root.children(recursive=True)]  # the kept server is a keeper and its app

    def cpu_seconds() -> float:
        return sum(times.user + times.system for times in (process.cpu_times() for process in tree))

    before = cpu_seconds()
    start = time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds() - before) / (time.monotonic() - start)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not answer in time")


@contextlib.contextmanager
def _server(env: dict[str, str], tree: Path, legacy: bool) -> Iterator[subprocess.Popen]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    if legacy:  # the pre-package server binds the port itself
        listener.close()
        command = [sys.executable, "-m", "flows.api_server", "--port", str(port), "--idle-timeout", "3600"]
        pass_fds: tuple[int, ...] = ()
    else:
        command = [sys.executable, "-m", "flows.startup.api_server", f"--port={port}", f"--fd={listener.fileno()}"]
        command.append("--idle-timeout=3600")
        pass_fds = (listener.fileno(),)
    env = {**env, "PYTHONPATH": str(tree)}
    process = subprocess.Popen(
        command, env=env, cwd=tree, pass_fds=pass_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not legacy:
        listener.close()
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/api", process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def _kept_command_process(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    from flows.startup.warm_commands import PRELOAD
    from mltoolkit.processes.zygote import ZygoteClient

    folder = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-kept-"))
    config = {"socket": str(folder / "socket"), "lock": str(folder / "lock"), "preload": PRELOAD}
    config.update({"sys_path": [str(REPO_ROOT), *sys.path], "idle_timeout": 3600})
    process = subprocess.Popen(
        [sys.executable, "-m", "mltoolkit.processes.kept_zygote", json.dumps(config)],
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (folder / "socket").exists():
            time.sleep(0.05)
        ZygoteClient(config["socket"]).call("os:getpid")  # answered once the preload is imported
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window measured")
    parser.add_argument("--settle", type=float, default=10.0, help="wait after the first answer")
    parser.add_argument("--compare-tree", type=Path, default=None, help="another checkout to measure too")
    arguments = parser.parse_args()
    env = base_env(Path(tempfile.mkdtemp(prefix="mltoolkit-bench-")) / "prefect-home")
    env.pop("PREFECT_SERVER_ANALYTICS_ENABLED")  # measure the servers' own defaults

    with _server(env, REPO_ROOT, legacy=False):
        pass  # migrates the shared database once, outside every measurement
    rows: list[tuple[str, float]] = []
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        time.sleep(1.0)
        rows.append(("(s) a sleeping Python process", _cpu_percent(sleeper.pid, arguments.seconds)))
    finally:
        sleeper.kill()
        sleeper.wait()
    measured = [("(k) the kept API server (this tree)", REPO_ROOT, False)]
    if arguments.compare_tree is not None:
        measured.append((f"(p) the kept API server ({arguments.compare_tree})", arguments.compare_tree, True))
    for label, tree, legacy in measured:
        with _server(env, tree, legacy) as process:
            time.sleep(arguments.settle)
            rows.append((label, _cpu_percent(process.pid, arguments.seconds)))

    with _kept_command_process(env) as process:
        time.sleep(arguments.settle)
        rows.append(("(w) the kept command process (this tree)", _cpu_percent(process.pid, arguments.seconds)))

    print(f"idle window: {arguments.seconds:g} s after {arguments.settle:g} s settling; {os.cpu_count()} cores")
    for label, percent in rows:
        print(f"{label:60s} {percent:6.3f} % of a core")
    print("target: (k) <= 0.2 % of a core")


if __name__ == "__main__":
    main()
