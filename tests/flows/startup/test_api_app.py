"""The kept API app rests only when it is quiet: no request for a while, and little work of its own."""

from __future__ import annotations

import time

from flows.startup.api_app import REST_MAX_CPU_SHARE, CpuWindow


def _spin(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def test_a_process_still_working_is_not_quiet() -> None:
    window = CpuWindow()
    _spin(0.3)
    assert window.share() > REST_MAX_CPU_SHARE


def test_a_process_that_only_waits_is_quiet() -> None:
    window = CpuWindow()
    _spin(0.2)
    window.share()  # the work before this look does not count for the next window
    time.sleep(0.4)
    assert window.share() < REST_MAX_CPU_SHARE


def test_the_share_is_of_one_core_per_wall_second() -> None:
    window = CpuWindow()
    time.sleep(0.3)
    _spin(0.3)
    share = window.share()
    assert 0.25 < share < 0.75  # ~0.3 s of CPU in ~0.6 s of wall time
