"""``python -m flows.compare`` / ``mltoolkit compare``: two runs side by side, and the ``compare-runs`` flow."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil

import pytest
from typer.testing import CliRunner

from flows.cli.app import app


def _copy(shared_run, tmp_path, name="copy"):
    run = shared_run("native")
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    target = tmp_path / name
    shutil.copytree(run.workdir, target)
    return run.workdir, target


def _rewrite(root, relative, old, new):
    """Change an output and its recorded sha256 (run record and crate) consistently: another result, not tampering."""
    path = root / relative
    path.write_text(path.read_text().replace(old, new))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record = json.loads((root / "_mltoolkit/run.json").read_text())
    for step in record["steps"]:
        if relative in step.get("outputs", {}):
            step["outputs"][relative] = digest
    (root / "_mltoolkit/run.json").write_text(json.dumps(record))
    crate = json.loads((root / "ro-crate-metadata.json").read_text())
    for entity in crate["@graph"]:
        if entity.get("@id") == relative and "sha256" in entity:
            entity["sha256"] = digest
    (root / "ro-crate-metadata.json").write_text(json.dumps(crate))


def test_same_run_compares_clean(shared_run, tmp_path):
    original, copy = _copy(shared_run, tmp_path)
    result = CliRunner().invoke(app, ["compare", str(original), str(copy)])
    assert result.exit_code == 0, result.output
    assert "inputs: same" in result.stdout
    assert "nearest_neighbours score" in result.stdout and "ran (first run)" in result.stdout
    assert "reproduced:" in result.stdout


def test_changed_metric_is_named_with_exit_1(shared_run, tmp_path):
    original, copy = _copy(shared_run, tmp_path)
    _rewrite(copy, "scores.json", '"nearest_neighbours": 0.975', '"nearest_neighbours": 0.9')
    result = CliRunner().invoke(app, ["compare", str(original), str(copy), "--rtol", "0.01"])
    assert result.exit_code == 1, result.output
    assert "scores.json: nearest_neighbours 0.975 -> 0.90" in result.stdout
    loose = CliRunner().invoke(app, ["compare", str(original), str(copy), "--atol", "0.1"])
    assert loose.exit_code == 0, loose.output
    assert "within tolerance" in loose.stdout


@pytest.mark.parametrize("second", ["missing", "empty"])
def test_bad_run_is_one_line(run_cli, offline_env, flow_cli, shared_run, tmp_path, second):
    (tmp_path / "empty").mkdir()
    result = run_cli(["-m", "flows.compare", str(shared_run("native").workdir), str(tmp_path / second)], offline_env)
    flow_cli.assert_error_line(result, str(tmp_path / second))


def test_compare_runs_flow_publishes_tables(prefect_api, shared_run, tmp_path):
    from flows.compare import compare_runs_flow

    original, copy = _copy(shared_run, tmp_path)
    state = asyncio.run(compare_runs_flow(str(original), str(copy), return_state=True))
    report = state.result()
    assert report["exit_code"] == 0 and report["metrics"]
    keys = asyncio.run(_artifact_keys(state.state_details.flow_run_id))
    assert keys == {"comparison-outputs", "comparison-metrics", "comparison-steps", "comparison-drift"}


async def _artifact_keys(flow_run_id) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key for artifact in artifacts}
