"""Artifacts that make a run readable in the Prefect UI: scores, figures, result tables, output files, steps.

They are read by people looking at the UI from another machine, so they name
files relative to the work directory and say where that is (folder and host),
and long values are shortened to fit a table column (full values in the
artifact's description or in the run record).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from flows.result_files import IMAGE_SUFFIXES, artifact_key, image_data_uri, published_result_files, table_rows
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.workdir.layout import RECORDS_DIR, WorkdirLayout

__all__ = [
    "publish_figure",
    "publish_output_files",
    "publish_scores",
    "publish_spec_results",
    "publish_steps",
    "shortened",
]

#: Listing more files than this in one table makes the UI sluggish; the rest is summarised.
MAX_LISTED_FILES = 500
#: Table cells longer than this are cut (with an ellipsis) so that columns fit the page.
MAX_CELL_CHARS = 60
#: Digits of a sha256 shown in a table (like a short git hash); the full values are in the checksums artifact.
SHORT_HASH_DIGITS = 12


def shortened(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a trailing ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: str | os.PathLike[str], root: Path) -> str:
    """``path`` relative to the work directory when inside it, else as given."""
    candidate = Path(path)
    return candidate.relative_to(root).as_posix() if candidate.is_relative_to(root) else str(candidate)


def _where(root: Path) -> str:
    """Where the work directory is, for someone reading the UI on another machine."""
    return f"the work directory `{root}` on host `{socket.gethostname()}`"


def _file_facts(root: Path, path: Path) -> str:
    """`path` (relative to the work directory), its size and sha256, and where the work directory is."""
    return f"`{_relative(path, root)}` ({path.stat().st_size:,} bytes) in {_where(root)}; sha256 `{sha256_file(path)}`"


async def publish_scores(scores: Mapping[str, float]) -> None:
    """A table artifact ``ml-scores``: one row per classifier with its test score."""
    rows = [{"classifier": name, "test score": round(score, 4)} for name, score in scores.items()]
    await acreate_table_artifact(
        table=rows, key="ml-scores", description="Test score of each classifier (accuracy on the 40 % split)."
    )


async def publish_figure(workdir: str | os.PathLike[str], figure: str | os.PathLike[str]) -> None:
    """A markdown artifact ``ml-figure`` that shows the figure (embedded, downscaled) and where the original is."""
    root, path = Path(workdir), Path(figure)
    uri = image_data_uri(path, WorkdirLayout(root).preview(path))
    picture = f"![classifier comparison]({uri})" if uri else "(too large to show here)"
    markdown = f"# Decision surfaces\n\n{picture}\n\nFull-size figure: {_file_facts(root, path)}\n"
    await acreate_markdown_artifact(
        markdown=markdown, key="ml-figure", description="The input data and each classifier's decision surface."
    )


def _output_files(workdir: Path) -> list[Path]:
    """The run's output files, sorted; the run's own records (caches, manifests) skipped unread."""
    found: list[Path] = []
    for current, folders, files in os.walk(workdir):
        here = Path(current)
        if here == workdir:
            folders[:] = [name for name in folders if name != RECORDS_DIR]
        found.extend(here / name for name in files if not name.startswith("."))
    return sorted(found)


def _regular_file_sha256(path: Path) -> str | None:
    # regular files only, never through a link: a FIFO blocks, /dev/zero never ends
    return sha256_file(path) if not path.is_symlink() and path.is_file() else None


async def publish_output_files(workdir: str | os.PathLike[str], key: str, checksums_key: str | None = None) -> None:
    """A table artifact listing the run's output files with size and (short) sha256.

    With ``checksums_key``, also a markdown artifact of the full sha256 of each
    listed file, in ``sha256sum`` format (so ``sha256sum -c`` checks a copy).
    """
    root = Path(workdir)
    files = _output_files(root)
    # Only the listed files are hashed: the rest is summarised, so hashing it (every
    # byte of a large run's outputs, on every run) would be wasted.
    listed = [
        (_relative(path, root), path.lstat().st_size, _regular_file_sha256(path)) for path in files[:MAX_LISTED_FILES]
    ]
    rows: list[dict[str, Any]] = [
        {"file": shortened(name), "bytes": size, "sha256": digest[:SHORT_HASH_DIGITS] + "…" if digest else ""}
        for name, size, digest in listed
    ]
    if len(files) > MAX_LISTED_FILES:
        rows.append({"file": f"... and {len(files) - MAX_LISTED_FILES} more", "bytes": "", "sha256": ""})
    full = f"; full hashes in `{checksums_key}`" if checksums_key else ""
    description = f"Output files in {_where(root)} (sha256 shortened{full})."
    await acreate_table_artifact(table=rows, key=key, description=description)
    if checksums_key:
        checksums = "\n".join(f"{digest}  {name}" for name, _, digest in listed if digest)
        markdown = (
            f"# sha256 of the output files\n\nIn {_where(root)}; check a copy with `sha256sum -c` "
            f"in its work directory.\n\n```\n{checksums}\n```\n"
        )
        await acreate_markdown_artifact(
            markdown=markdown, key=checksums_key, description="Full sha256 of each output file."
        )


def _published_text(published: Any, root: Path) -> str:
    """A step's published values in one cell: paths relative to the work directory, shortened."""
    if not isinstance(published, Mapping):
        return "" if published is None else shortened(str(published))
    prefix = f"{root}{os.sep}"
    parts = []
    for name, value in published.items():
        text = str(value).replace(prefix, "")
        parts.append(f"{name}={text}")
    return shortened(", ".join(parts))


async def publish_steps(
    steps: Iterable[Mapping[str, Any]], workdir: str | os.PathLike[str], key: str = "spec-steps"
) -> None:
    """A table artifact of a spec run's steps: scope (``/`` at the top), stage, index, state, published values."""
    root = Path(workdir)
    rows = [
        {
            "scope": step.get("scope") or "/",
            "stage": step.get("stage"),
            "index": "" if step.get("index") is None else step.get("index"),
            "state": step.get("state"),
            "published": _published_text(step.get("published"), root),
        }
        for step in steps
    ]
    if len(rows) > MAX_LISTED_FILES:
        more = {"scope": "", "stage": f"... and {len(rows) - MAX_LISTED_FILES} more", "index": ""}
        rows = rows[:MAX_LISTED_FILES] + [{**more, "state": "", "published": ""}]
    record = WorkdirLayout(root).run_record.relative_to(root).as_posix()
    description = (
        f"Every step of the workflow run. Paths are relative to {_where(root)}; "
        f"full published values are in its run record, `{record}`."
    )
    await acreate_table_artifact(table=rows, key=key, description=description)


async def publish_spec_results(steps: Iterable[Mapping[str, Any]], workdir: str | os.PathLike[str]) -> int:
    """An artifact per image (markdown, embedded) and small JSON/YAML file of numbers (table) the steps published.

    Returns:
        How many artifacts were created.
    """
    root = Path(workdir)
    layout = WorkdirLayout(root)
    created = 0
    for path in published_result_files(step.get("published") for step in steps):
        relative = _relative(path, root)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            uri = image_data_uri(path, layout.preview(path))
            if uri is None:
                continue
            markdown = f"# {relative}\n\n![published image]({uri})\n\nFull-size image: {_file_facts(root, path)}\n"
            await acreate_markdown_artifact(
                markdown=markdown, key=artifact_key("spec-image", relative), description=f"Image {relative}"
            )
        else:
            rows = table_rows(path)
            if rows is None:
                continue
            await acreate_table_artifact(
                table=rows,
                key=artifact_key("spec-table", relative),
                description=f"Values of {relative} (published by a step) in {_where(root)}.",
            )
        created += 1
    return created
