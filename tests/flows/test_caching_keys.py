"""The pieces of the cache without a flow run: records, their checks, image ids, lineage, the capped log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltoolkit.analysis.pipeline import ClassificationOutput, FileRef, MergeOutput
from tests.constants import SEED_SPEC_DIR


def _outcome():
    from flows.spec_tasks import StepOutcome

    return StepOutcome(published={"out": "/run/a.txt", "n": [1, 2.5]}, files={"a.txt": "ab" * 32}, root="/run")


@pytest.mark.parametrize(
    "value",
    [
        FileRef("data_prep/prepped_data.pkl", "ab" * 32),
        ClassificationOutput("knn", 0, 0.975, FileRef("classification_0/knn.pkl", "cd" * 32)),
        MergeOutput(FileRef("merge/ml_results.png", "ef" * 32), FileRef("scores.json", "01" * 32)),
        _outcome(),
    ],
    ids=["FileRef", "ClassificationOutput", "MergeOutput", "StepOutcome"],
)
def test_step_results_are_stored_as_json_and_read_back_equal(value):
    from flows.cache_records import StepResultSerializer

    serializer = StepResultSerializer()
    blob = serializer.dumps(value)
    assert json.loads(blob)["type"] == type(value).__name__
    assert serializer.loads(blob) == value


@pytest.mark.parametrize(
    "blob",
    [
        b'{"type": "PosixPath", "value": "/etc/passwd"}',
        b'{"type": "FileRef", "value": {"path": 1}}',
        b"\x80\x04\x95 a pickle",
        b'{"__class__": "os.system", "data": "touch PWNED"}',
    ],
    ids=["type outside the list", "wrong fields", "a pickle", "prefect's class marker"],
)
def test_anything_else_is_refused_without_building_it(blob):
    from flows.cache_records import decode_result

    with pytest.raises(ValueError, match="not a stored step result"):
        decode_result(blob)


def test_other_results_cannot_be_stored():
    from flows.cache_records import encode_result

    with pytest.raises(TypeError, match="must be one of FileRef"):
        encode_result({"a": "dict"})


def _record(root: Path, key: str, value, serializer: dict | None = None) -> Path:
    from flows.cache_records import encode_result

    path = root / "_mltoolkit" / "cache" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"storage_key": str(path), "serializer": serializer or {"type": "mltoolkit-json"}}
    path.write_text(json.dumps({"metadata": metadata, "result": encode_result(value).decode()}))
    return path


def test_pruning_keeps_good_records_and_says_why_it_drops_the_others(tmp_path):
    from flows.cache_records import prune_stale_cache, read_pruned
    from mltoolkit.workdir.artifacts import sha256_file

    (tmp_path / "step").mkdir()
    (tmp_path / "step" / "out.txt").write_text("output\n")
    good = FileRef("step/out.txt", sha256_file(tmp_path / "step" / "out.txt"))
    _record(tmp_path, "good", good)
    _record(tmp_path, "changed", FileRef("step/out.txt", "0" * 64))
    _record(tmp_path, "missing", FileRef("step/gone.txt", "0" * 64))
    _record(tmp_path, "outside", FileRef("/etc/hostname", "0" * 64))
    _record(tmp_path, "pickled", good, {"type": "pickle", "picklelib": "cloudpickle"})
    (tmp_path / "_mltoolkit" / "cache" / "garbage").write_bytes(b"\x00not json")

    dropped = prune_stale_cache(tmp_path)

    assert dropped == {
        "changed": "output changed: step/out.txt",
        "garbage": "stored result is unreadable",
        "missing": "output missing: step/gone.txt",
        "outside": "stored result names a file outside the work directory: /etc/hostname",
        "pickled": "stored result is not a mltoolkit JSON record",
    }
    assert sorted(path.name for path in (tmp_path / "_mltoolkit" / "cache").iterdir()) == ["good"]
    assert read_pruned(tmp_path) == dropped


def _seed_step(stage: str):
    from mltoolkit.yadage import load_step_ref, validate_step

    return validate_step(load_step_ref(f"steps.yml#/{stage}", SEED_SPEC_DIR))


@pytest.mark.parametrize(("use_docker", "asked"), [(True, ["danikam/sklearn:latest"]), (False, [])])
def test_the_image_id_is_asked_only_for_a_step_that_runs_in_docker(monkeypatch, use_docker, asked):
    from mltoolkit.yadage import StepOptions
    from mltoolkit.yadage.packtivity import environment_identity

    images: list[str] = []
    monkeypatch.setattr(
        "mltoolkit.yadage.packtivity.step.image_id", lambda image: images.append(image) or "sha256:feedbeef"
    )
    step = _seed_step("classification_step")  # docker-encapsulated, image danikam/sklearn
    identity = environment_identity(step, StepOptions(use_docker=use_docker))
    assert identity.get("image_id") == ("sha256:feedbeef" if use_docker else None)
    assert images == asked  # mapped to a local environment: Docker is not asked


def test_a_new_image_changes_the_key_and_says_so(tmp_path):
    from flows.cache_keys import toolkit_code, toolkit_libraries
    from flows.spec_tasks import spec_step_components, step_identity
    from mltoolkit.preservation import explain
    from mltoolkit.workdir.artifacts import FileHasher
    from mltoolkit.yadage import StepOptions
    from mltoolkit.yadage.planner import PlannedStep

    planned = PlannedStep(
        "/classification_0",
        "",
        "classification",
        0,
        "classification_0",
        tmp_path / "classification_0",
        {"classifier": "rbf_svm"},
        _seed_step("classification_step"),
    )
    options = StepOptions(use_docker=True, image_ids={"danikam/sklearn:latest": "sha256:" + "1" * 64})
    parts = (FileHasher(), toolkit_code(), toolkit_libraries())
    before = spec_step_components(planned.id, step_identity(planned, options), tmp_path, parts)
    options.image_ids["danikam/sklearn:latest"] = "sha256:" + "2" * 64
    after = spec_step_components(planned.id, step_identity(planned, options), tmp_path, parts)
    assert before.key("classification") != after.key("classification")
    assert explain(before, after) == "image changed: 111111111111 -> 222222222222"


def test_the_lineage_names_the_upstream_files_a_step_reads(tmp_path):
    from flows.spec_lineage import StepLineage
    from mltoolkit.yadage.planner import PlannedStep

    (tmp_path / "classification_0").mkdir()
    lineage = StepLineage(tmp_path)
    lineage.add({"data_prep/prepped.pkl": "a" * 64, "classification_0/knn.pkl": "b" * 64})
    lineage.add({"classification_1/svm.pkl": "c" * 64, "other/file.txt": "d" * 64})
    parameters = {
        "input_data": f"{tmp_path}/data_prep/prepped.pkl",
        "ml_inputs": [f"{tmp_path}/classification_*/*.pkl"],
        "folder": f"{tmp_path}/classification_0",
        "text": "not a path",
    }
    planned = PlannedStep(
        "/merge", "", "merge", None, "merge", tmp_path / "merge", parameters, _seed_step("merging_step")
    )
    assert lineage.of(planned) == {
        "data_prep/prepped.pkl": "a" * 64,
        "classification_0/knn.pkl": "b" * 64,
        "classification_1/svm.pkl": "c" * 64,
    }


class FakeLogger:
    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, template: str, *args) -> None:
        self.infos.append(template % args)

    def warning(self, template: str, *args) -> None:
        self.warnings.append(template % args)


def test_the_capped_log_forwards_lines_until_the_limit_then_says_where_the_rest_is(tmp_path):
    from flows.step_log import MAX_LINE_CHARS, CappedStepLog

    logger = FakeLogger()
    log = CappedStepLog(logger, tmp_path / "step.run.log", max_lines=3, max_bytes=10_000)
    for line in ["one", "x" * (MAX_LINE_CHARS + 5), "three", "four", "five"]:
        log(line)
    assert logger.infos[0] == "one" and logger.infos[2] == "three" and len(logger.infos) == 3
    assert logger.infos[1].endswith(f"[... 5 more characters in {tmp_path / 'step.run.log'}]")
    (notice,) = logger.warnings
    assert "beyond 3 lines" in notice and str(tmp_path / "step.run.log") in notice


def test_a_new_run_makes_the_key_folders_again_after_they_were_removed(tmp_path):
    # the store remembers the folders it made (a scatter's steps need not ask each time); a
    # later run in the same process must not trust that once the folders are gone
    import shutil

    from flows.cache_keys import _key_store
    from flows.caching import CacheSettings, begin_cached_run
    from mltoolkit.preservation import CodeDigest, KeyComponents

    components = KeyComponents("/stage/0", {"cmd": "true"}, {}, "code", {"python": "3.11"})
    code = CodeDigest("code", {"mltoolkit/a.py": "ab" * 32})
    for attempt in range(2):
        begin_cached_run(tmp_path, CacheSettings())
        store = _key_store(str(tmp_path))
        store.remember(components.key("stage"), components, code)
        store.note_reason("flow-run", "/stage/0", False, f"attempt {attempt}")
        assert store.stored("/stage/0")[0] == components.key("stage")
        assert store.reasons("flow-run") == {"/stage/0": (False, f"attempt {attempt}")}
        shutil.rmtree(tmp_path / "_mltoolkit")


def test_the_code_facts_read_ahead_are_those_a_step_would_read(monkeypatch):
    import threading

    from flows import cache_keys
    from mltoolkit.preservation import code_digest, library_versions

    cache_keys.forget_code_facts()
    reads: list[str] = []
    whole = cache_keys.code_digest

    def counted(*args, **kwargs):
        reads.append(threading.current_thread().name)
        return whole(*args, **kwargs)

    monkeypatch.setattr(cache_keys, "code_digest", counted)
    cache_keys.prefetch_code_facts()
    cache_keys.prefetch_code_facts()  # once per process
    cache_keys.wait_for_code_facts()
    assert cache_keys.toolkit_code() == code_digest(cache_keys.TOOLKIT_PACKAGES)
    assert cache_keys.toolkit_libraries() == library_versions()
    assert reads == ["mltoolkit-code-facts"]  # read once, in the background, not again by the step
    monkeypatch.undo()
    cache_keys.forget_code_facts()


def test_a_failure_while_reading_ahead_is_met_again_where_the_facts_are_used(monkeypatch):
    from flows import cache_keys

    cache_keys.forget_code_facts()

    def unreadable(*args, **kwargs):
        raise PermissionError("mltoolkit/analysis/data.py")

    monkeypatch.setattr(cache_keys, "code_digest", unreadable)
    cache_keys.prefetch_code_facts()
    cache_keys.wait_for_code_facts()  # the background thread ended quietly
    with pytest.raises(PermissionError, match=r"data\.py"):
        cache_keys.toolkit_code()
    monkeypatch.undo()
    cache_keys.forget_code_facts()
