"""The constructs of published yadage specs, one fixture each, and what running it must give.

Shared by the loader-level tests (``tests/mltoolkit/yadage/test_published_specs.py``,
the plain runner) and the tests through Prefect (``tests/flows/test_published_specs.py``):
both run ``tests/specs/<case>/workflow.yml`` with the case's inputs, init files,
image map and provided resources, then hand ``{step id: published}`` and the work
directory to :attr:`PublishedCase.check`.

Where yadage itself was run on a fixture (yadage-run 0.21.2, packtivity 0.17.1,
local backend, ``/opt/yadage-venv``), the case's ``yadage`` note says what it did.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.constants import SPECS

#: {step id: published}
Published = dict[str, Any]


def _text(path: str) -> str:
    return Path(path).read_text()


def _check_refs_forms(workdir: Path, published: Published) -> None:
    said = {step: _text(values["said"]).strip() for step, values in published.items()}
    assert said == {
        "/no_slash": "top-hello",
        "/empty_fragment": "whole",
        "/no_fragment": "nofragment",
        "/parts_of_a_step": "delphes-parts",
        "/nested/0/inner": "sub-hello",
    }


def _check_implied_dependency(workdir: Path, published: Published) -> None:
    assert _text(published["/reader"]["out"]) == "slow-result\n"
    assert _text(published["/after_reader"]["out"]) == "slow-result\nslow-result\n"


def _check_publish_only(workdir: Path, published: Published) -> None:
    work = str(workdir / "nested" / "deeper" / "work" / "work.txt")
    assert published["/nested/0/deeper/0/work"] == {"result": work}
    assert published["/nested/0/collect"] == {"known": work}  # process: null, environment: null
    assert published["/relay"] == {"relayed": "hello-from-init"}  # environment: null: 'exit 1' never ran
    assert _text(published["/higherscope"]["shown"]) == "hello-from-init\n"
    assert not (workdir / "relay" / "_packtivity").exists()  # nothing ran, so no command or log


def _check_init_globs(workdir: Path, published: Published) -> None:
    # map_i got the i-th file in sorted order (yadage: directory order); more/d.txt is not '*.txt'
    assert [published[f"/map_{i}"]["mapped"] for i in range(3)] == [
        str(workdir / f"map_{i}" / "mapped.txt") for i in range(3)
    ]
    assert [_text(published[f"/map_{i}"]["mapped"]) for i in range(3)] == ["ALPHA\n", "BRAVO\n", "CHARLIE\n"]
    assert _text(published["/reduce"]["combined"]) == "ALPHA\nBRAVO\nCHARLIE\nsettings\n*.missing\n"


def _check_batched_fromyaml(workdir: Path, published: Published) -> None:
    expected = sorted((SPECS / "batched_fromyaml" / "yadage_words").iterdir())
    steps = sorted(step for step in published if step.startswith("/batch"))
    assert steps == [f"/{path.stem}" for path in expected]
    for path in expected:  # byte for byte what yadage's steps wrote
        assert _text(published[f"/{path.stem}"]["words"]) == path.read_text(), path.stem


def _check_dependency_forms(workdir: Path, published: Published) -> None:
    assert published["/gather"] == {
        "without_dot": ["first", "second", "third"],
        "with_dot": ["first", "second", "third"],
        "one": "fixed",
        "kept": ["fixed"],
    }
    assert (
        workdir / "gather" / "gathered.txt"
    ).read_text() == "first second third / first second third / fixed / fixed\n"


def _check_inline_nested(workdir: Path, published: Published) -> None:
    assert [published[f"/scatter_literal_{i}"] for i in range(3)] == [
        {"sample": "ttbar"},
        {"sample": "wjets"},
        {"sample": "zjets"},
    ]
    assert published["/subflow_literal/0/all_regions"] == {
        "regions": ["signal", "control"],
        "names": ["signal", "control"],
    }
    assert published["/collect"] == {"samples": ["ttbar", "wjets", "zjets"], "regions": ["signal", "control"]}


def _check_environment_features(workdir: Path, published: Published) -> None:
    assert _text(published["/envscript"]["release"]) == "release 21.2.10 for tutorial\n"
    assert json.loads(_text(published["/par_mounts"]["params"])) == {"name": "tutorial", "count": 3}
    assert _text(published["/docker_workdir"]["greeting"]) == "hello from the image workdir\n"
    assert _text(published["/bash_script"]["text"]) == "3 samples\n[ttbar]\n[w jets]\n[zjets]\nawk braces\n"
    assert json.loads(_text(published["/python_script"]["summary"])) == {
        "samples": ["ttbar", "w jets", "zjets"],
        "count": 3,
    }


def _check_script_zsh(workdir: Path, published: Published) -> None:
    assert _text(published["/zsh_script"]["text"]) == "ttbar,w jets,zjets\n3 samples, first ttbar\n"


def _check_resources(workdir: Path, published: Published) -> None:
    limit = _text(published["/limited"]["limit_kib"]).strip()
    assert limit == (str(256 * 1024) if sys.platform.startswith("linux") else "unlimited")
    assert _text(published["/needs_cvmfs"]["setup"]) == "setup of release 22.0\nproxy: \n"
    assert published["/on_htcondor"] == {"word": "condor"}


def _cvmfs(workdir: Path) -> dict[str, str]:
    """A stand-in for /cvmfs outside the work directory, provided as CVMFS."""
    root = workdir.parent / f"{workdir.name}-cvmfs"
    (root / "sw" / "22.0").mkdir(parents=True, exist_ok=True)
    (root / "sw" / "22.0" / "setup.txt").write_text("setup of release 22.0\n")
    return {"CVMFS": str(root)}


@dataclass(frozen=True)
class PublishedCase:
    """A fixture, how to run it, and what it must give."""

    name: str
    check: Callable[[Path, Published], None]
    #: Copy ``tests/specs/<name>/files`` to ``WORKDIR/init`` first.
    init_files: bool = False
    #: ``tests/specs/<name>/image_map.yml`` is the run's image-map file.
    image_map: bool = False
    #: What the run provides (``--provide``), made for a work directory.
    provide: Callable[[Path], dict[str, str]] | None = None
    #: An interpreter the case needs on PATH.
    needs: str | None = None
    #: What yadage itself did with this fixture, when it was run on it.
    yadage: str = ""

    @property
    def folder(self) -> Path:
        """``tests/specs/<name>``."""
        return SPECS / self.name

    @property
    def inputs_file(self) -> Path | None:
        """The case's ``inputs.yml``, if it has one."""
        path = self.folder / "inputs.yml"
        return path if path.exists() else None

    @property
    def image_map_file(self) -> Path | None:
        """The case's image-map file, if it uses one."""
        return self.folder / "image_map.yml" if self.image_map else None

    def prepare(self, workdir: Path) -> dict[str, str]:
        """Put the init files in place; return the provided resources."""
        if self.init_files:
            shutil.copytree(self.folder / "files", workdir / "init")
        return self.provide(workdir) if self.provide else {}

    def skip_reason(self) -> str | None:
        """Why the case cannot run on this machine (``None``: it can)."""
        if self.needs and shutil.which(self.needs) is None:
            return f"{self.needs} is not installed (apt-get install {self.needs})"
        return None


CASES: dict[str, PublishedCase] = {
    case.name: case
    for case in (
        PublishedCase(
            "refs_forms",
            _check_refs_forms,
            yadage="ran it as written and wrote the same files (a $ref to a publisher alone misses its defaults there)",
        ),
        PublishedCase(
            "implied_dependency",
            _check_implied_dependency,
            yadage="applied 'reader' before 'slow' had a step and failed (AssertionError in stage_output_selector)",
        ),
        PublishedCase("publish_only", _check_publish_only, yadage="ran it and published the same values"),
        PublishedCase(
            "init_globs",
            _check_init_globs,
            init_files=True,
            yadage="published b.txt, c.txt, a.txt (directory order); the same files, unsorted",
        ),
        PublishedCase(
            "batched_fromyaml",
            _check_batched_fromyaml,
            yadage="wrote the files in yadage_words/, which these steps must write byte for byte",
        ),
        PublishedCase(
            "dependency_forms",
            _check_dependency_forms,
            yadage="applied 'gather' before map/1's 'inner' existed and gathered only 'first third'",
        ),
        PublishedCase("inline_nested", _check_inline_nested, yadage="ran it and published the same values"),
        PublishedCase("environment_features", _check_environment_features, image_map=True),
        PublishedCase("script_zsh", _check_script_zsh, needs="zsh"),
        PublishedCase("resources", _check_resources, image_map=True, provide=_cvmfs),
    )
}
