"""Warm commands: a flow command runs in a fork of a kept process that has Prefect imported.

A small run spends most of its time importing Prefect and the toolkit (~1.8 s
of a two-step spec's ~2.4 s). Like the kept API server, our command lines keep a
warm process (a :mod:`kept zygote <mltoolkit.processes.kept_zygote>` that has
imported :mod:`flows.startup.warm_preload`) and hand each flow command to a fork
of it, with this process's standard streams, working folder, environment and
umask; this process waits, forwards Ctrl-C and exits with the command's code.

* The first command runs cold and starts the kept process, which imports
  once that command has ended; the next commands run warm.
* A kept process serves one interpreter, ``sys.path``, working folder and
  environment (up to ``PATH`` and the shell's own variables): commands that
  differ get their own, and a command it cannot run exactly as a fresh one
  would runs cold (never a guess).
* It never runs changed code: when a file of any module it imported (the
  toolkit, Prefect, any library) or one of Prefect's settings files changed,
  the command runs cold and the kept process ends; the next one is fresh.
* It ends after ``MLTOOLKIT_API_IDLE_TIMEOUT`` seconds without a command (the
  kept API server's setting; ``0`` keeps nothing). ``MLTOOLKIT_WARM_COMMANDS=0``
  turns warm commands off. Its log: ``mltk-commands-<uid>/<key>.log`` in the
  temporary folder.

This module must not import Prefect.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mltoolkit.processes.warm_script import FREE_VARIABLES

__all__ = [
    "ENABLE_VARIABLE",
    "KeptProcessPaths",
    "kept_process_paths",
    "run_in_kept_process",
    "stop_kept_processes",
    "wait_until_ready",
    "warm_commands_enabled",
]

#: ``0`` turns warm commands off.
ENABLE_VARIABLE = "MLTOOLKIT_WARM_COMMANDS"

#: What the kept process imports before it forks commands.
PRELOAD = ["flows.startup.warm_preload"]


@dataclasses.dataclass(frozen=True)
class KeptProcessPaths:
    """Where the kept process of one key listens, locks and logs."""

    socket: Path
    lock: Path
    log: Path


def warm_commands_enabled() -> bool:
    """Whether flow commands may run in a kept process (on unless turned off or nothing is kept)."""
    from flows.startup.temporary_server import idle_timeout

    return os.environ.get(ENABLE_VARIABLE, "").strip() != "0" and idle_timeout() > 0


def _kept_process_key() -> str:
    """What a kept process must share with a command to run it: interpreter, paths, folder, environment."""
    environment = sorted((name, value) for name, value in os.environ.items() if name not in FREE_VARIABLES)
    identity = [sys.executable, sys.version, sys.path, os.getcwd(), os.getuid(), environment]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def _folder() -> Path:
    """This user's folder of kept processes: created private, and refused unless it is.

    Raises:
        PermissionError: it is not a folder of this user that only this user can use (another
            user could then serve our commands, and receive their streams and environment).
    """
    folder = Path(tempfile.gettempdir()) / f"mltk-commands-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    status = os.lstat(folder)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise PermissionError(f"{folder} is not a private folder of this user; warm commands are off")
    return folder


def kept_process_paths(key: str | None = None) -> KeptProcessPaths:
    """The paths of the kept process for this process's interpreter, paths, folder and environment.

    Raises:
        PermissionError: the folder of kept processes is not private (see :func:`_folder`).
    """
    key = key or _kept_process_key()
    folder = _folder()
    return KeptProcessPaths(folder / f"{key}.sock", folder / f"{key}.lock", folder / f"{key}.log")


def _watched_settings_files() -> list[str]:
    """Prefect's settings files: a kept process read them when it imported Prefect."""
    from flows.startup.prefect_settings import settings_files

    return [str(path) for path in settings_files()]


def _start_kept_process(paths: KeptProcessPaths) -> None:
    """Start the kept process in the background; it imports once this process has ended."""
    from flows.startup.temporary_server import idle_timeout

    config = {
        "socket": str(paths.socket),
        "lock": str(paths.lock),
        "preload": PRELOAD,
        "sys_path": sys.path,
        "idle_timeout": idle_timeout(),
        "watch": _watched_settings_files(),
        "starter_pid": os.getpid(),
    }
    with open(paths.log, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "mltoolkit.processes.kept_zygote", json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # kept: not in the command's process group
        )


def run_in_kept_process(function: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Run ``function(*args, **kwargs)`` as a warm command and exit with its code; return to run it here.

    Returns when warm commands are off, when no kept process runs yet (one is
    started for the next command) and when the kept process cannot run this one
    exactly as a fresh process would.
    """
    if not warm_commands_enabled():
        return
    from mltoolkit.processes.zygote_wire import run_with_callers_stdio

    try:
        paths = kept_process_paths()
    except PermissionError:
        return
    request = {"kind": "main", "function": function, "args": args, "kwargs": kwargs, "argv": sys.argv}
    try:
        code = run_with_callers_stdio(str(paths.socket), request)
    except ConnectionError:
        code = None
    if code is not None:
        sys.exit(code)
    # none runs, or it cannot run this command (it ends if its code changed): one for the next command
    _start_kept_process(paths)


def stop_kept_processes() -> int:
    """Stop every kept command process of this user (each only saves imports); how many were running."""
    from mltoolkit.processes.kept_zygote import stop_kept_zygote

    try:
        locks = sorted(_folder().glob("*.lock"))
    except PermissionError:
        return 0
    stopped = 0
    for lock in locks:
        stopped += stop_kept_zygote(str(lock))
        for leftover in (lock, lock.with_suffix(".sock")):
            leftover.unlink(missing_ok=True)
    return stopped


def wait_until_ready(timeout: float = 120.0) -> bool:
    """Wait until the kept process for this process's environment serves commands; whether it does.

    For benchmarks and tests: after a first (cold) command, the kept process
    imports once that command has ended.
    """
    from mltoolkit.errors import ZygoteError
    from mltoolkit.processes.zygote import ZygoteClient

    socket_path = str(kept_process_paths().socket)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(socket_path):
            with contextlib.suppress(ZygoteError):
                ZygoteClient(socket_path).call_with_timeout("os:getpid", (), {}, max(1.0, deadline - time.monotonic()))
                return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    # ``python -m flows.startup.warm_commands wait``: run like a command (same sys.path), so the same key
    if sys.argv[1:] != ["wait"]:
        print("usage: python -m flows.startup.warm_commands wait", file=sys.stderr)
        sys.exit(2)
    ready = wait_until_ready()
    print(f"{'ready' if ready else 'not ready'}; log: {kept_process_paths().log}")
    sys.exit(0 if ready else 1)
