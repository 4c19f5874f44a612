"""Datasets: locate (path, ``file://``, ``http(s)://``, known registry entry), fetch and parse.

A dataset file is a whitespace-separated text table with a header line and three
columns: x, y and an integer class label (the seed's ``moon.txt`` format).

Known datasets are registered by URL with their sha256: the seed's Dropbox URL
resolves to the copy shipped inside this package, so preserved inputs files run
offline. Any other URL is fetched with pooch into a cache folder and checked
against a sha256 when one is given.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from mltoolkit.errors import (
    ChecksumMismatchError,
    DatasetDownloadError,
    DatasetError,
    DatasetNotFoundError,
)
from mltoolkit.workdir.artifacts import sha256_file

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "KNOWN_DATASETS",
    "MIN_ROWS",
    "KnownDataset",
    "bundled_dataset_path",
    "cache_dir",
    "known_dataset_file",
    "load_table",
    "resolve_dataset",
    "sha256_of",
]

#: Fewest rows a dataset may have: the split keeps 60 % for training and each
#: side needs both classes.
MIN_ROWS = 10


@dataclass(frozen=True)
class KnownDataset:
    """A dataset the toolkit knows by URL, with its content hash and bundled copy."""

    name: str
    url: str
    sha256: str
    bundled_file: str


MOON_SHA256 = "a96b6caabcf92894c2f38f471fb95b03a332fdcfe51a0254b5f0d37e72c288ba"

#: URL (as written in preserved inputs files) -> known dataset.
KNOWN_DATASETS: dict[str, KnownDataset] = {
    entry.url: entry
    for entry in [
        KnownDataset(
            name="moon",
            url="https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1",
            sha256=MOON_SHA256,
            bundled_file="moon.txt",
        ),
    ]
}


#: Hex sha256 of a file's content (the one implementation lives in mltoolkit.workdir.artifacts).
sha256_of = sha256_file


def bundled_dataset_path(filename: str) -> Path:
    """Path of a dataset shipped as package data (works in wheels and editable installs)."""
    return Path(str(resources.files("mltoolkit.analysis.datasets").joinpath(filename)))


def cache_dir() -> Path:
    """Folder where downloaded datasets are kept (``MLTOOLKIT_CACHE`` or the user cache)."""
    configured = os.environ.get("MLTOOLKIT_CACHE")
    if configured:
        return Path(configured)
    import pooch

    return Path(pooch.os_cache("mltoolkit"))


def _normalise_url(url: str) -> str:
    return url.strip()


def _check_sha256(path: Path, expected: str | None, source: str) -> None:
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumMismatchError(
            f"dataset {source}: sha256 is {actual}, expected {expected}; "
            "the file changed or the expected hash is wrong: fix the 'sha256' value "
            "or point 'dataset' at the right file"
        )


def known_dataset_file(url: str) -> Path | None:
    """The bundled copy of the dataset known by ``url`` (its sha256 checked); ``None`` for any other text.

    Raises:
        ChecksumMismatchError: the bundled copy does not have the registered content.
    """
    known = KNOWN_DATASETS.get(_normalise_url(url))
    if known is None:
        return None
    path = bundled_dataset_path(known.bundled_file)
    _check_sha256(path, known.sha256, url)
    return path


def _download(url: str, sha256: str | None) -> Path:
    import pooch

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." notice is not an error line
    known_hash = f"sha256:{sha256}" if sha256 else None
    try:
        fetched = pooch.retrieve(
            url=url,
            known_hash=known_hash,
            path=cache_dir(),
            progressbar=False,
        )
    except ValueError as exc:  # pooch's hash mismatch
        if "hash" in str(exc).lower():
            raise ChecksumMismatchError(
                f"dataset {url}: downloaded content does not match sha256 {sha256}; check the URL or the 'sha256' value"
            ) from None
        raise DatasetDownloadError(
            f"dataset {url}: cannot download ({exc}); pass a local copy with -p dataset=PATH"
        ) from None
    except Exception as exc:  # requests/pooch raise many network error types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetDownloadError(
            f"dataset {url}: cannot download ({type(exc).__name__}: {reason}); "
            "without network, pass a local copy with -p dataset=PATH"
        ) from None
    return Path(fetched)


def resolve_dataset(
    dataset: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> Path:
    """Turn a dataset reference into a local file path.

    Args:
        dataset: a path (relative paths resolve against ``base_dir``), a
            ``file://`` URL, an ``http(s)://`` URL, or a URL in
            :data:`KNOWN_DATASETS` (resolved to the bundled copy, no network).
        base_dir: folder relative paths are resolved against (default: the
            current directory).
        sha256: expected hex digest of the file; checked when given.

    Returns:
        The path of a readable local file.

    Raises:
        DatasetNotFoundError: the path does not exist.
        DatasetDownloadError: a URL cannot be fetched.
        ChecksumMismatchError: the content does not match ``sha256``.
    """
    text = os.fspath(dataset)
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        known = KNOWN_DATASETS.get(_normalise_url(text))
        if known is not None:
            if sha256 and sha256.lower() != known.sha256:
                raise ChecksumMismatchError(
                    f"dataset {text}: known content has sha256 {known.sha256}, expected "
                    f"{sha256}; fix the 'sha256' value"
                )
            path = bundled_dataset_path(known.bundled_file)
            _check_sha256(path, known.sha256, text)
            return path
        return _download(text, sha256)
    if scheme == "file":
        path = Path(unquote(parsed.path))
    elif scheme and len(scheme) > 1:
        raise DatasetError(
            f"dataset {text!r}: unsupported URL scheme {scheme!r}; expected a path, file://, http:// or https://"
        )
    else:
        path = Path(text).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
    if not path.exists():
        raise DatasetNotFoundError(
            f"dataset {text!r}: file {path} does not exist; pass an existing file with -p dataset=PATH"
        )
    if path.is_dir():
        raise DatasetError(f"dataset {text!r}: {path} is a directory, expected a text file")
    _check_sha256(path, sha256, text)
    return path


def load_table(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a dataset table: header line, then rows of ``x y label``.

    Returns:
        ``(X, y)``: an ``(n, 2)`` float array and an ``(n,)`` integer array.

    Raises:
        DatasetError: unreadable, wrong column count, non-numeric values, too
            few rows, or fewer than two classes; the message names the line.
    """
    import numpy as np

    path = Path(path)
    lines = _read_lines(path)
    rows: list[tuple[float, float]] = []
    labels: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        parsed = _parse_row(path, number, line)
        if parsed is not None:
            x_value, y_value, label = parsed
            rows.append((x_value, y_value))
            labels.append(label)
    if len(rows) < MIN_ROWS:
        raise DatasetError(f"dataset {path}: {len(rows)} data rows, expected at least {MIN_ROWS}")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DatasetError(f"dataset {path}: only one class ({classes[0]}) in the label column, expected at least two")
    return np.asarray(rows, dtype=float), np.asarray(labels, dtype=int)


def _read_lines(path: Path) -> list[str]:
    """The table's lines, header included."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(
            f"dataset {path}: not a UTF-8 text table; expected a header line and rows of 'x y label'"
        ) from None
    except PermissionError:
        raise DatasetError(f"dataset {path}: permission denied; make the file readable") from None
    except OSError as exc:
        raise DatasetError(f"dataset {path}: cannot read ({exc.strerror})") from None
    lines = text.splitlines()
    if not lines:
        raise DatasetError(f"dataset {path}: file is empty; expected a header line and rows of 'x y label'")
    return lines


def _parse_row(path: Path, number: int, line: str) -> tuple[float, float, int] | None:
    """``(x, y, label)`` of line ``number``, ``None`` for a blank line."""
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 3:
        raise DatasetError(f"dataset {path}, line {number}: found {len(fields)} columns, expected 3 (x y label)")
    try:
        x_value, y_value, label_value = float(fields[0]), float(fields[1]), float(fields[2])
    except ValueError:
        raise DatasetError(
            f"dataset {path}, line {number}: non-numeric value in {line.strip()!r}; expected numbers 'x y label'"
        ) from None
    if not all(math.isfinite(value) for value in (x_value, y_value, label_value)):
        raise DatasetError(f"dataset {path}, line {number}: non-finite value in {line.strip()!r}")
    if label_value != int(label_value):
        raise DatasetError(f"dataset {path}, line {number}: label {fields[2]!r} is not an integer")
    return x_value, y_value, int(label_value)
