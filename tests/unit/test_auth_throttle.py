"""The failed-authentication throttle: a fixed window per client address,
bounded memory."""

from __future__ import annotations

from api.auth import AuthThrottle


def test_the_limit_holds_within_a_window_and_resets_after_it() -> None:
    throttle = AuthThrottle(2, window_s=60.0)

    assert throttle.failed("a", 0.0) is None
    assert throttle.failed("a", 1.0) is None
    assert throttle.failed("a", 10.0) == 50.0  # the window started at 0
    assert throttle.failed("b", 10.0) is None  # another address is not affected
    assert throttle.failed("a", 60.0) is None  # a new window
    assert throttle.failed("a", 61.0) is None
    assert throttle.failed("a", 62.0) == 58.0


def test_memory_is_bounded_by_the_number_of_addresses() -> None:
    throttle = AuthThrottle(5, window_s=60.0, max_addresses=100)

    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", n / 1000)

    assert len(throttle) <= 100


def test_windows_that_ended_are_dropped_first() -> None:
    throttle = AuthThrottle(1, window_s=60.0, max_addresses=3)
    throttle.failed("old", 0.0)
    throttle.failed("x", 100.0)
    throttle.failed("x", 100.0)  # over the limit
    throttle.failed("y", 100.0)

    throttle.failed("z", 101.0)  # full: "old" ended, it goes

    assert len(throttle) == 3
    assert throttle.failed("x", 102.0) is not None  # still counted
