"""Thread limits of the compute pool's children (pure), and that the children get them."""

from __future__ import annotations

import os

import pytest

from flows.startup.compute_pool import THREAD_VARIABLES, ComputePool, thread_limits


@pytest.mark.parametrize(
    ("workers", "cores", "expected"),
    [(2, 2, "1"), (2, 8, "4"), (3, 8, "2"), (4, 2, "1")],
)
def test_cores_are_shared_out_among_workers(workers: int, cores: int, expected: str) -> None:
    assert thread_limits(workers, cores, {}) == dict.fromkeys(THREAD_VARIABLES, expected)


def test_a_single_worker_keeps_every_core() -> None:
    assert thread_limits(1, 8, {}) == {}


def test_a_variable_the_user_set_is_left_alone() -> None:
    limits = thread_limits(2, 2, {"OMP_NUM_THREADS": "2"})
    assert "OMP_NUM_THREADS" not in limits
    assert limits["OPENBLAS_NUM_THREADS"] == "1"


def _environment_value(name: str) -> str | None:
    return os.environ.get(name)


def test_pool_children_run_with_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    pool = ComputePool(workers=2)
    try:
        expected = str(max(1, (os.cpu_count() or 1) // 2))
        assert pool.run(_environment_value, "OPENBLAS_NUM_THREADS", timeout=60) == expected
    finally:
        pool.shutdown()
