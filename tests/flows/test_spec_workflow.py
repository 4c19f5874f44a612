"""The spec adapter end to end: the seed's yadage spec, unmodified, as a Prefect flow run.

The seed spec and the native flow run once per module (each is a CLI subprocess
against the session's Prefect server); the tests below read what they left.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from tests.constants import SEED_CLASSIFIERS, SEED_SCORES, SEED_URL, SPECS

CLASSIFIERS = SEED_CLASSIFIERS


@pytest.fixture(scope="module")
def seed_runs(run_cli, session_cli_env, tmp_path_factory):
    """Run the seed spec (``--toplevel tests/specs/seed_parallel``) and the native flow, once."""
    env = session_cli_env
    base = tmp_path_factory.mktemp("seed")
    spec_files = {path.name: path.read_bytes() for path in (SPECS / "seed_parallel").iterdir()}
    spec_workdir = (base / "spec run").resolve()  # a space in the path on purpose
    spec = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(spec_workdir),
            "workflow.yml",
            "inputs.yml",
            "--toplevel",
            "tests/specs/seed_parallel",
        ],
        env,
    )
    native_workdir = (base / "native").resolve()
    native = run_cli(["-m", "flows.ml_workflow", "--inputs", "inputs.yml", "--workdir", str(native_workdir)], env)
    assert {path.name: path.read_bytes() for path in (SPECS / "seed_parallel").iterdir()} == spec_files
    return {"spec": spec, "spec_workdir": spec_workdir, "native": native, "native_workdir": native_workdir}


def test_seed_spec_runs_unmodified_through_the_cli_in_yadages_layout(seed_runs, assert_png):
    result, workdir = seed_runs["spec"], seed_runs["spec_workdir"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        result.stdout.strip().splitlines()[-1] == f"completed: 7 steps; record: {workdir / '_mltoolkit' / 'run.json'}"
    )
    folders = sorted(path.name for path in workdir.iterdir() if path.is_dir())
    assert folders == sorted(
        ["_mltoolkit", "data_prep", "merge_and_visualize", *[f"classification_{i}" for i in range(5)]]
    )
    assert (workdir / "data_prep" / "prepped_data.pkl").is_file()
    assert_png(workdir / "merge_and_visualize" / "ml_results.png", min_side=200)


def test_each_classification_published_one_pickle_with_the_native_flows_score(seed_runs, run_records):
    from mltoolkit.analysis.ml import ClassifierResult
    from mltoolkit.workdir.artifacts import load_pickle

    assert seed_runs["native"].returncode == 0, seed_runs["native"].stderr[-3000:]
    native_scores = json.loads((seed_runs["native_workdir"] / "scores.json").read_text())
    assert list(native_scores) == CLASSIFIERS
    workdir = seed_runs["spec_workdir"]
    steps = run_records.by_name(run_records.read(workdir))
    scores = {}
    for index, name in enumerate(CLASSIFIERS):
        published = steps[f"classification_{index}"]["published"]
        assert published == {"ml_output": f"{workdir}/classification_{index}/*.pkl"}
        [pickle] = glob.glob(published["ml_output"])  # exactly one file behind the published glob
        assert Path(pickle) == workdir / f"classification_{index}" / f"{name}.pkl"
        result = load_pickle(pickle)
        assert isinstance(result, ClassifierResult) and result.name == name
        scores[name] = result.score
    assert scores == native_scores
    assert {name: round(score, 2) for name, score in scores.items()} == SEED_SCORES


def test_seed_run_record_is_complete(seed_runs, run_records):
    workdir = seed_runs["spec_workdir"]
    record = run_records.read(workdir)
    assert record["status"] == "completed" and record["flow"] == "spec-workflow"
    assert record["inputs"] == {"dataset": SEED_URL, "classifiers": CLASSIFIERS}
    prepped = f"{workdir}/data_prep/prepped_data.pkl"
    expected = {
        "/data_prep": (
            "",
            "data_prep",
            None,
            "data_prep",
            str(workdir / "data_prep"),
            {"dataset": SEED_URL, "outfile": prepped},
            {"prepped_data": prepped},
            "COMPLETED",
        ),
        **{
            f"/classification_{i}": (
                "",
                "classification",
                i,
                f"classification_{i}",
                str(workdir / f"classification_{i}"),
                {"input_data": prepped, "all_classifiers": name, "outdir": f"{workdir}/classification_{i}"},
                {"ml_output": f"{workdir}/classification_{i}/*.pkl"},
                "COMPLETED",
            )
            for i, name in enumerate(CLASSIFIERS)
        },
        "/merge_and_visualize": (
            "",
            "merge_and_visualize",
            None,
            "merge_and_visualize",
            str(workdir / "merge_and_visualize"),
            {
                "input_data": prepped,
                "ml_inputs": [f"{workdir}/classification_{i}/*.pkl" for i in range(5)],
                "outfile": f"{workdir}/merge_and_visualize/ml_results.png",
            },
            {"ml_result": f"{workdir}/merge_and_visualize/ml_results.png"},
            "COMPLETED",
        ),
    }
    assert run_records.summary(record) == expected
    names = [step["name"] for step in record["steps"]]
    assert names[0] == "data_prep" and names[-1] == "merge_and_visualize"
    run_records.assert_outputs_match_files(workdir, record)
    main_output = {
        "data_prep": "data_prep/prepped_data.pkl",
        "merge_and_visualize": "merge_and_visualize/ml_results.png",
        **{f"classification_{i}": f"classification_{i}/{name}.pkl" for i, name in enumerate(CLASSIFIERS)},
    }
    for step in record["steps"]:
        assert main_output[step["name"]] in step["outputs"], step["outputs"]
        assert step["error"] is None and step["attempts"] == 1
        assert step["started"] and step["ended"] and step["started"] <= step["ended"], step["name"]


def test_one_named_task_run_per_step(seed_runs, run_records, read_task_runs):
    record = run_records.read(seed_runs["spec_workdir"])
    task_runs = read_task_runs(record["flow_run_id"], expected=7)
    assert sorted(run.name for run in task_runs) == sorted(
        ["data_prep", "merge_and_visualize", *[f"classification[{i}]" for i in range(5)]]
    )
    assert all(run.state.is_completed() for run in task_runs)
    assert {step["task_run_id"] for step in record["steps"]} == {str(run.id) for run in task_runs}


def test_run_record_says_where_each_step_ran(seed_runs, run_records):
    # No engine answers in this suite (tests/docker runs the same spec in containers):
    # the seed's image runs by its built-in image-map entry, and the record says so.
    from mltoolkit.yadage.packtivity import TOOLKIT_SCRIPTS_DIR

    for step in run_records.read(seed_runs["spec_workdir"])["steps"]:
        assert step["environment"] == {
            "kind": "toolkit",
            "image": "danikam/sklearn:latest",
            "mapped_to": f"toolkit (built-in entry; /fun_with_ml={TOOLKIT_SCRIPTS_DIR})",
        }, step["name"]


# --- concurrency -------------------------------------------------------------------------------

TIMED_STEPS = """\
timed:
  process:
    process_type: interpolated-script-cmd
    script: |
      date +%s.%N > {workdir}/start.txt
      sleep 1
      date +%s.%N > {workdir}/end.txt
  environment: {environment_type: localproc-env}
  publisher:
    publisher_type: interpolated-pub
    publish: {start: '{workdir}/start.txt', end: '{workdir}/end.txt'}
"""

TIMED_WORKFLOW = """\
stages:
- name: left
  dependencies: [init]
  scheduler: {scheduler_type: singlestep-stage, parameters: {side: left}, step: {$ref: 'steps.yml#/timed'}}
- name: right
  dependencies: [init]
  scheduler: {scheduler_type: singlestep-stage, parameters: {side: right}, step: {$ref: 'steps.yml#/timed'}}
- name: join
  dependencies: [left, right]
  scheduler:
    scheduler_type: singlestep-stage
    parameters: {after_left: {step: left, output: end}, after_right: {step: right, output: end}}
    step: {$ref: 'steps.yml#/timed'}
"""


def test_independent_branches_run_at_the_same_time(spec_in_process, tmp_path):
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "steps.yml").write_text(TIMED_STEPS)
    (spec / "workflow.yml").write_text(TIMED_WORKFLOW)
    workdir = tmp_path / "work"
    state, record = spec_in_process.run(workdir, "workflow.yml", toplevel=spec, inputs={})
    assert state.is_completed(), record.get("status")

    def interval(stage: str) -> tuple[float, float]:
        folder = workdir / stage
        return float((folder / "start.txt").read_text()), float((folder / "end.txt").read_text())

    (left_start, left_end), (right_start, right_end) = interval("left"), interval("right")
    assert max(left_start, right_start) < min(left_end, right_end), "left and right did not overlap"
    join_start, _ = interval("join")
    assert join_start >= max(left_end, right_end)  # the dependant still waits for both


# --- scale, through the command line ---------------------------------------------------------


def test_batched_multilevel_map_reduce_over_120_items(run_cli, run_records, cli_env, tmp_path):
    workdir = tmp_path / "mr"
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "workflow.yml",
            "inputs.yml",
            "--toplevel",
            "tests/specs/mapreduce_multilevel",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("completed: 61 steps; record: ")
    record = run_records.read(workdir)
    assert record["status"] == "completed"
    steps = run_records.by_name(record)
    assert [sum(step["stage"] == stage for step in record["steps"]) for stage in ("map", "map2", "reduce")] == [
        40,
        20,
        1,
    ]
    # map_i sums items 3i+1..3i+3; map2_j sums map_2j and map_2j+1, in index order whatever finished first
    totals = [9 * i + 6 for i in range(40)]
    for i in range(40):
        assert steps[f"map_{i}"]["parameters"] == {
            "input": [3 * i + 1, 3 * i + 2, 3 * i + 3],
            "outputfile": f"{workdir}/map_{i}/sum.yml",
        }
        assert steps[f"map_{i}"]["published"] == {"total": totals[i]}
    for j in range(20):
        assert steps[f"map2_{j}"]["parameters"]["input"] == totals[2 * j : 2 * j + 2]
        assert steps[f"map2_{j}"]["published"] == {"total": totals[2 * j] + totals[2 * j + 1]}
    assert steps["reduce"]["parameters"]["input"] == [totals[2 * j] + totals[2 * j + 1] for j in range(20)]
    assert steps["reduce"]["published"] == {"total": sum(range(1, 121))}
    assert (workdir / "reduce" / "sum.yml").read_text() == "total: 7260\n"
    assert all(step["state"] == "COMPLETED" for step in record["steps"])


def test_visualize_draws_one_node_per_step(run_cli, run_records, assert_png, cli_env, tmp_path):
    import xml.etree.ElementTree as ElementTree

    workdir = tmp_path / "pictures"
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "workflow.yml",
            "inputs.yml",
            "--toplevel",
            "tests/specs/visualize_small",
            "--visualize",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = run_records.read(workdir)
    ids = {step["id"] for step in record["steps"]}
    assert ids == {
        "/prepare",
        "/classify_0",
        "/classify_1",
        "/classify_2",
        "/map/0/first",
        "/map/0/second",
        "/map/1/first",
        "/map/1/second",
        "/merge",
    }
    pictures = workdir / "_mltoolkit"
    assert_png(pictures / "workflow.png")
    svg = ElementTree.parse(pictures / "workflow.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    step_nodes = [element for element in svg.iter() if "step" in element.get("class", "").split()]
    # one node per step, whichever renderer drew it (graphviz's dot when installed, else matplotlib)
    assert sorted(element.get("data-id") for element in step_nodes) == sorted(ids)
    dot = (pictures / "workflow.dot").read_text()
    assert dot.lstrip().startswith("digraph") and all(f'"{step_id}"' in dot for step_id in ids)
