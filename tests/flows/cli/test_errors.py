"""The one place a command's failure becomes ``error: ...`` and an exit code (``flows.cli.errors``)."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from flows.cli.errors import CommandLineApp, exit_with_error
from mltoolkit.errors import DatasetError


def _app() -> CommandLineApp:
    app = CommandLineApp(name="demo")

    @app.command("fail")
    def fail(kind: Annotated[str, typer.Argument()]) -> None:
        if kind == "ours":
            raise DatasetError("data.txt line 2:\n  found 2 columns, expected 3")
        if kind == "exit":
            exit_with_error("stopped\nhere", code=3)
        if kind == "bug":
            raise ZeroDivisionError("a bug keeps its traceback")

    @app.command("other")
    def other() -> None:
        """A second command, so that the app is a group."""

    return app


@pytest.mark.parametrize(
    ("kind", "code", "line"),
    [
        ("ours", 1, "error: data.txt line 2: found 2 columns, expected 3"),
        ("exit", 3, "error: stopped here"),
    ],
)
def test_a_failure_is_one_line_with_its_exit_code(kind, code, line):
    result = CliRunner().invoke(_app(), ["fail", kind])
    assert (result.exit_code, result.stderr.splitlines(), result.stdout) == (code, [line], "")


def test_a_bug_is_not_disguised_as_an_error_line():
    result = CliRunner().invoke(_app(), ["fail", "bug"])
    assert isinstance(result.exception, ZeroDivisionError)
    assert "error:" not in result.stderr


def test_a_command_run_as_its_own_program_reports_usage_errors_under_that_name(capsys):
    command = typer.main.get_command(_app()).commands["fail"]
    with pytest.raises(SystemExit) as exit_:
        command.main(["ours", "extra"], prog_name="python -m demo")
    assert exit_.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: python -m demo: Got unexpected extra argument(s) (extra) (see --help)"
    ]
    assert command.main(["ours"], prog_name="python -m demo", standalone_mode=False) == 1
