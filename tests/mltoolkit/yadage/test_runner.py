"""End to end without Prefect: fixtures run with real (fast) local processes."""

from __future__ import annotations

import json
import textwrap

from mltoolkit.yadage import StepOptions, parse_image_map, run_workflow

from .conftest import case_inputs, load_case


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


def test_fixtures_run_end_to_end(tmp_path):
    run = run_workflow(load_case("branches"), {}, tmp_path / "branches", max_workers=2)
    assert run.status == "completed"
    assert (tmp_path / "branches" / "join" / "joined.txt").read_text() == "left\nright\n"

    run = run_workflow(load_case("script_python"), case_inputs("script_python"), tmp_path / "py")
    assert run.records()[0].published == {"message": "hello from python", "major": 3}

    run = run_workflow(load_case("regval"), case_inputs("regval"), tmp_path / "regval")
    assert run.status == "completed"
    assert (tmp_path / "regval" / "reduce" / "merged.txt").read_text() == "hello one\nhello two\nhello three\n"

    run = run_workflow(load_case("nested"), case_inputs("nested"), tmp_path / "nested")
    assert run.records()[-1].published == {"firsts": ["a", "b"], "deepest": ["a", "b"], "singles": "z"}

    run = run_workflow(load_case("jq_stage"), case_inputs("jq_stage"), tmp_path / "jq")
    assert (tmp_path / "jq" / "map_1" / "what.txt").read_text() == "2\n"
    assert run.records()[-1].parameters["count"] == 3

    run = run_workflow(load_case("refs"), case_inputs("refs"), tmp_path / "refs")
    assert [(r.id, r.published) for r in run.records()] == [
        ("/shared", {"said": "hello"}),
        ("/local", {"said": "local"}),
        ("/sub/0/inner", {"said": "hello"}),
    ]


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
