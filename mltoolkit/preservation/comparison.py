"""Compare two runs' output files one by one, each by its kind, and give each a verdict.

Equal sha256 -> ``identical``. Otherwise by kind: JSON/YAML numbers within
``rtol``/``atol`` (:mod:`~mltoolkit.preservation.numeric`); model pickles by
their summary sidecars, never by loading them unless trusted
(:mod:`~mltoolkit.preservation.models`); PNG figures by the share of differing
pixels, with a difference image (:mod:`~mltoolkit.preservation.images`); text by
a unified diff excerpt; anything else ``differs``. A file only one run has is
``missing``; a file of the archived run whose content is not what its run
recorded is ``tampered`` (and not compared: it cannot be trusted).
"""

from __future__ import annotations

import difflib
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mltoolkit.preservation.images import compare_images
from mltoolkit.preservation.models import compare_models
from mltoolkit.preservation.numeric import Tolerance, compare_values

__all__ = [
    "FileComparison",
    "OutputSet",
    "Verdict",
    "compare_file",
    "compare_outputs",
    "diff_image_name",
]

#: Suffixes compared as structured values (numbers within tolerance).
STRUCTURED_SUFFIXES = {".json": "json", ".yml": "yaml", ".yaml": "yaml"}
#: Suffixes compared pixel by pixel.
IMAGE_SUFFIXES = frozenset({".png"})
#: Suffixes of pickled models and data.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle"})
#: Files larger than this are not read as text or values (only their sha256 counts).
MAX_PARSED_BYTES = 50 * 1024 * 1024
#: Lines of a unified diff kept in the report.
DIFF_EXCERPT_LINES = 12
#: The prepped data of the native flow and the seed spec: the test split models are scored on.
TEST_DATA_FILE = "data_prep/prepped_data.pkl"


class Verdict(enum.StrEnum):
    """How an output of the new run relates to the archived one."""

    IDENTICAL = "identical"
    WITHIN_TOLERANCE = "within tolerance"
    DIFFERS = "differs"
    MISSING = "missing"
    TAMPERED = "tampered"

    @property
    def reproduced(self) -> bool:
        """Whether this verdict counts as reproduced (exit code 0)."""
        return self in (Verdict.IDENTICAL, Verdict.WITHIN_TOLERANCE)


@dataclass(frozen=True)
class FileComparison:
    """One output: the verdict, what each run has (short), why, and the difference image if any."""

    output: str
    verdict: Verdict
    archived: str
    now: str
    detail: str = ""
    diff_image: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The row as written to ``reproduction.json``."""
        return {
            "output": self.output,
            "verdict": str(self.verdict),
            "archived": self.archived,
            "now": self.now,
            "detail": self.detail,
            "diff_image": self.diff_image,
        }


@dataclass(frozen=True)
class OutputSet:
    """One run's outputs: its folder and ``{relative path: sha256}``; ``tampered`` paths are not trusted."""

    root: Path
    files: dict[str, str]
    tampered: frozenset[str] = frozenset()


def diff_image_name(output: str) -> str:
    """The file name of ``output``'s difference image (its path flattened, ``.diff.png`` appended)."""
    return output.replace("/", "__") + ".diff.png"


def _short(digest: str) -> str:
    return f"sha256 {digest[:12]}"


def _parse(path: Path, kind: str) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if kind == "json" else yaml.safe_load(text)


def _structured(archived: Path, now: Path, kind: str, tolerance: Tolerance) -> tuple[Verdict, str]:
    try:
        values = compare_values(_parse(archived, kind), _parse(now, kind), tolerance)
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
        return Verdict.DIFFERS, f"cannot read as {kind.upper()} ({type(error).__name__}); bytes differ"
    if values.identical:
        return Verdict.WITHIN_TOLERANCE, "bytes differ, values equal (formatting only)"
    verdict = Verdict.WITHIN_TOLERANCE if values.within_tolerance else Verdict.DIFFERS
    return verdict, values.describe()


def _text(archived: Path, now: Path) -> tuple[Verdict, str] | None:
    """A unified diff excerpt when both files are text, else ``None``."""
    try:
        old = archived.read_bytes().decode("utf-8")
        new = now.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in old or "\x00" in new:
        return None
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "archived", "now", lineterm="", n=1))
    excerpt = " | ".join(line for line in lines[2 : 2 + DIFF_EXCERPT_LINES])
    more = (
        f" | ... ({len(lines) - 2 - DIFF_EXCERPT_LINES} more diff lines)" if len(lines) > 2 + DIFF_EXCERPT_LINES else ""
    )
    return Verdict.DIFFERS, f"text differs: {excerpt}{more}"


def _image(archived: Path, now: Path, output: str, diffs: Path | None, tolerance: Tolerance) -> FileComparison:
    try:
        result = compare_images(archived, now, diffs / diff_image_name(output) if diffs else None)
    except ValueError as error:
        return FileComparison(output, Verdict.DIFFERS, "", "", str(error))
    shown = ("x".join(map(str, result.archived_size)), "x".join(map(str, result.now_size)))
    share = result.differing_share
    verdict = Verdict.WITHIN_TOLERANCE if share is not None and share <= tolerance.image else Verdict.DIFFERS
    diff = str(result.diff_image) if result.diff_image else None
    return FileComparison(output, verdict, *shown, detail=result.describe(), diff_image=diff)


def compare_file(
    output: str,
    archived: OutputSet,
    now: OutputSet,
    tolerance: Tolerance,
    *,
    diffs: Path | None = None,
    trust_archive: bool = False,
) -> FileComparison:
    """Compare ``output`` (a path relative to both work directories) of the two runs."""
    old_digest, new_digest = archived.files.get(output), now.files.get(output)
    if old_digest is None or new_digest is None:
        side = "the new run" if new_digest is None else "the archived run"
        shown = (_short(old_digest) if old_digest else "-", _short(new_digest) if new_digest else "-")
        return FileComparison(output, Verdict.MISSING, *shown, detail=f"not in {side}")
    shown = (_short(old_digest), _short(new_digest))
    if output in archived.tampered or output in now.tampered:
        return FileComparison(output, Verdict.TAMPERED, *shown, detail="content differs from its run's records")
    if old_digest == new_digest:
        return FileComparison(output, Verdict.IDENTICAL, *shown)
    old_path, new_path = archived.root / output, now.root / output
    too_large = max(old_path.stat().st_size, new_path.stat().st_size) > MAX_PARSED_BYTES
    suffix = Path(output).suffix.lower()
    if suffix in IMAGE_SUFFIXES and not too_large:
        return _image(old_path, new_path, output, diffs, tolerance)
    if suffix in PICKLE_SUFFIXES:
        test_data = archived.root / TEST_DATA_FILE
        model = compare_models(
            old_path,
            new_path,
            tolerance,
            trust_archive=trust_archive,
            test_data=test_data if test_data.is_file() else None,
        )
        verdict = Verdict.WITHIN_TOLERANCE if model.reproduced else Verdict.DIFFERS
        return FileComparison(output, verdict, model.archived or shown[0], model.now or shown[1], model.detail)
    if suffix in STRUCTURED_SUFFIXES and not too_large:
        verdict, detail = _structured(old_path, new_path, STRUCTURED_SUFFIXES[suffix], tolerance)
        return FileComparison(output, verdict, *shown, detail=detail)
    text = None if too_large else _text(old_path, new_path)
    verdict, detail = text or (Verdict.DIFFERS, "bytes differ")
    return FileComparison(output, verdict, *shown, detail=detail)


def compare_outputs(
    archived: OutputSet,
    now: OutputSet,
    tolerance: Tolerance,
    *,
    diffs: Path | None = None,
    trust_archive: bool = False,
) -> list[FileComparison]:
    """Compare every output either run has (archived order first, then files only the new run wrote)."""
    names = list(archived.files) + [name for name in now.files if name not in archived.files]
    return [compare_file(name, archived, now, tolerance, diffs=diffs, trust_archive=trust_archive) for name in names]
