"""yadage steps through the Prefect adapter: every publisher, files made at run time, init files,
script interpreters, and constructs refused with one line naming file and key.

Like ``test_spec_features.py``, each test runs a spec with ``spec_workflow`` in this
process (``spec_in_process``) or through the command line, and compares ``run.json``
with values written out by hand.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.constants import SPECS

C = "COMPLETED"


def _completed(state, record) -> None:
    assert state.is_completed(), [step.get("error") for step in record["steps"]]
    assert record["status"] == "completed"


def _publisher_workflow(names: list[str]) -> str:
    steps = (SPECS / "publishers" / "steps.yml").resolve()
    stages = "".join(
        f"- name: {name}\n  dependencies: [init]\n  scheduler:\n    scheduler_type: singlestep-stage\n"
        f"    parameters: {{name: a}}\n    step: {{$ref: '{steps}#/{name}'}}\n"
        for name in names
    )
    return "stages:\n" + stages


PUBLISHED = {
    "interpolated_plain": lambda w: {"pattern": f"{w}/*.txt", "named": "a.txt"},
    "interpolated_glob": lambda w: {
        "files": [f"{w}/a.txt", f"{w}/b.txt"],
        "one": [f"{w}/a.txt"],
        "none": "nothing-*.dat",
    },
    "interpolated_relative": lambda w: {"file": f"{w}/a.txt", "absolute": "/elsewhere/a.txt"},
    "frompar": lambda w: {"out": "a", "nested": {"inner": "a"}},
    "fromglob": lambda w: {"texts": [f"{w}/a.txt", f"{w}/b.txt"]},
    "fromyaml": lambda w: {"name": "a", "numbers": [1, 2]},
    "constant": lambda w: {"answer": 42, "list": ["x", "y"]},
    "fromparjq": lambda w: {"exact": f"{w}/a.txt", "globbed": [f"{w}/a.txt", f"{w}/b.txt"], "kept": "a"},
}


def test_every_publisher(spec_in_process, run_records, tmp_path):
    (tmp_path / "workflow.yml").write_text(_publisher_workflow(list(PUBLISHED)))
    w = tmp_path / "work"
    state, record = spec_in_process.run(w, tmp_path / "workflow.yml", inputs={})
    _completed(state, record)
    assert {step["name"]: step["published"] for step in record["steps"]} == {
        name: expected(w / name) for name, expected in PUBLISHED.items()
    }
    run_records.assert_outputs_match_files(w, record)


DYNAMIC = """\
# 'make' writes as many files as init says; nothing in the spec knows how many
stages:
- name: make
  dependencies: [init]
  scheduler:
    scheduler_type: singlestep-stage
    parameters: {count: {step: init, output: count}}
    step:
      process:
        process_type: interpolated-script-cmd
        script: |
          for i in $(seq {count}); do echo "part $i" > part_$i.txt; done
          echo ignored > other.dat
      environment: {environment_type: localproc-env}
      publisher:
        publisher_type: interpolated-pub
        glob: true
        relative_paths: true
        publish: {parts: 'part_*.txt', data: '*.dat'}
- name: measure
  dependencies: [make]
  scheduler:
    scheduler_type: multistep-stage
    parameters:
      part: {stages: make, output: parts, flatten: true}
    scatter: {method: zip, parameters: [part]}
    step:
      process: {process_type: string-interpolated-cmd, cmd: 'cat {part} > {workdir}/copy.txt'}
      environment: {environment_type: localproc-env}
      publisher: {publisher_type: fromglob-pub, globexpression: 'cop*.txt', outputkey: copies}
"""


def test_interpolated_glob_with_relative_paths_over_files_made_at_run_time(spec_in_process, run_records, tmp_path):
    (tmp_path / "workflow.yml").write_text(DYNAMIC)
    w = tmp_path / "work"
    state, record = spec_in_process.run(w, tmp_path / "workflow.yml", inputs={"count": 4})
    _completed(state, record)
    parts = [f"{w}/make/part_{i}.txt" for i in range(1, 5)]
    steps = run_records.by_id(record)
    assert steps["/make"]["published"] == {"parts": parts, "data": [f"{w}/make/other.dat"]}
    assert [steps[f"/measure_{i}"]["parameters"] for i in range(4)] == [{"part": part} for part in parts]
    assert [steps[f"/measure_{i}"]["published"] for i in range(4)] == [
        {"copies": [f"{w}/measure_{i}/copy.txt"]} for i in range(4)
    ]
    assert len(steps) == 5
    assert (w / "measure_3" / "copy.txt").read_text() == "part 4\n"


INIT_FILES = """\
stages:
- name: copy
  dependencies: [init]
  scheduler:
    scheduler_type: singlestep-stage
    parameters:
      data: {step: init, output: data}
      label: {step: init, output: label}
    step:
      process: {process_type: string-interpolated-cmd, cmd: 'cat {data} > {workdir}/copy.txt'}
      environment: {environment_type: localproc-env}
      publisher: {publisher_type: interpolated-pub, publish: {copy: '{workdir}/copy.txt', label: '{label}'}}
"""


def test_init_files_in_workdir_init_resolve_relative_init_values(run_cli, run_records, cli_env, tmp_path):
    """Through the CLI, like ``yadage-run``: init files are put in WORKDIR/init before the run."""
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "workflow.yml").write_text(INIT_FILES)
    w = tmp_path / "work"
    (w / "init").mkdir(parents=True)
    (w / "init" / "data.txt").write_text("from the init folder\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "data.txt").write_text("wrong file: the current directory\n")
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(w),
            "workflow.yml",
            "--toplevel",
            str(spec),
            "-p",
            "data=data.txt",
            "-p",
            "label=label.txt",
        ],
        cli_env,
        cwd=elsewhere,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [step] = run_records.read(w)["steps"]
    # 'label.txt' names no file in init/, so it stays as given
    assert step["parameters"] == {"data": str((w / "init" / "data.txt").resolve()), "label": "label.txt"}
    assert (w / "copy" / "copy.txt").read_text() == "from the init folder\n"


def test_python_interpreter_script(spec_in_process, run_records, tmp_path):
    w = tmp_path / "py"
    state, record = spec_in_process.case("script_python", w)
    _completed(state, record)
    assert run_records.summary(record) == {
        "/pyscript": (
            "",
            "pyscript",
            None,
            "pyscript",
            f"{w}/pyscript",
            {"message": "hello from python", "outputfile": f"{w}/pyscript/result.yml"},
            {"message": "hello from python", "major": 3},
            C,
        ),
    }
    assert (w / "pyscript" / "_packtivity" / "pyscript.run.log").read_text() == f"wrote {w}/pyscript/result.yml\n"


UNSUPPORTED = {
    "tarball environment in a steps file": (
        {
            "steps.yml": """\
            packed:
              process: {process_type: string-interpolated-cmd, cmd: 'true'}
              environment: {environment_type: tarball, url: 'https://example.org/env.tar.gz'}
              publisher: {publisher_type: constant-pub, publish: {}}
            """,
            "workflow.yml": """\
            stages:
            - name: a
              dependencies: [init]
              scheduler: {scheduler_type: singlestep-stage, step: {$ref: 'steps.yml#/packed'}}
            """,
        },
        ["steps.yml", "#/packed/environment/environment_type", "tarball", "not supported"],
    ),
    "a resource nothing provides": (
        {
            "workflow.yml": """\
            stages:
            - name: a
              dependencies: [init]
              scheduler:
                scheduler_type: singlestep-stage
                step:
                  process: {process_type: string-interpolated-cmd, cmd: 'true'}
                  environment: {environment_type: docker-encapsulated, image: x, resources: [CVMFS]}
                  publisher: {publisher_type: constant-pub, publish: {}}
            """
        },
        ["workflow.yml", "#/stages/0", "stage 'a'", "needs resource 'CVMFS'", "--provide CVMFS=/cvmfs"],
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_construct_is_one_error_line_naming_file_and_key(run_cli, flow_cli, offline_env, tmp_path, case):
    files, fragments = UNSUPPORTED[case]
    spec = tmp_path / "spec"
    spec.mkdir()
    for name, text in files.items():
        (spec / name).write_text(textwrap.dedent(text))
    workdir = tmp_path / "work"
    result = run_cli(["-m", "flows.spec_workflow", str(workdir), "workflow.yml", "--toplevel", str(spec)], offline_env)
    flow_cli.assert_error_line(result, *fragments)
    assert not workdir.exists()
