"""Phase 2: every problem in a spec is one line that says where (file, line, pointer, stage, key) and what."""

from __future__ import annotations

import re
import textwrap

import pytest

from mltoolkit.errors import SpecError, UnsupportedFeatureError
from mltoolkit.yadage import load_workflow, validate_workflow

from .conftest import STEP_YAML as STEP
from .conftest import write_workflow

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
    "tarball environment": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: tarball, url: 'https://example.org/env.tar.gz'}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        UnsupportedFeatureError,
        [
            r"line 7 \(#/stages/0/scheduler/step/environment/environment_type\)",
            "environment_type 'tarball' is not supported",
            "unpack an environment archive",
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
        ["publisher_type 'manual-publishing' is not supported", "manual-instructions-pub"],
    ),
    "malformed memory limit": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: localproc-env, resources: [{kubernetes_memory_limit: 8GB}]}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        SpecError,
        [
            r"#/stages/0/scheduler/step/environment/resources\)",
            r"kubernetes_memory_limit: found '8GB', expected a memory size such as '8Gi'",
            "fix the resource",
        ],
    ),
    "resources not a list": (
        """\
        stages:
        - name: a
          scheduler:
            scheduler_type: singlestep-stage
            step:
              process: {process_type: string-interpolated-cmd, cmd: 'ls'}
              environment: {environment_type: localproc-env, resources: CVMFS}
              publisher: {publisher_type: constant-pub, publish: {}}
        """,
        SpecError,
        [r"#/stages/0/scheduler/step/environment/resources\)", "found 'CVMFS', expected a list of names"],
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
