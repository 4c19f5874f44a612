"""Per-step caching: what a second run costs, and what a one-classifier change re-runs.

The default workload is the seed analysis (``inputs.yml``: its five classifiers on
its moons); ``--workload busy`` is the native analysis with ``--tasks`` copies of
``bench._workload.BusyClassifier`` (each fit ~``--seconds`` of CPU, calibrated at
the start). Run with ``python -m flows.ml_workflow`` in one work directory, in the
default configuration: the kept API server and the kept command process, left
by a warm-up run (so no measured run pays for booting them; ``--cold`` turns warm
commands off):

(1) first run (nothing cached);
(2) the same command again: every step should be CACHED; ratio (2)/(1), target <= 0.2
    for the seed;
Also, on the same kept server, Prefect's own floor for run (2) (``bench/_prefect_cached_floor.py``):
a bare flow of the seed's shape called again in an already-running process, every task
cached; over run (1) it is the lowest ratio any Prefect flow of this shape could reach.

(3) (busy workload) one classifier's parameters changed: exactly that classification
    step and the merge should run again; the states from run.json are printed, and
    the command's own summary line (which steps ran, and why).

Run: ``python bench/cache.py [--workload seed|busy] [--tasks 20] [--seconds 1.0] [--cold]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    kept_server,
    load_average,
    output_on_kept_server,
    run_measured,
    wait_for_warm_commands,
)
from _workload import busy_classifiers, iterations_per_second

from mltoolkit.workdir.layout import WorkdirLayout


def step_states(workdir: Path) -> dict[str, str]:
    steps = json.loads(WorkdirLayout(workdir).run_record.read_text())["steps"]
    return {step["name"]: step["state"] for step in steps}


def summary(states: dict[str, str]) -> str:
    counts = collections.Counter(states.values())
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def write_inputs(scratch: Path, tasks: int, seconds: float, changed: int) -> tuple[Path, Path]:
    """The inputs of runs (1)-(2), and of run (3), where classifier ``changed`` has another parameter."""
    work = int(iterations_per_second() * seconds)
    classifiers = busy_classifiers(tasks, work)
    dataset = str(REPO_ROOT / "data" / "moon.txt")
    inputs = scratch / "inputs.yml"
    inputs.write_text(json.dumps({"dataset": dataset, "classifiers": classifiers}))
    classifiers[changed]["params"]["n_neighbors"] = 5
    changed_inputs = scratch / "inputs-changed.yml"
    changed_inputs.write_text(json.dumps({"dataset": dataset, "classifiers": classifiers}))
    return inputs, changed_inputs


def prefect_cached_floor(env: dict[str, str], scratch: Path) -> float:
    """Seconds of a cached call of a bare flow of the seed's shape, on ``env``'s kept server."""
    floor_env = {**env, "PREFECT_LOCAL_STORAGE_PATH": str(scratch / "floor-results")}
    command = [sys.executable, str(REPO_ROOT / "bench" / "_prefect_cached_floor.py")]
    output = output_on_kept_server(floor_env, command, "the Prefect floor flow")
    return float(dict(line.split() for line in output.splitlines())["cached"])


def measure(
    scratch: Path, inputs: list[Path], cold: bool, floor: bool
) -> tuple[list[tuple[float, dict[str, str], str]], float | None]:
    """Run the native flow with each inputs file in turn, in one work directory, after a warm-up run.

    Returns each run's (seconds, step states, the summary line it printed), and with
    ``floor`` Prefect's floor for a cached run (:func:`prefect_cached_floor`).
    """
    workdir = scratch / "workdir"
    with kept_server(scratch / "prefect-home", MLTOOLKIT_WARM_COMMANDS="0" if cold else "1") as env:
        warm_up = ["-p", f"dataset={REPO_ROOT / 'data' / 'moon.txt'}", "-p", "classifiers=[decision_tree]"]
        warm_up_command = [sys.executable, "-m", "flows.ml_workflow", *warm_up, "--workdir", str(scratch / "warm-up")]
        run_measured(warm_up_command, env, memory=False)
        if not cold:
            wait_for_warm_commands(env)
        results = []
        for inputs_file in inputs:
            elapsed, _, output = run_measured(
                [sys.executable, "-m", "flows.ml_workflow", "--inputs", str(inputs_file), "--workdir", str(workdir)],
                env,
                memory=False,
            )
            results.append((elapsed, step_states(workdir), output.strip().splitlines()[-1]))
        return results, prefect_cached_floor(env, scratch) if floor else None


def _print_busy_change(third: float, first: float, states: dict[str, str], said: str, changed: int) -> None:
    print(f"(3) classifier {changed} changed        {third:6.2f} s   {summary(states)}   (3)/(1) = {third / first:.2f}")
    print(f"    (3) said: {said}")
    rerun = sorted(name for name, state in states.items() if state != "CACHED")
    expected = sorted([f"classification_{changed}", "merge_and_visualize"])
    verdict = "yes" if rerun == expected else "NO, expected " + ", ".join(expected)
    print(f"    re-ran in (3): {', '.join(rerun)}; exactly that step and the merge: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("seed", "busy"), default="seed")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per classifier fit")
    parser.add_argument("--changed", type=int, default=7, help="index of the classifier to change in run (3)")
    parser.add_argument("--cold", action="store_true", help="warm commands off (MLTOOLKIT_WARM_COMMANDS=0)")
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-cache-"))
    if arguments.workload == "seed":
        runs = [REPO_ROOT / "inputs.yml"] * 2
        described = "the seed analysis (inputs.yml)"
    else:
        inputs, changed_inputs = write_inputs(scratch, arguments.tasks, arguments.seconds, arguments.changed)
        runs = [inputs, inputs, changed_inputs]
        described = f"{arguments.tasks} classifiers of ~{arguments.seconds:g} s CPU each"
    results, floor = measure(scratch, runs, arguments.cold, floor=arguments.workload == "seed")
    (first, first_states, _), (second, second_states, said_2) = results[:2]

    configuration = "warm commands off" if arguments.cold else "warm commands (the default)"
    print(f"{described}; {configuration}; one run each; {load_average()}")
    print(f"(1) first run                  {first:6.2f} s   {summary(first_states)}")
    print(
        f"(2) nothing changed            {second:6.2f} s   {summary(second_states)}   "
        f"(2)/(1) = {second / first:.2f} (target <= 0.2 for the seed)"
    )
    print(f"    (2) said: {said_2}")
    if floor is not None:
        print(
            f"Prefect's floor for (2): a bare flow of the seed's shape (1 + 5 + 1 tasks), called again in a "
            f"running process, every task cached: {floor:.2f} s = {floor / first:.2f} of (1); "
            f"ours beyond it {second - floor:.2f} s"
        )
    if len(results) == 3:
        third, third_states, said_3 = results[2]
        _print_busy_change(third, first, third_states, said_3, arguments.changed)


if __name__ == "__main__":
    main()
