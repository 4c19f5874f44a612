"""yadage features through the Prefect adapter: what each step saw, where it ran, what it published.

Each test runs a fixture from ``tests/specs`` (or a small spec written here) with
``spec_workflow`` in this process, under the session's Prefect server, and
compares ``run.json`` with values written out by hand. The planner-level tests in
``tests/mltoolkit/yadage`` check the same semantics without Prefect; these check
that the adapter keeps them when steps really run concurrently as task runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

C = "COMPLETED"


def _completed(state, record) -> None:
    assert state.is_completed(), [step.get("error") for step in record["steps"]]
    assert record["status"] == "completed"


def _leaf_step(w: Path, scope: str, stage: str, folder: str, item: str) -> tuple:
    """A step of the nested fixture that echoes ``item`` (the record's summary form)."""
    return (scope, stage, None, stage, f"{w}/{folder}", {"item": item}, {"value": item}, C)


def test_nested_workflows_two_levels_deep(spec_in_process, run_records, read_task_runs, tmp_path):
    w = tmp_path / "nested"
    state, record = spec_in_process.case("nested", w)
    _completed(state, record)
    reduced = {"firsts": ["a", "b"], "deepest": ["a", "b"], "singles": "z"}
    assert run_records.summary(record) == {
        "/map/0/stage1": _leaf_step(w, "/map/0", "stage1", "map_0/stage1", "a"),
        "/map/1/stage1": _leaf_step(w, "/map/1", "stage1", "map_1/stage1", "b"),
        "/single/0/stage1": _leaf_step(w, "/single/0", "stage1", "single/stage1", "z"),
        "/map/0/inner/0/leaf": _leaf_step(w, "/map/0/inner/0", "leaf", "map_0/inner/leaf", "a"),
        "/map/1/inner/0/leaf": _leaf_step(w, "/map/1/inner/0", "leaf", "map_1/inner/leaf", "b"),
        "/single/0/inner/0/leaf": _leaf_step(w, "/single/0/inner/0", "leaf", "single/inner/leaf", "z"),
        "/reduce": ("", "reduce", None, "reduce", f"{w}/reduce", reduced, reduced, C),
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


def test_jsonpath_stage_selection_unwrap_and_flatten(spec_in_process, run_records, tmp_path):
    w = tmp_path / "uf"
    state, record = spec_in_process.case("unwrap_flatten", w)
    _completed(state, record)
    steps = run_records.by_id(record)
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


def test_batchsize_and_partitionsize(spec_in_process, run_records, tmp_path):
    w = tmp_path / "batched"
    state, record = spec_in_process.case("batched", w)
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
    assert run_records.summary(record) == expected


def test_jq_stage(spec_in_process, run_records, tmp_path):
    w = tmp_path / "jq"
    state, record = spec_in_process.case("jq_stage", w)
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
    assert run_records.summary(record) == expected
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
def test_cases_pick_the_first_matching_branch(spec_in_process, run_records, tmp_path, par):
    w = tmp_path / "cases"
    state, record = spec_in_process.case("cases", w, inputs={"par": par, "items": [0, 1, 2, 3]})
    _completed(state, record)
    assert run_records.summary(record) == _cases_expected(w, par)
    assert not (w / "per_item_0").exists() and not (w / "per_item_1").exists()


def test_register_values_and_fromvalue(spec_in_process, run_records, tmp_path):
    w = tmp_path / "regval"
    state, record = spec_in_process.case("regval", w)
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
    assert run_records.summary(record) == expected
    assert Path(merged).read_text() == "hello one\nhello two\nhello three\n"


def test_refs_to_another_folder_and_to_a_fragment(spec_in_process, run_records, tmp_path):
    w = tmp_path / "refs"
    state, record = spec_in_process.case("refs", w)
    _completed(state, record)
    assert run_records.summary(record) == {
        # ../refs_shared/steps.yml#/say, whose environment is itself a $ref into common/env.yml
        "/shared": ("", "shared", None, "shared", f"{w}/shared", {"word": "hello"}, {"said": "hello"}, C),
        # steps.yml#/steps/local, with '#/definitions/...' fragments inside the same file
        "/local": ("", "local", None, "local", f"{w}/local", {"word": "local"}, {"said": "local"}, C),
        # sub/flow.yml, whose own 'steps.yml' resolves next to it (sub/steps.yml)
        "/sub/0/inner": ("/sub/0", "inner", None, "inner", f"{w}/sub/inner", {"word": "hello"}, {"said": "hello"}, C),
    }
