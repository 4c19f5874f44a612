"""Exact copies of what a run was given (``_mltoolkit/submitted/``), without Prefect."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mltoolkit.errors import WorkdirError
from mltoolkit.preservation.submitted import (
    DEFAULT_MAX_DATASET_BYTES,
    MAX_DATASET_BYTES_ENV,
    Submission,
    keep_native_submission,
    keep_spec_submission,
    max_dataset_bytes,
    read_submission,
)
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage import load_workflow
from tests.constants import MOON, SEED_SPEC_DIR, SEED_URL

#: A spec spread over three files, one outside the toplevel folder; CRLF line ends must survive the copy.
WORKFLOW = b"stages:\r\n  - name: a\r\n    dependencies: [init]\r\n    scheduler: {$ref: 'parts/stage.yml'}\r\n"
STAGE = b"scheduler_type: singlestep-stage\nparameters: {}\nstep: {$ref: '../../common/steps.yml#/step'}\n"
STEPS = b"step: {process: {process_type: string-interpolated-cmd, cmd: 'true'}}\n# a comment nobody parses\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def spread_spec(tmp_path: Path) -> Path:
    """``case/workflow.yml`` -> ``case/parts/stage.yml`` -> ``common/steps.yml``; returns ``case``."""
    files = {"case/workflow.yml": WORKFLOW, "case/parts/stage.yml": STAGE, "common/steps.yml": STEPS}
    for relative, data in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    return tmp_path / "case"


def test_a_spec_is_kept_byte_for_byte_with_its_relative_layout(tmp_path, spread_spec):
    workdir = tmp_path / "work"
    loaded = load_workflow("workflow.yml", spread_spec)
    manifest = keep_spec_submission(workdir, loaded=loaded, init={"n": 1})
    kept = json.loads(manifest.read_text())
    assert kept["kind"] == "spec" and kept["flow"] == "spec-workflow"
    # the common folder of the toplevel and every document: relative $refs resolve as before
    assert kept["workflow"] == "spec/case/workflow.yml"
    assert kept["toplevel"] == "spec/case"
    assert kept["files"] == {
        "spec/case/workflow.yml": _sha(WORKFLOW),
        "spec/case/parts/stage.yml": _sha(STAGE),
        "spec/common/steps.yml": _sha(STEPS),
    }
    submitted = WorkdirLayout(workdir).submitted
    assert (submitted / "spec/case/workflow.yml").read_bytes() == WORKFLOW
    assert (submitted / "spec/common/steps.yml").read_bytes() == STEPS
    assert kept["inputs"] == {"n": 1} and kept["inputs_file"] is None and kept["parameters"] == {}
    assert kept["datasets"] == [] and kept["remote_documents"] == []
    # the copies load as the spec did
    again = load_workflow(kept["workflow"].removeprefix("spec/case/"), submitted / kept["toplevel"])
    assert again.data == loaded.data


def test_the_seed_spec_keeps_its_inputs_file_parameters_and_dataset(tmp_path):
    inputs_file = SEED_SPEC_DIR / "inputs.yml"
    submission = Submission.from_command_line(inputs_file, ["classifiers=[rbf_svm]", " dataset = " + SEED_URL])
    init = {"dataset": SEED_URL, "classifiers": ["rbf_svm"]}
    keep_spec_submission(
        tmp_path, loaded=load_workflow("workflow.yml", SEED_SPEC_DIR), init=init, submission=submission
    )
    kept = read_submission(tmp_path)
    assert kept["parameters"] == {"classifiers": "[rbf_svm]", "dataset": " " + SEED_URL}
    assert kept["inputs_file"] == "inputs.yml"
    assert kept["files"]["inputs.yml"] == _sha(inputs_file.read_bytes())
    assert set(kept["files"]) == {"inputs.yml", "spec/workflow.yml", "spec/steps.yml", "data/moon.txt"}
    [dataset] = kept["datasets"]
    # the seed's URL is served by the bundled copy, so nothing is fetched
    assert dataset == {
        "name": "moon.txt",
        "original": SEED_URL,
        "path": "data/moon.txt",
        "url": SEED_URL,
        "sha256": _sha(MOON.read_bytes()),
        "bytes": MOON.stat().st_size,
    }


def test_a_native_run_keeps_its_parameters_and_a_copy_of_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(MOON.parent)
    inputs = {"dataset": MOON.name, "dataset_sha256": None, "classifiers": ["decision_tree"]}
    keep_native_submission(tmp_path / "w", inputs=inputs)  # a deployment: no command line
    kept = read_submission(tmp_path / "w")
    assert kept["kind"] == "native" and kept["flow"] == "ml-workflow"
    assert kept["workflow"] is None and kept["toplevel"] is None and kept["inputs_file"] is None
    assert kept["parameters"] == {} and kept["inputs"] == inputs
    [dataset] = kept["datasets"]
    assert dataset["original"] == str(MOON.resolve())  # where the relative path led, not the bare name
    assert (WorkdirLayout(tmp_path / "w").submitted / dataset["path"]).read_bytes() == MOON.read_bytes()


def test_a_dataset_above_the_limit_is_referenced_not_copied(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_DATASET_BYTES_ENV, "100")
    keep_native_submission(tmp_path, inputs={"dataset": str(MOON)})
    kept = read_submission(tmp_path)
    assert kept["datasets"] == [
        {
            "name": "moon.txt",
            "original": str(MOON.resolve()),
            "path": None,
            "url": MOON.resolve().as_uri(),
            "sha256": _sha(MOON.read_bytes()),
            "bytes": MOON.stat().st_size,
        }
    ]
    assert kept["files"] == {}


def test_a_dataset_that_cannot_be_found_is_noted_and_left_to_the_step(tmp_path):
    keep_native_submission(tmp_path, inputs={"dataset": str(tmp_path / "missing.txt")})
    [dataset] = read_submission(tmp_path)["datasets"]
    assert dataset["path"] is None and dataset["sha256"] is None


@pytest.mark.parametrize(("value", "expected"), [("", DEFAULT_MAX_DATASET_BYTES), ("12", 12), (" 7 ", 7)])
def test_the_dataset_limit_comes_from_the_environment(value, expected):
    assert max_dataset_bytes({MAX_DATASET_BYTES_ENV: value}) == expected


def test_a_bad_dataset_limit_is_one_line_naming_the_variable():
    with pytest.raises(WorkdirError, match=f"{MAX_DATASET_BYTES_ENV}='lots'.*whole number"):
        max_dataset_bytes({MAX_DATASET_BYTES_ENV: "lots"})


def test_a_new_run_replaces_the_previous_copies_and_leaves_no_temporary_folder(tmp_path, spread_spec):
    keep_spec_submission(tmp_path, loaded=load_workflow("workflow.yml", spread_spec), init={})
    keep_native_submission(tmp_path, inputs={"dataset": str(MOON)})
    layout = WorkdirLayout(tmp_path)
    assert sorted(path.name for path in layout.submitted.iterdir()) == ["data", "submitted.json"]
    assert [path.name for path in layout.records.iterdir()] == ["submitted"]


def test_a_failure_while_copying_keeps_the_previous_copies(tmp_path, monkeypatch):
    keep_native_submission(tmp_path, inputs={"dataset": str(MOON)})
    before = WorkdirLayout(tmp_path).submitted_manifest.read_bytes()
    monkeypatch.setenv(MAX_DATASET_BYTES_ENV, "lots")
    with pytest.raises(WorkdirError):
        keep_native_submission(tmp_path, inputs={"dataset": str(MOON)})
    assert WorkdirLayout(tmp_path).submitted_manifest.read_bytes() == before
    assert [path.name for path in WorkdirLayout(tmp_path).records.iterdir()] == ["submitted"]


@pytest.mark.parametrize(("content", "fragment"), [(None, "no record"), ("[1]", "expected a JSON object")])
def test_reading_a_missing_or_wrong_manifest_is_one_line(tmp_path, content, fragment):
    if content is not None:
        WorkdirLayout(tmp_path).submitted.mkdir(parents=True)
        WorkdirLayout(tmp_path).submitted_manifest.write_text(content)
    with pytest.raises(WorkdirError, match=fragment):
        read_submission(tmp_path)


def test_a_deployments_inputs_file_is_kept_when_no_command_line_names_one(tmp_path):
    inputs_file = SEED_SPEC_DIR / "inputs.yml"
    loaded = load_workflow("workflow.yml", SEED_SPEC_DIR)
    keep_spec_submission(tmp_path, loaded=loaded, init={"classifiers": []}, inputs_file=str(inputs_file))
    kept = read_submission(tmp_path)
    assert kept["inputs_file"] == "inputs.yml" and kept["parameters"] == {}
    assert (WorkdirLayout(tmp_path).submitted / "inputs.yml").read_bytes() == inputs_file.read_bytes()
