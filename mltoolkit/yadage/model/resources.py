"""Environment ``resources``: what a step asks of the machine it runs on.

yadage-era specs list strings -- ``CVMFS``, ``GRIDProxy``, ``KRB5Auth`` -- that
the environment must *provide* (yadage mounts ``/cvmfs`` or a credentials
folder for them). REANA specs add mappings, read by REANA's job controller::

    resources:
      - CVMFS
      - kubernetes_memory_limit: '8Gi'
      - kubernetes_job_timeout: 3600
      - compute_backend: htcondorcern
      - htcondor_max_runtime: espresso
      - kerberos: true

:func:`parse_resources` sorts them into what this toolkit can honour:

* **requirements** -- every string, and the credential flags ``kerberos``,
  ``voms_proxy`` and ``rucio`` when true (yadage treats ``{kerberos: true}`` as
  it treats ``GRIDProxy``): the step runs only where they are provided;
* **limits** of the step's compute backend (``compute_backend``, REANA's default
  ``kubernetes``): its job timeout (``kubernetes_job_timeout`` in seconds,
  ``htcondor_max_runtime`` in seconds or a CERN job flavour, ``slurm_time`` in
  Slurm's time formats) and its memory limit (``kubernetes_memory_limit``, a
  Kubernetes quantity such as ``8Gi``); REANA ignores the other backends' keys,
  and so does this toolkit;
* everything else is **recorded** with the reason it means nothing here
  (``kubernetes_uid``, ``htcondor_accounting_group``, ``slurm_partition``...).

A malformed value (``kubernetes_memory_limit: 8GB``) is a :class:`ValueError`
whose message says what was expected; the model turns it into a spec error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CREDENTIAL_FLAGS",
    "DEFAULT_BACKEND",
    "ResourceRequest",
    "format_bytes",
    "parse_duration",
    "parse_memory",
    "parse_resources",
]

#: Mapping keys whose true value asks for a credential, as a string resource would.
CREDENTIAL_FLAGS = ("kerberos", "voms_proxy", "rucio")
#: REANA's compute backend when a step names none.
DEFAULT_BACKEND = "kubernetes"
#: backend family -> (job timeout key, memory limit key)
_LIMIT_KEYS: dict[str, tuple[str, str | None]] = {
    "kubernetes": ("kubernetes_job_timeout", "kubernetes_memory_limit"),
    "htcondor": ("htcondor_max_runtime", None),
    "slurm": ("slurm_time", None),
}
#: Keys known from REANA that have no meaning on this machine, and why.
_MEANINGLESS_HERE = {
    "compute_backend": "steps run on this machine (or its Docker engine), not on a REANA compute backend",
    "kubernetes_uid": "steps run as the user who runs the workflow",
    "htcondor_accounting_group": "there is no HTCondor accounting here",
    "slurm_partition": "there is no Slurm partition here",
    "unpacked_img": "images run as Docker (or image-map) environments here",
    "c4p_cpu_cores": "there is no C4P backend here",
    "c4p_memory_limit": "there is no C4P backend here",
    "c4p_additional_requirements": "there is no C4P backend here",
}
#: CERN HTCondor job flavours and their maximal runtime in seconds.
_HTCONDOR_FLAVOURS = {
    "espresso": 20 * 60,
    "microcentury": 60 * 60,
    "longlunch": 2 * 3600,
    "workday": 8 * 3600,
    "tomorrow": 24 * 3600,
    "testmatch": 3 * 24 * 3600,
    "nextweek": 7 * 24 * 3600,
}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?")
_UNITS = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_SLURM_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


@dataclass
class ResourceRequest:
    """An environment's ``resources`` sorted by what this toolkit does with each.

    Attributes:
        requested: the list as the spec wrote it.
        requirements: names that must be provided for the step to run (``CVMFS``, ``kerberos``).
        compute_backend: the backend whose limits apply (``kubernetes`` unless the spec names one).
        timeout: seconds the job may run, from its backend's timeout key.
        timeout_key: the key that set ``timeout``.
        memory_limit: bytes the job may use, from its backend's memory key.
        memory_key: the key that set ``memory_limit``.
        ignored: key -> why it means nothing here (recorded, never applied).
    """

    requested: list[Any] = field(default_factory=list)
    requirements: tuple[str, ...] = ()
    compute_backend: str = DEFAULT_BACKEND
    timeout: float | None = None
    timeout_key: str | None = None
    memory_limit: int | None = None
    memory_key: str | None = None
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the spec asked for nothing."""
        return not self.requested


def parse_memory(value: Any) -> int:
    """Bytes in a Kubernetes quantity (``8Gi``, ``500Mi``, ``2G``, ``1e9``, or a plain number of bytes).

    Raises:
        ValueError: not a quantity.
    """
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
    match = _QUANTITY.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"found {value!r}, expected a memory size such as '8Gi', '500Mi' or '2G' (Kubernetes units)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_bytes(count: int) -> str:
    """``8Gi``, ``500Mi``, ``1000000``: a byte count in the largest binary unit that divides it."""
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if count % _UNITS[unit] == 0:
            return f"{count // _UNITS[unit]}{unit}"
    return str(count)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", value):
        return float(value)
    return None


def _slurm_seconds(value: Any) -> float | None:
    """Slurm's ``--time``: minutes, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    match = _SLURM_TIME.fullmatch(str(value).strip()) if isinstance(value, (str, int)) else None
    if match is None or isinstance(value, bool):
        return None
    days, first, second, third = match.groups()
    if days is not None:  # D-H[:M[:S]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
        return float(((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds)
    if third is not None:  # H:M:S
        return float((int(first) * 60 + int(second)) * 60 + int(third))
    if second is not None:  # M:S
        return float(int(first) * 60 + int(second))
    return float(int(first) * 60)  # minutes


def parse_duration(key: str, value: Any) -> float:
    """Seconds in a backend's job timeout (``key`` says which format it is in).

    Raises:
        ValueError: not a duration in that key's format, or not positive.
    """
    if key == "slurm_time":
        seconds, expected = _slurm_seconds(value), "minutes or Slurm's [D-]HH:MM:SS, e.g. 60 or '1:00:00'"
    elif key == "htcondor_max_runtime":
        flavour = _HTCONDOR_FLAVOURS.get(str(value).strip().lower()) if isinstance(value, str) else None
        seconds = float(flavour) if flavour is not None else _seconds(value)
        expected = f"seconds or a job flavour ({', '.join(_HTCONDOR_FLAVOURS)})"
    else:
        seconds, expected = _seconds(value), "a number of seconds, e.g. 3600"
    if seconds is None or seconds <= 0:
        raise ValueError(f"found {value!r}, expected {expected}")
    return seconds


def _backend_family(backend: str) -> str:
    lowered = backend.lower()
    return next((family for family in _LIMIT_KEYS if lowered.startswith(family)), lowered)


def _mappings(items: list[Any]) -> dict[str, Any]:
    """Every key/value of the mapping items; strings are requirements, handled by the caller."""
    merged: dict[str, Any] = {}
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip():
                raise ValueError(f"item {index} is an empty string, expected a resource name such as CVMFS")
            continue
        if not isinstance(item, dict) or not item:
            raise ValueError(
                f"item {index} is {type(item).__name__} {item!r:.60}, expected a name such as CVMFS "
                "or a mapping such as {kubernetes_memory_limit: '8Gi'}"
            )
        merged.update({str(key): value for key, value in item.items()})
    return merged


def parse_resources(items: list[Any]) -> ResourceRequest:
    """Sort an environment's ``resources`` list (see the module docs).

    Raises:
        ValueError: an item is neither a name nor a mapping, or a limit's value is malformed;
            the message names the item or key.
    """
    mappings = _mappings(items)
    backend = str(mappings.get("compute_backend") or DEFAULT_BACKEND)
    timeout_key, memory_key = _LIMIT_KEYS.get(_backend_family(backend), (None, None))
    request = ResourceRequest(requested=list(items), compute_backend=backend)
    requirements = [item.strip() for item in items if isinstance(item, str)]
    for key, value in mappings.items():
        if key in CREDENTIAL_FLAGS:
            if value is True or str(value).lower() == "true":
                requirements.append(key)
            continue
        limit_kind = _limit_kind(key)
        if limit_kind is None:
            request.ignored[key] = _MEANINGLESS_HERE.get(key, "this toolkit does not know this resource")
            continue
        try:
            parsed: float | int = parse_duration(key, value) if limit_kind == "timeout" else parse_memory(value)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
        if key == timeout_key:
            request.timeout, request.timeout_key = float(parsed), key
        elif key == memory_key:
            request.memory_limit, request.memory_key = int(parsed), key
        else:
            request.ignored[key] = f"it applies to another compute backend than this step's ({backend})"
    request.requirements = tuple(dict.fromkeys(requirements))
    return request


def _limit_kind(key: str) -> str | None:
    """``timeout`` or ``memory`` for a backend limit key, ``None`` for any other key."""
    for timeout_key, memory_key in _LIMIT_KEYS.values():
        if key == timeout_key:
            return "timeout"
        if key == memory_key:
            return "memory"
    return None
