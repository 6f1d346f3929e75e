"""The iris camera's diagnostics (kitd.services.camera_checks) on the real kitd against the
simulated eye (hil.eye_sim, with its scripted applicant, as kit-sim starts it): a healthy camera
passes every check; a camera that keeps dropping frames (`fault drop-every`) and a dark scene
(`set exposure=0.05`: the illuminator off or the lens covered) each get their status and what
to do; a stream that stalls in the middle of the frame-rate measurement (`fault stall`) fails
saying so, and the run still completes. One kitd for every case, the fault cleared between.

Only the camera is simulated: its checks are what is tested here, and a kit without the other
devices runs them the same, without waiting for the others' checks.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from hil.kit_sim import simulated_kitd, start_iris_camera, stop_simulators
from hil.pytest_plugin import RigLogs
from hil.rig import KitdProcess
from kitd.cli.daemon_client import DaemonClient

CAMERA = "iris_camera"
CHECKS = ("present", "format", "frame_rate", "exposure", "focus")


def camera_findings(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"].split(".", 1)[1]: f for f in run["checks"] if f["device"] == CAMERA}


def diagnose(kitd: KitdProcess, technician: DaemonClient, steady: bool = False) -> dict[str, dict[str, Any]]:
    """The camera's findings. `steady`: the camera is healthy and its frame rate should be
    ok; a run whose rate a loaded machine held back (two cores, browsers and daemons alongside
    in CI: frames read late count as lost) is run again, at most twice more, and the last
    run's findings are returned whatever they say."""
    for _ in range(3 if steady else 1):
        run = technician.checked("GET", "/api/v1/diagnostics", timeout_s=30.0).json()
        found = camera_findings(run)
        assert tuple(found) == CHECKS, run
        if found["frame_rate"]["status"] != "warning":
            break
    return found


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: f["status"] for name, f in found.items()}


def test_the_camera_checks_catch_dropped_frames_a_dark_scene_and_a_stall(
    tmp_path: Path, rig_logs: RigLogs
) -> None:
    camera = start_iris_camera(tmp_path)
    rig_logs.add(camera.simulator.name, camera.simulator.logs)
    eye = camera.simulator
    kitd = simulated_kitd(tmp_path, [camera])
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        kitd.wait_for_status(CAMERA, "ready")
        technician = DaemonClient(kitd.url, kitd.sign_in("technician"))

        # Healthy: every check ok, with its measures.
        healthy = diagnose(kitd, technician, steady=True)
        assert set(statuses(healthy).values()) == {"ok"}, healthy
        rate = healthy["frame_rate"]["values"]
        assert rate["measured_fps"] > 0.9 * 30 and rate["dropped_share"] < 0.05, rate
        assert healthy["format"]["values"]["width"] == 640 and healthy["format"]["values"]["fps"] == 30
        assert healthy["focus"]["values"]["focus"] > 10 * healthy["focus"]["values"]["focus_low"]

        # A camera that keeps losing one frame in four.
        eye.control("fault drop-every 4")
        dropping = diagnose(kitd, technician)
        eye.control("fault clear")
        rate = dropping["frame_rate"]
        assert rate["status"] == "warning", rate
        assert 0.15 < rate["values"]["dropped_share"] < 0.35, rate
        assert "dropped" in rate["message"]["en"] and "hilang" in rate["message"]["id"]
        assert "USB cable" in rate["message"]["en"]
        assert statuses(dropping) | {"frame_rate": "ok"} == dict.fromkeys(CHECKS, "ok"), dropping

        # A dark scene: the illuminator off or the lens covered.
        eye.control("set exposure=0.05")
        time.sleep(0.3)  # frames already in flight show the old scene
        dark = diagnose(kitd, technician, steady=True)
        eye.control("set exposure=1")
        exposure = dark["exposure"]
        assert exposure["status"] == "failed" and exposure["values"]["verdict"] == "black", exposure
        assert exposure["values"]["dark_share"] > 0.9
        assert "illuminator" in exposure["message"]["en"] and "uncover the lens" in exposure["message"]["en"]
        assert "iluminator" in exposure["message"]["id"]
        assert dark["focus"]["status"] == "not_available"  # not judged on a black picture
        assert dark["frame_rate"]["status"] == "ok" and dark["format"]["status"] == "ok"

        # A stream that stalls a second into the frame-rate measurement.
        replies: list[dict[str, Any]] = []
        asked = threading.Thread(
            target=lambda: replies.append(
                technician.checked("GET", "/api/v1/diagnostics", timeout_s=30.0).json()
            )
        )
        started = time.monotonic()
        asked.start()
        time.sleep(1.0)
        eye.control("fault stall")
        asked.join(timeout=30.0)
        took = time.monotonic() - started
        eye.control("fault clear")
        assert replies, "the diagnostics run did not complete"
        run = replies[0]
        stalled = camera_findings(run)
        assert tuple(stalled) == CHECKS
        rate = stalled["frame_rate"]
        assert rate["status"] == "failed", rate
        assert 0.3 < rate["values"]["stalled_after_s"] < 2.0, rate
        assert "stopped sending frames" in rate["message"]["en"]
        assert "berhenti mengirim gambar" in rate["message"]["id"]
        # What follows does not fail a second time for the same stall.
        for name in ("exposure", "focus"):
            assert stalled[name]["status"] in ("not_available", "failed"), stalled[name]
        assert run["status"] == "failed" and took < 15.0, (took, run["duration_s"])

        # The camera comes back by itself once the stream flows again.
        kitd.wait_for_status(CAMERA, "ready")
    finally:
        kitd.stop()
        stop_simulators([camera])
