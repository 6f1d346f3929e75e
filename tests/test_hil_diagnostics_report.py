"""HIL: the diagnostics report for the vendor, and the diagnostics API's documented shapes,
against the real daemon on the kit-sim simulators.

`kitctl diag --out DIR` on a kit holding an order (a NIK to leak) with its fingerprint reader
unplugged (a check to fail): the JSON verifies with the kit's certificate (kitctl and openssl)
and a flipped byte does not; the HTML lists the failing checks first; neither file holds a
16-digit NIK or anything biometric. The disk refusing to grow the database during a run (the
kernel's file-size limit on kitd: every write past it fails with EFBIG, as a full card's do
with ENOSPC) still gives the run and the report, saying `stored: false`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from jsonschema import Draft202012Validator

from hil.kit_sim import simulated_kitd, start_simulators
from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.api.openapi import openapi_document
from kitd.cli.daemon_client import DaemonClient, Reply
from kitd.schemas import check
from kitd.store.database import database_path

NIK = sample_order()["nik"]
SIXTEEN_DIGITS = re.compile(rb"(?<!\d)\d{16}(?!\d)")
# What an image or template looks like in a text file: its bytes, or their base64 beginnings
# (PNG, JPEG, WSQ, JPEG 2000), or any long base64 run.
BIOMETRIC_SIGNS = (b"\x89PNG", b"iVBORw0KGgo", b"/9j/", b"/6D/", b"AAAADGpQ", b"data:image")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=]{160,}")


@pytest.fixture
def kit(tmp_path: Path, rig_logs: Any):  # noqa: ANN201
    """The kit-sim simulators and a kitd with them, devices ready, one order imported."""
    simulated = start_simulators(tmp_path)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    kitd = simulated_kitd(tmp_path, simulated)
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    try:
        for device_id in ("fingerprint", "iris_camera", "signature"):
            kitd.wait_for_status(device_id, "ready")
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        assert supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-001")]).json()["imported"] == 1
        yield kitd, {device.simulator.name: device.simulator for device in simulated}
    finally:
        kitd.stop()
        for device in simulated:
            device.simulator.stop()


def assert_documented(method: str, path: str, reply: Reply) -> None:
    """The reply's status is documented for the operation, and its JSON body has that shape."""
    document = openapi_document()
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(reply.status) in responses, (method, path, reply.status)
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("paths", path, method.lower()))
    shape = {**document, "$ref": f"#/{pointer}/responses/{reply.status}/content/application~1json/schema"}
    errors = list(Draft202012Validator(shape).iter_errors(reply.json()))
    assert not errors, (method, path, [e.message for e in errors[:3]])


def openssl_verifies(document: dict[str, Any], ca: Path) -> subprocess.CompletedProcess:
    """openssl's own check of a statement: a detached CMS over its RFC 8785 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="report-"))
    try:
        (folder / "statement.json").write_bytes(rfc8785.dumps(document["statement"]))
        (folder / "signature.der").write_bytes(base64.b64decode(document["signature"]))
        return subprocess.run(
            ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "signature.der"),
             "-content", str(folder / "statement.json"), "-CAfile", str(ca), "-purpose", "any",
             "-out", os.devnull],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder)


def leaks(data: bytes) -> list[str]:
    """What in ``data`` must never leave the kit: a 16-digit number, an image's or a blob's sign."""
    found = [f"16 digits: {m.group().decode()[:6]}..." for m in SIXTEEN_DIGITS.finditer(data)]
    found += [f"biometric sign {sign!r}" for sign in BIOMETRIC_SIGNS if sign in data]
    found += [f"base64 run of {len(m.group())}" for m in BASE64_RUN.finditer(data)]
    return found


def test_the_vendor_report_verifies_reads_failures_first_and_leaks_nothing(kit, tmp_path: Path) -> None:  # noqa: ANN001
    kitd, sims = kit
    sims["nb1010_sim"].control("unplug")
    kitd.wait_for_status("fingerprint", "disconnected")
    out = tmp_path / "report"
    done = kitd.kitctl("diag", "--out", str(out), "--config", str(kitd.config_path), timeout_s=120)
    assert done.returncode == 1, done.stderr  # the fingerprint reader's check failed
    assert "FAILED  fingerprint.present" in done.stdout, done.stdout
    written = sorted(out.iterdir())
    assert [p.suffix for p in written] == [".html", ".json"] and f"report: {written[1]}" in done.stdout
    document = json.loads(written[1].read_bytes())
    statement, run = document["statement"], document["statement"]["run"]
    check("DiagnosticsReport", document)
    check("DiagnosticsRun", run)
    assert written[1].name == f"diagnostics-{run['run_id']}.json" and run["stored"] is True

    # Verified with the kit's certificate alone (kitctl) and by openssl; a flipped byte is not.
    keys = kitd.data_dir / "keys"
    cert = str(keys / "kit.crt")
    verified = kitd.kitctl("diag", "--verify", str(written[1]), "--kit-cert", cert)
    assert verified.returncode == 0 and "signature OK" in verified.stdout, verified.stderr
    assert openssl_verifies(document, keys / "ca.crt").returncode == 0
    data = bytearray(written[1].read_bytes())
    data[data.index(b'"fingerprint.present"') + 2] ^= 0x01
    flipped = tmp_path / "flipped.json"
    flipped.write_bytes(bytes(data))
    refused = kitd.kitctl("diag", "--verify", str(flipped), "--kit-cert", cert)
    assert refused.returncode == 1 and "rejected: signature" in refused.stderr, refused.stderr
    assert openssl_verifies(json.loads(flipped.read_bytes()), keys / "ca.crt").returncode != 0

    # What surrounds the run: versions, configuration, the devices' last word, the log.
    assert statement["software"]["kitd"] == run["kit"]["version"] and statement["software"]["python"]
    assert statement["configuration"]["values"]["kit.id"] == "kit-sim"
    devices = {d["id"]: d for d in statement["devices"]}
    assert devices["fingerprint"]["status"] == "disconnected" and devices["fingerprint"]["reason"]
    assert statement["log"]["lines"] and any("fingerprint" in line for line in statement["log"]["lines"])

    # The page: failures, then warnings, ok, not available; each message in both languages.
    page = written[0].read_text()
    sections = [page.find(f'<section class="{s}">') for s in ("failed", "warning", "ok", "not_available")]
    present = [at for at in sections if at >= 0]
    assert sections[0] >= 0 and present == sorted(present)
    failed = next(c for c in run["checks"] if c["id"] == "fingerprint.present")
    assert failed["message"]["id"] in page and failed["message"]["en"] in page

    # Nothing personal or biometric in either file (the signature itself aside: it is a blob).
    unsigned = json.dumps({**document, "signature": None}, indent=1).encode()
    assert leaks(unsigned) == [] and leaks(written[0].read_bytes()) == []
    assert NIK.encode() not in written[1].read_bytes() and NIK.encode() not in written[0].read_bytes()


def test_the_diagnostics_answers_have_their_documented_shapes(kit) -> None:  # noqa: ANN001
    kitd, _ = kit
    done = kitd.kitctl("diag", "--quick", "--json", "--config", str(kitd.config_path), timeout_s=120)
    assert done.returncode in (0, 1), done.stderr
    check("DiagnosticsRun", json.loads(done.stdout))
    # kitctl reads the daemon's history as the shapes it checks against (DaemonClient.answer).
    stored = kitd.kitctl("diag", "--history", "--limit", "1", "--config", str(kitd.config_path))
    assert stored.returncode == 0 and len(stored.stdout.splitlines()) == 1, stored.stderr
    assert json.loads(done.stdout)["run_id"] in stored.stdout
    trend = kitd.kitctl("diag", "--history", "--check", "unit.disk", "--config", str(kitd.config_path))
    assert trend.returncode == 0 and trend.stdout.startswith("check unit.disk, oldest first:"), trend.stderr
    # A check the kit has no such thing as: the daemon refuses it (400), a usage error (2).
    unknown = kitd.kitctl("diag", "--history", "--check", "no.such_check", "--config", str(kitd.config_path))
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1, unknown.stderr
    client = DaemonClient(kitd.url, kitd.token)
    run = client.request("GET", "/api/v1/diagnostics?quick=1", timeout_s=120)
    assert_documented("GET", "/api/v1/diagnostics", run)
    assert_documented(
        "GET", "/api/v1/diagnostics/history", client.request("GET", "/api/v1/diagnostics/history")
    )
    history = client.request("GET", "/api/v1/diagnostics/history?check=unit.disk")
    assert_documented("GET", "/api/v1/diagnostics/history", history)
    report = client.request("POST", "/api/v1/diagnostics/report", {"run_id": run.json()["run_id"]})
    assert_documented("POST", "/api/v1/diagnostics/report", report)
    assert report.json()["statement"]["run"]["run_id"] == run.json()["run_id"]
    for body, status in (
        ({"run_id": "nope"}, 404),
        ({"quick": 1}, 400),
        ({"quick": True, "run_id": "x"}, 400),
    ):
        refused = client.request("POST", "/api/v1/diagnostics/report", body)
        assert refused.status == status, (body, refused.body)
        assert_documented("POST", "/api/v1/diagnostics/report", refused)
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    assert officer.request("POST", "/api/v1/diagnostics/report", {"quick": True}).status == 403


def _empty_wal(data_dir: Path) -> None:
    """Checkpoint kitd's database and cut its WAL to nothing, so that its next write must grow it."""
    conn = sqlite3.connect(database_path(data_dir), timeout=10)
    try:

        def emptied() -> bool:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return busy == 0

        wait_until(emptied, "the WAL checkpointed and truncated", 10)
    finally:
        conn.close()


def test_a_disk_that_takes_no_more_still_gives_the_run_and_the_report(kit) -> None:  # noqa: ANN001
    kitd, _ = kit
    assert kitd.process is not None
    # The socket: no sign-in, so that nothing but the run itself writes to the database.
    client = DaemonClient(f"unix:{kitd.socket_path}")
    soft, hard = resource.prlimit(kitd.process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(kitd.process.pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        _empty_wal(kitd.data_dir)
        run = client.checked("GET", "/api/v1/diagnostics?quick=1", timeout_s=120).json()
        report = client.checked("POST", "/api/v1/diagnostics/report", {"quick": True}, timeout_s=120).json()
    finally:
        resource.prlimit(kitd.process.pid, resource.RLIMIT_FSIZE, (soft, hard))
    assert run["stored"] is False and run["checks"] and run["counts"]["ok"] > 0
    unstored = report["statement"]["run"]
    assert unstored["stored"] is False and report["signature"]  # signed: the key needs no disk
    # The disk takes writes again: the next run is kept, the two before it are not.
    again = client.checked("POST", "/api/v1/diagnostics/report", {"quick": True}, timeout_s=120).json()
    assert again["statement"]["run"]["stored"] is True
    kept = {r["run_id"] for r in client.checked("GET", "/api/v1/diagnostics/history").json()["runs"]}
    assert again["statement"]["run"]["run_id"] in kept and not {run["run_id"], unstored["run_id"]} & kept
    # What the daemon could not write to stderr then, its memory kept for the report.
    lines = "\n".join(again["statement"]["log"]["lines"])
    assert "could not be stored" in lines and "could not be audited" in lines
    assert kitd.process.poll() is None
