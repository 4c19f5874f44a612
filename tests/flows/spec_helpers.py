"""Helpers the adapter-level spec tests share: running specs, reading records, checking files."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from mltoolkit.workdir.artifacts import sha256_file

SPECS = Path(__file__).resolve().parents[1] / "specs"
SEED_URL = "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_spec(
    workdir: Path,
    workflow: str | Path,
    *,
    toplevel: str | Path | None = None,
    inputs: dict[str, Any] | None = None,
    inputs_file: str | Path | None = None,
    **options: Any,
) -> tuple[Any, dict[str, Any]]:
    """Run ``spec_workflow`` in this process (under the session server); return (state, run.json)."""
    from flows.spec_workflow import spec_workflow

    state = asyncio.run(
        spec_workflow(
            workflow=str(workflow),
            workdir=str(workdir),
            inputs=inputs,
            inputs_file=str(inputs_file) if inputs_file else None,
            toplevel=str(toplevel) if toplevel else None,
            return_state=True,
            **options,
        )
    )
    return state, read_record(workdir)


def run_case(case: str, workdir: Path, inputs: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run ``tests/specs/<case>`` like ``yadage-run WORKDIR workflow.yml inputs.yml --toplevel <case>``."""
    inputs_file = SPECS / case / "inputs.yml"
    return run_spec(
        workdir,
        "workflow.yml",
        toplevel=SPECS / case,
        inputs=inputs,
        inputs_file=inputs_file if inputs is None and inputs_file.exists() else None,
    )


def read_record(workdir: Path) -> dict[str, Any]:
    """``WORKDIR/_mltoolkit/run.json``."""
    return json.loads((Path(workdir) / "_mltoolkit" / "run.json").read_text())


def steps_by_id(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's steps keyed by step id (completion order varies between runs)."""
    steps = {step["id"]: step for step in record["steps"]}
    assert len(steps) == len(record["steps"]), "step ids in run.json are not unique"
    return steps


def summary(record: dict[str, Any]) -> dict[str, tuple]:
    """``{id: (scope, stage, index, name, workdir, parameters, published, state)}`` for exact comparison."""
    return {
        step_id: (
            step["scope"],
            step["stage"],
            step["index"],
            step["name"],
            step["workdir"],
            step["parameters"],
            step["published"],
            step["state"],
        )
        for step_id, step in steps_by_id(record).items()
    }


def assert_outputs_match_files(record: dict[str, Any], root: Path) -> None:
    """Every file a step lists under ``outputs`` exists with the recorded sha256."""
    for step in record["steps"]:
        for relative, digest in step["outputs"].items():
            path = Path(relative) if Path(relative).is_absolute() else root / relative
            assert path.is_file(), (step["id"], relative)
            assert sha256_file(path) == digest, (step["id"], relative)


def assert_png(path: Path, min_side: int = 50) -> None:
    """``path`` is a PNG that Pillow can decode, not just a file with the right name."""
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and min(image.size) >= min_side, image.size


def read_task_runs(flow_run_id: str, expected: int, timeout: float = 60.0) -> list[Any]:
    """The flow run's task runs, once the server has recorded ``expected`` finished ones.

    Prefect 3 records task-run states from events asynchronously, so the last
    task's final state can arrive a moment after the flow run itself ended.
    """
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            # Keyed by id: rows the server inserts between two pages shift the offsets,
            # so a page can repeat runs of the previous one (and miss others until the next poll).
            runs: dict[Any, Any] = {}
            offset = 0
            while True:
                page = client.read_task_runs(flow_run_filter=only_this_run, limit=200, offset=offset)
                runs.update((run.id, run) for run in page)
                offset += len(page)
                if len(page) < 200:
                    break
            final = [run for run in runs.values() if run.state is not None and run.state.is_final()]
            if len(final) >= expected or time.monotonic() > deadline:
                return list(runs.values())
            time.sleep(0.2)
