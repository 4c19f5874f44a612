"""What an environment's ``resources`` do to a step that runs here.

The spec side (which resources are requirements, limits or mere hints) is
:mod:`mltoolkit.yadage.model.resources`. Here, for one step in the environment it
was given (:func:`plan_resources`):

* **limits**: the job timeout becomes the step's timeout (the smaller of it and
  the run's ``--step-timeout``); the memory limit caps the step's processes --
  their address space (``RLIMIT_AS``, set by ``ulimit -v`` in the shell that
  starts them) on Linux, ``docker run --memory`` for a container (read from
  :attr:`StepOptions.memory_limit <mltoolkit.yadage.packtivity.step.StepOptions>`)
  -- and is recorded with a warning where neither applies;
* **requirements** (``CVMFS``, ``GRIDProxy``, ``kerberos``...): each must be
  provided, by ``--provide NAME[=VALUE]`` (:attr:`StepOptions.provided`) or by
  the image-map entry of the step's image (``provides:``); a value is put to use
  where its meaning is known (``CVMFS=/path`` is mounted at ``/cvmfs``, a
  ``GRIDProxy``/``voms_proxy`` file is ``X509_USER_PROXY``, a ``KRB5Auth``/
  ``kerberos`` cache is ``KRB5CCNAME``). A requirement nothing provides stops the
  step before it starts (and the whole run before any step, see
  :mod:`mltoolkit.yadage.requirements`);
* **everything** -- requested, applied, provided, ignored, warnings -- is the
  step's ``resources`` record (:class:`StepResources`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.errors import CommandLineError, EnvironmentUnavailableError
from mltoolkit.yadage.model.resources import ResourceRequest, format_bytes
from mltoolkit.yadage.packtivity.environments import ImageMapping

__all__ = [
    "CVMFS_MOUNT",
    "StepResources",
    "find_provider",
    "limit_memory",
    "parse_provided",
    "plan_limits",
    "provide_hint",
    "resource_environment",
]

#: Where CVMFS is mounted in a container, and where specs expect it.
CVMFS_MOUNT = "/cvmfs"
#: requirement (case-folded) -> environment variable its value is handed in.
_ENV_OF = {
    "gridproxy": "X509_USER_PROXY",
    "voms_proxy": "X509_USER_PROXY",
    "krb5auth": "KRB5CCNAME",
    "kerberos": "KRB5CCNAME",
}
#: Kinds of environment whose processes run on this machine.
_LOCAL_KINDS = frozenset({"local", "toolkit"})


@dataclass
class StepResources:
    """A step's ``resources`` record (``run.json``): what was asked and what became of it."""

    requested: list[Any] = field(default_factory=list)
    applied: dict[str, str] = field(default_factory=dict)
    provided: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, the record's ``resources`` field."""
        return {
            "requested": list(self.requested),
            "applied": dict(self.applied),
            "provided": dict(self.provided),
            "ignored": dict(self.ignored),
            "warnings": list(self.warnings),
        }


def parse_provided(items: Iterable[str], *, option: str = "--provide") -> dict[str, str]:
    """``NAME`` / ``NAME=VALUE`` items (``--provide CVMFS=/cvmfs``) as ``{name: value}`` (``""`` for none).

    Raises:
        CommandLineError: an item with no name.
    """
    provided: dict[str, str] = {}
    for item in items:
        name, _, value = str(item).partition("=")
        if not name.strip():
            raise CommandLineError(
                f"{option} {item!r}: expected NAME or NAME=VALUE, e.g. {option} CVMFS=/cvmfs or {option} GRIDProxy"
            )
        provided[name.strip()] = value.strip()
    return provided


def provide_hint(name: str) -> str:
    """How to provide ``name``: the option, with an example value where one is typical."""
    examples = {"cvmfs": f"{name}={CVMFS_MOUNT}", "gridproxy": f"{name}=/tmp/x509up_u1000"}
    return f"--provide {examples.get(name.casefold(), f'{name}=VALUE')}"


def find_provider(
    name: str, provided: Mapping[str, str], mapping: ImageMapping | None, image: str | None
) -> tuple[str, str] | None:
    """``(value, who provides it)`` for requirement ``name``, or ``None`` when nothing does.

    ``--provide`` wins over the image-map entry; names compare case-insensitively.
    """
    wanted = name.casefold()
    for key, value in provided.items():
        if key.casefold() == wanted:
            return value, f"--provide {key}={value}" if value else f"--provide {key}"
    for key, value in mapping.provides if mapping is not None else ():
        if key.casefold() == wanted:
            return value, f"image map entry of {image}"
    return None


def resource_environment(
    request: ResourceRequest,
    *,
    provided: Mapping[str, str],
    mapping: ImageMapping | None,
    image: str | None,
    label: str,
) -> tuple[StepResources, dict[str, str], list[tuple[str, str]]]:
    """The requirements of a step: its record so far, environment variables and ``(host, container)`` mounts.

    Raises:
        EnvironmentUnavailableError: a requirement nothing provides.
    """
    record = StepResources(requested=list(request.requested), ignored=dict(request.ignored))
    env: dict[str, str] = {}
    mounts: list[tuple[str, str]] = []
    for name in request.requirements:
        found = find_provider(name, provided, mapping, image)
        if found is None:
            raise EnvironmentUnavailableError(
                f"{label}: the environment needs resource {name!r}, which nothing provides here; "
                f"pass {provide_hint(name)} (or add 'provides: [{name}]' to the image's image-map entry)"
            )
        value, source = found
        record.provided[name] = source
        if value and name.casefold() in _ENV_OF:
            env[_ENV_OF[name.casefold()]] = value
        elif value and name.casefold() == "cvmfs" and value.rstrip("/") != CVMFS_MOUNT:
            mounts.append((value, CVMFS_MOUNT))
    return record, env, mounts


def plan_limits(
    request: ResourceRequest, record: StepResources, *, kind: str, run_timeout: float | None
) -> tuple[float | None, int | None]:
    """The step's timeout and memory limit; notes in ``record`` how each was applied (or why not)."""
    runs = kind not in ("noop", "publish-only")
    timeout = run_timeout
    if request.timeout is not None and request.timeout_key is not None:
        key = request.timeout_key
        if not runs:
            record.ignored[key] = "the step runs no process"
        elif run_timeout is not None and run_timeout < request.timeout:
            record.applied[key] = f"the run's --step-timeout {run_timeout:g} s is smaller and applies"
        else:
            timeout = request.timeout
            record.applied[key] = f"step timeout {request.timeout:g} s"
    memory: int | None = None
    if request.memory_limit is not None and request.memory_key is not None:
        key, size = request.memory_key, format_bytes(request.memory_limit)
        if not runs:
            record.ignored[key] = "the step runs no process"
        elif kind == "docker":
            memory = request.memory_limit
            record.applied[key] = f"container memory limit {size} (docker run --memory)"
        elif kind in _LOCAL_KINDS and sys.platform.startswith("linux"):
            memory = request.memory_limit
            record.applied[key] = f"address-space limit {size} of the step's processes (RLIMIT_AS)"
        else:
            record.warnings.append(
                f"{key} {size} is not applied: this platform ({sys.platform}) cannot limit a step's memory"
            )
    return timeout, memory


def limit_memory(argv: list[str], limit: int) -> list[str]:
    """``argv`` started by a shell that first caps the address space of it and its children at ``limit`` bytes.

    Never above the limit this process already has (raising it would be refused).
    """
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    kib = max(1, limit // 1024)
    return ["sh", "-c", 'ulimit -v "$1" && shift && exec "$@"', "sh", str(kib), *argv]
