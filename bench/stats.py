"""Small helpers for benchmark figures: timing repeated calls and formatting them."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Seconds taken by each of `repeat` calls of fn."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def replug_to_ready(kitd: Any, sim: Any, device_id: str, repeat: int, settle_s: float = 3.0) -> list[float]:
    """Seconds from a simulator's `replug` until the daemon's API says `device_id` is ready.

    Each round unplugs, waits for `disconnected`, then `settle_s` so that the backoff has
    reached its ceiling (the slowest case), then replugs and times.
    """
    latencies = []
    for _ in range(repeat):
        sim.control("unplug")
        kitd.wait_for_status(device_id, "disconnected")
        time.sleep(settle_s)
        sim.control("replug")
        started = time.perf_counter()
        kitd.wait_for_status(device_id, "ready", timeout_s=30)
        latencies.append(time.perf_counter() - started)
    return latencies


def summary_ms(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(times) * 1e3:.3f} ms, p90 {p90 * 1e3:.3f} ms, n={len(times)}"


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
