"""Preservation: what a result depends on, and why a step ran again.

Pure Python (no Prefect): the flows build their cache keys from these parts,
and the preservation tools (reproduce, compare) read the same parts back.

* :mod:`~mltoolkit.preservation.fingerprint` -- the code (digest of the toolkit's
  own files), the library versions, a Docker image's id;
* :mod:`~mltoolkit.preservation.inputs` -- a step's parameters and input files as
  a JSON value that changes exactly when their meaning changes;
* :mod:`~mltoolkit.preservation.keys` -- the parts of a cache key, the reason a
  step ran (``code changed: mltoolkit/analysis/classifiers.py``) and the one-line
  summary of a run;
* :mod:`~mltoolkit.preservation.submitted` -- exact copies of what a run was given
  (spec files, inputs file, ``-p`` values, dataset) in ``_mltoolkit/submitted/``;
* :mod:`~mltoolkit.preservation.archive` -- a run as one self-contained RO-Crate zip.
"""

from __future__ import annotations

from mltoolkit.preservation.fingerprint import (
    SCIENTIFIC_LIBRARIES,
    CodeDigest,
    code_digest,
    code_digest_leaving_out,
    installed_version,
    library_versions,
)
from mltoolkit.preservation.inputs import Fingerprinter
from mltoolkit.preservation.keys import KeyComponents, explain, summary_line

__all__ = [
    "SCIENTIFIC_LIBRARIES",
    "CodeDigest",
    "Fingerprinter",
    "KeyComponents",
    "code_digest",
    "code_digest_leaving_out",
    "explain",
    "installed_version",
    "library_versions",
    "summary_line",
]
