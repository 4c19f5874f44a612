"""Constructs of published yadage specs through Prefect: the same fixtures, run by ``spec_workflow``.

Each case of :data:`tests.published_cases.CASES` runs in this process under the
session's Prefect server; its check reads what ``run.json`` says each step
published. Then what only the flow does: resources recorded in ``run.json`` and the
RO-Crate, requirements checked before any task run, the implied-dependency warning
in the flow's log and on the command line.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.constants import SPECS
from tests.published_cases import CASES


def _run_case(spec_in_process, name: str, workdir: Path, **options: Any) -> tuple[Any, dict[str, Any]]:
    case = CASES[name]
    workdir.mkdir(parents=True)
    provided = case.prepare(workdir)
    return spec_in_process.run(
        workdir,
        "workflow.yml",
        toplevel=case.folder,
        inputs_file=case.inputs_file,
        image_map_file=str(case.image_map_file) if case.image_map_file else None,
        provide=provided,
        **options,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_published_construct_runs_through_prefect(spec_in_process, tmp_path, name):
    case = CASES[name]
    if case.skip_reason():
        pytest.skip(case.skip_reason())
    workdir = tmp_path / name
    state, record = _run_case(spec_in_process, name, workdir)
    assert state.is_completed(), [step.get("error") for step in record["steps"]]
    assert record["status"] == "completed"
    assert all(step["state"] == "COMPLETED" for step in record["steps"])
    case.check(workdir, {step["id"]: step["published"] for step in record["steps"]})


def test_resources_are_recorded_in_the_run_record_and_the_crate(spec_in_process, run_records, tmp_path):
    workdir = tmp_path / "resources"
    state, record = _run_case(spec_in_process, "resources", workdir, step_timeout=300)
    assert state.is_completed()
    steps = run_records.by_id(record)
    limited = steps["/limited"]["resources"]
    assert limited["requested"] == [
        {"kubernetes_memory_limit": "256Mi"},
        {"kubernetes_job_timeout": 600},
        {"compute_backend": "kubernetes"},
        {"kubernetes_uid": 500},
    ]
    assert limited["applied"]["kubernetes_job_timeout"] == "the run's --step-timeout 300 s is smaller and applies"
    assert set(limited["ignored"]) == {"compute_backend", "kubernetes_uid"}
    cvmfs = steps["/needs_cvmfs"]["resources"]
    assert cvmfs["provided"] == {
        "CVMFS": f"--provide CVMFS={tmp_path / 'resources-cvmfs'}",
        "GRIDProxy": "image map entry of mltoolkit-test/cvmfs-user:1.0",
    }
    condor = steps["/on_htcondor"]["resources"]
    assert condor["applied"] == {"htcondor_max_runtime": "the run's --step-timeout 300 s is smaller and applies"}
    assert "kubernetes_memory_limit" in condor["ignored"]
    crate = json.loads((workdir / "ro-crate-metadata.json").read_text())
    entities = {entity["@id"]: entity for entity in crate["@graph"]}
    action = next(entity for entity in crate["@graph"] if entity["@id"].startswith("#step-run/needs_cvmfs"))
    resources = [entities[ref["@id"]] for ref in action["resources"]]
    assert [(entity["name"], entity["description"]) for entity in resources] == [
        ("CVMFS", f"provided by --provide CVMFS={tmp_path / 'resources-cvmfs'}"),
        ("GRIDProxy", "provided by image map entry of mltoolkit-test/cvmfs-user:1.0"),
    ]
    assert crate["@context"][2]["resources"] == "https://w3id.org/ro/terms/mltoolkit#resources"


def test_an_unmet_requirement_stops_the_flow_before_any_step_runs(prefect_api, read_task_runs, tmp_path):
    from flows.spec_workflow import spec_workflow

    workdir = tmp_path / "unmet"
    state = asyncio.run(
        spec_workflow(
            workflow="workflow.yml",
            workdir=str(workdir),
            inputs_file=str(SPECS / "resources" / "inputs.yml"),
            toplevel=str(SPECS / "resources"),
            image_map_file=str(SPECS / "resources" / "image_map.yml"),
            return_state=True,
        )
    )
    assert state.is_failed()
    assert re.search(r"stage 'needs_cvmfs' .*needs resource 'CVMFS'.*--provide CVMFS=/cvmfs", state.message)
    # no step ran, not even those that need nothing, and Prefect saw no task run
    assert not (workdir / "limited").exists() and not (workdir / "_mltoolkit" / "run.json").exists()
    assert read_task_runs(str(state.state_details.flow_run_id), expected=0, timeout=1) == []


def _flow_run_logs(flow_run_id: str, wanted: str, timeout: float = 30.0) -> list[str]:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            messages = [log.message for log in client.read_logs(log_filter=log_filter, limit=200)]
            if any(wanted in message for message in messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.3)


def test_the_flow_logs_the_implied_dependency_once(spec_in_process, tmp_path):
    state, record = _run_case(spec_in_process, "implied_dependency", tmp_path / "implied")
    assert state.is_completed()
    wanted = "stage 'reader' reads outputs of stage 'slow' but does not depend on it"
    messages = _flow_run_logs(record["flow_run_id"], wanted)
    assert sum(wanted in message for message in messages) == 1, messages


def test_the_command_line_shows_the_implied_dependency_and_takes_provide(run_cli, flow_cli, cli_env, tmp_path):
    result = flow_cli.check(flow_cli.spec(cli_env, tmp_path / "implied", "implied_dependency", inputs=False))
    assert "warning: " in result.stderr and "stage 'reader' reads outputs of stage 'slow'" in result.stderr
    cvmfs = CASES["resources"].provide(tmp_path / "res")["CVMFS"]
    result = flow_cli.check(
        flow_cli.spec(
            cli_env,
            tmp_path / "res",
            "resources",
            "--image-map-file",
            str(SPECS / "resources" / "image_map.yml"),
            "--provide",
            f"CVMFS={cvmfs}",
        )
    )
    record = json.loads((tmp_path / "res" / "_mltoolkit" / "run.json").read_text())
    step = next(step for step in record["steps"] if step["stage"] == "needs_cvmfs")
    assert step["resources"]["provided"]["CVMFS"] == f"--provide CVMFS={cvmfs}"


def test_the_command_line_refuses_a_malformed_provide_before_anything_runs(run_cli, flow_cli, offline_env, tmp_path):
    result = flow_cli.spec(offline_env, tmp_path / "w", "resources", "--provide", "=/cvmfs")
    flow_cli.assert_error_line(result, "--provide '=/cvmfs': expected NAME or NAME=VALUE")
    assert not (tmp_path / "w").exists()
