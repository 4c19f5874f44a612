"""The temporary Prefect API server our command lines start, with an idle timeout.

Runs Prefect's own server application (``prefect.server.api.server.create_app``,
in ephemeral mode: no UI, no background services, exactly what Prefect starts
for a flow run without a configured API) under uvicorn on 127.0.0.1, and exits
after ``--idle-timeout`` seconds without requests or open connections. With a
timeout the server outlives the command that started it, so the next command
reuses it instead of waiting ~3.5 s for a new one to boot (see
:mod:`flows.temporary_server`).

Internal helper process: ``python -m flows.api_server --port PORT [--idle-timeout S] [--state-file F]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["IdleTracker", "main"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


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


def _remove_state_file_if_ours(state_file: Path | None) -> None:
    if state_file is None:
        return
    with contextlib.suppress(OSError, ValueError):
        if json.loads(state_file.read_text()).get("pid") == os.getpid():
            state_file.unlink()


async def _serve(port: int, idle_timeout: float) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    tracker = IdleTracker(create_app(ephemeral=True, final=True))
    server = uvicorn.Server(uvicorn.Config(tracker, host="127.0.0.1", port=port, log_level="error", lifespan="on"))

    async def stop_when_idle() -> None:
        while not server.should_exit:
            await asyncio.sleep(1.0)
            if idle_timeout > 0 and tracker.idle_for() > idle_timeout:
                server.should_exit = True

    watchdog = asyncio.create_task(stop_when_idle())
    try:
        await server.serve()
    finally:
        watchdog.cancel()


def main(argv: list[str] | None = None) -> None:
    """Run the server until idle for ``--idle-timeout`` seconds (0: until terminated)."""
    parser = argparse.ArgumentParser(prog="python -m flows.api_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    parser.add_argument("--state-file", type=Path, default=None)
    arguments = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_UI_ENABLED", "0")
    try:
        asyncio.run(_serve(arguments.port, arguments.idle_timeout))
    except KeyboardInterrupt:
        pass
    finally:
        _remove_state_file_if_ours(arguments.state_file)


if __name__ == "__main__":
    main()
