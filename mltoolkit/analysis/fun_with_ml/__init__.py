"""The seed's step scripts, with the seed scripts' command lines, on top of mltoolkit.

The preserved yadage workflow runs its steps in the image ``danikam/sklearn`` as::

    python /fun_with_ml/data_prep.py --dataset DATASET --outfile OUTFILE
    python /fun_with_ml/classification.py --prepped_data PATH --classifier NAME --outfile PATH
    python /fun_with_ml/merge_and_plot.py PREPPED OUTFILE PKL [PKL ...]

This folder holds scripts with exactly those command lines, implemented with
mltoolkit's pure functions (:mod:`mltoolkit.analysis.ml`, :mod:`mltoolkit.workdir.artifacts`), so
the seed's ``steps.yml`` runs unmodified: the spec loader maps ``/fun_with_ml`` onto
this folder when no Docker engine answers, and the project's Docker image copies
the scripts to ``/fun_with_ml``.

Differences from the seed's scripts, all on purpose:

* intermediates are mltoolkit's :class:`~mltoolkit.analysis.ml.PreppedData` and
  :class:`~mltoolkit.analysis.ml.ClassifierResult` (not dicts), written atomically with a
  sha256 sidecar and unpickled only after the hash is checked;
* the classification step also computes the decision surface, so the merge
  step only draws;
* bad input (missing file, unknown classifier, corrupt pickle, bad arguments)
  ends with one line ``error: ...`` on stderr and exit code 1, never a
  traceback (the seed silently fell back to a classifier that did not exist);
* ``data_prep.py --dataset`` is required (the seed's default, ``make_moons``,
  was not a URL and always failed).

Each script can be run as ``python path/to/script.py``, as
``python -m mltoolkit.analysis.fun_with_ml.<name>``, or in-process through its
``main(argv)``. They keep no state between runs and flush their output, because
the warm zygote (:mod:`mltoolkit.processes.zygote`) runs them many times with
:func:`runpy.run_path` in forked children of one interpreter.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SCRIPTS_DIR", "SCRIPT_NAMES", "script_path"]

#: The seed's step scripts, in workflow order.
SCRIPT_NAMES: tuple[str, ...] = ("data_prep.py", "classification.py", "merge_and_plot.py")

#: The folder holding the scripts (what ``/fun_with_ml`` maps onto).
SCRIPTS_DIR: Path = Path(__file__).resolve().parent


def script_path(name: str) -> Path:
    """Path of one step script, by file name (``"data_prep.py"``) or stem (``"data_prep"``).

    Raises:
        KeyError: ``name`` is not one of :data:`SCRIPT_NAMES`.
    """
    file_name = name if name.endswith(".py") else f"{name}.py"
    if file_name not in SCRIPT_NAMES:
        raise KeyError(f"{name!r} is not a step script; expected one of {', '.join(SCRIPT_NAMES)}")
    return SCRIPTS_DIR / file_name
