"""A run record as a Workflow Run RO-Crate: ``WORKDIR/ro-crate-metadata.json``.

Both flows write a run record (``WORKDIR/_mltoolkit/run.json``, format in
``flows/run_record.py``); :func:`write_run_crate` describes the same run with
the `Workflow Run RO-Crate <https://www.researchobject.org/workflow-run-crate/>`_
profiles, so generic RO-Crate tools (WorkflowHub, runcrate, validators) can read
what ran, on what, with which software and what came out. The crate is built
with ``ro-crate-py``; only its metadata file is written: the work directory is
already the crate's payload, so nothing is copied or fetched, and output files
are not re-hashed (the record has their sha256; only the small workflow and
spec files are hashed here).

The profile set is the one the 0.5 profiles document together: RO-Crate 1.1,
Process Run Crate 0.5, Workflow Run Crate 0.5, Provenance Run Crate 0.5 and
Workflow RO-Crate 1.0 (Workflow Run Crate 0.6 needs RO-Crate 1.3 and changes
term IRIs, so it cannot be mixed in).

What the crate holds:

* the root dataset ``./``: the run's name, description, ``dateCreated``
  (start), ``datePublished`` (end), ``conformsTo`` the four profiles,
  ``mainEntity`` the workflow, ``mentions`` every ``CreateAction``, and a
  textual ``license`` (the record names none) unless the record has one;
* the workflow (``ComputationalWorkflow`` + ``HowTo``): the native flow's
  Python file, or a yadage spec's ``workflow.yml``. Files outside WORKDIR keep
  absolute ``file://`` ids and are never copied. A spec's ``$ref`` targets
  (``steps.yml``...) are ``SoftwareSourceCode`` files ``isPartOf`` the
  workflow; other YAML next to it (``inputs.yml``) is listed as a File. The
  workflow's ``input`` lists one ``FormalParameter`` per run input;
* one ``CreateAction`` for the run: instrument the workflow, object the inputs
  (files as ``File``, other values as ``PropertyValue``), result the files of
  the sink steps (whose outputs no other step read), start/end time,
  ``actionStatus`` (and ``error`` when it failed);
* per stage a ``HowToStep`` (the workflow's ``step``) and a tool
  (``SoftwareApplication``, in the workflow's ``hasPart``) with one
  ``FormalParameter`` per parameter name;
* per step a ``CreateAction``: instrument the stage's tool; object its
  parameters (a path, URL or glob naming files -> those ``File`` entities,
  shared with the step that wrote them; anything else -> ``PropertyValue``);
  result its output files, each a ``File`` inside the crate with ``sha256``
  (from the record, not re-hashed) and ``contentSize``; start/end time;
  ``actionStatus`` (COMPLETED/CACHED -> completed, FAILED... -> failed, with
  ``error``); ``attempts``; the Prefect task run id as ``identifier``. A
  ``ControlAction`` ties it to its ``HowToStep``;
* the software versions as ``SoftwareApplication`` entities (PyPI / python.org
  release URLs as ids), required by every tool (``softwareRequirements``);
  Prefect and mltoolkit are the instrument of an ``OrganizeAction`` (the
  engine run) whose object is every step's ``ControlAction``;
* the run record itself, ``about`` the run.

Times are written with millisecond precision (run.json keeps microseconds);
``sha256`` comes from the workflow-run context, ``attempts`` is an ad hoc term.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import posixpath
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from rocrate.model.computerlanguage import ComputerLanguage
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.model.file import File
from rocrate.model.softwareapplication import SoftwareApplication
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.artifacts import atomic_output, sha256_file

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

CRATE_METADATA = "ro-crate-metadata.json"
RO_CRATE_VERSION = "1.1"
WORKFLOW_RUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"  # defines ``sha256``

_WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
#: Profile permalink -> (name, version), as the 0.5 profiles list them in ``conformsTo``.
PROFILES: dict[str, tuple[str, str]] = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    _WORKFLOW_RO_CRATE: ("Workflow RO-Crate", "1.0"),
}

#: No published vocabulary has "how many times a task ran (retries included)", so
#: it is an ad hoc term under RO-Crate 1.1's ``https://w3id.org/ro/terms/<namespace>``
#: convention, declared in the context and described in the crate.
ATTEMPTS_TERM = "https://w3id.org/ro/terms/mltoolkit#attempts"

# The run record's own path; flows/run_record.py owns the constant, but the pure
# layer must not import the Prefect layer.
_RUN_RECORD = "_mltoolkit/run.json"

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

# RO-Crate 1.1 requires a license and allows a textual one; the record names none.
_NO_LICENSE = "No license was declared for this run's outputs; ask the owner of the work directory before reuse."
# Specs and flow files are small; the cap only guards against hashing something
# huge that happens to sit next to a workflow file.
_HASH_LIMIT = 16 * 1024 * 1024
# Longer strings are payloads, not paths: don't stat them.
_PATH_LIMIT = 4096
_GLOB_CHARACTERS = frozenset("*?[")
_SPEC_SUFFIXES = (".yml", ".yaml")

# name -> (display name, homepage, PyPI project or None). Release pages make
# absolute ids, which Process Run Crate prefers for tools; mltoolkit has none.
_SOFTWARE = {
    "python": ("Python", "https://www.python.org/", None),
    "mltoolkit": ("mltoolkit", None, None),
    "prefect": ("Prefect", "https://www.prefect.io/", "prefect"),
    "scikit-learn": ("scikit-learn", "https://scikit-learn.org/", "scikit-learn"),
    "numpy": ("NumPy", "https://numpy.org/", "numpy"),
    "matplotlib": ("Matplotlib", "https://matplotlib.org/", "matplotlib"),
    "cloudpickle": ("cloudpickle", "https://github.com/cloudpipe/cloudpickle", "cloudpickle"),
}
_ENGINE = ("prefect", "mltoolkit")


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


def write_run_crate(workdir: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Describe the run ``record`` as ``WORKDIR/ro-crate-metadata.json``; return its path.

    Only the metadata file is written (atomically: temp file + rename), so a
    crash never leaves a half-written crate and no data file is copied.

    Args:
        workdir: the run's work directory, which becomes the crate's root.
        record: the run record (the ``run.json`` format of ``flows/run_record.py``);
            missing keys are tolerated, so older records still get a crate.
    """
    root = Path(workdir).resolve()
    crate = build_run_crate(root, record)
    # ro-crate-py's own writers would copy data entities (or warn about their
    # missing sources); generating the JSON-LD and writing it ourselves writes
    # only the metadata file.
    document = crate.metadata.generate()
    path = root / CRATE_METADATA
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        # One entity per line, each through json's C encoder (indent= would
        # force the pure-Python one, several times slower on 10,000 steps);
        # streaming keeps the whole text out of memory.
        handle.write('{"@context": ' + json.dumps(document["@context"], ensure_ascii=False) + ',\n"@graph": [\n')
        for position, entity in enumerate(document["@graph"]):
            if position:
                handle.write(",\n")
            handle.write(json.dumps(_compact(entity), ensure_ascii=False, default=str))
        handle.write("\n]}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def build_run_crate(workdir: str | os.PathLike[str], record: Mapping[str, Any]) -> ROCrate:
    """The run ``record`` as an in-memory :class:`~rocrate.rocrate.ROCrate` (nothing written).

    Entities whose ids are workdir-relative paths have no source, so even a
    later ``crate.write()`` could not copy data; use :func:`write_run_crate`.
    """
    return _RunCrateBuilder(Path(workdir).resolve(), record).build()


class _RunCrateBuilder:
    """One pass over the record; every lookup is a dict, so the build is linear in its size."""

    def __init__(self, root: Path, record: Mapping[str, Any]) -> None:
        self.root = root
        self.root_prefix = str(root).rstrip(os.sep) + os.sep
        self.record = record
        self.crate = ROCrate(version=RO_CRATE_VERSION)
        self.files: dict[str, File] = {}  # crate key (relative path or URI) -> entity
        self.file_keys: dict[str, list[str] | None] = {}  # parameter string -> crate keys, None: not files
        self.examples: dict[str, dict[str, None]] = {}  # crate key -> FormalParameter ids (ordered set)
        self.stages: dict[str, tuple[Entity, Entity]] = {}  # stage path -> (HowToStep, tool)
        self.tool_inputs: dict[str, Entity] = {}  # FormalParameter id -> entity
        self.entity_ids: set[str] = set()
        self.software: list[Entity] = []
        self.engine: list[Entity] = []
        self.known_outputs: set[str] = set()
        self.outputs_by_folder: dict[str, dict[str, str]] = {}  # folder key -> {file name: key}
        self.workflow: Entity | None = None
        # The native flow's steps are mltoolkit functions, so mltoolkit's version
        # versions them; a spec's step definitions have no version of their own.
        self.tool_version: str | None = None

    # --- the whole crate -------------------------------------------------------------

    def build(self) -> ROCrate:
        record = self.record
        crate = self.crate
        crate.metadata.extra_contexts.append(WORKFLOW_RUN_CONTEXT)
        crate.metadata.extra_terms["attempts"] = ATTEMPTS_TERM
        steps = [step for step in (record.get("steps") or []) if isinstance(step, Mapping)]
        # Outputs first: a parameter naming a file a step wrote is that File even
        # if a later cleanup deleted it, and order in the list must not matter.
        for step in steps:
            for relative in _mapping(step.get("outputs")):
                key = self._output_key(str(relative))
                self.known_outputs.add(key)
                folder, name = posixpath.split(key)
                self.outputs_by_folder.setdefault(folder, {})[name] = key

        self._add_software(_mapping(record.get("software")))
        self.workflow = self._add_workflow()
        run_id = str(record.get("flow_run_id") or uuid.uuid4())
        inputs, formal_inputs = self._add_run_inputs(_mapping(record.get("inputs")))
        if formal_inputs:
            self.workflow["input"] = formal_inputs
        run_status = action_status(record.get("status"))
        run_action = crate.add_action(
            self.workflow,
            identifier=f"#workflow-run-{quote(run_id)}",
            object=inputs,
            properties=_without_none(
                {
                    "name": f"Run of {self.workflow.get('name') or 'the workflow'}",
                    "identifier": record.get("flow_run_id"),
                    "startTime": _iso(record.get("started")),
                    "endTime": _iso(record.get("ended")),
                    "actionStatus": run_status,
                }
            ),
        )

        states: Counter[str] = Counter()
        consumed: set[str] = set()
        produced: list[list[str]] = []  # per step, its output keys
        controls: list[Entity] = []
        step_actions: list[Entity] = []
        first_error: str | None = None
        for position, step in enumerate(steps):
            action, control, state, error = self._add_step(position, step, consumed, produced)
            step_actions.append(action)
            controls.append(control)
            states[state] += 1
            if error and first_error is None:
                first_error = error

        # The record does not say which files are the workflow's outputs: take
        # everything the sink steps (no output read by another step) wrote.
        finals = [self.files[key] for keys in produced if keys and consumed.isdisjoint(keys) for key in keys]
        if finals:
            run_action["result"] = finals
        if run_status == FAILED:
            failed = sum(count for state, count in states.items() if action_status(state) == FAILED)
            run_action["error"] = str(
                record.get("error")
                or (f"{failed} step(s) failed; first: {first_error}" if first_error else "the run failed")
            )
        self._add_engine_run(run_id, run_action, controls, run_status)
        for key, formal_ids in self.examples.items():
            self.files[key]["exampleOfWork"] = [{"@id": formal_id} for formal_id in formal_ids]
        self._add_run_record(run_action)
        run_action["description"] = (
            f"{record.get('flow') or 'workflow'} run {record.get('flow_run_id') or ''} "
            f"({record.get('status') or 'unknown status'}) of {len(steps)} step(s): {_summary(states)}"
        )
        self._describe_root([run_action, *step_actions], len(steps), states)
        self._add_attempts_term()
        return crate

    def _describe_root(self, actions: list[Entity], step_count: int, states: Counter[str]) -> None:
        record = self.record
        root = self.crate.root_dataset
        flow = str(record.get("flow") or "workflow")
        root["name"] = f"{flow} run {record.get('flow_run_id') or ''}".strip()
        summary = _summary(states)
        root["description"] = (
            f"Provenance of one {flow} run of mltoolkit ({record.get('status') or 'unknown status'}): "
            f"{step_count} step(s): {summary}. "
            f"The work directory is the crate; the run record is {_RUN_RECORD}."
        )
        if record.get("started"):
            root["dateCreated"] = _iso(record["started"])
        # RO-Crate requires datePublished; the end of the run is when it was complete.
        if record.get("ended"):
            root["datePublished"] = _iso(record["ended"])
        profiles = []
        for profile_id, (name, version) in PROFILES.items():
            profiles.append(
                self._add(
                    ContextEntity(
                        self.crate,
                        profile_id,
                        properties={
                            "@type": "CreativeWork",
                            "name": name,
                            "version": version,
                        },
                    )
                )
            )
        root["conformsTo"] = profiles
        # Process Run Crate: every CreateAction SHOULD be listed under mentions.
        root["mentions"] = actions
        root["license"] = str(record.get("license") or _NO_LICENSE)

    # --- software, workflow, inputs --------------------------------------------------

    def _add_software(self, versions: Mapping[str, Any]) -> None:
        for name, version in versions.items():
            name = str(name)
            version = str(version) if version is not None else "unknown"
            display, homepage, project = _SOFTWARE.get(name, (name, None, None))
            known = version != "unknown"
            if name == "python" and known:
                identifier = f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/"
            elif project and known:
                identifier = f"https://pypi.org/project/{project}/{quote(version)}/"
            else:
                identifier = f"#software/{quote(name)}"
            app = self._add(
                SoftwareApplication(
                    self.crate,
                    identifier,
                    properties=_without_none(
                        {
                            "name": display,
                            "softwareVersion": version,
                            "url": homepage or (f"https://pypi.org/project/{project}/" if project else None),
                        }
                    ),
                )
            )
            self.software.append(app)
            if name in _ENGINE:
                self.engine.append(app)

    def _add_workflow(self) -> Entity:
        record = self.record
        flow = str(record.get("flow") or "")
        raw = record.get("workflow")
        entry_point = raw.get("flow") if isinstance(raw, Mapping) else None
        location = _workflow_location(raw)
        # Records written before "flow" existed only ran specs by their YAML file.
        spec = flow == "spec-workflow" or (not flow and bool(location) and location.endswith(_SPEC_SUFFIXES))
        versions = _mapping(record.get("software"))
        if spec:
            language = ComputerLanguage(
                self.crate,
                "#yadage",
                properties={
                    "name": "yadage",
                    "alternateName": "yadage workflow specification",
                    "url": {"@id": "https://github.com/yadage/yadage"},
                },
            )
        else:
            language = ComputerLanguage(
                self.crate,
                "#prefect",
                properties=_without_none(
                    {
                        "name": "Prefect",
                        "alternateName": "Prefect flow (Python)",
                        "url": {"@id": "https://www.prefect.io/"},
                        "version": str(versions["prefect"]) if versions.get("prefect") else None,
                    }
                ),
            )
        self._add(language)
        if not spec and versions.get("mltoolkit") not in (None, "unknown"):
            self.tool_version = str(versions["mltoolkit"])
        platform = ", ".join(
            f"{_SOFTWARE[name][0]} {versions[name]}" for name in ("prefect", "python") if versions.get(name)
        )
        properties = _without_none(
            {
                "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                "name": str(
                    entry_point or (posixpath.basename(location.rstrip("/")) if location else flow or "workflow")
                ),
                "runtimePlatform": platform or None,
                "version": self.tool_version,  # the flow file ships with mltoolkit
            }
        )
        if location is None:
            # An old or hand-made record that names no workflow: still a valid
            # Workflow RO-Crate mainEntity, as a contextual entity (no File type).
            properties["@type"] = properties["@type"][1:]
            workflow = self._add(ContextEntity(self.crate, "#workflow", properties=properties))
            workflow["programmingLanguage"] = language
            self.crate.mainEntity = workflow
            # What add_workflow(main=True) would have declared on the descriptor.
            self.crate.metadata.append_to("conformsTo", {"@id": _WORKFLOW_RO_CRATE})
            return workflow
        key, local = self._location_key(location)
        if local is not None:
            properties.update(_file_facts(local, with_hash=True))
        if _is_uri(key):
            properties["url"] = key  # Process Run Crate wants a source URL for every instrument
            workflow = self.crate.add_workflow(source=key, main=True, lang=language, properties=properties)
        else:
            workflow = self.crate.add_workflow(dest_path=key, main=True, lang=language, properties=properties)
        self.files[key] = workflow
        if spec and local is not None:
            self._spec_parts(local, workflow.id)
        return workflow

    def _spec_parts(self, workflow_file: str, workflow_id: str) -> None:
        """The spec's other source files: the local YAML its ``$ref`` reach, transitively.

        They are ``SoftwareSourceCode`` files that point to the workflow with
        ``isPartOf``: Provenance Run Crate validators read every item of a
        workflow's ``hasPart`` as an orchestrated tool that some action must use
        as instrument. Other YAML next to ``workflow.yml`` (typically its
        ``inputs.yml``) is listed in the crate as a plain File.
        """
        seen = {workflow_file}
        pending = [workflow_file]
        while pending:
            for path in _local_refs(pending.pop()):
                if path in seen:
                    continue
                seen.add(path)
                pending.append(path)
                self._described_file(
                    path,
                    {
                        "@type": ["File", "SoftwareSourceCode"],
                        "name": os.path.basename(path),
                        "url": Path(path).as_uri(),
                        "programmingLanguage": {"@id": "#yadage"},
                        "isPartOf": {"@id": workflow_id},
                    },
                )
        folder = os.path.dirname(workflow_file)
        try:
            neighbours = sorted(
                entry.path for entry in os.scandir(folder) if entry.is_file() and entry.name.endswith(_SPEC_SUFFIXES)
            )
        except OSError:
            neighbours = []
        for path in neighbours:
            if os.path.normpath(path) not in seen:
                self._described_file(
                    os.path.normpath(path),
                    {
                        "description": "YAML file next to the workflow (not referenced by it), e.g. its default inputs",
                    },
                )

    def _described_file(self, path: str, properties: dict[str, Any]) -> File:
        return self._file(self._path_key(path), {**properties, **_file_facts(path, with_hash=True)})

    def _add_run_inputs(self, inputs: Mapping[str, Any]) -> tuple[list[Entity], list[Entity]]:
        """Workflow ``FormalParameter`` entities and what realised them in this run."""
        realised: list[Entity] = []
        formals: list[Entity] = []
        for name, value in inputs.items():
            name = str(name)
            keys = self._file_keys_of(value)
            formal = self._formal_parameter(f"#input:{quote(name)}", name, value, keys is not None)
            formals.append(formal)
            entities = self._realise(name, value, keys, f"#value:{quote(name)}", formal)
            # A "<name>_sha256" input is the expected content hash of input <name>.
            digest = inputs.get(f"{name}_sha256")
            if keys is not None and len(keys) == 1 and isinstance(digest, str) and digest:
                entities[0]["sha256"] = digest
            realised.extend(entities)
        return realised, formals

    # --- steps ---------------------------------------------------------------------

    def _add_step(
        self, position: int, step: Mapping[str, Any], consumed: set[str], produced: list[list[str]]
    ) -> tuple[Entity, Entity, str, str | None]:
        """A step's CreateAction and ControlAction; returns both, the state and the error."""
        scope = str(step.get("scope") or "")
        stage = str(step.get("stage") or step.get("name") or "step")
        name = str(step.get("name") or stage)
        state = str(step.get("state") or "PENDING").upper()
        stage_path = _stage_path(scope, stage)
        howto, tool = self._stage(stage_path, stage)
        key = self._unique(f"#step-run{_quote_path(str(step.get('id') or f'{scope}/{name}'))}", position)
        suffix = key[len("#step-run") :]

        recorded = _mapping(step.get("outputs"))
        outputs = {self._output_key(str(relative)): digest for relative, digest in recorded.items()}
        objects: list[Entity] = []
        for parameter, value in _mapping(step.get("parameters")).items():
            parameter = str(parameter)
            keys = self._file_keys_of(value)
            if keys is not None and not outputs.keys().isdisjoint(keys):
                # A parameter naming where the step writes (yadage's outfile,
                # outdir) is a value the step was given, not a file it consumed.
                keys = None
            formal = self._tool_input(stage_path, tool, parameter, value, keys is not None)
            objects.extend(self._realise(parameter, value, keys, f"#value{suffix}:{quote(parameter)}", formal))
            if keys:
                consumed.update(keys)  # own outputs were excluded above
        results: list[Entity] = []
        for output_key, digest in outputs.items():
            entity = self._file(output_key)
            if digest:
                entity["sha256"] = str(digest)
            local = self._local_path(output_key)
            if local is not None:
                for prop, value in _file_facts(local, with_hash=False).items():
                    entity[prop] = value
            results.append(entity)
        produced.append(list(outputs))

        status = action_status(state)
        error = step.get("error")
        details = [f"stage {stage}"]
        if step.get("index") is not None:
            details.append(f"index {step['index']}")
        if scope:
            details.append(f"scope {scope}")
        details.append(f"state {state}")
        properties = _without_none(
            {
                "name": f"Run of step {name}" + (f" ({scope})" if scope else ""),
                "description": ", ".join(details),
                "identifier": step.get("task_run_id"),
                "startTime": _iso(step.get("started")),
                "endTime": _iso(step.get("ended")),
                "actionStatus": status,
                "attempts": step.get("attempts"),
            }
        )
        if status == FAILED:
            properties["error"] = str(error) if error else f"step ended in state {state}"
        elif error:
            properties["description"] += f"; error: {error}"
        action = self.crate.add_action(tool, identifier=key, object=objects, result=results, properties=properties)
        control = self.crate.add_action(
            howto,
            identifier=self._unique(f"#control{suffix}", position),
            object=action,
            properties={"@type": "ControlAction", "name": f"orchestrate {name}"},
        )
        failure = f"{name}: {properties['error']}" if "error" in properties else None
        return action, control, state, failure

    def _stage(self, stage_path: str, stage: str) -> tuple[Entity, Entity]:
        """The ``HowToStep`` and tool of a stage (one per stage, shared by its scattered steps)."""
        entry = self.stages.get(stage_path)
        if entry is None:
            workflow = self.workflow
            assert workflow is not None
            tool = self._add(
                SoftwareApplication(
                    self.crate,
                    f"#tool{stage_path}",
                    properties=_without_none(
                        {
                            "name": stage,
                            "description": f"The tool that runs stage {stage_path.lstrip('/')} of {workflow.get('name')}",
                            # Its source is the workflow file (flow functions, or steps.yml next to workflow.yml).
                            "url": workflow.id if _is_uri(workflow.id) else None,
                            "version": self.tool_version,
                        }
                    ),
                )
            )
            if self.software:
                tool["softwareRequirements"] = self.software
            howto = self._add(
                ContextEntity(
                    self.crate,
                    f"#stage{stage_path}",
                    properties={
                        "@type": "HowToStep",
                        "name": stage,
                        "position": len(self.stages),
                        "workExample": tool,
                    },
                )
            )
            workflow.append_to("step", howto)
            workflow.append_to("hasPart", tool)
            entry = self.stages[stage_path] = (howto, tool)
        return entry

    def _tool_input(self, stage_path: str, tool: Entity, name: str, value: Any, is_file: bool) -> Entity:
        identifier = f"#input{stage_path}:{quote(name)}"
        formal = self.tool_inputs.get(identifier)
        if formal is None:
            formal = self._formal_parameter(identifier, name, value, is_file)
            tool.append_to("input", formal)
            self.tool_inputs[identifier] = formal
        return formal

    def _formal_parameter(self, identifier: str, name: str, value: Any, is_file: bool) -> Entity:
        """A FormalParameter typed after the (first) value seen for it."""
        formal = self.crate.add_formal_parameter(name, _additional_type(value, is_file), identifier=identifier)
        # ro-crate-py always writes valueRequired=False; the record cannot tell
        # whether a slot was optional, so claim nothing.
        del formal["valueRequired"]
        if isinstance(value, list) and (is_file or _scalars(value)):
            # Lists are written as multiple values, and a one-element list as a
            # single one (RO-Crate's JSON-LD style): this keeps them lists.
            formal["multipleValues"] = True
        self.entity_ids.add(identifier)
        return formal

    def _add_engine_run(self, run_id: str, run_action: Entity, controls: list[Entity], status: str) -> None:
        """Provenance Run Crate's OrganizeAction: the engine orchestrating the step runs."""
        if not self.engine:
            return
        record = self.record
        names = " + ".join(str(app.get("name")) for app in self.engine)
        self.crate.add_action(
            self.engine,
            identifier=f"#engine-run-{quote(run_id)}",
            object=controls,
            result=run_action,
            properties=_without_none(
                {
                    "@type": "OrganizeAction",
                    "name": f"Run of {names}",
                    "startTime": _iso(record.get("started")),
                    "endTime": _iso(record.get("ended")),
                    "actionStatus": status,
                }
            ),
        )

    def _add_run_record(self, run_action: Entity) -> None:
        path = self.root / _RUN_RECORD
        if not path.is_file():
            return
        entity = self._file(_RUN_RECORD)
        entity["name"] = "mltoolkit run record"
        entity["about"] = run_action
        for prop, value in _file_facts(str(path), with_hash=False).items():
            entity[prop] = value

    def _add_attempts_term(self) -> None:
        self._add(
            ContextEntity(
                self.crate,
                ATTEMPTS_TERM,
                properties={
                    "@type": "rdf:Property",
                    "rdfs:label": "attempts",
                    "rdfs:comment": "How many times the action's task ran, retries included (Prefect's run count).",
                },
            )
        )

    # --- values and files ------------------------------------------------------------

    def _realise(self, name: str, value: Any, keys: list[str] | None, pv_id: str, formal: Entity) -> list[Entity]:
        """What realised a parameter: its File entities, or one PropertyValue."""
        if keys is not None:
            files = []
            for key in keys:
                files.append(self._file(key))
                self.examples.setdefault(key, {})[formal.id] = None
            return files
        properties: dict[str, Any] = {"@type": "PropertyValue", "name": name, "exampleOfWork": formal}
        if value is not None:
            properties["value"] = _property_value(value)
        return [self._add(ContextEntity(self.crate, self._unique(pv_id, 0), properties=properties))]

    def _file_keys_of(self, value: Any) -> list[str] | None:
        """Crate keys when ``value`` names files (a path, a URL, a glob, or a list of them), else ``None``."""
        if isinstance(value, str):
            return self._string_keys(value)
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            keys: list[str] = []
            for item in value:
                found = self._string_keys(item)
                if found is None:
                    return None
                keys.extend(found)
            return keys
        return None

    def _string_keys(self, text: str) -> list[str] | None:
        """The crate keys of the file(s) a parameter string names, or ``None``; cached per string."""
        if text in self.file_keys:
            return self.file_keys[text]
        keys: list[str] | None = None
        if text and len(text) < _PATH_LIMIT and "\n" not in text:
            try:
                scheme = urlsplit(text).scheme.lower()
            except ValueError:
                scheme = "?"
            if scheme in ("http", "https", "ftp"):
                keys = [text]
            elif scheme == "file":
                keys = self._existing_keys(url2pathname(urlsplit(text).path))
            elif len(scheme) <= 1:  # no scheme (or a Windows drive letter)
                if os.path.isabs(text):
                    keys = self._existing_keys(text)
                else:
                    # Relative init values resolve against WORKDIR/init (yadage's init step).
                    for base in (os.path.join(str(self.root), "init"), str(self.root)):
                        keys = self._existing_keys(os.path.join(base, text))
                        if keys is not None:
                            break
        self.file_keys[text] = keys
        return keys

    def _existing_keys(self, path: str) -> list[str] | None:
        path = os.path.normpath(path)
        folder, name = os.path.split(path)
        if _GLOB_CHARACTERS.intersection(name):
            return self._glob_keys(folder, name)
        key = self._path_key(path)
        return [key] if key in self.known_outputs or os.path.isfile(path) else None

    def _glob_keys(self, folder: str, pattern: str) -> list[str] | None:
        """The recorded outputs a glob names (yadage publishes ``{outdir}/*.pkl``), as the shell would.

        Only the last path component may be a pattern: looking it up among the
        outputs of one folder keeps this linear.
        """
        if _GLOB_CHARACTERS.intersection(folder):
            return None
        folder_key = "" if folder == str(self.root) else self._path_key(folder)
        names = self.outputs_by_folder.get(folder_key, {})
        hidden_ok = pattern.startswith(".")
        matches = [
            key
            for name, key in sorted(names.items())
            if (hidden_ok or not name.startswith(".")) and fnmatchcase(name, pattern)
        ]
        return matches or None

    def _path_key(self, absolute: str) -> str:
        """Workdir-relative POSIX path for files in the crate, a ``file://`` URI otherwise."""
        if absolute.startswith(self.root_prefix):
            return Path(absolute[len(self.root_prefix) :]).as_posix()
        return Path(absolute).as_uri()

    def _output_key(self, relative: str) -> str:
        if os.path.isabs(relative):
            return self._path_key(os.path.normpath(relative))
        normal = posixpath.normpath(relative.replace(os.sep, "/"))
        if normal == ".." or normal.startswith("../"):
            return self._path_key(os.path.normpath(os.path.join(str(self.root), normal)))
        return normal

    def _location_key(self, location: str) -> tuple[str, str | None]:
        """Crate key and local path (``None`` for remote) of the workflow file."""
        try:
            scheme = urlsplit(location).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme == "file":
            local = os.path.normpath(url2pathname(urlsplit(location).path))
            return self._path_key(local), local
        if len(scheme) > 1:
            return location, None
        local = os.path.normpath(os.path.abspath(location))
        return self._path_key(local), local

    def _local_path(self, key: str) -> str | None:
        if not _is_uri(key):
            return os.path.join(str(self.root), key)
        if key.startswith("file:"):
            return url2pathname(urlsplit(key).path)
        return None

    def _file(self, key: str, properties: dict[str, Any] | None = None) -> File:
        """The File entity for a crate key, created once (``properties`` only apply then).

        Relative ones get no source, so ro-crate-py has nothing it could copy;
        absolute ones keep their URI as id and are never fetched.
        """
        entity = self.files.get(key)
        if entity is None:
            if _is_uri(key):
                entity = File(self.crate, source=key, properties=properties)
            else:
                entity = File(self.crate, dest_path=key, properties=properties)
            self.crate.add(entity)
            self.files[key] = entity
        return entity

    def _add(self, entity: Entity) -> Entity:
        self.entity_ids.add(entity.id)
        self.crate.add(entity)
        return entity

    def _unique(self, identifier: str, position: int) -> str:
        """``identifier``, or a variant of it when a malformed record repeats a step id."""
        if identifier in self.entity_ids:
            base = f"{identifier}~{position}"
            identifier, n = base, 1
            while identifier in self.entity_ids:
                identifier, n = f"{base}.{n}", n + 1
        self.entity_ids.add(identifier)
        return identifier


# --- helpers ----------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _compact(entity: Mapping[str, Any]) -> dict[str, Any]:
    """RO-Crate's JSON-LD style: a single value rather than a one-element list (same RDF)."""
    return {key: value[0] if isinstance(value, list) and len(value) == 1 else value for key, value in entity.items()}


def _summary(states: Counter[str]) -> str:
    return ", ".join(f"{count} {state.lower()}" for state, count in sorted(states.items())) or "none"


def _iso(value: Any) -> Any:
    """A record time as ISO 8601 with millisecond precision, when it has an offset.

    rocrate-validator's Process Run Crate shapes only accept ``.fff+hh:mm``
    (ISO 8601 allows more digits; run.json keeps the microseconds). Naive or
    unparsable times pass through unchanged rather than guessing a zone.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return value.isoformat()
    else:
        return value
    if parsed.utcoffset() is None:
        return parsed.isoformat() if isinstance(value, datetime) else value
    return parsed.isoformat(timespec="milliseconds")


def _without_none(properties: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in properties.items() if value is not None}


def _is_uri(key: str) -> bool:
    return len(urlsplit(key).scheme) > 1


def _quote_path(text: str) -> str:
    text = text if text.startswith("/") else "/" + text
    return quote(text, safe="/-_.~")


def _stage_path(scope: str, stage: str) -> str:
    """``/map/stage1`` for stage ``stage1`` in scope ``/map/3``: instances share the stage."""
    parts = [part for part in scope.split("/") if part and not part.isdigit()]
    return _quote_path("/".join(parts + [stage]))


# yadage's $ref values: {$ref: 'steps.yml#/step'}, $ref: "x.yml". A regex rather
# than the loader: the crate needs the file names, not the resolved tree.
_REF = re.compile(r"""\$ref['"]?\s*:\s*['"]?([^'"#,}\s]*)""")


def _local_refs(path: str) -> list[str]:
    """Local files a spec file's ``$ref`` values name (relative to it), existing ones only."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(_HASH_LIMIT)
    except (OSError, UnicodeDecodeError):
        return []
    folder = os.path.dirname(path)
    found: list[str] = []
    for target in _REF.findall(text):
        if not target or len(urlsplit(target).scheme) > 1:
            continue  # a pointer into the same file, or a URL
        candidate = os.path.normpath(os.path.join(folder, target))
        if candidate not in found and os.path.isfile(candidate):
            found.append(candidate)
    return found


def _workflow_location(raw: Any) -> str | None:
    """The workflow file (path or URI) a record's ``workflow`` names, if any."""
    if isinstance(raw, Mapping):
        raw = raw.get("file") or raw.get("workflow") or raw.get("path")
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    return raw if isinstance(raw, str) and raw else None


def _file_facts(path: str, *, with_hash: bool) -> dict[str, Any]:
    """``contentSize``, ``encodingFormat`` and (for small files, if asked) ``sha256``."""
    facts: dict[str, Any] = {}
    try:
        size = os.stat(path).st_size
    except OSError:
        return facts
    facts["contentSize"] = str(size)
    if with_hash and size <= _HASH_LIMIT:
        with contextlib.suppress(OSError):  # unreadable: the size still says something
            facts["sha256"] = sha256_file(path)
    media_type = mimetypes.guess_type(path)[0] or ("application/yaml" if path.endswith(_SPEC_SUFFIXES) else None)
    if media_type:
        facts["encodingFormat"] = media_type
    return facts


def _scalars(values: Any) -> bool:
    return all(isinstance(item, (str, bool, int, float)) for item in values)


def _additional_type(value: Any, is_file: bool) -> str:
    """Bioschemas ``additionalType`` of a parameter: ``File`` or a schema.org DataType."""
    if is_file:
        return "File"
    if isinstance(value, list) and not _scalars(value):
        return "Text"
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return "Boolean"
    if isinstance(sample, int):
        return "Integer"
    if isinstance(sample, float):
        return "Float"
    return "Text"  # strings, and structures, which are stored as JSON text


def _property_value(value: Any) -> Any:
    """A PropertyValue ``value``: scalars and lists of scalars as they are, the rest as JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and _scalars(value):
        return list(value)
    return json.dumps(value, sort_keys=True, default=str)
