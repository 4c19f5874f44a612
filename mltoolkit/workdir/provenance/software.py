"""The software that ran a workflow as ``SoftwareApplication`` entities (release pages as ids)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from rocrate.model.entity import Entity
from rocrate.model.softwareapplication import SoftwareApplication

from mltoolkit.workdir.provenance.draft import CrateDraft
from mltoolkit.workdir.provenance.values import without_none
from mltoolkit.workdir.provenance.vocabulary import ENGINE, SOFTWARE

__all__ = ["Software", "add_software"]


@dataclass
class Software:
    """The applications of a run: all of them (every tool requires them) and the engine's."""

    applications: list[Entity] = field(default_factory=list)
    engine: list[Entity] = field(default_factory=list)


def _software_id(name: str, version: str, project: str | None) -> str:
    """A python.org or PyPI release page when the version is known, else a local id."""
    known = version != "unknown"
    if name == "python" and known:
        return f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/"
    if project and known:
        return f"https://pypi.org/project/{project}/{quote(version)}/"
    return f"#software/{quote(name)}"


def add_software(draft: CrateDraft, versions: Mapping[str, str | None]) -> Software:
    """One ``SoftwareApplication`` per recorded version (``{name: version}``)."""
    software = Software()
    for raw_name, raw_version in versions.items():
        name = str(raw_name)
        version = str(raw_version) if raw_version is not None else "unknown"
        display, homepage, project = SOFTWARE.get(name, (name, None, None))
        application = draft.add(
            SoftwareApplication(
                draft.crate,
                _software_id(name, version, project),
                properties=without_none(
                    {
                        "name": display,
                        "softwareVersion": version,
                        "url": homepage or (f"https://pypi.org/project/{project}/" if project else None),
                    }
                ),
            )
        )
        software.applications.append(application)
        if name in ENGINE:
            software.engine.append(application)
    return software
