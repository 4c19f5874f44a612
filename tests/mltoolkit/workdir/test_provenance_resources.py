"""A step's resources in the run's RO-Crate: one PropertyValue per resource, described by its fate."""

from __future__ import annotations

from mltoolkit.workdir.provenance import build_run_crate
from mltoolkit.workdir.provenance.vocabulary import RESOURCES_TERM
from mltoolkit.workdir.record import RunRecord


def _graph(tmp_path, steps):
    crate = build_run_crate(tmp_path, RunRecord.model_validate({"status": "completed", "steps": steps}))
    metadata = crate.metadata.generate()
    return metadata, {entity["@id"]: entity for entity in metadata["@graph"]}


def test_each_requested_resource_is_a_property_value_of_the_steps_action(tmp_path):
    resources = {
        "requested": ["CVMFS", {"kubernetes_memory_limit": "8Gi"}, {"kubernetes_uid": 500}],
        "applied": {"kubernetes_memory_limit": "address-space limit 8Gi of the step's processes (RLIMIT_AS)"},
        "provided": {"CVMFS": "--provide CVMFS=/cvmfs"},
        "ignored": {"kubernetes_uid": "steps run as the user who runs the workflow"},
        "warnings": [],
    }
    metadata, graph = _graph(tmp_path, [{"id": "/reco", "stage": "reco", "name": "reco", "resources": resources}])
    action = graph["#step-run/reco"]
    described = [
        (graph[ref["@id"]]["name"], graph[ref["@id"]]["value"], graph[ref["@id"]]["description"])
        for ref in action["resources"]
    ]
    assert described == [
        ("CVMFS", True, "provided by --provide CVMFS=/cvmfs"),
        ("kubernetes_memory_limit", "8Gi", "applied: address-space limit 8Gi of the step's processes (RLIMIT_AS)"),
        ("kubernetes_uid", 500, "ignored: steps run as the user who runs the workflow"),
    ]
    assert all(graph[ref["@id"]]["@type"] == "PropertyValue" for ref in action["resources"])
    assert metadata["@context"][2]["resources"] == RESOURCES_TERM
    assert graph[RESOURCES_TERM]["@type"] == "rdf:Property"


def test_a_warning_is_part_of_its_resources_description(tmp_path):
    resources = {
        "requested": [{"kubernetes_memory_limit": "1Gi"}],
        "warnings": ["kubernetes_memory_limit 1Gi is not applied: this platform (darwin) cannot limit a step's memory"],
    }
    _metadata, graph = _graph(tmp_path, [{"id": "/a", "stage": "a", "name": "a", "resources": resources}])
    [ref] = graph["#step-run/a"]["resources"]
    assert graph[ref["@id"]]["description"].startswith("kubernetes_memory_limit 1Gi is not applied")


def test_a_run_without_resources_declares_no_resources_term(tmp_path):
    metadata, graph = _graph(tmp_path, [{"id": "/a", "stage": "a", "name": "a"}])
    assert "resources" not in graph["#step-run/a"]
    assert RESOURCES_TERM not in graph and "resources" not in metadata["@context"][2]
