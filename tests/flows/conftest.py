"""Fixtures of the flow tests: specs run in this process, Prefect's task runs, processes a command started.

* ``spec_in_process`` runs ``spec_workflow`` under the session's Prefect server and
  returns the final state and the run record;
* ``read_task_runs`` waits until Prefect has recorded a flow run's task runs;
* ``process_tags`` marks every process a command starts, to prove none outlives it;
* ``spec_scores`` and ``assert_png`` read what the seed spec produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.constants import PNG_SIGNATURE, SPECS


class SpecInProcess:
    """``spec_workflow`` called in this process (under the session's Prefect server)."""

    def __init__(self, records: Any) -> None:
        self.records = records

    def run(
        self,
        workdir: Path,
        workflow: str | Path,
        *,
        toplevel: str | Path | None = None,
        inputs: dict[str, Any] | None = None,
        inputs_file: str | Path | None = None,
        **options: Any,
    ) -> tuple[Any, dict[str, Any]]:
        """Run a spec; return (final state, run.json)."""
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
        return state, self.records.read(workdir)

    def case(self, case: str, workdir: Path, inputs: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Run ``tests/specs/<case>`` like ``yadage-run WORKDIR workflow.yml inputs.yml --toplevel <case>``."""
        inputs_file = SPECS / case / "inputs.yml"
        return self.run(
            workdir,
            "workflow.yml",
            toplevel=SPECS / case,
            inputs=inputs,
            inputs_file=inputs_file if inputs is None and inputs_file.exists() else None,
        )


@pytest.fixture(scope="session")
def spec_in_process(prefect_api: str, run_records: Any) -> SpecInProcess:
    """Specs run in this process (:class:`SpecInProcess`)."""
    return SpecInProcess(run_records)


def _read_task_runs(flow_run_id: str, expected: int, timeout: float = 60.0) -> list[Any]:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
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


@pytest.fixture(scope="session")
def read_task_runs(prefect_api: str) -> Callable[..., list[Any]]:
    """``read_task_runs(flow_run_id, expected, timeout=60)``: the flow run's task runs, once
    the server has recorded ``expected`` finished ones.

    Prefect 3 records task-run states from events asynchronously, so the last
    task's final state can arrive a moment after the flow run itself ended.
    """
    return _read_task_runs


class ProcessTags:
    """A tag in a command's environment marks every process it starts (children inherit it)."""

    VARIABLE = "MLTOOLKIT_TEST_PROCESS_TAG"

    def tagged_env(self, env: dict[str, str]) -> tuple[dict[str, str], str]:
        """A copy of ``env`` with a fresh tag."""
        tag = uuid.uuid4().hex
        return {**env, self.VARIABLE: tag}, tag

    def processes(self, tag: str) -> list[Any]:
        """Live processes (psutil) whose environment carries ``tag``."""
        import psutil

        found = []
        for process in psutil.process_iter():
            try:
                if (
                    process.pid != os.getpid()
                    and process.environ().get(self.VARIABLE) == tag
                    and process.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    def wait_until_gone(self, tag: str, timeout: float) -> list[Any]:
        """Wait up to ``timeout`` s for every process tagged ``tag`` to end; return those still alive."""
        deadline = time.monotonic() + timeout
        while True:
            alive = self.processes(tag)
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    @contextlib.contextmanager
    def reaping(self, tag: str) -> Iterator[None]:
        """Kill whatever is still running under ``tag`` when the block ends (a failed test leaks nothing)."""
        try:
            yield
        finally:
            for process in self.processes(tag):
                with contextlib.suppress(Exception):
                    process.kill()


@pytest.fixture(scope="session")
def process_tags() -> ProcessTags:
    """Tagging and reaping the processes a command starts (:class:`ProcessTags`)."""
    return ProcessTags()


def _spec_scores(workdir: Path, count: int) -> dict[str, float]:
    from mltoolkit.workdir.artifacts import load_pickle

    scores: dict[str, float] = {}
    for index in range(count):
        pickles = sorted((workdir / f"classification_{index}").glob("*.pkl"))
        assert len(pickles) == 1, pickles
        result = load_pickle(pickles[0])
        scores[result.name] = result.score
    return scores


@pytest.fixture(scope="session")
def spec_scores() -> Callable[[Path, int], dict[str, float]]:
    """``spec_scores(workdir, count)``: ``{classifier: score}`` from the seed spec's ``classification_<i>/*.pkl``."""
    return _spec_scores


def _assert_png(path: Path, min_side: int = 50) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and min(image.size) >= min_side, image.size


@pytest.fixture(scope="session")
def assert_png() -> Callable[..., None]:
    """``assert_png(path, min_side=50)``: ``path`` is a PNG that Pillow decodes, not just a file with the right name."""
    return _assert_png
