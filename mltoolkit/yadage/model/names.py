"""The rule for names that become paths: stage names name step and scope folders.

A stage ``x`` runs in ``WORKDIR/x`` (``x_0``, ``x_1``... for several steps, and
``<scope folder>/x`` inside a subworkflow), and the step runner empties that
folder before each run. A name such as ``/abs/dir``, ``../x`` or ``.`` would
put it outside the work directory, or make it the work directory itself, so
such names are refused when the spec is validated, before anything runs.
Names of the toolkit's own files and folders (``_mltoolkit``, ``init``...) are
refused too: a step folder must never be one of them.
"""

from __future__ import annotations

import re

from mltoolkit.workdir.layout import BOOKKEEPING_DIRS, CRATE_FILE, INIT_DIR

__all__ = ["MAX_NAME_LENGTH", "NAME_RULE", "RESERVED_NAMES", "name_problem"]

#: The longest name allowed (step folders add ``_<index>``; file systems allow 255 bytes).
MAX_NAME_LENGTH = 100
#: The rule, as messages state it.
NAME_RULE = (
    "a single folder name of letters, digits, '_', '-' and '.', not starting with '.' or '-', "
    f"at most {MAX_NAME_LENGTH} characters"
)
#: Names of the toolkit's own files and folders in a work directory (``init`` is the
#: inputs' stage and folder: :mod:`~mltoolkit.yadage.model.workflow` says so apart).
RESERVED_NAMES = frozenset(BOOKKEEPING_DIRS | {INIT_DIR, CRATE_FILE})

_ALLOWED = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_FORBIDDEN_CHARACTER = re.compile(r"[^A-Za-z0-9_.\-]")


def name_problem(name: str) -> str | None:
    """What makes ``name`` unfit to be a folder name under the work directory; ``None`` when it is fit."""
    if name in (".", ".."):
        return f"{name!r} names the folder itself or its parent"
    if not name:
        return "it is empty"
    bad = _FORBIDDEN_CHARACTER.search(name)
    if bad is not None:
        return f"it contains {bad.group()!r}"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters"
    if not _ALLOWED.fullmatch(name):
        return f"it starts with {name[0]!r}"
    if name in RESERVED_NAMES:
        return f"{name!r} is where the toolkit keeps its own files"
    return None
