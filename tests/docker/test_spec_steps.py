"""docker-encapsulated steps in real containers: paths, values, mounts, timeouts, missing images, no engine.

The ``tests/specs/docker_paths`` fixture runs through the command line in a work
directory whose path has spaces and a non-ASCII letter, against the tests' engine,
with ``MLTOOLKIT_DOCKER_NETWORK=none`` (no network in the containers). Its image is
the session's image tagged ``mltoolkit-test/step-tools:pytest``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltoolkit.analysis.data import KNOWN_DATASETS
from mltoolkit.errors import StepFailedError
from mltoolkit.yadage import load_step_ref, validate_step
from mltoolkit.yadage.packtivity import CONTAINER_LABEL, StepOptions, run_step
from tests.constants import SEED_URL, SPECS
from tests.docker.conftest import STEP_TOOLS_IMAGE
from tests.docker.engine import docker_environment, leftover_containers
from tests.docker.spec_runs import DOCKER_LINE, assert_ran_in_docker, run_spec, spec_env
from tests.flows.test_injection import PAYLOADS

pytestmark = pytest.mark.slow

CASE = SPECS / "docker_paths"
ABSENT_IMAGE = "mltoolkit-test/no-such-image"


@pytest.fixture(scope="module")
def paths_run(spec_images: str, run_cli, session_cli_env, tmp_path_factory) -> dict[str, Any]:
    """The docker_paths spec run once, with canary payloads inside and outside the containers."""
    base = tmp_path_factory.mktemp("docker-paths")
    workdir = base / "docker run ✓ dir" / "work"
    outside = workdir / "CANARY-outside"  # the run's folder is mounted: a payload that ran could reach it
    inside = "/tmp/CANARY-inside"  # only in the container
    payloads = [template.format(canary=canary) for canary in (outside, inside) for template in PAYLOADS]
    message = f"$(touch {outside}) and `touch {inside}`"
    inputs = base / "inputs with spaces.yml"
    values = {"message": message, "payloads": payloads, "config": {"threshold": 0.5, "names": ["a", "b"]}}
    inputs.write_text(yaml.safe_dump({**values, "dataset": SEED_URL}, allow_unicode=True), encoding="utf-8")
    env = spec_env(session_cli_env, MLTOOLKIT_DOCKER_NETWORK="none")
    result = run_spec(run_cli, env, workdir, CASE, "workflow.yml", str(inputs))
    return {"result": result, "workdir": workdir, "base": base, "message": message, "payloads": payloads}


def test_steps_ran_in_containers_and_say_so(paths_run, spec_images, run_records, flow_cli):
    flow_cli.check(paths_run["result"])
    steps = run_records.by_name(run_records.read(paths_run["workdir"]))
    assert sorted(steps) == ["echo_values", "read_mounts"]
    for step in steps.values():
        assert_ran_in_docker(step, STEP_TOOLS_IMAGE, spec_images, network="none")
    assert leftover_containers(CONTAINER_LABEL) == []


def test_values_stay_data_inside_and_outside_the_container(paths_run, flow_cli):
    flow_cli.check(paths_run["result"])
    folder = paths_run["workdir"] / "echo_values"
    expected = "".join(value + "\n" for value in [paths_run["message"], *paths_run["payloads"]])
    assert (folder / "echoed values.txt").read_text(encoding="utf-8") == expected
    assert [path for path in paths_run["base"].rglob("*") if "CANARY" in path.name] == []
    listing = (folder / "container_tmp.txt").read_text()
    assert "CANARY" not in listing and "." in listing.split()  # `ls -a /tmp` ran
    # as the invoking user (the image's own user is 1000), and so are the files it wrote
    assert (folder / "uid.txt").read_text().strip() == str(os.getuid())
    owners = {(path.stat().st_uid, path.stat().st_gid) for path in paths_run["workdir"].rglob("*")}
    assert owners == {(os.getuid(), os.getgid())}


def test_mounts_workdir_key_par_mounts_and_the_bundled_dataset(paths_run, flow_cli):
    flow_cli.check(paths_run["result"])
    workdir = paths_run["workdir"]
    folder = workdir / "read_mounts"
    assert (folder / "pwd.txt").read_text().strip() == "/usr/src"  # the docker `workdir` key
    assert json.loads((folder / "config.json").read_text()) == {"threshold": 0.5, "names": ["a", "b"]}
    # the upstream step's file, read through the run's folder mounted at its own path (spaces and all)
    assert (folder / "seen_upstream.txt").read_text() == (workdir / "echo_values" / "echoed values.txt").read_text()
    # the Dropbox URL became the bundled file, mounted read-only: no network needed (and none there)
    assert (folder / "dataset.sha256").read_text().strip() == KNOWN_DATASETS[SEED_URL].sha256
    script = (folder / "_packtivity" / "read_mounts.script").read_text()
    assert "sha256sum /mltoolkit/datasets/moon.txt" in script and "dropbox" not in script


def test_a_timeout_kills_the_container(spec_images, run_cli, cli_env, flow_cli, tmp_path):
    workdir = tmp_path / "timeout run"
    result = run_spec(run_cli, spec_env(cli_env), workdir, CASE, "timeout.yml", "--step-timeout", "10")
    flow_cli.assert_error_line(result, "stage 'sleeper' step sleeper: timed out after 10 s", only_line=False)
    log = (workdir / "sleeper" / "_packtivity" / "sleeper.run.log").read_text()
    assert DOCKER_LINE.match(log.splitlines()[0]) and "sleeping" in log.splitlines()  # it had started
    assert leftover_containers(CONTAINER_LABEL) == [], "the step's container was left behind"


def test_an_image_that_does_not_exist_is_one_line(spec_images, run_cli, cli_env, flow_cli, tmp_path):
    result = run_spec(run_cli, spec_env(cli_env), tmp_path / "w", CASE, "absent_image.yml")
    flow_cli.assert_error_line(
        result,
        f"Docker image '{ABSENT_IMAGE}:never' is not on the engine at ",
        " and cannot be pulled (",
        f"build or pull it (docker build -t {ABSENT_IMAGE}:never ...), or run the image's steps on this machine "
        f"with --image-map {ABSENT_IMAGE}=local",
        only_line=False,
    )
    assert not (tmp_path / "w" / "absent_image" / "ran.txt").exists()


def test_an_explicit_image_map_entry_wins_over_the_engine(
    spec_images, run_cli, cli_env, flow_cli, run_records, tmp_path
):
    workdir = tmp_path / "mapped"
    entry = f"{ABSENT_IMAGE}=local"
    result = run_spec(run_cli, spec_env(cli_env), workdir, CASE, "absent_image.yml", "--image-map", entry)
    flow_cli.check(result)
    [step] = run_records.read(workdir)["steps"]
    expected = {"kind": "local", "image": f"{ABSENT_IMAGE}:never", "mapped_to": "local (--image-map)"}
    assert step["environment"] == expected
    assert (workdir / "absent_image" / "ran.txt").read_text() == "ran here\n"


def test_docker_not_running_is_one_line_naming_both_fixes(run_cli, cli_env, flow_cli, tmp_path):
    # No engine needed: DOCKER_HOST names a socket nothing listens on.
    if shutil.which("docker") is None:
        pytest.skip("no docker command on PATH: the probe would say so instead")
    socket = f"unix://{tmp_path}/no-engine.sock"
    result = run_spec(run_cli, spec_env(cli_env, DOCKER_HOST=socket), tmp_path / "w", CASE, "absent_image.yml")
    flow_cli.assert_error_line(
        result,
        f"image '{ABSENT_IMAGE}:never' has no image-map entry and no Docker engine answers ({socket}: ",
        "start Docker (or point DOCKER_HOST at a running engine), or run the image's steps on this machine "
        f"with --image-map {ABSENT_IMAGE}=local",
        only_line=False,
    )


def _client_pid(container: str, deadline: float) -> int:
    """The pid of the ``docker run`` client of ``container`` (waits for it to appear)."""
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"run" in argv and container.encode() in argv:
                    return int(entry.name)
        time.sleep(0.2)
    raise AssertionError(f"no docker run client for {container}")


def test_a_signal_to_the_step_ends_its_container(spec_images, monkeypatch, tmp_path):
    """What stopping a step does first (execute's kill): SIGTERM to the client's process group.

    ``docker run`` passes the signal on, and with ``--init`` the container's processes get it.
    """
    host = docker_environment().get("DOCKER_HOST")
    if host:
        monkeypatch.setenv("DOCKER_HOST", host)
    step = validate_step(load_step_ref("steps.yml#/sleep_step", str(CASE)))
    folder = tmp_path / "signalled"
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            run_step(step, {"seconds": 300}, folder, name="signalled", options=StepOptions(use_docker=True))
        except StepFailedError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    log = folder / "_packtivity" / "signalled.run.log"
    while not (log.is_file() and "sleeping" in log.read_text().splitlines()) and time.monotonic() < deadline:
        time.sleep(0.2)
    started = DOCKER_LINE.match(log.read_text().splitlines()[0])
    assert started, log.read_text()
    os.killpg(_client_pid(started["name"], deadline), signal.SIGTERM)
    thread.join(timeout=120)
    assert not thread.is_alive() and "command exited with code" in outcome.get("error", ""), outcome
    assert leftover_containers(CONTAINER_LABEL) == [], "the signalled step's container is still there"
