"""The steps each planned stage depends on (the edges executors give their engine)."""

from __future__ import annotations

from typing import Any

from mltoolkit.yadage import WorkflowRun, load_workflow, read_inputs, validate_workflow
from tests.constants import SPECS


def _upstream_by_stage(case: str, tmp_path, published: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    """Run the planner over ``case``, every step publishing ``published(step)``; {(scope, stage): upstream}."""
    toplevel = SPECS / case
    spec = validate_workflow(load_workflow("workflow.yml", str(toplevel)))
    run = WorkflowRun(spec, read_inputs(str(toplevel / "inputs.yml"), overrides={}), tmp_path)
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    while stages := run.advance():
        for stage in stages:
            found[(stage.scope, stage.stage)] = stage.upstream
            for step in stage.steps:
                run.record_success(step.id, published(step))
    assert run.status == "completed", run.problems()
    return found


def test_the_seeds_stages_depend_on_the_steps_of_the_stages_they_name(tmp_path):
    found = _upstream_by_stage(
        "seed_parallel",
        tmp_path,
        lambda step: {"prepped_data": "p.pkl", "ml_output": [f"{step.name}.pkl"], "ml_result": "r.png"},
    )
    classification = tuple(f"/classification_{i}" for i in range(5))
    assert found == {
        ("", "data_prep"): (),  # init is not a step
        ("", "classification"): ("/data_prep",),
        ("", "merge_and_visualize"): (*classification, "/data_prep"),
    }


def test_subworkflow_steps_depend_through_scopes_and_instance_inputs(tmp_path):
    found = _upstream_by_stage("nested", tmp_path, lambda step: {"value": step.id})
    # the first stage of an instance reads only the instance's inputs: its parent stage had no upstream step
    assert found[("/map/0", "stage1")] == ()
    # a nested instance's stage depends, through its inputs, on what its parent stage depended on
    assert found[("/map/1/inner/0", "leaf")] == ("/map/1/stage1",)
    # 'map' and 'single' select whole instances: every step inside them
    assert set(found[("", "reduce")]) == {
        f"{scope}/{name}" for scope in ("/map/0", "/map/1", "/single/0") for name in ("stage1", "inner/0/leaf")
    }
