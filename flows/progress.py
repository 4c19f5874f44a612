"""Progress of a run's steps: what the flows report, and the lines a terminal shows.

A flow reports each step's life to the current :class:`ProgressBoard` (if a
command line set one, else nothing happens): :meth:`~ProgressBoard.plan` when a
stage's steps become known, :meth:`~ProgressBoard.start` when they are submitted,
:meth:`~ProgressBoard.finish` with the outcome when each ends. The board only
counts -- a few integer updates under a lock, no I/O -- so reporting costs
nothing measurable even for 10,000 steps; whoever displays it reads a
:class:`ProgressSnapshot` at its own pace (:class:`ThrottledLines` at most a few
times per second). The board of a run is handed to the flow through a context
variable (:func:`reporting_progress`), so two runs in one process never share one.

This module imports neither Prefect nor rich: the lines are plain text.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "CACHED",
    "COMPLETED",
    "FAILED",
    "ProgressBoard",
    "ProgressSnapshot",
    "StageCounts",
    "StageReporter",
    "ThrottledLines",
    "current_progress",
    "format_elapsed",
    "outcome_of",
    "progress_lines",
    "reporting_progress",
    "stage_line",
    "summary_line",
]

#: The outcomes of a finished step.
COMPLETED, CACHED, FAILED = "completed", "cached", "failed"

Clock = Callable[[], float]


@dataclass(frozen=True)
class StageCounts:
    """One stage's steps: how many are known, started and finished (and how)."""

    name: str
    planned: int = 0
    started: int = 0
    completed: int = 0
    cached: int = 0
    failed: int = 0
    first_start: float | None = None
    last_end: float | None = None

    @property
    def done(self) -> int:
        """Steps that ended, whichever way."""
        return self.completed + self.cached + self.failed

    @property
    def running(self) -> int:
        """Steps submitted and not yet ended."""
        return max(0, self.started - self.done)

    @property
    def finished(self) -> bool:
        """Whether every known step of the stage has ended."""
        return self.planned > 0 and self.done >= self.planned


@dataclass(frozen=True)
class ProgressSnapshot:
    """The board at one moment: per stage (in the order stages appeared) and the elapsed seconds."""

    stages: tuple[StageCounts, ...]
    elapsed: float

    def total(self) -> StageCounts:
        """All stages added up."""
        return StageCounts(
            name="steps",
            planned=sum(stage.planned for stage in self.stages),
            started=sum(stage.started for stage in self.stages),
            completed=sum(stage.completed for stage in self.stages),
            cached=sum(stage.cached for stage in self.stages),
            failed=sum(stage.failed for stage in self.stages),
        )


@dataclass
class ProgressBoard:
    """Counts of a run's steps per stage; safe to update from any thread.

    ``on_stage_finished`` is called (outside the lock, in the reporting thread)
    with a stage's counts each time its last known step ends.
    """

    clock: Clock = time.monotonic
    on_stage_finished: Callable[[StageCounts, float], None] | None = None
    _stages: dict[str, StageCounts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started_at: float = -1.0
    version: int = 0  # bumped by every change: a display re-renders only when it moved

    def __post_init__(self) -> None:
        self._started_at = self.clock()

    def _update(self, stage: str, change: Callable[[StageCounts], StageCounts]) -> StageCounts:
        with self._lock:
            counts = change(self._stages.get(stage) or StageCounts(stage))
            self._stages[stage] = counts
            self.version += 1
            return counts

    def plan(self, stage: str, steps: int) -> None:
        """``steps`` more steps of ``stage`` are known (they count in the total)."""
        self._update(stage, lambda counts: replace(counts, planned=counts.planned + steps))

    def start(self, stage: str, steps: int = 1) -> None:
        """``steps`` steps of ``stage`` were submitted."""
        now = self.clock()
        self._update(
            stage,
            lambda counts: replace(
                counts,
                started=counts.started + steps,
                first_start=counts.first_start if counts.first_start is not None else now,
            ),
        )

    def finish(self, stage: str, outcome: str) -> None:
        """A step of ``stage`` ended: ``COMPLETED``, ``CACHED`` (reused) or ``FAILED``."""
        if outcome not in (COMPLETED, CACHED, FAILED):
            raise ValueError(f"unknown step outcome {outcome!r}; expected {COMPLETED}, {CACHED} or {FAILED}")
        now = self.clock()
        counts = self._update(
            stage, lambda counts: replace(counts, last_end=now, **{outcome: getattr(counts, outcome) + 1})
        )
        if counts.finished and counts.done == counts.planned and self.on_stage_finished is not None:
            self.on_stage_finished(counts, now - self._started_at)

    def snapshot(self) -> ProgressSnapshot:
        """The counts now."""
        with self._lock:
            stages = tuple(self._stages.values())
        return ProgressSnapshot(stages, self.clock() - self._started_at)


def outcome_of(state: Any) -> str:
    """The outcome of a step from its final Prefect state (anything with ``is_completed()`` and ``name``)."""
    if state.is_completed():
        return CACHED if state.name == "Cached" else COMPLETED
    return FAILED


class StageReporter:
    """Reports a flow's steps, stage by stage, to a progress board (with none, it does nothing).

    ``steps`` are the stages known at the start and their step counts.
    """

    def __init__(self, board: ProgressBoard | None, steps: dict[str, int]) -> None:
        self.board = board
        for stage, count in steps.items():
            if board is not None:
                board.plan(stage, count)

    async def inline(self, stage: str, step: Any, *args: Any) -> Any:
        """Call ``step`` (a task) in the flow, as before, and report how it ended; return its result."""
        if self.board is not None:
            self.board.start(stage)
        state = step(*args, return_state=True)
        if self.board is not None:
            self.board.finish(stage, outcome_of(state))
        return await state.aresult()

    def follow(self, stage: str, futures: list[Any]) -> None:
        """Report each of ``futures`` as it ends (from the task runner's thread)."""
        board = self.board
        if board is None:
            return
        board.start(stage, len(futures))

        def done(future: Any) -> None:
            future.wait(0)  # done: sets its final state without asking the API
            board.finish(stage, outcome_of(future.state))

        for future in futures:
            future.add_done_callback(done)


_CURRENT: contextvars.ContextVar[ProgressBoard | None] = contextvars.ContextVar("mltoolkit_progress", default=None)


def current_progress() -> ProgressBoard | None:
    """The board the current run reports to, if a command line set one."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting_progress(board: ProgressBoard | None) -> Iterator[ProgressBoard | None]:
    """Make ``board`` the current run's board inside the block (flows started there inherit it)."""
    token = _CURRENT.set(board)
    try:
        yield board
    finally:
        _CURRENT.reset(token)


# --- the lines ---------------------------------------------------------------------------


def format_elapsed(seconds: float) -> str:
    """``12.3s`` under a minute, else ``m:ss`` or ``h:mm:ss``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def summary_line(snapshot: ProgressSnapshot) -> str:
    """``12/40 steps done, 3 running, 5 reused, 0 failed, 4.2s``."""
    total = snapshot.total()
    return (
        f"{total.done}/{total.planned} steps done, {total.running} running, {total.cached} reused, "
        f"{total.failed} failed, {format_elapsed(snapshot.elapsed)}"
    )


def stage_line(counts: StageCounts, elapsed: float | None = None) -> str:
    """One stage: ``classify 3/5 done, 2 running, 1 reused, 0 failed`` while it runs, and once it finished
    ``stage classify: 5 steps done (1 reused, 0 failed) in 4.3s`` (with ``elapsed``: ``; 6.0s since start``).
    """
    if not counts.finished:
        return (
            f"{counts.name} {counts.done}/{counts.planned} done, {counts.running} running, "
            f"{counts.cached} reused, {counts.failed} failed"
        )
    steps = "1 step" if counts.planned == 1 else f"{counts.planned} steps"
    line = f"stage {counts.name}: {steps} done ({counts.cached} reused, {counts.failed} failed)"
    if counts.first_start is not None and counts.last_end is not None:
        line += f" in {format_elapsed(counts.last_end - counts.first_start)}"
    if elapsed is not None:
        line += f"; {format_elapsed(elapsed)} since start"
    return line


def progress_lines(snapshot: ProgressSnapshot, max_stages: int = 8) -> list[str]:
    """The summary line, then one line per stage: the unfinished ones first, at most ``max_stages``."""
    lines = [summary_line(snapshot)]
    stages = sorted(snapshot.stages, key=lambda counts: counts.finished)  # stable: unfinished first
    lines += [f"  {stage_line(counts)}" for counts in stages[:max_stages]]
    if len(stages) > max_stages:
        lines.append(f"  ... and {len(stages) - max_stages} more stage(s)")
    return lines


class ThrottledLines:
    """The board's lines, re-rendered only when the board changed and ``interval`` seconds have passed.

    A display may ask as often as it likes; formatting happens at most once per
    ``interval`` (default 0.25 s: four times per second), and for an unchanged
    board once per second (the elapsed time still moves).
    """

    def __init__(self, board: ProgressBoard, interval: float = 0.25, clock: Clock = time.monotonic) -> None:
        self.board = board
        self.interval = interval
        self.clock = clock
        self._lines: list[str] = []
        self.snapshot = ProgressSnapshot((), 0.0)  # what the lines show
        self._version = -1
        self._rendered_at = float("-inf")
        self.renders = 0

    def lines(self, force: bool = False) -> list[str]:
        """The current lines (up to ``interval`` seconds old unless ``force``: the last lines of a run)."""
        now = self.clock()
        since = now - self._rendered_at
        if force or (since >= self.interval and (self.board.version != self._version or since >= 1.0)):
            self._version = self.board.version
            self._rendered_at = now
            self.snapshot = self.board.snapshot()
            self._lines = progress_lines(self.snapshot)
            self.renders += 1
        return self._lines
