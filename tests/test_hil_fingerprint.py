"""HIL: the real kitd and kitctl against the simulated NB-1010 in its own process, over USB/IP.

The driver does not know it is talking to a simulator: only `usb_backend` (or
KITD_USB_BACKEND for kitctl) differs from a kit. Faults are injected through the
simulator's control channel and must reach the technician as typed errors and
the API's HTTP statuses.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.rig import KitdProcess, SimulatorProcess, wait_until

READER = [{"id": "fingerprint", "uri": "usb:298d:1010"}]


def usbip_settings(sim: SimulatorProcess) -> dict[str, str]:
    return {"usb_backend": sim.usbip_uri}


def random_frame(path: Path, seed: int) -> np.ndarray:
    frame = np.random.default_rng(seed).integers(0, 256, (180, 256), dtype=np.uint8)
    assert cv2.imwrite(str(path), frame)
    return frame


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.shape == (180, 256)
    return image


def capture(kitd: KitdProcess, **body: object):
    """A raw capture: these scenarios serve test patterns, which no quality gate would pass."""
    body.setdefault("raw", True)
    return kitd.client.request("POST", "/api/v1/devices/fingerprint/capture", body, timeout_s=60)


@pytest.fixture
def rig(start_simulator, start_kitd):
    sim = start_simulator("hil.nb1010_sim")
    kitd = start_kitd(devices=READER, settings=usbip_settings(sim))
    kitd.wait_for_status("fingerprint", "ready")
    return sim, kitd


def test_queued_frame_comes_back_through_both_paths(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    first = random_frame(tmp_path / "q1.png", 1)
    sim.control(f"queue {tmp_path / 'q1.png'}")
    out = tmp_path / "daemon.png"
    result = kitd.kitctl("capture", "fingerprint", "--daemon", "--raw", "--out", str(out), "--api", kitd.url)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_png(out), first)

    # The daemon holds the reader, so a direct capture must refuse...
    direct = tmp_path / "direct.png"
    env_backend = {"KITD_USB_BACKEND": sim.usbip_uri}
    kitd.env.update(env_backend)
    refused = kitd.kitctl(
        "capture", "fingerprint", "--device", "usb:298d:1010", "--raw", "--out", str(direct)
    )
    assert refused.returncode == 1 and "held by kitd" in refused.stderr
    # ...and with the daemon stopped it opens the reader itself.
    assert kitd.stop() == 0
    second = random_frame(tmp_path / "q2.png", 2)
    sim.control(f"queue {tmp_path / 'q2.png'}")
    result = kitd.kitctl("capture", "fingerprint", "--device", "usb:298d:1010", "--raw", "--out", str(direct))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_png(direct), second)


def test_unplug_mid_frame_then_replug(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("fault unplug-mid-frame 30")
    out = tmp_path / "f.png"
    result = kitd.kitctl("capture", "fingerprint", "--daemon", "--raw", "--out", str(out), "--api", kitd.url)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "unplugged" in line and "503" in line
    assert not out.exists()
    assert kitd.process is not None and kitd.process.poll() is None  # kitd stays up
    device = kitd.wait_for_status("fingerprint", "disconnected")
    assert "unplugged" in device["detail"]["status_reason"]
    status = kitd.client.checked("GET", "/api/v1/status").json()
    assert status["devices"]["disconnected"] == 1

    sim.control("replug")
    kitd.wait_for_status("fingerprint", "ready")
    frame = random_frame(tmp_path / "after.png", 3)
    sim.control(f"queue {tmp_path / 'after.png'}")
    result = kitd.kitctl("capture", "fingerprint", "--daemon", "--raw", "--out", str(out), "--api", kitd.url)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_png(out), frame)


def test_unplug_while_idle_is_noticed(rig) -> None:
    sim, kitd = rig
    sim.control("unplug")
    kitd.wait_for_status("fingerprint", "disconnected")
    assert capture(kitd, timeout_s=1).status == 503
    sim.control("replug")
    kitd.wait_for_status("fingerprint", "ready")
    assert capture(kitd, timeout_s=5).status == 200


def test_a_quick_unplug_and_replug_between_two_looks_is_noticed(rig) -> None:
    """A connector that bounces: the reader is gone and back before the daemon looks again.
    The handle open on the old device is dead; the reader is opened again at its new address,
    and the next capture works (it failed, 'device unplugged', with the reader shown ready)."""
    sim, kitd = rig
    before = kitd.devices()["fingerprint"]["detail"]["usb_address"]
    sim.control("unplug")
    sim.control("replug")

    def reopened() -> bool:
        device = kitd.devices()["fingerprint"]
        return device["status"] == "ready" and device["detail"]["usb_address"] != before

    wait_until(reopened, "the reader opened again at its new address", 30)
    reply = capture(kitd, timeout_s=5)
    assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    ("fault", "status", "code", "words"),
    [
        ("stall", 504, "timeout", "no answer from the device in time"),
        ("ep-stall", 502, "protocol_error", "endpoint stalled"),
        ("bad-header", 502, "protocol_error", "image packet 0"),
        ("never-finger", 504, "no_finger", "no finger on the reader"),
    ],
)
def test_fault_maps_to_typed_error_and_status(
    rig, tmp_path: Path, fault: str, status: int, code: str, words: str
) -> None:
    sim, kitd = rig
    sim.control(f"fault {fault}")
    reply = capture(kitd, timeout_s=1.5)
    assert reply.status == status, reply.body
    assert reply.json()["error"] == code
    assert words in reply.json()["message"]
    assert kitd.devices()["fingerprint"]["status"] == "ready"
    # The reader recovers: once the fault is cleared the next capture is a whole, correct frame.
    sim.control("fault clear")
    frame = random_frame(tmp_path / "after.png", 4)
    sim.control(f"queue {tmp_path / 'after.png'}")
    reply = capture(kitd, timeout_s=5)
    assert reply.status == 200, reply.body
    image = cv2.imdecode(np.frombuffer(reply.body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.shape == (180, 256)
    assert np.array_equal(image, frame)
    assert kitd.process is not None and kitd.process.poll() is None


def test_kitctl_reports_each_fault_in_one_line(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    out = tmp_path / "f.png"
    sim.control("finger off")
    result = kitd.kitctl(
        "capture",
        "fingerprint",
        "--daemon",
        "--raw",
        "--timeout",
        "0.5",
        "--out",
        str(out),
        "--api",
        kitd.url,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kitctl: daemon: no finger on the reader within 0.5 s (no_finger, HTTP 504)"
    ]
    assert not out.exists()


def test_busy_reader_answers_409(rig) -> None:
    import threading

    sim, kitd = rig
    sim.control("finger off")
    slow = threading.Thread(target=capture, args=(kitd,), kwargs={"timeout_s": 3})
    slow.start()
    kitd.wait_for_status("fingerprint", "busy")
    second = capture(kitd, timeout_s=1)
    assert second.status == 409 and second.json()["error"] == "busy"
    slow.join()
