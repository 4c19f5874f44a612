"""Constructs of published yadage specs, at the loader level (plain runner, no Prefect).

Each fixture of :data:`tests.published_cases.CASES` is loaded, validated and run with
:func:`~mltoolkit.yadage.run_workflow`; its case checks what the steps published and
wrote. Then the parts of the loader each construct exercises: ``$ref`` forms, the
dependencies references imply, publish-only steps, init globs, requirements.
"""

from __future__ import annotations

import shutil

import pytest

from mltoolkit.errors import EnvironmentUnavailableError, SpecError
from mltoolkit.yadage import (
    StepOptions,
    check_requirements,
    load_workflow,
    parse_image_map,
    read_inputs,
    run_workflow,
    stage_requirements,
    validate_workflow,
)
from mltoolkit.yadage.planner.values import resolve_init_files
from tests.published_cases import CASES

from .conftest import load_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_published_construct_runs_and_publishes_what_it_should(tmp_path, name):
    case = CASES[name]
    if case.skip_reason():
        pytest.skip(case.skip_reason())
    workdir = tmp_path / name
    workdir.mkdir()
    provided = case.prepare(workdir)
    image_map = parse_image_map([], case.image_map_file)
    options = StepOptions(image_map=image_map, use_docker=False, provided=provided)
    run = run_workflow(load_case(name), read_inputs(case.inputs_file), workdir, options=options, max_workers=2)
    assert run.status == "completed", run.problems()
    case.check(workdir, {record.id: record.published for record in run.records()})


# --- $ref ---------------------------------------------------------------------------------


def test_every_ref_form_resolves_to_the_step_it_names(specs):
    loaded = load_workflow(specs / "refs_forms" / "workflow.yml")
    steps = {stage["name"]: stage["scheduler"].get("step") for stage in loaded.data["stages"]}
    assert steps["no_slash"]["process"]["cmd"] == "echo top-{word} > {outfile}"  # steps.yml#hello_world
    assert steps["empty_fragment"] == steps["no_fragment"]  # onestep.yml# and onestep.yml
    assert steps["no_fragment"]["process"]["cmd"] == "echo {word} > {outfile}"
    # parts/delphes.yml#/environment is itself a $ref, relative to parts/
    assert steps["parts_of_a_step"]["environment"] == {"environment_type": "localproc-env"}
    assert loaded.location(["stages", 0, "scheduler", "step"]).pointer == ("hello_world",)
    assert "onestep.yml line 1 (#)" in loaded.where(["stages", 1, "scheduler", "step"])


def test_refs_in_the_workflow_file_resolve_against_toplevel_and_nested_ones_against_their_file(specs):
    # flows/ has its own steps.yml: yadage-run -t <fixture> flows/workflow.yml used the toplevel one
    loaded = load_workflow("flows/workflow.yml", toplevel=specs / "refs_forms")
    step = loaded.data["stages"][0]["scheduler"]["step"]
    assert step["process"]["cmd"] == "echo top-{word} > {outfile}"
    assert loaded.location(["stages", 0, "scheduler", "step"]).document == str(specs / "refs_forms" / "steps.yml")
    # sub/flow.yml's 'steps.yml#inner' is sub/steps.yml, next to it
    nested = load_workflow(specs / "refs_forms" / "workflow.yml").data["stages"][4]["scheduler"]["workflow"]
    assert nested["stages"][0]["scheduler"]["step"]["process"]["cmd"] == "echo sub-{word} > {outfile}"


def test_a_workflow_file_refers_to_its_own_folder_when_toplevel_lacks_the_file(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "own.yml").write_text("s: {x: 1}\n")
    (tmp_path / "flows" / "wf.yml").write_text("stages: [{$ref: 'own.yml#s'}]\n")
    assert load_workflow("flows/wf.yml", toplevel=tmp_path).data == {"stages": [{"x": 1}]}


# --- dependencies a stage's references imply ------------------------------------------------


def test_a_stage_reading_a_stage_it_does_not_depend_on_gets_the_dependency_and_one_warning():
    workflow = load_case("implied_dependency")
    dependencies = {stage.name: stage.dependencies.expressions for stage in workflow.stages}
    assert dependencies["reader"] == ["init", "slow"]
    assert dependencies["after_reader"] == ["reader"]  # reads 'slow' too, but waits for it through 'reader'
    [warning] = workflow.warnings
    assert "implied_dependency/workflow.yml line 28 (#/stages/2/scheduler/parameters/infile)" in warning
    assert "stage 'reader' reads outputs of stage 'slow' but does not depend on it" in warning
    assert "add 'slow' to its dependencies" in warning and "\n" not in warning


def test_an_implied_dependency_makes_the_reader_wait_in_the_plan(tmp_path):
    run = run_workflow(load_case("implied_dependency"), {}, tmp_path, max_workers=4)
    assert run.status == "completed", run.problems()
    order = [record.stage for record in run.records()]
    assert order.index("slow") < order.index("reader")


def test_a_nested_workflows_implied_dependency_is_added_and_warned_once(tmp_path):
    inner = {
        "stages": [
            {"name": "a", "dependencies": ["init"], "scheduler": _noop({"value": {"stages": "init", "output": "x"}})},
            {"name": "b", "dependencies": ["init"], "scheduler": _noop({"value": {"stages": "a", "output": "value"}})},
        ]
    }
    outer = {
        "scheduler_type": "multistep-stage",
        "parameters": {"x": [1, 2]},
        "scatter": {"method": "zip", "parameters": ["x"]},
        "workflow": inner,
    }
    workflow = validate_workflow({"stages": [{"name": "map", "dependencies": ["init"], "scheduler": outer}]})
    nested = workflow.stages[0].scheduler.workflow
    assert nested.stage("b").dependencies.expressions == ["init", "a"]
    [warning] = workflow.warnings  # one definition, two instances: one warning
    assert "#/stages/0/scheduler/workflow/stages/1/scheduler/parameters/value" in warning
    assert "stage 'b' reads outputs of stage 'a'" in warning
    run = run_workflow(workflow, {}, tmp_path)
    assert run.status == "completed", run.problems()
    published = {record.id: record.published for record in run.records()}
    assert published["/map/1/b"] == {"value": [[2]]}


def test_an_expressions_fulfilled_stage_waits_for_the_reference_it_reads(tmp_path):
    workflow = validate_workflow(
        {
            "stages": [
                {"name": "a", "dependencies": ["init"], "scheduler": _noop({"value": 1})},
                {
                    "name": "b",
                    "dependencies": {"dependency_type": "expressions_fulfilled", "expressions": []},
                    "scheduler": _noop({"value": {"stages": "a", "output": "value", "unwrap": True}}),
                },
            ]
        }
    )
    [reference] = workflow.stage("b").dependencies.expressions
    assert reference.selection == "a" and reference.output == "value"
    run = run_workflow(workflow, {}, tmp_path)
    assert [record.published for record in run.records()] == [{"value": 1}, {"value": 1}]


def test_a_reference_to_a_stage_that_does_not_exist_stays_an_error(tmp_path):
    spec = {"stages": [{"name": "b", "dependencies": ["init"], "scheduler": _noop({"value": {"stages": "nope"}})}]}
    with pytest.raises(SpecError, match="stage 'b' reads outputs of unknown stage 'nope'; expected one of: init, b"):
        validate_workflow(spec)


def _noop(parameters: dict) -> dict:
    return {
        "scheduler_type": "singlestep-stage",
        "parameters": parameters,
        "step": {
            "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
            "environment": {"environment_type": "noop-env"},
            "publisher": {"publisher_type": "frompar-pub", "outputmap": {"value": "value"}},
        },
    }


# --- publish-only steps, init globs -----------------------------------------------------------


def test_process_null_and_environment_null_load_as_publish_only_steps():
    workflow = load_case("publish_only")
    collect = workflow.stages[0].scheduler.workflow.stage("collect").scheduler.step
    relay = workflow.stage("relay").scheduler.step
    assert collect.process is None and collect.environment is None and collect.publish_only
    assert relay.process is not None and relay.environment is None and relay.publish_only
    assert not workflow.stage("higherscope").scheduler.step.publish_only


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*.txt", ["a.txt", "b.txt", "c.txt"]),
        ("**/*.txt", ["a.txt", "b.txt", "c.txt", "more/d.txt"]),
        ("?.txt", ["a.txt", "b.txt", "c.txt"]),
        ("[ab].txt", ["a.txt", "b.txt"]),
        ("settings.dat", "settings.dat"),
        ("*.missing", None),
        (["*.dat", "nope.txt"], [["settings.dat"], None]),
    ],
)
def test_init_values_that_are_globs_publish_the_sorted_matching_init_files(specs, tmp_path, value, expected):
    init = tmp_path / "init"
    shutil.copytree(specs / "init_globs" / "files", init)

    def absolute(item):
        if item is None:
            return None
        return [absolute(part) for part in item] if isinstance(item, list) else str(init / item)

    resolved = resolve_init_files({"files": value}, init)["files"]
    if isinstance(value, list):
        assert resolved == [absolute(expected[0]), value[1]]
    else:
        assert resolved == (absolute(expected) if expected is not None else value)


# --- requirements, checked before any step runs ------------------------------------------------


def test_a_requirement_nothing_provides_stops_the_run_before_any_step(specs, tmp_path):
    workflow = load_case("resources")
    image_map = parse_image_map([], specs / "resources" / "image_map.yml")
    with pytest.raises(EnvironmentUnavailableError) as caught:
        check_requirements(workflow, {}, image_map)
    message = str(caught.value)
    assert "resources/workflow.yml line 23 (#/stages/1)" in message
    assert "stage 'needs_cvmfs' (image mltoolkit-test/cvmfs-user:1.0) needs resource 'CVMFS'" in message
    assert "pass --provide CVMFS=/cvmfs" in message and "\n" not in message


def test_requirements_list_what_provides_each(specs):
    workflow = load_case("resources")
    image_map = parse_image_map([], specs / "resources" / "image_map.yml")
    found = [
        (item.stage.name, item.resource, item.provider)
        for item in stage_requirements(workflow, {"cvmfs": "/cvmfs"}, image_map)
    ]
    assert found == [
        ("needs_cvmfs", "CVMFS", "--provide cvmfs=/cvmfs"),
        ("needs_cvmfs", "GRIDProxy", "image map entry of mltoolkit-test/cvmfs-user:1.0"),
    ]
    assert check_requirements(workflow, {"CVMFS": ""}, image_map)[0].met


def test_requirements_of_nested_workflows_and_cases_are_checked():
    step = {
        "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
        "environment": {"environment_type": "localproc-env", "resources": [{"voms_proxy": True}]},
        "publisher": {"publisher_type": "constant-pub", "publish": {}},
    }
    cases = {"scheduler_type": "singlestep-stage", "cases": [{"if": "true", "step": step}]}
    inner = {"stages": [{"name": "deep", "dependencies": ["init"], "scheduler": cases}]}
    outer = {"scheduler_type": "singlestep-stage", "workflow": inner}
    workflow = validate_workflow({"stages": [{"name": "outer", "dependencies": ["init"], "scheduler": outer}]})
    with pytest.raises(
        EnvironmentUnavailableError, match=r"stage 'deep' needs resource 'voms_proxy'.*voms_proxy=VALUE"
    ):
        check_requirements(workflow, {}, {})
    assert [item.resource for item in check_requirements(workflow, {"voms_proxy": ""}, {})] == ["voms_proxy"]
