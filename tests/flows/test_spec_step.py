"""One yadage step in isolation (``python -m flows.spec_step``, the packtivity-run analogue), and
the compatibility switch ``--unsafe-no-quoting`` of both spec command lines."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.constants import SEED_URL


def test_data_prep_step_prints_what_it_published_and_writes_the_pickle(run_cli, cli_env, repo_root, tmp_path):
    from mltoolkit import data_prep
    from mltoolkit.analysis.ml import PreppedData
    from mltoolkit.workdir.artifacts import load_pickle

    workdir = tmp_path / "step dir"  # the {workdir} value has a space: it must stay one argument
    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "tests/specs/seed_parallel/steps.yml#/data_prep_step",
            str(workdir),
            "-p",
            f"dataset={SEED_URL}",
            "-p",
            "outfile={workdir}/prepped.pkl",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outfile = workdir.resolve() / "prepped.pkl"
    assert json.loads(result.stdout) == {"prepped_data": str(outfile)}
    prepped = load_pickle(outfile)
    assert isinstance(prepped, PreppedData)
    expected = data_prep(repo_root / "data" / "moon.txt")  # the seed URL is served from the shipped copy
    assert prepped.X.shape == (100, 2) and len(prepped.y_train) == 60 and len(prepped.y_test) == 40
    assert (prepped.X_train == expected.X_train).all() and (prepped.y_test == expected.y_test).all()
    log = workdir / "_packtivity" / "data_prep_step.run.log"
    assert log.is_file()


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ("tests/specs/seed_parallel/steps.yml#/no_such_step", "has no 'no_such_step'"),
        ("tests/specs/seed_parallel/missing.yml#/data_prep_step", "missing.yml does not exist"),
        ("tests/specs/seed_parallel/steps.yml", "steps.yml#/data_prep_step"),  # the file itself is no step
    ],
    ids=["unknown-fragment", "missing-file", "no-fragment"],
)
def test_bad_step_ref_is_one_error_line(run_cli, offline_env, tmp_path, step, fragment):
    workdir = tmp_path / "step"
    result = run_cli(["-m", "flows.spec_step", step, str(workdir), "-p", "dataset=x"], offline_env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not workdir.exists()


def test_retries_rerun_a_flaky_step(run_cli, cli_env, tmp_path):
    counter = tmp_path / "attempts"
    workdir = tmp_path / "step"
    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "tests/specs/trust/steps.yml#/flaky_step",
            str(workdir),
            "-p",
            f"counter={counter}",
            "-p",
            "failures=1",
            "--retries",
            "1",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert counter.read_text().strip() == "2"  # failed once, succeeded on the retry
    assert (workdir / "result.txt").read_text() == "attempt 2: ok\n"


# --- --unsafe-no-quoting ---------------------------------------------------------------------

ARGS_STEP = """\
show_args:
  process: {process_type: string-interpolated-cmd, cmd: 'printf "[%s]\\n" {value} > {workdir}/args.txt'}
  environment: {environment_type: localproc-env}
  publisher: {publisher_type: interpolated-pub, publish: {args: '{workdir}/args.txt'}}
"""

ARGS_WORKFLOW = """\
stages:
- name: show
  dependencies: [init]
  scheduler:
    scheduler_type: singlestep-stage
    parameters: {value: {step: init, output: value}}
    step: {$ref: 'steps.yml#/show_args'}
"""


@pytest.fixture
def args_spec(tmp_path):
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "steps.yml").write_text(ARGS_STEP)
    (spec / "workflow.yml").write_text(ARGS_WORKFLOW)
    return spec


def _warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: --unsafe-no-quoting")]


def test_quoting_keeps_a_value_with_a_space_one_argument(prefect_api, args_spec, tmp_path):
    """The default the switch turns off (the CLI tests below show the difference)."""
    from flows.spec_step import spec_step

    workdir = tmp_path / "quoted"
    published = asyncio.run(
        spec_step(step=str(args_spec / "steps.yml") + "#/show_args", workdir=str(workdir), parameters={"value": "a b"})
    )
    assert published == {"args": str(workdir.resolve() / "args.txt")}
    assert (workdir / "args.txt").read_text() == "[a b]\n"


def test_spec_step_unsafe_no_quoting_pastes_values_raw(run_cli, cli_env, args_spec, tmp_path):
    workdir = tmp_path / "raw"
    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "steps.yml#/show_args",
            str(workdir),
            "--toplevel",
            str(args_spec),
            "-p",
            "value=a b",
            "--unsafe-no-quoting",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_warning_lines(result.stderr)) == 1, result.stderr
    assert (workdir / "args.txt").read_text() == "[a]\n[b]\n"  # yadage's behaviour: two arguments


def test_spec_workflow_unsafe_no_quoting_pastes_values_raw(run_cli, cli_env, args_spec, tmp_path):
    workdir = tmp_path / "raw"
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "workflow.yml",
            "--toplevel",
            str(args_spec),
            "-p",
            "value=a b",
            "--unsafe-no-quoting",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_warning_lines(result.stderr)) == 1, result.stderr
    assert (workdir / "show" / "args.txt").read_text() == "[a]\n[b]\n"
    [step] = json.loads((workdir / "_mltoolkit" / "run.json").read_text())["steps"]
    assert step["parameters"] == {"value": "a b"}
    assert (workdir / "show" / "_packtivity" / "show.command").read_text().startswith('printf "[%s]\\n" a b >')
