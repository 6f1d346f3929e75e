"""The iris camera in the rig: the real kitd against the simulated eye (hil.eye_sim) in its own process.

Tests watch the daemon's preview like the kiosk does; every part names the driver's frame
number and losses, and the image carries the simulator's block code, so each frame the
simulator sent is accounted for.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from hil.mjpeg_viewer import Viewer
from hil.rig import wait_until

STREAM = "/api/v1/stream/iris.mjpg"


def start_eye_kit(start_simulator, start_kitd, sim_args=None, settings=None):  # type: ignore[no-untyped-def]
    sim = start_simulator("hil.eye_sim", sim_args or [])
    kitd = start_kitd(
        devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
        settings={"iris.read_timeout_s": 0.5, **(settings or {})},
    )
    kitd.wait_for_status("iris", "ready")
    return sim, kitd


# Frames a busy machine may read late (about 130 ms at 30 fps) and so count missed early; the
# credit they leave is taken off the next real loss, which brings the totals back together.
MAX_DRIFT = 4
# Before that loss comes, or with none after: a reader held up for half a second (15 frames at
# 30 fps), as a loaded CI machine with a browser and several daemons on 2 cores may do (seen: 8
# frames, two late reads in a row before the stall's gap took the credit back; 5 after the
# last loss).
MAX_LATE = 15


def accounting(frames: list) -> tuple[list[tuple[int, int]], int]:  # type: ignore[type-arg]
    """(lost, reported) for each gap between consecutive viewed frames, and the number of
    frames the simulator numbered in that span."""
    gaps, spanned = [], 0
    for a, b in zip(frames, frames[1:], strict=False):
        if a.code is None or b.code is None:
            continue
        spanned += b.code - a.code
        not_delivered = (b.code - a.code) - (b.seq - a.seq)  # numbered but never read by the driver
        reported = b.header_int("x-frame-missed-total") - a.header_int("x-frame-missed-total")
        if not_delivered or reported:
            gaps.append((not_delivered, reported))
    return gaps, spanned


def test_device_capture_and_two_previews_at_once(start_simulator, start_kitd, tmp_path: Path) -> None:
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    device = kitd.devices()["iris"]
    assert device["kind"] == "iris_camera" and device["model"] == "MJPEG stream"
    assert device["detail"]["format"] == "MJPEG" and device["detail"]["width"] == 640
    first, second = Viewer(kitd.url + STREAM, kitd.token), Viewer(kitd.url + STREAM, kitd.token)
    try:
        wait_until(lambda: len(first.frames()) > 10 and len(second.frames()) > 10, "both previews")
        outs = []
        for i in range(3):
            out = tmp_path / f"iris{i}.jpg"  # whatever the name, the file is a PNG
            result = kitd.kitctl("capture", "iris", "--daemon", "--raw", "--api", kitd.url, "--out", str(out))
            assert result.returncode == 0, result.stderr
            outs.append(out)
        counts = len(first.frames()), len(second.frames())
        wait_until(
            lambda: len(first.frames()) > counts[0] + 10 and len(second.frames()) > counts[1] + 10, "more"
        )
    finally:
        first.stop()
        second.stop()
    assert first.error is None and second.error is None
    for viewer in (first, second):
        assert viewer.headers["cache-control"] == "no-store"
        assert viewer.headers["content-type"].startswith("multipart/x-mixed-replace")
        frame = cv2.imdecode(np.frombuffer(viewer.frames()[-1].body, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert frame.shape == (360, 480)  # scaled for the 7-inch screen
        seqs = [p.seq for p in viewer.frames()]
        assert seqs == sorted(set(seqs))
        assert all(p.code is not None for p in viewer.frames())
    codes = []
    for out in outs:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert image.shape == (480, 640) and image.dtype.name == "uint8"
        from hil import frame_code

        codes.append(frame_code.read(image))
    assert None not in codes and codes == sorted(codes)
    detail = kitd.devices()["iris"]["detail"]
    assert detail["frames_delivered"] > 60 and detail["measured_fps"] > 0
    # The daemon holds the camera: a direct capture is refused and points at --daemon.
    direct = kitd.kitctl(
        "capture", "iris", "--device", f"camera:{sim.addresses['url']}", "--out", str(tmp_path / "x")
    )
    assert direct.returncode == 1 and "--daemon" in direct.stderr


def test_thirty_seconds_of_frames_are_accounted_for(start_simulator, start_kitd) -> None:
    """30 s of streaming with faults: every frame sent is delivered or reported missed (issue 7)."""
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    viewer = Viewer(kitd.url + STREAM, kitd.token)
    before = kitd.devices()["iris"]["detail"]
    try:
        wait_until(lambda: len(viewer.frames()) > 30, "the preview")
        started = time.monotonic()
        script = [
            (4, "fault drop 5"),
            (8, "fault corrupt 3 truncate"),
            (11, "fault corrupt 2 garble"),
            (14, "fault stall 2"),
            (20, "fault drop 1"),
            (23, "fault drop 12"),
        ]
        for at, command in script:
            time.sleep(max(0.0, started + at - time.monotonic()))
            sim.control(command)
        time.sleep(max(0.0, started + 30 - time.monotonic()))
    finally:
        viewer.stop()
    assert viewer.error is None
    after = kitd.devices()["iris"]["detail"]
    frames = viewer.frames()
    gaps, spanned = accounting(frames)
    assert spanned > 700
    # The driver estimates missed frames from arrival times: a frame read late on a busy machine
    # counts as missed, and the early frames after it are a credit taken off the next real loss
    # (kitd.drivers.camera_frames). A gap's count may so be off by frames read late before it,
    # and lost and reported are compared as running totals, lost minus reported: never above
    # MAX_DRIFT (no frame lost without a word), never below -MAX_LATE (frames read late and
    # counted missed, with no later loss to take the credit back).
    running, drift = 0, []
    for lost, reported in gaps:
        running += lost - reported
        drift.append(running)
    assert max(drift) <= MAX_DRIFT and min(drift) >= -MAX_LATE, gaps
    # The dropped 5 and 12 each show as a gap of their size (a driver that reported nothing
    # would leave the totals 5, then 17 apart).
    assert {5, 12} <= {lost for lost, _ in gaps}, gaps
    assert any(lost >= 45 for lost, _ in gaps), gaps  # the stall
    flagged = {
        k: after["frames_flagged"].get(k, 0) - before["frames_flagged"].get(k, 0)
        for k in after["frames_flagged"]
    }
    assert flagged.get("truncated") == 3 and flagged.get("undecodable") == 2, flagged
    assert after["reopens"] > before["reopens"]
    assert kitd.devices()["iris"]["status"] == "ready"


def test_simulator_restart_and_stall_resume_by_themselves(start_simulator, start_kitd) -> None:
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    viewer = Viewer(kitd.url + STREAM, kitd.token)
    try:
        wait_until(lambda: len(viewer.frames()) > 10, "the preview")
        sim.control("fault stall")
        kitd.wait_for_status("iris", "disconnected")
        assert "stalled" in kitd.devices()["iris"]["detail"]["status_reason"]
        sim.control("fault clear")
        kitd.wait_for_status("iris", "ready")
        port = sim.addresses["http"].rpartition(":")[2]
        sim.control("fault exit")
        kitd.wait_for_status("iris", "disconnected")
        seen = len(viewer.frames())
        wait_until(
            lambda: len(viewer.parts) > seen + seen // 4 and viewer.parts[-1].seq is None, "a status card"
        )
        start_simulator("hil.eye_sim", ["--http-port", port])
        kitd.wait_for_status("iris", "ready")
        wait_until(lambda: len(viewer.frames()) > seen + 20, "frames after the restart")
    finally:
        viewer.stop()
    assert viewer.error is None


def test_a_camera_that_stops_streaming_mid_capture_is_said_gone_not_blamed_on_the_eye(
    start_simulator, start_kitd
) -> None:
    """A gated capture of a closed eye; the camera stalls a moment in: the capture ends saying
    the camera stopped streaming (503), not, at its time limit, that the eye should open wider."""
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    sim.control("set eyelid=0")
    answers: list = []
    asking = threading.Thread(
        target=lambda: answers.append(
            kitd.client.request("POST", "/api/v1/devices/iris/capture", {"timeout_s": 60}, timeout_s=90)
        )
    )
    asking.start()
    try:
        kitd.wait_for_status("iris", "busy")
        sim.control("fault stall")
    finally:
        asking.join(timeout=120)
    (reply,) = answers
    assert reply.status == 503 and reply.json()["error"] == "disconnected", reply.body
    assert "stopped streaming during the capture" in reply.json()["message"]
    sim.control("fault clear")
    kitd.wait_for_status("iris", "ready")


def test_a_gated_capture_of_only_damaged_frames_says_what_they_were(start_simulator, start_kitd) -> None:
    """Every frame truncated: the gate judged none, and its 504 says what came instead (a raw
    capture did; the gate said only 'no capture passed within 2 s')."""
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    sim.control("fault corrupt 100000 truncate")
    try:
        reply = kitd.client.request("POST", "/api/v1/devices/iris/capture", {"timeout_s": 2}, timeout_s=60)
    finally:
        sim.control("fault clear")
    assert reply.status == 504 and reply.json()["error"] == "timeout", reply.body
    assert re.search(r"frames seen but not intact: \d+ truncated", reply.json()["message"]), reply.body
