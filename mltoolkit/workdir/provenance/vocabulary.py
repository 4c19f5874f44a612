"""The terms a run crate uses: profiles, JSON-LD contexts, action statuses, known software.

The profile set is the one the 0.5 profiles document together: RO-Crate 1.1,
Process Run Crate 0.5, Workflow Run Crate 0.5, Provenance Run Crate 0.5 and
Workflow RO-Crate 1.0 (Workflow Run Crate 0.6 needs RO-Crate 1.3 and changes
term IRIs, so it cannot be mixed in).
"""

from __future__ import annotations

from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.layout import CRATE_FILE

__all__ = [
    "ACTIVE",
    "ATTEMPTS_TERM",
    "COMPLETED",
    "CRATE_METADATA",
    "ENGINE",
    "FAILED",
    "NO_LICENSE",
    "POTENTIAL",
    "PROFILES",
    "RESOURCES_TERM",
    "RO_CRATE_VERSION",
    "SOFTWARE",
    "WORKFLOW_RO_CRATE",
    "WORKFLOW_RUN_CONTEXT",
    "action_status",
    "attempts_term",
    "declare_contexts",
    "declare_resources",
]

#: The crate's metadata file, relative to the work directory (the crate's root).
CRATE_METADATA = CRATE_FILE
RO_CRATE_VERSION = "1.1"
#: Defines ``sha256``.
WORKFLOW_RUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"

WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
#: Profile permalink -> (name, version), as the 0.5 profiles list them in ``conformsTo``.
PROFILES: dict[str, tuple[str, str]] = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    WORKFLOW_RO_CRATE: ("Workflow RO-Crate", "1.0"),
}

#: No published vocabulary has "how many times a task ran (retries included)", so
#: it is an ad hoc term under RO-Crate 1.1's ``https://w3id.org/ro/terms/<namespace>``
#: convention, declared in the context and described in the crate.
ATTEMPTS_TERM = "https://w3id.org/ro/terms/mltoolkit#attempts"
#: Likewise for "what the step's environment asked of the machine" (yadage/REANA ``resources``).
RESOURCES_TERM = "https://w3id.org/ro/terms/mltoolkit#resources"

_SCHEMA = "http://schema.org/"
#: ``actionStatus`` values. Written as IRI strings, not ``{"@id": ...}``: that is
#: what the profiles' SHACL shapes (rocrate-validator) and runcrate compare against.
COMPLETED = f"{_SCHEMA}CompletedActionStatus"
FAILED = f"{_SCHEMA}FailedActionStatus"
ACTIVE = f"{_SCHEMA}ActiveActionStatus"
POTENTIAL = f"{_SCHEMA}PotentialActionStatus"
_COMPLETED_STATES = {"COMPLETED", "CACHED"}
_FAILED_STATES = {"FAILED", "CRASHED", "CANCELLED", "CANCELLING", "TIMED_OUT", "TIMEDOUT"}
_ACTIVE_STATES = {"RUNNING", "RETRYING"}

#: RO-Crate 1.1 requires a license and allows a textual one; the record names none.
NO_LICENSE = "No license was declared for this run's outputs; ask the owner of the work directory before reuse."

#: name -> (display name, homepage, PyPI project or None). Release pages make
#: absolute ids, which Process Run Crate prefers for tools; mltoolkit has none.
SOFTWARE: dict[str, tuple[str, str | None, str | None]] = {
    "python": ("Python", "https://www.python.org/", None),
    "mltoolkit": ("mltoolkit", None, None),
    "prefect": ("Prefect", "https://www.prefect.io/", "prefect"),
    "scikit-learn": ("scikit-learn", "https://scikit-learn.org/", "scikit-learn"),
    "numpy": ("NumPy", "https://numpy.org/", "numpy"),
    "matplotlib": ("Matplotlib", "https://matplotlib.org/", "matplotlib"),
    "cloudpickle": ("cloudpickle", "https://github.com/cloudpipe/cloudpickle", "cloudpickle"),
}
#: The software that orchestrated the steps (Provenance Run Crate's engine).
ENGINE = ("prefect", "mltoolkit")


def action_status(state: Any) -> str:
    """The schema.org ``ActionStatusType`` IRI for a record state (step or run).

    ``COMPLETED``/``CACHED`` (and a run's ``completed``) -> ``CompletedActionStatus``;
    ``FAILED``, ``CRASHED``, ``CANCELLED``... -> ``FailedActionStatus``; running
    or retrying -> ``ActiveActionStatus``; anything else (pending, scheduled,
    skipped: the step never ran) -> ``PotentialActionStatus``.
    """
    label = str(state or "").upper().replace(" ", "_")
    if label in _COMPLETED_STATES:
        return COMPLETED
    if label in _FAILED_STATES:
        return FAILED
    if label in _ACTIVE_STATES:
        return ACTIVE
    return POTENTIAL


def declare_contexts(crate: ROCrate) -> None:
    """Add the Workflow Run context (``sha256``) and the ad hoc ``attempts`` term to the crate's context."""
    crate.metadata.extra_contexts.append(WORKFLOW_RUN_CONTEXT)
    crate.metadata.extra_terms["attempts"] = ATTEMPTS_TERM


def attempts_term(crate: ROCrate) -> ContextEntity:
    """The ``attempts`` term described as an entity of the crate (not yet added)."""
    return ContextEntity(
        crate,
        ATTEMPTS_TERM,
        properties={
            "@type": "rdf:Property",
            "rdfs:label": "attempts",
            "rdfs:comment": "How many times the action's task ran, retries included (Prefect's run count).",
        },
    )


def declare_resources(crate: ROCrate) -> ContextEntity:
    """Add the ad hoc ``resources`` term to the crate's context; its description (not yet added)."""
    crate.metadata.extra_terms["resources"] = RESOURCES_TERM
    return ContextEntity(
        crate,
        RESOURCES_TERM,
        properties={
            "@type": "rdf:Property",
            "rdfs:label": "resources",
            "rdfs:comment": (
                "What the action's environment asked of the machine (a yadage or REANA 'resources' "
                "entry, as a PropertyValue) and, in its description, what became of it."
            ),
        },
    )
