"""Retry delays that double from a first delay up to a longest one, and start over after a success.

Pure: no clock, no sleeping, no kitd imports; the caller waits however it waits (a thread's
Event.wait, asyncio). One Backoff per retry loop, owned by that loop.
"""

from __future__ import annotations


class Backoff:
    """`next_delay()` gives min_s, then twice the last, never more than max_s; `reset()` starts over.

    Taken as configured, without checks: a min_s above max_s is used once, then max_s.
    """

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._next = min_s

    def next_delay(self) -> float:
        """The delay to wait before the next attempt (each call is one failed attempt)."""
        delay = self._next
        self._next = min(delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """After a success: the next failure waits min_s again."""
        self._next = self.min_s
