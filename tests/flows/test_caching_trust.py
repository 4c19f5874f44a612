"""What a copied work directory and a hostile step can no longer do through the cache.

* The cache holds JSON only, and a stored record that is not exactly ours -- a
  pickle, or Prefect JSON naming its own decoder -- is dropped before Prefect
  reads it: nothing in it ever runs.
* A pickle dropped into an upstream step's folder is never loaded: steps load
  pickles only with the sha256 the run's lineage recorded for them.
* Hashing never opens a FIFO or a device, never follows a link out of the work
  directory, and stops at the step timeout.
* A step's output reaches Prefect's log only up to a limit; its log file keeps all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.constants import MOON, SEED_SPEC_DIR, SPECS
from tests.flows.test_integrity import malicious_pickle

CLASSIFIERS = ["nearest_neighbours", "decision_tree"]


def make_canary(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON decoder a poisoned record names: it creates the file the record says (it must never run)."""
    if "canary" in value:
        Path(value["canary"]).write_text("a cache record ran code\n")
    return value


def _native(workdir: Path) -> Any:
    from flows.ml_workflow import ml_workflow

    return asyncio.run(ml_workflow(dataset=str(MOON), classifiers=CLASSIFIERS, workdir=str(workdir), return_state=True))


@pytest.fixture(scope="module")
def native_workdir(prefect_api, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("native-trust") / "workdir"
    assert _native(workdir).is_completed()
    return workdir


def _poison(record: Path, canary: Path, how: str) -> None:
    content = json.loads(record.read_text())
    if how == "pickle":
        content["metadata"]["serializer"] = {"type": "pickle", "picklelib": "cloudpickle", "picklelib_version": None}
        content["result"] = base64.b64encode(malicious_pickle(canary)).decode()
    elif how == "json with its own decoder":
        decoder = f"{__name__}.make_canary"
        content["metadata"]["serializer"] = {"type": "json", "jsonlib": "json", "object_decoder": decoder}
        content["result"] = json.dumps({"canary": str(canary)})
    else:  # ours, but a type outside the list
        content["result"] = json.dumps({"type": "PosixPath", "value": str(canary)})
    record.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("pickle", "stored result is not a mltoolkit JSON record"),
        ("json with its own decoder", "stored result is not a mltoolkit JSON record"),
        ("an unexpected type", "stored result holds an unexpected value"),
    ],
)
def test_a_poisoned_cache_record_never_runs_and_its_step_runs_again(native_workdir, run_records, tmp_path, how, reason):
    workdir = tmp_path / "copy"
    shutil.copytree(native_workdir, workdir)
    canary = tmp_path / "CANARY"
    (record,) = (workdir / "_mltoolkit" / "cache").glob("data_prep-*")
    _poison(record, canary, how)

    assert _native(workdir).is_completed()

    assert not canary.exists(), "a poisoned cache record ran code"
    steps = run_records.by_name(run_records.read(workdir))
    assert steps["data_prep"]["state"] == "COMPLETED"
    assert steps["data_prep"]["cache"] == {"reused": False, "reason": reason}
    assert steps["classification_0"]["cache"] == {"reused": True, "reason": "reused"}
    stored = json.loads(next((workdir / "_mltoolkit" / "cache").glob("data_prep-*")).read_text())
    assert stored["metadata"]["serializer"] == {"type": "mltoolkit-json"}  # stored anew, as JSON


def test_no_cache_record_is_a_pickle(native_workdir):
    for record in (native_workdir / "_mltoolkit" / "cache").iterdir():
        content = json.loads(record.read_text())
        assert content["metadata"]["serializer"] == {"type": "mltoolkit-json"}
        assert json.loads(content["result"])["type"] in {"FileRef", "ClassificationOutput", "MergeOutput"}


def test_a_pickle_dropped_into_an_upstream_folder_is_never_loaded(spec_in_process, run_records, tmp_path):
    from mltoolkit.workdir.artifacts import save_pickle

    workdir = tmp_path / "seed"
    state, _ = spec_in_process.run(
        workdir, "workflow.yml", toplevel=SEED_SPEC_DIR, inputs_file=SEED_SPEC_DIR / "inputs.yml"
    )
    assert state.is_completed()
    canary = tmp_path / "CANARY"
    evil = workdir / "classification_0" / "evil.pkl"
    save_pickle(object(), evil)  # a valid sidecar ...
    evil.write_bytes(malicious_pickle(canary))  # ... re-sealed for the poisoned content
    evil.with_name("evil.pkl.sha256").write_text(f"{hashlib.sha256(evil.read_bytes()).hexdigest()}  evil.pkl\n")

    state, record = spec_in_process.run(
        workdir, "workflow.yml", toplevel=SEED_SPEC_DIR, inputs_file=SEED_SPEC_DIR / "inputs.yml"
    )

    assert not canary.exists(), "a pickle no step wrote was unpickled"
    steps = run_records.by_name(record)
    assert steps["classification_0"]["state"] == "CACHED"  # its own files are unchanged
    assert steps["merge_and_visualize"]["state"] == "FAILED"
    assert steps["merge_and_visualize"]["cache"]["reason"] == "input changed: classification_0/evil.pkl"
    error = steps["merge_and_visualize"]["error"]
    assert f"PKL {evil}: no step this one depends on wrote this file in this run" in error


@pytest.fixture
def secret(tmp_path) -> Path:
    """A private file outside the work directory (0600 in a 0700 folder)."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "secret.txt"
    path.write_bytes(os.urandom(64))
    path.chmod(0o600)
    return path


def _every_file_text(root: Path) -> str:
    texts = []
    for current, _, names in os.walk(root):
        for name in names:
            path = Path(current) / name
            if path.is_file() and not path.is_symlink():
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


@pytest.mark.timeout(240)
def test_fifos_devices_and_links_out_are_never_opened_or_followed(spec_in_process, run_records, tmp_path, secret):
    workdir = tmp_path / "work"
    (workdir / "init" / "data").mkdir(parents=True)
    (workdir / "init" / "data" / "a.txt").write_text("a\n")
    inputs = {"secret": str(secret.relative_to(tmp_path)), "data": "data"}

    for expected in ("COMPLETED", "CACHED"):
        state, record = spec_in_process.run(
            workdir, "workflow.yml", toplevel=SPECS / "hashing_bounds", inputs=inputs, step_timeout=30
        )
        assert state.is_completed(), record
        assert set(run_records.states(workdir).values()) == {expected}

    made = workdir / "make" / "made"
    assert (made / "secret-link").resolve() == secret and (made / "fifo").is_fifo()
    assert (workdir / "use" / "listing.txt").read_text().split() == ["fifo", "ok.txt", "secret-link", "zero"]
    steps = run_records.by_name(record)
    assert "make/made/ok.txt" in steps["make"]["outputs"]
    assert not any(name.endswith(("fifo", "zero", "secret-link")) for name in steps["make"]["outputs"])
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert digest not in _every_file_text(workdir), "the hash of a file outside the work directory was recorded"


@pytest.mark.timeout(240)
def test_hashing_a_huge_input_is_bounded_by_the_step_timeout(spec_in_process, run_records, tmp_path, secret):
    data = tmp_path / "inputs" / "data"  # a named input outside the work directory
    data.mkdir(parents=True)
    with open(data / "huge.bin", "wb") as handle:
        handle.truncate(64 << 30)  # minutes to hash; no disk used
    workdir = tmp_path / "work"

    # no wall-time assertion: the test's timeout is the bound (unbounded, hashing takes minutes)
    state, record = spec_in_process.run(
        workdir,
        "workflow.yml",
        toplevel=SPECS / "hashing_bounds",
        inputs={"secret": str(secret.relative_to(tmp_path)), "data": str(data)},
        step_timeout=3,
    )

    assert state.is_failed()
    step = run_records.by_name(record)["read_init"]
    assert step["state"] == "FAILED"
    assert f"hashing {data / 'huge.bin'} did not finish within the step timeout (3 s)" in step["error"]
    assert step["cache"]["reason"].startswith("not cached: hashing")
    assert run_records.states(workdir)["use"] == "COMPLETED"


def _task_run_messages(task_run_id: str, wanted: str, timeout: float = 60) -> list[str]:
    """The task run's log messages in Prefect's API, once one of them contains ``wanted``."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId

    only = LogFilter(task_run_id=LogFilterTaskRunId(any_=[UUID(task_run_id)]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            messages: list[str] = []
            while True:
                page = client.read_logs(log_filter=only, limit=200, offset=len(messages))
                messages += [log.message for log in page]
                if len(page) < 200:
                    break
            if any(wanted in message for message in messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.5)


@pytest.mark.timeout(300)
def test_a_chatty_steps_output_reaches_prefects_log_only_up_to_the_limit(run_cli, flow_cli, cli_env, tmp_path):
    from flows.step_log import MAX_LINES

    workdir = tmp_path / "chatty"
    lines = 200_000  # about 1.3 MB
    env = {**cli_env, "PREFECT_LOGGING_LEVEL": "INFO"}
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "chatty.yml",
            "--toplevel",
            str(SPECS / "hashing_bounds"),
            "-p",
            f"lines={lines}",
        ],
        env,
    )
    flow_cli.check(result)

    log_file = workdir / "chatty" / "_packtivity" / "chatty.run.log"
    assert log_file.read_text().splitlines()[:lines][-1] == str(lines)  # the file keeps everything
    step = json.loads((workdir / "_mltoolkit" / "run.json").read_text())["steps"][0]
    messages = _task_run_messages(step["task_run_id"], "not sent to Prefect's log")
    numbers = [message for message in messages if message.isdigit()]
    assert len(numbers) == MAX_LINES
    (notice,) = [message for message in messages if "not sent to Prefect's log" in message]
    assert str(log_file) in notice
