"""Phase 6 of the spec loader: a run's init values (``INPUTS`` file plus ``-p`` overrides).

Mirrors ``yadage-run WORKDIR WORKFLOW [INPUTS] -p key=value``: the inputs file is a
YAML mapping of init values; each ``-p key=value`` parses its value as YAML
(``-p n=3``, ``-p xs=[1,2,3]``) and overrides the file. Files already in
``WORKDIR/init/`` are the init step's files: the planner turns relative init
values that name such files into absolute paths
(:func:`mltoolkit.yadage.planner.resolve_init_files`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mltoolkit.errors import InputsError
from mltoolkit.limits import check_inputs_size
from mltoolkit.workdir.layout import INIT_DIR
from mltoolkit.yamlfiles import parse_assignments, read_yaml

__all__ = ["init_dir", "read_inputs"]


def init_dir(workdir: str | os.PathLike[str]) -> Path:
    """``WORKDIR/init``: where a run's init files live."""
    return Path(workdir) / INIT_DIR


def read_inputs(
    inputs: str | os.PathLike[str] | None = None,
    parameters: Iterable[str] = (),
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The init values of a run: the inputs file, then ``-p key=value`` items, then ``overrides``.

    Raises:
        InputsError: the file is missing, unreadable, not YAML or not a mapping.
        CommandLineError: a malformed ``-p`` item.
        LimitExceededError: the values are larger than a flow run's parameters may be.
    """
    values: dict[str, Any] = {}
    if inputs is not None:
        data = read_yaml(inputs, what="inputs file")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputsError(
                f"inputs file {inputs}: found {type(data).__name__}, expected a mapping of "
                "input names to values (e.g. 'dataset: data/moon.txt')"
            )
        values.update({str(key): value for key, value in data.items()})
    given = parse_assignments(parameters)
    values.update(given)
    if overrides:
        values.update(overrides)
    source = f"inputs file {inputs}" if inputs is not None else "inputs"
    check_inputs_size(values, f"{source} with -p values" if given or overrides else source)
    return values
