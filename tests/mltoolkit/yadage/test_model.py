"""Phase 2: the typed model, yadage's defaults, every fixture, and stage names that must be folder names."""

from __future__ import annotations

import re

import pytest
import yaml

from mltoolkit.errors import SpecError
from mltoolkit.yadage import load_step_ref, load_workflow, validate_step, validate_workflow
from mltoolkit.yadage.model import (
    DockerEncapsulatedEnv,
    InterpolatedPub,
    InterpolatedScriptCmd,
    MultistepStage,
    OutputReference,
    SinglestepStage,
    Workflow,
)
from mltoolkit.yadage.model.names import NAME_RULE, name_problem
from tests.constants import REPO_ROOT, SPECS

from .conftest import load_case, noop_stage

# Every workflow file of the fixtures (subworkflows too) and the seed's packaged copy;
# refs_cycle is circular on purpose (tested in test_load).
WORKFLOW_FILES = [
    path
    for path in sorted(SPECS.rglob("*.yml")) + sorted((REPO_ROOT / "mltoolkit" / "specs").rglob("*.yml"))
    if re.search(r"^stages:", path.read_text(), re.MULTILINE) and path.parent.name != "refs_cycle"
]


def test_seed_validates_with_yadage_defaults():
    workflow = load_case("seed_parallel")
    prep, classification, merge = workflow.stages
    assert isinstance(prep.scheduler, SinglestepStage)
    assert isinstance(classification.scheduler, MultistepStage)
    assert classification.scheduler.scatter.method == "zip"
    assert classification.scheduler.batchsize is None
    assert classification.dependencies.dependency_type == "jsonpath_ready"
    assert classification.dependencies.expressions == ["data_prep", "init"]
    step = classification.scheduler.step
    assert isinstance(step.process, InterpolatedScriptCmd) and step.process.interpreter == "sh"
    assert isinstance(step.environment, DockerEncapsulatedEnv)
    assert step.environment.full_image == "danikam/sklearn:latest"
    assert isinstance(step.publisher, InterpolatedPub)
    assert step.publisher.glob is False and step.publisher.relative_paths is False
    reference = merge.scheduler.parameters["ml_inputs"]
    assert isinstance(reference, OutputReference)
    assert (reference.selection, reference.output, reference.flatten, reference.unwrap) == (
        "classification",
        "ml_output",
        True,
        False,
    )
    assert merge.scheduler.parameters["outfile"] == "{workdir}/ml_results.png"
    assert "workflow.yml line 24" in merge.where


def test_every_fixture_folder_has_its_workflow_in_the_list():
    folders = {path.parent for path in SPECS.glob("*/workflow.yml")}
    assert len(folders) >= 15
    assert folders <= {path.parent for path in WORKFLOW_FILES}
    assert REPO_ROOT / "mltoolkit" / "specs" / "seed_parallel" / "workflow.yml" in WORKFLOW_FILES


def _all_stages(workflow: Workflow):
    for stage in workflow.stages:
        yield stage
        scheduler = stage.scheduler
        nested = [scheduler.workflow] + [case.workflow for case in getattr(scheduler, "cases", None) or []]
        for sub in nested:
            if sub is not None:
                yield from _all_stages(sub)


@pytest.mark.parametrize("workflow_file", WORKFLOW_FILES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_fixture_validates_and_knows_where_its_stages_are(workflow_file):
    loaded = load_workflow(workflow_file)
    workflow = validate_workflow(loaded)
    assert [stage.name for stage in workflow.stages] == [stage["name"] for stage in loaded.data["stages"]]
    for index, stage in enumerate(workflow.stages):
        assert stage.where == loaded.where(["stages", index])
        assert f"{workflow_file.name} line " in stage.where
    assert all(name_problem(stage.name) is None for stage in _all_stages(workflow))


def test_canonical_parameter_list_and_dependency_mapping_forms():
    workflow = validate_workflow(
        {
            "stages": [
                {
                    "name": "a",
                    "dependencies": {"dependency_type": "jsonpath_ready", "expressions": ["init"]},
                    "scheduler": {
                        "scheduler_type": "singlestep-stage",
                        "parameters": [
                            {"key": "x", "value": {"step": "init", "output": "x"}},
                            {"key": "n", "value": 3},
                        ],
                        "step": {
                            "process": {"process_type": "string-interpolated-cmd", "cmd": "echo {x}"},
                            "environment": {"environment_type": "noop-env"},
                            "publisher": {"publisher_type": "constant-pub", "publish": {}},
                        },
                    },
                }
            ],
        }
    )
    parameters = workflow.stages[0].scheduler.parameters
    assert isinstance(parameters["x"], OutputReference) and parameters["n"] == 3


def test_no_dependencies_means_ready_at_once_and_imagetag_number_becomes_text():
    step = validate_step(
        {
            "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
            "environment": {"environment_type": "docker-encapsulated", "image": "img", "imagetag": 1.0},
            "publisher": {"publisher_type": "fromparjq-pub"},
        }
    )
    assert step.environment.imagetag == "1.0" and step.environment.full_image == "img:1.0"
    assert step.publisher.script == "." and step.publisher.tryExact is True
    assert validate_workflow({"stages": []}).stages == []


def test_validate_step_from_a_step_ref(specs):
    step = validate_step(load_step_ref("steps.yml#/merging_step", toplevel=specs / "seed_parallel"))
    assert step.publisher.publish == {"ml_result": "{outfile}"}


def _dumped(tmp_path, spec: dict):
    path = tmp_path / "workflow.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_workflow(path)


def _tree(folder):
    return sorted((str(path.relative_to(folder)), path.is_dir()) for path in folder.rglob("*"))


# Names that would put a step folder outside the work directory, make it the work
# directory itself, or make it one of the toolkit's own folders.
UNSAFE_NAMES = {
    "/tmp/x": "it contains '/'",
    "../x": "it contains '/'",
    ".": "'.' names the folder itself or its parent",
    "..": "'..' names the folder itself or its parent",
    "a/b": "it contains '/'",
    ".hidden": "it starts with '.'",
    "-rf": "it starts with '-'",
    "a\0b": r"it contains '\x00'",
    "with space": "it contains ' '",
    "": "it is empty",
    "x" * 101: "it has 101 characters",
    "_mltoolkit": "'_mltoolkit' is where the toolkit keeps its own files",
    "ro-crate-metadata.json": "'ro-crate-metadata.json' is where the toolkit keeps its own files",
}


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested"])
@pytest.mark.parametrize("name", sorted(UNSAFE_NAMES), ids=repr)
def test_a_stage_name_that_cannot_be_a_folder_is_refused_at_validation(tmp_path, name, nested):
    inner = {"stages": [noop_stage(name, ["init"], {"value": 1})]}
    if nested:
        outer = noop_stage("outer", ["init"], {"value": 1})
        del outer["scheduler"]["step"]
        outer["scheduler"]["workflow"] = inner
        spec, pointer, chain = {"stages": [outer]}, "#/stages/0/scheduler/workflow/stages/0/name", f"'outer' > {name!r}"
    else:
        spec, pointer, chain = inner, "#/stages/0/name", repr(name)
    loaded = _dumped(tmp_path, spec)
    before = _tree(tmp_path)
    with pytest.raises(SpecError) as caught:
        validate_workflow(loaded)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(rf"workflow\.yml line \d+ \({pointer}\)", message), message
    assert f"stage {chain}, key name: stage name {name!r} cannot name a folder ({UNSAFE_NAMES[name]})" in message
    assert f"expected {NAME_RULE}; rename the stage" in message
    assert _tree(tmp_path) == before  # nothing created or deleted


@pytest.mark.parametrize(
    "name", ["hello_world", "delphes-pileup", "merge_and_visualize", "Stage.2", "0th", "_private", "x" * 100]
)
def test_names_real_specs_use_are_accepted(tmp_path, name):
    workflow = validate_workflow(_dumped(tmp_path, {"stages": [noop_stage(name, ["init"], {"value": 1})]}))
    assert workflow.stages[0].name == name
