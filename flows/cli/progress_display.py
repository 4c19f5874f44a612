"""The progress a command line shows while its flow runs (``--quiet``: none).

On a terminal, a live bar and lines (rich, refreshed four times per second at
most) with the steps done of the total, running, reused and failed, the elapsed
time and one line per stage; when stderr is not a terminal (a log, CI), one
line per stage as it finishes. The flow reports to the board of
:func:`showing_progress` (:mod:`flows.progress`); nothing here runs per step.

This module must not import Prefect.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

from flows.progress import ProgressBoard, StageCounts, ThrottledLines, reporting_progress, stage_line

__all__ = ["REFRESH_PER_SECOND", "showing_progress"]

#: How often the live display redraws, at most.
REFRESH_PER_SECOND = 4


class _LiveView:
    """What rich's Live draws: a bar of the steps done, then the throttled lines."""

    def __init__(self, lines: ThrottledLines) -> None:
        self.lines = lines
        self.final = False

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        summary, *stages = self.lines.lines(force=self.final)
        total = self.lines.snapshot.total()
        if total.planned == 0:  # nothing reported (yet, or by this flow: `mltoolkit step`)
            return Text("")
        first = Table.grid(padding=(0, 1))
        first.add_row(ProgressBar(total=max(total.planned, 1), completed=total.done, width=30), Text(summary))
        return Group(first, *(Text(line, no_wrap=True, overflow="ellipsis") for line in stages))


@contextlib.contextmanager
def _live(board: ProgressBoard, stream: IO[str]) -> Iterator[None]:
    from rich.console import Console
    from rich.live import Live

    view = _LiveView(ThrottledLines(board, interval=1 / REFRESH_PER_SECOND))
    console = Console(file=stream, force_terminal=True)
    live = Live(
        view,
        console=console,
        refresh_per_second=REFRESH_PER_SECOND,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with live:
        try:
            yield
        finally:
            view.final = True  # the last frame shows the final counts
            live.refresh()


def _stage_lines(board: ProgressBoard, stream: IO[str]) -> None:
    lock = threading.Lock()

    def write(counts: StageCounts, elapsed: float) -> None:
        with lock:
            stream.write(stage_line(counts, elapsed) + "\n")
            stream.flush()

    board.on_stage_finished = write


@contextlib.contextmanager
def showing_progress(quiet: bool, stream: IO[str] | None = None) -> Iterator[ProgressBoard | None]:
    """Show the progress of the flow run inside the block on ``stream`` (default: stderr).

    Yields the board the flow reports to (None with ``quiet``).
    """
    stream = stream if stream is not None else sys.stderr
    if quiet:
        with reporting_progress(None):
            yield None
        return
    board = ProgressBoard()
    is_terminal = bool(getattr(stream, "isatty", lambda: False)())
    display = _live(board, stream) if is_terminal else contextlib.nullcontext()
    if not is_terminal:
        _stage_lines(board, stream)
    with display, reporting_progress(board):
        yield board
