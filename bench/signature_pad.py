"""The real kitd with the simulated signature pad: CPU share while the pad streams, and
replug-to-ready latency (goal under 2 s).

CPU: kitd's own CPU time (utime + stime from /proc) over a recording of the pad
streaming continuously (~130 packets/s) against the same daemon idle for the same
time (the reference, measured in the same run), as a share of one core. Replug: the
daemon with field defaults (`devices.reconnect_max_s` 1 s), from the simulator's
`replug` to the API saying `ready`, after the backoff has reached its ceiling;
reference: the pad's open (stop, flush, query, touch query) by the driver alone.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.stats import cpu_seconds, replug_to_ready, summary_ms
from hil.rig import KitdProcess, SimulatorProcess
from kitd.drivers.isdv4 import ISDV4Pad

REPLUG_GOAL_S = 2.0


def cpu_share(pid: int, seconds: float, during: threading.Thread | None = None) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    if during is not None:
        during.start()
        during.join()
    else:
        time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def field_kitd(workdir: Path, sim: SimulatorProcess) -> KitdProcess:
    """The real daemon with the field's defaults, configured with the simulated pad."""
    devices = [{"uri": f"serial:{sim.addresses['serial']}"}]
    return KitdProcess(workdir, devices=devices, settings={"log.level": "warning"}, for_tests=False).start()


def streaming_share(workdir: Path, seconds: float) -> tuple[float, float, int]:
    args = ["--link", str(workdir / "pad"), "--loop"]
    sim = SimulatorProcess("hil.isdv4_sim", args, workdir / "sim").start()
    kitd = field_kitd(workdir / "kitd", sim)
    try:
        kitd.wait_for_status("signature", "ready")
        assert kitd.process is not None
        idle = cpu_share(kitd.process.pid, seconds)
        replies = []
        path, body = "/api/v1/devices/signature/capture", {"seconds": seconds}
        recording = threading.Thread(
            target=lambda: replies.append(kitd.client.request("POST", path, body, seconds + 30))
        )
        busy = cpu_share(kitd.process.pid, seconds, recording)
        points = len(replies[0].json()["points"]) if replies and replies[0].status == 200 else 0
        return idle, busy, points
    finally:
        kitd.stop()
        sim.stop()


def replug_latencies(workdir: Path, repeat: int) -> tuple[list[float], list[float]]:
    sim = SimulatorProcess("hil.isdv4_sim", ["--link", str(workdir / "pad2")], workdir / "sim2").start()
    try:
        opens = []
        for _ in range(repeat):
            pad = ISDV4Pad.over_serial(sim.addresses["serial"], 38400)
            started = time.perf_counter()
            pad.open()
            opens.append(time.perf_counter() - started)
            pad.close()
        kitd = field_kitd(workdir / "kitd2", sim)
        try:
            kitd.wait_for_status("signature", "ready")
            latencies = replug_to_ready(kitd, sim, "signature", repeat)
        finally:
            kitd.stop()
        return latencies, opens
    finally:
        sim.stop()


def run(smoke: bool) -> None:
    seconds = 3.0 if smoke else 20.0
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        idle, busy, points = streaming_share(workdir, seconds)
        print(f"   kitd idle with a ready pad (reference): {idle * 100:.2f}% of a core over {seconds:g} s")
        ratio = f"{busy / idle:.1f}x idle" if idle > 0 else "idle was 0"
        print(
            f"   kitd recording a streaming pad: {busy * 100:.2f}% of a core ({ratio}; "
            f"{points} points, {points / seconds:.0f} packets/s)"
        )
        latencies, opens = replug_latencies(workdir, 2 if smoke else 8)
        worst = max(latencies)
        print(f"   pad open by the driver alone (reference): {summary_ms(opens)}")
        print(
            f"   replug to ready: median {statistics.median(latencies):.2f} s, worst {worst:.2f} s "
            f"({statistics.median(latencies) / statistics.median(opens):.1f}x the open; "
            f"goal {REPLUG_GOAL_S:.0f} s: {'met' if worst < REPLUG_GOAL_S else 'NOT met'})"
        )
