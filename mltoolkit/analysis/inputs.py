"""The native workflow's inputs: ``inputs.yml`` plus ``-p key=value`` overrides.

Schema::

    dataset: data/moon.txt          # path (relative to the inputs file), file:// or http(s):// URL
    dataset_sha256: 9f86d0...       # optional: expected sha256 of the dataset file
    classifiers:                    # non-empty list of names or {name, estimator, params}
      - nearest_neighbours
      - {name: forest, estimator: sklearn.ensemble.RandomForestClassifier, params: {n_estimators: 50}}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.analysis.classifiers import ClassifierSpec, parse_classifier
from mltoolkit.errors import InputsError, MLToolkitError
from mltoolkit.limits import check_inputs_size
from mltoolkit.yamlfiles import read_yaml

__all__ = ["ALLOWED_KEYS", "RunInputs", "load_inputs", "parse_inputs"]

ALLOWED_KEYS = ("dataset", "dataset_sha256", "classifiers")


@dataclass(frozen=True)
class RunInputs:
    """Validated inputs of the native workflow.

    Attributes:
        dataset: path or URL; relative paths already resolved against ``base_dir``.
        classifiers: what to train, in order.
        dataset_sha256: expected sha256 of the dataset, if given.
        base_dir: folder of the inputs file (relative paths resolve against it).
    """

    dataset: str
    classifiers: tuple[ClassifierSpec, ...]
    dataset_sha256: str | None = None
    base_dir: str = field(default=".")

    def as_parameters(self) -> dict[str, Any]:
        """Plain values for a flow's parameters (JSON-serialisable)."""
        return {
            "dataset": self.dataset,
            "dataset_sha256": self.dataset_sha256,
            "classifiers": [
                spec.name
                if spec.estimator is None
                else {"name": spec.name, "estimator": spec.estimator, "params": dict(spec.params)}
                for spec in self.classifiers
            ],
        }


def _is_url(text: str) -> bool:
    return "://" in text


@dataclass(frozen=True)
class _Origin:
    """Where the inputs came from, to name the right place in a message."""

    source: str
    overridden: frozenset[str]

    def of(self, key: str) -> str:
        """``-p KEY`` when an override gave ``key``, else ``SOURCE: key 'KEY'``."""
        return f"-p {key}" if key in self.overridden else f"{self.source}: key {key!r}"


def parse_inputs(
    raw: Any,
    *,
    source: str = "inputs",
    base_dir: str | os.PathLike[str] = ".",
    overrides: Mapping[str, Any] | None = None,
) -> RunInputs:
    """Validate a parsed inputs mapping (plus overrides) into :class:`RunInputs`.

    Raises:
        InputsError: a missing or unknown key, or a value of the wrong type; the
            message names ``source`` and the key.
        LimitExceededError: the inputs are larger than a flow run's parameters may be.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InputsError(
            f"{source}: found {type(raw).__name__}, expected a mapping with keys {', '.join(ALLOWED_KEYS)}"
        )
    origin = _Origin(source, frozenset(overrides or {}))
    values = {**raw, **(overrides or {})}
    check_inputs_size(values, source)
    _check_keys(values, origin)
    dataset = _dataset(values["dataset"], origin, base_dir)
    sha256 = _sha256(values.get("dataset_sha256"), origin)
    return RunInputs(
        dataset=dataset,
        classifiers=_classifiers(values["classifiers"], origin),
        dataset_sha256=sha256,
        base_dir=str(Path(base_dir).resolve()),
    )


def _check_keys(values: Mapping[Any, Any], origin: _Origin) -> None:
    unknown = sorted(set(values) - set(ALLOWED_KEYS), key=str)
    if unknown:
        where = "-p" if set(map(str, unknown)) & origin.overridden else origin.source
        raise InputsError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(ALLOWED_KEYS)}"
        )
    for key in ("dataset", "classifiers"):
        if key not in values or values[key] in (None, ""):
            raise InputsError(f"{origin.source}: missing key {key!r}; add it to the file or pass -p {key}=...")


def _dataset(dataset: Any, origin: _Origin, base_dir: str | os.PathLike[str]) -> str:
    """The dataset as a URL or an absolute path (a relative one resolves against the inputs file's folder)."""
    if not isinstance(dataset, (str, os.PathLike)):
        raise InputsError(
            f"{origin.of('dataset')}: found {type(dataset).__name__} {dataset!r}, expected a path or URL string"
        )
    dataset = os.fspath(dataset)
    # A -p value was typed where the command runs, so it is relative to there.
    base = Path.cwd() if "dataset" in origin.overridden else Path(base_dir)
    if not _is_url(dataset) and not Path(dataset).expanduser().is_absolute():
        dataset = str((base / dataset).resolve())
    return dataset


def _sha256(sha256: Any, origin: _Origin) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise InputsError(f"{origin.source}: key 'dataset_sha256': found {sha256!r}, expected 64 hex digits")
    return sha256.lower()


def _classifiers(entries: Any, origin: _Origin) -> tuple[ClassifierSpec, ...]:
    where = origin.of("classifiers")
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise InputsError(f"{where}: found {entries!r}, expected a non-empty list of classifier names")
    specs: list[ClassifierSpec] = []
    for index, entry in enumerate(entries):
        try:
            specs.append(parse_classifier(entry, where=f"classifiers[{index}]"))
        except MLToolkitError as exc:
            raise InputsError(f"{where}[{index}]: {exc}") from None
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputsError(
            f"{where}: {', '.join(map(repr, duplicates))} listed more than once; "
            "each classifier needs a unique name (it names its output file)"
        )
    return tuple(specs)


def load_inputs(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any] | None = None,
) -> RunInputs:
    """Read ``path`` (may be ``None`` when overrides give everything) and validate it."""
    if path is None:
        return parse_inputs({}, source="-p", base_dir=Path.cwd(), overrides=overrides)
    path = Path(path)
    raw = read_yaml(path, what="inputs file")
    return parse_inputs(raw, source=f"inputs file {path}", base_dir=path.parent, overrides=overrides)
