"""Prefect's overhead on the native workflow, as ratios against plain Python measured in the same run.

(a)  the analysis as plain sequential calls of the pure functions, fresh process
     (`mltoolkit.analysis.pipeline.run_sequential`: same steps, same files);
(b)  `python -m flows.ml_workflow --inputs inputs.yml`, fresh process, default
     configuration (no PREFECT_API_URL): the temporary API server and the kept
     command process left by the previous command are reused (the steady state
     from the second run on);
(b-cold) the same with warm commands off (`MLTOOLKIT_WARM_COMMANDS=0`): the command
     imports everything itself; the rows below are cold too;
(b-certifi) (b-cold) with Prefect's default TLS bundle (certifi) instead of the one-certificate
     bundle our commands use for plain-HTTP APIs (`flows/startup/local_api_ca.pem`):
     does that trick still pay? Wall time and CPU time (the command and the
     processes it reaped; the kept server is not among them) of both.
(b1) the same with no server left running (`MLTOOLKIT_API_IDLE_TIMEOUT=0`: every
     command boots its own, like Prefect's default temporary server);
(b0) the very first run on a fresh PREFECT_HOME (the database is created), once;
     b0/b1 is the first-run row: target <= 1.5 (a newcomer's first command);
(c)  the same command against an already running `prefect server start` on 127.0.0.1.

Targets: b/a <= 2.0, c/a <= 1.3 and b0/b1 <= 1.5. Run: `python bench/overhead.py [--repeats N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import certifi
from _common import base_env, median_time, prefect_server, time_command, wait_for_warm_commands


def _children_cpu_seconds() -> float:
    """CPU time of every finished child (with the zygote and step processes they reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-run-only", action="store_true", help="only (b0) and (b1): the first-run row")
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mltoolkit-bench-"))
    home = scratch / "prefect-home"
    workdir = scratch / "workdir"
    flow_command = [sys.executable, "-m", "flows.ml_workflow", "--inputs", "inputs.yml", "--workdir", str(workdir)]
    plain_command = [
        sys.executable,
        "-c",
        "import sys; from mltoolkit.analysis.inputs import load_inputs; "
        "from mltoolkit.analysis.pipeline import run_sequential; "
        "run_sequential(load_inputs('inputs.yml'), sys.argv[1])",
        str(scratch / "plain"),
    ]
    no_keep = base_env(home, MLTOOLKIT_API_IDLE_TIMEOUT="0")
    keep = base_env(home, MLTOOLKIT_API_IDLE_TIMEOUT="120")
    keep_cold = {**keep, "MLTOOLKIT_WARM_COMMANDS": "0"}

    times: dict[str, float] = {}
    times["a"] = median_time(plain_command, base_env(home), arguments.repeats)
    times["b0"] = time_command(flow_command, no_keep)
    times["b1"] = median_time(flow_command, no_keep, arguments.repeats)
    if arguments.first_run_only:
        print(_first_run_row(times))
        return
    time_command(flow_command, keep_cold)  # leaves a server for the next commands
    cpu: dict[str, float] = {}
    certifi_bundle = {**keep_cold, "PREFECT_API_SSL_CERT_FILE": certifi.where()}
    for name, environment in (("b-cold", keep_cold), ("b-certifi", certifi_bundle)):
        before = _children_cpu_seconds()
        times[name] = median_time(flow_command, environment, arguments.repeats)
        cpu[name] = (_children_cpu_seconds() - before) / arguments.repeats
    time_command(flow_command, keep)  # leaves the kept command process
    wait_for_warm_commands(keep)
    times["b"] = median_time(flow_command, keep, arguments.repeats)
    subprocess.run([sys.executable, "-m", "flows.cli", "server", "stop"], env=keep, capture_output=True)
    with prefect_server(base_env(home)) as url:
        cold_command_env = base_env(home, PREFECT_API_URL=url, MLTOOLKIT_WARM_COMMANDS="0")
        times["c"] = median_time(flow_command, cold_command_env, arguments.repeats)

    _report(times, cpu, arguments.repeats)


def _first_run_row(times: dict[str, float]) -> str:
    return (
        f"(b0) first run, fresh PREFECT_HOME       {times['b0']:6.2f} s   b0/a = {times['b0'] / times['a']:4.2f}   "
        f"b0/b1 = {times['b0'] / times['b1']:4.2f}  (first run vs (b1), target <= 1.5)"
    )


def _report(times: dict[str, float], cpu: dict[str, float], repeats: int) -> None:
    a = times["a"]
    print(f"repeats: {repeats} (medians), machine: {os.cpu_count()} cores")
    print(f"(a)  plain sequential Python            {a:6.2f} s")
    print(_first_run_row(times))
    print(f"(b1) cold, no server left running        {times['b1']:6.2f} s   b1/a = {times['b1'] / a:4.2f}")
    print(
        f"(b)  default: kept server and command process {times['b']:6.2f} s   b/a  = {times['b'] / a:4.2f}  "
        "(target <= 2.0)"
    )
    print(f"(b-cold) the same, warm commands off  {times['b-cold']:6.2f} s   b-cold/a = {times['b-cold'] / a:4.2f}")
    print(
        f"(b-certifi) (b-cold), certifi's bundle    {times['b-certifi']:6.2f} s   "
        f"b-certifi/b-cold = {times['b-certifi'] / times['b-cold']:4.2f}  (> 1: the one-certificate bundle pays)"
    )
    print(
        f"     CPU per command: (b-cold) {cpu['b-cold']:5.2f} s, (b-certifi) {cpu['b-certifi']:5.2f} s   "
        f"ratio = {cpu['b-certifi'] / cpu['b-cold']:4.2f}"
    )
    print(
        f"(c)  against `prefect server start`      {times['c']:6.2f} s   c/a  = {times['c'] / a:4.2f}  (target <= 1.3)"
    )


if __name__ == "__main__":
    main()
