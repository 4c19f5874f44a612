"""``mltoolkit server status|stop``: the Prefect API server a command left running.

Without a configured ``PREFECT_API_URL`` our commands keep a temporary API
server for later commands (see :mod:`flows.startup.temporary_server`); these two
commands show and stop the one of the current ``PREFECT_HOME``; ``stop`` also
stops the kept command processes (:mod:`flows.startup.warm_commands`). Neither
starts a server nor imports Prefect. Also runnable on its own: ``python -m flows.cli.server status``.
"""

from __future__ import annotations

import time

import typer

from flows.cli.errors import CommandLineApp, exit_with_error
from flows.startup import temporary_server, warm_commands

__all__ = ["app"]

app = CommandLineApp(name="server", help="Show or stop the Prefect API server kept for later commands.")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


@app.command()
def status() -> None:
    """Print the kept server's URL, pid, idle timeout and uptime, or "no server"."""
    record = temporary_server.recorded_server()
    if record is None:
        typer.echo(f"no server (PREFECT_HOME state file: {temporary_server.state_file()})")
        return
    typer.echo(f"url:          {record.api_url}")
    typer.echo(f"pid:          {record.pid}")
    typer.echo(f"idle timeout: {record.idle_timeout:g} s")
    typer.echo(f"uptime:       {_duration(time.time() - record.started)}")


@app.command()
def stop() -> None:
    """Stop the kept server and the kept command processes (exit 1 if none was running)."""
    processes = warm_commands.stop_kept_processes()
    if processes:
        typer.echo(f"stopped {processes} kept command process{'' if processes == 1 else 'es'}")
    record = temporary_server.stop_recorded_server()  # an ApiServerError becomes its one line
    if record is None:
        if processes:
            return
        exit_with_error("no server to stop (nothing is recorded for this PREFECT_HOME)")
    typer.echo(f"stopped the server at {record.api_url} (pid {record.pid})")


if __name__ == "__main__":
    app(prog_name="mltoolkit server")
