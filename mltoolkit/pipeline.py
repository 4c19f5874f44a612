"""The native workflow's steps as file-producing functions (yadage's workdir layout).

Each step reads its inputs from files, does one part of the analysis and writes
its output where yadage would: ``WORKDIR/data_prep/prepped_data.pkl``,
``WORKDIR/classification_<i>/<name>.pkl``, ``WORKDIR/merge_and_visualize/ml_results.png``
and ``WORKDIR/scores.json``. Steps hand each other :class:`FileRef` values (path +
sha256) rather than Python objects, the way yadage steps publish files: a step
can run in another process, a later run can reuse a file, and nothing is
unpickled without its hash being checked.

The Prefect flow wraps these functions as tasks; :func:`run_sequential` calls
them in a plain loop (the baseline the benchmarks compare against).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mltoolkit.artifacts import atomic_write_json, load_pickle, save_pickle, sha256_file
from mltoolkit.classifiers import ClassifierSpec
from mltoolkit.inputs import RunInputs

__all__ = [
    "DATA_PREP_DIR",
    "MERGE_DIR",
    "PREPPED_FILE",
    "FIGURE_FILE",
    "SCORES_FILE",
    "FileRef",
    "ClassificationOutput",
    "MergeOutput",
    "classification_dir",
    "prepare_data_step",
    "classification_step",
    "merge_step",
    "run_sequential",
    "check_inputs",
]

DATA_PREP_DIR = "data_prep"
MERGE_DIR = "merge_and_visualize"
PREPPED_FILE = "prepped_data.pkl"
FIGURE_FILE = "ml_results.png"
SCORES_FILE = "scores.json"


@dataclass(frozen=True)
class FileRef:
    """A file a step wrote, with the sha256 of its content at that time."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> "FileRef":
        """Reference an existing file (hashing its current content)."""
        return cls(str(Path(path).resolve()), sha256_file(path))

    def load(self) -> Any:
        """Unpickle the file after checking its content against :attr:`sha256`."""
        return load_pickle(self.path, expected_sha256=self.sha256)


@dataclass(frozen=True)
class ClassificationOutput:
    """What one classification step produced: the pickled result and its score."""

    name: str
    index: int
    score: float
    result: FileRef


@dataclass(frozen=True)
class MergeOutput:
    """What the merge step produced: the figure and the scores file."""

    figure: FileRef
    scores: FileRef


def classification_dir(workdir: str | os.PathLike[str], index: int) -> Path:
    """``WORKDIR/classification_<index>``, yadage's folder for step ``index`` of the stage."""
    return Path(workdir) / f"classification_{index}"


def prepare_data_step(
    dataset: str,
    workdir: str | os.PathLike[str],
    *,
    dataset_sha256: str | None = None,
) -> FileRef:
    """Run :func:`~mltoolkit.ml.data_prep`; save ``WORKDIR/data_prep/prepped_data.pkl``."""
    from mltoolkit.ml import data_prep

    prepped = data_prep(dataset, sha256=dataset_sha256)
    path = Path(workdir).resolve() / DATA_PREP_DIR / PREPPED_FILE
    return FileRef(str(path), save_pickle(prepped, path))


def classification_step(
    prepped: FileRef,
    classifier: ClassifierSpec | str,
    workdir: str | os.PathLike[str],
    index: int,
) -> ClassificationOutput:
    """Run :func:`~mltoolkit.ml.classify`; save ``WORKDIR/classification_<index>/<name>.pkl``."""
    from mltoolkit.ml import classify
    from mltoolkit.plotting import decision_surface, mesh_for

    data = prepped.load()
    result = classify(data, classifier)
    result.surface = decision_surface(result.estimator, *mesh_for(data.X))
    path = classification_dir(Path(workdir).resolve(), index) / f"{result.name}.pkl"
    return ClassificationOutput(
        name=result.name, index=index, score=result.score, result=FileRef(str(path), save_pickle(result, path))
    )


def merge_step(
    prepped: FileRef,
    classifications: Sequence[ClassificationOutput],
    workdir: str | os.PathLike[str],
) -> MergeOutput:
    """Draw the figure to ``WORKDIR/merge_and_visualize/ml_results.png``; write ``scores.json``."""
    from mltoolkit.ml import merge_and_plot

    workdir = Path(workdir).resolve()
    results = [output.result.load() for output in classifications]
    figure = merge_and_plot(prepped.load(), results, workdir / MERGE_DIR / FIGURE_FILE)
    scores_path = workdir / SCORES_FILE
    scores_digest = atomic_write_json(scores_path, {output.name: output.score for output in classifications})
    return MergeOutput(figure=FileRef.of(figure), scores=FileRef(str(scores_path), scores_digest))


def run_sequential(inputs: RunInputs, workdir: str | os.PathLike[str]) -> dict[str, float]:
    """The whole analysis as plain sequential calls, no orchestration; returns the scores."""
    prepped = prepare_data_step(inputs.dataset, workdir, dataset_sha256=inputs.dataset_sha256)
    outputs = [
        classification_step(prepped, spec, workdir, index)
        for index, spec in enumerate(inputs.classifiers)
    ]
    merge_step(prepped, outputs, workdir)
    return {output.name: output.score for output in outputs}


def check_inputs(inputs: RunInputs) -> None:
    """Check everything about ``inputs`` that can fail, before any step writes a file.

    Resolves (and, for URLs, fetches) the dataset and parses it, and builds every
    classifier once.

    Raises:
        DatasetError, ClassifierConfigError: with a one-line message.
    """
    from mltoolkit.classifiers import build_estimator
    from mltoolkit.data import load_table, resolve_dataset

    load_table(resolve_dataset(inputs.dataset, sha256=inputs.dataset_sha256))
    for spec in inputs.classifiers:
        build_estimator(spec)
