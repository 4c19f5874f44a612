"""End to end without Prefect: fixtures run with real (fast) local processes."""

from __future__ import annotations

import json
import textwrap

import pytest

from mltoolkit.yadage import StepOptions, parse_image_map, run_workflow, validate_workflow

from .conftest import case_inputs, load_case, noop_stage


def test_batched_multilevel_map_reduce_over_120_items(tmp_path):
    run = run_workflow(load_case("mapreduce_multilevel"), case_inputs("mapreduce_multilevel"), tmp_path, max_workers=2)
    assert run.status == "completed", run.problems()
    records = run.records()
    assert [sum(r.stage == stage for r in records) for stage in ("map", "map2", "reduce")] == [40, 20, 1]
    by_name = {record.name: record for record in records}
    assert by_name["map_0"].parameters["input"] == [1, 2, 3]
    assert by_name["map_0"].published == {"total": 6}
    assert by_name["map2_0"].parameters["input"] == [6, 15]
    assert by_name["reduce"].published == {"total": sum(range(1, 121))}
    assert (tmp_path / "reduce" / "sum.yml").read_text() == "total: 7260\n"


def test_one_thousand_noop_steps_then_a_gather(tmp_path):
    count = 1000
    run = run_workflow(load_case("noop_scatter"), {"items": list(range(count))}, tmp_path)
    assert run.status == "completed"
    records = run.records()
    assert len(records) == count + 1
    assert records[7].published == {"value": "7", "where": f"{tmp_path}/scatter_7/out.txt"}
    assert records[-1].parameters == {"values": [str(i) for i in range(count)]}
    assert not (tmp_path / "scatter_7" / "out.txt").exists()  # noop-env ran nothing


def _check_branches(run, workdir):
    assert (workdir / "join" / "joined.txt").read_text() == "left\nright\n"


def _check_script_python(run, workdir):
    assert run.records()[0].published == {"message": "hello from python", "major": 3}


def _check_regval(run, workdir):
    assert (workdir / "reduce" / "merged.txt").read_text() == "hello one\nhello two\nhello three\n"


def _check_nested(run, workdir):
    assert run.records()[-1].published == {"firsts": ["a", "b"], "deepest": ["a", "b"], "singles": "z"}


def _check_jq_stage(run, workdir):
    assert (workdir / "map_1" / "what.txt").read_text() == "2\n"
    assert run.records()[-1].parameters["count"] == 3


def _check_refs(run, workdir):
    assert [(r.id, r.published) for r in run.records()] == [
        ("/shared", {"said": "hello"}),
        ("/local", {"said": "local"}),
        ("/sub/0/inner", {"said": "hello"}),
    ]


FIXTURE_CHECKS = {
    "branches": _check_branches,
    "script_python": _check_script_python,
    "regval": _check_regval,
    "nested": _check_nested,
    "jq_stage": _check_jq_stage,
    "refs": _check_refs,
}


@pytest.mark.parametrize("case", sorted(FIXTURE_CHECKS))
def test_fixtures_run_end_to_end(tmp_path, case):
    workdir = tmp_path / case
    run = run_workflow(load_case(case), case_inputs(case), workdir, max_workers=2)
    assert run.status == "completed", run.problems()
    FIXTURE_CHECKS[case](run, workdir)


def test_a_failing_step_fails_the_run_but_independent_branches_finish(tmp_path):
    (tmp_path / "left").mkdir()
    (tmp_path / "left" / "left.txt").mkdir()  # `echo left > left.txt` now fails
    run = run_workflow(load_case("branches"), {}, tmp_path)
    assert run.status == "failed"
    states = {record.name: record.state for record in run.records()}
    assert states == {"left": "FAILED", "right": "COMPLETED"}
    assert any("step /left failed: stage 'left' step left: command exited with code" in line for line in run.problems())


STUBS = {
    "data_prep.py": """
        import argparse, pathlib
        parser = argparse.ArgumentParser()
        parser.add_argument("--dataset"); parser.add_argument("--outfile")
        args = parser.parse_args()
        pathlib.Path(args.outfile).write_text(args.dataset)
    """,
    "classification.py": """
        import argparse, pathlib
        parser = argparse.ArgumentParser()
        parser.add_argument("--prepped_data"); parser.add_argument("--classifier"); parser.add_argument("--outfile")
        args = parser.parse_args()
        pathlib.Path(args.outfile).write_text(args.classifier)
    """,
    "merge_and_plot.py": """
        import json, sys
        with open(sys.argv[2], "w") as handle:
            json.dump(sys.argv[1:], handle)
    """,
}


def test_the_seed_spec_runs_unmodified_through_an_image_map(tmp_path, specs):
    scripts = tmp_path / "stub scripts"
    scripts.mkdir()
    for name, text in STUBS.items():
        (scripts / name).write_text(textwrap.dedent(text))
    image_map = parse_image_map([f"danikam/sklearn=toolkit:/fun_with_ml={scripts}"])
    options = StepOptions(use_docker=False, image_map=image_map)
    workdir = tmp_path / "work dir"
    # the seed's own script expands $classifier unquoted, so a name with spaces would split
    # there; shell syntax without spaces must still stay literal
    tricky = "svm;$(touch${IFS}PWNED)"
    inputs = {"dataset": "moon.txt", "classifiers": ["knn", tricky, "tree"]}
    run = run_workflow(load_case("seed_parallel"), inputs, workdir, options=options, max_workers=2)
    assert run.status == "completed", run.problems()
    argv = json.loads((workdir / "merge_and_visualize" / "ml_results.png").read_text())
    assert argv[0] == str(workdir.resolve() / "data_prep" / "prepped_data.pkl")
    assert argv[2:] == [
        str(workdir.resolve() / f"classification_{i}" / f"{name}.pkl") for i, name in enumerate(["knn", tricky, "tree"])
    ]
    assert not any(path.name == "PWNED" for path in workdir.rglob("*"))


def test_a_step_folder_that_leads_out_of_the_work_directory_fails_the_stage_and_touches_nothing(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "left").symlink_to(victim)  # a link planted where a step folder goes
    workflow = validate_workflow({"stages": [noop_stage("left", ["init"], {"value": 1})]})
    run = run_workflow(workflow, {}, workdir)
    assert run.status == "failed" and run.records() == []
    [problem] = run.problems()
    assert (
        f"stage 'left': step folder {str(workdir / 'left')!r} resolves to" in problem
        and "not strictly inside the work directory" in problem
    )
    assert [path.name for path in victim.iterdir()] == ["keep.txt"]
    assert (victim / "keep.txt").read_text() == "precious"
    assert sorted(path.name for path in workdir.iterdir()) == ["left"]
