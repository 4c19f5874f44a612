"""Step 2 of the seed's workflow: train one classifier on the prepped data, pickle the result.

Usage (the seed's command line)::

    python classification.py --prepped_data PATH --classifier NAME --outfile PATH

``NAME`` is a registered name (``nearest_neighbours``, ``linear_svm``, ``rbf_svm``,
``gaussian_process``, ``decision_tree``), a seed display name such as
``"Nearest Neighbors"`` (the default, as in the seed), or a YAML mapping
``{name: NAME, estimator: module.Class, params: {...}}`` for any other
scikit-learn classifier. ``OUTFILE`` receives a pickled
:class:`mltoolkit.analysis.ml.ClassifierResult` that already holds the decision surface
of the figure, so the merge step only draws.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mltoolkit.analysis.fun_with_ml._cli import (
    StepArgumentParser,
    check_output_path,
    load_artifact,
    run_step,
    save_artifact,
    say,
    writing_to,
)

__all__ = ["DEFAULT_CLASSIFIER", "build_parser", "main", "parse_classifier_option"]

#: The seed's default ``--classifier``.
DEFAULT_CLASSIFIER = "Nearest Neighbors"


def build_parser() -> argparse.ArgumentParser:
    """The seed's options: ``--prepped_data``, ``--classifier`` and ``--outfile``."""
    parser = StepArgumentParser(
        prog="classification.py",
        description="Fit one classifier on the training split of the prepped data and score it on the test split.",
    )
    parser.add_argument(
        "--prepped_data",
        required=True,
        help="pickle written by data_prep.py --outfile",
    )
    parser.add_argument(
        "--classifier",
        default=DEFAULT_CLASSIFIER,
        help="registered or display name (default: %(default)r, as the seed), or a YAML "
        "mapping {name: NAME, estimator: module.Class, params: {...}}",
    )
    parser.add_argument(
        "--outfile",
        default="ml_output.pkl",
        help="path of the pickle to write (default: %(default)s, as the seed)",
    )
    return parser


def parse_classifier_option(value: str) -> Any:
    """Turn ``--classifier VALUE`` into a classifier spec.

    A value starting with ``{`` is a YAML mapping ``{name, estimator, params}``;
    anything else is a registered or display name.

    Raises:
        UnknownClassifierError: an unknown name (the message lists the known ones).
        ClassifierConfigError, CommandLineError: a malformed mapping.
    """
    from mltoolkit.analysis.classifiers import parse_classifier
    from mltoolkit.errors import CommandLineError

    entry: Any = value
    if value.lstrip().startswith("{"):
        from mltoolkit.yamlfiles import parse_yaml_text

        entry = parse_yaml_text(value, "--classifier", CommandLineError)
    return parse_classifier(entry, where="--classifier")


def _classify(args: argparse.Namespace) -> int:
    from mltoolkit.analysis.ml import PreppedData, classify
    from mltoolkit.analysis.plotting import decision_surface, mesh_for
    from mltoolkit.analysis.results import summary_path, write_model_summary

    # Checked before the (much slower) unpickling and fitting, so a typo fails at once.
    check_output_path(args.outfile, "--outfile")
    spec = parse_classifier_option(args.classifier)
    prepped = load_artifact(args.prepped_data, PreppedData, "--prepped_data", "data_prep.py")
    result = classify(prepped, spec)
    # Computed here, where each classifier runs in its own step in parallel,
    # rather than in the single merge step.
    result.surface = decision_surface(result.estimator, *mesh_for(prepped.X))
    save_artifact(result, args.outfile, "--outfile")
    with writing_to(summary_path(args.outfile), "--outfile's summary"):
        write_model_summary(args.outfile, result, prepped)  # the numbers a comparison needs, no unpickling
    say(f"{result.name}: test score {result.score:.2f} -> {args.outfile}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the step with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    return run_step(build_parser(), _classify, argv)


if __name__ == "__main__":
    sys.exit(main())
