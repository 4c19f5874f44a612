"""Large scatters: per-step cost of the spec runner next to a bare shell spawn, N = 100, 1,000 (10,000).

The spec is ``tests/specs/shell_scatter``: one ``localproc-env`` step ``true {item}``
per item, then a gather that reads every value, so the time is the runner's own
per-step cost (planning, one Prefect task run, caching, the step's process, the run
record). Each N runs once in a fresh ``python -m flows.spec_workflow`` process in the
default configuration (the kept API server, left by a one-step warm-up run).

Baseline, same run: a bare ``sh -c 'true x'`` spawn from Python (``subprocess.run``),
the mean over ``--spawns`` spawns, measured before and after the scatters.

Also, on the same kept server after the scatters, Prefect's own floor: ``N`` bare task
runs (returning their argument, result persisted) mapped in one flow with the same
runner (``bench/_prefect_floor.py``); the spec step's cost beyond it is ours.

Printed: t(N); the marginal cost per step beyond the 100-step run,
(t(N) - t(100)) / (N - 100), and its ratio to the spawn (target <= 10 at 1,000 and
10,000); peak memory of the command and all its children (and of the kept command
process that runs it), sampled every second with psutil: the distinct memory (sum of
PSS, without children between fork and exec, which are the flow process itself;
target <= 1 GiB at 10,000) and the plain sum of RSS; the kept
server's CPU time during the run, per step (it shares the 2 cores with the steps).

``--setting NAME=VALUE`` (repeatable) also runs every N with those settings in the
kept server's and the command's environment, in turns with the default (own Prefect homes).

Run: ``python bench/scale.py`` (N = 100, 1,000) or ``--large`` (also 10,000: minutes);
``--progress-n 1000``: only the 1,000-step run with its live progress on a terminal vs ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    TreeMemory,
    kept_server,
    kept_server_cpu,
    load_average,
    output_on_kept_server,
    run_measured,
    wait_for_warm_commands,
)

from mltoolkit.workdir.layout import WorkdirLayout

SPEC = REPO_ROOT / "tests" / "specs" / "shell_scatter"
SMALLEST = 100


def spawn_seconds(count: int) -> float:
    """Mean wall time of one bare ``sh -c 'true x'`` from Python, over ``count`` spawns."""
    start = time.perf_counter()
    for index in range(count):
        subprocess.run(["sh", "-c", f"true {index}"], check=True)
    return (time.perf_counter() - start) / count


def run_scatter(
    count: int, scratch: Path, env: dict[str, str], label: str, *options: str, terminal: bool = False
) -> tuple[float, TreeMemory]:
    """Time one run of the shell scatter with ``count`` items (and ``options``); check its record; (s, peak memory).

    ``terminal``: the command's stderr is a pseudo-terminal (its live progress display is drawn).
    """
    items = scratch / f"items-{label}.json"
    items.write_text(json.dumps({"items": list(range(count))}))
    workdir = scratch / f"workdir-{label}"
    command = [sys.executable, "-m", "flows.spec_workflow", str(workdir), "workflow.yml", str(items)]
    # a memory poll costs the bench tens of ms of CPU, which the command then lacks: once a second
    run = [*command, "--toplevel", str(SPEC), *options]
    elapsed, peak, _ = run_measured(run, env, poll_seconds=1.0, terminal=terminal)
    record = json.loads(WorkdirLayout(workdir).run_record.read_text())
    states = {step["state"] for step in record["steps"]}
    if record["status"] != "completed" or len(record["steps"]) != count + 1 or states != {"COMPLETED"}:
        raise RuntimeError(
            f"N={count}: unexpected run record: status {record['status']}, "
            f"{len(record['steps'])} steps, states {sorted(states)}"
        )
    return elapsed, peak


def prefect_floor(env: dict[str, str], sizes: list[int], scratch: Path) -> dict[int, float]:
    """Seconds of ``N`` bare Prefect task runs (result persisted) mapped in one flow, on ``env``'s kept server."""
    command = [sys.executable, str(REPO_ROOT / "bench" / "_prefect_floor.py"), str(scratch / "floor-results")]
    output = output_on_kept_server(env, [*command, *map(str, sizes)], "the Prefect floor flow")
    return {int(count): float(seconds) for count, seconds in (line.split() for line in output.splitlines())}


def compare_progress(count: int, scratch: Path) -> tuple[float, float]:
    """Seconds of the ``count``-step scatter with the live progress on a terminal, and with ``--quiet``."""
    with kept_server(scratch / "home-progress", PREFECT_LOGGING_LEVEL="WARNING") as env:
        run_scatter(1, scratch, env, "progress-warm-up")
        wait_for_warm_commands(env)
        shown, _ = run_scatter(count, scratch, env, f"{count}-progress", terminal=True)
        quiet, _ = run_scatter(count, scratch, env, f"{count}-quiet", "--quiet", terminal=True)
    return shown, quiet


def _measure(
    sizes: list[int], scratch: Path, configurations: dict[str, dict[str, str]]
) -> tuple[dict[str, dict[int, tuple[float, TreeMemory, float]]], dict[int, float]]:
    """Per configuration and N: (seconds, peak memory, kept server's CPU seconds); configurations in turns.

    Also Prefect's floor on the default configuration's kept server (:func:`prefect_floor`).
    """
    results: dict[str, dict[int, tuple[float, TreeMemory, float]]] = {name: {} for name in configurations}
    with contextlib.ExitStack() as stack:
        envs = {
            name: stack.enter_context(
                kept_server(scratch / f"home-{index}", **{"PREFECT_LOGGING_LEVEL": "WARNING", **extra})
            )
            for index, (name, extra) in enumerate(configurations.items())
        }
        for name, env in envs.items():
            run_scatter(1, scratch, env, f"warm-up-{name}")  # starts the kept server, registers the flow
            wait_for_warm_commands(env)  # and the kept command process: its imports would compete
        for count in sizes:
            for name, env in envs.items():
                before = kept_server_cpu(env)
                elapsed, peak = run_scatter(count, scratch, env, f"{count}-{name}")
                results[name][count] = (elapsed, peak, kept_server_cpu(env) - before)
                print(f"{name}, N={count}: {elapsed:.2f} s; {load_average()}", flush=True)
        floor = prefect_floor(envs["default"], sizes, scratch)
    return results, floor


def _print_floor(floor: dict[int, float], results: dict[int, tuple[float, TreeMemory, float]], spawn: float) -> None:
    """Prefect's own per-task cost beside the spec step's, both beyond N = 100, in spawns."""
    print("Prefect's floor: bare task runs (result persisted) mapped in one flow, same kept server and runner:")
    for count, seconds in floor.items():
        if count == SMALLEST:
            continue
        per_task = (seconds - floor[SMALLEST]) / (count - SMALLEST)
        per_step = (results[count][0] - results[SMALLEST][0]) / (count - SMALLEST)
        ours = per_step - per_task
        print(
            f"{count:7d} {per_task * 1000:7.2f} ms per task = {per_task / spawn:.1f} x spawn; "
            f"the spec step beyond it: {ours * 1000:.2f} ms = {ours / spawn:.1f} x spawn"
        )


def _print_table(name: str, results: dict[int, tuple[float, TreeMemory, float]], spawn: float) -> None:
    print(f"{name}:")
    header = f"{'N':>7} {'t(N)':>9} {'per step':>9} {'/ spawn':>8} {'memory (tree)':>14} {'RSS sum':>9}"
    print(f"{header} {'server CPU/step':>16}")
    base = results[SMALLEST][0]
    for count, (elapsed, peak, cpu) in results.items():
        marginal = "" if count == SMALLEST else f"{(elapsed - base) / (count - SMALLEST) * 1000:7.2f}ms"
        ratio = "" if count == SMALLEST else f"{(elapsed - base) / (count - SMALLEST) / spawn:8.1f}"
        per_step_cpu = cpu / count * 1000
        memory = f"{peak.distinct / 2**20:10.0f} MiB {peak.rss_sum / 2**20:5.0f} MiB"
        print(f"{count:7d} {elapsed:8.2f}s {marginal:>9} {ratio:>8} {memory} {per_step_cpu:13.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="also N = 10,000 (takes minutes)")
    parser.add_argument("--spawns", type=int, default=300, help="bare spawns timed for the baseline")
    parser.add_argument("--setting", action="append", default=[], help="NAME=VALUE: also run with it, in turns")
    parser.add_argument("--progress-n", type=int, help="only compare N steps with progress shown vs --quiet")
    arguments = parser.parse_args()
    if arguments.progress_n:
        shown, quiet = compare_progress(arguments.progress_n, Path(tempfile.mkdtemp(prefix="mltoolkit-bench-scale-")))
        print(f"N={arguments.progress_n}: progress on a terminal {shown:.2f} s, --quiet {quiet:.2f} s; ", end="")
        print(f"ratio {shown / quiet:.3f} (target <= 1.05); {load_average()}")
        return
    sizes = [SMALLEST, 1_000, 10_000] if arguments.large else [SMALLEST, 1_000]
    configurations = {"default": {}}
    if arguments.setting:
        configurations[" ".join(arguments.setting)] = dict(item.split("=", 1) for item in arguments.setting)

    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-scale-"))
    spawn = spawn_seconds(arguments.spawns)
    results, floor = _measure(sizes, scratch, configurations)
    spawn = (spawn + spawn_seconds(arguments.spawns)) / 2

    print(f"shell scatter through `python -m flows.spec_workflow`, kept server; one run each; {load_average()}")
    print(f"bare `sh -c 'true x'` spawn: {spawn * 1000:.2f} ms (mean of 2 x {arguments.spawns})")
    for name, measured in results.items():
        _print_table(name, measured, spawn)
    _print_floor(floor, results["default"], spawn)
    print(f"target: per step beyond N={SMALLEST} <= 10 x spawn; memory (tree) <= 1024 MiB at 10,000")


if __name__ == "__main__":
    main()
