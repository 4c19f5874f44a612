"""What the terminal shows while a flow runs: progress (or not), and Prefect's log kept off it.

The display is checked on streams that are and are not terminals; the command
lines themselves as subprocesses, whose stderr is never a terminal: one line per
finished stage, nothing with ``--quiet``, no per-task log lines (they are in
``WORKDIR/_mltoolkit/run.log``).
"""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from flows.cli.progress_display import showing_progress
from flows.cli.run_log import is_hook_notice, logging_to_workdir
from flows.progress import CACHED, COMPLETED, current_progress
from mltoolkit.workdir.layout import WorkdirLayout

HOOK_NOTICES = [
    "Running hook 'seal_cached_result' in response to entering state 'Completed'",
    "Hook 'seal_cached_result' finished running successfully",
    "Commit hook 'seal_cached_result' finished running successfully",
]


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _run_two_stages(board) -> None:
    for stage, count in (("scatter", 3), ("gather", 1)):
        board.plan(stage, count)
        board.start(stage, count)
        for index in range(count):
            board.finish(stage, CACHED if index == 0 else COMPLETED)


def test_without_a_terminal_each_stage_gets_one_line_when_it_finishes():
    stream = io.StringIO()
    with showing_progress(quiet=False, stream=stream) as board:
        assert current_progress() is board
        _run_two_stages(board)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("stage scatter: 3 steps done (1 reused, 0 failed) in ")
    assert lines[1].startswith("stage gather: 1 step done (1 reused, 0 failed) in ")
    assert current_progress() is None


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()])
def test_quiet_shows_nothing_and_the_flow_reports_to_no_board(stream):
    with showing_progress(quiet=True, stream=stream) as board:
        assert board is None and current_progress() is None
    assert stream.getvalue() == ""


def test_on_a_terminal_a_live_display_ends_with_the_final_counts():
    stream = Terminal()
    with showing_progress(quiet=False, stream=stream) as board:
        _run_two_stages(board)
    text = stream.getvalue()
    assert "4/4 steps done, 0 running, 2 reused, 0 failed" in text
    assert "stage scatter: 3 steps done (1 reused, 0 failed)" in text


def test_on_a_terminal_a_flow_that_reports_no_step_shows_no_progress():
    stream = Terminal()
    with showing_progress(quiet=False, stream=stream):
        pass
    assert "steps done" not in stream.getvalue()


@pytest.mark.parametrize("message", HOOK_NOTICES)
def test_hook_notices_are_recognised(message):
    assert is_hook_notice(logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, message, None, None))


@pytest.fixture
def console(prefect_api):
    """A Prefect console handler on the root logger, writing to a buffer (pytest replaces Prefect's own)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    buffer = io.StringIO()
    handler = PrefectConsoleHandler(stream=buffer)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def test_hook_notices_stay_off_the_console_and_go_to_the_log_file(console, tmp_path):
    logger = logging.getLogger("prefect.mltoolkit_test_progress_display")
    logger.setLevel(logging.INFO)
    with logging_to_workdir(tmp_path) as log_file:
        for message in HOOK_NOTICES:
            logger.info(message)
        logger.info("Finished in state Completed()")
        logger.warning("a step's warning")
    assert log_file == WorkdirLayout(tmp_path).run_log
    logged = log_file.read_text()
    assert all(message in logged for message in HOOK_NOTICES)
    assert "Finished in state Completed()" in logged and "a step's warning" in logged
    shown = console.getvalue()
    assert not any(message in shown for message in HOOK_NOTICES)
    assert "Finished in state Completed()" in shown and "a step's warning" in shown  # its level is the setting's
    logger.info(HOOK_NOTICES[0])
    assert HOOK_NOTICES[0] in console.getvalue()  # the filter ends with the block


@pytest.fixture
def info_env(cli_env):
    """The CLI environment with Prefect's INFO records (the test session's default is WARNING)."""
    return {**cli_env, "PREFECT_LOGGING_LEVEL": "INFO"}


@pytest.mark.slow
def test_a_command_shows_one_line_per_finished_stage_and_logs_the_rest_to_the_workdir(flow_cli, info_env, tmp_path):
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"items": [1, 2, 3]}))
    workdir = tmp_path / "run"
    result = flow_cli.spec(info_env, workdir, "noop_scatter", inputs=items)
    assert result.returncode == 0, result.stderr[-3000:]
    stage_lines = [line for line in result.stderr.splitlines() if line.startswith("stage ")]
    assert len(stage_lines) == 2
    assert stage_lines[0].startswith("stage scatter: 3 steps done (0 reused, 0 failed)")
    assert stage_lines[1].startswith("stage gather: 1 step done (0 reused, 0 failed)")
    assert "Finished in state" not in result.stderr and "Running hook" not in result.stderr
    logged = WorkdirLayout(workdir).run_log.read_text()
    assert len(re.findall(r"Task run '[^']+' - Finished in state Completed\(\)", logged)) == 4
    assert "Beginning flow run" in logged

    quiet = flow_cli.spec(info_env, workdir, "noop_scatter", "--quiet", inputs=items)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "stage " not in quiet.stderr and "Finished in state" not in quiet.stderr
    assert "4 reused, 0 ran" in quiet.stdout
    logged = WorkdirLayout(workdir).run_log.read_text()
    assert len(re.findall(r"Task run '[^']+' - Finished in state Cached\(", logged)) == 4
