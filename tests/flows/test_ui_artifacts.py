"""What runs show in the Prefect UI, read back through the API: results, figures, tables that fit."""

from __future__ import annotations

import base64
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.workdir.artifacts import sha256_file
from tests.constants import PNG_SIGNATURE


def _artifacts(flow_run_id: str) -> dict[str, Any]:
    """The flow run's artifacts by key (each key once)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {artifact.key: artifact for artifact in found}
    assert len(by_key) == len(found), [artifact.key for artifact in found]
    return by_key


def _table(artifact: Any) -> list[dict[str, Any]]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def _embedded_image(markdown: str) -> bytes:
    match = re.search(r"\]\(data:image/[a-z+]+;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:300]
    return base64.b64decode(match.group(1))


def _assert_names_file_from_elsewhere(markdown: str, workdir: Path, relative: str) -> None:
    """The markdown names the file relative to the work directory, with size, sha256, folder and host."""
    path = workdir / relative
    assert f"`{relative}` ({path.stat().st_size:,} bytes)" in markdown
    assert f"sha256 `{sha256_file(path)}`" in markdown
    assert f"`{workdir}` on host `{socket.gethostname()}`" in markdown


@pytest.fixture(scope="module")
def results_run(flow_cli, session_cli_env, tmp_path_factory, run_records) -> tuple[Path, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("results") / "workdir"
    flow_cli.check(flow_cli.spec(session_cli_env, workdir, "published_results"))
    return workdir, _artifacts(run_records.read(workdir)["flow_run_id"])


def test_published_images_of_any_spec_are_shown(results_run):
    workdir, artifacts = results_run
    import io

    from PIL import Image

    png = artifacts["spec-image-report-bars-png"]
    assert png.type == "markdown"
    data = _embedded_image(png.data)
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.size == (900, 150)  # 1800 x 300, downscaled
    _assert_names_file_from_elsewhere(png.data, workdir, "report/bars.png")
    svg = artifacts["spec-image-report-diagram-svg"]
    assert _embedded_image(svg.data) == (workdir / "report" / "diagram.svg").read_bytes()


def test_published_json_and_yaml_files_of_numbers_are_tables(results_run):
    _, artifacts = results_run
    assert _table(artifacts["spec-table-report-metrics-json"]) == [
        {"name": "title", "value": "results of every kind"},
        {"name": "accuracy", "value": 0.91},
        {"name": "loss", "value": 0.23},
    ]
    # published as a glob ('{outdir}/*.yml')
    assert _table(artifacts["spec-table-report-folds-yml"]) == [{"fold": 0, "score": 0.5}, {"fold": 1, "score": 0.75}]
    # words only, and a 500 kB file: no tables
    assert not {key for key in artifacts if "words" in key or "huge" in key}


def test_top_level_steps_have_scope_slash_and_published_paths_relative_to_the_workdir(results_run):
    workdir, artifacts = results_run
    steps = artifacts["spec-steps"]
    (row,) = _table(steps)
    assert row["scope"] == "/" and row["stage"] == "report"
    assert row["published"].startswith("figure=report/bars.png, diagram=report/diagram.svg")
    assert len(row["published"]) <= 60 and row["published"].endswith("…")
    assert str(workdir) in steps.description and "run.json" in steps.description


def test_output_files_show_short_hashes_and_the_full_ones_in_sha256sum_format(results_run):
    workdir, artifacts = results_run
    files = artifacts["spec-output-files"]
    rows = {row["file"]: row for row in _table(files)}
    digest = sha256_file(workdir / "report" / "metrics.json")
    assert rows["report/metrics.json"]["sha256"] == digest[:12] + "…"
    assert all(len(str(value)) <= 60 for row in rows.values() for value in row.values())
    assert "\n" not in files.description and "spec-checksums" in files.description  # one line on its card
    checksums = artifacts["spec-checksums"].data
    assert f"\n{digest}  report/metrics.json\n" in checksums
    assert checksums.count("  ") == len(rows)


def test_the_native_figure_says_where_the_full_size_figure_is(shared_run, run_records):
    run = shared_run("native")
    figure = _artifacts(run_records.read(run.workdir)["flow_run_id"])["ml-figure"]
    assert _embedded_image(figure.data).startswith(PNG_SIGNATURE)
    _assert_names_file_from_elsewhere(figure.data, run.workdir, "merge_and_visualize/ml_results.png")
    assert f"`{run.workdir}/" not in figure.data  # no absolute path of the machine that ran it


def test_the_seed_specs_run_shows_its_figure(shared_run, run_records):
    run = shared_run("seed-spec")
    artifacts = _artifacts(run_records.read(run.workdir)["flow_run_id"])
    figure = artifacts["spec-image-merge-and-visualize-ml-results-png"]
    assert _embedded_image(figure.data).startswith(PNG_SIGNATURE)
    _assert_names_file_from_elsewhere(figure.data, run.workdir, "merge_and_visualize/ml_results.png")
    assert {row["scope"] for row in _table(artifacts["spec-steps"])} == {"/"}
