"""mltoolkit: the seed's ML analysis as a pure Python toolkit, plus a yadage spec loader.

The analysis functions are importable from the top level::

    from mltoolkit import data_prep, classify, merge_and_plot

This package never imports Prefect or Typer; the Prefect wiring lives in ``flows``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ClassifierResult",
    "ClassifierSpec",
    "MLToolkitError",
    "PreppedData",
    "__version__",
    "classify",
    "data_prep",
    "merge_and_plot",
]

_LAZY = {
    "data_prep": "mltoolkit.analysis.ml",
    "classify": "mltoolkit.analysis.ml",
    "merge_and_plot": "mltoolkit.analysis.ml",
    "PreppedData": "mltoolkit.analysis.results",
    "ClassifierResult": "mltoolkit.analysis.results",
    "ClassifierSpec": "mltoolkit.analysis.classifiers",
    "MLToolkitError": "mltoolkit.errors",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import mltoolkit.errors` (used by fast CLI paths) stays cheap.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mltoolkit' has no attribute {name!r}")
