"""The real kitd process with no devices present: API shapes, systemd notify, clean stop."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from openapi_spec_validator import validate

from hil.rig import KitdProcess, venv_script


def test_kitd_without_devices_serves_and_stops(start_kitd) -> None:
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}])
    status = kitd.client.checked("GET", "/api/v1/status").json()
    assert set(status) == {"version", "uptime_s", "devices", "sealing", "outbox", "audit", "clock"}
    assert isinstance(status["uptime_s"], float | int)
    # the rig's simulation credentials
    assert status["sealing"] == {"ready": True, "problem": None, "warnings": []}
    (kitd.data_dir / "keys" / "kit.key").unlink()
    sealing = kitd.client.checked("GET", "/api/v1/status").json()["sealing"]
    assert not sealing["ready"] and sealing["problem"].endswith(
        "kit.key: no kit key (kitctl keys init makes one)"
    )
    assert status["devices"] == {"ready": 0, "busy": 0, "disconnected": 1, "error": 0}
    (device,) = kitd.client.devices()
    assert device["id"] == "fingerprint"
    assert device["kind"] == "fingerprint"
    assert device["uri"] == "usb:298d:1010"
    assert device["status"] == "disconnected"
    assert set(device) == {"id", "uri", "kind", "model", "serial", "firmware", "status", "detail"}
    assert "not found" in device["detail"]["status_reason"]

    capture = kitd.client.request("POST", "/api/v1/devices/fingerprint/capture", {"timeout_s": 1})
    assert capture.status == 503
    assert capture.json()["error"] == "disconnected"

    assert kitd.stop() == 0
    assert any("READY=1" in n for n in kitd.notifications)
    assert any("STOPPING=1" in n for n in kitd.notifications)
    assert not (kitd.data_dir / "api.port").exists()
    lines = [json.loads(line) for line in kitd.logs().splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    assert lines[-1]["msg"] == "stopped"


def test_capture_request_errors(start_kitd) -> None:
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}])
    client = kitd.client
    unknown = client.request("POST", "/api/v1/devices/nothing/capture", {})
    assert unknown.status == 404 and unknown.json()["error"] == "unknown_device"
    for body, field in [({"timeout_s": -1}, "timeout_s"), ({"raw": "yes"}, "raw"), ({"speed": 1}, "speed")]:
        reply = client.request("POST", "/api/v1/devices/fingerprint/capture", body)
        assert reply.status == 400, body
        assert field in reply.json()["message"]
        assert reply.json()["field"] == field, reply.json()
    not_json = client.request("GET", "/api/v1/nowhere")
    assert not_json.status == 404 and "error" in not_json.json()


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Endpoints that answer 200 with a stream that does not end: only the status line and headers are read.
STREAMS = {"/api/v1/events", "/api/v1/stream/iris.mjpg"}
ROUTER_404 = "not_found"  # what json_errors makes of aiohttp's own 404 (no route)


def served_answer(kitd: KitdProcess, method: str, path: str) -> tuple[int, str, bytes]:
    """Status, Content-Type and body of one request (signed in); of a stream only its status and headers."""
    parts = urlsplit(kitd.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method.upper(), path, headers=kitd.auth_headers)
        response = connection.getresponse()
        streaming = path in STREAMS and response.status == 200
        body = b"" if streaming else response.read()
        return response.status, response.getheader("Content-Type", ""), body
    finally:
        connection.close()


def test_every_documented_operation_is_served_by_the_running_daemon(start_kitd) -> None:
    """Each (method, path) of the served document, asked of the real kitd: the route exists
    (neither 405 nor the router's own 404), the status is one the document lists for it, and
    an error is the API's JSON error. Path parameters name an id that does not exist."""
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}])
    served = kitd.client.checked("GET", "/api/v1/openapi.json").json()
    assert served["openapi"].startswith("3.1")
    validate(served)
    # The control: a path nobody serves gets the router's 404, which the checks below tell apart.
    status, _, body = served_answer(kitd, "get", "/api/v1/nowhere")
    assert status == 404 and json.loads(body)["error"] == ROUTER_404
    status, _, body = served_answer(kitd, "put", "/api/v1/status")
    assert status == 405 and json.loads(body)["error"] == "method_not_allowed"

    operations = [
        (method, path, operation)
        for path, item in served["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert len(operations) == 66
    answers = {}
    for method, path, operation in operations:
        if path == "/api/v1/auth/signout":
            continue  # it would end the token the walk uses (tests/test_hil_sign_in.py covers it)
        status, content_type, body = served_answer(kitd, method, re.sub(r"\{[^}]+\}", "nope", path))
        answers[method, path] = status
        assert status != 405, (method, path)
        assert str(status) in operation["responses"], (method, path, status, body)
        if 400 <= status < 500:
            assert content_type.startswith("application/json"), (method, path, content_type)
            error = json.loads(body)
            assert {"error", "message"} <= set(error) and error["message"], (method, path, error)
            assert error["error"] != ROUTER_404, (method, path, error)
    # What an id that does not exist gets, and a stream its first line.
    assert answers["post", "/api/v1/devices/{id}/capture"] == 404
    assert answers["get", "/api/v1/sessions/{id}"] == 404
    assert answers["get", "/api/v1/events"] == 200
    assert answers["get", "/api/v1/stream/iris.mjpg"] == 404  # no iris camera configured
    responses = served["paths"]["/api/v1/devices/{id}/capture"]["post"]["responses"]
    assert {"200", "400", "404", "409", "415", "422", "502", "503", "504"} <= set(responses)
    assert "415" in served["paths"]["/api/v1/sessions"]["post"]["responses"]
    session_capture = served["paths"]["/api/v1/sessions/{id}/capture"]["get"]["responses"]["200"]["content"]
    assert session_capture["application/json"]["schema"] == {"$ref": "#/components/schemas/Signature"}
    assert "image/png" in session_capture


def test_two_daemons_side_by_side_get_their_own_ports(start_kitd) -> None:
    first, second = start_kitd(), start_kitd()
    assert first.url != second.url
    assert first.client.checked("GET", "/api/v1/status").status == 200
    assert second.client.checked("GET", "/api/v1/status").status == 200


def test_watchdog_pings_when_systemd_asks(tmp_path: Path) -> None:
    kitd = KitdProcess(tmp_path, env={"WATCHDOG_USEC": "200000"})
    with kitd:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if sum("WATCHDOG=1" in n for n in kitd.poll_notifications()) >= 3:
                break
        assert sum("WATCHDOG=1" in n for n in kitd.notifications) >= 3


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    kitd = KitdProcess(tmp_path).start()
    assert kitd.process is not None
    kitd.process.send_signal(signal.SIGINT)
    assert kitd.process.wait(15) == 0
    kitd.stop()


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "kitd.toml"
        config.write_text(f'data_dir = "{tmp_path / "data"}"\n[api]\nport = {port}\n')
        result = subprocess.run(
            [venv_script("kitd"), "--config", str(config)], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    messages = [json.loads(line)["msg"] for line in result.stderr.splitlines()]
    assert any("address already in use" in m and "api.port" in m for m in messages)
    assert "Traceback" not in result.stderr
