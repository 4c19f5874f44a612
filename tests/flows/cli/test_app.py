"""The ``mltoolkit`` typer app, in this process through typer's ``CliRunner``.

Help of the group and of each subcommand, usage errors as one line with exit
code 1, shared options with one help text, and ``mltoolkit run`` end to end.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli.app import app, root_command
from tests.constants import MOON

#: What each subcommand's help must mention (its arguments and its own options).
HELP = {
    "run": ["--inputs", "--workdir", "--parameter", "--runner", "--dask-address", "--refresh", "--no-cache"],
    "spec": ["WORKDIR", "WORKFLOW", "INPUTS", "--toplevel", "--image-map-file", "--step-retries", "--visualize"],
    "step": ["STEP", "WORKDIR", "--toplevel", "--image-map", "--unsafe-no-quoting", "--step-timeout"],
    "archive": ["WORKDIR", "OUT.zip", "archive.json"],
}


def _invoke(args: list[str], **options):
    return CliRunner().invoke(app, args, **options)


def test_group_help_lists_every_subcommand():
    result = _invoke(["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: mltoolkit" in result.stdout
    for name in HELP:
        assert name in root_command().commands
        assert f" {name} " in result.stdout


@pytest.mark.parametrize("subcommand", sorted(HELP))
def test_help_of_each_subcommand(subcommand):
    result = _invoke([subcommand, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: mltoolkit {subcommand}" in result.stdout
    for word in HELP[subcommand]:
        assert word.lower() in result.stdout.lower(), word
    assert result.stderr == ""


def _help_of_options(subcommand: str) -> dict[str, str]:
    command = root_command().commands[subcommand]
    return {param.opts[0]: param.help for param in command.params if param.opts[0].startswith("--")}


def test_an_option_shared_by_subcommands_has_one_help_text():
    helps: dict[str, set[str]] = {}
    for subcommand in HELP:
        for option, text in _help_of_options(subcommand).items():
            helps.setdefault(option, set()).add(text)
    shared = {option for option in helps if sum(option in _help_of_options(name) for name in HELP) > 1}
    assert {"--parameter", "--toplevel", "--retries", "--retry-delay", "--step-timeout", "--image-map"} <= shared
    assert {option: texts for option, texts in helps.items() if len(texts) != 1} == {}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--bogus"], "error: mltoolkit run: No such option: --bogus (see --help)"),
        (["run", "--retries", "-1"], "error: mltoolkit run: Invalid value for '--retries'"),
        (["spec", "workdir"], "error: mltoolkit spec: Missing argument 'workflow'"),
        (["step", "steps.yml#/a", "wd", "--step-timeout", "soon"], "Invalid value for '--step-timeout'"),
        (["run", "-p", f"dataset={MOON}", "-p", "classifiers=[rbf_svm]", "--runner", "gpu"], "--runner 'gpu'"),
        (["bogus"], "error: mltoolkit: No such command 'bogus'"),
        ([], "error: mltoolkit: Missing command. (see --help)"),
    ],
    ids=[
        *("unknown-option", "negative-retries", "missing-argument", "bad-number"),
        *("unknown-runner", "unknown-command", "no-command"),
    ],
)
def test_a_bad_command_line_is_one_error_line_and_exit_1(args, fragment, flow_cli, offline_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(args, env=offline_env)
    assert isinstance(result.exception, SystemExit), result.exception
    line = flow_cli.assert_error_line(result)
    assert fragment in line, line
    assert list(tmp_path.iterdir()) == []


def test_mltoolkit_run_end_to_end(prefect_api, run_records, tmp_path):
    workdir = tmp_path / "run dir"
    classifiers = ["decision_tree", "rbf_svm"]
    result = _invoke(
        ["run", "-p", f"dataset={MOON}", "-p", f"classifiers={json.dumps(classifiers)}", "--workdir", str(workdir)]
    )
    assert result.exit_code == 0, result.output[-3000:]
    scores = json.loads((workdir / "scores.json").read_text())
    assert list(scores) == classifiers
    for name, score in scores.items():
        assert f"{name}" in result.stdout and f"{score:.2f}" in result.stdout
    figure = workdir / "merge_and_visualize" / "ml_results.png"
    assert figure.is_file() and f"figure: {figure}" in result.stdout
    record = run_records.read(workdir)
    assert record["status"] == "completed" and record["flow"] == "ml-workflow"
    assert set(run_records.states(workdir).values()) == {"COMPLETED"}
