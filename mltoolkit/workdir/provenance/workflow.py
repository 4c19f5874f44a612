"""The workflow of a run crate: its main entity, language, source files and inputs.

The workflow (``ComputationalWorkflow`` + ``HowTo``) is the native flow's Python
file or a yadage spec's ``workflow.yml``. Files outside the work directory keep
absolute ``file://`` ids and are never copied. A spec's ``$ref`` targets
(``steps.yml``...) are ``SoftwareSourceCode`` files ``isPartOf`` the workflow;
other YAML next to it (``inputs.yml``) is listed as a File. The workflow's
``input`` lists one ``FormalParameter`` per run input.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from rocrate.model.computerlanguage import ComputerLanguage
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity

from mltoolkit.workdir.provenance.draft import CrateDraft
from mltoolkit.workdir.provenance.files import HASH_LIMIT, SPEC_SUFFIXES, file_facts
from mltoolkit.workdir.provenance.ids import is_uri
from mltoolkit.workdir.provenance.values import without_none
from mltoolkit.workdir.provenance.vocabulary import SOFTWARE, WORKFLOW_RO_CRATE
from mltoolkit.workdir.record import RunRecord, RunWorkflow

__all__ = ["Workflow", "add_run_inputs", "add_workflow", "workflow_location"]

# yadage's $ref values: {$ref: 'steps.yml#/step'}, $ref: "x.yml". A regex rather
# than the loader: the crate needs the file names, not the resolved tree.
_REF = re.compile(r"""\$ref['"]?\s*:\s*['"]?([^'"#,}\s]*)""")
_WORKFLOW_TYPES = ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"]


@dataclass
class Workflow:
    """The workflow entity, and the version its tools carry.

    The native flow's steps are mltoolkit functions, so mltoolkit's version
    versions them; a spec's step definitions have no version of their own.
    """

    entity: Entity
    tool_version: str | None


def workflow_location(raw: RunWorkflow | str | None) -> str | None:
    """The workflow file (path or URI) a record's ``workflow`` names, if any."""
    if isinstance(raw, RunWorkflow):
        raw = raw.file or raw.workflow or (raw.model_extra or {}).get("path")
    return raw if isinstance(raw, str) and raw else None


def add_workflow(draft: CrateDraft, record: RunRecord) -> Workflow:
    """The crate's ``mainEntity``: the workflow file, or a contextual entity when the record names none."""
    flow = record.flow or ""
    location = workflow_location(record.workflow)
    # Records written before "flow" existed only ran specs by their YAML file.
    spec = flow == "spec-workflow" or (not flow and bool(location) and str(location).endswith(SPEC_SUFFIXES))
    versions = record.software
    language = draft.add(_language(draft, spec, versions))
    tool_version = None
    if not spec and versions.get("mltoolkit") not in (None, "unknown"):
        tool_version = str(versions["mltoolkit"])
    entry_point = record.workflow.flow if isinstance(record.workflow, RunWorkflow) else None
    name = entry_point or (posixpath.basename(location.rstrip("/")) if location else flow or "workflow")
    platform = ", ".join(
        f"{SOFTWARE[item][0]} {versions[item]}" for item in ("prefect", "python") if versions.get(item)
    )
    properties = without_none(
        {
            "@type": list(_WORKFLOW_TYPES),
            "name": str(name),
            "runtimePlatform": platform or None,
            "version": tool_version,  # the flow file ships with mltoolkit
        }
    )
    if location is None:
        return Workflow(_contextual_workflow(draft, properties, language), tool_version)
    return Workflow(_workflow_file(draft, location, properties, language, spec), tool_version)


def _language(draft: CrateDraft, spec: bool, versions: Mapping[str, str]) -> ComputerLanguage:
    if spec:
        return ComputerLanguage(
            draft.crate,
            "#yadage",
            properties={
                "name": "yadage",
                "alternateName": "yadage workflow specification",
                "url": {"@id": "https://github.com/yadage/yadage"},
            },
        )
    return ComputerLanguage(
        draft.crate,
        "#prefect",
        properties=without_none(
            {
                "name": "Prefect",
                "alternateName": "Prefect flow (Python)",
                "url": {"@id": "https://www.prefect.io/"},
                "version": str(versions["prefect"]) if versions.get("prefect") else None,
            }
        ),
    )


def _contextual_workflow(draft: CrateDraft, properties: dict[str, Any], language: Entity) -> Entity:
    """An old or hand-made record names no workflow: still a valid Workflow RO-Crate mainEntity (no File type)."""
    properties["@type"] = properties["@type"][1:]
    workflow = draft.add(ContextEntity(draft.crate, "#workflow", properties=properties))
    workflow["programmingLanguage"] = language
    draft.crate.mainEntity = workflow
    # What add_workflow(main=True) would have declared on the descriptor.
    draft.crate.metadata.append_to("conformsTo", {"@id": WORKFLOW_RO_CRATE})
    return workflow


def _workflow_file(
    draft: CrateDraft, location: str, properties: dict[str, Any], language: Entity, spec: bool
) -> Entity:
    key, local = draft.keys.location_key(location)
    if local is not None:
        properties.update(file_facts(local, with_hash=True))
    if is_uri(key):
        properties["url"] = key  # Process Run Crate wants a source URL for every instrument
        workflow = draft.crate.add_workflow(source=key, main=True, lang=language, properties=properties)
    else:
        workflow = draft.crate.add_workflow(dest_path=key, main=True, lang=language, properties=properties)
    draft.files.register(key, workflow)
    if spec and local is not None:
        _spec_parts(draft, local, workflow.id)
    return workflow


def _spec_parts(draft: CrateDraft, workflow_file: str, workflow_id: str) -> None:
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
            draft.files.described(
                path,
                {
                    "@type": ["File", "SoftwareSourceCode"],
                    "name": os.path.basename(path),
                    "url": Path(path).as_uri(),
                    "programmingLanguage": {"@id": "#yadage"},
                    "isPartOf": {"@id": workflow_id},
                },
            )
    for path in _neighbours(os.path.dirname(workflow_file)):
        if path not in seen:
            draft.files.described(
                path, {"description": "YAML file next to the workflow (not referenced by it), e.g. its default inputs"}
            )


def _neighbours(folder: str) -> list[str]:
    """The YAML files in ``folder``, sorted."""
    try:
        return sorted(
            os.path.normpath(entry.path)
            for entry in os.scandir(folder)
            if entry.is_file() and entry.name.endswith(SPEC_SUFFIXES)
        )
    except OSError:
        return []


def _local_refs(path: str) -> list[str]:
    """Local files a spec file's ``$ref`` values name (relative to it), existing ones only."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(HASH_LIMIT)
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


def add_run_inputs(draft: CrateDraft, inputs: Mapping[str, Any]) -> tuple[list[Entity], list[Entity]]:
    """The workflow's ``FormalParameter`` entities, and what realised them in this run."""
    realised: list[Entity] = []
    formals: list[Entity] = []
    for raw_name, value in inputs.items():
        name = str(raw_name)
        keys = draft.keys.of_value(value)
        formal = draft.formal_parameter(f"#input:{quote(name)}", name, value, keys is not None)
        formals.append(formal)
        entities = draft.realise(name, value, keys, f"#value:{quote(name)}", formal)
        # A "<name>_sha256" input is the expected content hash of input <name>.
        digest = inputs.get(f"{name}_sha256")
        if keys is not None and len(keys) == 1 and isinstance(digest, str) and digest:
            entities[0]["sha256"] = digest
        realised.extend(entities)
    return realised, formals
