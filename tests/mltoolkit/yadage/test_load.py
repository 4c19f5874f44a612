"""Phase 1: reading YAML and resolving $ref."""

from __future__ import annotations

import http.server
import threading

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.load import (
    format_pointer,
    load_document,
    load_step_ref,
    load_workflow,
    parse_pointer,
    resolve_refs,
)


def test_seed_workflow_resolves_step_refs_and_remembers_where_they_came_from(specs):
    loaded = load_workflow(specs / "seed_parallel" / "workflow.yml")
    stages = loaded.data["stages"]
    assert [stage["name"] for stage in stages] == ["data_prep", "classification", "merge_and_visualize"]
    step = stages[1]["scheduler"]["step"]
    assert step["publisher"]["publish"] == {"ml_output": "{outdir}/*.pkl"}
    assert "$ref" not in str(loaded.data)
    where = loaded.where(["stages", 1, "scheduler", "step", "process", "script"])
    assert "steps.yml line 18" in where and "#/classification_step/process/script" in where
    assert "workflow.yml line 11 (#/stages/1)" in loaded.where(["stages", 1])


def test_refs_to_another_folder_a_fragment_and_nested_files(specs):
    loaded = load_workflow(specs / "refs" / "workflow.yml")
    shared, local, sub = loaded.data["stages"]
    # ../refs_shared/steps.yml, whose own $ref (common/env.yml) is relative to *it*
    assert shared["scheduler"]["step"]["environment"] == {"environment_type": "noop-env"}
    # #/definitions/... inside steps.yml
    assert local["scheduler"]["step"]["publisher"] == {"publisher_type": "frompar-pub", "outputmap": {"said": "word"}}
    # the subworkflow's step ref resolves against sub/, not the workflow's folder
    inner = sub["scheduler"]["workflow"]["stages"][0]["scheduler"]["step"]
    assert inner["process"]["cmd"] == "echo inner {word}"
    origin = loaded.location(["stages", 0, "scheduler", "step", "environment"])
    assert origin.document.endswith("refs_shared/common/env.yml") and origin.pointer == ("env",)


def test_workflow_name_resolves_against_toplevel(specs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load_workflow("workflow.yml", toplevel=specs / "seed_parallel")
    assert loaded.source == str(specs / "seed_parallel" / "workflow.yml")
    assert loaded.toplevel == str(specs / "seed_parallel")


def test_relative_ref_falls_back_to_toplevel(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "steps.yml").write_text("s: {x: 1}\n")
    (tmp_path / "flows" / "wf.yml").write_text("stages: [{$ref: 'steps.yml#/s'}]\n")
    loaded = load_workflow("flows/wf.yml", toplevel=tmp_path)
    assert loaded.data == {"stages": [{"x": 1}]}


def test_absolute_and_file_url_refs(tmp_path):
    target = tmp_path / "abs.yml"
    target.write_text("part: {value: 3}\n")
    (tmp_path / "wf.yml").write_text(f"a: {{$ref: '{target}#/part'}}\nb: {{$ref: 'file://{target}#/part/value'}}\n")
    assert load_document(tmp_path / "wf.yml").data == {"a": {"value": 3}, "b": 3}


def test_pointer_escapes_and_list_indexes(tmp_path):
    (tmp_path / "doc.yml").write_text("'a/b': {'c~d': [zero, one]}\nref: {$ref: '#/a~1b/c~0d/1'}\n")
    assert load_document(tmp_path / "doc.yml").data["ref"] == "one"
    assert parse_pointer("/a~1b/c~0d") == ("a/b", "c~d")
    assert format_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"


def test_load_step_ref_loads_one_step(specs):
    loaded = load_step_ref("steps.yml#/data_prep_step", toplevel=specs / "seed_parallel")
    assert loaded.data["environment"]["image"] == "danikam/sklearn"
    assert loaded.pointer == ("data_prep_step",)
    assert "steps.yml line 2 (#/data_prep_step/process)" in loaded.where(["process"])


def test_resolve_refs_in_memory(tmp_path):
    (tmp_path / "other.yml").write_text("v: 7\n")
    tree = {"defs": {"x": 1}, "a": {"$ref": "#/defs/x"}, "b": {"$ref": "other.yml#/v"}}
    assert resolve_refs(tree, base=tmp_path / "virtual.yml") == {"defs": {"x": 1}, "a": 1, "b": 7}


def test_cycle_between_two_files_is_reported(specs):
    with pytest.raises(SpecError) as caught:
        load_workflow(specs / "refs_cycle" / "a.yml")
    message = str(caught.value)
    assert "circular" in message and "a.yml" in message and "b.yml" in message
    assert "\n" not in message


def test_self_including_ref_is_a_cycle(tmp_path):
    (tmp_path / "wf.yml").write_text("stages:\n- {$ref: '#/stages'}\n")
    with pytest.raises(SpecError, match=r"circular .*wf\.yml#/stages/0 -> .*wf\.yml#/stages"):
        load_workflow(tmp_path / "wf.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: {$ref: 'missing.yml#/a'}\n", r"wf\.yml line 1 \(#/x\): \$ref 'missing\.yml#/a': no file 'missing\.yml'"),
        ("x: {$ref: '#/nope'}\ny: 1\n", r"wf\.yml.*has no 'nope' at #/ \(keys there: x, y\)"),
        ("x: {$ref: '#/y', extra: 1}\ny: 1\n", r"wf\.yml line 1 \(#/x\): keys extra next to \$ref"),
        ("x: {$ref: 'nofragment#'}\n", r"no file 'nofragment'"),
        ("x: {$ref: '#nope'}\ny: 1\n", r"wf\.yml.*has no 'nope' at #/ \(keys there: x, y\)"),
        ("x: {$ref: 3}\n", r"\$ref must be a string"),
        ("x: [1, 2\n", r"wf\.yml, line 2, column 1: not valid YAML"),
    ],
)
def test_reference_errors_are_one_line_with_file_and_pointer(tmp_path, text, expected):
    (tmp_path / "wf.yml").write_text(text)
    with pytest.raises(SpecError, match=expected) as caught:
        load_document(tmp_path / "wf.yml")
    assert "\n" not in str(caught.value)


def test_missing_workflow_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.yml does not exist"):
        load_workflow(tmp_path / "nope.yml")


def test_workflow_must_be_a_mapping(tmp_path):
    (tmp_path / "wf.yml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match=r"found list, expected a mapping with a 'stages' list"):
        load_workflow(tmp_path / "wf.yml")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_folder(tmp_path):
    """Serve tmp_path over http on 127.0.0.1 (loopback only)."""
    handler = lambda *args, **kwargs: _Quiet(*args, directory=str(tmp_path), **kwargs)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_refs_and_relative_refs_inside_fetched_documents(http_folder, tmp_path_factory):
    folder, base = http_folder
    (folder / "steps.yml").write_text("s: {$ref: 'more/env.yml#/e'}\n")
    (folder / "more").mkdir()
    (folder / "more" / "env.yml").write_text("e: {environment_type: noop-env}\n")
    local = tmp_path_factory.mktemp("local")
    (local / "wf.yml").write_text(f"step: {{$ref: '{base}/steps.yml#/s'}}\n")
    assert load_document(local / "wf.yml").data == {"step": {"environment_type": "noop-env"}}
    # the workflow itself may be a URL, and then toplevel is its folder URL
    loaded = load_workflow(f"{base}/steps.yml")
    assert loaded.data == {"s": {"environment_type": "noop-env"}}
    assert loaded.toplevel == base


def test_http_404_and_unreachable_urls_say_so(http_folder, tmp_path_factory):
    _folder, base = http_folder
    local = tmp_path_factory.mktemp("local")
    (local / "wf.yml").write_text(f"a: {{$ref: '{base}/missing.yml'}}\n")
    with pytest.raises(SpecError, match=r"failed with HTTP 404"):
        load_document(local / "wf.yml")
    (local / "wf.yml").write_text("a: {$ref: 'http://127.0.0.1:9/steps.yml'}\n")
    with pytest.raises(SpecError, match=r"http://127\.0\.0\.1:9/steps\.yml is unreachable .*copy the file"):
        load_document(local / "wf.yml")
