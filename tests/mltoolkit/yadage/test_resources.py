"""Environment ``resources`` in the spec: yadage's names, REANA's limits and hints, sorted by use."""

from __future__ import annotations

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage import validate_step
from mltoolkit.yadage.model import parse_resources
from mltoolkit.yadage.model.resources import format_bytes, parse_duration, parse_memory

from .conftest import load_case


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8Gi", 8 * 1024**3),
        ("500Mi", 500 * 1024**2),
        ("2G", 2 * 10**9),
        ("1.5Gi", int(1.5 * 1024**3)),
        ("128974848", 128974848),
        (1000000, 1000000),
        ("129e6", 129 * 10**6),
        ("64k", 64000),
    ],
)
def test_memory_limits_read_as_kubernetes_quantities(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["8GB", "8 gigs", "-1Gi", "0", "", True, None, "8gi"])
def test_a_memory_limit_that_is_no_quantity_is_refused(text):
    with pytest.raises(ValueError, match="expected a memory size such as '8Gi'"):
        parse_memory(text)


@pytest.mark.parametrize(("count", "text"), [(8 * 1024**3, "8Gi"), (256 * 1024**2, "256Mi"), (1536, "1536")])
def test_byte_counts_print_in_the_largest_binary_unit_that_divides_them(count, text):
    assert format_bytes(count) == text


@pytest.mark.parametrize(
    ("key", "value", "seconds"),
    [
        ("kubernetes_job_timeout", 3600, 3600),
        ("kubernetes_job_timeout", "90", 90),
        ("htcondor_max_runtime", "espresso", 20 * 60),
        ("htcondor_max_runtime", "workday", 8 * 3600),
        ("htcondor_max_runtime", "7200", 7200),
        ("slurm_time", 60, 3600),  # minutes
        ("slurm_time", "1:30:00", 5400),
        ("slurm_time", "10:30", 630),  # minutes:seconds
        ("slurm_time", "2-12", (2 * 24 + 12) * 3600),
        ("slurm_time", "1-00:30:00", 24 * 3600 + 1800),
    ],
)
def test_job_timeouts_read_in_each_backends_format(key, value, seconds):
    assert parse_duration(key, value) == seconds


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("kubernetes_job_timeout", "an hour", "a number of seconds"),
        ("kubernetes_job_timeout", 0, "a number of seconds"),
        ("htcondor_max_runtime", "coffee", "espresso, microcentury"),
        ("slurm_time", "1h", "Slurm's"),
    ],
)
def test_a_malformed_timeout_says_what_its_key_expects(key, value, expected):
    with pytest.raises(ValueError, match=expected):
        parse_duration(key, value)


def test_names_and_credential_flags_are_requirements_and_limits_follow_the_backend():
    request = parse_resources(
        [
            "CVMFS",
            {"kubernetes_memory_limit": "8Gi"},
            {"kubernetes_job_timeout": 600},
            {"kubernetes_uid": 500},
            {"kerberos": True},
            {"voms_proxy": False},
            "GRIDProxy",
        ]
    )
    assert request.requirements == ("CVMFS", "GRIDProxy", "kerberos")
    assert request.compute_backend == "kubernetes"  # REANA's default
    assert (request.timeout, request.timeout_key) == (600, "kubernetes_job_timeout")
    assert (request.memory_limit, request.memory_key) == (8 * 1024**3, "kubernetes_memory_limit")
    assert set(request.ignored) == {"kubernetes_uid"}
    assert "user who runs the workflow" in request.ignored["kubernetes_uid"]


def test_only_the_limits_of_the_steps_own_compute_backend_apply():
    request = parse_resources(
        [
            {"compute_backend": "htcondorcern"},
            {"htcondor_max_runtime": "espresso"},
            {"htcondor_accounting_group": "group_u_x"},
            {"kubernetes_memory_limit": "8Gi"},
            {"kubernetes_job_timeout": 60},
            {"slurm_partition": "inf-short"},
        ]
    )
    assert (request.timeout, request.timeout_key) == (1200, "htcondor_max_runtime")
    assert request.memory_limit is None
    assert "another compute backend than this step's (htcondorcern)" in request.ignored["kubernetes_memory_limit"]
    assert "another compute backend" in request.ignored["kubernetes_job_timeout"]
    assert set(request.ignored) >= {"compute_backend", "htcondor_accounting_group", "slurm_partition"}
    assert request.requirements == ()


def test_an_unknown_resource_key_is_recorded_not_refused():
    request = parse_resources([{"gpu_flavour": "a100"}])
    assert request.ignored == {"gpu_flavour": "this toolkit does not know this resource"}


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([{"kubernetes_memory_limit": "8GB"}], r"kubernetes_memory_limit: found '8GB', expected a memory size"),
        ([3], r"item 0 is int 3, expected a name such as CVMFS or a mapping"),
        (["CVMFS", ""], r"item 1 is an empty string"),
        ([{}], r"item 0 is dict \{\}, expected a name"),
        ("CVMFS", r"found 'CVMFS', expected a list of names"),
    ],
)
def test_malformed_resources_are_one_spec_error_naming_the_key(resources, expected):
    step = {
        "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
        "environment": {"environment_type": "localproc-env", "resources": resources},
        "publisher": {"publisher_type": "constant-pub", "publish": {}},
    }
    with pytest.raises(SpecError, match=expected) as caught:
        validate_step(step)
    assert "environment.resources" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("environment_type", ["localproc-env", "noop-env", "docker-encapsulated"])
def test_every_environment_type_accepts_resources(environment_type):
    environment = {"environment_type": environment_type, "resources": ["CVMFS", {"kubernetes_job_timeout": 5}]}
    if environment_type == "docker-encapsulated":
        environment["image"] = "x"
    step = validate_step(
        {
            "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
            "environment": environment,
            "publisher": {"publisher_type": "constant-pub", "publish": {}},
        }
    )
    assert step.environment.request.requirements == ("CVMFS",) and step.environment.request.timeout == 5


def test_the_resources_fixture_loads_with_every_kind_of_resource():
    workflow = load_case("resources")
    requests = {stage.name: stage.scheduler.step.environment.request for stage in workflow.stages}
    assert requests["limited"].memory_limit == 256 * 1024**2 and requests["limited"].timeout == 600
    assert requests["needs_cvmfs"].requirements == ("CVMFS", "GRIDProxy")
    assert requests["on_htcondor"].timeout == 1200 and requests["on_htcondor"].memory_limit is None
