"""Stub runs through Prefect (``--stub``): the whole DAG runs, no step process does, run.json says so.

``stub_wiring`` names images that exist nowhere and a resource nothing provides:
a real run stops before any step, a stub run goes through. ``human_steps`` has
human steps: a stub run asks nobody.
"""

from __future__ import annotations

import pytest

from tests.constants import SPECS

NO_ENGINE = "unix:///nonexistent/mltoolkit-test.sock"


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)


def _stub_run(spec_in_process, case, workdir, stub=True):
    toplevel = SPECS / case
    return spec_in_process.run(
        workdir, "workflow.yml", toplevel=toplevel, inputs_file=toplevel / "inputs.yml", stub=stub
    )


def test_a_stub_run_needs_no_image_and_no_resource(spec_in_process, run_records, tmp_path, no_engine):
    workdir = tmp_path / "work"
    state, record = _stub_run(spec_in_process, "stub_wiring", workdir)
    assert state.is_completed(), state
    steps = run_records.by_name(record)
    assert set(steps) == {"select", "fit_0", "combine"}
    for step in steps.values():
        assert step["state"] == "COMPLETED" and step["stubbed"] is True
        assert step["environment"] == {"kind": "stub"}
        assert step["cache"] == {"reused": False, "reason": "--stub: stubs are never cached"}
    assert steps["combine"]["published"] == {"summary": str(workdir / "combine" / "summary.json")}
    assert (workdir / "fit_0" / "out" / "stub.json").read_bytes() == b""
    assert "fit_0/out/stub.json" in steps["fit_0"]["outputs"]


def test_a_stub_run_asks_nobody(spec_in_process, run_records, tmp_path):
    workdir = tmp_path / "work"
    state, record = _stub_run(spec_in_process, "human_steps", workdir)
    assert state.is_completed(), state
    steps = run_records.by_name(record)
    assert all(step["stubbed"] is True and "human" not in step for step in steps.values())
    assert set(steps["choose_window"]["published"]) == {"high", "low"}


def test_a_real_run_is_not_marked_stubbed(spec_in_process, run_records, tmp_path):
    _, record = _stub_run(spec_in_process, "publish_only", tmp_path / "work", stub=False)
    assert record["steps"] and all("stubbed" not in step for step in record["steps"])


def test_stub_on_the_command_line(flow_cli, cli_env, run_records, tmp_path):
    env = {**cli_env, "DOCKER_HOST": NO_ENGINE}
    real = flow_cli.spec(env, tmp_path / "real", "stub_wiring")
    flow_cli.assert_error_line(real, "needs resource 'CVMFS'")
    stub = flow_cli.check(flow_cli.spec(env, tmp_path / "stub", "stub_wiring", "--stub"))
    assert "3 steps (all stubs: nothing ran)" in stub.stdout
    assert run_records.states(tmp_path / "stub") == dict.fromkeys(["select", "fit_0", "combine"], "COMPLETED")
