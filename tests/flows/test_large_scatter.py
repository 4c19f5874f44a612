"""A 1,000-step scatter through the spec command line: every step recorded, in order.

How the cost grows with the number of steps is measured by ``bench/scale.py``
(up to 10,000 steps); this test checks that a large stage runs to the end and
that what the run publishes stays bounded (the UI table of steps is capped).
"""

from __future__ import annotations

import asyncio

import pytest
import yaml

COUNT = 1000


@pytest.mark.slow
def test_thousand_step_scatter_is_recorded_step_by_step(flow_cli, run_records, read_task_runs, cli_env, tmp_path):
    inputs = tmp_path / "items.yml"
    inputs.write_text(yaml.safe_dump({"items": list(range(COUNT))}))
    workdir = tmp_path / "workdir"
    result = flow_cli.check(flow_cli.spec(cli_env, workdir, "noop_scatter", inputs=inputs, timeout=600))
    assert f"completed: {COUNT + 1} steps" in result.stdout

    record = run_records.read(workdir)
    assert record["status"] == "completed"
    steps = record["steps"]
    assert len(steps) == COUNT + 1
    scatter, gather = steps[:COUNT], steps[COUNT]
    assert [step["name"] for step in scatter] == [f"scatter_{i}" for i in range(COUNT)]
    assert [step["index"] for step in scatter] == list(range(COUNT))
    # interpolated-pub publishes the interpolated text, as yadage does
    assert [step["published"]["value"] for step in scatter] == [str(i) for i in range(COUNT)]
    assert {step["state"] for step in scatter} == {"COMPLETED"}
    assert all(step["workdir"] == str(workdir / f"scatter_{i}") for i, step in enumerate(scatter))
    assert gather["name"] == "gather" and gather["state"] == "COMPLETED"
    assert gather["parameters"]["values"] == [str(i) for i in range(COUNT)]

    # the UI's table of steps is capped, not a 1,000-row artifact
    rows = asyncio.run(_latest_table(record["flow_run_id"], "spec-steps"))
    assert len(rows) == 501
    assert rows[-1]["stage"] == "... and 501 more"

    # One Prefect task run per step. Waiting until the server has recorded them all
    # also keeps its event backlog from slowing down the tests after this one.
    task_runs = read_task_runs(record["flow_run_id"], expected=COUNT + 1, timeout=300)
    assert sorted(run.name for run in task_runs) == sorted([f"scatter[{i}]" for i in range(COUNT)] + ["gather"])


async def _latest_table(flow_run_id: str, key: str) -> list[dict]:
    import json
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])
            )
        )
    assert len(artifacts) == 1, artifacts
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


def test_output_files_table_lists_and_hashes_only_the_first_rows(tmp_path, monkeypatch):
    """A run with many files publishes a capped table and hashes only what it lists."""
    import flows.ui_artifacts as ui_artifacts

    for index in range(620):
        folder = tmp_path / f"scatter_{index:04d}"
        folder.mkdir()
        (folder / "out.txt").write_text(str(index))
    (tmp_path / "_mltoolkit" / "cache").mkdir(parents=True)
    (tmp_path / "_mltoolkit" / "cache" / "record").write_text("not an output")
    hashed: list[str] = []
    published: dict = {}

    def counting_sha256(path):
        hashed.append(str(path))
        return "0" * 64

    async def capture(table, key, description):
        published.update(table=table, key=key)

    monkeypatch.setattr(ui_artifacts, "sha256_file", counting_sha256)
    monkeypatch.setattr(ui_artifacts, "acreate_table_artifact", capture)
    asyncio.run(ui_artifacts.publish_output_files(tmp_path, key="spec-output-files"))
    rows = published["table"]
    assert len(rows) == ui_artifacts.MAX_LISTED_FILES + 1
    assert rows[0]["file"] == "scatter_0000/out.txt"
    assert rows[-1]["file"] == f"... and {620 - ui_artifacts.MAX_LISTED_FILES} more"
    assert len(hashed) == ui_artifacts.MAX_LISTED_FILES
    assert not any("_mltoolkit" in row["file"] for row in rows)
