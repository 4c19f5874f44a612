"""The run record as a Workflow Run RO-Crate (pure: no Prefect, no network).

Crates are read back with ro-crate-py itself, as a consumer would. Properties
are read from ``entity.properties()`` (the raw JSON-LD): ro-crate-py's
``entity[key]`` resolves every value through a lookup that scans the whole
crate for ids it does not hold (such as the actionStatus IRIs).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rocrate.rocrate import ROCrate

import mltoolkit.workdir.provenance.serialise as serialise
from mltoolkit.workdir.artifacts import atomic_write_json, sha256_file
from mltoolkit.workdir.provenance import (
    ATTEMPTS_TERM,
    COMPLETED,
    CRATE_METADATA,
    FAILED,
    POTENTIAL,
    PROFILES,
    WORKFLOW_RUN_CONTEXT,
    action_status,
    write_run_crate,
)

SOFTWARE = {
    "python": "3.11.7",
    "mltoolkit": "0.1.0",
    "prefect": "3.9.1",
    "scikit-learn": "1.9.1",
    "numpy": "2.4.6",
    "matplotlib": "3.11.2",
    "cloudpickle": "3.1.3",
}
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _load(workdir: Path) -> ROCrate:
    """Read the crate back, failing on any warning (e.g. a data entity missing from hasPart)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ROCrate(workdir)


def _props(crate: ROCrate, identifier: str) -> dict[str, Any]:
    entity = crate.get(identifier)
    assert entity is not None, f"{identifier} is not in the crate"
    return entity.properties()


def _ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [item["@id"] for item in values]


def _types(properties: dict[str, Any]) -> set[str]:
    kind = properties["@type"]
    return set(kind if isinstance(kind, list) else [kind])


def _step_actions(crate: ROCrate) -> dict[str, dict[str, Any]]:
    """Step CreateActions by the Prefect task run id they carry."""
    return {
        entity.properties()["identifier"]: entity.properties()
        for entity in crate.get_by_type("CreateAction")
        if entity.id.startswith("#step-run")
    }


def _same_instant(written: str, recorded: str) -> bool:
    """Crate times keep milliseconds; the record keeps microseconds."""
    return abs(datetime.fromisoformat(written) - datetime.fromisoformat(recorded)) < timedelta(milliseconds=1)


# --- a hand-made native run --------------------------------------------------------------


@pytest.fixture()
def native_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A native-flow workdir with real files and its run record: 4 steps, one FAILED, one CACHED."""
    workdir = tmp_path / "run"
    flow_file = tmp_path / "flows" / "ml_workflow.py"
    _write(flow_file, b"# the flow\n")
    dataset = tmp_path / "data" / "moon.txt"
    _write(dataset, b"X Y Value\n")
    prepped = _write(workdir / "data_prep" / "prepped_data.pkl", b"prepped")
    rbf = _write(workdir / "classification_0" / "rbf_svm.pkl", b"rbf" * 1000)
    tree = _write(workdir / "classification_2" / "decision_tree.pkl", b"tree")
    figure = _write(workdir / "merge_and_visualize" / "ml_results.png", b"\x89PNG...")
    scores = _write(workdir / "scores.json", b'{"rbf_svm": 0.97}')
    prepped_path = str(workdir / "data_prep" / "prepped_data.pkl")

    def step(
        name: str,
        stage: str,
        index: int | None,
        parameters: dict[str, Any],
        outputs: dict[str, str],
        state: str,
        seconds: float,
        attempts: int = 1,
        error: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": f"/{name}",
            "scope": "",
            "stage": stage,
            "index": index,
            "name": name,
            "workdir": str(workdir / name),
            "parameters": parameters,
            "published": {},
            "state": state,
            "outputs": outputs,
            "started": _at(seconds),
            "ended": _at(seconds + 0.5),
            "attempts": attempts,
            "task_run_id": f"task-{name}",
            "error": error,
        }

    record = {
        "status": "failed",
        "flow": "ml-workflow",
        "flow_run_id": "0cd26899-ea7e-4720-ad10-f515cfe6c87e",
        "started": _at(0),
        "ended": _at(10),
        "workflow": {"flow": "flows/ml_workflow.py:ml_workflow", "file": str(flow_file)},
        "inputs": {
            "dataset": str(dataset),
            "dataset_sha256": None,
            "classifiers": ["rbf_svm", "linear_svm", "decision_tree"],
        },
        "software": dict(SOFTWARE),
        "steps": [
            step(
                "data_prep",
                "data_prep",
                None,
                {"dataset": str(dataset), "dataset_sha256": None},
                {"data_prep/prepped_data.pkl": prepped},
                "COMPLETED",
                1,
            ),
            step(
                "classification_0",
                "classification",
                0,
                {"input_data": prepped_path, "classifier": "rbf_svm"},
                {"classification_0/rbf_svm.pkl": rbf},
                "COMPLETED",
                2,
                attempts=2,
            ),
            step(
                "classification_1",
                "classification",
                1,
                {"input_data": prepped_path, "classifier": "linear_svm"},
                {},
                "FAILED",
                2,
                attempts=3,
                error="ValueError: boom",
            ),
            step(
                "classification_2",
                "classification",
                2,
                {"input_data": prepped_path, "classifier": {"name": "decision_tree", "params": {"max_depth": 5}}},
                {"classification_2/decision_tree.pkl": tree},
                "CACHED",
                2,
            ),
            step(
                "merge_and_visualize",
                "merge_and_visualize",
                None,
                {
                    "input_data": prepped_path,
                    "ml_inputs": [
                        str(workdir / "classification_0" / "rbf_svm.pkl"),
                        str(workdir / "classification_2" / "decision_tree.pkl"),
                    ],
                },
                {"merge_and_visualize/ml_results.png": figure, "scores.json": scores},
                "COMPLETED",
                5,
            ),
        ],
    }
    atomic_write_json(workdir / "_mltoolkit" / "run.json", record)
    return workdir, record


def test_writes_only_the_metadata_file_and_returns_its_path(native_run, tmp_path):
    workdir, record = native_run
    before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))

    path = write_run_crate(workdir, record)

    assert path == workdir.resolve() / CRATE_METADATA
    after = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert sorted(set(after) - set(before)) == [f"run/{CRATE_METADATA}"]  # nothing copied, no temp left
    json.loads(path.read_text(encoding="utf-8"))


def test_every_step_is_a_create_action_with_times_state_and_attempts(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    actions = _step_actions(crate)
    assert set(actions) == {step["task_run_id"] for step in record["steps"]}
    for step in record["steps"]:
        action = actions[step["task_run_id"]]
        assert step["name"] in action["name"]
        assert _same_instant(action["startTime"], step["started"])
        assert _same_instant(action["endTime"], step["ended"])
        assert action["attempts"] == step["attempts"]
        assert step["state"] in action["description"]
        assert action["actionStatus"] == (FAILED if step["state"] == "FAILED" else COMPLETED)
        assert _ids(action["instrument"]) == [f"#tool/{step['stage']}"]
    # one more CreateAction: the run of the whole workflow
    assert len(crate.get_by_type("CreateAction")) == len(record["steps"]) + 1


def test_failed_step_and_failed_run_have_failed_action_status_and_error(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    failed = _step_actions(crate)["task-classification_1"]
    assert failed["actionStatus"] == FAILED
    assert failed["error"] == "ValueError: boom"
    assert "result" not in failed
    cached = _step_actions(crate)["task-classification_2"]
    assert cached["actionStatus"] == COMPLETED and "error" not in cached
    assert "CACHED" in cached["description"]

    run = _props(crate, "#workflow-run-0cd26899-ea7e-4720-ad10-f515cfe6c87e")
    assert run["actionStatus"] == FAILED
    assert "classification_1: ValueError: boom" in run["error"]
    assert _same_instant(run["startTime"], record["started"]) and _same_instant(run["endTime"], record["ended"])


def test_output_files_are_in_the_crate_with_their_real_sha256_and_size(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    actions = _step_actions(crate)
    checked = 0
    for step in record["steps"]:
        results = _ids(actions[step["task_run_id"]].get("result", []))
        assert results == list(step["outputs"])  # ids relative to WORKDIR: inside the crate
        for relative in step["outputs"]:
            entity = crate.get(relative)
            assert "File" in _types(entity.properties())
            assert entity.properties()["sha256"] == sha256_file(workdir / relative)
            assert int(entity.properties()["contentSize"]) == (workdir / relative).stat().st_size
            assert entity in crate.data_entities  # listed in the root's hasPart
            checked += 1
    assert checked == 5
    assert _props(crate, "merge_and_visualize/ml_results.png")["encodingFormat"] == "image/png"


def test_steps_consume_the_files_earlier_steps_wrote(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    actions = _step_actions(crate)
    assert "data_prep/prepped_data.pkl" in _ids(actions["task-classification_0"]["object"])
    merge_objects = _ids(actions["task-merge_and_visualize"]["object"])
    assert {"data_prep/prepped_data.pkl", "classification_0/rbf_svm.pkl", "classification_2/decision_tree.pkl"} <= set(
        merge_objects
    )
    # the run's results are what the last step (whose files nobody read) wrote
    run = _props(crate, "#workflow-run-0cd26899-ea7e-4720-ad10-f515cfe6c87e")
    assert set(_ids(run["result"])) == {"merge_and_visualize/ml_results.png", "scores.json"}
    # the files realise the tools' formal parameters
    assert "#input/classification:input_data" in _ids(_props(crate, "data_prep/prepped_data.pkl")["exampleOfWork"])


def test_parameters_that_are_not_files_are_property_values(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    classifier = _props(crate, "#value/classification_0:classifier")
    assert "PropertyValue" in _types(classifier)
    assert classifier["name"] == "classifier" and classifier["value"] == "rbf_svm"
    assert _ids(classifier["exampleOfWork"]) == ["#input/classification:classifier"]
    structured = _props(crate, "#value/classification_2:classifier")
    assert json.loads(structured["value"]) == {"name": "decision_tree", "params": {"max_depth": 5}}
    formal = _props(crate, "#input/classification:classifier")
    assert "FormalParameter" in _types(formal) and formal["additionalType"] == "Text"
    assert "#input/classification:classifier" in _ids(_props(crate, "#tool/classification")["input"])


def test_run_inputs_are_formal_parameters_of_the_workflow(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    workflow = crate.mainEntity.properties()
    assert _ids(workflow["input"]) == ["#input:dataset", "#input:dataset_sha256", "#input:classifiers"]
    dataset_id = Path(record["inputs"]["dataset"]).as_uri()  # outside WORKDIR: absolute id, not copied
    assert _props(crate, "#input:dataset")["additionalType"] == "File"
    assert "#input:dataset" in _ids(_props(crate, dataset_id)["exampleOfWork"])
    classifiers = _props(crate, "#value:classifiers")
    assert classifiers["value"] == ["rbf_svm", "linear_svm", "decision_tree"]
    assert _props(crate, "#input:classifiers")["multipleValues"] is True
    run = _props(crate, "#workflow-run-0cd26899-ea7e-4720-ad10-f515cfe6c87e")
    assert _ids(run["object"]) == [dataset_id, "#value:dataset_sha256", "#value:classifiers"]
    assert "value" not in _props(crate, "#value:dataset_sha256")  # None: no value


def test_root_dataset_describes_the_run_and_conforms_to_the_profiles(native_run):
    workdir, record = native_run
    path = write_run_crate(workdir, record)
    crate = _load(workdir)

    root = crate.root_dataset.properties()
    assert record["flow_run_id"] in root["name"]
    assert "ml-workflow" in root["description"] and "1 failed" in root["description"]
    assert _same_instant(root["dateCreated"], record["started"])
    assert _same_instant(root["datePublished"], record["ended"])
    assert _ids(root["conformsTo"]) == list(PROFILES)
    for profile_id, (name, version) in PROFILES.items():
        assert _props(crate, profile_id)["name"] == name and _props(crate, profile_id)["version"] == version
    assert root["license"]
    mentions = set(_ids(root["mentions"]))
    assert {entity.id for entity in crate.get_by_type("CreateAction")} == mentions
    assert crate.version == "1.1"
    assert "https://w3id.org/workflowhub/workflow-ro-crate/1.0" in _ids(crate.metadata.properties()["conformsTo"])
    context = json.loads(path.read_text(encoding="utf-8"))["@context"]
    assert context[:2] == ["https://w3id.org/ro/crate/1.1/context", WORKFLOW_RUN_CONTEXT]
    assert context[2] == {"attempts": ATTEMPTS_TERM}
    assert "rdf:Property" in _types(_props(crate, ATTEMPTS_TERM))


def test_workflow_outside_workdir_is_a_computational_workflow_by_file_uri(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    flow_file = Path(record["workflow"]["file"])
    workflow = crate.mainEntity
    assert workflow.id == flow_file.as_uri()
    properties = workflow.properties()
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"} <= _types(properties)
    assert properties["name"] == "flows/ml_workflow.py:ml_workflow"
    assert properties["sha256"] == sha256_file(flow_file)
    assert _ids(properties["step"]) == ["#stage/data_prep", "#stage/classification", "#stage/merge_and_visualize"]
    assert _ids(properties["hasPart"]) == ["#tool/data_prep", "#tool/classification", "#tool/merge_and_visualize"]
    run = _props(crate, "#workflow-run-0cd26899-ea7e-4720-ad10-f515cfe6c87e")
    assert _ids(run["instrument"]) == [workflow.id]
    # Provenance Run Crate: a ControlAction ties each step run to its HowToStep
    controls = crate.get_by_type("ControlAction")
    assert len(controls) == len(record["steps"])
    assert {_ids(control.properties()["instrument"])[0] for control in controls} == set(_ids(properties["step"]))
    assert _props(crate, "#stage/classification")["position"] == 1


def test_workflow_inside_workdir_gets_a_relative_id(native_run):
    workdir, record = native_run
    _write(workdir / "flow.py", b"# copied in\n")
    record = {**record, "workflow": str(workdir / "flow.py")}
    write_run_crate(workdir, record)

    assert _load(workdir).mainEntity.id == "flow.py"


def test_software_versions_are_applications_linked_from_the_actions(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    applications = {
        entity.id: entity.properties()
        for entity in crate.get_by_type("SoftwareApplication")
        if not entity.id.startswith("#tool/")
    }
    assert {app["softwareVersion"] for app in applications.values()} == set(SOFTWARE.values())
    assert {app["name"] for app in applications.values()} == {
        "Python",
        "mltoolkit",
        "Prefect",
        "scikit-learn",
        "NumPy",
        "Matplotlib",
        "cloudpickle",
    }
    assert "https://pypi.org/project/scikit-learn/1.9.1/" in applications
    assert "https://www.python.org/downloads/release/python-3117/" in applications
    # each step action's instrument (its stage's tool) requires all of them
    for action in _step_actions(crate).values():
        tool = _props(crate, _ids(action["instrument"])[0])
        assert set(_ids(tool["softwareRequirements"])) == set(applications)
        assert tool["version"] == SOFTWARE["mltoolkit"]
    # and the engine run (Provenance Run Crate's OrganizeAction) is run by Prefect + mltoolkit
    (engine,) = crate.get_by_type("OrganizeAction")
    assert set(_ids(engine.properties()["instrument"])) == {
        "https://pypi.org/project/prefect/3.9.1/",
        "#software/mltoolkit",
    }
    assert len(_ids(engine.properties()["object"])) == len(record["steps"])


def test_run_record_is_in_the_crate_about_the_run(native_run):
    workdir, record = native_run
    write_run_crate(workdir, record)
    crate = _load(workdir)

    run_record = _props(crate, "_mltoolkit/run.json")
    assert _ids(run_record["about"]) == ["#workflow-run-0cd26899-ea7e-4720-ad10-f515cfe6c87e"]
    assert run_record["encodingFormat"] == "application/json"


# --- a spec run ---------------------------------------------------------------------------


def test_spec_run_lists_the_spec_files_and_resolves_published_globs(tmp_path):
    spec = tmp_path / "spec"
    _write(
        spec / "workflow.yml",
        b"stages:\n- name: a\n  scheduler: {step: {$ref: 'steps.yml#/a'}}\n"
        b'- name: map\n  scheduler: {workflow: {$ref: "sub.yml"}}\n',
    )
    _write(spec / "sub.yml", b"stages:\n- name: inner\n  scheduler: {step: {$ref: steps.yml#/b}}\n")
    _write(spec / "steps.yml", b"a: {}\nb: {}\n")
    _write(spec / "inputs.yml", b"n: 2\n")
    workdir = tmp_path / "run"
    pkl = _write(workdir / "a" / "out.pkl", b"a")
    sidecar = _write(workdir / "a" / "out.pkl.sha256", b"x  out.pkl\n")
    inner = [_write(workdir / f"map_{i}" / "inner" / "r.txt", str(i).encode()) for i in range(2)]
    record = {
        "status": "completed",
        "flow": "spec-workflow",
        "flow_run_id": "spec-run",
        "started": _at(0),
        "ended": _at(9),
        "workflow": {"workflow": str(spec / "workflow.yml"), "toplevel": str(spec)},
        "inputs": {"n": 2},
        "software": dict(SOFTWARE),
        "steps": [
            {
                "id": "/a",
                "scope": "",
                "stage": "a",
                "index": None,
                "name": "a",
                "state": "COMPLETED",
                "parameters": {"outdir": str(workdir / "a"), "n": 2},
                "outputs": {"a/out.pkl": pkl, "a/out.pkl.sha256": sidecar},
                "started": _at(1),
                "ended": _at(2),
                "attempts": 1,
                "task_run_id": "t-a",
            },
            *(
                {
                    "id": f"/map/{i}/inner",
                    "scope": f"/map/{i}",
                    "stage": "inner",
                    "index": None,
                    "name": "inner",
                    "state": "COMPLETED",
                    "parameters": {"data": f"{workdir}/a/*.pkl"},
                    "outputs": {f"map_{i}/inner/r.txt": inner[i]},
                    "started": _at(3),
                    "ended": _at(4),
                    "attempts": 1,
                    "task_run_id": f"t-inner-{i}",
                }
                for i in range(2)
            ),
        ],
    }

    write_run_crate(workdir, record)
    crate = _load(workdir)

    workflow = crate.mainEntity
    assert workflow.id == (spec / "workflow.yml").as_uri()
    assert "ComputationalWorkflow" in _types(workflow.properties())
    assert _props(crate, "#yadage")["name"] == "yadage"
    for name in ("steps.yml", "sub.yml"):  # $ref targets, transitively
        part = _props(crate, (spec / name).as_uri())
        assert {"File", "SoftwareSourceCode"} <= _types(part)
        assert _ids(part["isPartOf"]) == [workflow.id]
        assert part["sha256"] == sha256_file(spec / name)
    assert "File" in _types(_props(crate, (spec / "inputs.yml").as_uri()))
    assert not (workdir / "steps.yml").exists()  # listed, not copied
    # the glob a step was given names the files it matched, the shell's way (no sidecar)
    actions = _step_actions(crate)
    for i in range(2):
        assert _ids(actions[f"t-inner-{i}"]["object"]) == ["a/out.pkl"]
        assert _ids(actions[f"t-inner-{i}"]["instrument"]) == ["#tool/map/inner"]  # one stage, two scopes
    # a step's own output folder is a value it was given, not something it read
    assert "a/out.pkl" not in _ids(actions["t-a"]["object"])
    assert _ids(workflow.properties()["step"]) == ["#stage/a", "#stage/map/inner"]
    run = _props(crate, "#workflow-run-spec-run")
    assert set(_ids(run["result"])) == {"map_0/inner/r.txt", "map_1/inner/r.txt"}


# --- a real run -----------------------------------------------------------------------------


def test_crate_of_a_real_pipeline_run_matches_the_files_it_wrote(tmp_path, repo_root):
    from mltoolkit.analysis.classifiers import parse_classifier
    from mltoolkit.analysis.pipeline import classification_step, merge_step, prepare_data_step

    workdir = tmp_path / "real"
    dataset = str(repo_root / "data" / "moon.txt")

    def timed(function, *args):
        started = datetime.now(UTC).isoformat()
        result = function(*args)
        return result, started, datetime.now(UTC).isoformat()

    def step(name, stage, index, parameters, refs, started, ended):
        return {
            "id": f"/{name}",
            "scope": "",
            "stage": stage,
            "index": index,
            "name": name,
            "workdir": str(workdir / name),
            "parameters": parameters,
            "published": {},
            "state": "COMPLETED",
            "outputs": {ref.path: ref.sha256 for ref in refs},
            "started": started,
            "ended": ended,
            "attempts": 1,
            "task_run_id": name,
            "error": None,
        }

    prepped, started, ended = timed(prepare_data_step, dataset, workdir)
    steps = [step("data_prep", "data_prep", None, {"dataset": dataset}, [prepped], started, ended)]
    outputs = []
    for index, name in enumerate(("nearest_neighbours", "decision_tree")):
        output, started, ended = timed(classification_step, prepped, parse_classifier(name), workdir, index)
        outputs.append(output)
        steps.append(
            step(
                f"classification_{index}",
                "classification",
                index,
                {"input_data": str(prepped.resolve(workdir)), "classifier": name},
                [output.result],
                started,
                ended,
            )
        )
    merged, started, ended = timed(merge_step, prepped, outputs, workdir)
    steps.append(
        step(
            "merge_and_visualize",
            "merge_and_visualize",
            None,
            {
                "input_data": str(prepped.resolve(workdir)),
                "ml_inputs": [str(output.result.resolve(workdir)) for output in outputs],
            },
            [merged.figure, merged.scores],
            started,
            ended,
        )
    )
    record = {
        "status": "completed",
        "flow": "ml-workflow",
        "flow_run_id": "real",
        "started": steps[0]["started"],
        "ended": steps[-1]["ended"],
        "workflow": {"flow": "flows/ml_workflow.py:ml_workflow", "file": str(repo_root / "flows" / "ml_workflow.py")},
        "inputs": {"dataset": dataset, "classifiers": ["nearest_neighbours", "decision_tree"]},
        "software": dict(SOFTWARE),
        "steps": steps,
    }

    write_run_crate(workdir, record)
    crate = _load(workdir)

    files = [relative for entry in steps for relative in entry["outputs"]]
    assert len(files) == 5
    for relative in files:
        assert _props(crate, relative)["sha256"] == sha256_file(workdir / relative)
    assert len(_step_actions(crate)) == 4
    merge = _step_actions(crate)["merge_and_visualize"]
    assert {output.result.path for output in outputs} <= set(_ids(merge["object"]))


# --- scale, atomicity, odd records ------------------------------------------------------------


def test_a_2000_step_record_is_written_and_reads_back(tmp_path):
    workdir = tmp_path / "big"
    shared = _write(workdir / "data_prep" / "prepped.pkl", b"shared")
    steps = [
        {
            "id": "/data_prep",
            "scope": "",
            "stage": "data_prep",
            "index": None,
            "name": "data_prep",
            "parameters": {"dataset": "moons"},
            "state": "COMPLETED",
            "outputs": {"data_prep/prepped.pkl": shared},
            "started": _at(0),
            "ended": _at(1),
            "attempts": 1,
            "task_run_id": "t-prep",
        }
    ]
    for index in range(2000):
        steps.append(
            {
                "id": f"/classification_{index}",
                "scope": "",
                "stage": "classification",
                "index": index,
                "name": f"classification_{index}",
                "parameters": {"input_data": str(workdir / "data_prep" / "prepped.pkl"), "classifier": "rbf_svm"},
                "state": "FAILED" if index % 500 == 7 else "COMPLETED",
                # outputs are not written: a record may outlive its files; sha256 comes from the record
                "outputs": {} if index % 500 == 7 else {f"classification_{index}/rbf_svm.pkl": f"{index:064x}"},
                "started": _at(2),
                "ended": _at(3),
                "attempts": 1,
                "task_run_id": f"t-{index}",
                "error": "boom" if index % 500 == 7 else None,
            }
        )
    record = {
        "status": "failed",
        "flow": "ml-workflow",
        "flow_run_id": "big",
        "started": _at(0),
        "ended": _at(4),
        "workflow": {"flow": "x", "file": str(tmp_path / "flow.py")},
        "inputs": {"dataset": "moons"},
        "software": dict(SOFTWARE),
        "steps": steps,
    }

    write_run_crate(workdir, record)
    crate = _load(workdir)

    actions = _step_actions(crate)
    assert len(actions) == 2001
    assert sum(action["actionStatus"] == FAILED for action in actions.values()) == 4
    assert _props(crate, "classification_1999/rbf_svm.pkl")["sha256"] == f"{1999:064x}"
    assert _ids(actions["t-1999"]["object"])[0] == "data_prep/prepped.pkl"
    assert len(_ids(_props(crate, "#tool/classification")["input"])) == 2  # one per parameter name


def test_a_failed_write_keeps_the_previous_crate(native_run, monkeypatch):
    workdir, record = native_run
    path = write_run_crate(workdir, record)
    previous = path.read_bytes()
    calls = 0

    def broken(entity):
        nonlocal calls
        calls += 1
        if calls == 10:
            raise OSError("disk full")
        return dict(entity)

    monkeypatch.setattr(serialise, "_compact", broken)
    with pytest.raises(OSError, match="disk full"):
        write_run_crate(workdir, {**record, "status": "completed"})

    assert path.read_bytes() == previous
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".tmp")] == []


def test_a_minimal_or_old_record_still_makes_a_readable_crate(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    write_run_crate(bare, {"status": "completed", "steps": []})
    crate = _load(bare)
    assert crate.mainEntity.id == "#workflow"
    assert len(crate.get_by_type("CreateAction")) == 1

    # the first records had no flow/software/times and named the spec at top level
    old = tmp_path / "old"
    spec = tmp_path / "spec" / "workflow.yml"
    _write(spec, b"stages: []\n")
    write_run_crate(
        old,
        {
            "status": "completed",
            "workflow": {"workflow": str(spec)},
            "steps": [
                {"scope": "", "stage": "s", "name": "s", "parameters": {"x": [1, 2]}, "state": "SKIPPED"},
                {"scope": "", "stage": "s", "name": "s", "parameters": {}, "state": "PENDING"},  # a repeated name
            ],
        },
    )
    crate = _load(old)
    assert crate.mainEntity.id == spec.as_uri()
    assert _props(crate, "#yadage")
    statuses = sorted(
        action.properties()["actionStatus"]
        for action in crate.get_by_type("CreateAction")
        if action.id.startswith("#step-run")
    )
    assert statuses == [POTENTIAL, POTENTIAL]
    assert "OrganizeAction" not in {t for e in crate.get_entities() for t in _types(e.properties())}


def test_spaces_and_non_ascii_names_are_quoted_ids_that_resolve(tmp_path):
    workdir = tmp_path / "wörk dir"
    digest = _write(workdir / "step one" / "out é.pkl", b"z")
    dataset = tmp_path / "dätä set.txt"
    _write(dataset, b"d")
    record = {
        "status": "completed",
        "flow": "ml-workflow",
        "flow_run_id": "r",
        "steps": [
            {
                "id": "/step one",
                "scope": "",
                "stage": "step one",
                "name": "step one",
                "state": "COMPLETED",
                "parameters": {"dataset": str(dataset)},
                "outputs": {"step one/out é.pkl": digest},
            },
            {
                "id": "/next",
                "scope": "",
                "stage": "next",
                "name": "next",
                "state": "COMPLETED",
                "parameters": {"data": str(workdir / "step one" / "out é.pkl")},
                "outputs": {},
            },
        ],
    }

    write_run_crate(workdir, record)
    crate = _load(workdir)

    output = crate.get("step%20one/out%20%C3%A9.pkl")
    assert output is not None and output.properties()["sha256"] == digest
    assert Path(output.source) == workdir / "step one" / "out é.pkl"  # resolves to the real file
    assert crate.get(dataset.as_uri()) is not None
    assert _ids(_step_actions_by_name(crate)["Run of step next"]["object"]) == [output.id]


def _step_actions_by_name(crate: ROCrate) -> dict[str, dict[str, Any]]:
    return {
        entity.properties()["name"]: entity.properties()
        for entity in crate.get_by_type("CreateAction")
        if entity.id.startswith("#step-run")
    }


@pytest.mark.parametrize(
    "state, expected",
    [
        ("COMPLETED", COMPLETED),
        ("CACHED", COMPLETED),
        ("completed", COMPLETED),
        ("FAILED", FAILED),
        ("CRASHED", FAILED),
        ("Cancelled", FAILED),
        ("failed", FAILED),
        ("RUNNING", "http://schema.org/ActiveActionStatus"),
        ("PENDING", POTENTIAL),
        (None, POTENTIAL),
    ],
)
def test_action_status_maps_prefect_states(state, expected):
    assert action_status(state) == expected


def test_written_file_has_one_entity_per_line_and_single_values(native_run):
    workdir, record = native_run
    text = write_run_crate(workdir, record).read_text(encoding="utf-8")

    graph = json.loads(text)["@graph"]
    assert len(text.splitlines()) == len(graph) + 3
    assert not any(isinstance(value, list) and len(value) == 1 for entity in graph for value in entity.values())
