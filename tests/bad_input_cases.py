"""The bad-input catalogue: one bad input per case, for every command line.

Each :class:`Case` names the command line (``ml``, ``spec``, ``step``, ``archive``), its
arguments, a fragment of the one ``error:`` line it must end with, and the files
its folder holds first. ``tests/test_bad_input_catalogue.py`` runs every case
through the ``python -m`` entry points and the ``mltoolkit`` subcommands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.constants import ALIAS_BOMB, ALIAS_BOMB_FLOW, DEEP_YAML

__all__ = ["CASES", "CLIS", "EARLIER", "SUBCOMMANDS", "Case"]

#: The ``python -m`` entry point and the ``mltoolkit`` subcommand of each command line.
CLIS = {"ml": "flows.ml_workflow", "spec": "flows.spec_workflow", "step": "flows.spec_step", "archive": "flows.archive"}
SUBCOMMANDS = {"ml": "run", "spec": "spec", "step": "step", "archive": "archive"}

GOOD_ROWS = "".join(f"{i * 0.1:.6f} {(i * 7 % 5) * 0.2:.6f} {i % 2}\n" for i in range(30))

WRITE_STEP = """\
write_step:
  process:
    process_type: string-interpolated-cmd
    cmd: echo {message} > {outfile}
  environment:
    environment_type: localproc-env
  publisher:
    publisher_type: interpolated-pub
    publish:
      written: '{outfile}'
"""

SMALL_WORKFLOW = """\
stages:
- name: write
  dependencies: [init]
  scheduler:
    scheduler_type: singlestep-stage
    parameters:
      message: hello
      outfile: '{workdir}/out.txt'
    step: {$ref: 'steps.yml#/write_step'}
"""


#: A workflow whose $refs fan out: each level refers ten times to the one below (10**8 nodes).
REF_FAN_OUT = (
    SMALL_WORKFLOW
    + "definitions:\n  d0: [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"  d{level}: [{', '.join([f'{{$ref: {chr(39)}#/definitions/d{level - 1}{chr(39)}}}'] * 10)}]\n"
        for level in range(1, 8)
    )
    + "top: {$ref: '#/definitions/d7'}\n"
)

#: Inputs just over what a flow run's parameters may hold (Prefect's API refuses 524,288 bytes).
BIG_INPUTS = "items:\n" + f"- {'x' * 100}\n" * 6000

CARTESIAN_WORKFLOW = """\
stages:
- name: grid
  dependencies: [init]
  scheduler:
    scheduler_type: multistep-stage
    parameters:
      a: {step: init, output: a}
      b: {step: init, output: b}
      c: {step: init, output: c}
      message: hello
      outfile: '{workdir}/out.txt'
    scatter: {method: cartesian, parameters: [a, b, c]}
    step: {$ref: 'steps.yml#/write_step'}
"""
THOUSANDS = "".join(f"{name}: [{', '.join(map(str, range(1000)))}]\n" for name in "abc")

JQ_FOREVER_WORKFLOW = """\
stages:
- name: forever
  dependencies: [init]
  scheduler:
    scheduler_type: jq-stage
    bindings: {}
    stepscript: '[repeat({message: "hello", outfile: "{workdir}/out.txt"})]'
    step: {$ref: 'steps.yml#/write_step'}
"""

FROMYAML_BOMB_STEP = (
    """\
write_step:
  process:
    process_type: interpolated-script-cmd
    script: |
      cat > {outfile} <<'END'
"""
    + "".join(f"      {line}\n" for line in ALIAS_BOMB.splitlines())
    + """\
      END
  environment:
    environment_type: localproc-env
  publisher:
    publisher_type: fromyaml-pub
    yamlfile: out.txt
"""
)


def _spec(workflow: str = SMALL_WORKFLOW, steps: str = WRITE_STEP) -> dict[str, str]:
    return {"spec/workflow.yml": workflow, "spec/steps.yml": steps}


@dataclass(frozen=True)
class Case:
    """One bad input.

    ``args`` go after ``python -m <cli>``; ``@TMP@`` is the case folder, ``@WORK@`` the
    work directory, ``@SPEC@`` the case's own spec folder, ``@SPECS@`` tests/specs and
    ``@MOON@`` the moon data. ``files`` are created in the case folder first.
    """

    cli: str
    args: tuple[str, ...]
    fragment: str
    files: dict[str, str] = field(default_factory=dict)
    workdir: str = "folder"  # "folder" (with earlier results), "file", "under-file"
    during_run: bool = False
    prepped: bool = False  # also write @TMP@/prepped.pkl (and its sidecar) with the seed's data_prep script


def _ml(*args: str, fragment: str, files: dict[str, str] | None = None, **options) -> Case:
    return Case("ml", args + ("--workdir", "@WORK@"), fragment, files or {}, **options)


def _ml_inputs(text: str, fragment: str, data: str | None = None) -> Case:
    files = {"inputs.yml": text}
    if data is not None:
        files["data.txt"] = data
    return _ml("--inputs", "@TMP@/inputs.yml", fragment=fragment, files=files)


def _spec_case(
    *args: str,
    fragment: str,
    files: dict[str, str] | None = None,
    workflow: str = "workflow.yml",
    toplevel: str = "@SPEC@",
    **options,
) -> Case:
    return Case(
        "spec",
        ("@WORK@", workflow, *args, "--toplevel", toplevel),
        fragment,
        _spec() if files is None else files,
        **options,
    )


def _step(ref: str, *args: str, fragment: str, files: dict[str, str] | None = None, **options) -> Case:
    return Case(
        "step", (ref, "@WORK@", "--toplevel", "@SPEC@", *args), fragment, _spec() if files is None else files, **options
    )


ML_OK = ("-p", "dataset=@MOON@", "-p", "classifiers=[decision_tree]")
STEP_OK = ("-p", "message=hi", "-p", "outfile={workdir}/out.txt")

CASES: dict[str, Case] = {
    # --- flows.ml_workflow: arguments (the inputs cases of tests/flows/test_ml_workflow.py not repeated)
    "ml: unknown runner": _ml(*ML_OK, "--runner", "bogus", fragment="--runner 'bogus': unknown task runner"),
    "ml: retry delay not a number": _ml(*ML_OK, "--retry-delay", "soon", fragment="Invalid value for '--retry-delay'"),
    "ml: no inputs at all": _ml(fragment="no inputs: pass --inputs"),
    # inputs files
    "ml: inputs file is a list": _ml_inputs("- dataset\n- classifiers\n", "expected a mapping"),
    "ml: empty classifier list": _ml_inputs("dataset: @MOON@\nclassifiers: []\n", "non-empty list"),
    "ml: estimator is not a classifier": _ml_inputs(
        "dataset: @MOON@\nclassifiers: [{name: s, estimator: sklearn.preprocessing.StandardScaler}]\n",
        "is not a scikit-learn classifier",
    ),
    "ml: dataset_sha256 not a sha256": _ml_inputs(
        "dataset: @MOON@\ndataset_sha256: abc\nclassifiers: [rbf_svm]\n", "expected 64 hex digits"
    ),
    # datasets
    "ml: dataset empty": _ml_inputs("dataset: data.txt\nclassifiers: [rbf_svm]\n", "file is empty", data=""),
    "ml: dataset with nan": _ml_inputs(
        "dataset: data.txt\nclassifiers: [rbf_svm]\n", "line 2: non-finite value", data="X Y V\nnan 1 0\n" + GOOD_ROWS
    ),
    # work directories
    "ml: workdir under a file": _ml(*ML_OK, fragment="cannot create folder", workdir="under-file"),
    # --- flows.spec_workflow: arguments
    "spec: workflow argument missing": Case("spec", ("@WORK@",), "Missing argument 'workflow'"),
    "spec: step-retries not a number": _spec_case("--step-retries", "write=two", fragment="expected STAGE=N"),
    "spec: step-retries unknown stage": _spec_case(
        "--step-retries", "wirte=1", fragment="--step-retries: no stage named 'wirte'"
    ),
    "spec: image map without =": _spec_case("--image-map", "danikam/sklearn", fragment="expected IMAGE=local"),
    "spec: image map file not a mapping": _spec_case(
        "--image-map-file",
        "@SPEC@/images.yml",
        fragment="expected a mapping",
        files={**_spec(), "spec/images.yml": "- some/image\n"},
    ),
    "spec: bad -p": _spec_case("-p", "message", fragment="expected key=value"),
    # inputs files
    "spec: inputs file missing": _spec_case("@TMP@/inputs.yml", fragment="does not exist"),
    "spec: inputs file not a mapping": _spec_case(
        "@TMP@/inputs.yml", fragment="expected a mapping", files={**_spec(), "inputs.yml": "- a\n- b\n"}
    ),
    # specs
    "spec: workflow file missing": _spec_case(fragment="does not exist", workflow="nope.yml"),
    "spec: malformed yaml": _spec_case(fragment="not valid YAML", files=_spec("stages: [\n  - name: x\n")),
    "spec: unknown scheduler type": _spec_case(
        fragment="found 'bogus-stage', expected one of",
        files=_spec(SMALL_WORKFLOW.replace("singlestep-stage", "bogus-stage")),
    ),
    "spec: stage without step": _spec_case(
        fragment="missing 'step' or 'workflow'",
        files=_spec(SMALL_WORKFLOW.replace("    step: {$ref: 'steps.yml#/write_step'}\n", "")),
    ),
    "spec: $ref to a missing file": _spec_case(
        fragment="missing.yml", files=_spec(SMALL_WORKFLOW.replace("steps.yml#", "missing.yml#"))
    ),
    "spec: $ref to a missing key": _spec_case(
        fragment="has no 'nope'", files=_spec(SMALL_WORKFLOW.replace("#/write_step", "#/nope"))
    ),
    "spec: $ref cycle": _spec_case(fragment="is circular", workflow="a.yml", files={}, toplevel="@SPECS@/refs_cycle"),
    "spec: dependency on an unknown stage": _spec_case(
        fragment="depends on unknown stage 'nosuchstage'",
        files=_spec(SMALL_WORKFLOW.replace("[init]", "[nosuchstage]")),
    ),
    "spec: unknown process type": _spec_case(
        fragment="found 'bogus-cmd', expected one of",
        files=_spec(steps=WRITE_STEP.replace("string-interpolated-cmd", "bogus-cmd")),
    ),
    # work directories
    "spec: workdir is a file": _spec_case(fragment="is a file", workdir="file"),
    "spec: workdir under a file": _spec_case(fragment="cannot create folder", workdir="under-file"),
    # --- flows.spec_step
    "step: reference without a step name": _step(
        "@SPEC@/steps.yml", *STEP_OK, fragment="names a whole file, not one step"
    ),
    "step: unknown step name": _step("steps.yml#/nope", *STEP_OK, fragment="has no 'nope'"),
    "step: step spec without process": _step(
        "steps.yml#/write_step",
        *STEP_OK,
        fragment="missing required key 'process'",
        files=_spec(
            steps=WRITE_STEP.replace(
                "  process:\n    process_type: string-interpolated-cmd\n    cmd: echo {message} > {outfile}\n", ""
            )
        ),
    ),
    "step: bad image map": _step(
        "steps.yml#/write_step", *STEP_OK, "--image-map", "=local", fragment="expected IMAGE=local"
    ),
    "step: workdir is a file": _step("steps.yml#/write_step", *STEP_OK, fragment="is a file", workdir="file"),
    # limits: expansion bombs and oversized documents, refused at load with the variable that raises the limit
    "ml: alias bomb in the inputs file": _ml_inputs(
        "dataset: @MOON@\nclassifiers: [rbf_svm]\n" + ALIAS_BOMB, "MLTOOLKIT_MAX_YAML_NODES="
    ),
    "ml: inputs larger than a flow run takes": _ml_inputs(
        "dataset: @MOON@\nclassifiers: [{name: big, estimator: sklearn.svm.SVC, params: {note: '"
        + "x" * 600_000
        + "'}}]\n",
        "MLTOOLKIT_MAX_INPUTS_BYTES=",
    ),
    "spec: alias bomb in workflow.yml": _spec_case(
        fragment="workflow.yml: node count (aliases and $refs expanded) is over the limit",
        files=_spec(SMALL_WORKFLOW + ALIAS_BOMB),
    ),
    "spec: alias bomb in steps.yml": _spec_case(
        fragment="steps.yml: node count (aliases and $refs expanded) is over the limit",
        files=_spec(steps=WRITE_STEP + ALIAS_BOMB),
    ),
    "spec: alias bomb in the inputs file": _spec_case(
        "@TMP@/inputs.yml",
        fragment="inputs.yml: node count (aliases and $refs expanded)",
        files={**_spec(), "inputs.yml": ALIAS_BOMB},
    ),
    "spec: alias bomb in a -p value": _spec_case(
        "-p", f"bomb={ALIAS_BOMB_FLOW}", fragment="-p bomb: node count (aliases and $refs expanded)"
    ),
    "spec: $ref fan-out": _spec_case(fragment="expanding $ref: node count", files=_spec(REF_FAN_OUT)),
    "spec: workflow nested 600 deep": _spec_case(
        fragment="nesting depth is over the limit of 100 levels", files=_spec(SMALL_WORKFLOW + f"deep: {DEEP_YAML}\n")
    ),
    "spec: inputs nested 600 deep": _spec_case(
        "@TMP@/inputs.yml",
        fragment="MLTOOLKIT_MAX_YAML_DEPTH=",
        files={**_spec(), "inputs.yml": f"deep: {DEEP_YAML}\n"},
    ),
    "spec: inputs larger than a flow run takes": _spec_case(
        "@TMP@/inputs.yml",
        fragment="size of the inputs as JSON is 618,011 bytes, over the limit of 500,000 bytes",
        files={**_spec(), "inputs.yml": BIG_INPUTS},
    ),
    # --- found while the flow runs
    "run: spec step reads a missing dataset": Case(
        "spec",
        (
            "@WORK@",
            "workflow.yml",
            "-p",
            "dataset=@TMP@/missing.txt",
            "-p",
            "classifiers=[rbf_svm]",
            "--toplevel",
            "@SPECS@/seed_parallel",
        ),
        "missing.txt",
        during_run=True,
    ),
    "run: spec step reads a malformed dataset": Case(
        "spec",
        (
            "@WORK@",
            "workflow.yml",
            "-p",
            "dataset=@TMP@/data.txt",
            "-p",
            "classifiers=[rbf_svm]",
            "--toplevel",
            "@SPECS@/seed_parallel",
        ),
        "found 2 columns, expected 3",
        {"data.txt": "X Y\n1 2\n" + GOOD_ROWS},
        during_run=True,
    ),
    "run: image without mapping and no docker": _spec_case(
        fragment="has no image-map entry",
        during_run=True,
        files=_spec(
            steps=WRITE_STEP.replace(
                "environment_type: localproc-env", "environment_type: docker-encapsulated\n    image: nosuch/image"
            )
        ),
    ),
    "run: command names an unknown parameter": _spec_case(
        fragment="colour", during_run=True, files=_spec(steps=WRITE_STEP.replace("echo {message}", "echo {colour}"))
    ),
    "run: native hyperparameter scikit-learn rejects when fitting": _ml(
        "-p",
        "dataset=@MOON@",
        "-p",
        "classifiers=[{name: bad, estimator: sklearn.svm.SVC, params: {C: -1}}]",
        fragment="step classify[bad]: The 'C' parameter of SVC must be",
        during_run=True,
    ),
    "run: step script hyperparameter scikit-learn rejects when fitting": Case(
        "step",
        (
            "steps.yml#/classification_step",
            "@WORK@",
            "--toplevel",
            "@SPECS@/seed_parallel",
            "-p",
            "input_data=@TMP@/prepped.pkl",
            "-p",
            "outdir={workdir}",
            "-p",
            """all_classifiers=['{"name":"bad","estimator":"sklearn.svm.SVC","params":{"C":-1}}']""",
        ),
        "The 'C' parameter of SVC must be",
        during_run=True,
        prepped=True,
    ),
    "run: 1000 x 1000 x 1000 cartesian scatter": _spec_case(
        "@TMP@/inputs.yml",
        fragment="number of steps of one stage is 1,000,000,000, over the limit of 50,000",
        during_run=True,
        files={**_spec(CARTESIAN_WORKFLOW), "inputs.yml": THOUSANDS},
    ),
    "run: jq stage that never ends": _spec_case(
        fragment="jq run time is over the limit of 10 s", during_run=True, files=_spec(JQ_FOREVER_WORKFLOW)
    ),
    "run: fromyaml-pub output is an alias bomb": _spec_case(
        fragment="MLTOOLKIT_MAX_YAML_NODES=", during_run=True, files=_spec(steps=FROMYAML_BOMB_STEP)
    ),
    "run: spec_step on a missing dataset": Case(
        "step",
        (
            "steps.yml#/data_prep_step",
            "@WORK@",
            "--toplevel",
            "@SPECS@/seed_parallel",
            "-p",
            "dataset=@TMP@/missing.txt",
            "-p",
            "outfile={workdir}/prepped.pkl",
        ),
        "missing.txt",
        during_run=True,
    ),
    # --- flows.archive: what to archive and where
    "archive: not a run's folder": Case("archive", ("@TMP@", "@TMP@/out.zip"), "no run record"),
    "archive: work directory missing": Case("archive", ("@TMP@/nowhere", "@TMP@/out.zip"), "found nothing"),
    "archive: work directory is a file": Case(
        "archive", ("@WORK@", "@TMP@/out.zip"), "found a file, expected the folder of a run", workdir="file"
    ),
    "archive: run record damaged": Case(
        "archive", ("@TMP@/run", "@TMP@/out.zip"), "not valid JSON", {"run/_mltoolkit/run.json": "{"}
    ),
    "archive: output is a folder": Case("archive", ("@WORK@", "@WORK@/earlier"), "is a folder, expected a file name"),
    "archive: output below a file": Case(
        "archive", ("@WORK@", "@WORK@/scores.json/out.zip"), "scores.json is a file, not a folder"
    ),
}

#: What an earlier run left in a case's work directory (it must survive every failure).
EARLIER = {
    "earlier/result.txt": "an earlier result\n",
    "scores.json": '{"earlier": 1.0}\n',
    "_mltoolkit/run.json": '{"status": "completed", "steps": []}\n',
}
