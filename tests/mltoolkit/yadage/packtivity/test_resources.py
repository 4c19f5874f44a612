"""What an environment's resources do to a step that runs here: limits, requirements, the record."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mltoolkit.errors import CommandLineError, EnvironmentUnavailableError, StepFailedError
from mltoolkit.yadage import validate_step
from mltoolkit.yadage.packtivity import StepOptions, parse_image_map, run_step
from mltoolkit.yadage.packtivity.environments import python_shim_dir
from mltoolkit.yadage.packtivity.resources import parse_provided

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is applied on Linux only")


def _step(cmd: str, resources: list, environment_type: str = "localproc-env", **environment):
    return validate_step(
        {
            "process": {"process_type": "string-interpolated-cmd", "cmd": cmd},
            "environment": {"environment_type": environment_type, "resources": resources, **environment},
            "publisher": {"publisher_type": "frompar-pub", "outputmap": {"out": "outfile"}},
        }
    )


@linux_only
def test_a_memory_limit_caps_the_address_space_of_a_local_step(tmp_path):
    step = _step("ulimit -v > {outfile}", [{"kubernetes_memory_limit": "256Mi"}])
    result = run_step(step, {"outfile": str(tmp_path / "s" / "limit.txt")}, tmp_path / "s", name="s")
    assert (tmp_path / "s" / "limit.txt").read_text().strip() == str(256 * 1024)
    assert result.resources is not None
    assert result.resources["applied"] == {
        "kubernetes_memory_limit": "address-space limit 256Mi of the step's processes (RLIMIT_AS)"
    }
    assert result.resources["requested"] == [{"kubernetes_memory_limit": "256Mi"}]


@linux_only
def test_a_step_that_allocates_beyond_its_memory_limit_fails(tmp_path):
    allocate = f"{sys.executable} -c 'bytearray(600 * 1024 * 1024)'"
    step = _step(allocate + " && echo survived > {outfile}", [{"kubernetes_memory_limit": "300Mi"}])
    with pytest.raises(StepFailedError, match="exited with code"):
        run_step(step, {"outfile": str(tmp_path / "s" / "out.txt")}, tmp_path / "s", name="s")
    assert not (tmp_path / "s" / "out.txt").exists()
    # the same allocation without the limit succeeds
    free = _step(allocate + " && echo survived > {outfile}", [])
    run_step(free, {"outfile": str(tmp_path / "f" / "out.txt")}, tmp_path / "f", name="f")
    assert (tmp_path / "f" / "out.txt").read_text() == "survived\n"


def test_a_job_timeout_kills_the_step_when_it_is_reached(tmp_path):
    step = _step("sleep 30", [{"kubernetes_job_timeout": 1}])
    with pytest.raises(StepFailedError, match="timed out after 1 s"):
        run_step(step, {"outfile": "x"}, tmp_path / "s", name="s", options=StepOptions(timeout=600))


@pytest.mark.parametrize(
    ("run_timeout", "expected"),
    [
        (None, "step timeout 120 s"),
        (600.0, "step timeout 120 s"),
        (30.0, "the run's --step-timeout 30 s is smaller and applies"),
    ],
)
def test_the_smaller_of_the_job_timeout_and_the_runs_step_timeout_applies(tmp_path, run_timeout, expected):
    step = _step("true", [{"kubernetes_job_timeout": 120}])
    result = run_step(step, {"outfile": "x"}, tmp_path / "s", name="s", options=StepOptions(timeout=run_timeout))
    assert result.resources["applied"] == {"kubernetes_job_timeout": expected}


@linux_only
def test_a_memory_limited_step_does_not_run_its_python_in_the_warm_zygote(tmp_path):
    image_map = parse_image_map(["tools/image=toolkit"])
    options = StepOptions(image_map=image_map, use_docker=False, zygote_socket=str(tmp_path / "zygote.sock"))
    found = {}
    for name, resources in (("limited", [{"kubernetes_memory_limit": "2Gi"}]), ("free", [])):
        step = _step("command -v python > {outfile}", resources, "docker-encapsulated", image="tools/image")
        outfile = tmp_path / name / "which.txt"
        run_step(step, {"outfile": str(outfile)}, tmp_path / name, name=name, options=options)
        found[name] = outfile.read_text().strip()
    assert found["limited"] == str(Path(python_shim_dir(None)) / "python")
    assert found["free"] == str(Path(python_shim_dir(str(tmp_path / "zygote.sock"))) / "python")


def test_a_memory_limit_of_a_step_that_runs_nothing_is_recorded_as_ignored(tmp_path):
    step = _step("exit 1", [{"kubernetes_memory_limit": "1Gi"}], "noop-env")
    result = run_step(step, {"outfile": "x"}, tmp_path / "s", name="s")
    assert result.published == {"out": "x"}
    assert result.resources["ignored"] == {"kubernetes_memory_limit": "the step runs no process"}


def test_a_requirement_nothing_provides_stops_the_step_before_it_runs(tmp_path):
    step = _step("touch {outfile}", ["CVMFS"])
    with pytest.raises(EnvironmentUnavailableError) as caught:
        run_step(step, {"outfile": str(tmp_path / "s" / "ran")}, tmp_path / "s", name="s", stage="reco")
    message = str(caught.value)
    assert "stage 'reco' step s: the environment needs resource 'CVMFS'" in message
    assert "--provide CVMFS=/cvmfs" in message and "\n" not in message
    assert not (tmp_path / "s" / "ran").exists()


def test_provided_values_reach_the_step_as_mounts_and_variables(tmp_path):
    cvmfs = tmp_path / "host-cvmfs"
    (cvmfs / "atlas.cern.ch").mkdir(parents=True)
    (cvmfs / "atlas.cern.ch" / "setup.sh").write_text("echo atlas-setup\n")
    step = _step(
        'sh /cvmfs/atlas.cern.ch/setup.sh > {outfile} && echo "$X509_USER_PROXY" >> {outfile}',
        ["CVMFS", "GRIDProxy"],
        "docker-encapsulated",
        image="atlas/analysisbase",
    )
    options = StepOptions(
        image_map=parse_image_map(["atlas/analysisbase=local"]),
        use_docker=False,
        provided=parse_provided([f"cvmfs={cvmfs}", "GRIDProxy=/tmp/x509up_u1000"]),
    )
    outfile = tmp_path / "s" / "out.txt"
    result = run_step(step, {"outfile": str(outfile)}, tmp_path / "s", name="s", options=options)
    assert outfile.read_text() == "atlas-setup\n/tmp/x509up_u1000\n"
    assert result.resources["provided"] == {
        "CVMFS": f"--provide cvmfs={cvmfs}",  # names compare case-insensitively
        "GRIDProxy": "--provide GRIDProxy=/tmp/x509up_u1000",
    }


def test_an_image_map_entry_provides_resources_to_its_images_steps(tmp_path):
    (tmp_path / "map.yml").write_text("atlas/analysisbase: {kind: local, provides: {CVMFS: /cvmfs, GRIDProxy: null}}\n")
    image_map = parse_image_map([], tmp_path / "map.yml")
    assert image_map["atlas/analysisbase"].provides == (("CVMFS", "/cvmfs"), ("GRIDProxy", ""))
    step = _step("true", ["CVMFS", "GRIDProxy"], "docker-encapsulated", image="atlas/analysisbase", imagetag="21.2")
    result = run_step(step, {"outfile": "x"}, tmp_path / "s", name="s", options=StepOptions(image_map=image_map))
    assert result.resources["provided"] == {
        "CVMFS": "image map entry of atlas/analysisbase:21.2",
        "GRIDProxy": "image map entry of atlas/analysisbase:21.2",
    }


@pytest.mark.parametrize("text", ["atlas: {kind: local, provides: CVMFS}", "atlas: {kind: local, provides: ['']}"])
def test_a_malformed_provides_entry_is_one_line(tmp_path, text):
    (tmp_path / "map.yml").write_text(text + "\n")
    with pytest.raises(CommandLineError, match=r"image 'atlas': provides must list resource names"):
        parse_image_map([], tmp_path / "map.yml")


def test_provide_items_parse_as_names_with_optional_values():
    assert parse_provided(["CVMFS=/cvmfs", "GRIDProxy", " kerberos = /tmp/krb5cc "]) == {
        "CVMFS": "/cvmfs",
        "GRIDProxy": "",
        "kerberos": "/tmp/krb5cc",
    }
    with pytest.raises(CommandLineError, match=r"--provide '=/cvmfs': expected NAME or NAME=VALUE"):
        parse_provided(["=/cvmfs"])


def test_a_step_without_resources_has_no_resources_record(tmp_path):
    result = run_step(_step("true", []), {"outfile": "x"}, tmp_path / "s", name="s")
    assert result.resources is None
