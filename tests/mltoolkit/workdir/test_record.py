"""The typed run record: both flows' records round-trip unchanged; a bad file is one line."""

from __future__ import annotations

import copy
import json
import platform
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.errors import WorkdirError
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.workdir.record import (
    RunEnvironment,
    RunRecord,
    RunStep,
    RunWorkflow,
    StepCache,
    StepEnvironment,
    StepResources,
    main,
    read_run_record,
    run_record_schema,
    write_run_record,
)
from tests.constants import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "run-record.schema.json"
REGENERATE = "python -m mltoolkit.workdir.record --schema > docs/run-record.schema.json"
SOFTWARE = {"python": "3.11.7", "mltoolkit": "0.1.0", "prefect": "3.9.1", "scikit-learn": "1.9.1"}
T = "2026-01-02T03:04:05.123456+00:00"


def _native_record(workdir: Path) -> dict[str, Any]:
    """A record as the native flow writes it: a failed step with no result, an unfinished merge."""

    def step(stage: str, index: int | None, name: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"/{name}",
            "scope": "",
            "stage": stage,
            "index": index,
            "name": name,
            "workdir": str(workdir / name),
            "parameters": fields.pop("parameters"),
            "published": fields.pop("published", None),
            "state": fields.pop("state", "COMPLETED"),
            "outputs": fields.pop("outputs", {}),
            "started": fields.pop("started", T),
            "ended": fields.pop("ended", T),
            "attempts": fields.pop("attempts", 1),
            "task_run_id": fields.pop("task_run_id", f"task-{name}"),
            "error": fields.pop("error", None),
        }

    prepped = str(workdir / "data_prep" / "prepped_data.pkl")
    return {
        "status": "failed",
        "flow": "ml-workflow",
        "flow_run_id": "0cd26899-ea7e-4720-ad10-f515cfe6c87e",
        "started": T,
        "ended": T,
        "workflow": {"flow": "flows/ml_workflow.py:ml_workflow", "file": "/repo/flows/ml_workflow.py"},
        "inputs": {"dataset": "/data/moon.txt", "dataset_sha256": None, "classifiers": ["rbf_svm", {"name": "tree"}]},
        "software": SOFTWARE,
        "steps": [
            step(
                "data_prep",
                None,
                "data_prep",
                parameters={"dataset": "/data/moon.txt", "dataset_sha256": None},
                published={"prepped_data": prepped},
                outputs={"data_prep/prepped_data.pkl": "0" * 64},
            ),
            step(
                "classification",
                0,
                "classification_0",
                parameters={"input_data": prepped, "classifier": {"name": "tree", "params": {"max_depth": 5}}},
                published={"ml_output": None},
                state="FAILED",
                attempts=3,
                error="ValueError: boom",
            ),
            step(
                "merge_and_visualize",
                None,
                "merge_and_visualize",
                parameters={"input_data": prepped, "ml_inputs": [None]},
                state="PENDING",
                started=None,
                ended=None,
                attempts=None,
                task_run_id=None,
            ),
        ],
    }


def _spec_record(workdir: Path) -> dict[str, Any]:
    """A record as the spec flow writes it: subworkflow scopes, published lists, a cached step."""
    steps = [
        {
            "id": f"/map/{i}/inner",
            "scope": f"/map/{i}",
            "stage": "inner",
            "index": None,
            "name": "inner",
            "workdir": str(workdir / f"map_{i}" / "inner"),
            "parameters": {"data": f"{workdir}/a/*.pkl", "n": [1, 2.5, True], "nested": {"x": [{"y": None}]}},
            "published": {"outputs": [f"{workdir}/map_{i}/inner/r.txt"]},
            "state": "CACHED" if i else "COMPLETED",
            "error": None,
            "outputs": {f"map_{i}/inner/r.txt": f"{i:064x}"},
            "started": T,
            "ended": T,
            "attempts": 1,
            "task_run_id": f"t-{i}",
        }
        for i in range(2)
    ]
    return {
        "status": "completed",
        "flow": "spec-workflow",
        "flow_run_id": "spec-run",
        "started": T,
        "ended": T,
        "workflow": {"workflow": "/spec/workflow.yml", "toplevel": "/spec"},
        "inputs": {"n": 2, "names": ["a b", "ü"]},
        "software": SOFTWARE,
        "steps": steps,
    }


@pytest.fixture(params=[_native_record, _spec_record], ids=["native", "spec"])
def flow_record(request, tmp_path) -> dict[str, Any]:
    """A record in the shape one of the two flows writes."""
    return request.param(tmp_path)


# --- round trips ------------------------------------------------------------------------------


def test_both_flows_records_round_trip_key_for_key(tmp_path, flow_record):
    original = copy.deepcopy(flow_record)

    path = write_run_record(tmp_path, RunRecord.model_validate(flow_record))

    assert path == WorkdirLayout(tmp_path).run_record
    assert json.loads(path.read_text(encoding="utf-8")) == original
    assert list(json.loads(path.read_text())) == list(original)  # the same keys, in the same order
    assert read_run_record(tmp_path) == RunRecord.model_validate(original)


def test_the_typed_record_reads_as_the_flows_wrote_it(tmp_path, flow_record):
    write_run_record(tmp_path, RunRecord.model_validate(flow_record))

    record = read_run_record(tmp_path)

    assert record.status == flow_record["status"] and record.flow == flow_record["flow"]
    assert isinstance(record.workflow, RunWorkflow)
    assert [step.name for step in record.steps] == [step["name"] for step in flow_record["steps"]]
    assert all(isinstance(step, RunStep) for step in record.steps)
    assert record.steps[0].outputs == flow_record["steps"][0]["outputs"]


def test_optional_fields_are_absent_until_set_and_then_typed(tmp_path, flow_record):
    record = RunRecord.model_validate(flow_record)
    write_run_record(tmp_path, record)
    written = json.loads(WorkdirLayout(tmp_path).run_record.read_text())
    assert not {"cache", "environment", "resources", "stubbed"} & {key for step in written["steps"] for key in step}
    assert not {"error", "license"} & set(written)

    step = record.steps[0]
    step.cache = StepCache(reused=False, reason="code changed: mltoolkit/analysis/classifiers.py")
    step.environment = StepEnvironment(kind="docker", image="danikam/sklearn:latest", container="c0ffee")
    step.resources = StepResources(
        requested=["CVMFS", {"kubernetes_memory_limit": "8Gi"}],
        applied={"kubernetes_memory_limit": "address-space limit 8Gi of the step's processes (RLIMIT_AS)"},
        provided={"CVMFS": "--provide CVMFS=/cvmfs"},
    )
    step.stubbed = True
    write_run_record(tmp_path, record)

    again = read_run_record(tmp_path).steps[0]
    assert again.cache == StepCache(reused=False, reason="code changed: mltoolkit/analysis/classifiers.py")
    assert again.environment is not None and again.environment.container == "c0ffee"
    assert again.resources is not None and again.stubbed is True
    assert again.resources.requested == ["CVMFS", {"kubernetes_memory_limit": "8Gi"}]
    assert again.resources.provided == {"CVMFS": "--provide CVMFS=/cvmfs"}
    assert "mapped_to" not in json.loads(WorkdirLayout(tmp_path).run_record.read_text())["steps"][0]["environment"]


def test_unknown_keys_survive_a_read_and_a_write(tmp_path, flow_record):
    flow_record["problems"] = ["stage x was never applied"]
    flow_record["steps"][0]["planner_note"] = {"any": "thing"}

    write_run_record(tmp_path, RunRecord.model_validate(flow_record))

    written = json.loads(WorkdirLayout(tmp_path).run_record.read_text())
    assert written["problems"] == ["stage x was never applied"]
    assert written["steps"][0]["planner_note"] == {"any": "thing"}


def test_paths_are_written_as_text(tmp_path):
    record = RunRecord.model_validate(
        {
            "status": "completed",
            "workflow": {"workflow": tmp_path / "workflow.yml"},
            "steps": [{"stage": "s", "name": "s", "workdir": tmp_path / "s", "parameters": {"p": tmp_path / "x"}}],
        }
    )

    write_run_record(tmp_path, record)

    written = json.loads(WorkdirLayout(tmp_path).run_record.read_text())
    assert written["workflow"] == {"workflow": str(tmp_path / "workflow.yml")}
    assert written["steps"][0]["workdir"] == str(tmp_path / "s")
    assert written["steps"][0]["parameters"] == {"p": str(tmp_path / "x")}


@pytest.mark.parametrize(
    "old",
    [
        {"status": "completed", "steps": []},
        {"status": "completed", "workflow": "/spec/workflow.yml", "steps": []},
        {
            "status": "failed",
            "workflow": {"workflow": "/spec/workflow.yml"},
            "steps": [{"scope": "", "stage": "s", "name": "s", "parameters": {"x": [1, 2]}, "state": "SKIPPED"}],
        },
    ],
    ids=["minimal", "workflow as text", "first format"],
)
def test_older_and_minimal_records_still_validate(old):
    record = RunRecord.model_validate(old)

    assert record.model_dump(mode="json", exclude_unset=True) == old


def test_writing_replaces_the_record_atomically(tmp_path, flow_record):
    write_run_record(tmp_path, RunRecord.model_validate({"status": "running", "steps": []}))
    write_run_record(tmp_path, RunRecord.model_validate(flow_record))

    records = WorkdirLayout(tmp_path).records
    assert sorted(path.name for path in records.iterdir()) == ["run.json"]  # no temporary file left
    assert read_run_record(tmp_path).status == flow_record["status"]


# --- the schema -----------------------------------------------------------------------------


def test_the_committed_schema_is_the_models_schema():
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))

    assert committed == run_record_schema(), f"docs/run-record.schema.json is out of date; regenerate it: {REGENERATE}"


def test_the_schema_describes_the_steps_and_their_optional_fields():
    schema = run_record_schema()
    step = schema["$defs"]["RunStep"]

    assert schema["required"] == ["status"] and set(step["required"]) == {"stage", "name"}
    assert {"cache", "environment", "resources", "stubbed", "outputs", "attempts"} <= set(step["properties"])
    assert all(prop.get("description") for prop in step["properties"].values())


def test_the_command_line_prints_the_schema(capsys):
    assert main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == run_record_schema()
    assert main([]) == 1


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["no run record", "is ", "the work directory of a run?"]),
        (b"", ["not valid JSON", "damaged", "run the workflow again"]),
        (b'{"status": "completed", "steps": [', ["not valid JSON", "damaged"]),
        (b"[1, 2]", ["not an mltoolkit run record", "expected the run.json a run of mltoolkit writes"]),
        (b'{"name": "another tool"}', ["not an mltoolkit run record (status: Field required"]),
        (b'{"status": "done", "steps": []}', ["not an mltoolkit run record (status: "]),
        (b'{"status": "failed", "steps": [{"stage": "s"}]}', ["(steps.0.name: Field required"]),
        (b'{"status": "failed", "started": "yesterday"}', ["(started: ", "expected an ISO 8601 time"]),
        (b'{"status": "failed", "steps": [{"stage": "s", "name": "s", "attempts": 0}]}', ["steps.0.attempts"]),
    ],
    ids=["missing", "empty", "truncated", "a list", "foreign", "unknown status", "step without name", "bad time", "0"],
)
def test_a_bad_record_is_one_line_naming_the_file(tmp_path, content, fragments):
    path = WorkdirLayout(tmp_path).run_record
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_bytes(content)

    with pytest.raises(WorkdirError) as raised:
        read_run_record(tmp_path)

    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_record_that_is_a_folder_is_one_line(tmp_path):
    WorkdirLayout(tmp_path).run_record.mkdir(parents=True)

    with pytest.raises(WorkdirError, match="cannot read the run record") as raised:
        read_run_record(tmp_path)
    assert "\n" not in str(raised.value)


def test_a_resources_list_of_an_older_record_reads_as_what_was_requested(flow_record):
    flow_record["steps"][0]["resources"] = ["CVMFS", {"kubernetes_job_timeout": 60}]

    step = RunRecord.model_validate(flow_record).steps[0]

    assert step.resources == StepResources(requested=["CVMFS", {"kubernetes_job_timeout": 60}])


@pytest.mark.parametrize(
    ("cpuinfo", "flags"),
    [
        (
            "processor\t: 0\nflags\t\t: sse2 avx fpu avx\n\nprocessor\t: 1\nflags\t\t: sse2 avx fpu\n",
            ["avx", "fpu", "sse2"],
        ),
        ("processor\t: 0\nFeatures\t: fp asimd\n", ["asimd", "fp"]),
        ("processor\t: 0\n", []),
        (None, []),
    ],
)
def test_the_environment_names_this_machine_and_its_cpu_flags(tmp_path, cpuinfo, flags):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)

    environment = RunEnvironment.current(path)

    assert environment.cpu_flags == flags
    assert environment.platform == platform.platform() and environment.machine == platform.machine()


def test_the_environment_round_trips_and_older_records_have_none(tmp_path, flow_record):
    assert RunRecord.model_validate(flow_record).environment is None
    environment = RunEnvironment(platform="Linux-x", machine="x86_64", cpu_flags=["avx"])
    write_run_record(tmp_path, RunRecord.model_validate({**flow_record, "environment": environment}))

    written = json.loads(WorkdirLayout(tmp_path).run_record.read_text())["environment"]

    assert written == {"platform": "Linux-x", "machine": "x86_64", "cpu_flags": ["avx"]}
    assert read_run_record(tmp_path).environment == environment
