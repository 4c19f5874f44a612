"""Phase 3/4: reference resolution and the workflow state machine (no processes run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage import validate_workflow
from mltoolkit.yadage.planner import CACHED, COMPLETED, FAILED, PENDING, RUNNING, WorkflowRun
from mltoolkit.yadage.planner.folders import folder_name, step_folder

from .conftest import NOOP_STEP, case_inputs, load_case, noop_stage, plan_all


def test_seed_plans_prep_then_five_classifications_then_the_merge(tmp_path):
    run = WorkflowRun(load_case("seed_parallel"), case_inputs("seed_parallel"), tmp_path)
    assert not run.finished
    [prep] = run.advance()
    assert (prep.scope, prep.stage, [step.name for step in prep.steps]) == ("", "data_prep", ["data_prep"])
    step = prep.steps[0]
    assert step.workdir == tmp_path / "data_prep" and step.index is None and step.id == "/data_prep"
    assert step.parameters == {
        "dataset": "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1",
        "outfile": f"{tmp_path}/data_prep/prepped_data.pkl",
    }
    assert run.advance() == []  # nothing else is ready before data_prep publishes
    run.record_success(step.id, {"prepped_data": step.parameters["outfile"]})

    [classification] = run.advance()
    names = ["nearest_neighbours", "linear_svm", "rbf_svm", "gaussian_process", "decision_tree"]
    assert [s.name for s in classification.steps] == [f"classification_{i}" for i in range(5)]
    assert classification.scheduler_type == "multistep-stage"
    for index, (planned, classifier) in enumerate(zip(classification.steps, names)):
        assert planned.index == index
        assert planned.workdir == tmp_path / f"classification_{index}"
        assert planned.parameters == {
            "input_data": f"{tmp_path}/data_prep/prepped_data.pkl",
            "all_classifiers": classifier,
            "outdir": f"{tmp_path}/classification_{index}",
        }
    for planned in classification.steps[:4]:
        run.record_success(planned.id, {"ml_output": f"{planned.parameters['outdir']}/*.pkl"})
    assert run.advance() == []  # the merge waits for every classification step
    last = classification.steps[4]
    run.record_success(last.id, {"ml_output": f"{last.parameters['outdir']}/*.pkl"})

    [merge] = run.advance()
    assert merge.steps[0].parameters == {
        "input_data": f"{tmp_path}/data_prep/prepped_data.pkl",
        "ml_inputs": [f"{tmp_path}/classification_{i}/*.pkl" for i in range(5)],
        "outfile": f"{tmp_path}/merge_and_visualize/ml_results.png",
    }
    run.record_success(merge.steps[0].id, {"ml_result": "x.png"})
    assert run.advance() == [] and run.finished and run.status == "completed" and not run.failed
    records = [record.to_dict() for record in run.records()]
    assert [r["name"] for r in records] == [
        "data_prep",
        *[f"classification_{i}" for i in range(5)],
        "merge_and_visualize",
    ]
    assert records[1]["scope"] == "" and records[1]["index"] == 0 and records[1]["state"] == COMPLETED
    assert records[1]["workdir"] == str(tmp_path / "classification_0")
    assert records[1]["published"] == {"ml_output": f"{tmp_path}/classification_0/*.pkl"}
    assert set(records[0]) >= {"scope", "stage", "index", "name", "workdir", "parameters", "published", "state"}
    summary = run.to_dict()
    assert summary["status"] == "completed" and summary["problems"] == [] and summary["steps"] == records


def test_zip_and_cartesian_scatter(tmp_path):
    run = WorkflowRun(load_case("scatter"), case_inputs("scatter"), tmp_path)
    zipped, crossed = run.advance()
    assert [(s.name, s.parameters) for s in zipped.steps] == [
        (
            f"zipped_{i}",
            {"letter": letter, "number": number, "tag": "fixed", "outputfile": f"{tmp_path}/zipped_{i}/out.txt"},
        )
        for i, (letter, number) in enumerate([("a", 1), ("b", 2), ("c", 3)])
    ]
    combos = [("a", "red"), ("a", "blue"), ("b", "red"), ("b", "blue"), ("c", "red"), ("c", "blue")]
    assert [(s.workdir, s.parameters) for s in crossed.steps] == [
        (
            tmp_path / f"crossed_{i}",
            {"letter": letter, "colour": colour, "outputfile": f"{tmp_path}/crossed_{i}/out.txt"},
        )
        for i, (letter, colour) in enumerate(combos)
    ]


def test_unwrap_flatten_and_jsonpath_selection(tmp_path):
    run = WorkflowRun(load_case("unwrap_flatten"), case_inputs("unwrap_flatten"), tmp_path)
    published = {"/produce_0": {"pair": ["a", "a"]}, "/produce_1": {"pair": ["b", "b"]}, "/single": {"value": "x"}}
    stages = plan_all(run, lambda step: published.get(step.id, {}))
    consume = stages[-1].steps[0]
    assert consume.parameters == {
        "nested": [["a", "a"], ["b", "b"]],
        "flat": ["a", "a", "b", "b"],
        "wrapped": ["x"],
        "unwrapped": "x",
        "unwrap_many": [["a", "a"], ["b", "b"]],
        "whole": {"value": "x"},
        "picked": "b",
    }


def test_independent_branches_are_ready_in_the_same_advance(tmp_path):
    run = WorkflowRun(load_case("branches"), {}, tmp_path)
    first = run.advance()
    assert [stage.stage for stage in first] == ["left", "right"]
    run.record_success(first[0].steps[0].id, {"file": "l"})
    assert run.advance() == []
    run.record_success(first[1].steps[0].id, {"file": "r"})
    [join] = run.advance()
    assert join.steps[0].parameters["left"] == "l" and join.steps[0].parameters["right"] == "r"


def test_nested_workflows_two_levels_deep(tmp_path):
    run = WorkflowRun(load_case("nested"), case_inputs("nested"), tmp_path)
    first = run.advance()
    assert [(stage.scope, stage.stage) for stage in first] == [
        ("/map/0", "stage1"),
        ("/map/1", "stage1"),
        ("/single/0", "stage1"),
    ]
    assert [stage.steps[0].workdir for stage in first] == [
        tmp_path / "map_0" / "stage1",
        tmp_path / "map_1" / "stage1",
        tmp_path / "single" / "stage1",
    ]
    assert [stage.steps[0].parameters for stage in first] == [{"item": "a"}, {"item": "b"}, {"item": "z"}]
    assert first[0].steps[0].id == "/map/0/stage1" and first[0].steps[0].index is None
    for stage in first:
        run.record_success(stage.steps[0].id, {"value": stage.steps[0].parameters["item"]})
    leaves = run.advance()
    assert [(stage.scope, stage.stage) for stage in leaves] == [
        ("/map/0/inner/0", "leaf"),
        ("/map/1/inner/0", "leaf"),
        ("/single/0/inner/0", "leaf"),
    ]
    assert leaves[1].steps[0].workdir == tmp_path / "map_1" / "inner" / "leaf"
    assert run.scope_values("/map/1/inner/0") == {"item": "b", "folder": str(tmp_path / "map_1" / "inner")}
    for stage in leaves[:2]:
        run.record_success(stage.steps[0].id, {"value": stage.steps[0].parameters["item"] + "!"})
    assert run.advance() == []  # 'single' is not done until its inner leaf is
    run.record_success(leaves[2].steps[0].id, {"value": "z!"})
    [reduce] = run.advance()
    assert reduce.steps[0].parameters == {"firsts": ["a", "b"], "deepest": ["a!", "b!"], "singles": "z"}
    assert [record.scope for record in run.records()] == [
        "/map/0",
        "/map/1",
        "/single/0",
        "/map/0/inner/0",
        "/map/1/inner/0",
        "/single/0/inner/0",
        "",
    ]


def test_batchsize_and_partitionsize(tmp_path):
    run = WorkflowRun(load_case("batched"), case_inputs("batched"), tmp_path)
    batched, parted, crossed = run.advance()
    assert [s.parameters["items"] for s in batched.steps] == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    assert [s.parameters["label"] for s in batched.steps] == ["batch"] * 4
    assert [s.parameters["items"] for s in parted.steps] == [[1, 2, 3], [4, 5, 6], [7, 8, 9, 10]]
    assert [s.name for s in parted.steps] == ["parted_0", "parted_1", "parted_2"]
    assert [(s.parameters["items"], s.parameters["letters"]) for s in crossed.steps] == [
        ([1, 2, 3, 4], ["p", "q", "r", "s"]),
        ([1, 2, 3, 4], ["t"]),
        ([5, 6, 7, 8], ["p", "q", "r", "s"]),
        ([5, 6, 7, 8], ["t"]),
        ([9, 10], ["p", "q", "r", "s"]),
        ([9, 10], ["t"]),
    ]


def test_partition_of_fewer_items_than_parts_and_cartesian_with_an_empty_list(tmp_path):
    run = WorkflowRun(load_case("batched"), {"items": [1, 2], "letters": []}, tmp_path)
    stages = run.advance()
    assert [stage.stage for stage in stages] == ["batched", "parted"]  # crossed_batches: no step
    assert [s.parameters["items"] for s in stages[1].steps] == [[1], [2]]
    assert ("", "crossed_batches") not in run.unapplied_stages()


def test_jq_stage_bindings_stepscript_and_postscript(tmp_path):
    run = WorkflowRun(load_case("jq_stage"), case_inputs("jq_stage"), tmp_path)
    [mapped] = run.advance()
    assert [(s.name, s.parameters) for s in mapped.steps] == [
        (f"map_{i}", {"parone": value, "outputfile": f"{tmp_path}/map_{i}/what.txt"})
        for i, value in enumerate([1, 2, 3])
    ]
    for step in mapped.steps:
        run.record_success(step.id, {"outputfile": step.parameters["outputfile"]})
    [reduced] = run.advance()
    assert [s.name for s in reduced.steps] == ["reduce_0"]
    assert reduced.steps[0].parameters == {
        "parone": [f"{tmp_path}/map_{i}/what.txt" for i in range(3)],
        "outputfile": f"{tmp_path}/reduce_0/here.txt",
        "count": 3,
    }


@pytest.mark.parametrize(
    ("par", "expected"),
    [
        (0, [("", "hello_world", "hello_world")]),
        (2, [("", "hello_world", "hello_world")]),
        (7, [("/hello_world/0", "big", "big")]),
        (-1, []),
    ],
)
def test_cases_pick_the_first_matching_branch(tmp_path, par, expected):
    run = WorkflowRun(load_case("cases"), {"par": par, "items": [0, 1, 2, 3]}, tmp_path)
    stages = run.advance()
    hello = [(s.scope, s.stage, s.steps[0].name) for s in stages if s.stage != "per_item"]
    assert hello == expected
    per_item = next(s for s in stages if s.stage == "per_item")
    assert [(s.name, s.parameters["parone"]) for s in per_item.steps] == [("per_item_2", 2), ("per_item_3", 3)]
    said = {"hello_world": "hello" if par == 0 else "bye"}
    for stage in stages:
        for step in stage.steps:
            run.record_success(step.id, {"said": said.get(step.name, "hello")})
    [after] = run.advance()  # runs even when no case matched (yadage would wait forever)
    assert after.steps[0].parameters == {"greetings": ["hello", "hello"]}
    if expected and expected[0][0]:
        assert run.scope_values("/hello_world/0")["parone"] == par


def test_register_values_and_fromvalue(tmp_path):
    run = WorkflowRun(load_case("regval"), case_inputs("regval"), tmp_path)
    stage1 = run.advance()
    assert [s.scope for s in stage1] == ["/map/0", "/map/1", "/map/2"]
    for stage in stage1:
        run.record_success(stage.steps[0].id, {"outputA": stage.steps[0].parameters["outputfile"]})
    stage2 = run.advance()
    assert [s.steps[0].parameters["input"] for s in stage2] == [
        f"{tmp_path}/map_{i}/stage1/single.txt" for i in range(3)
    ]
    for stage in stage2:
        run.record_success(stage.steps[0].id, {"outputB": "copy"})
    [reduce] = run.advance()
    assert reduce.steps[0].parameters["input"] == [f"{tmp_path}/map_{i}/stage1/single.txt" for i in range(3)]


def test_relative_init_values_naming_init_files_become_absolute(tmp_path):
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "data.txt").write_text("x")
    init = {
        "data": "data.txt",
        "url": "https://host/data.txt",
        "missing": "nope.txt",
        "nested": {"files": ["data.txt", 3]},
        "absolute": "/etc/hostname",
    }
    run = WorkflowRun(load_case("branches"), init, tmp_path)
    resolved = run.scope_values("")
    absolute = str((tmp_path / "init" / "data.txt").resolve())
    assert resolved == {
        "data": absolute,
        "url": "https://host/data.txt",
        "missing": "nope.txt",
        "nested": {"files": [absolute, 3]},
        "absolute": "/etc/hostname",
    }
    assert init["data"] == "data.txt"  # the caller's dict is not changed


def test_a_failed_step_blocks_its_dependants_and_fails_the_run(tmp_path):
    run = WorkflowRun(load_case("seed_parallel"), case_inputs("seed_parallel"), tmp_path)
    [prep] = run.advance()
    run.mark_running(prep.steps[0].id)
    assert run.record(prep.steps[0].id).state == RUNNING
    run.record_failure(prep.steps[0].id, "exit code 1")
    assert run.advance() == []
    assert run.finished and run.failed and run.status == "failed"
    problems = run.problems()
    assert problems[0] == "step /data_prep failed: exit code 1"
    assert any("stage 'classification' in scope / was never applied" in line for line in problems)
    assert run.unapplied_stages() == [("", "classification"), ("", "merge_and_visualize")]
    assert run.record(prep.steps[0].id).state == FAILED


def test_recording_rules(tmp_path):
    run = WorkflowRun(load_case("branches"), {}, tmp_path)
    left, right = run.advance()
    assert run.record(left.steps[0].id).state == PENDING
    run.record_success(left.steps[0].id, {"file": "l"}, state=CACHED)
    assert run.record(left.steps[0].id).state == CACHED
    with pytest.raises(ValueError, match="already finished"):
        run.record_success(left.steps[0].id, {})
    with pytest.raises(ValueError, match="state must be one of"):
        run.record_success(right.steps[0].id, {}, state=FAILED)
    with pytest.raises(KeyError, match="no step with id '/nope'"):
        run.record_success("/nope", {})
    with pytest.raises(KeyError, match="virtual init step"):
        run.record_success("/init", {})


def test_zip_of_unequal_lists_fails_the_stage_with_one_line(tmp_path):
    run = WorkflowRun(load_case("scatter"), {"letters": ["a", "b"], "numbers": [1], "colours": ["red"]}, tmp_path)
    stages = run.advance()
    assert [stage.stage for stage in stages] == ["crossed"]  # the other stage still runs
    [message] = run.errors
    assert "workflow.yml line 3 (#/stages/0): stage 'zipped'" in message
    assert "scatter method zip needs lists of equal length, found letter: 2, number: 1" in message
    assert "\n" not in message
    for step in stages[0].steps:
        run.record_success(step.id, {})
    assert not run.finished  # advance() has not looked at the news yet
    assert run.advance() == []
    assert run.finished and run.failed and message in run.problems()


def test_scattering_a_non_list_is_reported(tmp_path):
    run = WorkflowRun(load_case("scatter"), {"letters": "abc", "numbers": [1], "colours": ["red"]}, tmp_path)
    run.advance()
    assert any("scatter parameter 'letter' is str 'abc', expected a list" in line for line in run.errors)


def test_a_missing_output_is_reported(tmp_path):
    run = WorkflowRun(load_case("seed_parallel"), case_inputs("seed_parallel"), tmp_path)
    [prep] = run.advance()
    run.record_success(prep.steps[0].id, {"wrong_key": "x"})
    assert run.advance() == []
    [message] = run.errors
    assert "stage 'classification' parameter 'input_data'" in message
    assert "output 'prepped_data' matches nothing in the published values (published: wrong_key)" in message


def test_empty_scatter_counts_as_done(tmp_path):
    run = WorkflowRun(load_case("noop_scatter"), {"items": []}, tmp_path)
    [gather] = run.advance()
    assert gather.stage == "gather" and gather.steps[0].parameters == {"values": []}


def test_dependency_on_one_step_by_jsonpath_and_expressions_fulfilled(tmp_path):
    workflow = validate_workflow(
        {
            "stages": [
                noop_stage(
                    "first",
                    ["init"],
                    {"value": {"step": "init", "output": "xs"}},
                    scheduler_type="multistep-stage",
                    scatter={"method": "zip", "parameters": ["value"]},
                ),
                noop_stage("early", ["first[0]"], {"value": {"step": "first[0]", "output": "value"}}),
                {
                    "name": "gate",
                    "dependencies": {
                        "dependency_type": "expressions_fulfilled",
                        "expressions": [{"stages": "first", "output": "value"}],
                    },
                    "scheduler": {"scheduler_type": "singlestep-stage", "parameters": {"value": 1}, "step": NOOP_STEP},
                },
            ]
        }
    )
    run = WorkflowRun(workflow, {"xs": [10, 20]}, tmp_path)
    [first] = run.advance()
    run.record_success(first.steps[0].id, {"value": 10})
    [early] = run.advance()
    assert early.stage == "early" and early.steps[0].parameters == {"value": 10}
    run.record_success(first.steps[1].id, {"value": 20})
    [gate] = run.advance()
    assert gate.stage == "gate"


def test_colliding_step_folders_are_refused(tmp_path):
    workflow = validate_workflow(
        {
            "stages": [
                noop_stage(
                    "x",
                    ["init"],
                    {"value": [1, 2]},
                    scheduler_type="multistep-stage",
                    scatter={"method": "zip", "parameters": ["value"]},
                ),
                noop_stage("x_0", ["x"], {"value": 3}),
            ]
        }
    )
    run = WorkflowRun(workflow, {}, tmp_path)
    [x] = run.advance()
    for step in x.steps:
        run.record_success(step.id, {"value": 1})
    assert run.advance() == []
    assert any("step folder" in line and "x_0 is already used" in line for line in run.errors)


def test_ten_thousand_steps_in_onestage(tmp_path):
    count = 10_000
    run = WorkflowRun(load_case("noop_scatter"), {"items": list(range(count))}, tmp_path)
    [scatter] = run.advance()
    assert len(scatter.steps) == count
    assert scatter.steps[-1].name == f"scatter_{count - 1}"
    assert scatter.steps[-1].workdir == Path(tmp_path) / f"scatter_{count - 1}"
    for step in scatter.steps:
        run.record_success(step.id, {"value": step.parameters["item"]})
        assert not run.finished
    [gather] = run.advance()
    assert gather.steps[0].parameters["values"] == list(range(count))
    run.record_success(gather.steps[0].id, {})
    assert run.advance() == [] and run.status == "completed"
    assert len(run.records()) == count + 1


def test_step_and_instance_folders_are_named_after_the_stage(tmp_path):
    assert folder_name("map", None) == "map" and folder_name("map", 3) == "map_3"
    folder = step_folder(tmp_path, tmp_path / "map_0", "stage1", where="here")
    assert folder == tmp_path / "map_0" / "stage1"


@pytest.mark.parametrize("name", ["", ".", "..", "/tmp/x", "../x", "a/b", "a\0b"])
def test_a_step_folder_name_must_be_one_folder_name(tmp_path, name):
    with pytest.raises(
        SpecError, match=r"^wf\.yml: step folder name .* is not a single folder name; rename the stage$"
    ):
        step_folder(tmp_path / "work", tmp_path / "work", name, where="wf.yml")


def test_a_step_folder_must_lie_strictly_inside_the_work_directory(tmp_path):
    work = tmp_path / "work"
    (work / "map_0").mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (work / "map_0" / "leaf").symlink_to(tmp_path / "victim")
    with pytest.raises(SpecError) as caught:
        step_folder(work, work / "map_0", "leaf", where="wf.yml line 3 (#/stages/0): stage 'leaf'")
    message = str(caught.value)
    assert message.startswith(f"wf.yml line 3 (#/stages/0): stage 'leaf': step folder {str(work / 'map_0' / 'leaf')!r}")
    assert f"resolves to {str(tmp_path / 'victim')!r}, which is not strictly inside the work directory" in message
    assert message.endswith("rename the stage") and "\n" not in message
    with pytest.raises(SpecError, match="not strictly inside the work directory"):
        step_folder(work, tmp_path, "work", where="wf.yml")  # the work directory itself


@pytest.mark.parametrize("name", ["..", ".", "/tmp/x", "../x"])
def test_a_stage_name_that_escaped_validation_fails_the_stage_and_plans_nothing(tmp_path, name):
    workflow = validate_workflow({"stages": [noop_stage("ok", ["init"], {"value": 1})]})
    workflow.stages[0].name = name  # as if validation had been skipped
    run = WorkflowRun(workflow, {}, tmp_path / "work")
    assert run.advance() == []
    [message] = run.errors
    assert f"stage {name!r}: step folder name {name!r} is not a single folder name" in message
    assert run.finished and run.status == "failed" and run.records() == []
    assert list(tmp_path.iterdir()) == []  # planning creates nothing
