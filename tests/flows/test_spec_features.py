"""yadage features through the Prefect adapter: what each step saw, where it ran, what it published.

Each test runs a fixture from ``tests/specs`` (or a small spec written here) with
``spec_workflow`` in this process, under the session's Prefect server, and
compares ``run.json`` with values written out by hand. The planner-level tests in
``tests/mltoolkit/yadage`` check the same semantics without Prefect; these check
that the adapter keeps them when steps really run concurrently as task runs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.flows.spec_helpers import (
    SPECS,
    assert_outputs_match_files,
    read_record,
    read_task_runs,
    run_case,
    run_spec,
    steps_by_id,
    summary,
)

C = "COMPLETED"


def _completed(state, record) -> None:
    assert state.is_completed(), [step.get("error") for step in record["steps"]]
    assert record["status"] == "completed"


def test_nested_workflows_two_levels_deep(prefect_api, tmp_path):
    w = tmp_path / "nested"
    state, record = run_case("nested", w)
    _completed(state, record)
    assert summary(record) == {
        "/map/0/stage1": ("/map/0", "stage1", None, "stage1", f"{w}/map_0/stage1", {"item": "a"}, {"value": "a"}, C),
        "/map/1/stage1": ("/map/1", "stage1", None, "stage1", f"{w}/map_1/stage1", {"item": "b"}, {"value": "b"}, C),
        "/single/0/stage1": (
            "/single/0",
            "stage1",
            None,
            "stage1",
            f"{w}/single/stage1",
            {"item": "z"},
            {"value": "z"},
            C,
        ),
        "/map/0/inner/0/leaf": (
            "/map/0/inner/0",
            "leaf",
            None,
            "leaf",
            f"{w}/map_0/inner/leaf",
            {"item": "a"},
            {"value": "a"},
            C,
        ),
        "/map/1/inner/0/leaf": (
            "/map/1/inner/0",
            "leaf",
            None,
            "leaf",
            f"{w}/map_1/inner/leaf",
            {"item": "b"},
            {"value": "b"},
            C,
        ),
        "/single/0/inner/0/leaf": (
            "/single/0/inner/0",
            "leaf",
            None,
            "leaf",
            f"{w}/single/inner/leaf",
            {"item": "z"},
            {"value": "z"},
            C,
        ),
        "/reduce": (
            "",
            "reduce",
            None,
            "reduce",
            f"{w}/reduce",
            {"firsts": ["a", "b"], "deepest": ["a", "b"], "singles": "z"},
            {"firsts": ["a", "b"], "deepest": ["a", "b"], "singles": "z"},
            C,
        ),
    }
    # the steps really ran in those folders: each one's log holds its echo
    assert (w / "map_1" / "inner" / "leaf" / "_packtivity" / "leaf.run.log").read_text() == "b\n"
    assert (w / "reduce" / "_packtivity" / "reduce.run.log").read_text() == "a b / a b / z\n"
    task_runs = read_task_runs(record["flow_run_id"], expected=7)
    assert sorted(run.name for run in task_runs) == sorted(
        [
            "stage1 @/map/0",
            "stage1 @/map/1",
            "stage1 @/single/0",
            "leaf @/map/0/inner/0",
            "leaf @/map/1/inner/0",
            "leaf @/single/0/inner/0",
            "reduce",
        ]
    )


def test_jsonpath_stage_selection_unwrap_and_flatten(prefect_api, tmp_path):
    w = tmp_path / "uf"
    state, record = run_case("unwrap_flatten", w)
    _completed(state, record)
    steps = steps_by_id(record)
    assert [steps[f"/produce_{i}"]["published"] for i in range(2)] == [{"pair": ["a", "a"]}, {"pair": ["b", "b"]}]
    assert steps["/consume"]["parameters"] == {
        "nested": [["a", "a"], ["b", "b"]],
        "flat": ["a", "a", "b", "b"],
        "wrapped": ["x"],
        "unwrapped": "x",
        "unwrap_many": [["a", "a"], ["b", "b"]],
        "whole": {"value": "x"},
        "picked": "b",  # {step: 'produce[1]', output: 'pair[0]'}
    }


def test_batchsize_and_partitionsize(prefect_api, tmp_path):
    w = tmp_path / "batched"
    state, record = run_case("batched", w)
    _completed(state, record)
    batches = {
        "batched": ([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]], "batch"),
        "parted": ([[1, 2, 3], [4, 5, 6], [7, 8, 9, 10]], "part"),
    }
    expected = {}
    for stage, (groups, label) in batches.items():
        for i, items in enumerate(groups):
            expected[f"/{stage}_{i}"] = (
                "",
                stage,
                i,
                f"{stage}_{i}",
                f"{w}/{stage}_{i}",
                {"items": items, "label": label},
                {"items": items},
                C,
            )
    crossed = [
        ([1, 2, 3, 4], ["p", "q", "r", "s"]),
        ([1, 2, 3, 4], ["t"]),
        ([5, 6, 7, 8], ["p", "q", "r", "s"]),
        ([5, 6, 7, 8], ["t"]),
        ([9, 10], ["p", "q", "r", "s"]),
        ([9, 10], ["t"]),
    ]
    for i, (items, letters) in enumerate(crossed):
        expected[f"/crossed_batches_{i}"] = (
            "",
            "crossed_batches",
            i,
            f"crossed_batches_{i}",
            f"{w}/crossed_batches_{i}",
            {"items": items, "letters": letters},
            {"items": items},
            C,
        )
    assert summary(record) == expected


def test_jq_stage(prefect_api, tmp_path):
    w = tmp_path / "jq"
    state, record = run_case("jq_stage", w)
    _completed(state, record)
    what = [f"{w}/map_{i}/what.txt" for i in range(3)]
    expected = {
        f"/map_{i}": (
            "",
            "map",
            i,
            f"map_{i}",
            f"{w}/map_{i}",
            {"parone": i + 1, "outputfile": what[i]},
            {"outputfile": what[i]},
            C,
        )
        for i in range(3)
    }
    expected["/reduce_0"] = (
        "",
        "reduce",
        0,
        "reduce_0",
        f"{w}/reduce_0",
        {"parone": what, "outputfile": f"{w}/reduce_0/here.txt", "count": 3},
        {"outputfile": f"{w}/reduce_0/here.txt"},
        C,
    )
    assert summary(record) == expected
    assert [Path(path).read_text() for path in what] == ["1\n", "2\n", "3\n"]
    assert (w / "reduce_0" / "here.txt").read_text() == " ".join(what) + "\n"


def _cases_expected(w: Path, par: int) -> dict:
    expected = {
        f"/per_item_{i}": (
            "",
            "per_item",
            i,
            f"per_item_{i}",
            f"{w}/per_item_{i}",
            {"parone": i, "outputfile": f"{w}/per_item_{i}/item.txt"},
            {"said": "hello"},
            C,
        )
        for i in (2, 3)  # items 0 and 1 match no case: no step, no folder
    }
    expected["/after"] = (
        "",
        "after",
        None,
        "after",
        f"{w}/after",
        {"greetings": ["hello", "hello"]},
        {"said": "hello"},
        C,
    )
    if par == 2:
        expected["/hello_world"] = (
            "",
            "hello_world",
            None,
            "hello_world",
            f"{w}/hello_world",
            {"parone": 2, "outputfile": f"{w}/hello_world/hello_world.txt"},
            {"said": "bye"},
            C,
        )
    elif par == 7:
        expected["/hello_world/0/big"] = (
            "/hello_world/0",
            "big",
            None,
            "big",
            f"{w}/hello_world/big",
            {"parone": 7},
            {"said": "hello"},
            C,
        )
    return expected


@pytest.mark.parametrize("par", [2, 7, -1], ids=["step-case", "workflow-case", "no-case-matches"])
def test_cases_pick_the_first_matching_branch(prefect_api, tmp_path, par):
    w = tmp_path / "cases"
    state, record = run_case("cases", w, inputs={"par": par, "items": [0, 1, 2, 3]})
    _completed(state, record)
    assert summary(record) == _cases_expected(w, par)
    assert not (w / "per_item_0").exists() and not (w / "per_item_1").exists()


def test_register_values_and_fromvalue(prefect_api, tmp_path):
    w = tmp_path / "regval"
    state, record = run_case("regval", w)
    _completed(state, record)
    expected = {}
    for i, word in enumerate(["one", "two", "three"]):
        single, copy = f"{w}/map_{i}/stage1/single.txt", f"{w}/map_{i}/stage2/copy.txt"
        expected[f"/map/{i}/stage1"] = (
            f"/map/{i}",
            "stage1",
            None,
            "stage1",
            f"{w}/map_{i}/stage1",
            {"input": word, "outputfile": single},
            {"outputA": single},
            C,
        )
        expected[f"/map/{i}/stage2"] = (
            f"/map/{i}",
            "stage2",
            None,
            "stage2",
            f"{w}/map_{i}/stage2",
            {"input": single, "outputfile": copy},
            {"outputB": copy},
            C,
        )
        assert Path(copy).read_text() == f"hello {word}\n"
    merged = f"{w}/reduce/merged.txt"
    expected["/reduce"] = (
        "",
        "reduce",
        None,
        "reduce",
        f"{w}/reduce",
        {"input": [f"{w}/map_{i}/stage1/single.txt" for i in range(3)], "outputfile": merged},
        {"outputB": merged},
        C,
    )
    assert summary(record) == expected
    assert Path(merged).read_text() == "hello one\nhello two\nhello three\n"


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


def test_every_publisher(prefect_api, tmp_path):
    (tmp_path / "workflow.yml").write_text(_publisher_workflow(list(PUBLISHED)))
    w = tmp_path / "work"
    state, record = run_spec(w, tmp_path / "workflow.yml", inputs={})
    _completed(state, record)
    assert {step["name"]: step["published"] for step in record["steps"]} == {
        name: expected(w / name) for name, expected in PUBLISHED.items()
    }
    assert_outputs_match_files(record, w)


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


def test_interpolated_glob_with_relative_paths_over_files_made_at_run_time(prefect_api, tmp_path):
    (tmp_path / "workflow.yml").write_text(DYNAMIC)
    w = tmp_path / "work"
    state, record = run_spec(w, tmp_path / "workflow.yml", inputs={"count": 4})
    _completed(state, record)
    parts = [f"{w}/make/part_{i}.txt" for i in range(1, 5)]
    steps = steps_by_id(record)
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


def test_init_files_in_workdir_init_resolve_relative_init_values(cli_env, tmp_path):
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
    [step] = read_record(w)["steps"]
    # 'label.txt' names no file in init/, so it stays as given
    assert step["parameters"] == {"data": str((w / "init" / "data.txt").resolve()), "label": "label.txt"}
    assert (w / "copy" / "copy.txt").read_text() == "from the init folder\n"


def test_python_interpreter_script(prefect_api, tmp_path):
    w = tmp_path / "py"
    state, record = run_case("script_python", w)
    _completed(state, record)
    assert summary(record) == {
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


def test_refs_to_another_folder_and_to_a_fragment(prefect_api, tmp_path):
    w = tmp_path / "refs"
    state, record = run_case("refs", w)
    _completed(state, record)
    assert summary(record) == {
        # ../refs_shared/steps.yml#/say, whose environment is itself a $ref into common/env.yml
        "/shared": ("", "shared", None, "shared", f"{w}/shared", {"word": "hello"}, {"said": "hello"}, C),
        # steps.yml#/steps/local, with '#/definitions/...' fragments inside the same file
        "/local": ("", "local", None, "local", f"{w}/local", {"word": "local"}, {"said": "local"}, C),
        # sub/flow.yml, whose own 'steps.yml' resolves next to it (sub/steps.yml)
        "/sub/0/inner": ("/sub/0", "inner", None, "inner", f"{w}/sub/inner", {"word": "hello"}, {"said": "hello"}, C),
    }


UNSUPPORTED = {
    "manual environment in a steps file": (
        {
            "steps.yml": """\
            manual:
              process: {process_type: string-interpolated-cmd, cmd: 'true'}
              environment: {environment_type: manual-instructions-env, instructions: 'do it by hand'}
              publisher: {publisher_type: constant-pub, publish: {}}
            """,
            "workflow.yml": """\
            stages:
            - name: a
              dependencies: [init]
              scheduler: {scheduler_type: singlestep-stage, step: {$ref: 'steps.yml#/manual'}}
            """,
        },
        ["steps.yml", "#/manual/environment/environment_type", "manual-instructions-env", "not supported"],
    ),
    "docker resources in the workflow file": (
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
        ["workflow.yml", "#/stages/0/scheduler/step/environment/resources", "CVMFS", "not supported"],
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_construct_is_one_error_line_naming_file_and_key(offline_env, tmp_path, case):
    files, fragments = UNSUPPORTED[case]
    spec = tmp_path / "spec"
    spec.mkdir()
    for name, text in files.items():
        (spec / name).write_text(textwrap.dedent(text))
    workdir = tmp_path / "work"
    result = run_cli(["-m", "flows.spec_workflow", str(workdir), "workflow.yml", "--toplevel", str(spec)], offline_env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.stdout + result.stderr
    assert not workdir.exists()
