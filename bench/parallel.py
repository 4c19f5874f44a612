"""Parallel classifier tasks: equally expensive CPU-bound classifiers, one after another vs the flow.

Default workload (issue 15): 8 ``sklearn.ensemble.GradientBoostingClassifier``
custom classifiers, all with the same ``n_estimators`` (calibrated at the start so
one fit takes about ``--seconds`` here), on an 800-row moons table written in the
seed's format. ``--workload busy`` uses ``bench._workload.BusyClassifier`` instead
(a pure-Python loop of ~``--seconds``). Measured in one run:

(s)  plain sequential Python in a fresh process: ``mltoolkit.analysis.pipeline``'s data_prep,
     a loop of the classification steps, the merge (like ``run_sequential``);
(r)  ``python -m flows.ml_workflow --runner R`` for each R of ``--runners`` (default: the
     default runner, ``thread``, with the warm compute pool), each in a fresh process and
     workdir, in the default configuration: the kept API server left by a warm-up run
     (``--server prefect``: a ``prefect server start`` on 127.0.0.1 instead).

Printed per runner: the whole command's wall time and the *classification phase*:
the sequential loop's time vs, in the flow, the gap between data_prep's end and the
merge's start (run.json's step times), i.e. the tasks as the flow schedules them,
runner overhead included. Speedup = sequential / runner. Target on 2 cores: the
default runner's phase speedup >= 1.8 (the ideal is the core count).

Baseline and runners run in turns, ``--repeats`` rounds (medians). A runner named
``thread@N`` is the thread runner with N BLAS/OpenMP threads per step process set
explicitly (``thread@1`` vs ``thread``: does capping them pay when two steps run at once?).

Run: ``python bench/parallel.py [--repeats 3] [--tasks 8] [--seconds 2.5] [--workload boost|busy]``
``[--runners thread,process,dask] [--server kept|prefect]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, base_env, kept_server, load_average, prefect_server, run_measured, wait_for_warm_commands
from _workload import (
    busy_classifiers,
    estimators_for_seconds,
    gradient_boosting_classifiers,
    iterations_per_second,
    moons_table,
)

from mltoolkit.workdir.layout import WorkdirLayout

#: The variables that size the native thread pools of numpy's BLAS, OpenMP (scikit-learn) and numexpr.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

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


def write_inputs(scratch: Path, workload: str, tasks: int, seconds: float, rows: int) -> tuple[Path, str]:
    """The inputs file of every run, and a description of the workload."""
    if workload == "busy":
        dataset = REPO_ROOT / "data" / "moon.txt"
        classifiers = busy_classifiers(tasks, int(iterations_per_second() * seconds))
        described = f"{tasks} BusyClassifier fits of ~{seconds:g} s"
    else:
        from sklearn.model_selection import train_test_split

        from mltoolkit.analysis.data import load_table

        dataset = scratch / f"moons-{rows}.txt"
        dataset.write_text(moons_table(rows))
        X_train, _, y_train, _ = train_test_split(*load_table(dataset), test_size=0.4, random_state=42)
        estimators = estimators_for_seconds(X_train, y_train, seconds)
        classifiers = gradient_boosting_classifiers(tasks, estimators)
        described = f"{tasks} GradientBoosting fits ({estimators} estimators, {rows} rows, ~{seconds:g} s each)"
    inputs = scratch / "inputs.yml"
    inputs.write_text(json.dumps({"dataset": str(dataset), "classifiers": classifiers}))
    return inputs, described


def _print_table(results: dict[str, tuple[float, float]], described: str) -> None:
    """Whole-run and classification-phase times and speedups against the sequential baseline."""
    whole_seq, phase_seq = results["sequential"]
    print(f"{described}; {load_average()}")
    print(f"{'':12} {'whole run':>10} {'speedup':>8} {'classify phase':>15} {'speedup':>8}")
    for name, (whole, phase) in results.items():
        print(f"{name:12} {whole:9.2f}s {whole_seq / whole:8.2f} {phase:14.2f}s {phase_seq / phase:8.2f}")
    best = max((name for name in results if name != "sequential"), key=lambda name: phase_seq / results[name][1])
    print(
        f"best runner: {best}, classify-phase speedup {phase_seq / results[best][1]:.2f} (target >= 1.8 "
        "for the default runner, thread); "
        f"whole-run speedup {whole_seq / results[best][0]:.2f}"
    )


def _sequential(env: dict[str, str], scratch: Path, inputs: Path, label: str) -> tuple[float, float]:
    """(whole run, classification loop) seconds of the plain sequential baseline."""
    command = [sys.executable, "-c", SEQUENTIAL, str(inputs), str(scratch / f"sequential-{label}")]
    elapsed, _, output = run_measured(command, env, memory=False)
    return elapsed, json.loads(output.strip().splitlines()[-1])["phase"]


def _alternating(
    env: dict[str, str], scratch: Path, inputs: Path, runners: list[str], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (whole run, classification phase) of the baseline and each runner, run in turns.

    A warm-up flow run comes first (server up, flow registered); then each repeat runs the
    sequential baseline and every runner once, so a change of load hits all of them alike.
    """
    flow = [sys.executable, "-m", "flows.ml_workflow"]
    warm_up = ["-p", f"dataset={REPO_ROOT / 'data' / 'moon.txt'}", "-p", "classifiers=[decision_tree]"]
    run_measured([*flow, *warm_up, "--workdir", str(scratch / "warm-up")], env, memory=False)
    if env.get("MLTOOLKIT_WARM_COMMANDS") != "0":
        wait_for_warm_commands(env)  # its imports would compete with the first measured run
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ["sequential", *runners]}
    for repeat in range(repeats):
        samples["sequential"].append(_sequential(env, scratch, inputs, str(repeat)))
        for name in runners:
            runner, _, threads = name.partition("@")
            workdir = scratch / f"run-{runner}-{threads}-{repeat}"
            command = [*flow, "--inputs", str(inputs), "--workdir", str(workdir), "--runner", runner]
            elapsed, _, _ = run_measured(
                command, {**env, **dict.fromkeys(THREAD_VARIABLES if threads else (), threads)}, memory=False
            )
            samples[name].append((elapsed, classification_phase(workdir)))
    return {
        name: (statistics.median(whole for whole, _ in runs), statistics.median(phase for _, phase in runs))
        for name, runs in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.5, help="CPU seconds per classifier fit")
    parser.add_argument("--rows", type=int, default=800, help="rows of the moons table (boost workload)")
    parser.add_argument("--workload", choices=("boost", "busy"), default="boost")
    parser.add_argument("--runners", default="thread")
    parser.add_argument("--server", choices=("kept", "prefect"), default="kept")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of baseline and runners, in turns (medians)")
    parser.add_argument("--cold", action="store_true", help="warm commands off (MLTOOLKIT_WARM_COMMANDS=0)")
    arguments = parser.parse_args()
    runners = [name for name in arguments.runners.split(",") if name]

    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-parallel-"))
    home = scratch / "prefect-home"
    inputs, described = write_inputs(scratch, arguments.workload, arguments.tasks, arguments.seconds, arguments.rows)
    if arguments.server == "kept":
        with kept_server(home, MLTOOLKIT_WARM_COMMANDS="0" if arguments.cold else "1") as env:
            results = _alternating(env, scratch, inputs, runners, arguments.repeats)
    else:
        with prefect_server(base_env(home)) as url:
            results = _alternating(base_env(home, PREFECT_API_URL=url), scratch, inputs, runners, arguments.repeats)
    _print_table(results, f"{described}; medians of {arguments.repeats}")


if __name__ == "__main__":
    main()
