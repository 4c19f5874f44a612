"""Resource limits: values from the environment, one-line messages naming the variable, the inputs size."""

from __future__ import annotations

import pytest

from mltoolkit.errors import CommandLineError, LimitExceededError, SpecError
from mltoolkit.limits import INPUTS_BYTES, LIMITS, SCATTER_STEPS, YAML_NODES, Limit, check_inputs_size


def test_every_limit_has_its_own_variable_and_a_positive_default():
    assert len({limit.variable for limit in LIMITS}) == len(LIMITS)
    assert all(limit.variable.startswith("MLTOOLKIT_") and limit.default > 0 for limit in LIMITS)


def test_the_scatter_limit_is_well_above_the_10000_step_benchmark():
    assert SCATTER_STEPS.default >= 5 * 10_000


def test_a_limit_is_read_from_its_variable_when_checked(monkeypatch):
    limit = Limit("MLTOOLKIT_TEST_LIMIT", 10, "number of things")
    assert limit.value() == 10
    monkeypatch.setenv("MLTOOLKIT_TEST_LIMIT", "1_000")
    assert limit.value() == 1000
    limit.check(1000, "here")
    with pytest.raises(LimitExceededError):
        limit.check(1001, "here")


@pytest.mark.parametrize("value", ["many", "0", "-5", "nan"])
def test_a_malformed_limit_variable_is_a_one_line_error(monkeypatch, value):
    monkeypatch.setenv(YAML_NODES.variable, value)
    with pytest.raises(CommandLineError, match=rf"^MLTOOLKIT_MAX_YAML_NODES='{value}': expected a positive number"):
        YAML_NODES.value()


def test_the_message_names_where_what_the_limit_and_how_to_raise_it():
    error = SCATTER_STEPS.exceeded("workflow.yml line 3: stage 'big'", 1_000_000_000, "cartesian over 1000 x 1000")
    assert isinstance(error, SpecError)  # a stage that cannot be planned fails as a spec problem
    assert str(error) == (
        "workflow.yml line 3: stage 'big': number of steps of one stage is 1,000,000,000, over the limit of "
        "50,000 (cartesian over 1000 x 1000); to allow more, set MLTOOLKIT_MAX_SCATTER_STEPS=500000"
    )
    assert "\n" not in str(YAML_NODES.exceeded("inputs.yml", None, "aliases"))


def test_inputs_over_what_the_prefect_api_accepts_are_refused(monkeypatch):
    check_inputs_size({"items": ["x" * 100] * 4000}, "inputs file small.yml")  # ~400 KB
    with pytest.raises(LimitExceededError) as caught:
        check_inputs_size({"items": ["x" * 100] * 6000}, "inputs file big.yml")
    message = str(caught.value)
    assert message.startswith("inputs file big.yml: size of the inputs as JSON is 618,011 bytes, over the limit")
    assert "PREFECT_SERVER_API_MAX_PARAMETER_SIZE" in message and INPUTS_BYTES.variable in message
    monkeypatch.setenv(INPUTS_BYTES.variable, "1000000")
    check_inputs_size({"items": ["x" * 100] * 6000}, "inputs file big.yml")
