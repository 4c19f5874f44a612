"""A command in its own process group: its output line by line, its exit seen before it is reaped."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mltoolkit.processes.process_group import MAX_LINE, GroupProcess, OutputPump


def _run(argv: list[str], tmp_path: Path, on_output=None, environment=None) -> tuple[int, OutputPump]:
    group = GroupProcess(argv, cwd=tmp_path, env=dict(environment or os.environ))
    assert group.process.stdout is not None
    pump = OutputPump(group.process.stdout.fileno(), tmp_path / "log", on_output)
    try:
        assert group.wait_exit(60, pump)
        code = group.finish(pump)
        assert pump.finish(10)
    finally:
        group.close()
        group.process.stdout.close()
    return code, pump


def test_output_goes_to_the_log_and_the_callback_line_by_line(tmp_path):
    lines: list[str] = []
    code, pump = _run(
        ["sh", "-c", "echo one; printf 'two\\r\\n'; echo three >&2; printf last; exit 4"], tmp_path, lines.append
    )
    assert code == 4
    assert lines == ["one", "two", "three", "last"] == pump.tail
    assert (tmp_path / "log").read_bytes() == b"one\ntwo\r\nthree\nlast"


def test_a_failing_callback_is_noted_once_and_the_output_still_logged(tmp_path):
    def broken(line: str) -> None:
        raise RuntimeError("no logger")

    _run(["sh", "-c", "echo a; echo b"], tmp_path, broken)
    log = (tmp_path / "log").read_text().splitlines()
    assert log == ["a", "[mltoolkit] output callback failed, no longer called: RuntimeError('no logger')", "b"]


def test_a_line_without_end_is_passed_on_in_pieces(tmp_path):
    lines: list[str] = []
    size = MAX_LINE * 2 + 10
    _run(["python3", "-c", f"import sys; sys.stdout.write('x' * {size})"], tmp_path, lines.append)
    assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE, 10]


def test_output_larger_than_the_pipe_is_copied_while_the_command_runs(tmp_path):
    """The waiting thread copies the output: a writer blocked on a full pipe would never exit."""
    lines: list[str] = []
    code, pump = _run(["python3", "-c", "print('x' * 300000); print('y' * 500000)"], tmp_path, lines.append)
    assert code == 0 and [len(line) for line in lines] == [300000, 500000]
    assert (tmp_path / "log").stat().st_size == 800002
    assert pump.finish(0) is True  # finished once; asked again, it only says so


def test_what_a_leftover_writes_while_it_stops_is_copied(tmp_path):
    """A leftover that writes more than a pipe holds when told to stop is read meanwhile, not left blocked."""
    leftover = (
        "(trap 'yes | head -c 300000; exit 0' TERM; touch ready; while :; do sleep 0.01; done) & "
        "while [ ! -e ready ]; do sleep 0.01; done; echo started"
    )
    code, pump = _run(["sh", "-c", leftover], tmp_path)
    log = (tmp_path / "log").read_bytes()  # the shell may also say its sleep was "Terminated"
    assert code == 0 and log.startswith(b"started\n") and log.endswith(b"y\n" * 150000)
    assert pump.tail[-1] == "y"


def test_a_log_that_cannot_be_written_is_noted_and_the_output_still_passed_on(tmp_path, monkeypatch):
    import errno

    from mltoolkit.processes import process_group

    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(process_group, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    lines: list[str] = []
    code, pump = _run(["sh", "-c", "echo one; echo two"], tmp_path, lines.append)
    assert code == 0 and lines == ["one", "two"]
    assert pump.log_error is not None and pump.log_error.errno == errno.ENOSPC


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("program", "tail"),
    [("sleep 30", ["started"]), ("yes", None)],
    ids=["holds the pipe", "never stops writing"],
)
def test_a_process_outside_the_group_holding_the_output_is_read_only_for_the_grace(tmp_path, program, tail):
    # the command ends once the program has left its group (a new session) holding the pipe
    command = f"setsid sh -c 'touch left; exec {program}' & while [ ! -e left ]; do sleep 0.01; done; echo started"
    group = GroupProcess(["sh", "-c", command], cwd=tmp_path, env=dict(os.environ))
    assert group.process.stdout is not None
    pump = OutputPump(group.process.stdout.fileno(), tmp_path / "log", None)
    try:
        assert group.wait_exit(60, pump)
        assert group.finish(pump) == 0
        assert pump.finish(0.2) is False  # the program outside the group still holds (or fills) the pipe
        if tail is not None:
            assert pump.tail == tail
    finally:
        group.stop_escaped()
        group.close()
        group.process.stdout.close()


def test_the_exit_is_seen_before_the_process_is_reaped(tmp_path):
    group = GroupProcess(["sh", "-c", "exit 3"], cwd=tmp_path, env=dict(os.environ))
    try:
        assert group.wait_exit(60)
        assert group.process.returncode is None  # a zombie: its group id cannot be reused yet
        assert group.finish() == 3
    finally:
        group.close()
        group.process.stdout.close()


def _tool(folder: Path, name: str, says: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\necho {says}\n")
    (folder / name).chmod(0o755)


def test_a_command_is_looked_up_on_the_steps_path_once_and_keeps_its_name(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _tool(second, "mltk-tool", "second")
    environment = {**os.environ, "PATH": f"{first}{os.pathsep}{second}{os.pathsep}{os.environ.get('PATH', '')}"}

    assert _run(["mltk-tool"], tmp_path, environment=environment)[1].tail == ["second"]
    (second / "mltk-tool").unlink()  # gone since it was looked up: the path is searched again
    _tool(first, "mltk-tool", "first")
    assert _run(["mltk-tool"], tmp_path, environment=environment)[1].tail == ["first"]
    assert _run(["sh", "-c", "echo $0"], tmp_path)[1].tail == ["sh"]  # argv[0] as written, not the path found


def test_a_relative_folder_on_the_path_is_searched_from_the_steps_folder(tmp_path):
    step_folder = tmp_path / "step"
    _tool(step_folder / "bin", "mltk-tool", "step-own")
    _tool(tmp_path / "elsewhere", "mltk-tool", "elsewhere")
    environment = {**os.environ, "PATH": f"bin{os.pathsep}{tmp_path / 'elsewhere'}"}
    assert _run(["mltk-tool"], step_folder, environment=environment)[1].tail == ["step-own"]
