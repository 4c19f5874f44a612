"""Prefect's API server application, run for our commands by :mod:`flows.startup.api_server`.

Runs Prefect's own server application (``prefect.server.api.server.create_app``
in ephemeral mode: no UI, the services a flow run needs) under uvicorn on the
127.0.0.1 socket handed over by its keeper, and exits after ``--idle-timeout``
seconds without requests or open connections.

An idle server should rest, so it runs nothing on a timer that Prefect's public
settings can switch off (:data:`RESTING_SETTINGS`), skips uvicorn's 10 Hz
housekeeping tick (it is driven through uvicorn's public ``startup`` and
``shutdown`` instead of ``serve``, and sends no ``Date`` header), and its idle
watchdog sleeps until the deadline instead of polling. What still wakes it --
the loops of Prefect's background task worker (docket), several per second,
which no setting changes -- is stopped by its keeper: with ``--rest-fd`` the app
writes its last-activity time there once it has been idle, with no open
connection, for :data:`REST_AFTER` seconds, and the keeper suspends it until
the next connection arrives. ``bench/idle.py`` measures the result.

Internal helper process, started by the keeper:
``python -m flows.startup.api_app --fd=FD [--idle-timeout=S] [--rest-fd=W]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mltoolkit.processes.lifeline import PARENT_PID_VARIABLE, die_with_parent

__all__ = ["RESTING_SETTINGS", "REST_AFTER", "REST_MAX_CPU_SHARE", "CpuWindow", "IdleTracker", "main"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Prefect settings of our servers (an explicit environment variable wins):
#: no UI, no usage reports over the network, and no automations (triggers and
#: their actions poll every few seconds; a temporary server runs none). Task run
#: states are written in batches, at least every second: one at a time (Prefect's
#: default) the recorder falls behind a large scatter (~3 events per step), its
#: queue fills and Prefect drops events, so task runs keep stale states in the UI.
RESTING_SETTINGS = {
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_ACTIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


#: Seconds of idleness, with no connection open, after which the app offers to rest.
REST_AFTER = 5.0
#: ...and only if it used less of a core than this meanwhile (idle, Prefect's loops take ~2.5 %).
REST_MAX_CPU_SHARE = 0.1


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


class CpuWindow:
    """This process's share of one core (all its threads) since the last look."""

    def __init__(self) -> None:
        self._mark = (time.monotonic(), time.process_time())

    def share(self) -> float:
        """CPU seconds per wall second since the previous call (or since this window was made)."""
        now = (time.monotonic(), time.process_time())
        wall, cpu = now[0] - self._mark[0], now[1] - self._mark[1]
        self._mark = now
        return cpu / wall if wall > 0 else 0.0


async def _offer_rest(tracker: IdleTracker, server: Any, rest_fd: int) -> None:
    """Tell the keeper, once per idle spell, that this process may be suspended.

    Not while it still works for earlier requests: Prefect records task run states
    from events in the background, and after a large scatter that takes a while; a
    server suspended in the middle would make the next command wait for the rest.
    """
    window = CpuWindow()
    while True:
        await tracker.wait_until_idle_for(REST_AFTER)
        quiet = window.share() < REST_MAX_CPU_SHARE
        if quiet and not server.server_state.connections:  # a kept-alive connection may still send a request
            os.write(rest_fd, f"{tracker.last_activity}\n".encode())
        await asyncio.sleep(REST_AFTER)  # when resumed: fires at once, and the spell is re-checked


async def _serve(listener: socket.socket, idle_timeout: float, rest_fd: int | None) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    from flows.startup.prefect_database import create_database_at_head

    create_database_at_head()  # a first start: the same database as Prefect's migrations, sooner
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
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if idle_timeout > 0:
        waits.append(asyncio.ensure_future(tracker.wait_until_idle_for(idle_timeout)))
    resting = asyncio.ensure_future(_offer_rest(tracker, server, rest_fd)) if rest_fd is not None else None
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in [*waits, resting]:
            if waiting is not None:
                waiting.cancel()
        await server.shutdown(sockets=[listener])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.startup.api_app")
    parser.add_argument("--fd", type=int, required=True, help="a listening socket on 127.0.0.1")
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    parser.add_argument("--rest-fd", type=int, default=None, help="a pipe to the keeper (see REST_AFTER)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve until idle for ``--idle-timeout`` seconds (0: until terminated), or until the keeper goes."""
    arguments = _parse(argv)
    parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if parent:
        # SIGKILL: this process may be suspended, when no other signal would act
        die_with_parent(int(parent), signal.SIGKILL)
    os.umask(0o077)  # a database (and its journals) created here is its owner's only
    for name, value in RESTING_SETTINGS.items():
        os.environ.setdefault(name, value)
    listener = socket.socket(fileno=arguments.fd)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(listener, arguments.idle_timeout, arguments.rest_fd))


if __name__ == "__main__":
    main()
