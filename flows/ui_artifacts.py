"""Artifacts that make a run readable in the Prefect UI: scores, the figure, output files, steps."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from flows.startup.compute_pool import run_in_pool
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.workdir.layout import RECORDS_DIR

__all__ = ["publish_figure", "publish_output_files", "publish_scores", "publish_steps"]

#: Listing more files than this in one table makes the UI sluggish; the rest is summarised.
MAX_LISTED_FILES = 500


async def publish_scores(scores: Mapping[str, float]) -> None:
    """A table artifact ``ml-scores``: one row per classifier with its test score."""
    rows = [{"classifier": name, "test score": round(score, 4)} for name, score in scores.items()]
    await acreate_table_artifact(
        table=rows, key="ml-scores", description="Test score of each classifier (accuracy on the 40 % split)."
    )


async def publish_figure(figure: str | os.PathLike[str]) -> None:
    """A markdown artifact ``ml-figure`` that shows the figure (embedded, downscaled) and its path."""
    from mltoolkit.analysis.plotting import preview_png_base64

    encoded = run_in_pool(preview_png_base64, str(figure))
    markdown = (
        "# Decision surfaces\n\n"
        f"![classifier comparison](data:image/png;base64,{encoded})\n\n"
        f"Full-size figure: `{figure}`\n"
    )
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


def _file_rows(workdir: Path, files: list[Path]) -> list[dict[str, Any]]:
    # regular files only, never through a link: a FIFO blocks, /dev/zero never ends
    return [
        {
            "file": str(path.relative_to(workdir)),
            "bytes": path.lstat().st_size,
            "sha256": sha256_file(path) if not path.is_symlink() and path.is_file() else None,
        }
        for path in files
    ]


async def publish_output_files(workdir: str | os.PathLike[str], key: str) -> None:
    """A table artifact listing the run's output files with size and sha256."""
    workdir = Path(workdir)
    files = _output_files(workdir)
    # Only the listed files are hashed: the rest is summarised, so hashing it (every
    # byte of a large run's outputs, on every run) would be wasted.
    rows = _file_rows(workdir, files[:MAX_LISTED_FILES])
    if len(files) > MAX_LISTED_FILES:
        rows.append({"file": f"... and {len(files) - MAX_LISTED_FILES} more", "bytes": "", "sha256": ""})
    await acreate_table_artifact(table=rows, key=key, description=f"Output files under {workdir}")


async def publish_steps(steps: Iterable[Mapping[str, Any]], key: str = "spec-steps") -> None:
    """A table artifact of a spec run's steps: scope, stage, index, state, published values."""
    rows = [
        {
            "scope": step.get("scope", ""),
            "stage": step.get("stage"),
            "index": "" if step.get("index") is None else step.get("index"),
            "state": step.get("state"),
            "published": ", ".join(f"{k}={v}" for k, v in (step.get("published") or {}).items())[:500],
        }
        for step in steps
    ]
    if len(rows) > MAX_LISTED_FILES:
        rows = rows[:MAX_LISTED_FILES] + [
            {
                "scope": "",
                "stage": f"... and {len(rows) - MAX_LISTED_FILES} more",
                "index": "",
                "state": "",
                "published": "",
            }
        ]
    await acreate_table_artifact(table=rows, key=key, description="Every step of the workflow run.")
