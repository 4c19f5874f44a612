"""The seed's yadage spec through the loader vs the native flow: same analysis, same machine, one run.

(n) ``python -m flows.ml_workflow --inputs inputs.yml`` (the native Prefect flow);
(s) ``python -m flows.spec_workflow WORKDIR workflow.yml inputs.yml --toplevel
    tests/specs/seed_parallel`` (the seed's unmodified spec: shell scripts calling
    the toolkit's step scripts, ``python`` served warm by the compute pool).

Both in fresh processes and fresh work directories (nothing cached), against one
``prefect server start`` on 127.0.0.1, alternating, medians of ``--repeats``; as
warm commands (the default, after a warm-up run) or, with ``--cold``, each command
importing everything itself. Target: s/n <= 1.15.

Run: ``python bench/spec_vs_native.py [--repeats 3] [--cold]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, base_env, prefect_server, time_command, wait_for_warm_commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="warm commands off (MLTOOLKIT_WARM_COMMANDS=0)")
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-spec-"))
    home = scratch / "prefect-home"
    counter = itertools.count()

    def native() -> list[str]:
        return [
            sys.executable,
            "-m",
            "flows.ml_workflow",
            "--inputs",
            str(REPO_ROOT / "inputs.yml"),
            "--workdir",
            str(scratch / f"native-{next(counter)}"),
        ]

    def spec() -> list[str]:
        return [
            sys.executable,
            "-m",
            "flows.spec_workflow",
            str(scratch / f"spec-{next(counter)}"),
            "workflow.yml",
            "inputs.yml",
            "--toplevel",
            str(REPO_ROOT / "tests" / "specs" / "seed_parallel"),
        ]

    times: dict[str, list[float]] = {"native": [], "spec": []}
    with prefect_server(base_env(home)) as url:
        env = base_env(home, PREFECT_API_URL=url, MLTOOLKIT_WARM_COMMANDS="0" if arguments.cold else "1")
        time_command(native(), env)  # warm-up: registers the flows, fills OS caches
        if not arguments.cold:
            wait_for_warm_commands(env)
        time_command(spec(), env)
        for _ in range(arguments.repeats):
            times["native"].append(time_command(native(), env))
            times["spec"].append(time_command(spec(), env))
        subprocess.run([sys.executable, "-m", "flows.cli", "server", "stop"], env=env, capture_output=True)

    n = statistics.median(times["native"])
    s = statistics.median(times["spec"])
    print(f"repeats: {arguments.repeats} (medians), machine: {os.cpu_count()} cores")
    print(f"(n) native flow              {n:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['native'])}")
    print(f"(s) seed spec via the loader {s:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in times['spec'])}")
    print(f"s/n = {s / n:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
