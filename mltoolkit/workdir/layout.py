"""The layout of a run's work directory: the one place that names its paths.

A work directory follows yadage's layout, so people who know yadage find their
files: a folder per step (``data_prep/``, ``classification_0/``,
``map_0/stage1/``), the init files in ``init/``, and each step's command, script
and log in ``<step folder>/_packtivity/``. The toolkit's own records live under
``_mltoolkit/``::

    WORKDIR/
      init/                       files of yadage's init step
      ro-crate-metadata.json      the Workflow Run RO-Crate
      _mltoolkit/
        run.json                  the run record (mltoolkit.workdir.record)
        run.log                   the full log of the last command that ran a flow here
        lock                      one run at a time (mltoolkit.workdir.locking)
        cache/                    Prefect's stored results of cached steps (JSON)
        cache-keys/               what each step's last stored key covered, to say why it ran
          steps/<id>.json           per step: the key and its parts (code, libraries, inputs...)
          code/<digest>.json        per version of the toolkit's code: the sha256 of each file
          reasons.jsonl             why each step of the current run ran or was reused
          pruned.json               stored results the last run dropped, and why
        workflow.{png,svg,dot}    the workflow picture (--visualize)
        submitted/                exact copies of what the run was given (mltoolkit.preservation.submitted)
          submitted.json            what they are: spec files, inputs file, -p values, dataset, sha256
        archive.json              only inside an archive zip: the sha256 of every file in it
        reproduction.{json,md}    the report of ``reproduce`` (this run re-ran an archived one)
        reproduction-diffs/       difference images of the figures it compared

Every path a module needs is a property of :class:`WorkdirLayout` (or one of the
names below), so that renaming a folder is a change in one file. Deleting or
creating anything on behalf of a run goes through :func:`remove_tree` /
:func:`inside_workdir`, which refuse paths outside the work directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mltoolkit.errors import WorkdirError

__all__ = [
    "ARCHIVE_MANIFEST_FILE",
    "BOOKKEEPING_DIRS",
    "CACHE_DIR",
    "CRATE_FILE",
    "INIT_DIR",
    "KEYS_DIR",
    "LOCK_FILE",
    "PREVIEWS_DIR",
    "RECORDS_DIR",
    "RUN_LOG_FILE",
    "RUN_RECORD_FILE",
    "STEP_PRIVATE_DIR",
    "SUBMITTED_DIR",
    "SUBMITTED_MANIFEST_FILE",
    "WorkdirLayout",
    "inside_workdir",
    "remove_tree",
    "step_private_dir",
]

#: The toolkit's own records, relative to the work directory.
RECORDS_DIR = "_mltoolkit"
#: A step's private files (command, script, log), relative to the step's folder.
STEP_PRIVATE_DIR = "_packtivity"
#: yadage's init step's files, relative to the work directory.
INIT_DIR = "init"
#: The RO-Crate metadata file, relative to the work directory.
CRATE_FILE = "ro-crate-metadata.json"
#: The run record, relative to the work directory (POSIX).
RUN_RECORD_FILE = f"{RECORDS_DIR}/run.json"
#: The full log of the last command that ran a flow in the work directory (POSIX).
RUN_LOG_FILE = f"{RECORDS_DIR}/run.log"
#: The lock one run holds, relative to the work directory.
LOCK_FILE = f"{RECORDS_DIR}/lock"
#: Prefect's stored results of cached steps, relative to the work directory.
CACHE_DIR = f"{RECORDS_DIR}/cache"
#: What each step's last stored cache key covered, relative to the work directory.
KEYS_DIR = f"{RECORDS_DIR}/cache-keys"
#: The UI previews of the run's images, kept for the next run, relative to the work directory.
PREVIEWS_DIR = f"{RECORDS_DIR}/previews"
#: Exact copies of what a run was given, relative to the work directory.
SUBMITTED_DIR = f"{RECORDS_DIR}/submitted"
#: What the copies are (kind, files and their sha256...), relative to the work directory.
SUBMITTED_MANIFEST_FILE = f"{SUBMITTED_DIR}/submitted.json"
#: An archive's list of its files and their sha256 (written into the zip, not the work directory).
ARCHIVE_MANIFEST_FILE = f"{RECORDS_DIR}/archive.json"
#: Folders that hold bookkeeping, never a step's inputs or outputs (also Python's bytecode caches).
BOOKKEEPING_DIRS = frozenset({RECORDS_DIR, STEP_PRIVATE_DIR, "__pycache__"})


@dataclass(frozen=True)
class WorkdirLayout:
    """Every path of one work directory.

    ``root`` is resolved on construction, so paths compare reliably.
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root).resolve())

    @property
    def records(self) -> Path:
        """``_mltoolkit/``: the toolkit's records of this work directory."""
        return self.root / RECORDS_DIR

    @property
    def run_record(self) -> Path:
        """``_mltoolkit/run.json``."""
        return self.root / RUN_RECORD_FILE

    @property
    def run_log(self) -> Path:
        """``_mltoolkit/run.log``: the full log of the last command that ran a flow here."""
        return self.root / RUN_LOG_FILE

    @property
    def lock(self) -> Path:
        """``_mltoolkit/lock``."""
        return self.root / LOCK_FILE

    @property
    def cache(self) -> Path:
        """``_mltoolkit/cache/``: Prefect's stored results of cached steps."""
        return self.root / CACHE_DIR

    @property
    def cache_keys(self) -> Path:
        """``_mltoolkit/cache-keys/``: what the steps' last stored keys covered."""
        return self.root / KEYS_DIR

    def step_key(self, step_id: str) -> Path:
        """``_mltoolkit/cache-keys/steps/<digest of step_id>.json``: one step's last stored key and its parts.

        Named by a digest because a step's id (``/map/0/stage1``) is no file name.
        """
        return self.cache_keys / "steps" / f"{hashlib.sha256(step_id.encode()).hexdigest()[:32]}.json"

    def code_files(self, digest: str) -> Path:
        """``_mltoolkit/cache-keys/code/<digest>.json``: the per-file sha256 of one version of the toolkit's code."""
        return self.cache_keys / "code" / f"{digest}.json"

    @property
    def cache_reasons(self) -> Path:
        """``_mltoolkit/cache-keys/reasons.jsonl``: why each step of the current run ran or was reused."""
        return self.cache_keys / "reasons.jsonl"

    @property
    def pruned_results(self) -> Path:
        """``_mltoolkit/cache-keys/pruned.json``: the stored results the last run dropped, and why."""
        return self.cache_keys / "pruned.json"

    @property
    def submitted(self) -> Path:
        """``_mltoolkit/submitted/``: exact copies of what the run was given."""
        return self.root / SUBMITTED_DIR

    @property
    def submitted_manifest(self) -> Path:
        """``_mltoolkit/submitted/submitted.json``: what the copies are, with their sha256."""
        return self.root / SUBMITTED_MANIFEST_FILE

    @property
    def archive_manifest(self) -> Path:
        """``_mltoolkit/archive.json``: where an archive (once extracted) lists its files' sha256."""
        return self.root / ARCHIVE_MANIFEST_FILE

    @property
    def init(self) -> Path:
        """``init/``: the files of yadage's init step."""
        return self.root / INIT_DIR

    @property
    def crate(self) -> Path:
        """``ro-crate-metadata.json``."""
        return self.root / CRATE_FILE

    def reproduction(self, suffix: str) -> Path:
        """``_mltoolkit/reproduction.<suffix>`` (``json``, ``md``): the report of ``reproduce``."""
        return self.records / f"reproduction.{suffix}"

    @property
    def reproduction_diffs(self) -> Path:
        """``_mltoolkit/reproduction-diffs/``: difference images of figures, beside the report."""
        return self.records / "reproduction-diffs"

    def preview(self, image: str | os.PathLike[str]) -> Path:
        """``_mltoolkit/previews/<hash of the image's path>.json``: the UI preview of an image, with its sha256."""
        return self.root / PREVIEWS_DIR / f"{hashlib.sha256(os.fsencode(image)).hexdigest()[:32]}.json"

    def picture(self, suffix: str) -> Path:
        """``_mltoolkit/workflow.<suffix>`` (``png``, ``svg``, ``dot``)."""
        return self.records / f"workflow.{suffix}"

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the work directory (POSIX) when inside it, else absolute."""
        resolved = Path(path).resolve()
        return resolved.relative_to(self.root).as_posix() if resolved.is_relative_to(self.root) else str(resolved)


def step_private_dir(step_dir: str | os.PathLike[str]) -> Path:
    """``<step folder>/_packtivity/``: a step's command, script and log."""
    return Path(step_dir) / STEP_PRIVATE_DIR


def _within(root: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` as given, with a relative one taken relative to the work directory ``root``."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate


def inside_workdir(
    root: str | os.PathLike[str], path: str | os.PathLike[str], *, what: str = "path", root_resolved: bool = False
) -> Path:
    """``path`` resolved, after checking it lies strictly inside the work directory ``root``.

    A relative ``path`` is relative to ``root``. Symbolic links are resolved
    first, so a link cannot lead a deletion out of the work directory.
    ``root_resolved``: ``root`` is already resolved (it came from this function
    or :meth:`pathlib.Path.resolve`), which saves resolving it again.

    Raises:
        WorkdirError: ``path`` is the work directory itself or outside it.
    """
    base = Path(root) if root_resolved else Path(root).resolve()
    resolved = _within(base, path).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise WorkdirError(
            f"{what} {str(path)!r} resolves to {str(resolved)!r}, which is not strictly inside the work directory "
            f"{str(base)!r}; the toolkit only creates and removes files inside it"
        )
    return resolved


def remove_tree(root: str | os.PathLike[str], path: str | os.PathLike[str], *, what: str = "folder") -> None:
    """Remove ``path`` (a folder or a file) if it exists, only when it lies inside ``root``.

    A relative ``path`` is relative to ``root``. A symbolic link is removed
    itself, never followed, when the folder holding it is inside ``root``.

    Raises:
        WorkdirError: ``path`` is the work directory itself or outside it.
    """
    base = Path(root).resolve()
    target = _within(base, path)
    if target.is_symlink():
        if not target.parent.resolve().is_relative_to(base):
            inside_workdir(base, target, what=what, root_resolved=True)  # raises, naming the path
        target.unlink()
        return
    resolved = inside_workdir(base, target, what=what, root_resolved=True)
    if resolved.is_dir():
        shutil.rmtree(resolved)
    elif resolved.exists():
        resolved.unlink()
