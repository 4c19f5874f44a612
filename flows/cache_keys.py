"""Computing a step's cache key inside Prefect, and remembering why the step ran or was reused.

:func:`compute_step_key` is the body of both flows' cache policies. It builds
the key's parts (:class:`~mltoolkit.preservation.KeyComponents`): the step's
definition and parameters with input files by content (bounded by the step's
timeout), the toolkit's code (:func:`toolkit_code`, once per process) and the
library versions (:func:`toolkit_libraries`). It then decides the reason -- reused,
``--refresh``, or what changed since the key this step last stored, which is
kept beside the cache (:class:`KeyStore`) -- and appends it to the run's reasons
file, which the flow reads when it writes ``run.json``.

Hashing is bounded by the step's timeout: a step whose inputs cannot be hashed
within it gets no key, and its task body then fails with that message
(:func:`take_key_note`), as if the step itself had timed out.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from flows.cache_records import read_pruned
from mltoolkit.errors import HashingTimeoutError
from mltoolkit.preservation import (
    CodeDigest,
    KeyComponents,
    code_digest,
    code_digest_leaving_out,
    explain,
    library_versions,
)
from mltoolkit.preservation.keys import REUSED
from mltoolkit.workdir.artifacts import FileHasher, atomic_output
from mltoolkit.workdir.layout import WorkdirLayout

__all__ = [
    "TOOLKIT_PACKAGES",
    "KeyNote",
    "KeyStore",
    "compute_step_key",
    "forget_code_facts",
    "forget_key_stores",
    "prefetch_code_facts",
    "remember_stored_key",
    "take_key_note",
    "toolkit_code",
    "toolkit_libraries",
    "wait_for_code_facts",
]

#: The toolkit's own packages, whose every file is code a step can run (name -> folder).
TOOLKIT_PACKAGES: dict[str, Path] = {
    "mltoolkit": Path(__file__).resolve().parents[1] / "mltoolkit",
    "flows": Path(__file__).resolve().parent,
}


def _write_json(path: Path, value: Any, *, folder_exists: bool = False) -> None:
    """Write ``value`` as JSON atomically, without fsync.

    One fsync per step was the largest single cost of a 10,000-step scatter; a
    file lost by a power cut only costs the reason ("first run" instead of what
    changed), never a wrong reuse.
    """
    with atomic_output(path, folder_exists=folder_exists) as temporary:
        temporary.write_text(json.dumps(value, sort_keys=True) + "\n", encoding="utf-8")


@cache
def toolkit_code(leave_out: frozenset[tuple[str, frozenset[str]]] = frozenset()) -> CodeDigest:
    """The digest of the toolkit's installed code (:data:`TOOLKIT_PACKAGES`), computed once per process.

    ``leave_out``: ``(file, functions)`` pairs of top-level functions the step cannot run.
    """
    if not leave_out:
        return code_digest(TOOLKIT_PACKAGES)
    return code_digest_leaving_out(toolkit_code(), TOOLKIT_PACKAGES, dict(leave_out))


@cache
def toolkit_libraries() -> dict[str, str]:
    """Python's and the scientific libraries' versions, read once per process."""
    return library_versions()


_prefetch: threading.Thread | None = None


def _compute_code_facts() -> None:
    with contextlib.suppress(Exception):  # a failure is met again, and reported, where the facts are used
        toolkit_code()
        toolkit_libraries()


def prefetch_code_facts() -> None:
    """Start reading the toolkit's code digest and the library versions in the background (once per process).

    A command starts it as it begins, so that they are ready when its first step asks
    (the flow's start mostly waits for the API). They are read from the files of this
    command's own moment, as when the first step reads them itself.
    """
    global _prefetch
    if _prefetch is None:
        _prefetch = threading.Thread(target=_compute_code_facts, name="mltoolkit-code-facts", daemon=True)
        _prefetch.start()


def wait_for_code_facts() -> None:
    """Let a started :func:`prefetch_code_facts` finish (rather than read the same files again alongside it)."""
    if _prefetch is not None and _prefetch is not threading.current_thread():
        _prefetch.join()


def forget_code_facts() -> None:
    """Forget the code digest and library versions read so far (the next use reads them again).

    For a process that outlives a change of the toolkit's files (tests): a read
    started ahead is finished first, so that it cannot store the old digest afterwards.
    """
    global _prefetch
    wait_for_code_facts()
    _prefetch = None
    toolkit_code.cache_clear()
    toolkit_libraries.cache_clear()


class KeyStore:
    """What is kept beside a work directory's cache: each step's last stored key, the code's file digests, reasons."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.layout = WorkdirLayout(workdir)
        # what this process already wrote or created, so a scatter's steps do not ask again each
        self._kept_code: set[str] = set()
        self._made: set[Path] = set()

    def _folder(self, path: Path) -> Path:
        """``path``'s folder, created (once per process and folder)."""
        folder = path.parent
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        return folder

    def stored(self, step_id: str) -> tuple[str | None, KeyComponents | None]:
        """The key step ``step_id`` last stored a result under, and its parts (``None``s when unknown)."""
        try:
            content = json.loads(self.layout.step_key(step_id).read_text(encoding="utf-8"))
            return str(content["key"]), KeyComponents.from_json(content["components"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def remember(self, key: str, components: KeyComponents, code: CodeDigest) -> None:
        """Keep ``components`` as step ``components.step``'s last stored key, and the code's file digests."""
        if code.digest not in self._kept_code:
            code_path = self.layout.code_files(code.digest)
            if not code_path.exists():
                _write_json(code_path, dict(code.files))
            self._kept_code.add(code.digest)
        path = self.layout.step_key(components.step)
        self._folder(path)
        _write_json(path, {"key": key, "components": components.to_json()}, folder_exists=True)

    def code_files(self, digest: str) -> dict[str, str] | None:
        """The per-file digests of the code version ``digest``, if it was kept."""
        try:
            content = json.loads(self.layout.code_files(digest).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return content if isinstance(content, dict) else None

    def has_result(self, key: str) -> bool:
        """Whether a stored result exists for ``key`` (it passed the checks before the run)."""
        return (self.layout.cache / key).is_file()

    def reason(self, key: str, components: KeyComponents, code: CodeDigest) -> str:
        """Why the step with ``components`` runs although caching is on."""
        stored_key, previous = self.stored(components.step)
        if stored_key == key:
            # same key, no stored result: it was dropped before the run, or the run that made it ended first
            return read_pruned(self.layout.root).get(key, "no stored result: the run that made it did not finish")
        code_before = self.code_files(previous.code) if previous is not None else None
        return explain(previous, components, (code_before, code.files))

    def begin_run(self) -> None:
        """Start a run's reasons afresh (one run at a time holds the work directory)."""
        self.layout.cache_reasons.parent.mkdir(parents=True, exist_ok=True)
        self.layout.cache_reasons.write_text("", encoding="utf-8")

    def note_reason(self, flow_run: str, step_id: str, reused: bool, reason: str) -> None:
        """Append why ``step_id`` ran or was reused in flow run ``flow_run`` (one short line, appended atomically)."""
        line = json.dumps({"flow_run": flow_run, "step": step_id, "reused": reused, "reason": reason}) + "\n"
        self._folder(self.layout.cache_reasons)
        descriptor = os.open(self.layout.cache_reasons, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)

    def reasons(self, flow_run: str) -> dict[str, tuple[bool, str]]:
        """``{step id: (reused, reason)}`` noted in flow run ``flow_run`` (a retried step's last attempt wins)."""
        found: dict[str, tuple[bool, str]] = {}
        try:
            lines = self.layout.cache_reasons.read_text(encoding="utf-8").splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                entry = json.loads(line)
                if entry["flow_run"] == flow_run:
                    found[str(entry["step"])] = (bool(entry["reused"]), str(entry["reason"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed process
        return found


@lru_cache(maxsize=16)
def _key_store(workdir: str) -> KeyStore:
    """One store per work directory and process: resolving its path once, not twice for every step."""
    return KeyStore(workdir)


def forget_key_stores() -> None:
    """At a run's start: forget the stores, and with them which folders they had created (they may be gone)."""
    _key_store.cache_clear()


@dataclass
class KeyNote:
    """What the cache policy learnt about a task run, for its task body."""

    components: KeyComponents | None
    error: HashingTimeoutError | None = None
    code: CodeDigest | None = None


#: Task run id -> its note; written by the policy, taken by the task body in the same process.
_NOTES: dict[str, KeyNote] = {}


def take_key_note() -> KeyNote | None:
    """The note the cache policy left for the current task run (once); raise its hashing timeout.

    Raises:
        HashingTimeoutError: hashing the step's inputs ran past its timeout.
    """
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    note = _NOTES.pop(str(context.task_run.id), None) if context is not None and context.task_run else None
    if note is not None and note.error is not None:
        raise HashingTimeoutError(f"{note.error}; raise --step-timeout, or run with --no-cache")
    return note


def compute_step_key(
    task_ctx: Any,
    workdir: str,
    step: tuple[str, str],
    build: Callable[[FileHasher, CodeDigest, dict[str, str]], KeyComponents],
    *,
    timeout: float | None,
    refresh: bool,
    code: CodeDigest | None = None,
) -> str | None:
    """The key of the task run in ``task_ctx``, with its reason noted; ``None`` when hashing timed out.

    ``step`` is the step's id in ``run.json`` and the label its key starts with;
    ``build(hasher, code, libraries)`` returns the key's parts; ``code`` is the
    code the step can run (default: all of the toolkit's).
    """
    step_id, label = step
    task_run = task_ctx.task_run
    store = _key_store(workdir)
    hasher = FileHasher.within(timeout)
    wait_for_code_facts()
    code = code or toolkit_code()
    try:
        components = build(hasher, code, toolkit_libraries())
        components.toolkit = toolkit_code().digest
    except HashingTimeoutError as error:
        _NOTES[str(task_run.id)] = KeyNote(None, error)
        store.note_reason(str(task_run.flow_run_id), step_id, False, f"not cached: {error}")
        return None
    key = components.key(label)
    reused = not refresh and store.has_result(key)
    reason = "--refresh" if refresh else REUSED if reused else store.reason(key, components, code)
    store.note_reason(str(task_run.flow_run_id), step_id, reused, reason)
    if not reused:
        _NOTES[str(task_run.id)] = KeyNote(components, code=code)
    elif store.stored(components.step)[0] != key:
        store.remember(key, components, code)  # an older result reused: the step's last key is now this one
    return key


def remember_stored_key(workdir: str, note: KeyNote | None) -> None:
    """After a task body succeeded: keep its key's parts, if Prefect is about to store its result."""
    from prefect.transactions import get_transaction

    transaction = get_transaction()
    if note is None or note.components is None or note.code is None or transaction is None or not transaction.key:
        return
    _key_store(workdir).remember(transaction.key, note.components, note.code)
