"""HIL: the real kitd and kitctl against the simulated ISDV4 signature pad behind a pty.

The driver does not know it talks to a simulator: kitd opens `serial:LINK`, a symlink
to the pty's slave, as it would /dev/ttyUSB0. What the pad sent is asked of the
simulator (`sent`), so every capture is checked point for point. Faults come over the
simulator's control channel and must reach the technician as one-line errors and the
API's statuses, with the daemon staying up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.ink_path import ink_distances
from hil.rig import REPO, KitdProcess, SimulatorProcess, venv_script, wait_until

ARTIFACTS = REPO / "artifacts"
SIM = "hil.isdv4_sim"


def pad_uri(sim: SimulatorProcess) -> str:
    return f"serial:{sim.addresses['serial']}"


def sent(sim: SimulatorProcess) -> dict:
    return json.loads(sim.control("sent"))


def points(doc: dict) -> list[list]:
    return [[p["x"], p["y"], p["pressure"], p["tip"], p["proximity"]] for p in doc["points"]]


def capture(kitd: KitdProcess, out: Path, *extra: str, seconds: str = "30") -> subprocess.CompletedProcess:
    return kitd.kitctl(
        "capture", "signature", "--daemon", "--seconds", seconds, "--out", str(out), *extra, "--api", kitd.url
    )


def capture_in_background(kitd: KitdProcess, out: Path, seconds: str) -> subprocess.Popen:
    command = [
        venv_script("kitctl"),
        "capture",
        "signature",
        "--daemon",
        "--seconds",
        seconds,
        "--out",
        str(out),
    ]
    return subprocess.Popen([*command, "--api", kitd.url], stderr=subprocess.PIPE, text=True, env=kitd.env)


def start_pad(start_simulator, tmp_path: Path, *args: str) -> SimulatorProcess:
    return start_simulator(SIM, ["--link", str(tmp_path / "pad"), "--strokes", "2", *args])


@pytest.fixture
def rig(start_simulator, start_kitd, tmp_path: Path):
    sim = start_pad(start_simulator, tmp_path)
    kitd = start_kitd(devices=[{"uri": pad_uri(sim)}])
    kitd.wait_for_status("signature", "ready")
    return sim, kitd


def test_daemon_capture_is_what_the_pad_sent(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    device = kitd.devices()["signature"]
    assert device["kind"] == "signature" and device["model"] == "Wacom ISDV4 pen digitizer"
    assert device["firmware"] == "4660"
    detail = device["detail"]
    assert (detail["max_x"], detail["max_y"], detail["max_pressure"]) == (9600, 6000, 1023)
    assert detail["touch"] is None  # the pad did not answer `%`: pen-only, and still ready
    assert detail["points_per_mm"] == 100 and detail["baud"] == 38400

    out, png = tmp_path / "signature.json", tmp_path / "signature.png"
    result = capture(kitd, out, "--png", str(png))
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"device", "points", "strokes"}
    assert doc["device"] == {
        "max_x": 9600,
        "max_y": 6000,
        "max_pressure": 1023,
        "firmware": 4660,
        "points_per_mm": 100,
    }
    what_went_out = sent(sim)
    assert len(what_went_out["pen"]) > 100
    assert points(doc) == what_went_out["pen"]  # every packet, hover included, in order
    times = [p["t_ms"] for p in doc["points"]]
    assert times[0] == 0.0 and times == sorted(times)
    assert doc["strokes"] == 2
    assert result.stdout.startswith("signature: 2 strokes, ")

    # The PNG is kept for people to look at, and its ink must follow the sent path.
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(png, ARTIFACTS / "signature_simulated.png")
    image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.ndim == 2
    from_ink, to_ink = ink_distances(image, [(x, y, tip) for x, y, _, tip, _ in what_went_out["pen"]])
    assert from_ink.max() <= 4.0 and to_ink.max() <= 1.0


def test_direct_capture_refused_while_the_daemon_holds_the_pad_then_done_without_it(
    rig, tmp_path: Path
) -> None:
    sim, kitd = rig
    out = tmp_path / "direct.json"
    refused = kitd.kitctl(
        "capture", "signature", "--device", pad_uri(sim), "--seconds", "5", "--out", str(out)
    )
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert "held by kitd" in line and kitd.url in line
    assert not out.exists()

    assert kitd.stop() == 0
    result = kitd.kitctl(
        "capture", "signature", "--device", pad_uri(sim), "--seconds", "30", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert points(doc) == sent(sim)["pen"]
    assert doc["device"]["firmware"] == 4660 and doc["strokes"] == 2


def test_unplug_mid_signature_then_replug(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    out = tmp_path / "cut.json"
    running = capture_in_background(kitd, out, "30")
    try:
        wait_until(lambda: json.loads(sim.control("status"))["sent"]["pen"] >= 60, "60 packets sent")
        # The recording runs on the pad's thread: the API still answers, and says busy.
        assert kitd.devices()["signature"]["status"] == "busy"
        sim.control("unplug")
        _, stderr = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 1
    (line,) = stderr.strip().splitlines()
    assert "unplugged" in line and "HTTP 503" in line
    assert not out.exists()
    assert kitd.process is not None and kitd.process.poll() is None  # the daemon stays up
    device = kitd.wait_for_status("signature", "disconnected")
    assert "unplugged" in device["detail"]["status_reason"]

    sim.control("replug")
    kitd.wait_for_status("signature", "ready")
    result = capture(kitd, out)
    assert result.returncode == 0, result.stderr
    assert points(json.loads(out.read_text())) == sent(sim)["pen"]


def test_unplug_while_idle_is_noticed_by_polling_the_path(rig) -> None:
    sim, kitd = rig
    sim.control("unplug")
    kitd.wait_for_status("signature", "disconnected")
    reply = kitd.client.request("POST", "/api/v1/devices/signature/capture", {"seconds": 1})
    assert reply.status == 503 and reply.json()["error"] == "disconnected"
    sim.control("replug")
    kitd.wait_for_status("signature", "ready")


def test_a_swapped_pty_behind_the_same_path_is_reopened(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("replug")  # a new pty while plugged: the path now names another device

    def saw_it_go() -> bool:
        lines = [json.loads(line) for line in kitd.logs().splitlines() if line.startswith("{")]
        return any(e.get("device") == "signature" and e.get("status") == "disconnected" for e in lines)

    wait_until(saw_it_go, "logged as disconnected")
    kitd.wait_for_status("signature", "ready")
    out = tmp_path / "swapped.json"
    result = capture(kitd, out)
    assert result.returncode == 0, result.stderr
    assert points(json.loads(out.read_text())) == sent(sim)["pen"]


@pytest.mark.parametrize(("fault", "count"), [("noise", "noise"), ("corrupt 4", "corrupt")])
def test_line_faults_lose_no_intact_packet(rig, tmp_path: Path, fault: str, count: str) -> None:
    sim, kitd = rig
    sim.control(f"fault {fault}")
    out = tmp_path / "faulty.json"
    result = capture(kitd, out)
    assert result.returncode == 0, result.stderr
    went_out = sent(sim)
    assert went_out["counts"][count] > 5
    # Noise is skipped and broken packets rejected: exactly the intact packets arrive.
    assert points(json.loads(out.read_text())) == went_out["pen"]


def test_touch_packets_are_skipped_by_their_length(start_simulator, start_kitd, tmp_path: Path) -> None:
    sim = start_pad(start_simulator, tmp_path, "--touch-sensor-id", "5")
    kitd = start_kitd(devices=[{"uri": pad_uri(sim)}])
    device = kitd.wait_for_status("signature", "ready")
    assert device["detail"]["touch"] == {"sensor_id": 5, "packet_length": 13}
    sim.control("fault touch 2")
    out = tmp_path / "touch.json"
    result = capture(kitd, out)
    assert result.returncode == 0, result.stderr
    went_out = sent(sim)
    assert went_out["counts"]["touch"] > 20
    assert points(json.loads(out.read_text())) == went_out["pen"]


def test_silence_after_the_pen_went_down_ends_the_recording(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    out = tmp_path / "silenced.json"
    running = capture_in_background(kitd, out, "60")
    try:
        wait_until(lambda: any(p[3] for p in sent(sim)["pen"]), "a tip-down packet sent")
        sim.control("fault silence")
        # Ends by itself (2 s without a packet), long before the 60 s it was given.
        _, stderr = running.communicate(timeout=45)
    finally:
        running.kill()
    assert running.returncode == 0, stderr
    doc = json.loads(out.read_text())
    assert points(doc) == sent(sim)["pen"]
    assert any(p["tip"] for p in doc["points"])


def test_a_silent_pad_is_no_pen_input(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("fault silence")
    out = tmp_path / "none.json"
    result = capture(kitd, out, seconds="1.5")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kitctl: daemon: no pen input within 1.5 s (no_pen_input, HTTP 504)"
    ]
    assert not out.exists()
    assert kitd.devices()["signature"]["status"] == "ready"


def test_a_pad_that_never_answers_the_query(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("fault no-query")
    sim.control("replug")  # the daemon opens it again and asks
    device = kitd.wait_for_status("signature", "error")
    assert "no answer to the pen query within 1 s" in device["detail"]["status_reason"]
    assert kitd.process is not None and kitd.process.poll() is None
    assert kitd.stop() == 0
    out = tmp_path / "x.json"
    direct = kitd.kitctl(
        "capture", "signature", "--device", pad_uri(sim), "--seconds", "5", "--out", str(out)
    )
    assert direct.returncode == 1
    (line,) = direct.stderr.strip().splitlines()
    assert line.endswith("no answer to the pen query within 1 s") and not out.exists()


def test_garbage_from_a_wrong_baud_rate(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("fault wrong-baud 19200")
    sim.control("replug")
    device = kitd.wait_for_status("signature", "error")
    assert "wrong baud rate? configured 38400" in device["detail"]["status_reason"]
    # Once the line is right again (fault cleared), the daemon's retries find the pad.
    sim.control("fault clear")
    kitd.wait_for_status("signature", "ready")
    out = tmp_path / "after.json"
    result = capture(kitd, out)
    assert result.returncode == 0, result.stderr
    assert points(json.loads(out.read_text())) == sent(sim)["pen"]


def test_bad_requests_name_the_field(rig) -> None:
    _, kitd = rig
    for body, field in [
        ({"seconds": 0}, "seconds"),
        ({"timeout_s": 1}, "timeout_s"),
        ({"seconds": "5"}, "seconds"),
    ]:
        reply = kitd.client.request("POST", "/api/v1/devices/signature/capture", body)
        assert reply.status == 400, body
        assert field in reply.json()["message"]
        assert reply.json()["field"] == field, reply.json()
