"""Large scatters: the spec runner on a trivial noop scatter of N steps, N = 100, 1,000, 10,000.

The spec is ``tests/specs/noop_scatter`` (one ``noop-env`` step per item, then a
gather that reads every value), so the time is the runner's own per-step cost:
planning, one Prefect task run, caching, the run record. Each N runs in a fresh
``python -m flows.spec_workflow`` process against its own fresh ``prefect server
start`` on 127.0.0.1 (the server records ~3 events per task run in the background;
a fresh one per N keeps one N's backlog out of the next N's time). A run with
N = 1 on the same server gives the fixed cost.

Then, for the largest N (or ``--progress-n``), on the same server: the run with
its progress shown on a terminal (stderr a pseudo-terminal: the live display)
and with ``--quiet``, and their ratio (target <= 1.05: progress costs nothing
measurable). The runs of the table show progress as in a log (one line per
finished stage).

Printed: t(N); per-step overhead (t(N) - t(1)) / N in ms; t(10N)/t(N) (target
<= 12, i.e. no worse than linear plus noise); peak RSS of the command and all its
children, summed over the process tree and sampled every 0.1 s with psutil
(target <= 1 GiB at 10,000).

Run: ``python bench/scale.py`` (N = 100, 1,000, 10,000) or ``--quick`` (100, 1,000);
``--progress-only --progress-n 1000`` runs only the progress comparison.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, base_env, prefect_server, run_measured

from mltoolkit.workdir.layout import WorkdirLayout

SPEC = REPO_ROOT / "tests" / "specs" / "noop_scatter"


def run_scatter(
    count: int, scratch: Path, env: dict[str, str], label: str, *options: str, terminal: bool = False
) -> tuple[float, int]:
    """Time the noop scatter with ``count`` items (and ``options``); check its record; return (s, peak RSS)."""
    items = scratch / f"items-{label}.json"
    items.write_text(json.dumps({"items": list(range(count))}))
    workdir = scratch / f"workdir-{label}"
    command = [
        sys.executable,
        "-m",
        "flows.spec_workflow",
        str(workdir),
        "workflow.yml",
        str(items),
        "--toplevel",
        str(SPEC),
        *options,
    ]
    elapsed, peak, _ = run_measured(command, env, terminal=terminal)
    record = json.loads(WorkdirLayout(workdir).run_record.read_text())
    states = {step["state"] for step in record["steps"]}
    if record["status"] != "completed" or len(record["steps"]) != count + 1 or states != {"COMPLETED"}:
        raise RuntimeError(
            f"N={count}: unexpected run record: status {record['status']}, "
            f"{len(record['steps'])} steps, states {sorted(states)}"
        )
    return elapsed, peak


def compare_progress(count: int, scratch: Path) -> tuple[float, float]:
    """Seconds of the ``count``-step scatter with the live progress display, and with ``--quiet`` (same server)."""
    env = base_env(scratch / f"prefect-home-progress-{count}", PREFECT_LOGGING_LEVEL="WARNING")
    with prefect_server(env) as url:
        flow_env = {**env, "PREFECT_API_URL": url}
        run_scatter(1, scratch, flow_env, "progress-warm-up")
        shown, _ = run_scatter(count, scratch, flow_env, f"{count}-progress", terminal=True)
        quiet, _ = run_scatter(count, scratch, flow_env, f"{count}-quiet", "--quiet", terminal=True)
    return shown, quiet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000 only (a smoke run)")
    parser.add_argument("--progress-n", type=int, default=None, help="N of the progress comparison (default: largest)")
    parser.add_argument("--progress-only", action="store_true", help="only the progress comparison")
    arguments = parser.parse_args()
    sizes = [100, 1_000] if arguments.quick else [100, 1_000, 10_000]

    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-scale-"))
    results: dict[int, tuple[float, float, int]] = {}
    for count in [] if arguments.progress_only else sizes:
        home = scratch / f"prefect-home-{count}"
        env = base_env(home, PREFECT_LOGGING_LEVEL="WARNING")
        with prefect_server(env) as url:
            flow_env = {**env, "PREFECT_API_URL": url}
            run_scatter(1, scratch, flow_env, f"{count}-warm-up")  # registers the flow
            fixed, _ = run_scatter(1, scratch, flow_env, f"{count}-fixed")
            elapsed, peak = run_scatter(count, scratch, flow_env, str(count))
        results[count] = (elapsed, fixed, peak)
    progress_n = arguments.progress_n or sizes[-1]
    shown, quiet = compare_progress(progress_n, scratch)

    print(f"noop scatter through `python -m flows.spec_workflow`; machine: {os.cpu_count()} cores; one run each")
    if results:
        _print_table(sizes, results)
    print(
        f"N={progress_n} with the live progress on a terminal: {shown:.2f}s, with --quiet: {quiet:.2f}s; "
        f"ratio {shown / quiet:.3f} (target <= 1.05)"
    )


def _print_table(sizes: list[int], results: dict[int, tuple[float, float, int]]) -> None:
    print(f"{'N':>7} {'t(N)':>9} {'t(1)':>7} {'per step':>9} {'peak RSS (tree)':>16}")
    for count, (elapsed, fixed, peak) in results.items():
        print(
            f"{count:7d} {elapsed:8.2f}s {fixed:6.2f}s {(elapsed - fixed) / count * 1000:7.2f}ms "
            f"{peak / 2**20:12.0f} MiB"
        )
    for small, large in itertools.pairwise(sizes):
        ratio = results[large][0] / results[small][0]
        print(f"t({large})/t({small}) = {ratio:.2f} (target <= 12)")
    largest = sizes[-1]
    print(f"peak RSS at N={largest}: {results[largest][2] / 2**20:.0f} MiB (target <= 1024 MiB at 10,000)")


if __name__ == "__main__":
    main()
