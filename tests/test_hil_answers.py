"""HIL: the daemon's answers say what happened, and its log says every failure (issue 17,
defects 6 and 7), through the real daemon's API against the simulators."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2

from hil.events import EventRecorder
from hil.rig import KitdProcess, wait_until
from hil.synthetic_finger import render_finger

CAPTURE = "/api/v1/devices/{}/capture"


def finger_png(path: Path, condition: str) -> str:
    assert cv2.imwrite(str(path), render_finger(4, condition, width=256, height=180, ppi=385.0))
    return str(path)


def fingerprint_kit(start_simulator, start_kitd, sim_args: list[str], **settings: object):  # noqa: ANN001, ANN201
    sim = start_simulator("hil.nb1010_sim", sim_args)
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri, **settings})
    kitd.wait_for_status("fingerprint", "ready")
    return sim, kitd


def fingerprint_session(kitd: KitdProcess) -> str:
    body = {"device_id": "fingerprint", "modality": "fingerprint", "category": "lainnya"}
    reply = kitd.client.request("POST", "/api/v1/sessions", body)
    assert reply.status == 201, reply.body
    return reply.json()["id"]


def log_lines(kitd: KitdProcess) -> list[dict]:
    lines = []
    for line in kitd.logs().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_presses_that_pass_but_never_k_in_a_row_are_not_steady(start_simulator, start_kitd, tmp_path) -> None:
    # The reader serves a good press and a light one in turn: passes, never two in a row.
    frames = [finger_png(tmp_path / "good.png", "good"), finger_png(tmp_path / "light.png", "light")]
    _, kitd = fingerprint_kit(
        start_simulator,
        start_kitd,
        ["--frame", frames[0], "--frame", frames[1]],
        **{"fingerprint.consecutive_passes": 2},
    )
    reply = kitd.client.request("POST", CAPTURE.format("fingerprint"), {"timeout_s": 3}, timeout_s=30)
    assert reply.status == 422, reply.body
    body = reply.json()
    assert body["error"] == "not_steady", body
    assert body["passes"] >= 1 and body["consecutive_passes"] == 2, body
    assert f"{body['passes']} presses passed but never 2 in a row within 3 s" in body["message"], body
    assert "failing: score" not in body["message"]


def test_a_passing_signature_not_confirmed_says_so(start_simulator, start_kitd, tmp_path) -> None:
    sim = start_simulator("hil.isdv4_sim", ["--link", str(tmp_path / "pad"), "--strokes", "2"])
    kitd = start_kitd(
        devices=[{"uri": f"serial:{sim.addresses['serial']}"}], settings={"signature.capture_seconds": 12}
    )
    kitd.wait_for_status("signature", "ready")
    events = EventRecorder(kitd.url, kitd.token)
    try:
        body = {"device_id": "signature", "modality": "signature", "category": "lainnya"}
        sid = kitd.client.checked("POST", "/api/v1/sessions", body).json()["id"]
        end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid, timeout_s=60)
        assert events.of("assessment", sid)[-1]["passed"], events.of("assessment", sid)[-1]
        assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("forced", "time_limit"), end
        assert end["data"]["reasons"][0] == "not confirmed by the officer within 12 s", end
    finally:
        events.close()


def test_delete_on_an_ended_session_is_a_conflict(start_simulator, start_kitd) -> None:
    sim, kitd = fingerprint_kit(start_simulator, start_kitd, [], **{"fingerprint.capture_timeout_s": 30})
    sim.control("finger off")
    events = EventRecorder(kitd.url, kitd.token)
    try:
        sid = fingerprint_session(kitd)
        assert kitd.client.request("DELETE", f"/api/v1/sessions/{sid}").status == 202
        events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid)
        again = kitd.client.request("DELETE", f"/api/v1/sessions/{sid}")
        assert again.status == 409, again.body
        assert again.json()["error"] == "session_state"
        assert "cancelled" in again.json()["message"]
    finally:
        events.close()


def test_one_unanswered_command_does_not_fail_a_session(start_simulator, start_kitd) -> None:
    sim, kitd = fingerprint_kit(start_simulator, start_kitd, ["--condition", "good", "--seed", "4"])
    events = EventRecorder(kitd.url, kitd.token)
    try:
        sim.control("fault stall")  # the session's first command gets no reply
        sid = fingerprint_session(kitd)
        end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid, timeout_s=60)
        assert end["data"]["outcome"] == "captured", end
        retried = [
            line
            for line in log_lines(kitd)
            if line.get("device") == "fingerprint" and line.get("action") == "retry"
        ]
        assert len(retried) == 1 and "no answer" in retried[0]["reason"], retried
    finally:
        events.close()


def test_every_failed_capture_is_a_log_line(start_simulator, start_kitd, tmp_path) -> None:
    reader = start_simulator("hil.nb1010_sim", [])
    pad = start_simulator("hil.isdv4_sim", ["--link", str(tmp_path / "pad"), "--strokes", "3"])
    kitd = start_kitd(
        devices=[{"uri": "usb:298d:1010"}, {"uri": f"serial:{pad.addresses['serial']}"}],
        settings={"usb_backend": reader.usbip_uri},
    )
    kitd.wait_for_status("fingerprint", "ready")
    kitd.wait_for_status("signature", "ready")

    def failure(device: str, status: int) -> list[dict]:
        return [
            line
            for line in log_lines(kitd)
            if line.get("device") == device and line.get("status") == status and line.get("reason")
        ]

    reader.control("fault never-finger")
    reply = kitd.client.request("POST", CAPTURE.format("fingerprint"), {"raw": True, "timeout_s": 1})
    assert reply.status == 504, reply.body
    (line,) = wait_until(lambda: failure("fingerprint", 504), "a log line for the 504")
    assert "no finger" in line["reason"] and line["level"] == "warning", line

    reader.control("fault clear")
    reader.control("fault bad-header")
    reply = kitd.client.request("POST", CAPTURE.format("fingerprint"), {"raw": True, "timeout_s": 5})
    assert reply.status == 502, reply.body
    (line,) = wait_until(lambda: failure("fingerprint", 502), "a log line for the 502")
    assert "image packet 0" in line["reason"], line

    replies: list = []
    running = threading.Thread(
        target=lambda: replies.append(
            kitd.client.request("POST", CAPTURE.format("signature"), {"seconds": 30}, timeout_s=60)
        )
    )
    running.start()
    wait_until(lambda: json.loads(pad.control("status"))["sent"]["pen"] >= 30, "30 packets sent")
    pad.control("unplug")
    running.join(timeout=60)
    assert replies and replies[0].status == 503, replies
    (line,) = wait_until(lambda: failure("signature", 503), "a log line for the unplugged pad")
    assert "unplugged" in line["reason"], line
