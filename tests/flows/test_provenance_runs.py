"""The RO-Crate every run writes (``WORKDIR/ro-crate-metadata.json``), read back with ro-crate-py.

Both runs are the session's shared ones (the ``shared_run`` fixture); their
work directories have a space and non-ASCII letters in their names, so the crate's
file ids must be quoted and still resolve.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.artifacts import sha256_file


@pytest.fixture(params=["native", "seed-spec"])
def finished_run(request, shared_run):
    run = shared_run(request.param)
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    return run.workdir


def _types(entity) -> set[str]:
    kind = entity.type
    return set(kind) if isinstance(kind, list) else {kind}


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _local_path(workdir: Path, identifier: str) -> Path:
    if identifier.startswith("file://"):
        return Path(unquote(urlsplit(identifier).path))
    return workdir / unquote(identifier)


def test_crate_lists_every_step_as_an_action_with_its_outputs(run_records, finished_run):
    workdir = finished_run
    record = run_records.read(workdir)
    crate = ROCrate(workdir)  # parses and links the metadata; raises on a malformed crate
    actions = [entity for entity in crate.get_entities() if "CreateAction" in _types(entity)]
    by_task_run = {entity.get("identifier"): entity for entity in actions}

    assert len(actions) >= len(record["steps"]) + 1  # one per step, plus the run itself
    for step in record["steps"]:
        action = by_task_run.get(step["task_run_id"])
        assert action is not None, f"no action for step {step['name']}"
        assert step["name"] in action.get("name", ""), (step["name"], action.get("name"))
        results = {entity.id: entity for entity in _as_list(action.get("result")) if hasattr(entity, "id")}
        for relative, digest in step["outputs"].items():
            matching = [
                entity
                for identifier, entity in results.items()
                if _local_path(workdir, identifier) == workdir / relative
            ]
            assert matching, f"step {step['name']}: output {relative} is not among its action's results"
            assert matching[0].get("sha256") == digest


def test_crate_sha256_values_match_the_files(finished_run):
    workdir = finished_run
    crate = ROCrate(workdir)
    hashed = [entity for entity in crate.get_entities() if entity.get("sha256")]
    assert hashed
    for entity in hashed:
        path = _local_path(workdir, entity.id)
        assert path.is_file(), entity.id
        assert sha256_file(path) == entity.get("sha256"), entity.id
