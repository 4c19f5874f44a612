"""Phase 2, across stages: unique names, known dependencies and references, no cycles (graphlib)."""

from __future__ import annotations

import re

import pytest
import yaml

from mltoolkit.errors import SpecError
from mltoolkit.yadage import load_workflow, validate_workflow

from .conftest import STEP_YAML as STEP
from .conftest import noop_stage, write_workflow

CROSS_STAGE_PROBLEMS = {
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
    "reads its own outputs": (
        """\
        stages:
        - name: a
          dependencies: [init]
          scheduler:
            scheduler_type: singlestep-stage
            parameters: {x: {stages: a, output: y}}
        """
        + STEP,
        SpecError,
        [r"#/stages/0/scheduler/parameters/x\)", "stage 'a' reads its own outputs", "read them in a later stage"],
    ),
    "implied dependency closes a cycle": (
        """\
        stages:
        - name: a
          dependencies: [b]
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
        [r"cycle \((a -> b -> a|b -> a -> b)\)", "because 'b' reads outputs of 'a'", "remove one dependency"],
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
}


@pytest.mark.parametrize("case", sorted(CROSS_STAGE_PROBLEMS))
def test_a_cross_stage_problem_gives_one_located_line(tmp_path, case):
    text, error_type, fragments = CROSS_STAGE_PROBLEMS[case]
    with pytest.raises(error_type) as caught:
        validate_workflow(load_workflow(write_workflow(tmp_path, text)))
    message = str(caught.value)
    assert "\n" not in message and "workflow.yml" in message
    for fragment in fragments:
        assert re.search(fragment, message), (fragment, message)


def test_a_three_stage_cycle_is_named_in_the_direction_of_the_dependencies(tmp_path):
    # b depends on c, c on d, d on b (graphlib finds it; any rotation reads the same way round)
    spec = {
        "stages": [
            {**noop_stage(name, ["init"], {"value": 1}), "dependencies": [dep]} for name, dep in zip("bcd", "cdb")
        ]
    }
    path = tmp_path / "workflow.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_workflow(path)
    with pytest.raises(SpecError) as caught:
        validate_workflow(loaded)
    message = str(caught.value)
    assert re.search(r"in a cycle \((b -> c -> d -> b|c -> d -> b -> c|d -> b -> c -> d)\)", message), message
    assert "workflow.yml line" in message and "\n" not in message
