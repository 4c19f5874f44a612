"""The seed's spec, unmodified, with its docker-encapsulated steps in real containers.

``danikam/sklearn`` cannot be pulled here, so the session's image (built from our
Dockerfile, which provides ``/fun_with_ml``) is tagged ``danikam/sklearn:latest``
and no image-map entry is given: the spec runner finds an engine and runs each
step in a container of that image. The containers have no network
(``MLTOOLKIT_DOCKER_NETWORK=none``): the seed's Dropbox URL reaches the data step
as the bundled file, mounted read-only. The same spec run without an engine (the
built-in image-map entry) gives the same five scores and the same figure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.analysis.data import bundled_dataset_path
from mltoolkit.workdir.artifacts import load_pickle, sha256_file
from mltoolkit.yadage.packtivity import CONTAINER_LABEL, TOOLKIT_SCRIPTS_DIR
from tests.constants import SEED_CLASSIFIERS, SEED_SCORES, SEED_SPEC_DIR
from tests.docker.conftest import SEED_IMAGE
from tests.docker.engine import leftover_containers
from tests.docker.spec_runs import assert_ran_in_docker, run_spec, spec_env

pytestmark = pytest.mark.slow

FIGURE = Path("merge_and_visualize") / "ml_results.png"


def _seed_run(run_cli: Any, env: dict[str, str], workdir: Path) -> Any:
    return run_spec(run_cli, env, workdir, SEED_SPEC_DIR, "workflow.yml", "inputs.yml")


def _ran_locally(workdir: Path, run_records: Any) -> bool:
    steps = run_records.read(workdir)["steps"]
    return all(step.get("environment", {}).get("kind") == "toolkit" for step in steps)


@pytest.fixture(scope="module")
def seed_runs(spec_images: str, run_cli, session_cli_env, shared_run, run_records, tmp_path_factory) -> dict[str, Path]:
    """The seed spec in Docker (no network), and without an engine (the built-in entry).

    The run without an engine is the session's shared seed-spec run when it ran so
    (the rest of the suite sees no engine under ``.ci/run``), otherwise one of its own.
    """
    base = tmp_path_factory.mktemp("seed-docker")
    in_docker = base / "in docker"
    result = _seed_run(run_cli, spec_env(session_cli_env, MLTOOLKIT_DOCKER_NETWORK="none"), in_docker)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    shared = shared_run("seed-spec")
    assert shared.result.returncode == 0, shared.result.stderr[-3000:]
    local = shared.workdir
    if not _ran_locally(local, run_records):
        # the same machine with no engine answering: DOCKER_HOST names a socket nothing listens on
        local = base / "without docker"
        result = _seed_run(run_cli, spec_env(session_cli_env, DOCKER_HOST=f"unix://{base}/no-engine.sock"), local)
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return {"docker": in_docker, "local": local}


def _scores(workdir: Path) -> dict[str, float]:
    """Each classifier's test score, from the pickles the classification steps wrote."""
    results = [load_pickle(path) for path in sorted(workdir.glob("classification_*/*.pkl"))]
    return {result.name: result.score for result in results}


def test_every_seed_step_ran_in_a_container_of_the_seed_image(seed_runs, spec_images, run_records):
    steps = run_records.read(seed_runs["docker"])["steps"]
    assert len(steps) == 7
    for step in steps:
        assert_ran_in_docker(step, SEED_IMAGE, spec_images, network="none")
    assert len({step["environment"]["container_id"] for step in steps}) == 7
    assert leftover_containers(CONTAINER_LABEL) == []


def test_the_seed_url_reached_the_container_as_the_bundled_file(seed_runs):
    folder = seed_runs["docker"] / "data_prep" / "_packtivity"
    script = (folder / "data_prep.script").read_text()
    assert "--dataset /mltoolkit/datasets/moon.txt" in script and "dropbox" not in script
    assert "prepped 100 rows from /mltoolkit/datasets/moon.txt" in (folder / "data_prep.run.log").read_text()
    assert bundled_dataset_path("moon.txt").is_file()


def test_same_scores_and_the_same_figure_as_without_docker(seed_runs, run_records):
    in_docker, local = _scores(seed_runs["docker"]), _scores(seed_runs["local"])
    assert list(in_docker) == SEED_CLASSIFIERS  # classification_0..4, in the seed's order
    assert in_docker == local
    assert {name: round(score, 2) for name, score in in_docker.items()} == SEED_SCORES
    # byte-identical, not only pixel-identical: the same matplotlib draws both
    assert sha256_file(seed_runs["docker"] / FIGURE) == sha256_file(seed_runs["local"] / FIGURE)


def test_without_an_engine_the_built_in_entry_says_where_it_ran(seed_runs, run_records):
    for step in run_records.read(seed_runs["local"])["steps"]:
        assert step["environment"] == {
            "kind": "toolkit",
            "image": SEED_IMAGE,
            "mapped_to": f"toolkit (built-in entry; /fun_with_ml={TOOLKIT_SCRIPTS_DIR})",
        }
        log = (Path(step["workdir"]) / "_packtivity" / f"{step['name']}.run.log").read_text()
        assert not re.search(r"running in Docker", log)
