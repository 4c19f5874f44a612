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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.analysis.classifiers import ClassifierSpec
from mltoolkit.analysis.inputs import RunInputs
from mltoolkit.analysis.results import write_model_summary
from mltoolkit.workdir.artifacts import atomic_write_json, load_pickle, save_pickle, sha256_file

__all__ = [
    "DATA_PREP_DIR",
    "FIGURE_FILE",
    "MERGE_DIR",
    "PREPPED_FILE",
    "SCORES_FILE",
    "ClassificationOutput",
    "FileRef",
    "MergeOutput",
    "check_inputs",
    "classification_dir",
    "classification_step",
    "merge_step",
    "prepare_data_step",
    "run_sequential",
]

DATA_PREP_DIR = "data_prep"
MERGE_DIR = "merge_and_visualize"
PREPPED_FILE = "prepped_data.pkl"
FIGURE_FILE = "ml_results.png"
SCORES_FILE = "scores.json"


@dataclass(frozen=True)
class FileRef:
    """A file a step wrote, with the sha256 of its content at that time.

    ``path`` is relative to the work directory (POSIX separators) when the file
    is inside it, so references stay valid when a work directory is moved or
    copied to another machine; otherwise it is absolute.
    """

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | os.PathLike[str], workdir: str | os.PathLike[str], sha256: str | None = None) -> FileRef:
        """Reference ``path`` (hashing its current content unless ``sha256`` is given)."""
        absolute = Path(path).resolve()
        root = Path(workdir).resolve()
        stored = absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(absolute)
        return cls(stored, sha256 or sha256_file(absolute))

    def resolve(self, workdir: str | os.PathLike[str]) -> Path:
        """The file's absolute path for a work directory."""
        path = Path(self.path)
        return path if path.is_absolute() else Path(workdir).resolve() / path

    def load(self, workdir: str | os.PathLike[str]) -> Any:
        """Unpickle the file after checking its content against :attr:`sha256`."""
        return load_pickle(self.resolve(workdir), expected_sha256=self.sha256)


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
    """Run :func:`~mltoolkit.analysis.ml.data_prep`; save ``WORKDIR/data_prep/prepped_data.pkl``."""
    from mltoolkit.analysis.ml import data_prep

    prepped = data_prep(dataset, sha256=dataset_sha256)
    path = Path(workdir).resolve() / DATA_PREP_DIR / PREPPED_FILE
    return FileRef.of(path, workdir, save_pickle(prepped, path))


def classification_step(
    prepped: FileRef,
    classifier: ClassifierSpec | str,
    workdir: str | os.PathLike[str],
    index: int,
) -> ClassificationOutput:
    """Run :func:`~mltoolkit.analysis.ml.classify`; save ``WORKDIR/classification_<index>/<name>.pkl``."""
    from mltoolkit.analysis.ml import classify
    from mltoolkit.analysis.plotting import decision_surface, mesh_for

    data = prepped.load(workdir)
    result = classify(data, classifier)
    result.surface = decision_surface(result.estimator, *mesh_for(data.X))
    path = classification_dir(Path(workdir).resolve(), index) / f"{result.name}.pkl"
    digest = save_pickle(result, path)
    write_model_summary(path, result, data)
    return ClassificationOutput(
        name=result.name, index=index, score=result.score, result=FileRef.of(path, workdir, digest)
    )


def merge_step(
    prepped: FileRef,
    classifications: Sequence[ClassificationOutput],
    workdir: str | os.PathLike[str],
) -> MergeOutput:
    """Draw the figure to ``WORKDIR/merge_and_visualize/ml_results.png``; write ``scores.json``."""
    from mltoolkit.analysis.ml import merge_and_plot

    workdir = Path(workdir).resolve()
    results = [output.result.load(workdir) for output in classifications]
    figure = merge_and_plot(prepped.load(workdir), results, workdir / MERGE_DIR / FIGURE_FILE)
    scores_path = workdir / SCORES_FILE
    scores_digest = atomic_write_json(scores_path, {output.name: output.score for output in classifications})
    return MergeOutput(figure=FileRef.of(figure, workdir), scores=FileRef.of(scores_path, workdir, scores_digest))


def run_sequential(inputs: RunInputs, workdir: str | os.PathLike[str]) -> dict[str, float]:
    """The whole analysis as plain sequential calls, no orchestration; returns the scores."""
    prepped = prepare_data_step(inputs.dataset, workdir, dataset_sha256=inputs.dataset_sha256)
    outputs = [classification_step(prepped, spec, workdir, index) for index, spec in enumerate(inputs.classifiers)]
    merge_step(prepped, outputs, workdir)
    return {output.name: output.score for output in outputs}


def check_inputs(inputs: RunInputs) -> None:
    """Check everything about ``inputs`` that can fail, before any step writes a file.

    Resolves (and, for URLs, fetches) the dataset and parses it, and builds every
    classifier once.

    Raises:
        DatasetError, ClassifierConfigError: with a one-line message.
    """
    from mltoolkit.analysis.classifiers import build_estimator
    from mltoolkit.analysis.data import load_table, resolve_dataset

    load_table(resolve_dataset(inputs.dataset, sha256=inputs.dataset_sha256))
    for spec in inputs.classifiers:
        build_estimator(spec)
