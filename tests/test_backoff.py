"""The shared retry backoff: doubling from the first delay up to the longest, reset on success."""

from __future__ import annotations

from kitd.drivers.backoff import Backoff


def test_delays_double_up_to_the_longest() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_reset_starts_over_from_the_first_delay() -> None:
    backoff = Backoff(0.1, 0.4)
    assert [backoff.next_delay() for _ in range(3)] == [0.1, 0.2, 0.4]
    backoff.reset()
    assert [backoff.next_delay() for _ in range(2)] == [0.1, 0.2]


def test_reset_before_any_failure_changes_nothing() -> None:
    backoff = Backoff(0.5, 2.0)
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_equal_bounds_give_a_fixed_delay() -> None:
    backoff = Backoff(1.0, 1.0)
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 1.0, 1.0]


def test_a_first_delay_above_the_longest_is_used_once() -> None:
    backoff = Backoff(2.0, 1.0)
    assert [backoff.next_delay() for _ in range(3)] == [2.0, 1.0, 1.0]


def test_each_backoff_keeps_its_own_state() -> None:
    first, second = Backoff(0.1, 1.0), Backoff(0.1, 1.0)
    first.next_delay()
    first.next_delay()
    assert second.next_delay() == 0.1
