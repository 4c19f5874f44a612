"""The native flow on a Prefect ``docker`` work pool, end to end with real components.

A real ``prefect server start`` on 127.0.0.1, a ``docker`` work pool,
``prefect deploy`` of ``deployments/docker.yaml``, a docker worker
(``prefect-docker``) and the image the session built (never pulled). The
containers use the host's network, so they reach the server at 127.0.0.1.
Every process is stopped and every container removed, also when a test fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.constants import REPO_ROOT, SEED_SCORES
from tests.deployments.test_deployments_e2e import (  # the process-pool e2e test's server and helpers
    _prefect,
    _table,
    _wait_final,
    real_server,  # noqa: F401 (a fixture: pytest finds it here)
)
from tests.docker.engine import BuiltImage, docker, docker_environment, leftover_containers

pytestmark = pytest.mark.slow

POOL = "mltoolkit-docker-pool"
DEPLOYMENT = "ml-workflow/seed-analysis-docker"
#: Label prefect-docker puts on the containers it creates.
FLOW_RUN_LABEL = "io.prefect.flow-run-id"


@pytest.fixture(scope="module")
def docker_pool(mltoolkit_image: BuiltImage, real_server: dict) -> Iterator[dict]:  # noqa: F811 (the fixture)
    """A docker work pool, the deployment and a worker on the module's real server.

    The server and worker are stopped by ``real_server``; containers a failed run left are removed here.
    """
    pytest.importorskip("prefect_docker", reason="prefect-docker is in the test extra: pip install -e '.[test]'")
    env = dict(real_server["env"])
    if "DOCKER_HOST" in docker_environment():  # the worker talks to the tests' engine
        env["DOCKER_HOST"] = docker_environment()["DOCKER_HOST"]
    try:
        _prefect(["work-pool", "create", POOL, "--type", "docker"], env)
        deploy = ["--no-prompt", "deploy", "--all", "--prefect-file", "docker.yaml"]
        _prefect(deploy, env, cwd=REPO_ROOT / "deployments")
        real_server["processes"].start("worker", ["prefect", "worker", "start", "--pool", POOL], env)
        yield {"env": env, "processes": real_server["processes"], "image": mltoolkit_image}
    finally:
        real_server["processes"].stop_all()
        for container in leftover_containers(FLOW_RUN_LABEL):
            docker("rm", "--force", container, check=False)


def _containers_of(flow_run_id: str, timeout: float = 30) -> list[str]:
    # auto_remove: the engine removes a container shortly after it exits.
    deadline = time.monotonic() + timeout
    while (found := leftover_containers(f"{FLOW_RUN_LABEL}={flow_run_id}")) and time.monotonic() < deadline:
        time.sleep(1)
    return found


def test_docker_pool_runs_the_native_flow_in_the_image(docker_pool: dict) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    env = docker_pool["env"]
    # As the README says, with the session's image under its test tag for this run.
    created = _prefect(["deployment", "run", DEPLOYMENT, "--job-variable", f"image={docker_pool['image'].tag}"], env)
    printed_id = re.search(r"UUID: ([0-9a-f-]{36})", created)
    assert printed_id, created
    flow_run_id = UUID(printed_id.group(1))
    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        assert deployment.job_variables["image_pull_policy"] == "Never"
        finished = _wait_final(client, flow_run_id, timeout=600)
        assert finished.job_variables == {"image": docker_pool["image"].tag}
        only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        artifacts = {artifact.key: artifact for artifact in client.read_artifacts(flow_run_filter=only_this_run)}
        task_runs = client.read_task_runs(flow_run_filter=only_this_run)
    worker_log = docker_pool["processes"].log("worker")
    assert finished.state is not None and finished.state.is_completed(), (finished.state, worker_log)
    scores = {row["classifier"]: round(row["test score"], 2) for row in _table(artifacts["ml-scores"])}
    assert scores == SEED_SCORES
    assert "data:image/png;base64," in str(artifacts["ml-figure"].data)
    # It ran in a container: a docker worker records "<engine address>:<container id>".
    assert re.search(r":[0-9a-f]{64}$", finished.infrastructure_pid or ""), finished.infrastructure_pid
    assert sorted(run.name for run in task_runs if run.name.startswith("classify[")) == sorted(
        f"classify[{name}]" for name in SEED_SCORES
    )
    assert _containers_of(str(flow_run_id)) == [], "the run's container was left behind"
