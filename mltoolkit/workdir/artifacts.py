"""Intermediate files: atomic writes, sha256 sidecars, the run's lineage and checked unpickling.

Every file the toolkit writes goes to a temporary file in the same folder and is
renamed into place, so a crash never leaves a half-written file under the final
name. Pickles get a ``<file>.sha256`` sidecar (``sha256sum`` format) written after
the pickle itself; :func:`load_pickle` checks the content against it (or against a
hash the caller recorded) before unpickling anything.

A sidecar lies next to its pickle, so whoever can replace one can replace both.
Inside a run, a step is therefore also told the sha256 each upstream file had
when the step that wrote it finished (the run's *lineage*, in the environment
variable :data:`LINEAGE_ENV`, :func:`lineage_environment`); a pickle in the work
directory is then loaded only with that hash (:func:`lineage_sha256`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from mltoolkit.errors import ArtifactError, HashingTimeoutError, IntegrityError
from mltoolkit.workdir.layout import INIT_DIR

__all__ = [
    "LINEAGE_ENV",
    "FileHasher",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "lineage_environment",
    "lineage_sha256",
    "load_pickle",
    "read_sidecar",
    "save_pickle",
    "sha256_bytes",
    "sha256_file",
    "sidecar_path",
]

SIDECAR_SUFFIX = ".sha256"
_HASH_CHUNK = 1 << 20
#: The environment variable holding a step's lineage (JSON, or the path of a JSON file).
LINEAGE_ENV = "MLTOOLKIT_LINEAGE"
#: Lineages longer than this travel in a file (an environment variable must stay well below 128 kB).
_INLINE_LINEAGE = 32 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FileHasher:
    """sha256 of regular files, optionally within a deadline (``time.monotonic()`` value).

    Only regular files are ever opened: the type is checked with ``stat`` before
    opening and with ``fstat`` after (opened non-blocking, so a FIFO that took a
    file's place cannot block). Digests are remembered per process by device,
    inode, size and modification time, so a file several steps read is read once.
    """

    _known: ClassVar[dict[tuple[int, int, int, int], str]] = {}

    def __init__(self, deadline: float | None = None, timeout: float | None = None) -> None:
        self.deadline = deadline
        self.timeout = timeout

    @classmethod
    def within(cls, timeout: float | None) -> FileHasher:
        """A hasher whose deadline is ``timeout`` seconds from now (``None``: no deadline)."""
        return cls(time.monotonic() + timeout if timeout else None, timeout)

    def check_deadline(self, path: str | os.PathLike[str]) -> None:
        """Raise :class:`HashingTimeoutError` naming ``path`` when the deadline has passed."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise HashingTimeoutError(
                f"hashing {os.fspath(path)} did not finish within the step timeout ({self.timeout or 0:g} s)"
            )

    def digest(self, path: str | os.PathLike[str]) -> str | None:
        """sha256 of ``path``'s content (links followed); ``None`` unless it is a readable regular file.

        Raises:
            HashingTimeoutError: the deadline passed before the file was read.
        """
        self.check_deadline(path)
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        memo = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        known = self._known.get(memo)
        if known is not None:
            return known
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:  # unreadable (permissions) or gone
            return None
        with os.fdopen(descriptor, "rb", buffering=0) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            content = hashlib.sha256()
            while chunk := handle.read(_HASH_CHUNK):
                content.update(chunk)
                self.check_deadline(path)
        digest = content.hexdigest()
        self._known[memo] = digest
        return digest


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, folder_exists: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    ``path``'s folder is created unless the caller knows it exists (``folder_exists``).
    """
    target = Path(path)
    if not folder_exists:
        target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o644)
        os.replace(temporary_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (fsynced temp file + rename); return its sha256."""
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return sha256_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> str:
    """Write UTF-8 ``text`` atomically; return its sha256."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> str:
    """Write ``value`` as indented JSON atomically; return its sha256."""
    return atomic_write_text(path, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the sha256 sidecar of ``path`` lives."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike[str]) -> str | None:
    """The sha256 recorded in ``path``'s sidecar, or ``None`` if there is none."""
    sidecar = sidecar_path(path)
    try:
        text = sidecar.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    digest = text.split()[0] if text else ""
    if len(digest) != 64:
        raise IntegrityError(
            f"{sidecar}: malformed sha256 sidecar {text[:80]!r}; delete {path} and its "
            "sidecar and re-run the step that writes it"
        )
    return digest


def save_pickle(obj: Any, path: str | os.PathLike[str]) -> str:
    """Pickle ``obj`` with cloudpickle to ``path`` atomically, write its sidecar; return sha256."""
    import cloudpickle

    buffer = io.BytesIO()
    cloudpickle.dump(obj, buffer)
    data = buffer.getvalue()
    digest = atomic_write_bytes(path, data)
    atomic_write_text(sidecar_path(path), f"{digest}  {Path(path).name}\n")
    return digest


def load_pickle(
    path: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    require_hash: bool = False,
) -> Any:
    """Unpickle ``path`` after checking its content hash.

    The hash to check is ``expected_sha256`` when given, else the file's sidecar.

    Args:
        path: the pickle file.
        expected_sha256: hash recorded when the file was written.
        require_hash: refuse files with no known hash at all (no argument, no sidecar).

    Raises:
        ArtifactError: the file is missing or unreadable, or has no known hash
            while ``require_hash`` is set.
        IntegrityError: the content differs from the known hash, or the file is
            truncated / not a pickle.
    """
    import pickle

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: intermediate file does not exist; re-run the step that writes it") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror})") from None
    known = expected_sha256 or read_sidecar(path)
    if known is None and require_hash:
        raise ArtifactError(
            f"{path}: no known sha256 for this pickle (no {SIDECAR_SUFFIX} sidecar, not in the "
            "run record); refusing to unpickle a file of unknown origin"
        )
    if known is not None:
        actual = sha256_bytes(data)
        if actual != known:
            raise IntegrityError(
                f"{path}: sha256 is {actual}, expected {known} as recorded when it was "
                "written; the file was modified or truncated: re-run the step that writes it"
            )
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise IntegrityError(
            f"{path}: not a readable pickle ({type(exc).__name__}); the file is truncated "
            "or corrupt: re-run the step that writes it"
        ) from None


def lineage_environment(
    root: str | os.PathLike[str],
    files: dict[str, str],
    own: str | os.PathLike[str],
    spill: str | os.PathLike[str],
) -> dict[str, str]:
    """The environment telling a step's scripts the sha256 of each file its upstream steps wrote in this run.

    ``files`` maps work-directory-relative paths to sha256; ``own`` is the step's
    own folder (emptied before it runs: what is in it, the step wrote itself). A
    long lineage is written to ``spill`` and the variable names that file.
    """
    base = Path(root).resolve()
    text = json.dumps({"root": str(base), "own": str(Path(own).resolve()), "files": files})
    if len(text) <= _INLINE_LINEAGE:
        return {LINEAGE_ENV: text}
    atomic_write_text(spill, text)
    return {LINEAGE_ENV: os.fspath(spill)}


def _lineage(value: str) -> tuple[Path, Path, dict[str, str]]:
    text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
    content = json.loads(text)
    files = {str(key): str(digest) for key, digest in content["files"].items()}
    return Path(content["root"]), Path(content["own"]), files


def lineage_sha256(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> str | None:
    """The sha256 this run's lineage records for ``path``.

    ``None`` when no lineage is given (a step run on its own), when ``path`` is
    a named input -- outside the work directory or in its ``init/`` folder -- or
    in the step's own folder (written by the step itself): then its sidecar vouches for it.

    Raises:
        ArtifactError: ``path`` is in the work directory but no upstream step wrote
            it in this run, or the lineage cannot be read.
    """
    value = (os.environ if environ is None else environ).get(LINEAGE_ENV)
    if not value:
        return None
    try:
        root, own, files = _lineage(value)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ArtifactError(
            f"{LINEAGE_ENV}: cannot read the run's lineage; run the step through its workflow"
        ) from None
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root) or real.is_relative_to(root / INIT_DIR) or real.is_relative_to(own):
        return None
    relative = real.relative_to(root).as_posix()
    if relative not in files:
        raise ArtifactError(
            f"{path}: no step this one depends on wrote this file in this run (it is not in the run's lineage); "
            "refusing to unpickle a file of unknown origin: remove it, or re-run the step that should write it"
        )
    return files[relative]
