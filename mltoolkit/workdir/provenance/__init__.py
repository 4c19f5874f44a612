"""A run record as a Workflow Run RO-Crate: ``WORKDIR/ro-crate-metadata.json``.

Both flows write a run record (:mod:`mltoolkit.workdir.record`);
:func:`write_run_crate` describes the same run with the `Workflow Run RO-Crate
<https://www.researchobject.org/workflow-run-crate/>`_ profiles, so generic
RO-Crate tools (WorkflowHub, runcrate, validators) can read what ran, on what,
with which software and what came out. The crate is built with ``ro-crate-py``;
only its metadata file is written: the work directory is already the crate's
payload, so nothing is copied or fetched.

The package keeps the entities apart from their serialisation:

* entities: :mod:`~.workflow` (the workflow, its spec files and inputs),
  :mod:`~.files` (``File`` entities), :mod:`~.steps` (stages, steps as
  actions), :mod:`~.software` (versions as applications), :mod:`~.run` (the
  run, the engine run and the root dataset, built from the record);
* serialisation: :mod:`~.vocabulary` (profiles, contexts, terms, statuses),
  :mod:`~.ids` and :mod:`~.file_keys` (entity ids), :mod:`~.values`
  (JSON-LD values), :mod:`~.serialise` (writing the metadata file);
  :mod:`~.draft` is the crate being built, which they share.
"""

from __future__ import annotations

from mltoolkit.workdir.provenance.run import build_run_crate
from mltoolkit.workdir.provenance.serialise import write_run_crate
from mltoolkit.workdir.provenance.vocabulary import (
    ACTIVE,
    ATTEMPTS_TERM,
    COMPLETED,
    CRATE_METADATA,
    FAILED,
    POTENTIAL,
    PROFILES,
    RO_CRATE_VERSION,
    WORKFLOW_RUN_CONTEXT,
    action_status,
)

__all__ = [
    "ACTIVE",
    "ATTEMPTS_TERM",
    "COMPLETED",
    "CRATE_METADATA",
    "FAILED",
    "POTENTIAL",
    "PROFILES",
    "RO_CRATE_VERSION",
    "WORKFLOW_RUN_CONTEXT",
    "action_status",
    "build_run_crate",
    "write_run_crate",
]
