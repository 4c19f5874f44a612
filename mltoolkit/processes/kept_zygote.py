"""A zygote kept between commands: one per socket, kept while used, retired when its code changes.

A command line spends most of a small run importing (Prefect, the toolkit);
a zygote that has imported them once and forks a child per command starts each
command warm. Unlike a step zygote, which lives as long as the command that
started it, :class:`KeptZygoteServer` outlives the command that started it:

* **one per socket** -- it holds a lock file (with its pid) for its lifetime;
  a second one started for the same socket exits at once;
* **never in the way** -- it waits until the process that started it has
  ended before importing anything, so it does not compete with that (cold)
  command for a core;
* **never stale** -- before each request it compares every file its preloaded
  modules came from (and any other watched file, e.g. a settings file) with
  what it was after the preload. When one changed it answers "run it
  elsewhere" (the caller runs cold), removes its socket, releases its lock
  and exits once its running children are done: the next command starts a
  fresh one;
* **gone when idle** -- it exits when it has had no child and no request for
  ``idle_timeout`` seconds (its wait uses no CPU).

A command forked from it starts its own step zygote by forking itself
(:func:`fork_zygote`), with the step modules already imported.

Run: ``python -m mltoolkit.processes.kept_zygote CONFIG_JSON`` (the fields of
:class:`KeptZygoteConfig`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mltoolkit.errors import ZygoteError
from mltoolkit.processes.lifeline import ForkedChild, die_with_parent
from mltoolkit.processes.warm_script import ZygoteBaseline
from mltoolkit.processes.zygote import RunningZygote, ZygoteServer
from mltoolkit.processes.zygote_wire import send_message

__all__ = [
    "FileStamps",
    "KeptZygoteConfig",
    "KeptZygoteServer",
    "fork_zygote",
    "loaded_module_files",
    "stop_kept_zygote",
]

_Stamp = tuple[int, int, int, int] | None  # inode, size, modification and change times (ns)


def _stamp(path: str) -> _Stamp:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


class FileStamps:
    """The inode, size and times of some files, to tell later whether one changed."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._taken = time.time_ns()
        self._stamps = {str(path): _stamp(str(path)) for path in paths}

    def __len__(self) -> int:
        return len(self._stamps)

    def first_changed(self) -> str | None:
        """A file that changed, appeared or disappeared since the stamps were taken; ``None`` if none did."""
        return next((path for path, stamp in self._stamps.items() if _stamp(path) != stamp), None)

    def changed_within(self, seconds: float) -> bool:
        """Whether a file had changed in the ``seconds`` before it was stamped.

        Its times would not show another change made in the same tick of the clock.
        """
        recent = self._taken - seconds * 1e9
        return any(stamp is not None and max(stamp[2], stamp[3]) >= recent for stamp in self._stamps.values())


def loaded_module_files() -> list[str]:
    """The files every imported module was loaded from."""
    files = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    return sorted({file for file in files if isinstance(file, str)})


@dataclasses.dataclass(frozen=True)
class KeptZygoteConfig:
    """What a kept zygote serves and how long it is kept."""

    socket: str
    lock: str
    preload: list[str]
    sys_path: list[str]
    idle_timeout: float
    watch: list[str] = dataclasses.field(default_factory=list)
    starter_pid: int | None = None


def _peer_pid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", credentials)[0])


class KeptZygoteServer(ZygoteServer):
    """A :class:`~mltoolkit.processes.zygote.ZygoteServer` with a lock, an idle timeout and a code watch."""

    def __init__(self, config: KeptZygoteConfig) -> None:
        super().__init__(config.socket, config.preload)
        self.baseline = _WatchingBaseline(self)
        self.config = config
        self._stamps = FileStamps([])
        self._last_activity = time.monotonic()
        self._retired = False
        self._lock_fd: int | None = None

    def take_lock(self) -> bool:
        """Hold the lock file for this process's lifetime; ``False`` when another one holds it."""
        fd = os.open(self.config.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return True

    def _log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} kept zygote {os.getpid()}: {message}", file=sys.stderr, flush=True)

    def note_preload_done(self) -> None:
        """Stamp the files the preloaded modules came from (called once the preload is imported)."""
        self._stamps = FileStamps([*loaded_module_files(), *self.config.watch])
        self._last_activity = time.monotonic()
        self._log(f"ready; watching {len(self._stamps)} files")

    def _poll_timeout_ms(self) -> int | None:
        if self._children:  # busy: a child's end wakes the loop
            self._last_activity = time.monotonic()
            return None
        if self._retired:
            return 0
        remaining = self._last_activity + self.config.idle_timeout - time.monotonic()
        return max(0, int(remaining * 1000)) + 1

    def _should_stop(self) -> bool:
        idle = time.monotonic() - self._last_activity >= self.config.idle_timeout
        return not self._children and (self._retired or idle)

    def _refused(self, connection: socket.socket) -> bool:
        self._last_activity = time.monotonic()
        changed = self._stamps.first_changed()
        if changed is None:
            self._log(f"serving process {_peer_pid(connection)}")
            return False
        self._log(f"retiring: {changed} changed since the preload")
        self._give_up_socket()  # before answering: the caller may start a successor at once
        connection.setblocking(False)
        with contextlib.suppress(OSError):
            reason = f"{changed} changed since the kept process started"
            send_message(connection, {"pid": 0, "warm": False, "reason": reason})
        connection.close()
        return True

    def _give_up_socket(self) -> None:
        self._retired = True
        with contextlib.suppress(OSError):  # ours: no successor can bind it while we hold the lock
            os.unlink(self.socket_path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # a successor may start now
            self._lock_fd = None

    def _retire(self, listener: socket.socket) -> None:
        listener.close()

    def _remove_socket(self) -> None:
        if not self._retired:  # once retired, the path may be a successor's
            super()._remove_socket()


class _WatchingBaseline(ZygoteBaseline):
    """Tells its kept zygote when the preload is done, so it stamps the files it came from."""

    def __init__(self, server: KeptZygoteServer) -> None:
        super().__init__()
        self._server = server

    def after_preload(self) -> None:
        super().after_preload()
        self._server.note_preload_done()


def fork_zygote() -> RunningZygote:
    """Start a zygote by forking this process, which has imported what the zygote's children need.

    For a warm command (a fork of a kept zygote that preloaded the step modules):
    its step zygote is ready at once instead of importing them again. The new
    zygote leads its own session and dies with the calling thread.

    Raises:
        ZygoteError: this process runs other threads (a fork would copy their locks mid-use).
    """
    if threading.active_count() > 1:
        raise ZygoteError("cannot fork a zygote from a process with several threads")
    folder = tempfile.mkdtemp(prefix="mltk-zygote-")
    socket_path = os.path.join(folder, "socket")
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            # a new program: the caller's exit handlers (its flushes, its exit code) are not ours
            atexit._clear()  # type: ignore[attr-defined]
            os.setsid()
            die_with_parent(parent, signal.SIGTERM)  # SIGTERM runs the server's clean-up
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            ZygoteServer(socket_path, []).serve_forever()
        except BaseException:  # never return into the caller's code
            code = 1
        finally:
            os._exit(code)
    return RunningZygote.when_listening(ForkedChild(pid), socket_path, folder)


def stop_kept_zygote(lock_path: str, timeout: float = 10.0) -> bool:
    """Terminate the kept zygote holding ``lock_path`` (and its children); whether one was running."""
    try:
        pid = int(Path(lock_path).read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False  # nobody holds it: nothing runs
    except OSError:
        pass
    finally:
        os.close(fd)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def _wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # already gone, or no pidfd on this system
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    """Serve the socket of the JSON configuration ``argv[0]`` unless another kept zygote already does."""
    config = KeptZygoteConfig(**json.loads(argv[0]))
    server = KeptZygoteServer(config)
    if not server.take_lock():
        return
    if config.starter_pid:
        _wait_for_exit(config.starter_pid)
    sys.path[:] = config.sys_path
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m mltoolkit.processes.kept_zygote CONFIG_JSON", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1:])
