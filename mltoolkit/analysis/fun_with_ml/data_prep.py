"""Step 1 of the seed's workflow: load a dataset, standardise it, split it, pickle it.

Usage (the seed's command line)::

    python data_prep.py --dataset DATASET --outfile OUTFILE

``DATASET`` is a path, a ``file://`` URL or an ``http(s)://`` URL; the seed's
Dropbox URL resolves to the copy shipped with mltoolkit, so no network is needed.
``OUTFILE`` receives a pickled :class:`mltoolkit.analysis.ml.PreppedData` (written
atomically, with a ``OUTFILE.sha256`` sidecar).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mltoolkit.analysis.fun_with_ml._cli import (
    StepArgumentParser,
    check_output_path,
    run_step,
    save_artifact,
    say,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The seed's options: ``--dataset`` and ``--outfile``."""
    parser = StepArgumentParser(
        prog="data_prep.py",
        description="Download/read a dataset table (x y label), standardise it and split it "
        "into training and test parts (test_size=0.4, random_state=42).",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="path, file:// or http(s):// URL of the dataset table (header line, then 'x y label' rows)",
    )
    parser.add_argument(
        "--outfile",
        default="ml_output.pkl",
        help="path of the pickle to write (default: %(default)s, as the seed)",
    )
    return parser


def _prepare(args: argparse.Namespace) -> int:
    from mltoolkit.analysis.ml import data_prep

    check_output_path(args.outfile, "--outfile")
    prepped = data_prep(args.dataset)
    save_artifact(prepped, args.outfile, "--outfile")
    say(
        f"prepped {len(prepped.X)} rows from {prepped.source} "
        f"({len(prepped.X_train)} train, {len(prepped.X_test)} test) -> {args.outfile}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the step with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    return run_step(build_parser(), _prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
