"""NB-1010 over USB/IP to the simulator: capture time against the umockdev replay, and
replug-to-ready latency of the real daemon (goal: under 2 s).

Reference for the capture: the same driver capture under the replay of the real
sensor, measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.nb1010_capture import replay_figures
from bench.stats import replug_to_ready, summary_ms, time_calls
from hil.rig import KitdProcess, SimulatorProcess

REPLUG_GOAL_S = 2.0


def usbip_capture_times(sim: SimulatorProcess, repeat: int) -> list[float]:
    from kitd.capture.fingerprint import capture_raw_fingerprint
    from kitd.drivers.nb1010 import NB1010Reader
    from kitd.drivers.usb_link import resolve_backend

    reader = NB1010Reader.over_usb(serial=None, backend=resolve_backend(sim.usbip_uri), ppi=385)
    reader.open()
    try:
        return time_calls(lambda: capture_raw_fingerprint(reader, 5, 0), repeat)
    finally:
        reader.close()


def replug_latencies(sim: SimulatorProcess, workdir: Path, repeat: int) -> list[float]:
    """Seconds from `replug` until the API says ready, with the daemon's field defaults."""
    kitd = KitdProcess(
        workdir / "kitd",
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "log.level": "warning"},
        for_tests=False,
    ).start()
    try:
        kitd.wait_for_status("fingerprint", "ready")
        return replug_to_ready(kitd, sim, "fingerprint", repeat)
    finally:
        kitd.stop()


def run(smoke: bool) -> None:
    repeat = 5 if smoke else 50
    with tempfile.TemporaryDirectory() as workdir:
        sim = SimulatorProcess("hil.nb1010_sim", [], Path(workdir) / "sim").start()
        try:
            usbip = usbip_capture_times(sim, repeat)
            print(f"   capture over USB/IP (simulator): {summary_ms(usbip)}")
            replay = replay_figures(repeat)
            if replay is not None:
                ratio = statistics.median(usbip) / statistics.median(replay["driver"])
                print(f"   capture under umockdev replay (reference): {summary_ms(replay['driver'])}")
                print(f"   ratio USB/IP / replay: {ratio:.2f}x")
            latencies = replug_latencies(sim, Path(workdir), 2 if smoke else 5)
            worst = max(latencies)
            print(
                f"   replug to ready: median {statistics.median(latencies):.2f} s, worst {worst:.2f} s "
                f"(goal {REPLUG_GOAL_S:.0f} s: {'met' if worst < REPLUG_GOAL_S else 'NOT met'})"
            )
        finally:
            sim.stop()
