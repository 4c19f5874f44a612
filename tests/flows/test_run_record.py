"""The flows' record writer: dict steps in, the typed record and its crate out (no Prefect server)."""

from __future__ import annotations

import json
import platform

import pytest
from pydantic import ValidationError

from flows.run_record import RUN_RECORD, state_label, write_run_record
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.workdir.record import RunStep, read_run_record

STEP = {
    "id": "/classification_0",
    "scope": "",
    "stage": "classification",
    "index": 0,
    "name": "classification_0",
    "workdir": "/w/classification_0",
    "parameters": {"input_data": "/w/data_prep/prepped_data.pkl", "classifier": "rbf_svm"},
    "published": {"ml_output": None},
    "state": "FAILED",
    "outputs": {},
    "started": None,
    "ended": "2026-01-02T03:04:05.123456+00:00",
    "attempts": 2,
    "task_run_id": "6a1c",
    "error": "ValueError: boom",
}


def _write(workdir, steps, **options):
    return write_run_record(
        workdir,
        status="failed",
        flow="ml-workflow",
        flow_run_id="0cd26899-ea7e-4720-ad10-f515cfe6c87e",
        started="2026-01-02T03:04:00+00:00",
        steps=steps,
        workflow={"flow": "flows/ml_workflow.py:ml_workflow", "file": "/repo/flows/ml_workflow.py"},
        inputs={"dataset": "/data/moon.txt", "classifiers": ["rbf_svm"]},
        **options,
    )


def test_dict_steps_are_written_as_given_with_the_runs_fields(tmp_path):
    path = _write(tmp_path, [STEP])

    assert path == tmp_path.resolve() / RUN_RECORD == WorkdirLayout(tmp_path).run_record
    written = json.loads(path.read_text())
    assert written["steps"] == [STEP]
    assert written["software"]["python"] == platform.python_version()
    assert written["ended"] >= written["started"]
    assert read_run_record(tmp_path).steps[0] == RunStep.model_validate(STEP)
    assert WorkdirLayout(tmp_path).crate.is_file()


def test_typed_steps_extra_fields_and_no_crate(tmp_path):
    _write(tmp_path, [RunStep.model_validate(STEP)], extra={"problems": ["x"]}, crate=False)

    written = json.loads(WorkdirLayout(tmp_path).run_record.read_text())
    assert written["problems"] == ["x"] and written["steps"] == [STEP]
    assert not WorkdirLayout(tmp_path).crate.exists()


def test_a_step_outside_the_format_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValidationError, match="attempts"):
        _write(tmp_path, [{**STEP, "attempts": "twice"}])

    assert not WorkdirLayout(tmp_path).records.exists()


@pytest.mark.parametrize("name, label", [("Completed", "COMPLETED"), ("Timed Out", "TIMED_OUT"), (None, "PENDING")])
def test_state_labels(name, label):
    assert state_label(name) == label
