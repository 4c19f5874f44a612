"""Resource limits on what a spec, an inputs file or a published document can make the toolkit do.

A hostile or broken document can ask for unbounded work: a YAML alias bomb
(nine aliases of nine aliases of ... expand to 9**9 nodes), a ``$ref`` fan-out,
a cartesian scatter of three lists of 1,000 values, a jq program that never
ends. Each is checked against a limit *before* the work is done, and going over
one is a one-line :class:`~mltoolkit.errors.LimitExceededError` naming the file,
the limit and the environment variable that raises it.

The defaults sit far above any real spec (the seed's files have a few hundred
nodes; the 10,000-step benchmark scatter is a fifth of the scatter limit) and far
below what exhausts a laptop's memory. Each is read from the environment when it
is checked, so ``MLTOOLKIT_MAX_SCATTER_STEPS=200000 mltoolkit spec ...`` raises it
for one command (and its step processes).

Layer: just above :mod:`mltoolkit.errors`; standard library only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from mltoolkit.errors import CommandLineError, LimitExceededError

__all__ = [
    "INPUTS_BYTES",
    "JQ_MEMORY_MB",
    "JQ_SECONDS",
    "LIMITS",
    "SCATTER_STEPS",
    "YAML_BYTES",
    "YAML_DEPTH",
    "YAML_NODES",
    "Limit",
    "check_inputs_size",
]


@dataclass(frozen=True)
class Limit:
    """One resource limit: its environment variable, default and the words messages use.

    Attributes:
        variable: environment variable that sets it (``MLTOOLKIT_MAX_...``).
        default: value when the variable is unset.
        what: what is limited, for messages ("YAML nodes after alias expansion").
        unit: unit after the number in messages ("bytes", "s").
    """

    variable: str
    default: float
    what: str
    unit: str = ""

    def value(self) -> float:
        """The limit in force: the environment variable's value, else the default.

        Raises:
            CommandLineError: the variable is set to something other than a positive number.
        """
        text = os.environ.get(self.variable, "").strip()
        if not text:
            return self.default
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            number = -1.0
        if not number > 0:
            raise CommandLineError(
                f"{self.variable}={text!r}: expected a positive number (the limit on {self.what}; "
                f"default {_number(self.default)})"
            )
        return number

    def check(self, found: float, where: str, hint: str = "") -> None:
        """Raise :class:`LimitExceededError` when ``found`` is over the limit."""
        limit = self.value()
        if found > limit:
            raise self.exceeded(where, found, hint, limit)

    def exceeded(
        self, where: str, found: float | None, hint: str = "", limit: float | None = None
    ) -> LimitExceededError:
        """The one-line error for going over this limit at ``where`` (``found=None``: stopped on crossing it)."""
        limit = self.value() if limit is None else limit
        unit = f" {self.unit}" if self.unit else ""
        amount = "" if found is None else f"{_number(found)}{unit}, "
        advice = f" ({hint})" if hint else ""
        return LimitExceededError(
            f"{where}: {self.what} is {amount}over the limit of {_number(limit)}{unit}{advice}; "
            f"to allow more, set {self.variable}={_plain(limit * 10)}"
        )


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: Bytes of one YAML document (a spec file, an inputs file, a published YAML file, a -p value).
YAML_BYTES = Limit("MLTOOLKIT_MAX_YAML_BYTES", 8 * 1024 * 1024, "size", "bytes")
#: Nodes of one YAML document once its aliases are expanded, and of a spec once its $refs are.
YAML_NODES = Limit("MLTOOLKIT_MAX_YAML_NODES", 1_000_000, "node count (aliases and $refs expanded)")
#: Nesting depth of one YAML document (PyYAML's reader recurses: ~300 levels exhaust Python's stack).
YAML_DEPTH = Limit("MLTOOLKIT_MAX_YAML_DEPTH", 100, "nesting depth", "levels")
#: Steps one multistep or jq stage may schedule (the 10,000-step benchmark uses a fifth).
SCATTER_STEPS = Limit("MLTOOLKIT_MAX_SCATTER_STEPS", 50_000, "number of steps of one stage")
#: Seconds one jq program may run.
JQ_SECONDS = Limit("MLTOOLKIT_JQ_TIMEOUT", 10, "jq run time", "s")
#: Memory one jq program may use (the address space of the process running it).
JQ_MEMORY_MB = Limit("MLTOOLKIT_JQ_MEMORY_MB", 1024, "jq memory", "MiB")
#: Bytes of a run's inputs as JSON: they become flow-run parameters, which the Prefect
#: API refuses above 524,288 bytes (``PREFECT_SERVER_API_MAX_PARAMETER_SIZE``); the rest
#: of that is left for the other parameters.
INPUTS_BYTES = Limit("MLTOOLKIT_MAX_INPUTS_BYTES", 500_000, "size of the inputs as JSON", "bytes")

#: Every limit, for documentation and tests.
LIMITS = (YAML_BYTES, YAML_NODES, YAML_DEPTH, SCATTER_STEPS, JQ_SECONDS, JQ_MEMORY_MB, INPUTS_BYTES)


def check_inputs_size(values: Any, where: str) -> None:
    """Refuse inputs whose JSON is over :data:`INPUTS_BYTES` (measured as the Prefect API measures parameters).

    Raises:
        LimitExceededError: names ``where`` (the inputs file or ``-p``) and the size.
    """
    size = len(json.dumps(values, separators=(",", ":"), default=str).encode("utf-8", errors="surrogatepass"))
    INPUTS_BYTES.check(
        size,
        where,
        "inputs become flow-run parameters, and the Prefect API refuses parameters over "
        "PREFECT_SERVER_API_MAX_PARAMETER_SIZE, 524,288 bytes by default; put large data in a file "
        "and pass its path",
    )
