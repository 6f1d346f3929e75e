"""Diagnostics on the simulated kit: how long a full run, the quick subset and the vendor's
report take, asked as kitctl diag asks (over the daemon's socket, as a technician).

Runs the real kitd against kit-sim's simulators, waits for every device, then times several
full and quick runs (GET /api/v1/diagnostics) and reports (POST /api/v1/diagnostics/report: a
full run, scrubbed and signed), printing each one's median and worst. The goal (issue 31): the
quick subset, which a visit runs before it starts, under 3 s; its ratio to that goal is
printed. The named reference is the daemon's status (GET /api/v1/status, which also reads the
credentials and the outbox) in the same run. The smoke pass runs kitd with no devices (its
start is most of the cost) and one of each.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.stats import time_calls
from hil.kit_sim import simulated_kitd, start_simulators, stop_simulators
from hil.rig import KitdProcess
from kitd.cli.daemon_client import DaemonClient

GOAL_QUICK_S = 3.0
TIMEOUT_S = 300.0


def _line(name: str, times: list[float], reference: float) -> str:
    median = statistics.median(times)
    return (
        f"   {name:<34} median {median:6.3f} s, max {max(times):6.3f} s, n={len(times)} "
        f"({median / reference:,.0f}x the status)"
    )


def measure(kitd: KitdProcess, repeat: int) -> None:
    client = DaemonClient(f"unix:{kitd.socket_path}")

    def ask(method: str, path: str, body: object = None) -> Callable[[], object]:
        return lambda: client.checked(method, path, body, timeout_s=TIMEOUT_S)

    ask("GET", "/api/v1/diagnostics?quick=1")()  # warm: first imports and the token's session
    status = time_calls(ask("GET", "/api/v1/status"), max(repeat, 5))
    reference = statistics.median(status)
    quick = time_calls(ask("GET", "/api/v1/diagnostics?quick=1"), repeat)
    full = time_calls(ask("GET", "/api/v1/diagnostics?quick=0"), repeat)
    report = time_calls(ask("POST", "/api/v1/diagnostics/report", {"quick": False}), repeat)
    run = client.checked("GET", "/api/v1/diagnostics?quick=0", timeout_s=TIMEOUT_S).json()
    print(f"   status (reference)                 median {reference * 1e3:6.1f} ms")
    print(_line("quick run", quick, reference))
    print(_line("full run", full, reference))
    print(_line("report (full run, signed)", report, reference))
    share = statistics.median(quick) / GOAL_QUICK_S
    print(
        f"   quick run against the goal (< {GOAL_QUICK_S:g} s): median {share:.1%}, "
        f"max {max(quick) / GOAL_QUICK_S:.1%} of it"
    )
    slowest = sorted(run["checks"], key=lambda c: c["duration_s"], reverse=True)[:3]
    print(
        f"   {len(run['checks'])} checks in a full run; slowest: "
        + ", ".join(f"{c['id']} {c['duration_s']:.3f} s" for c in slowest)
    )


def run(smoke: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-diagnostics-") as workdir:
        root = Path(workdir)
        if smoke:
            kitd = KitdProcess(root / "kitd", settings={"log.level": "warning"}, for_tests=False)
            print("   kitd with no devices (smoke)")
            kitd.start()
            try:
                measure(kitd, 1)
            finally:
                kitd.stop()
            return
        simulated = start_simulators(root)
        try:
            kitd = simulated_kitd(root, simulated, {"log.level": "warning"}, for_tests=False)
            kitd.start()
            try:
                for device_id in kitd.devices():
                    kitd.wait_for_status(device_id, "ready")
                print(f"   kit-sim's simulators and kitd, {len(kitd.devices())} devices ready")
                measure(kitd, 7)
            finally:
                kitd.stop()
        finally:
            stop_simulators(simulated)
