"""The temporary Prefect API server our command lines start: a small keeper and the app.

``python -m flows.startup.api_server`` is the process a command starts and
records (see :mod:`flows.startup.temporary_server`). It imports nothing heavy:
it runs Prefect's server application in a child (:mod:`flows.startup.api_app`)
on the 127.0.0.1 socket its command bound, and

* ties the app to itself (it dies with the keeper, even on SIGKILL), and itself
  to its command when there is no idle timeout;
* on SIGTERM (``mltoolkit server stop``, or its command's death) stops the app;
* lets an idle kept app *rest*: when the app reports it has been idle with no
  connection open, the keeper suspends it (SIGSTOP) and sleeps in ``select`` on
  the listening socket; the next connection resumes it (SIGCONT) before the app
  could have noticed; the idle deadline, if reached first, ends it. A connection
  accepted just before the suspension is seen in ``/proc/net/tcp`` and resumes
  the app at once. A suspended app holds no database transaction in practice
  (it rests only after seconds without any request).

Internal helper process:
``python -m flows.startup.api_server --port=PORT --fd=FD [--idle-timeout=S] [--state-file=F]``.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from flows.startup.server_state import remove_record
from mltoolkit.processes.lifeline import PARENT_PID_VARIABLE, die_with_parent, stop_child

__all__ = ["connections_open", "main"]

_BUSY_TCP_STATES = {"01", "08"}  # ESTABLISHED, CLOSE_WAIT: a client the app has yet to serve


def connections_open(port: int) -> bool:
    """Whether a TCP connection to local ``port`` is established (Linux ``/proc/net/tcp*``)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] in _BUSY_TCP_STATES and int(fields[1].rpartition(":")[2], 16) == port:
                return True
    return False


class _Keeper:
    """Runs the app child; suspends it while it rests; stops it on request."""

    def __init__(self, listener: socket.socket, port: int, idle_timeout: float) -> None:
        self.listener = listener
        self.port = port
        self.idle_timeout = idle_timeout
        self.app: subprocess.Popen | None = None

    def start_app(self) -> int:
        """Start the app child; return the read end of its rest pipe."""
        fd = self.listener.fileno()
        command = [sys.executable, "-m", "flows.startup.api_app", f"--fd={fd}", f"--idle-timeout={self.idle_timeout}"]
        read_end, write_end = os.pipe()
        if self.idle_timeout > 0 and Path("/proc/net/tcp").exists():  # resting needs connections_open()
            command.append(f"--rest-fd={write_end}")
        environment = {**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}
        self.app = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, pass_fds=(fd, write_end))
        os.close(write_end)  # EOF on read_end: the app has exited
        return read_end

    def run(self) -> int:
        """Serve until the app exits or the idle deadline passes while it rests; return the exit code."""
        reports = os.fdopen(self.start_app(), "rb", buffering=0)
        while True:
            line = reports.readline()  # blocks: the keeper wakes only for reports
            if not line:
                return self._reap()
            deadline = float(line) + self.idle_timeout
            if not self._rest_until(deadline):
                self.stop()
                return 0

    def _rest_until(self, deadline: float) -> bool:
        """Suspend the app until a connection arrives (True) or ``deadline`` passes (False)."""
        assert self.app is not None
        self.app.send_signal(signal.SIGSTOP)
        try:
            while True:
                if connections_open(self.port):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                readable, _, _ = select.select([self.listener], [], [], remaining)
                if readable:
                    return True
        finally:
            self.app.send_signal(signal.SIGCONT)

    def _reap(self) -> int:
        assert self.app is not None
        return self.app.wait()

    def stop(self) -> None:
        """Stop the app (terminate, then kill)."""
        if self.app is not None:
            stop_child(self.app, grace=10.0)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: a death signal may come twice
    raise SystemExit(128 + signum)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.startup.api_server")
    parser.add_argument("--port", type=int, required=True, help="the port of --fd (names the server)")
    parser.add_argument("--fd", type=int, required=True, help="a listening socket on 127.0.0.1:PORT")
    parser.add_argument("--idle-timeout", type=float, default=0.0, help="0: until terminated")
    parser.add_argument("--state-file", type=Path, default=None, help="removed on exit if it names this process")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the server until it has been idle for ``--idle-timeout`` seconds or is terminated."""
    arguments = _parse(argv)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if parent:
        die_with_parent(int(parent), signal.SIGTERM)
    keeper = _Keeper(socket.socket(fileno=arguments.fd), arguments.port, arguments.idle_timeout)
    code = 1
    try:
        code = keeper.run()
    finally:
        keeper.stop()
        if arguments.state_file is not None:
            remove_record(arguments.state_file, os.getpid())
    sys.exit(code)


if __name__ == "__main__":
    main()
