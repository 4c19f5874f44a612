"""The progress board (counts, thread safety, finished-stage notices), its lines and their rate limit."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from flows.progress import (
    CACHED,
    COMPLETED,
    FAILED,
    ProgressBoard,
    StageReporter,
    ThrottledLines,
    current_progress,
    format_elapsed,
    outcome_of,
    progress_lines,
    reporting_progress,
    stage_line,
    summary_line,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeState:
    name: str
    completed: bool

    def is_completed(self) -> bool:
        return self.completed


def _board(clock: FakeClock, finished: list | None = None) -> ProgressBoard:
    board = ProgressBoard(clock=clock)
    if finished is not None:
        board.on_stage_finished = lambda counts, elapsed: finished.append((counts, elapsed))
    return board


def test_counts_per_stage_and_in_total():
    clock = FakeClock()
    board = _board(clock)
    board.plan("scatter", 4)
    board.start("scatter", 4)
    clock.now += 2
    for outcome in (COMPLETED, CACHED, FAILED):
        board.finish("scatter", outcome)
    board.plan("gather", 1)
    snapshot = board.snapshot()
    assert [stage.name for stage in snapshot.stages] == ["scatter", "gather"]
    scatter = snapshot.stages[0]
    assert (scatter.planned, scatter.running, scatter.done, scatter.finished) == (4, 1, 3, False)
    total = snapshot.total()
    assert (total.planned, total.done, total.running, total.cached, total.failed) == (5, 3, 1, 1, 1)
    assert snapshot.elapsed == 2
    assert summary_line(snapshot) == "3/5 steps done, 1 running, 1 reused, 1 failed, 2.0s"


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="unknown step outcome 'done'"):
        ProgressBoard().finish("stage", "done")


def test_a_stage_is_announced_once_when_its_last_step_ends():
    clock, finished = FakeClock(), []
    board = _board(clock, finished)
    board.plan("classify", 2)
    board.start("classify", 2)
    clock.now += 1.5
    board.finish("classify", COMPLETED)
    assert finished == []
    clock.now += 1.5
    board.finish("classify", CACHED)
    [(counts, elapsed)] = finished
    assert (counts.name, counts.done, counts.cached, elapsed) == ("classify", 2, 1, 3.0)
    assert stage_line(counts, elapsed) == "stage classify: 2 steps done (1 reused, 0 failed) in 3.0s; 3.0s since start"


def test_lines_show_unfinished_stages_first_and_cap_their_number():
    board = ProgressBoard(clock=FakeClock())
    for index in range(10):
        board.plan(f"s{index}", 1)
        board.start(f"s{index}", 1)
    board.finish("s0", COMPLETED)
    lines = progress_lines(board.snapshot(), max_stages=3)
    assert lines[0].startswith("1/10 steps done, 9 running")
    assert lines[1:] == [
        "  s1 0/1 done, 1 running, 0 reused, 0 failed",
        "  s2 0/1 done, 1 running, 0 reused, 0 failed",
        "  s3 0/1 done, 1 running, 0 reused, 0 failed",
        "  ... and 7 more stage(s)",
    ]


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0s"), (59.94, "59.9s"), (61, "1:01"), (3725, "1:02:05")])
def test_elapsed_times(seconds, text):
    assert format_elapsed(seconds) == text


def test_lines_are_rendered_at_most_once_per_interval_and_only_when_something_moved():
    clock = FakeClock()
    board = _board(clock)
    lines = ThrottledLines(board, interval=0.25, clock=clock)
    board.plan("scatter", 3)
    first = lines.lines()
    assert first[0].startswith("0/3 steps done") and lines.renders == 1
    board.start("scatter", 3)
    for step in range(100):  # many changes and requests within one interval: no new rendering
        if step < 2:
            board.finish("scatter", COMPLETED)
        clock.now += 0.001
        assert lines.lines() == first
    assert lines.renders == 1
    clock.now += 0.25
    assert lines.lines()[0].startswith("2/3 steps done") and lines.renders == 2
    clock.now += 0.5  # nothing changed, less than a second: the old lines
    lines.lines()
    assert lines.renders == 2
    clock.now += 0.5  # a second without change: rendered again (the elapsed time moves)
    lines.lines()
    assert lines.renders == 3
    board.finish("scatter", FAILED)
    assert lines.lines(force=True)[0].startswith("3/3 steps done, 0 running, 0 reused, 1 failed")


def test_the_board_counts_exactly_under_concurrent_updates():
    board, finished = ProgressBoard(), []
    board.on_stage_finished = lambda counts, elapsed: finished.append(counts)
    board.plan("scatter", 8 * 500)
    board.start("scatter", 8 * 500)

    def work() -> None:
        for _ in range(500):
            board.finish("scatter", COMPLETED)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert board.snapshot().total().completed == 4000
    assert len(finished) == 1


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (FakeState("Completed", True), COMPLETED),
        (FakeState("Cached", True), CACHED),
        (FakeState("Failed", False), FAILED),
    ],
)
def test_outcome_of_a_final_state(state, outcome):
    assert outcome_of(state) == outcome


def test_the_board_is_the_current_one_only_inside_its_block():
    first, second = ProgressBoard(), ProgressBoard()
    assert current_progress() is None
    with reporting_progress(first):
        assert current_progress() is first
        with reporting_progress(second):
            assert current_progress() is second
        assert current_progress() is first
    assert current_progress() is None


def test_a_stage_reporter_without_a_board_does_nothing_and_with_one_plans_its_stages():
    StageReporter(None, {"data_prep": 1}).follow("data_prep", [object()])  # no board: no call on the futures
    board = ProgressBoard(clock=FakeClock())
    StageReporter(board, {"data_prep": 1, "classify": 5})
    assert [(stage.name, stage.planned, stage.started) for stage in board.snapshot().stages] == [
        ("data_prep", 1, 0),
        ("classify", 5, 0),
    ]
