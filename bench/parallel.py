"""Parallel classifier tasks: 20 equally expensive classifiers, sequential vs each task runner.

The workload is the native analysis with 20 copies of ``bench._workload.BusyClassifier``
(each fit burns about ``--seconds`` of one core, calibrated on this machine at the
start; all 20 the same cost). Measured in one run:

(s)  plain sequential Python in a fresh process: ``mltoolkit.analysis.pipeline``'s data_prep,
     a loop of the 20 classification steps, the merge (like ``run_sequential``);
(r)  ``python -m flows.ml_workflow --runner R`` for R in thread (the default, with
     the warm compute pool), process and dask, each in a fresh process and workdir,
     against a ``prefect server start`` on 127.0.0.1 (so no run pays for booting a
     server).

Printed per runner: the whole command's wall time and the *classification phase*:
the sequential loop's time vs, in the flow, the gap between data_prep's end and the
merge's start (run.json's step times), i.e. the 20 tasks as the flow schedules them,
runner overhead included. Speedup = sequential / runner. Target on 2 cores: the
best runner's phase speedup >= 1.8 (the ideal is the core count; the whole command
also pays start-up and the serial merge, which draws 21 panels).

Run: ``python bench/parallel.py [--tasks 20] [--seconds 1.0] [--runners thread,process,dask]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, base_env, prefect_server, run_measured
from _workload import busy_classifiers, iterations_per_second

from mltoolkit.workdir.layout import WorkdirLayout

SEQUENTIAL = """
import json, sys, time
from mltoolkit.analysis import pipeline
from mltoolkit.analysis.inputs import load_inputs

inputs = load_inputs(sys.argv[1])
workdir = sys.argv[2]
prepped = pipeline.prepare_data_step(inputs.dataset, workdir)
start = time.perf_counter()
outputs = [pipeline.classification_step(prepped, spec, workdir, index)
           for index, spec in enumerate(inputs.classifiers)]
phase = time.perf_counter() - start
pipeline.merge_step(prepped, outputs, workdir)
print(json.dumps({"phase": phase}))
"""


def classification_phase(workdir: Path) -> float:
    """Seconds between data_prep's end and the merge's start, from the run record."""
    steps = {step["name"]: step for step in json.loads(WorkdirLayout(workdir).run_record.read_text())["steps"]}
    ended = datetime.fromisoformat(steps["data_prep"]["ended"])
    started = datetime.fromisoformat(steps["merge_and_visualize"]["started"])
    return (started - ended).total_seconds()


def _print_table(results: dict[str, tuple[float, float]], tasks: int, seconds: float) -> None:
    """Whole-run and classification-phase times and speedups against the sequential baseline."""
    whole_seq, phase_seq = results["sequential"]
    print(f"{tasks} classifier tasks of ~{seconds:g} s CPU each; machine: {os.cpu_count()} cores; one run each")
    print(f"{'':12} {'whole run':>10} {'speedup':>8} {'classify phase':>15} {'speedup':>8}")
    for name, (whole, phase) in results.items():
        print(f"{name:12} {whole:9.2f}s {whole_seq / whole:8.2f} {phase:14.2f}s {phase_seq / phase:8.2f}")
    best = max((name for name in results if name != "sequential"), key=lambda name: phase_seq / results[name][1])
    print(
        f"best runner: {best}, classify-phase speedup {phase_seq / results[best][1]:.2f} (target >= 1.8); "
        f"whole-run speedup {whole_seq / results[best][0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per classifier fit")
    parser.add_argument("--runners", default="thread,process,dask")
    arguments = parser.parse_args()
    runners = [name for name in arguments.runners.split(",") if name]

    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-parallel-"))
    home = scratch / "prefect-home"
    work = int(iterations_per_second() * arguments.seconds)
    inputs = scratch / "inputs.yml"
    inputs.write_text(
        json.dumps(
            {"dataset": str(REPO_ROOT / "data" / "moon.txt"), "classifiers": busy_classifiers(arguments.tasks, work)}
        )
    )
    env = base_env(home)

    results: dict[str, tuple[float, float]] = {}
    elapsed, _, output = run_measured([sys.executable, "-c", SEQUENTIAL, str(inputs), str(scratch / "sequential")], env)
    results["sequential"] = (elapsed, json.loads(output.strip().splitlines()[-1])["phase"])

    with prefect_server(env) as url:
        flow_env = base_env(home, PREFECT_API_URL=url)
        warm_up = [
            sys.executable,
            "-m",
            "flows.ml_workflow",
            "-p",
            f"dataset={REPO_ROOT / 'data' / 'moon.txt'}",
            "-p",
            "classifiers=[decision_tree]",
            "--workdir",
            str(scratch / "warm-up"),
        ]
        run_measured(warm_up, flow_env)  # registers the flow; later runs pay no first-use costs
        for runner in runners:
            workdir = scratch / f"run-{runner}"
            command = [
                sys.executable,
                "-m",
                "flows.ml_workflow",
                "--inputs",
                str(inputs),
                "--workdir",
                str(workdir),
                "--runner",
                runner,
            ]
            elapsed, _, _ = run_measured(command, flow_env)
            results[runner] = (elapsed, classification_phase(workdir))

    _print_table(results, arguments.tasks, arguments.seconds)


if __name__ == "__main__":
    main()
