"""The device layer under abuse, through the API against the simulators: no old frame passes
for a new capture, an abandoned capture frees its device, and the camera is busy like the
other devices (issue 17, defects 1-3)."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse

from hil.mjpeg_viewer import Viewer
from hil.rig import KitdProcess, wait_until

STREAM = "/api/v1/stream/iris.mjpg"
CAPTURE = "/api/v1/devices/{}/capture"


def eye_kit(start_simulator, start_kitd, *sim_args: str):  # noqa: ANN001, ANN201
    sim = start_simulator("hil.eye_sim", list(sim_args))
    kitd = start_kitd(
        devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}],
        settings={"iris.read_timeout_s": 0.5, "iris.capture_timeout_s": 3.0},
    )
    kitd.wait_for_status("iris", "ready")
    return sim, kitd


def test_a_frame_from_before_a_disconnection_is_never_a_capture(start_simulator, start_kitd) -> None:
    sim, kitd = eye_kit(start_simulator, start_kitd)
    ok = kitd.client.request("POST", CAPTURE.format("iris"), {"raw": True}, timeout_s=30)
    assert ok.status == 200, ok.body
    sim.control("fault stall")  # the camera sends nothing more; its last frame stays in memory
    kitd.wait_for_status("iris", "disconnected")
    for body in ({"force": True}, {}, {"raw": True}):
        reply = kitd.client.request("POST", CAPTURE.format("iris"), body, timeout_s=30)
        assert reply.status == 503, (body, reply.status, reply.body)
        assert reply.json()["error"] == "disconnected"
    session = {"device_id": "iris", "modality": "iris", "category": "lainnya"}
    reply = kitd.client.request("POST", "/api/v1/sessions", session)
    assert reply.status == 503 and reply.json()["error"] == "disconnected", reply.body
    # A viewer who joins now is told the camera is away, and shown no frame from before.
    viewer = Viewer(kitd.url + STREAM, kitd.token)
    try:
        wait_until(lambda: list(viewer.parts), "the first part of the preview", timeout_s=10)
        assert all(part.seq is None for part in list(viewer.parts)), [p.headers for p in list(viewer.parts)]
    finally:
        viewer.stop()
    sim.control("fault clear")
    kitd.wait_for_status("iris", "ready")
    again = kitd.client.request("POST", CAPTURE.format("iris"), {"raw": True}, timeout_s=30)
    assert again.status == 200
    assert int(again.headers["X-Frame-Seq"]) > int(ok.headers["X-Frame-Seq"])


def test_the_camera_is_busy_for_a_second_capture_or_session(start_simulator, start_kitd) -> None:
    sim, kitd = eye_kit(start_simulator, start_kitd, "--set", "eyelid=0.2")  # never passes the gate
    replies: list = []
    first = threading.Thread(
        target=lambda: replies.append(
            kitd.client.request("POST", CAPTURE.format("iris"), {"timeout_s": 4, "force": True}, timeout_s=30)
        )
    )
    first.start()
    wait_until(lambda: kitd.devices()["iris"]["status"] == "busy", "the first capture holds the camera")
    second = kitd.client.request("POST", CAPTURE.format("iris"), {"raw": True}, timeout_s=30)
    assert second.status == 409 and second.json()["error"] == "busy", second.body
    session = {"device_id": "iris", "modality": "iris", "category": "lainnya"}
    assert kitd.client.request("POST", "/api/v1/sessions", session).status == 409
    viewer = Viewer(kitd.url + STREAM, kitd.token)  # watching is not holding: the preview goes on
    try:
        wait_until(lambda: len(viewer.frames()) >= 5, "preview frames during a capture")
    finally:
        viewer.stop()
    first.join(timeout=30)
    assert replies and replies[0].status == 200 and replies[0].headers.get("X-Kit-Forced") == "true"
    kitd.wait_for_status("iris", "ready")
    # Two sessions at once: the second is refused at once, not accepted and failed later.
    started = kitd.client.request("POST", "/api/v1/sessions", session)
    assert started.status == 201, started.body
    refused = kitd.client.request("POST", "/api/v1/sessions", session)
    assert refused.status == 409, refused.body
    kitd.client.request("DELETE", f"/api/v1/sessions/{started.json()['id']}")


def _post_and_hang_up(kitd: KitdProcess, path: str, body: dict, after_s: float) -> None:
    parsed = urllib.parse.urlsplit(kitd.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    headers = {"Content-Type": "application/json", **kitd.auth_headers}
    connection.request("POST", path, json.dumps(body), headers)
    time.sleep(after_s)
    connection.close()  # the client goes away without reading an answer


def test_an_abandoned_capture_frees_the_reader(start_simulator, start_kitd) -> None:
    sim = start_simulator("hil.nb1010_sim", [])
    sim.control("finger off")
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri})
    kitd.wait_for_status("fingerprint", "ready")
    _post_and_hang_up(kitd, CAPTURE.format("fingerprint"), {"timeout_s": 100, "raw": True}, 1.0)
    kitd.wait_for_status("fingerprint", "ready", timeout_s=10)  # not busy until a finger comes
    sim.control("finger on")
    reply = kitd.client.request("POST", CAPTURE.format("fingerprint"), {"raw": True, "timeout_s": 5})
    assert reply.status == 200, reply.body
    assert "abandoned by its client" in kitd.logs()
    # The cancelled job's own end is read, not logged by asyncio with a traceback.
    assert "never retrieved" not in kitd.logs() and "Traceback" not in kitd.logs()


def test_time_limits_are_capped_and_numbers_are_finite(start_simulator, start_kitd) -> None:
    sim = start_simulator("hil.nb1010_sim", [])
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri})
    kitd.wait_for_status("fingerprint", "ready")
    path = CAPTURE.format("fingerprint")
    for body, words in (
        ({"timeout_s": 1e308}, "timeout_s must be 120 or less"),
        ({"timeout_s": 121}, "timeout_s must be 120 or less"),
    ):
        reply = kitd.client.request("POST", path, body)
        assert reply.status == 400 and words in reply.json()["message"], reply.body
        assert reply.json()["field"] == "timeout_s"
    parsed = urllib.parse.urlsplit(kitd.url)
    for raw in (b'{"timeout_s": Infinity}', b'{"timeout_s": NaN}', b"[" * 5000 + b"]" * 5000):
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        connection.request("POST", path, raw, {"Content-Type": "application/json", **kitd.auth_headers})
        answer = connection.getresponse()
        payload = json.loads(answer.read())
        connection.close()
        assert answer.status == 400, (raw[:30], answer.status, payload)
        assert payload["error"] == "bad_request"
    assert kitd.devices()["fingerprint"]["status"] == "ready"
