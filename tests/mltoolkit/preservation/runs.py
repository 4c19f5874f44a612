"""Small fake runs for the preservation tests: a work directory with a run record and some outputs."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["make_run", "sha256", "zip_run"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_run(
    root: Path,
    files: dict[str, bytes],
    *,
    flow: str = "ml-workflow",
    inputs: dict[str, Any] | None = None,
    submitted: dict[str, Any] | None = None,
    software: dict[str, str] | None = None,
    environment: dict[str, Any] | None = None,
) -> Path:
    """A completed run in ``root`` whose one step wrote ``files`` (their sha256 recorded)."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    record: dict[str, Any] = {
        "status": "completed",
        "flow": flow,
        "inputs": inputs if inputs is not None else {"dataset": "moon.txt", "classifiers": ["rbf_svm"]},
        "software": software or {"python": "3.11.7", "scikit-learn": "1.9.1"},
        "steps": [
            {
                "id": "/merge",
                "stage": "merge",
                "name": "merge",
                "state": "COMPLETED",
                "cache": {"reused": False, "reason": "first run"},
                "outputs": {name: sha256(data) for name, data in files.items()},
            }
        ],
    }
    if environment is not None:
        record["environment"] = environment
    (root / "_mltoolkit").mkdir(parents=True, exist_ok=True)
    (root / "_mltoolkit" / "run.json").write_text(json.dumps(record))
    if submitted is not None:
        (root / "_mltoolkit" / "submitted").mkdir(parents=True, exist_ok=True)
        (root / "_mltoolkit" / "submitted" / "submitted.json").write_text(json.dumps(submitted))
    return root


def zip_run(root: Path, out: Path, extra: dict[str, bytes] | None = None) -> Path:
    """``root`` as a zip with ``_mltoolkit/archive.json`` listing every file's sha256 (as archives do)."""
    contents = {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}
    contents["_mltoolkit/archive.json"] = json.dumps({"files": {n: sha256(d) for n, d in contents.items()}}).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in {**contents, **(extra or {})}.items():
            archive.writestr(name, data)
    return out
