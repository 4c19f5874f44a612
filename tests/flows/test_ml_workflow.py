"""The native Prefect flow and its command line, end to end under one Prefect test server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.constants import SEED_SCORES, SEED_URL


def _expected_layout(workdir: Path, names: list[str]) -> list[Path]:
    files = [workdir / "data_prep" / "prepped_data.pkl"]
    files += [workdir / f"classification_{i}" / f"{name}.pkl" for i, name in enumerate(names)]
    files += [workdir / "merge_and_visualize" / "ml_results.png", workdir / "scores.json"]
    return files


def test_flow_end_to_end(prefect_api, repo_root, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.ml_workflow import ml_workflow
    from mltoolkit import classify, data_prep

    workdir = tmp_path / "workdir"
    state = asyncio.run(
        ml_workflow(
            dataset=str(repo_root / "data" / "moon.txt"),
            classifiers=list(SEED_SCORES),
            workdir=str(workdir),
            return_state=True,
        )
    )
    assert state.is_completed(), state
    scores = state.result()
    for path in _expected_layout(workdir, list(SEED_SCORES)):
        assert path.is_file(), path
    written = json.loads((workdir / "scores.json").read_text())
    prepped = data_prep(repo_root / "data" / "moon.txt")
    direct = {name: classify(prepped, name).score for name in SEED_SCORES}
    assert written == scores == direct
    assert {name: round(score, 2) for name, score in scores.items()} == SEED_SCORES

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    names = sorted(run.name for run in task_runs)
    assert names == sorted(["data_prep", "merge_and_plot"] + [f"classify[{name}]" for name in SEED_SCORES])
    assert all(run.state.is_completed() for run in task_runs)


def test_cli_runs_the_root_inputs(run_cli, cli_env, repo_root, tmp_path):
    workdir = tmp_path / "out dir"  # a space in the path on purpose
    result = run_cli(["-m", "flows.ml_workflow", "--inputs", "inputs.yml", "--workdir", str(workdir)], cli_env)
    assert result.returncode == 0, result.stderr
    for path in _expected_layout(workdir, list(SEED_SCORES)):
        assert path.is_file(), path
    for name, score in SEED_SCORES.items():
        assert f"{name}" in result.stdout and f"{score:.2f}" in result.stdout
    assert f"figure: {workdir / 'merge_and_visualize' / 'ml_results.png'}" in result.stdout


def test_cli_seed_url_and_overrides_work_offline(run_cli, cli_env, tmp_path):
    workdir = tmp_path / "wd"
    result = run_cli(
        [
            "-m",
            "flows.ml_workflow",
            "-p",
            f"dataset={SEED_URL}",
            "-p",
            "classifiers=[RBF SVM, {name: forest, estimator: sklearn.ensemble.RandomForestClassifier, "
            "params: {n_estimators: 5, random_state: 0}}]",
            "--workdir",
            str(workdir),
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads((workdir / "scores.json").read_text())
    assert list(scores) == ["rbf_svm", "forest"]
    assert round(scores["rbf_svm"], 2) == 0.97
    assert (workdir / "classification_1" / "forest.pkl").is_file()


def test_cli_help_does_not_start_anything(run_cli, offline_env):
    result = run_cli(["-m", "flows.ml_workflow", "--help"], offline_env)
    assert result.returncode == 0
    assert "--inputs" in result.stdout and "--workdir" in result.stdout and "--parameter" in result.stdout


GOOD_ROWS = "".join(f"{i * 0.1:.6f} {(i * 7 % 5) * 0.2:.6f} {i % 2}\n" for i in range(30))

BAD_INPUT_CASES = {
    # name: (inputs.yml text or None, extra CLI args, fragment of the error line)
    "unknown classifier": (
        "dataset: data.txt\nclassifiers: [rbf_svm, nearest_neighbors_x]\n",
        [],
        "known names: nearest_neighbours",
    ),
    "inputs missing": (None, ["--inputs", "missing.yml"], "file does not exist"),
    "inputs not yaml": ("dataset: data.txt\nclassifiers: [a,\n", [], "not valid YAML"),
    "missing dataset": ("classifiers: [rbf_svm]\n", [], "missing key 'dataset'"),
    "missing classifiers": ("dataset: data.txt\n", [], "missing key 'classifiers'"),
    "classifiers wrong type": ("dataset: data.txt\nclassifiers: {a: 1}\n", [], "expected a non-empty list"),
    "dataset wrong type": ("dataset: 12\nclassifiers: [rbf_svm]\n", [], "expected a path or URL string"),
    "dataset missing": ("dataset: nope.txt\nclassifiers: [rbf_svm]\n", [], "does not exist"),
    "dataset is a folder": ("dataset: .\nclassifiers: [rbf_svm]\n", [], "is a directory"),
    "dataset wrong column count": (
        "dataset: data.txt\nclassifiers: [rbf_svm]\n",
        ["@bad:X Y\n1 2\n" + GOOD_ROWS],
        "found 2 columns, expected 3",
    ),
    "dataset non-numeric": (
        "dataset: data.txt\nclassifiers: [rbf_svm]\n",
        ["@bad:X Y V\n1 x 0\n" + GOOD_ROWS],
        "non-numeric value",
    ),
    "dataset too few rows": (
        "dataset: data.txt\nclassifiers: [rbf_svm]\n",
        ["@bad:X Y V\n1 2 0\n2 1 1\n"],
        "expected at least 10",
    ),
    "dataset one class": (
        "dataset: data.txt\nclassifiers: [rbf_svm]\n",
        ["@bad:X Y V\n" + "1 2 0\n" * 20],
        "only one class",
    ),
    "dataset not text": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["@binary"], "not a UTF-8 text table"),
    "unreachable url": ("dataset: 'http://127.0.0.1:9/moon.txt'\nclassifiers: [rbf_svm]\n", [], "-p dataset=PATH"),
    "checksum mismatch": (
        "dataset: data.txt\ndataset_sha256: '" + "0" * 64 + "'\nclassifiers: [rbf_svm]\n",
        [],
        "sha256 is",
    ),
    "bad -p syntax": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["-p", "classifiers"], "expected key=value"),
    "bad -p yaml": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["-p", "classifiers=[a,"], "not valid YAML"),
    "unknown -p key": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["-p", "colour=red"], "unknown key(s) 'colour'"),
    "unknown option": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["--colour", "red"], "No such option"),
    "bad estimator params": (
        "dataset: data.txt\nclassifiers: [{name: f, estimator: sklearn.svm.SVC, params: {gama: 1}}]\n",
        [],
        "valid parameters",
    ),
    "workdir is a file": ("dataset: data.txt\nclassifiers: [rbf_svm]\n", ["@workdir-file"], "is a file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_CASES))
def test_bad_input_is_one_line_exit_1_and_changes_nothing(case, run_cli, offline_env, tmp_path, repo_root):
    inputs_text, extra, fragment = BAD_INPUT_CASES[case]
    data = tmp_path / "data.txt"
    data.write_bytes((repo_root / "data" / "moon.txt").read_bytes())
    args = ["-m", "flows.ml_workflow"]
    if inputs_text is not None:
        (tmp_path / "inputs.yml").write_text(inputs_text)
        args += ["--inputs", str(tmp_path / "inputs.yml")]
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    earlier = workdir / "scores.json"
    earlier.write_text('{"earlier": 1.0}\n')
    for item in extra:
        if item.startswith("@bad:"):
            data.write_text(item[len("@bad:") :])
        elif item == "@binary":
            data.write_bytes(b"\x89\xff\xfe" * 50)
        elif item == "@workdir-file":
            workdir = tmp_path / "a-file"
            workdir.write_text("not a folder")
        else:
            args.append(item)
    args += ["--workdir", str(workdir)]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_cli(args, offline_env, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before
    assert earlier.read_text() == '{"earlier": 1.0}\n'
