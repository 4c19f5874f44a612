"""The report of a reproduction or comparison: verdict table, drift table, JSON and Markdown files.

The exit rule lives here, once: 0 when every output is identical or within
tolerance and no file failed verification, 1 otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mltoolkit.preservation.comparison import FileComparison, Verdict
from mltoolkit.preservation.drift import Drift
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.sources import Tampered
from mltoolkit.workdir.artifacts import atomic_write_json, atomic_write_text

__all__ = [
    "Report",
    "drift_rows",
    "format_table",
    "markdown_table",
    "render_text",
    "verdict_rows",
    "write_reports",
]

#: Longest cell of the printed table (the full text is in the JSON and Markdown reports).
MAX_PRINTED_CELL = 48


@dataclass
class Report:
    """Everything a reproduction or comparison found."""

    archived: str
    now: str
    tolerance: Tolerance
    files: list[FileComparison]
    drift: list[Drift]
    tampered: list[Tampered] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Every output identical or within tolerance, and nothing tampered."""
        return not self.tampered and all(row.verdict.reproduced for row in self.files)

    @property
    def exit_code(self) -> int:
        """0 when reproduced, else 1 (usable in CI)."""
        return 0 if self.reproduced else 1

    def counts(self) -> dict[str, int]:
        """How many outputs got each verdict (only verdicts that occur)."""
        counts = {str(verdict): sum(1 for row in self.files if row.verdict is verdict) for verdict in Verdict}
        return {verdict: count for verdict, count in counts.items() if count}

    def summary(self) -> str:
        """One line: reproduced or not, and the verdict counts."""
        counts = ", ".join(f"{count} {verdict}" for verdict, count in self.counts().items()) or "no outputs"
        tampered = f"; {len(self.tampered)} tampered file(s)" if self.tampered else ""
        head = "reproduced" if self.reproduced else "NOT reproduced"
        return f"{head}: {counts}{tampered}"

    def problems(self) -> list[str]:
        """The lines that explain why the run is not reproduced (names the changed scores)."""
        lines = [f"{row.output}: {row.detail or row.verdict}" for row in self.files if not row.verdict.reproduced]
        return lines + [f"tampered: {finding.describe()}" for finding in self.tampered]

    def as_json(self) -> dict[str, Any]:
        """The report as written to ``reproduction.json``."""
        return {
            "archived": self.archived,
            "now": self.now,
            "written": datetime.now(UTC).isoformat(),
            "reproduced": self.reproduced,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "problems": self.problems(),
            "tolerance": {"rtol": self.tolerance.rtol, "atol": self.tolerance.atol, "image": self.tolerance.image},
            "outputs": [row.as_json() for row in self.files],
            "drift": [row.as_json() for row in self.drift],
            "tampered": [vars(finding) for finding in self.tampered],
            "notes": list(self.notes),
        }


def verdict_rows(files: Sequence[FileComparison]) -> list[dict[str, str]]:
    """The verdict table as rows (output, archived, now, verdict, detail)."""
    return [
        {
            "output": row.output,
            "archived": row.archived,
            "now": row.now,
            "verdict": str(row.verdict),
            "detail": row.detail,
        }
        for row in files
    ]


def drift_rows(drift: Sequence[Drift], only_changed: bool = False) -> list[dict[str, str]]:
    """The drift table as rows (item, archived, now, changed)."""
    return [
        {"item": row.item, "archived": row.archived, "now": row.now, "changed": "yes" if row.changed else ""}
        for row in drift
        if row.changed or not only_changed
    ]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], limit: int = MAX_PRINTED_CELL) -> str:
    """``rows`` as an aligned plain-text table of ``columns`` (cells cut to ``limit`` characters)."""
    cells = [[_cut(str(row.get(column, "")), limit) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[index]) for line in cells]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


def _markdown_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    """``rows`` as a Markdown table of ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_markdown_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(report: Report, title: str) -> str:
    parts = [
        f"# {title}",
        "",
        f"**{report.summary()}** (exit code {report.exit_code})",
        "",
        f"- archived: `{report.archived}`",
        f"- now: `{report.now}`",
        f"- tolerance: rtol {report.tolerance.rtol:g}, atol {report.tolerance.atol:g}, "
        f"image {report.tolerance.image:.2%} of pixels",
        "",
        "## Outputs",
        "",
        markdown_table(verdict_rows(report.files), ("output", "archived", "now", "verdict", "detail")),
        "",
        "## Environment drift",
        "",
        markdown_table(drift_rows(report.drift), ("item", "archived", "now", "changed")),
    ]
    if report.tampered:
        parts += ["", "## Tampered files", ""] + [f"- {finding.describe()}" for finding in report.tampered]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(parts) + "\n"


def render_text(report: dict[str, Any]) -> str:
    """What a command prints, from a report's JSON form (:meth:`Report.as_json`): the verdict table,
    how the outputs within tolerance differ, why the run is not reproduced, the environment drift
    that changed, the summary."""
    parts = [format_table(report["outputs"], ("output", "archived", "now", "verdict"))]
    tolerated = [
        f"{row['output']}: {row['detail']}" for row in report["outputs"] if row["verdict"] == "within tolerance"
    ]
    if tolerated:
        parts += ["", "within tolerance:"] + [f"  {line}" for line in tolerated]
    if report["problems"]:
        parts += ["", "why not reproduced:"] + [f"  {line}" for line in report["problems"]]
    changed = [row for row in report["drift"] if row["changed"]]
    parts += ["", "environment drift:" if changed else "environment drift: none"]
    if changed:
        parts.append(format_table(changed, ("item", "archived", "now"), limit=60))
    parts += [f"note: {note}" for note in report["notes"]]
    parts += ["", report["summary"]]
    return "\n".join(parts)


def write_reports(
    report: Report, json_path: str | os.PathLike[str], markdown_path: str | os.PathLike[str], title: str
) -> None:
    """Write ``report`` as JSON and Markdown (each atomically), the Markdown headed ``title``."""
    atomic_write_json(json_path, report.as_json())
    atomic_write_text(markdown_path, _markdown(report, title))
