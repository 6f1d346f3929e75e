"""Protocol hygiene of the real daemon's API (issue 17, defect 8): bodies too deep, `null`, of
another media type, contradictory options; 405 with Allow; the event stream's keepalive and
replay after a reconnection."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hil.rig import venv_script

CAPTURE = "/api/v1/devices/fingerprint/capture"
SESSIONS = "/api/v1/sessions"
SESSION = {"device_id": "fingerprint", "modality": "fingerprint", "category": "lansia"}


def send(
    kitd: Any, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPResponse, Any]:
    """Status, response (for its headers) and parsed JSON body of one raw request (signed in)."""
    parts = urlsplit(kitd.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body, {**kitd.auth_headers, **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        return response.status, response, json.loads(raw) if raw else None
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def kitd(start_kitd):  # noqa: ANN001, ANN201
    """A daemon whose only device, a fingerprint reader, is absent: a request that gets past the
    checks of its body is answered 503 (disconnected), one that does not 400 or 415."""
    return start_kitd(devices=[{"uri": "usb:298d:1010"}])


@pytest.mark.parametrize("path", [CAPTURE, SESSIONS])
def test_json_nested_too_deeply_is_a_400_on_every_endpoint_that_reads_json(kitd, path: str) -> None:
    for deep in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
        status, _, payload = send(kitd, "POST", path, deep, JSON)
        assert status == 400, (path, status, payload)
        assert payload["error"] == "bad_request" and "nested too deeply" in payload["message"]
    assert "RecursionError" not in kitd.logs()
    assert kitd.client.checked("GET", "/api/v1/status").status == 200


@pytest.mark.parametrize("path", [CAPTURE, SESSIONS])
def test_a_null_body_is_not_an_object(kitd, path: str) -> None:
    status, _, payload = send(kitd, "POST", path, b"null", JSON)
    assert status == 400, payload
    assert payload["error"] == "bad_request"
    assert "null, not an object" in payload["message"]


def test_an_empty_capture_body_is_still_no_options(kitd) -> None:
    for headers in ({}, JSON, {"Content-Type": "text/plain"}):
        status, _, payload = send(kitd, "POST", CAPTURE, b"", headers)
        assert status == 503 and payload["error"] == "disconnected", (headers, payload)


@pytest.mark.parametrize(
    ("path", "body"), [(CAPTURE, b'{"timeout_s": 1}'), (SESSIONS, json.dumps(SESSION).encode())]
)
def test_a_body_of_another_media_type_is_a_415(kitd, path: str, body: bytes) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        status, _, payload = send(kitd, "POST", path, body, {"Content-Type": content_type})
        assert status == 415, (path, content_type, payload)
        assert set(payload) == {"error", "message"}
        assert payload["error"] == "unsupported_media_type"
        assert content_type in payload["message"] and "application/json" in payload["message"]
    # JSON however it is labelled, or not labelled at all, gets past the check.
    for headers in ({}, JSON, {"Content-Type": "application/json; charset=utf-8"}):
        status, _, payload = send(kitd, "POST", path, body, headers)
        assert status == 503, (path, headers, payload)
    documented = path.replace("fingerprint", "{id}")
    paths = kitd.client.checked("GET", "/api/v1/openapi.json").json()["paths"]
    responses = paths[documented]["post"]["responses"]
    assert responses["415"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_raw_and_force_together_are_refused_naming_the_field(kitd) -> None:
    reply = kitd.client.request("POST", CAPTURE, {"raw": True, "force": True})
    assert reply.status == 400, reply.body
    assert reply.json()["field"] == "force"
    assert "raw and force" in reply.json()["message"]
    for body in ({"raw": True, "force": False}, {"raw": False, "force": True}, {"raw": True}):
        assert kitd.client.request("POST", CAPTURE, body).status == 503, body


def test_every_405_says_what_is_allowed(kitd) -> None:
    document = kitd.client.checked("GET", "/api/v1/openapi.json").json()
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "nope", path)
        documented = {method.upper() for method in item if method in {"get", "post", "delete"}}
        status, response, payload = send(kitd, "PUT", concrete)
        assert status == 405, (path, payload)
        assert payload["error"] == "method_not_allowed"
        allowed = {method.strip() for method in (response.getheader("Allow") or "").split(",")}
        assert documented <= allowed, (path, response.getheader("Allow"))
        assert allowed <= documented | {"HEAD"}, (path, response.getheader("Allow"))


def test_a_body_over_the_limit_is_a_413_every_operation_documents(kitd) -> None:
    """aiohttp refuses a body over 1 MiB with 413 before any handler reads it (found beside the
    schemathesis runs, tests/test_schemathesis.py): undocumented until every operation that
    takes a body said so. An operation may refuse first what it checks before reading (the
    technician's role, 403); the orders import reads up to 10 MB itself."""
    document = kitd.client.checked("GET", "/api/v1/openapi.json").json()
    over = b" " * (1024 * 1024 + 1)
    refused_unread = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            # The one device is known (a capture looks its device up first); nothing else need be.
            concrete = re.sub(r"\{[^}]+\}", "nope", path.replace("{id}/capture", "fingerprint/capture"))
            status, _, payload = send(kitd, method.upper(), concrete, over, JSON)
            assert str(status) in operation["responses"], (method, path, status, payload)
            if status != 403 and path != "/api/v1/orders":
                assert status == 413 and payload["error"] == "too_large", (method, path, status, payload)
                refused_unread.append(path)
    assert "/api/v1/devices/{id}/capture" in refused_unread and len(refused_unread) >= 8, refused_unread
    assert kitd.client.checked("GET", "/api/v1/status").status == 200


@pytest.mark.parametrize("modality", ["fingerprint", "iris"])
def test_kitctl_refuses_raw_with_force_in_one_line(tmp_path: Path, modality: str) -> None:
    out = tmp_path / "capture.png"
    for source in (["--daemon"], ["--device", "usb:298d:1010" if modality == "fingerprint" else "camera:x"]):
        result = subprocess.run(
            [venv_script("kitctl"), "capture", modality, *source, "--out", str(out), "--raw", "--force"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--force" in result.stderr and "--raw" in result.stderr
        assert not out.exists()


def first_events(kitd: Any, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The first `count` events of GET /api/v1/events (comments skipped)."""
    parts = urlsplit(kitd.url)
    headers = {**kitd.auth_headers, **headers}
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    deadline = time.monotonic() + 10
    try:
        connection.request("GET", "/api/v1/events", headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        events: list[dict[str, Any]] = []
        event: dict[str, Any] = {}
        while len(events) < count:
            assert time.monotonic() < deadline, f"only {events} in 10 s"
            line = response.readline().decode().rstrip("\n")
            if line.startswith(("id: ", "event: ", "data: ")):
                key, _, value = line.partition(": ")
                event[key] = value
            elif not line and event:
                events.append(event)
                event = {}
        return events
    finally:
        connection.close()


def test_the_daemon_replays_the_events_a_reconnecting_client_missed(start_simulator, start_kitd) -> None:
    sim = start_simulator("hil.nb1010_sim", [])
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri})
    kitd.wait_for_status("fingerprint", "ready")
    # The reader's coming `ready` was the daemon's first event, before anyone listened.
    (replayed,) = first_events(kitd, {"Last-Event-ID": "0"}, 1)
    assert replayed["id"] == "1" and replayed["event"] == "device"
    assert json.loads(replayed["data"])["status"] == "ready"
    gap, replayed = first_events(kitd, {"Last-Event-ID": "41"}, 2)
    assert gap["event"] == "gap" and "id" not in gap
    assert "restarted" in json.loads(gap["data"])["reason"]
    assert replayed["id"] == "1"
