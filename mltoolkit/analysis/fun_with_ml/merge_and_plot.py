"""Step 3 of the seed's workflow: draw every classifier's decision surface side by side.

Usage (the seed's command line, positional arguments)::

    python merge_and_plot.py PREPPED OUTFILE PKL [PKL ...]

``PREPPED`` is the pickle written by ``data_prep.py``, each ``PKL`` one written by
``classification.py``; ``OUTFILE`` receives the PNG (written atomically). The
panels follow the order of the ``PKL`` arguments. The scores are printed as a
table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mltoolkit.analysis.fun_with_ml._cli import (
    StepArgumentParser,
    check_output_path,
    load_artifact,
    run_step,
    say,
    writing_to,
)

__all__ = ["build_parser", "format_scores", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The seed's positional arguments: ``PREPPED OUTFILE PKL [PKL ...]``."""
    parser = StepArgumentParser(
        prog="merge_and_plot.py",
        description="Plot the input data and each classifier's decision surface side by side.",
    )
    parser.add_argument("prepped", metavar="PREPPED", help="pickle written by data_prep.py")
    parser.add_argument("outfile", metavar="OUTFILE", help="PNG file to write")
    parser.add_argument(
        "results",
        metavar="PKL",
        nargs="+",
        help="pickles written by classification.py, one panel each, in this order",
    )
    return parser


def format_scores(scores: Sequence[tuple[str, float]], figure: str) -> str:
    """The table printed at the end: one ``name  score`` row per panel, then the figure.

    A sequence rather than a mapping: the same classifier may be given twice.
    """
    width = max([len("classifier"), *(len(name) for name, _ in scores)])
    lines = [f"{'classifier':<{width}}  score", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {score:.2f}" for name, score in scores]
    lines.append(f"figure: {figure}")
    return "\n".join(lines)


def _merge(args: argparse.Namespace) -> int:
    from mltoolkit.analysis.ml import ClassifierResult, PreppedData, merge_and_plot

    check_output_path(args.outfile, "OUTFILE")
    prepped = load_artifact(args.prepped, PreppedData, "PREPPED", "data_prep.py")
    results = [load_artifact(path, ClassifierResult, "PKL", "classification.py") for path in args.results]
    with writing_to(args.outfile, "OUTFILE"):
        figure = merge_and_plot(prepped, results, args.outfile)
    say(format_scores([(result.name, result.score) for result in results], str(figure)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the step with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    return run_step(build_parser(), _merge, argv)


if __name__ == "__main__":
    sys.exit(main())
