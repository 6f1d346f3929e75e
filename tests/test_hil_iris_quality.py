"""HIL: the iris quality gate and overlay on the live stream, the real kitd against the simulated eye.

The test steps the simulator's parameters through its control channel; after each change it
waits until the daemon's camera delivers the first frame that shows it, then asks the daemon
for a forced gated capture over a short window. The frame that comes back carries the
simulator's block code, so the test knows it shows the changed eye, and the daemon's judgement
of it (X-Kit-Feedback) must name the change. Other captures check the gate itself: a good eye
passes unforced, a blurred one is refused with 422 naming out_of_focus unless forced, and
kitctl says the same. The preview shows the assessor's circles and no words.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from hil import frame_code
from hil.mjpeg_viewer import Viewer
from hil.rig import wait_until

STREAM = "/api/v1/stream/iris.mjpg"


def start_eye_kit(start_simulator, start_kitd):  # type: ignore[no-untyped-def]
    sim = start_simulator("hil.eye_sim", [])
    kitd = start_kitd(
        devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
        settings={"iris.read_timeout_s": 0.5, "iris.capture_timeout_s": 3.0},
    )
    kitd.wait_for_status("iris", "ready")
    return sim, kitd


def set_eye(sim, **changes: object) -> int:  # type: ignore[no-untyped-def]
    """Reset to the default eye with `changes`; the number of the first frame that shows them."""
    sim.control("reset")
    args = " ".join(f"{k}={v}" for k, v in changes.items())
    reply = sim.control(f"set {args}" if args else "set noise=2")  # the rig raises on `err`
    return int(reply.rsplit("from_frame=", 1)[1])


def wait_for_the_change(kitd, first: int) -> None:  # type: ignore[no-untyped-def]
    """Until the daemon's camera delivers frame `first` or a later one (raw captures, each the
    next intact frame): every frame a capture judges from then on shows the changed eye."""

    def shown() -> bool:
        reply = kitd.client.request(
            "POST", "/api/v1/devices/iris/capture", {"raw": True, "timeout_s": 2.0}, timeout_s=20
        )
        assert reply.status == 200, reply.body
        number = frame_code.read(cv2.imdecode(np.frombuffer(reply.body, np.uint8), cv2.IMREAD_GRAYSCALE))
        assert number is not None, reply.headers
        return number >= first

    wait_until(shown, f"a frame from {first} on at the daemon")


def forced_capture(kitd, timeout_s: float = 1.0):  # type: ignore[no-untyped-def]
    reply = kitd.client.request(
        "POST", "/api/v1/devices/iris/capture", {"force": True, "timeout_s": timeout_s}, timeout_s=20
    )
    assert reply.status == 200, reply.body
    image = cv2.imdecode(np.frombuffer(reply.body, np.uint8), cv2.IMREAD_GRAYSCALE)
    return reply.headers, image


STEPS: list[tuple[dict, str]] = [
    ({"blur": 4}, "out_of_focus"),
    ({"motion": 14, "motion_angle": 20}, "hold_still"),
    ({"eyelid": 0.6}, "open_wider"),
    ({"gaze_dx": 70}, "look_at_camera"),
    ({"exposure": 0.35}, "too_dark"),
    ({"exposure": 1.85}, "too_bright"),
    ({"iris_r": 85, "pupil_r": 33, "reflections": "333,227"}, "move_closer"),
    ({"iris_r": 195, "pupil_r": 76, "reflections": "351,209"}, "move_back"),
    ({"iris_x": 150, "reflections": "168,222"}, "off_center"),
    ({"reflections": "390,233"}, "reflection_on_iris"),
    ({"eye": "off"}, "no_eye"),
]


def test_stepping_the_simulator_gives_the_matching_feedback(start_simulator, start_kitd) -> None:
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    first = set_eye(sim)
    wait_for_the_change(kitd, first)
    headers, image = forced_capture(kitd)
    assert frame_code.read(image) >= first
    assert headers.get("X-Kit-Forced") is None and headers["X-Kit-Feedback"] == "", headers
    for changes, code in STEPS:
        first = set_eye(sim, **changes)
        wait_for_the_change(kitd, first)
        headers, image = forced_capture(kitd)
        shown = frame_code.read(image)
        assert shown is not None and shown >= first, (changes, shown, first)
        assert headers["X-Kit-Forced"] == "true", (changes, headers)
        assert headers["X-Kit-Feedback"].split(",")[0] == code, (changes, headers)


def test_gate_passes_a_good_eye_and_refuses_a_blurred_one(
    start_simulator, start_kitd, tmp_path: Path
) -> None:
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    wait_for_the_change(kitd, set_eye(sim))
    out = tmp_path / "eye.png"
    result = kitd.kitctl("capture", "iris", "--daemon", "--api", kitd.url, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "forced" not in result.stderr and cv2.imread(str(out), cv2.IMREAD_GRAYSCALE).shape == (480, 640)

    wait_for_the_change(kitd, set_eye(sim, blur=4))
    reply = kitd.client.request("POST", "/api/v1/devices/iris/capture", {"timeout_s": 1.0}, timeout_s=20)
    assert reply.status == 422
    body = json.loads(reply.body)
    assert body["error"] == "quality_gate" and body["feedback"][0] == "out_of_focus"
    assert "out_of_focus" in body["failed_checks"] and "no frame passed" in body["message"]

    refused = tmp_path / "refused.png"
    result = kitd.kitctl(
        "capture", "iris", "--daemon", "--api", kitd.url, "--timeout", "1", "--out", str(refused)
    )
    assert result.returncode == 1 and not refused.exists()
    assert "quality_gate" in result.stderr and "Traceback" not in result.stderr
    forced = tmp_path / "forced.png"
    result = kitd.kitctl(
        "capture", "iris", "--daemon", "--api", kitd.url, "--timeout", "1", "--force", "--out", str(forced)
    )
    assert result.returncode == 0 and forced.exists()
    assert "forced" in result.stderr and "out_of_focus" in result.stderr

    raw = tmp_path / "raw.png"
    result = kitd.kitctl("capture", "iris", "--daemon", "--api", kitd.url, "--raw", "--out", str(raw))
    assert result.returncode == 0 and "forced" not in result.stderr


def test_preview_shows_the_overlay(start_simulator, start_kitd) -> None:
    sim, kitd = start_eye_kit(start_simulator, start_kitd)
    wait_for_the_change(kitd, set_eye(sim, eyelid=0.6))
    viewer = Viewer(kitd.url + STREAM, kitd.token)
    try:
        wait_until(lambda: len(viewer.frames()) >= 15, "15 preview frames")
        part = viewer.frames()[-1]
    finally:
        viewer.stop()
    image = cv2.imdecode(np.frombuffer(part.body, np.uint8), cv2.IMREAD_COLOR)
    # Coloured pixels exist only where the overlay drew (the eye itself is grey): the circles
    # and lids around the eye in the middle (the iris failing: orange), and no words: nothing
    # in the top band where the message was, nor in the bottom corners (score, session line).
    b, g, r = (image[..., i].astype(int) for i in range(3))
    coloured = (np.abs(b - g) > 40) | (np.abs(g - r) > 40)
    assert coloured.mean() > 0.005
    assert (coloured & (r > 200) & (b < 120)).any()  # the failing colour
    height, width = coloured.shape
    band, corner = height // 6, width // 4
    assert not coloured[:band].any()
    assert not coloured[-band:, :corner].any() and not coloured[-band:, -corner:].any()
