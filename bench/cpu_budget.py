"""The CPU behind a spec step: the command's process tree and the kept API server, per step, beside the wall time.

During a large scatter on a 2-core machine both cores are busy: on one side the flow
process (Prefect's task engine and the step's own work) and the steps' processes, on
the other the kept API server recording every task run's state events. This bench runs
the shell scatter of ``bench/scale.py`` with N = 100 and N = 1,000 in turns, with warm
commands off (``MLTOOLKIT_WARM_COMMANDS=0``: the flow process and its steps are then the
command's children, so their CPU is counted as the command's), and prints per step
beyond N = 100, each also as a ratio to a bare ``sh -c 'true x'`` spawn measured in the
same run:

* the wall time;
* the CPU of the command's process tree (``resource.RUSAGE_CHILDREN``: the processes
  waited for, so a helper nobody waits for, such as the run's warden, is left out);
* the kept server's CPU (read once it has recorded the run: its CPU time stops rising);
* half their sum: the least wall time two fully used cores allow for that much CPU.

Run: ``python bench/cpu_budget.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from _common import kept_server, kept_server_cpu, load_average
from scale import SMALLEST, run_scatter, spawn_seconds

LARGE = 1000


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_once_settled(env: dict[str, str], timeout: float = 60.0) -> float:
    """The kept server's CPU seconds once they stop rising (it records a run's events after the run)."""
    deadline = time.monotonic() + timeout
    last = kept_server_cpu(env)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = kept_server_cpu(env)
        if now - last < 0.02:
            return now
        last = now
    return last


def _one_round(count: int, scratch: Path, env: dict[str, str], label: str) -> tuple[float, float, float]:
    """Wall seconds, the command tree's CPU seconds and the kept server's CPU seconds of one scatter."""
    server_before = _server_cpu_once_settled(env)
    children_before = _children_cpu()
    elapsed, _ = run_scatter(count, scratch, env, label)
    return elapsed, _children_cpu() - children_before, _server_cpu_once_settled(env) - server_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="pairs of N = 100 and N = 1,000 runs (medians)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mltk-cpu-") as folder:
        scratch = Path(folder)
        with kept_server(scratch / "home", MLTOOLKIT_WARM_COMMANDS="0") as env:
            run_scatter(1, scratch, env, "warm-up")  # leaves the kept server
            spawn = spawn_seconds(300)
            per_step: list[tuple[float, ...]] = []
            for round_ in range(arguments.rounds):
                small = _one_round(SMALLEST, scratch, env, f"small-{round_}")
                large = _one_round(LARGE, scratch, env, f"large-{round_}")
                per_step.append(tuple((b - a) / (LARGE - SMALLEST) for a, b in zip(small, large, strict=True)))
            spawn = (spawn + spawn_seconds(300)) / 2
    wall, tree, server = (statistics.median(step[index] for step in per_step) for index in range(3))
    print(f"shell scatter, warm commands off, kept server; {arguments.rounds} rounds, medians; {load_average()}")
    print(f"bare `sh -c 'true x'` spawn: {spawn * 1000:.2f} ms")
    print(f"per step beyond N={SMALLEST} at N={LARGE}:       ms   / spawn")
    for name, seconds in (
        ("wall time", wall),
        ("CPU: the command's process tree", tree),
        ("CPU: the kept API server", server),
        ("(tree + server) / 2 cores", (tree + server) / 2),
    ):
        print(f"  {name:38s} {seconds * 1000:6.2f}  {seconds / spawn:6.1f}")


if __name__ == "__main__":
    main()
