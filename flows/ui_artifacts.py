"""Artifacts that make a run readable in the Prefect UI: scores, the figure, output files, steps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from flows.compute_pool import run_in_pool
from mltoolkit.artifacts import sha256_file

__all__ = ["publish_scores", "publish_figure", "publish_output_files", "publish_steps"]

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
    from mltoolkit.plotting import preview_png_base64

    encoded = run_in_pool(preview_png_base64, str(figure))
    markdown = (
        "# Decision surfaces\n\n"
        f"![classifier comparison](data:image/png;base64,{encoded})\n\n"
        f"Full-size figure: `{figure}`\n"
    )
    await acreate_markdown_artifact(
        markdown=markdown, key="ml-figure", description="The input data and each classifier's decision surface."
    )


def _file_rows(workdir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(workdir.rglob("*")):
        relative = path.relative_to(workdir)
        if not path.is_file() or relative.parts[0] == "_mltoolkit" or path.name.startswith("."):
            continue
        rows.append({"file": str(relative), "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return rows


async def publish_output_files(workdir: str | os.PathLike[str], key: str) -> None:
    """A table artifact listing the run's output files with size and sha256."""
    workdir = Path(workdir)
    rows = _file_rows(workdir)
    if len(rows) > MAX_LISTED_FILES:
        rows = rows[:MAX_LISTED_FILES] + [{"file": f"... and {len(rows) - MAX_LISTED_FILES} more", "bytes": "", "sha256": ""}]
    await acreate_table_artifact(
        table=rows, key=key, description=f"Output files under {workdir}"
    )


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
        rows = rows[:MAX_LISTED_FILES] + [{"scope": "", "stage": f"... and {len(rows) - MAX_LISTED_FILES} more",
                                            "index": "", "state": "", "published": ""}]
    await acreate_table_artifact(table=rows, key=key, description="Every step of the workflow run.")
