"""The temporary Prefect API server our command lines start, with an idle timeout.

Runs Prefect's own server application (``prefect.server.api.server.create_app``
in ephemeral mode: no UI, the services a flow run needs) under uvicorn on the
127.0.0.1 socket its command bound and handed over, and exits after
``--idle-timeout`` seconds without requests or open connections. With a timeout
the server outlives the command that started it, so the next command reuses it
instead of waiting ~3.5 s for a new one to boot (see
:mod:`flows.startup.temporary_server`); without one it dies with its command.

An idle kept server should rest, so it runs nothing on a timer that Prefect's
public settings can switch off (:data:`RESTING_SETTINGS`), skips uvicorn's
10 Hz housekeeping tick (the server is driven through uvicorn's public
``startup``/``shutdown`` instead of ``serve``, and sends no ``Date`` header), and
its idle watchdog sleeps until the deadline instead of polling. What remains is
measured by ``bench/idle.py``.

Internal helper process:
``python -m flows.startup.api_server --port=PORT --fd=FD [--idle-timeout=S] [--state-file=F]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from flows.startup.server_state import remove_record
from mltoolkit.processes.lifeline import PARENT_PID_VARIABLE, die_with_parent

__all__ = ["RESTING_SETTINGS", "IdleTracker", "main"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Prefect settings of our servers (an explicit environment variable wins):
#: no UI, no usage reports over the network, and no automations (triggers and
#: their actions poll every few seconds; a temporary server runs none).
RESTING_SETTINGS = {
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_ACTIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
}


class IdleTracker:
    """ASGI middleware that records when the server last had work."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.active = 0
        self.last_activity = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        self.active += 1
        self.last_activity = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended (0 while one is open)."""
        if self.active:
            return 0.0
        return time.monotonic() - self.last_activity

    async def wait_until_idle_for(self, seconds: float) -> None:
        """Return once no request has been open for ``seconds``; wakes only at candidate deadlines."""
        while (remaining := seconds - self.idle_for()) > 0:
            await asyncio.sleep(remaining)


async def _serve(listener: socket.socket, idle_timeout: float) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    tracker = IdleTracker(create_app(ephemeral=True, final=True))
    config = uvicorn.Config(
        tracker, log_level="error", lifespan="on", date_header=False, server_header=False, timeout_graceful_shutdown=5
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.startup(sockets=[listener])
    tracker.last_activity = time.monotonic()  # the idle clock starts once the server answers
    waits = [asyncio.ensure_future(stop.wait())]
    if idle_timeout > 0:
        waits.append(asyncio.ensure_future(tracker.wait_until_idle_for(idle_timeout)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await server.shutdown(sockets=[listener])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.startup.api_server")
    parser.add_argument("--port", type=int, required=True, help="the port of --fd (names the server)")
    parser.add_argument("--fd", type=int, required=True, help="a listening socket on 127.0.0.1:PORT")
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    parser.add_argument("--state-file", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the server until idle for ``--idle-timeout`` seconds (0: until terminated or its parent dies)."""
    arguments = _parse(argv)
    parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if parent:
        die_with_parent(int(parent), signal.SIGTERM)
    os.umask(0o077)  # a database (and its journals) created here is its owner's only
    for name, value in RESTING_SETTINGS.items():
        os.environ.setdefault(name, value)
    listener = socket.socket(fileno=arguments.fd)
    try:
        asyncio.run(_serve(listener, arguments.idle_timeout))
    except KeyboardInterrupt:
        pass
    finally:
        if arguments.state_file is not None:
            remove_record(arguments.state_file, os.getpid())


if __name__ == "__main__":
    main()
