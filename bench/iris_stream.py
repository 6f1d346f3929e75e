"""The iris camera streaming through kitd from the simulated eye: frame rate, CPU shares, stall-to-resume.

Reference, measured in the same run: the simulator's own frame rate (what the daemon could
at most deliver), the daemon's CPU share while streaming with no preview open (what one
preview adds), and the stall detection the daemon is configured for (`iris.read_timeout_s`
plus the first reconnect delay: the designed bound on stall-to-resume).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import cpu_seconds
from hil.mjpeg_viewer import Viewer
from hil.rig import KitdProcess, SimulatorProcess
from kitd.config import load_config


def delivered(kitd: KitdProcess) -> int:
    return kitd.devices()["iris"]["detail"]["frames_delivered"]


def measure(kitd: KitdProcess, sim: SimulatorProcess, seconds: float) -> dict[str, float]:
    """Frames delivered per second, and both processes' share of one core, over `seconds`."""
    assert kitd.process is not None and sim.process is not None
    frames0, produced0 = delivered(kitd), json.loads(sim.control("status"))["produced"]
    cpu0, sim_cpu0, t0 = cpu_seconds(kitd.process.pid), cpu_seconds(sim.process.pid), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {
        "fps": (delivered(kitd) - frames0) / elapsed,
        "sim_fps": (json.loads(sim.control("status"))["produced"] - produced0) / elapsed,
        "kitd_cpu": (cpu_seconds(kitd.process.pid) - cpu0) / elapsed,
        "sim_cpu": (cpu_seconds(sim.process.pid) - sim_cpu0) / elapsed,
    }


def stall_and_resume(kitd: KitdProcess, sim: SimulatorProcess) -> tuple[float, float]:
    """Seconds from the stream stalling to the daemon saying so, and from the stream sending
    again to the daemon delivering frames again."""
    sim.control("fault stall")
    stalled = time.monotonic()
    kitd.wait_for_status("iris", "disconnected")
    detected = time.monotonic() - stalled
    before = delivered(kitd)
    time.sleep(0.3)
    sim.control("fault clear")
    resumed = time.monotonic()
    while delivered(kitd) == before:
        time.sleep(0.005)
    return detected, time.monotonic() - resumed


def run(smoke: bool) -> None:
    seconds = 3.0 if smoke else 20.0
    with tempfile.TemporaryDirectory() as workdir:
        sim = SimulatorProcess("hil.eye_sim", [], Path(workdir) / "sim").start()
        kitd = KitdProcess(
            Path(workdir) / "kitd",
            devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
            settings={"log.level": "warning"},
        )
        try:
            kitd.start()
            kitd.wait_for_status("iris", "ready")
            time.sleep(1.0)
            alone = measure(kitd, sim, seconds)
            viewer = Viewer(kitd.url + "/api/v1/stream/iris.mjpg", kitd.token)
            time.sleep(0.5)
            shown0 = len(viewer.frames())
            watched = measure(kitd, sim, seconds)
            preview_fps = (len(viewer.frames()) - shown0) / seconds
            viewer.stop()
            sim_line = f"{watched['sim_fps']:.1f} fps, {watched['sim_cpu'] * 100:.0f}% of a core"
            print(f"   simulator (reference), daemon streaming and one preview open: {sim_line}")
            for label, figures in (("no preview", alone), ("one preview", watched)):
                ratio = figures["fps"] / figures["sim_fps"]
                print(
                    f"   kitd streaming, {label}: {figures['fps']:.1f} fps delivered "
                    f"({ratio:.2f}x the simulator), "
                    f"{figures['kitd_cpu'] * 100:.1f}% of a core"
                )
            print(
                f"   one preview: {preview_fps:.1f} fps shown, daemon CPU "
                f"{watched['kitd_cpu'] / alone['kitd_cpu']:.2f}x streaming without it"
            )
            stalls = [stall_and_resume(kitd, sim) for _ in range(1 if smoke else 5)]
            read_timeout = kitd_setting(kitd, "iris.read_timeout_s")
            backoff = kitd_setting(kitd, "devices.reconnect_max_s")
            for i, (name, reference, what) in enumerate(
                (
                    ("stall detected", read_timeout, "iris.read_timeout_s"),
                    ("stream back to frames delivered", backoff, "devices.reconnect_max_s"),
                )
            ):
                values = [s[i] for s in stalls]
                median = statistics.median(values)
                print(
                    f"   {name}: median {median * 1e3:.0f} ms, max {max(values) * 1e3:.0f} ms, "
                    f"n={len(values)} "
                    f"({median / reference:.2f}x {what} = {reference * 1e3:.0f} ms)"
                )
        finally:
            kitd.stop()
            sim.stop()


def kitd_setting(kitd: KitdProcess, key: str) -> float:
    return float(load_config(kitd.config_path)[key])
