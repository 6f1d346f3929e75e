"""Capture sessions: time from the simulated applicant turning good to the daemon's auto-capture.

Measured through the real daemon's event stream. Reference: one assessment
interval of the same session in the same run (the time between two consecutive
assessment events), since an auto-capture can come no sooner than the next
frame or press after the change.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import cpu_seconds
from hil.events import EventRecorder
from hil.mjpeg_viewer import Viewer
from hil.rig import KitdProcess, SimulatorProcess


def fingerprint_latencies(workdir: Path, repeat: int) -> tuple[list[float], list[float]]:
    sim = SimulatorProcess("hil.nb1010_sim", ["--condition", "light", "--seed", "4"], workdir / "sim").start()
    kitd = KitdProcess(
        workdir / "kitd",
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "log.level": "warning"},
        for_tests=False,
    ).start()
    events = EventRecorder(kitd.url, kitd.token)
    latencies, intervals = [], []
    try:
        kitd.wait_for_status("fingerprint", "ready")
        for _ in range(repeat):
            sim.control("condition light 4")
            body = {"device_id": "fingerprint", "modality": "fingerprint", "category": "lainnya"}
            sid = kitd.client.checked("POST", "/api/v1/sessions", body).json()["id"]
            events.wait_for(lambda e, s=sid: e["type"] == "assessment" and e["data"]["session"] == s)
            time.sleep(0.3)  # a few poor presses first
            sim.control("condition good 4")
            turned = time.perf_counter()
            captured = events.wait_for(lambda e, s=sid: e["type"] == "capture" and e["data"]["session"] == s)
            latencies.append(captured["received"] - turned)
            mine = [e for e in events.events if e["data"].get("session") == sid]
            stamps = [e["received"] for e in mine if e["type"] == "assessment"]
            intervals.append(statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)))
            kitd.wait_for_status("fingerprint", "ready")
    finally:
        events.close()
        kitd.stop()
        sim.stop()
    return latencies, intervals


EXTRA_VIEWERS = 3


def iris_latencies(
    workdir: Path, repeat: int, cpu_window_s: float
) -> tuple[list[float], list[float], float, float, float]:
    """Eye opened to auto-capture, frame intervals, and kitd's CPU share with a session and a
    preview running against the same with only the preview."""
    sim = SimulatorProcess("hil.eye_sim", ["--set", "eyelid=0.5"], workdir / "eye").start()
    kitd = KitdProcess(
        workdir / "kitd-iris",
        devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
        settings={"log.level": "warning", "iris.capture_timeout_s": 60.0},
        for_tests=False,
    ).start()
    events = EventRecorder(kitd.url, kitd.token)
    viewer = Viewer(kitd.url + "/api/v1/stream/iris.mjpg", kitd.token)
    latencies, intervals = [], []
    try:
        kitd.wait_for_status("iris", "ready")
        assert kitd.process is not None
        before, started = cpu_seconds(kitd.process.pid), time.monotonic()
        time.sleep(cpu_window_s)
        preview_only = (cpu_seconds(kitd.process.pid) - before) / (time.monotonic() - started)
        body = {"device_id": "iris", "modality": "iris", "category": "lainnya"}
        sid = kitd.client.checked("POST", "/api/v1/sessions", body).json()["id"]
        before, started = cpu_seconds(kitd.process.pid), time.monotonic()
        time.sleep(cpu_window_s)
        with_session = (cpu_seconds(kitd.process.pid) - before) / (time.monotonic() - started)
        more = [Viewer(kitd.url + "/api/v1/stream/iris.mjpg", kitd.token) for _ in range(EXTRA_VIEWERS)]
        time.sleep(0.5)
        before, started = cpu_seconds(kitd.process.pid), time.monotonic()
        time.sleep(cpu_window_s)
        with_viewers = (cpu_seconds(kitd.process.pid) - before) / (time.monotonic() - started)
        for extra in more:
            extra.stop()
        kitd.client.request("DELETE", f"/api/v1/sessions/{sid}")
        events.wait_for(lambda e, s=sid: e["type"] == "end" and e["data"]["session"] == s)
        for _ in range(repeat):
            sim.control("set eyelid=0.5")
            sid = kitd.client.checked("POST", "/api/v1/sessions", body).json()["id"]
            events.wait_for(lambda e, s=sid: e["type"] == "assessment" and e["data"]["session"] == s)
            time.sleep(0.3)
            sim.control("set eyelid=1.0")
            turned = time.perf_counter()
            captured = events.wait_for(lambda e, s=sid: e["type"] == "capture" and e["data"]["session"] == s)
            latencies.append(captured["received"] - turned)
            stamps = [
                e["received"]
                for e in events.events
                if e["type"] == "assessment" and e["data"]["session"] == sid
            ]
            intervals.append(statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False)))
    finally:
        viewer.stop()
        events.close()
        kitd.stop()
        sim.stop()
    return latencies, intervals, preview_only, with_session, with_viewers


def run(smoke: bool) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        latencies, intervals = fingerprint_latencies(Path(workdir), 3 if smoke else 20)
    median = statistics.median(latencies)
    interval = statistics.median(intervals)
    print(
        f"   fingerprint: good finger to auto-capture median {median * 1e3:.0f} ms, "
        f"worst {max(latencies) * 1e3:.0f} ms, n={len(latencies)}"
    )
    print(
        f"   interval between assessed presses (reference): {interval * 1e3:.0f} ms; "
        f"ratio {median / interval:.1f}x"
    )

    with tempfile.TemporaryDirectory() as workdir:
        iris, frames, preview_only, with_session, with_viewers = iris_latencies(
            Path(workdir), 2 if smoke else 10, 2 if smoke else 10
        )
    median, interval = statistics.median(iris), statistics.median(frames)
    print(
        f"   iris: eye opened to auto-capture median {median * 1e3:.0f} ms, worst {max(iris) * 1e3:.0f} ms, "
        f"n={len(iris)}; frame interval (reference) {interval * 1e3:.0f} ms; ratio {median / interval:.1f}x "
        "(K consecutive passing frames are needed)"
    )
    print(
        f"   kitd CPU with one preview: {preview_only * 100:.1f}% of a core; with an iris session too: "
        f"{with_session * 100:.1f}% ({with_session / max(preview_only, 1e-6):.2f}x; goal <= 20%)"
    )
    per_viewer = (with_viewers - with_session) / EXTRA_VIEWERS
    print(
        f"   {EXTRA_VIEWERS} more preview viewers: {with_viewers * 100:.1f}% of a core, "
        f"{per_viewer * 100:.2f}% each (goal <= 2% each)"
    )
