"""HIL: fingerprint capture sessions through the real daemon, its event stream, and the simulator."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hil.events import EventRecorder
from hil.rig import wait_until
from hil.synthetic_finger import render_finger


@pytest.fixture
def rig(start_simulator, start_kitd):
    sim = start_simulator("hil.nb1010_sim", ["--condition", "light", "--seed", "4"])
    kitd = start_kitd(
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "fingerprint.capture_timeout_s": 20.0},
    )
    kitd.wait_for_status("fingerprint", "ready")
    events = EventRecorder(kitd.url, kitd.token)
    yield sim, kitd, events
    events.close()


def start_session(kitd, category: str = "lainnya") -> str:
    body = {
        "device_id": "fingerprint",
        "modality": "fingerprint",
        "label": "right_thumb",
        "category": category,
    }
    reply = kitd.client.request("POST", "/api/v1/sessions", body)
    assert reply.status == 201, reply.body
    return reply.json()["id"]


def test_session_goes_from_press_harder_to_a_good_press(rig) -> None:
    sim, kitd, events = rig
    sid = start_session(kitd)
    events.wait_for(lambda e: e["type"] == "assessment" and "press_harder" in e["data"]["feedback"])
    sim.control("condition good 4")
    end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid)
    assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("captured", "passes")
    summary = kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()
    assert summary["state"] == "captured" and not summary["forced"] and summary["ended_by"] == "passes"
    capture = kitd.client.checked("GET", f"/api/v1/sessions/{sid}/capture")
    assert capture.headers["Cache-Control"] == "no-store"
    frame = cv2.imdecode(np.frombuffer(capture.body, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(frame, render_finger(4, "good", width=256, height=180, ppi=385.0))

    # Every assessment, then the capture, then the end — in order, ids increasing.
    mine = [e for e in events.events if e["data"].get("session") == sid]
    kinds = [e["type"] for e in mine]
    assert kinds[-2:] == ["capture", "end"] and set(kinds[:-2]) == {"assessment"}
    assert [e["data"]["frame"] for e in mine[:-2]] == list(range(1, summary["attempts"] + 1))
    assert [e["id"] for e in mine] == sorted(e["id"] for e in mine)
    assert kitd.devices()["fingerprint"]["status"] == "ready"


def test_applicant_who_never_passes_ends_forced_with_reasons(rig, start_kitd) -> None:
    sim, kitd, events = rig
    kitd.stop()
    kitd = start_kitd(
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "fingerprint.max_attempts": 3},
    )
    kitd.wait_for_status("fingerprint", "ready")
    events = EventRecorder(kitd.url, kitd.token)
    sid = start_session(kitd, category="lansia")
    summary = kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()
    assert summary["max_attempts"] == 6  # lansia: twice the attempts, same thresholds
    end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid)
    assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("forced", "attempt_limit")
    assert end["data"]["reasons"][0] == "no capture passed in 6 attempts"
    assert len(end["data"]["reasons"]) > 1  # the failing checks are named
    assert len(events.of("assessment", sid)) == 6
    assert events.of("capture", sid)[0]["forced"] is True
    capture = kitd.client.checked("GET", f"/api/v1/sessions/{sid}/capture")
    assert capture.headers["X-Kit-Forced"] == "true"
    events.close()


def test_cancel_and_busy_and_bad_requests(rig) -> None:
    sim, kitd, events = rig
    sim.control("finger off")
    sid = start_session(kitd)
    kitd.wait_for_status("fingerprint", "busy")
    assert kitd.client.request("POST", "/api/v1/devices/fingerprint/capture", {"raw": True}).status == 409
    body = {"device_id": "fingerprint", "modality": "fingerprint", "category": "lainnya"}
    assert kitd.client.request("POST", "/api/v1/sessions", body).status == 409
    assert kitd.client.request("GET", f"/api/v1/sessions/{sid}/capture").status == 409
    assert kitd.client.request("DELETE", f"/api/v1/sessions/{sid}").status == 202
    end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid)
    assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("cancelled", "cancel")
    kitd.wait_for_status("fingerprint", "ready")
    device_events = events.of("device")
    assert {"device": "fingerprint", "status": "busy", "reason": "capturing"} in device_events

    for bad, status, words in [
        ({"device_id": "fingerprint", "modality": "iris", "category": "lainnya"}, 400, "modality"),
        ({"device_id": "fingerprint", "modality": "fingerprint", "category": "anak"}, 400, "category"),
        ({"device_id": "nothing", "modality": "fingerprint", "category": "lainnya"}, 404, "nothing"),
        ({"modality": "fingerprint", "category": "lainnya"}, 400, "device_id"),
        ({"device_id": "fingerprint", "modality": "fingerprint", "category": "lainnya", "x": 1}, 400, "'x'"),
    ]:
        reply = kitd.client.request("POST", "/api/v1/sessions", bad)
        assert reply.status == status, (bad, reply.body)
        assert words in reply.json()["message"]
    assert kitd.client.request("GET", "/api/v1/sessions/nope").status == 404


def test_a_reader_unplugged_mid_session_ends_it_by_its_device(rig) -> None:
    sim, kitd, events = rig
    sid = start_session(kitd)
    events.wait_for(lambda e: e["type"] == "assessment" and e["data"]["session"] == sid)
    sim.control("unplug")
    end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid, timeout_s=60)
    assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("failed", "device"), end
    summary = kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()
    assert summary["ended_by"] == "device" and summary["reasons"] == end["data"]["reasons"]
    sim.control("replug")


def test_iris_session_from_no_eye_through_open_wider_to_auto_capture(start_simulator, start_kitd) -> None:
    from hil import frame_code
    from kitd.capture.iris_quality import assess_iris

    sim = start_simulator("hil.eye_sim", ["--set", "eye=off"])
    kitd = start_kitd(
        devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
        settings={"iris.read_timeout_s": 0.5, "iris.capture_timeout_s": 30.0},
    )
    kitd.wait_for_status("iris", "ready")
    events = EventRecorder(kitd.url, kitd.token)
    try:
        body = {"device_id": "iris", "modality": "iris", "label": "left", "category": "odgj"}
        reply = kitd.client.request("POST", "/api/v1/sessions", body)
        assert reply.status == 201, reply.body
        sid = reply.json()["id"]
        assert kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()["timeout_s"] == 90.0  # odgj: 3x

        def first_code(code: str):  # noqa: ANN202
            return lambda e: (
                e["type"] == "assessment"
                and e["data"]["session"] == sid
                and e["data"]["feedback"][:1] == [code]
            )

        events.wait_for(first_code("no_eye"))
        sim.control("set eye=on eyelid=0.6")
        squint = events.wait_for(first_code("open_wider"))
        assert "circles" in squint["data"] and len(squint["data"]["circles"]["iris"]) == 3
        sim.control("set eyelid=1.0")
        end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid, timeout_s=60)
        assert end["data"]["outcome"] == "captured", end

        summary = kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()
        best = next(a for a in events.of("assessment", sid) if a["frame"] == summary["result"]["frame"])
        assert best["passed"] and best["score"] == summary["result"]["score"]
        capture = kitd.client.checked("GET", f"/api/v1/sessions/{sid}/capture")
        image = cv2.imdecode(np.frombuffer(capture.body, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.shape == (480, 640)
        assert frame_code.read(image) is not None  # a whole simulator frame, not a preview
        # The frame the session reported as best: the same pixels get the same judgement.
        assert round(assess_iris(image).score, 1) == best["score"]
        assert float(capture.headers["X-Kit-Quality"]) == pytest.approx(best["score"], abs=0.05)
        kinds = [e["type"] for e in events.events if e["data"].get("session") == sid]
        assert kinds[-2:] == ["capture", "end"] and set(kinds[:-2]) == {"assessment"}
    finally:
        events.close()


def test_signature_session_ended_by_the_officers_confirm(start_simulator, start_kitd, tmp_path) -> None:
    sim = start_simulator("hil.isdv4_sim", ["--link", str(tmp_path / "pad"), "--strokes", "3"])
    kitd = start_kitd(devices=[{"uri": f"serial:{sim.addresses['serial']}"}])
    kitd.wait_for_status("signature", "ready")
    events = EventRecorder(kitd.url, kitd.token)
    try:
        body = {"device_id": "signature", "modality": "signature", "category": "lansia"}
        sid = kitd.client.checked("POST", "/api/v1/sessions", body).json()["id"]
        # The signature so far is judged as it grows; it ends only when the officer accepts it.
        events.wait_for(
            lambda e: e["type"] == "assessment" and e["data"]["session"] == sid and e["data"]["passed"],
            timeout_s=60,
        )

        def hand_finished() -> bool:
            status = json.loads(sim.control("status"))
            return status["written"] and status["unread"] == 0

        # The simulated hand has written its whole signature, and kitd has read every byte of it
        # and judged the signature holding all of them.
        wait_until(hand_finished, "the hand's whole signature written and read", timeout_s=60)
        written = len(json.loads(sim.control("sent"))["pen"])
        events.wait_for(
            lambda e: (
                e["type"] == "assessment" and e["data"]["session"] == sid and e["data"]["points"] == written
            )
        )
        assert kitd.client.checked("GET", f"/api/v1/sessions/{sid}").json()["state"] == "running"
        confirmed = kitd.client.checked("POST", f"/api/v1/sessions/{sid}/confirm").json()
        assert confirmed["state"] == "confirmed", confirmed
        end = events.wait_for(lambda e: e["type"] == "end" and e["data"]["session"] == sid)
        assert (end["data"]["outcome"], end["data"]["ended_by"]) == ("confirmed", "officer")
        capture = kitd.client.checked("GET", f"/api/v1/sessions/{sid}/capture")
        recording = json.loads(capture.body)
        sent = json.loads(sim.control("sent"))["pen"]
        got = [[p["x"], p["y"], p["pressure"], p["tip"], p["proximity"]] for p in recording["points"]]
        assert got == sent  # every packet the hand wrote, in the confirmed signature
        assert recording["strokes"] == 3
        kitd.wait_for_status("signature", "ready")
    finally:
        events.close()
