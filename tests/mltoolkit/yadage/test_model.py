"""Phase 2: the typed model, yadage's defaults, and one-line errors for bad specs."""

from __future__ import annotations

import re
import textwrap

import pytest
import yaml

from mltoolkit.errors import SpecError, UnsupportedFeatureError
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

from .conftest import STEP_YAML as STEP
from .conftest import load_case, noop_stage, write_workflow

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


BAD_SPECS = {
    "scheduler type typo": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep
            parameters: {x: 1}
        """
        + STEP,
        SpecError,
        [
            r"workflow\.yml line 5 \(#/stages/0/scheduler/scheduler_type\)",
            "stage 'a'",
            "key scheduler.scheduler_type",
            "found 'singlestep'",
            "expected one of: singlestep-stage, multistep-stage",
        ],
    ),
    "missing step": (
        """\
        stages:
        - name: a
          scheduler: {scheduler_type: singlestep-stage, parameters: {x: 1}}
        """,
        SpecError,
        [r"#/stages/0/scheduler\)", "stage 'a'", "missing 'step' or 'workflow' or 'cases': add what the stage runs"],
    ),
    "scatter method": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: multistep-stage
            parameters: {x: [1]}
            scatter: {method: zap, parameters: [x]}
        """
        + STEP,
        SpecError,
        [
            r"line 6 \(#/stages/0/scheduler/scatter/method\)",
            "key scheduler.scatter.method",
            "found 'zap', expected 'zip' or 'cartesian'",
        ],
    ),
    "scatter parameter unknown": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: multistep-stage
            parameters: {x: [1]}
            scatter: {method: zip, parameters: [y]}
        """
        + STEP,
        SpecError,
        [r"#/stages/0/scheduler/scatter/parameters/0\)", "scatter parameter 'y' is not among", r"parameters \(x\)"],
    ),
    "unknown stage key": (
        """\
        stages:
        - name: a
          dependecies: [init]
          scheduler: {scheduler_type: singlestep-stage}
        """,
        SpecError,
        [
            r"line 3 \(#/stages/0/dependecies\)",
            "unknown key 'dependecies'",
            "expected one of: name, dependencies, scheduler",
            "remove or rename it",
        ],
    ),
    "missing cmd": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, command: 'ls'}
              environment: {environment_type: localproc-env}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        SpecError,
        [r"#/stages/0/scheduler/step/process/command\)", "unknown key 'command'", "cmd"],
    ),
    "process type unknown": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: localproc-env}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        SpecError,
        [
            "key scheduler.step.process.process_type",
            "found 'interpolated-cmd'",
            "expected one of: string-interpolated-cmd, interpolated-script-cmd",
        ],
    ),
    "missing publisher type": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: localproc-env}
              publisher: {publish: {}}
        """,
        SpecError,
        [
            r"#/stages/0/scheduler/step/publisher/publisher_type\)",
            "missing or non-string 'publisher_type'",
            "frompar-pub",
        ],
    ),
    "manual environment": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: manual-instructions-env, instructions: 'do it'}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        UnsupportedFeatureError,
        [
            r"line 7 \(#/stages/0/scheduler/step/environment/environment_type\)",
            "environment_type 'manual-instructions-env' is not supported",
            "interactively",
        ],
    ),
    "manual publisher": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: localproc-env}
              publisher: {publisher_type: manual-publishing, instructions: 'type it'}
        """,
        UnsupportedFeatureError,
        ["publisher_type 'manual-publishing' is not supported"],
    ),
    "docker resources": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: docker-encapsulated, image: x, resources: [CVMFS]}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        UnsupportedFeatureError,
        [r"#/stages/0/scheduler/step/environment/resources\)", r"resources \(CVMFS\) are not supported"],
    ),
    "unknown dependency": (
        """\
        stages:
        - name: a
          dependencies: [init, prep]
          scheduler:
            scheduler_type: singlestep-stage
        """
        + STEP,
        SpecError,
        [
            r"line 3 \(#/stages/0/dependencies/expressions/1\)",
            "depends on unknown stage 'prep'",
            "expected one of: init, a",
        ],
    ),
    "dependency cycle": (
        """\
        stages:
        - name: a
          dependencies: [b]
          scheduler:
            scheduler_type: singlestep-stage
        """
        + STEP
        + """\
        - name: b
          dependencies: [a]
          scheduler:
            scheduler_type: singlestep-stage
        """
        + STEP,
        SpecError,
        [r"#/stages/\d/dependencies\)", r"cycle \((a -> b -> a|b -> a -> b)\)", "remove one dependency"],
    ),
    "reference to unknown stage": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {step: prep, output: x}}
        """
        + STEP,
        SpecError,
        [r"line 6 \(#/stages/0/scheduler/parameters/x\)", "reads outputs of unknown stage 'prep'"],
    ),
    "reference without dependency": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: 1}
        """
        + STEP
        + """\
        - name: b
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {stages: a, output: y}}
        """
        + STEP,
        SpecError,
        [
            r"#/stages/1/scheduler/parameters/x\)",
            "stage 'b' reads outputs of stage 'a' but does not depend on it",
            "add 'a' to its dependencies",
        ],
    ),
    "duplicate stage": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: 1}
        """
        + STEP
        + """\
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: 1}
        """
        + STEP,
        SpecError,
        [r"#/stages/1/name\)", "stage name 'a' is used twice"],
    ),
    "stage called init": (
        """\
        stages:
        - name: init
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: 1}
        """
        + STEP,
        SpecError,
        [r"#/stages/0/name\)", "'init' is reserved"],
    ),
    "mapping that is no reference": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {stage: init, output: x}}
        """
        + STEP,
        SpecError,
        [
            r"#/stages/0/scheduler/parameters/x\)",
            "key scheduler.parameters.x",
            r"must be a reference such as \{step: NAME, output: KEY\}",
        ],
    ),
    "reference with two selectors": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {step: init, stages: init, output: x}}
        """
        + STEP,
        SpecError,
        ["key scheduler.parameters.x", "exactly one of 'step', 'stages'", "found step, stages"],
    ),
    "batch and partition": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: multistep-stage
            parameters: {x: [1]}
            batchsize: 2
            partitionsize: 2
            scatter: {method: zip, parameters: [x]}
        """
        + STEP,
        SpecError,
        [r"#/stages/0/scheduler/partitionsize\)", "has both batchsize and partitionsize"],
    ),
    "batchsize zero": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: multistep-stage
            parameters: {x: [1]}
            batchsize: 0
            scatter: {method: zip, parameters: [x]}
        """
        + STEP,
        SpecError,
        [r"line 6 \(#/stages/0/scheduler/batchsize\)", "found int 0", "expected greater than 0"],
    ),
    "jq syntax": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: jq-stage
            stepscript: '[.a |||]'
        """
        + STEP,
        SpecError,
        [r"#/stages/0/scheduler/stepscript\)", r"jq program '\[\.a \|\|\|\]' does not compile"],
    ),
    "bad case condition": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            cases:
            - if: '.x =='
              step:
                process: {process_type: string-interpolated-cmd, cmd: 'true'}
                environment: {environment_type: noop-env}
                publisher: {publisher_type: constant-pub, publish: {}}
        """,
        SpecError,
        [r"#/stages/0/scheduler/cases/0/if\)", "does not compile"],
    ),
    "stages not a list": (
        """\
        stages: {a: 1}
        """,
        SpecError,
        [r"line 1 \(#/stages\)", "found dict", "expected a valid list"],
    ),
    "string dependency": (
        """\
        stages:
        - name: a
          dependencies: [[init]]
          scheduler:
            scheduler_type: singlestep-stage
        """
        + STEP,
        SpecError,
        [r"#/stages/0/dependencies/expressions/0\)", "expected a stage name or JSONPath string"],
    ),
    "bad jsonpath output": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {step: init, output: 'a b'}}
        """
        + STEP,
        SpecError,
        [r"#/stages/0/scheduler/parameters/x/output\)", "'a b' is not a valid JSONPath"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_gives_one_located_line(tmp_path, case):
    text, error_type, fragments = BAD_SPECS[case]
    path = write_workflow(tmp_path, text)
    with pytest.raises(error_type) as caught:
        validate_workflow(load_workflow(path))
    message = str(caught.value)
    assert "\n" not in message
    assert "workflow.yml" in message
    for fragment in fragments:
        assert re.search(fragment, message), (fragment, message)


def test_error_in_a_referenced_step_names_the_steps_file_and_nested_stages(tmp_path):
    (tmp_path / "steps.yml").write_text(
        textwrap.dedent("""\
        broken:
          process: {process_type: string-interpolated-cmd}
          environment: {environment_type: noop-env}
          publisher: {publisher_type: constant-pub, publish: {}}
        """)
    )
    (tmp_path / "sub.yml").write_text(
        textwrap.dedent("""\
        stages:
        - name: inner
          scheduler: {scheduler_type: singlestep-stage, step: {$ref: 'steps.yml#/broken'}}
        """)
    )
    path = write_workflow(
        tmp_path,
        """\
        stages:
        - name: outer
          scheduler: {scheduler_type: singlestep-stage, workflow: {$ref: sub.yml}}
        """,
    )
    with pytest.raises(SpecError) as caught:
        validate_workflow(load_workflow(path))
    message = str(caught.value)
    assert "steps.yml line 2 (#/broken/process)" in message
    assert "stage 'outer' > 'inner'" in message
    assert "missing required key 'cmd'" in message


def test_several_problems_are_counted_and_listed(tmp_path):
    path = write_workflow(
        tmp_path,
        """\
        stages:
        - name: a
          bogus: 1
          scheduler: {scheduler_type: nope}
        - name: b
          scheduler: {scheduler_type: nope}
        """,
    )
    with pytest.raises(SpecError) as caught:
        validate_workflow(load_workflow(path))
    assert "(and 1 more problem)" in str(caught.value)
    assert len(caught.value.problems) == 2
    assert "#/stages/1/scheduler/scheduler_type" in caught.value.problems[1]


def test_a_three_stage_cycle_is_named_in_the_direction_of_the_dependencies(tmp_path):
    # b depends on c, c on d, d on b (graphlib finds it; any rotation reads the same way round)
    spec = {
        "stages": [
            {**noop_stage(name, ["init"], {"value": 1}), "dependencies": [dep]} for name, dep in zip("bcd", "cdb")
        ]
    }
    with pytest.raises(SpecError) as caught:
        validate_workflow(_dumped(tmp_path, spec))
    message = str(caught.value)
    assert re.search(r"in a cycle \((b -> c -> d -> b|c -> d -> b -> c|d -> b -> c -> d)\)", message), message
    assert "workflow.yml line" in message and "\n" not in message


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
