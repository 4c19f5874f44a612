"""Bad input, across the three command lines: one ``error:`` line, exit 1, no traceback, nothing lost.

Each case runs a command line on a case folder holding an *earlier result*
(files a previous run left in the work directory) and checks:

* exit code 1 and no ``Traceback`` anywhere in stdout or stderr;
* failures found before the flow starts (most cases, run against an API that does
  not answer, so a case that wrongly reached the flow fails loudly): exactly one
  stderr line, ``error: ...``, and the case folder unchanged, file by file;
* failures found while a flow runs (a spec step reading a bad dataset...): Prefect
  may log first, but the last stderr line is the one ``error:`` line, and every
  file that was there before is unchanged (the run's own bookkeeping under
  ``_mltoolkit/`` and new step folders aside).

Work directory paths with spaces and non-ASCII letters are not bad input: the
last tests check that all three command lines succeed with one.

The cases that fail before the flow starts only pay for process start-up, so they
run a few at a time (``_offline_outcome``); each still reports as its own test.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.trust_helpers import MOON, SPECS, assert_error_line, shared_run, snapshot

CLIS = {"ml": "flows.ml_workflow", "spec": "flows.spec_workflow", "step": "flows.spec_step"}

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
}

OFFLINE = sorted(name for name, case in CASES.items() if not case.during_run)
DURING_RUN = sorted(name for name, case in CASES.items() if case.during_run)

EARLIER = {
    "earlier/result.txt": "an earlier result\n",
    "scores.json": '{"earlier": 1.0}\n',
    "_mltoolkit/run.json": '{"status": "completed", "steps": []}\n',
}


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, str]
    after: dict[str, str]
    workdir: Path


def _substitute(text: str, folder: Path, workdir: Path) -> str:
    return (
        text.replace("@TMP@", str(folder))
        .replace("@WORK@", str(workdir))
        .replace("@SPECS@", str(SPECS))
        .replace("@SPEC@", str(folder / "spec"))
        .replace("@MOON@", str(MOON))
    )


def _prepare(case: Case, folder: Path) -> tuple[list[str], Path]:
    """Create the case's files and work directory; return the command line and the workdir."""
    workdir = {
        "folder": folder / "work dir",
        "file": folder / "work dir",
        "under-file": folder / "a file" / "work dir",
    }[case.workdir]
    if case.prepped:
        from mltoolkit.analysis.fun_with_ml import data_prep

        assert data_prep.main(["--dataset", str(MOON), "--outfile", str(folder / "prepped.pkl")]) == 0
    for relative, text in case.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_substitute(text, folder, workdir))
    if case.workdir == "folder":
        for relative, text in EARLIER.items():
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            (workdir / relative).write_text(text)
    elif case.workdir == "file":
        workdir.write_text("an earlier result that is a file\n")
    else:
        workdir.parent.write_text("a file where a folder would have to be\n")
    args = ["-m", CLIS[case.cli], *(_substitute(arg, folder, workdir) for arg in case.args)]
    return args, workdir


def _run_case(name: str, folder: Path, env: dict[str, str]) -> Outcome:
    case = CASES[name]
    args, workdir = _prepare(case, folder)
    before = snapshot(folder)
    result = run_cli(args, env, cwd=folder, timeout=300)
    return Outcome(result, before, snapshot(folder), workdir)


_offline_outcomes: dict[str, Outcome] = {}


def _offline_outcome(
    case: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    """The outcome of an offline case; the first call runs every selected one, a few at a time."""
    if case not in _offline_outcomes:
        selected = {
            item.callspec.params["case"]
            for item in request.session.items
            if item.module is request.module
            and getattr(item, "callspec", None)
            and item.originalname == "test_bad_input_before_the_flow"
        }
        pending = sorted((selected | {case}) - set(_offline_outcomes))
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(_run_case, name, tmp_path_factory.mktemp("bad-input"), env) for name in pending
            }
            _offline_outcomes.update({name: future.result() for name, future in futures.items()})
    return _offline_outcomes[case]


def test_catalogue_is_large_and_covers_every_cli():
    assert len(CASES) >= 40
    assert {case.cli for case in CASES.values()} == set(CLIS)
    assert {case.workdir for case in CASES.values()} == {"folder", "file", "under-file"}


@pytest.mark.parametrize("case", OFFLINE)
def test_bad_input_before_the_flow(case, request, offline_env, tmp_path_factory):
    outcome = _offline_outcome(case, request, offline_env, tmp_path_factory)
    line = assert_error_line(outcome.result, CASES[case].fragment)
    assert "flow run failed" not in line  # caught as bad input, not as a crash of the run
    assert outcome.after == outcome.before, "the failed command changed files"


@pytest.mark.parametrize("case", DURING_RUN)
def test_bad_input_found_during_the_run(case, cli_env, tmp_path):
    if "docker" in case:
        from mltoolkit.yadage.packtivity import docker_available

        if docker_available():
            pytest.skip("a Docker engine answers here: the image would be pulled, not refused")
    outcome = _run_case(case, tmp_path, cli_env)
    assert_error_line(outcome.result, CASES[case].fragment, only_line=False)
    changed = {
        path: digest
        for path, digest in outcome.before.items()
        if outcome.after.get(path) != digest and "_mltoolkit/" not in path
    }
    assert not changed, f"earlier files changed: {sorted(changed)}"


# --- spaces and non-ASCII letters in work directory paths are fine --------------------------


def test_native_cli_succeeds_in_a_workdir_with_spaces_and_unicode(cli_env, tmp_path_factory):
    run = shared_run("native", tmp_path_factory.getbasetemp(), cli_env)
    assert " " in run.workdir.name and not run.workdir.name.isascii()
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    assert "error:" not in run.result.stderr
    assert (run.workdir / "merge_and_visualize" / "ml_results.png").is_file()


def test_spec_cli_succeeds_in_a_workdir_with_spaces_and_unicode(cli_env, tmp_path_factory):
    run = shared_run("seed-spec", tmp_path_factory.getbasetemp(), cli_env)
    assert " " in run.workdir.name and not run.workdir.name.isascii()
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    assert (run.workdir / "merge_and_visualize" / "ml_results.png").is_file()


def test_spec_step_cli_succeeds_in_a_workdir_with_spaces_and_unicode(cli_env, tmp_path):
    workdir = tmp_path / "stép wörk ✓ dir"
    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "steps.yml#/write_step",
            str(workdir),
            "--toplevel",
            str(SPECS / "trust"),
            "-p",
            "message=grüße",
            "-p",
            "outfile={workdir}/out.txt",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == {"written": str(workdir / "out.txt")}
    assert (workdir / "out.txt").read_text(encoding="utf-8") == "grüße\n"
