"""A small workflow, ours vs yadage: the two-step spec ``tests/specs/two_step`` run by both, side by side.

(y)  ``yadage-run WORKDIR workflow.yml inputs.yml -t tests/specs/two_step`` (``--yadage-run``,
     default ``/opt/yadage-venv/bin/yadage-run``);
(m)  ``python -m flows.spec_workflow WORKDIR workflow.yml inputs.yml --toplevel tests/specs/two_step``
     in the default configuration: the kept API server and the kept command process
     (warm commands), left by a warm-up run;
(c)  the same with warm commands off (``MLTOOLKIT_WARM_COMMANDS=0``): each command
     imports Prefect and the toolkit itself (the configuration before warm commands).

Each in a fresh process and fresh work directory, alternating, medians of
``--repeats``; both outputs are checked. Target: m/y <= 2.

Run: ``python bench/small_vs_yadage.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, kept_server, load_average, time_command, wait_for_warm_commands

SPEC = REPO_ROOT / "tests" / "specs" / "two_step"
EXPECTED = "hello world\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--yadage-run", default="/opt/yadage-venv/bin/yadage-run")
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-small-"))
    counter = itertools.count()
    inputs = str(SPEC / "inputs.yml")  # absolute: yadage reads it from the current folder
    times: dict[str, list[float]] = {"yadage": [], "ours": [], "cold": []}

    with kept_server(scratch / "prefect-home") as env:

        def run(name: str) -> float:
            workdir = scratch / f"{name}-{next(counter)}"
            if name == "yadage":
                command = [arguments.yadage_run, str(workdir), "workflow.yml", inputs, "-t", str(SPEC)]
            else:
                command = [sys.executable, "-m", "flows.spec_workflow", str(workdir), "workflow.yml", inputs]
                command += ["--toplevel", str(SPEC)]
            elapsed = time_command(command, {**env, "MLTOOLKIT_WARM_COMMANDS": "0"} if name == "cold" else env)
            if (workdir / "copy" / "copy.txt").read_text() != EXPECTED:
                raise RuntimeError(f"{name}: unexpected output in {workdir}")
            return elapsed

        run("ours")  # warm-up: starts the kept server and command process, registers the flow
        wait_for_warm_commands(env)
        run("yadage")
        run("cold")
        for _ in range(arguments.repeats):
            for name in times:
                times[name].append(run(name))

    y, m, c = (statistics.median(times[name]) for name in ("yadage", "ours", "cold"))
    print(f"two-step spec, repeats: {arguments.repeats} (medians); {load_average()}")
    print(f"(y) yadage-run                       {y:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['yadage'])}")
    print(f"(m) flows.spec_workflow, kept server {m:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['ours'])}")
    print(f"(c) the same, warm commands off      {c:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['cold'])}")
    print(f"m/y = {m / y:.2f} (target <= 2); c/y = {c / y:.2f}")


if __name__ == "__main__":
    main()
