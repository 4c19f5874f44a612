"""Serve both flows from this process, for users without a work pool.

    python deployments/serve.py            # Ctrl-C to stop

registers the deployments described in ``deployments/prefect.yaml`` (same
descriptions, tags and default parameters; names with a ``-served`` suffix) and runs their flow runs in this
process's subprocesses when they are launched from the UI or with
``prefect deployment run``. Needs a Prefect API (``PREFECT_API_URL``, e.g. a
``prefect server start``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_FILE = Path(__file__).resolve().with_name("prefect.yaml")


def deployment_specs(spec_file: Path = SPEC_FILE) -> list[dict[str, Any]]:
    """The ``deployments`` entries of ``prefect.yaml``."""
    return yaml.safe_load(spec_file.read_text())["deployments"]


def build_deployments(spec_file: Path = SPEC_FILE) -> list[Any]:
    """One ``RunnerDeployment`` per entry of ``prefect.yaml``."""
    from prefect.utilities.importtools import import_object

    deployments = []
    for entry in deployment_specs(spec_file):
        flow = import_object(entry["entrypoint"])
        deployments.append(
            flow.to_deployment(
                # distinct from the work-pool deployments of the same flows
                name=f"{entry['name']}-served",
                description=" ".join(entry.get("description", "").split()),
                tags=entry.get("tags", []),
                parameters=entry.get("parameters", {}),
                enforce_parameter_schema=entry.get("enforce_parameter_schema", True),
            )
        )
    return deployments


def main() -> None:
    """Register the deployments and serve their runs until interrupted."""
    from prefect import serve

    os.chdir(REPO_ROOT)  # the default parameters name paths relative to the repository
    sys.path.insert(0, str(REPO_ROOT))
    serve(*build_deployments(), limit=4)


if __name__ == "__main__":
    main()
