"""Deployments end to end with real components: `prefect server start`, a process work pool,
`prefect deploy --all`, `prefect worker start`, runs launched through the API, results read back.

Everything binds to 127.0.0.1, every wait is bounded, and every process started is
stopped (process groups killed) also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.constants import REPO_ROOT, SEED_SCORES

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Background processes of one test module, each in its own process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "wb") as log:  # the child keeps its own copy of the file
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(process)
        return process

    def log(self, name: str, tail: int | None = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def stop_all(self) -> None:
        for process in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.running):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "prefect server exited"
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout} s")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("deployments")
    processes = Processes(base)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env.update(
        PREFECT_HOME=str(base / "home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",  # no upgrade banners in the UI's screenshots
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        MLTOOLKIT_API_IDLE_TIMEOUT="0",
        PREFECT_LOGGING_LEVEL="INFO",
        PYTHONPATH=str(REPO_ROOT),
    )
    server = processes.start("server", ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env)
    try:
        _wait_healthy(env["PREFECT_API_URL"], server, timeout=240)
        yield {"env": env, "processes": processes, "base": base}
    finally:
        processes.stop_all()


def _prefect(args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "prefect", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _wait_final(client, flow_run_id, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} not finished after {timeout} s")


@pytest.fixture(scope="module")
def deployed(real_server) -> dict:
    env = dict(real_server["env"])
    _prefect(["work-pool", "create", "mltoolkit-pool", "--type", "process"], env)
    deploy_env = dict(env, PWD=str(REPO_ROOT / "deployments"))  # prefect.yaml's {{ $PWD }}
    _prefect(["--no-prompt", "deploy", "--all"], deploy_env, cwd=REPO_ROOT / "deployments")
    real_server["processes"].start("worker", ["prefect", "worker", "start", "--pool", "mltoolkit-pool"], env)
    return real_server


def _run_deployment(
    env: dict[str, str], name: str, parameters: dict, timeout: float = 300, job_variables: dict | None = None
):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        deployment = client.read_deployment_by_name(name)
        flow_run = client.create_flow_run_from_deployment(
            deployment.id, parameters=parameters, job_variables=job_variables
        )
        finished = _wait_final(client, flow_run.id, timeout)
        only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        artifacts = client.read_artifacts(flow_run_filter=only_this_run)
        task_runs = client.read_task_runs(flow_run_filter=only_this_run)
    return finished, {artifact.key: artifact for artifact in artifacts}, task_runs


def test_native_deployment_runs_and_publishes_scores_figure_and_task_runs(deployed, tmp_path):
    env = deployed["env"]
    workdir = str(deployed["base"] / "native-workdir")
    flow_run, artifacts, task_runs = _run_deployment(env, "ml-workflow/seed-analysis", {"workdir": workdir})
    assert flow_run.state.is_completed(), (flow_run.state, deployed["processes"].log("worker"))
    scores = {row["classifier"]: round(row["test score"], 2) for row in _table(artifacts["ml-scores"])}
    assert scores == SEED_SCORES
    assert "data:image/png;base64," in artifacts["ml-figure"].data
    listed = {row["file"] for row in _table(artifacts["ml-output-files"])}
    assert "merge_and_visualize/ml_results.png" in listed
    classify_runs = sorted(run.name for run in task_runs if run.name.startswith("classify["))
    assert classify_runs == sorted(f"classify[{name}]" for name in SEED_SCORES)
    assert Path(workdir, "merge_and_visualize", "ml_results.png").is_file()


def test_seed_spec_deployment_runs_the_unmodified_spec(deployed):
    env = deployed["env"]
    workdir = str(deployed["base"] / "spec-workdir")
    flow_run, artifacts, task_runs = _run_deployment(env, "seed-spec-workflow/seed-spec", {"workdir": workdir})
    assert flow_run.state.is_completed(), (flow_run.state, deployed["processes"].log("worker"))
    steps = _table(artifacts["spec-steps"])
    assert [row["stage"] for row in steps] == ["data_prep"] + ["classification"] * 5 + ["merge_and_visualize"]
    assert {row["state"] for row in steps} == {"COMPLETED"}
    assert sorted(run.name for run in task_runs if run.name.startswith("classification")) == [
        f"classification[{i}]" for i in range(5)
    ]


def test_an_unknown_task_runner_in_the_job_environment_is_one_clear_error(deployed):
    """The runner is chosen when the flow run starts: a bad value fails that run, naming the variable."""
    env = deployed["env"]
    workdir = str(deployed["base"] / "bad-runner-workdir")
    flow_run, _, task_runs = _run_deployment(
        env,
        "ml-workflow/seed-analysis",
        {"workdir": workdir},
        job_variables={"env": {"MLTOOLKIT_TASK_RUNNER": "gpu"}},
    )
    assert not flow_run.state.is_completed(), flow_run.state
    assert not task_runs and not Path(workdir).exists()
    expected = "MLTOOLKIT_TASK_RUNNER 'gpu': unknown task runner; choose one of thread, process, dask"
    deadline = time.monotonic() + 30  # the worker's log is written as the flow run's process ends
    while expected not in deployed["processes"].log("worker", tail=None) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert expected in deployed["processes"].log("worker", tail=None)


@pytest.mark.parametrize(
    "deployment, parameters, fragment",
    [
        ("ml-workflow/seed-analysis", {"classifiers": ["rbf_svm", "random_forest_x"]}, "random_forest_x"),
        ("ml-workflow/seed-analysis", {"classifiers": [{"name": "forest"}]}, "classifiers"),  # objects go elsewhere
        ("ml-workflow/seed-analysis", {"custom_classifiers": [{"name": "forest"}]}, "estimator"),
        ("ml-workflow/seed-analysis", {"custom_classifiers": ["rbf_svm"]}, "custom_classifiers"),
        ("ml-workflow/seed-analysis", {"dataset": None}, "dataset"),
        ("seed-spec-workflow/seed-spec", {"classifiers": ["no_such_classifier"]}, "no_such_classifier"),
        ("seed-spec-workflow/seed-spec", {"dataset": None}, "dataset"),
    ],
)
def test_parameter_schema_rejects_bad_parameters(deployed, deployment, parameters, fragment):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import PrefectHTTPStatusError

    with SyncPrefectClient(deployed["env"]["PREFECT_API_URL"]) as client:
        target = client.read_deployment_by_name(deployment)
        with pytest.raises(PrefectHTTPStatusError) as info:
            client.create_flow_run_from_deployment(target.id, parameters=parameters)
    message = info.value.response.text
    assert info.value.response.status_code in (409, 422)
    assert "Validation failed" in message or "validation" in message.lower()
    assert fragment in message


@pytest.mark.parametrize("deployment", ["ml-workflow/seed-analysis", "seed-spec-workflow/seed-spec"])
def test_a_bad_classifier_name_is_refused_with_the_valid_names(deployed, deployment):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import PrefectHTTPStatusError

    with SyncPrefectClient(deployed["env"]["PREFECT_API_URL"]) as client:
        target = client.read_deployment_by_name(deployment)
        with pytest.raises(PrefectHTTPStatusError) as info:
            client.create_flow_run_from_deployment(target.id, parameters={"classifiers": ["rbf_svm", "bogus_name"]})
    message = info.value.response.json()["detail"]
    assert "'bogus_name' is not one of" in message
    assert all(repr(name) in message for name in SEED_SCORES), message


def test_serve_registers_both_flows(deployed):
    env = dict(deployed["env"])
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "deployments" / "serve.py")],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deployed["processes"].running.append(process)
    from prefect.client.orchestration import SyncPrefectClient

    expected = {
        "ml-workflow/seed-analysis-served",
        "seed-spec-workflow/seed-spec-served",
        "spec-workflow/any-spec-served",
    }
    deadline = time.monotonic() + 120
    found: set[str] = set()
    try:
        with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
            while time.monotonic() < deadline and not expected <= found:
                flows = {flow.id: flow.name for flow in client.read_flows()}
                found = {f"{flows.get(d.flow_id)}/{d.name}" for d in client.read_deployments()}
                time.sleep(1)
        assert expected <= found, found
        assert process.poll() is None  # still serving
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _table(artifact) -> list[dict]:
    import json

    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data
