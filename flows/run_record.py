"""Writing the run record (``WORKDIR/_mltoolkit/run.json``) both flows keep, and its RO-Crate.

The record's format is the typed model :class:`mltoolkit.workdir.record.RunRecord`
(JSON schema: ``docs/run-record.schema.json``); this module fills it from a
Prefect flow run. Step times, attempts (retries included) and states come from
Prefect's own task runs, read at the end of the run once Prefect has recorded
them (:func:`task_run_details`).
"""

from __future__ import annotations

import asyncio
import platform
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from mltoolkit.preservation import installed_version
from mltoolkit.workdir import record as run_records
from mltoolkit.workdir.layout import RUN_RECORD_FILE
from mltoolkit.workdir.record import RunEnvironment, RunRecord, RunStep

__all__ = [
    "RUN_RECORD",
    "note_task_run",
    "now_iso",
    "software_versions",
    "state_label",
    "task_run_details",
    "write_run_record",
]

#: The run record, relative to the work directory (kept for the flows that import it).
RUN_RECORD = RUN_RECORD_FILE

_PAGE = 200


def now_iso() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def software_versions() -> dict[str, str]:
    """Versions of the software that produced a run."""
    versions = {"python": platform.python_version()}
    for package in ("mltoolkit", "prefect", "scikit-learn", "numpy", "matplotlib", "cloudpickle"):
        versions[package] = installed_version(package) or "unknown"
    return versions


def state_label(state_name: str | None) -> str:
    """Prefect's state name (``Completed``, ``Cached``...) as the record's upper-case state."""
    return (state_name or "PENDING").upper().replace(" ", "_")


#: Task run states that can still change: Prefect has not recorded the step's end yet.
_UNSETTLED_TYPES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED"})
#: How long to wait for Prefect to record the last task runs' ends.
SETTLE_SECONDS = 10.0


def _settled(run: Any) -> bool:
    state = run.state
    if state is None:
        return False
    # NotReady (upstream failed) is a PENDING that never changes
    return state.type.value not in _UNSETTLED_TYPES or state.name == "NotReady"


#: Task runs that ended in this process: flow run id -> {task run name: details}.
_NOTED: dict[str, dict[str, dict[str, Any]]] = {}
_NOTED_LOCK = threading.Lock()


def note_task_run(task: Any, task_run: Any, state: Any) -> None:
    """A task's ``on_completion``/``on_failure`` hook: keep its run's details for :func:`task_run_details`.

    The engine has them at hand when the run ends; reading them back from the API
    means waiting until the server has recorded the run's events (batched).
    """
    failed = state.type.value in ("FAILED", "CRASHED")
    details = {
        "started": task_run.start_time.isoformat() if task_run.start_time else None,
        "ended": (task_run.end_time or state.timestamp).isoformat(),
        "attempts": max(1, task_run.run_count or 0),
        "task_run_id": str(task_run.id),
        "state": state_label(state.name),
        "error": " ".join((state.message or state.name).split()) if failed else None,
    }
    with _NOTED_LOCK:
        _NOTED.setdefault(str(task_run.flow_run_id), {})[task_run.name] = details


async def task_run_details(
    flow_run_id: UUID | str | None,
    expected: Iterable[str] = (),
    settle_seconds: float = SETTLE_SECONDS,
) -> dict[str, dict[str, Any]]:
    """``{task run name: {started, ended, attempts, task_run_id, state, error}}`` for one flow run.

    Every ``expected`` run noted by :func:`note_task_run` in this process: those
    details. Otherwise (a task ran in another process, or never ended) they are read
    from the API: Prefect 3 records task run states from events, asynchronously, so
    right after the last step a finished step can still show RUNNING or miss its
    retries. The runs are read again until every ``expected`` name is present and no
    run is still on its way, or ``settle_seconds`` have passed (then the last answer is used).
    """
    if flow_run_id is None:
        return {}
    with _NOTED_LOCK:
        noted = _NOTED.pop(str(flow_run_id), {})
    wanted = set(expected)
    if wanted and wanted <= noted.keys():
        return noted
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
    deadline = time.monotonic() + settle_seconds
    async with get_client() as client:
        while True:
            runs: list[Any] = []
            offset = 0
            while True:
                page = await client.read_task_runs(flow_run_filter=only_this_run, limit=_PAGE, offset=offset)
                runs.extend(page)
                if len(page) < _PAGE:
                    break
                offset += _PAGE
            complete = wanted <= {run.name for run in runs} and all(_settled(run) for run in runs)
            if complete or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
    details: dict[str, dict[str, Any]] = {}
    for run in runs:
        state = run.state
        failed = state is not None and state.type.value in ("FAILED", "CRASHED")
        details[run.name] = {
            "started": run.start_time.isoformat() if run.start_time else None,
            "ended": run.end_time.isoformat() if run.end_time else None,
            "attempts": max(1, run.run_count or 0),
            "task_run_id": str(run.id),
            "state": state_label(state.name if state else None),
            "error": " ".join((state.message or state.name).split()) if failed else None,
        }
    return details


def write_run_record(
    workdir: str | Path,
    *,
    status: str,
    flow: str,
    flow_run_id: Any,
    started: str,
    steps: Iterable[Mapping[str, Any] | RunStep],
    workflow: Any,
    inputs: Any,
    extra: Mapping[str, Any] | None = None,
    crate: bool = True,
) -> Path:
    """Write ``run.json`` (atomically) and, with ``crate``, ``WORKDIR/ro-crate-metadata.json``.

    ``steps`` are :class:`RunStep` models or mappings in their format (validated
    here); ``extra`` adds top-level fields.

    Raises:
        pydantic.ValidationError: a step or value does not fit the record's format
            (a bug in the flow that wrote it, not bad input).
    """
    root = Path(workdir).resolve()
    record = RunRecord.model_validate(
        {
            "status": status,
            "flow": flow,
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "started": started,
            "ended": now_iso(),
            "workflow": workflow,
            "inputs": inputs,
            "software": software_versions(),
            "environment": RunEnvironment.current(),
            **dict(extra or {}),
            "steps": [step if isinstance(step, RunStep) else RunStep.model_validate(step) for step in steps],
        }
    )
    path = run_records.write_run_record(root, record)
    if crate:
        from mltoolkit.workdir.provenance import write_run_crate

        write_run_crate(root, record)
    return path
