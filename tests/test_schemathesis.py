"""A bounded schemathesis run against the real kitd's own OpenAPI document: no 5xx, no response
outside the document's schemas, no undocumented status, a 405 that names what is allowed.

Bounded so that `make test` stays short: a few examples an operation, deterministic, and the
kit's devices configured but absent (a reader on a USB/IP port nobody serves, a camera at a URL
nobody answers), so that every request is checked and answered — 400, 404, 409, 503 — without
waiting on a finger or an eye. Captures on live simulators are the HIL tests' job. A longer
run: raise MAX_EXAMPLES (e.g. 500) and run this file alone."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from hil.rig import venv_script

MAX_EXAMPLES = 20


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_api_keeps_its_own_document(start_kitd, tmp_path: Path) -> None:
    kitd = start_kitd(
        devices=[
            {"id": "fingerprint", "uri": "usb:298d:1010"},
            {"id": "iris", "uri": f"camera:http://127.0.0.1:{_closed_port()}/eye.mjpg"},
        ],
        settings={"usb_backend": f"usbip://127.0.0.1:{_closed_port()}"},
    )
    result = subprocess.run(
        [
            venv_script("st"),
            "--no-color",
            "run",
            f"{kitd.url}/api/v1/openapi.json",
            "--checks",
            "all",
            # 502, 503 and 504 are the kit's documented answers for a device that misbehaves, is
            # away or stays silent (503 here: the devices are absent); a crash would be a 500,
            # which no operation documents, so status_code_conformance still catches it.
            # A schema-valid body can still be refused on its meaning (an iris session asked of
            # a fingerprint reader): 400 naming the field, which positive_data_acceptance counts
            # as a rejection of valid data.
            "--exclude-checks",
            "not_a_server_error,positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            # The two streams run until the client leaves; their own tests cover them.
            "--exclude-path",
            "/api/v1/stream/iris.mjpg",
            "--exclude-path",
            "/api/v1/events",
            # Signed in as the simulation's technician; signing out would end the run's token.
            "--header",
            f"Authorization: Bearer {kitd.token}",
            "--exclude-path",
            "/api/v1/auth/signout",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    tail = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert "Tested:" in result.stdout, tail
    assert kitd.process is not None and kitd.process.poll() is None  # the daemon is still up
