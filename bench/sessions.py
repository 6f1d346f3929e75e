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

from hil.events import EventRecorder
from hil.rig import KitdProcess, SimulatorProcess


def fingerprint_latencies(workdir: Path, repeat: int) -> tuple[list[float], list[float]]:
    sim = SimulatorProcess("hil.nb1010_sim", ["--condition", "light", "--seed", "4"], workdir / "sim").start()
    kitd = KitdProcess(
        workdir / "kitd",
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": f"usbip://{sim.addresses['usbip']}", "log.level": "warning"},
        for_tests=False,
    ).start()
    events = EventRecorder(kitd.url)
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
