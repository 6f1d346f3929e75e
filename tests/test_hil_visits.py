"""HIL: whole visits through the API against the real daemon on the three simulators.

An officer signs in, starts a visit from an imported order and drives it item by item,
as the touch screen will; each step asserts what the API answers. The fingerprint
reader, the iris camera and the signature pad are the kit-sim simulators in their own
processes (USB/IP, MJPEG over HTTP, a pty).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from kitformats.signing import common_name, read_certificate

from hil.credentials import officer_pkcs12, sign_request
from hil.kit_sim import SIMULATORS, simulated_kitd, start_simulators
from hil.rig import KitdProcess, simulation_officer, venv_script, wait_until
from hil.sample_orders import appointment_in_days, sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.crypto.bundle import OpenedBundle, open_bundle
from kitd.crypto.transaction import scale_to_500_ppi
from kitd.services.visit_machine import Item

FINGERS = [f"finger:{n}" for n in range(1, 11)]
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
ITEM_FIELDS = [f.name for f in dataclasses.fields(Item)]
IRISES = ["iris:right", "iris:left"]


def start_rig(
    tmp_path: Path, rig_logs: Any, settings: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> tuple[KitdProcess, dict[str, Any], list[Any]]:
    """The three simulators and a kitd with them (``settings`` and ``env`` added), devices ready."""
    simulated = start_simulators(tmp_path)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    values: dict[str, Any] = {"fingerprint.capture_timeout_s": 30.0, **(settings or {})}
    kitd = simulated_kitd(tmp_path, simulated, values, env=env)
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    for device_id in ("fingerprint", "iris_camera", "signature"):
        kitd.wait_for_status(device_id, "ready")
    sims = {name: device.simulator for name, device in zip(SIMULATORS, simulated, strict=True)}
    return kitd, sims, simulated


def stop_rig(kitd: KitdProcess, simulated: list[Any]) -> None:
    kitd.stop()
    for device in simulated:
        device.simulator.stop()


@pytest.fixture
def kit(tmp_path, rig_logs):  # noqa: ANN001, ANN201
    """The three simulators and a kitd with them; two orders imported by the supervisor."""
    kitd, sims, simulated = start_rig(tmp_path, rig_logs)
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    orders = [
        sample_order("MJK-001"),
        sample_order("MJK-002", category="odgj", nik="3576011208550002", birth_date="1955-08-12", sex="L"),
    ]
    assert supervisor.checked("POST", "/api/v1/orders", orders).json()["imported"] == 2
    yield kitd, sims, DaemonClient(kitd.url, kitd.sign_in("officer"))
    stop_rig(kitd, simulated)


def act(officer: DaemonClient, visit: dict[str, Any], action: str, body: Any = None) -> dict[str, Any]:
    reply = officer.request("POST", f"/api/v1/visits/{visit['id']}/{action}", body, timeout_s=30)
    assert reply.status == 200, (action, reply.status, reply.body)
    return reply.json()


def items(visit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["item"]: i for i in visit["items"]}


def take(officer: DaemonClient, visit: dict[str, Any], item: str, action: str = "start") -> dict[str, Any]:
    """Start (or retry) an item and wait, generously, until its session captures it; a
    signature waits for the officer, who accepts it once it passes."""
    act(officer, visit, f"items/{item}/{action}")
    if item == "signature":

        def signed() -> bool:
            now = officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()
            return bool(items(now)[item]["passed"])

        wait_until(signed, "the signature passes", 60)
        act(officer, visit, f"items/{item}/accept")

    def captured() -> dict[str, Any] | None:
        now = officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()
        return now if items(now)[item]["status"] == "captured" else None

    return wait_until(captured, f"{item} captured", 60)


# What biometric plaintext starts with: PNG, JPEG, WSQ (SOI), JPEG 2000 (box and codestream),
# an ANSI/NIST-ITL transaction, an ISO/IEC 19794-7 record.
PLAINTEXT_MAGIC = {
    "PNG": b"\x89PNG\r\n",
    "JPEG": b"\xff\xd8\xff",
    "WSQ": b"\xff\xa0\xff\xa8",
    "JPEG 2000": b"\x00\x00\x00\x0cjP  ",
    "JPEG 2000 codestream": b"\xff\x4f\xff\x51",
    "ANSI/NIST-ITL": b"1.001:",
    "ISO/IEC 19794-7": b"SDI\x00",
}


def assert_no_plaintext(data_dir: Path, frames: list[np.ndarray]) -> None:
    """No file under data_dir (database, WAL, logs, outbox) holds an image, a WSQ, a JPEG 2000,
    an ANSI/NIST record or a raw frame in the clear; sealed files must be CMS envelopes."""
    # A raw frame would show as a run of its pixels: 64 bytes from the middle of each frame.
    runs = [
        frame[frame.shape[0] // 2, frame.shape[1] // 2 - 32 : frame.shape[1] // 2 + 32].tobytes()
        for frame in frames
    ]
    checked = 0
    for path in data_dir.rglob("*"):
        if not path.is_file() or path.is_socket():
            continue
        data = path.read_bytes()
        checked += 1
        if path.suffix == ".p7m":  # ciphertext: random bytes may hold a 3-byte magic by chance
            assert (
                data.startswith(b"\x30")
                and b"\x06\x0b\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01\x17" in data[:40]
            ), path
            continue
        for name, magic in PLAINTEXT_MAGIC.items():
            assert magic not in data, f"{path} holds {name} plaintext"
        for run in runs:
            assert run not in data, f"{path} holds a raw frame's pixels"
    assert checked >= 3


def office_opens(kitd: KitdProcess, visit: dict[str, Any]) -> OpenedBundle:
    """The visit's sealed bundle, checked by kitctl and openssl and opened as the office would."""
    bundle = visit["bundle"]
    outbox = kitd.data_dir / "outbox"
    sealed = outbox / f"{bundle['id']}.p7m"
    assert sealed.stat().st_size == bundle["size"] and (outbox / f"{bundle['id']}.statement.json").exists()
    keys, central_key = kitd.data_dir / "keys", kitd.office_dir / "central.key"
    done = subprocess.run(
        [venv_script("kitctl"), "bundle", "verify", str(sealed),
         "--key", str(central_key), "--ca", str(keys / "ca.crt")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "statement: checked" in done.stdout, done.stderr
    decrypted = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(sealed), "-inkey", str(central_key)],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-CAfile", str(keys / "ca.crt"), "-purpose", "any"],
        input=decrypted, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and verified.stdout.startswith(b"manifest.json"), verified.stderr
    key = serialization.load_pem_private_key(central_key.read_bytes(), None)
    statement = json.loads((outbox / f"{bundle['id']}.statement.json").read_text())
    # The kit's statement, checked by openssl too: a detached signature over its RFC 8785 form.
    folder = Path(tempfile.mkdtemp(prefix="statement-"))
    (folder / "statement.json").write_bytes(rfc8785.dumps(statement["statement"]))
    (folder / "signature.der").write_bytes(base64.b64decode(statement["signature"]))
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "signature.der"),
         "-content", str(folder / "statement.json"), "-CAfile", str(keys / "ca.crt"), "-purpose", "any",
         "-out", os.devnull],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    shutil.rmtree(folder)
    assert checked.returncode == 0, checked.stderr
    opened = open_bundle(sealed.read_bytes(), key, [read_certificate(keys / "ca.crt")], statement)
    assert opened.manifest["bundle_id"] == bundle["id"] and opened.manifest["visit"]["id"] == visit["id"]
    return opened


def grey(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def start_visit(officer: DaemonClient, order_id: str = "MJK-001") -> dict[str, Any]:
    reply = officer.request("POST", "/api/v1/visits", {"order_id": order_id})
    assert reply.status == 201, reply.body
    visit = reply.json()
    assert visit["state"] == "identity" and visit["current"] is None
    assert [i["item"] for i in visit["items"]] == [*FINGERS, *IRISES, "signature"]
    return visit


def test_a_complete_enrollment(kit) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    visit = start_visit(officer)
    again = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-002"})
    assert again.status == 409 and again.json() == {
        "error": "wrong_state",
        "message": again.json()["message"],
        "state": "identity",
    }
    early = officer.request("POST", f"/api/v1/visits/{visit['id']}/items/finger:1/start")
    assert early.status == 409 and early.json()["state"] == "identity"
    visit = act(officer, visit, "identity", {"present": ["Sumiati", "Rina"], "consent_by": "applicant"})
    assert visit["state"] == "capturing" and visit["current"] == "finger:1"
    vid = visit["id"]
    for n, item in enumerate(FINGERS):
        if n < 3:  # pressed too lightly first: the session says so, then captures a good press
            sims["fingerprint"].control("condition light")
            act(officer, visit, f"items/{item}/start")
            wait_until(
                lambda item=item: (
                    "press_harder"
                    in items(officer.checked("GET", f"/api/v1/visits/{vid}").json())[item]["feedback"]
                ),
                f"{item} says press_harder",
                60,
            )
            sims["fingerprint"].control("condition good")

            def captured(item: str = item) -> dict[str, Any] | None:
                now = officer.checked("GET", f"/api/v1/visits/{vid}").json()
                return now if items(now)[item]["status"] == "captured" else None

            visit = wait_until(captured, f"{item} captured", 60)
        else:
            visit = take(officer, visit, item)
    assert visit["current"] == "iris:right"
    for item in [*IRISES, "signature"]:
        visit = take(officer, visit, item)
    assert visit["state"] == "review" and visit["current"] is None
    review = items(visit)
    assert sorted(review) == sorted([*FINGERS, *IRISES, "signature"])
    assert all(i["status"] == "captured" and i["score"] is not None for i in review.values())
    capture = officer.checked("GET", f"/api/v1/visits/{visit['id']}/items/finger:1/capture")
    assert capture.headers["Content-Type"] == "image/png" and capture.headers["Cache-Control"] == "no-store"
    signature = officer.checked("GET", f"/api/v1/visits/{visit['id']}/items/signature/capture")
    assert signature.headers["Content-Type"].startswith("application/json")
    captured = {
        item: officer.checked("GET", f"/api/v1/visits/{visit['id']}/items/{item}/capture").body
        for item in [*FINGERS, *IRISES]
    }
    visit = act(officer, visit, "finish")
    assert visit["state"] == "finished" and visit["bundle"]["size"] > 100_000
    gone = officer.request("GET", f"/api/v1/visits/{visit['id']}/items/finger:1/capture")
    assert gone.status == 404  # sealed: the captures left memory
    opened = office_opens(kitd, visit)
    # Every record is what was captured: irises pixel for pixel, fingers within WSQ's loss
    # (after scaling 385 -> 500 ppi), the signature point for point.
    irises = {eye.eye: eye for eye in opened.transaction.irises}
    for item in IRISES:
        assert np.array_equal(irises[item.split(":")[1]].pixels, grey(captured[item])), item
    fingers = {f.position: f for f in opened.transaction.fingers}
    assert sorted(fingers) == list(range(1, 11))
    for n in range(1, 11):
        expected = scale_to_500_ppi(grey(captured[f"finger:{n}"]), 385.0)
        # WSQ at 0.75 bit/pixel on the simulated sensor (noise included) measures 25-27 dB; a
        # misplaced or wrongly scaled image would be far below 20.
        assert fingers[n].pixels.shape == expected.shape and psnr(fingers[n].pixels, expected) > 20.0
    pen = json.loads(signature.body)["points"]
    assert opened.transaction.signature.points == [{**p, "t_ms": round(p["t_ms"])} for p in pen]
    assert_no_plaintext(kitd.data_dir, [grey(b) for b in captured.values()])
    assert officer.checked("GET", "/api/v1/visits?state=active").json() == []
    with sqlite3.connect(kitd.data_dir / "kitd.sqlite3") as db:
        row = db.execute(
            "SELECT status, content, outcome FROM work_orders WHERE order_id = 'MJK-001'"
        ).fetchone()
        record = db.execute("SELECT record FROM visits").fetchone()[0]
    assert row == ("done", None, "finished")
    # Scores, never captures: each stored item has the machine's fields and nothing else
    # (a capture, even base64-encoded, would need one more), and the record stays small.
    stored = json.loads(record)
    assert all(set(i) == set(ITEM_FIELDS) for i in stored["items"]), stored["items"][0]
    assert all(i["status"] == "captured" for i in stored["items"]) and len(record) < 20_000


def test_exceptions_and_a_thumbprint_instead_of_the_signature(kit) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    visit = start_visit(officer)
    visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    unconfirmed = officer.request(
        "POST", f"/api/v1/visits/{visit['id']}/items/finger:2/except", {"reason": "amputated"}
    )
    assert unconfirmed.status == 400 and unconfirmed.json()["field"] == "confirm"
    for item in ("finger:1", "finger:2"):
        visit = act(officer, visit, f"items/{item}/except", {"reason": "amputated", "confirm": True})
    for item in FINGERS[2:]:
        visit = take(officer, visit, item)
    visit = take(officer, visit, "iris:right")
    wrong = officer.request(
        "POST",
        f"/api/v1/visits/{visit['id']}/items/iris:left/except",
        {"reason": "amputated", "confirm": True},
    )
    assert wrong.status == 400 and wrong.json()["field"] == "reason"
    visit = act(officer, visit, "items/iris:left/except", {"reason": "blind_or_diseased", "confirm": True})
    visit = act(officer, visit, "items/signature/except", {"reason": "cannot_sign", "confirm": True})
    assert visit["current"] == "thumbprint" and items(visit)["thumbprint"]["finger"] == 6  # the left thumb
    visit = take(officer, visit, "thumbprint")
    assert visit["state"] == "review"
    excepted = {k: v["exception"]["reason"] for k, v in items(visit).items() if v["status"] == "excepted"}
    assert excepted == {
        "finger:1": "amputated",
        "finger:2": "amputated",
        "iris:left": "blind_or_diseased",
        "signature": "cannot_sign",
    }
    assert all(v["exception"]["confirmed_by"] for v in items(visit).values() if v["exception"])
    # The officer's key is missing: the visit cannot be signed, and nothing is lost.
    key = kitd.data_dir / "keys" / "officers" / f"{visit['officer']}.key"
    key.rename(key.with_suffix(".away"))
    refused = officer.request("POST", f"/api/v1/visits/{visit['id']}/finish")
    assert refused.status == 409 and refused.json()["error"] == "officer_cannot_sign", refused.body
    assert f"officer {visit['officer']} has no signing credential" in refused.json()["message"]
    assert officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()["state"] == "review"
    kept = officer.request("GET", f"/api/v1/visits/{visit['id']}/items/thumbprint/capture")
    assert kept.status == 200 and not any((kitd.data_dir / "outbox").iterdir())
    key.with_suffix(".away").rename(key)
    visit = act(officer, visit, "finish")
    assert visit["state"] == "finished"
    opened = office_opens(kitd, visit)
    transaction = opened.transaction
    assert sorted((m.position, m.code) for m in transaction.missing) == [(1, "XX"), (2, "XX")]
    thumb = [f for f in transaction.fingers if f.in_place_of_signature]
    assert [f.position for f in thumb] == [6] and sorted(f.position for f in transaction.fingers) == [
        3,
        4,
        5,
        6,
        6,
        7,
        8,
        9,
        10,
    ]
    assert [eye.eye for eye in transaction.irises] == ["right"] and transaction.signature is None
    listed = {i["item"]: i for i in opened.manifest["items"]}
    assert (
        listed["finger:1"]["exception"]["reason"] == "amputated"
        and listed["finger:1"]["record"] == "type-14:fgp-1:excepted"
    )
    assert (
        listed["thumbprint"]["record"] == "type-14:fgp-6:signature" and listed["signature"]["record"] is None
    )
    assert "type-17:left" not in opened.manifest["records"] and "type-8" not in opened.manifest["records"]


def test_not_home_and_rescheduled_for_tomorrow(kit) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    # Without its certificate the kit could not seal a visit: none starts, and it says why.
    certificate = kitd.data_dir / "keys" / "kit.crt"
    certificate.rename(certificate.with_suffix(".away"))
    refused = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-001"})
    assert refused.status == 409 and refused.json()["error"] == "sealing_not_ready", refused.body
    assert "kit.crt: no such certificate" in refused.json()["message"]
    certificate.with_suffix(".away").rename(certificate)
    visit = start_visit(officer)
    tomorrow = appointment_in_days(1)
    visit = act(
        officer, visit, "outcome", {"code": "rescheduled", "note": "tidak di rumah", "reschedule": tomorrow}
    )
    assert visit["state"] == "ended" and visit["outcome"]["reschedule"] == tomorrow
    listed = officer.checked("GET", f"/api/v1/orders?day={tomorrow['start'][:10]}").json()
    assert listed[0]["order_id"] == "MJK-001" and listed[0]["appointment"] == tomorrow
    after = officer.request("POST", f"/api/v1/visits/{visit['id']}/finish")
    assert after.status == 404  # no longer active
    assert officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()["state"] == "ended"


def test_a_killed_daemon_resumes_the_visit_at_the_irises(kit, tmp_path) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    visit = start_visit(officer)
    visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    for item in FINGERS:
        visit = take(officer, visit, item)
    scores = {item: items(visit)[item]["score"] for item in FINGERS}
    assert visit["current"] == "iris:right"
    os.killpg(kitd.process.pid, signal.SIGKILL)  # the power fails at the iris step
    kitd.process.wait(10)
    kitd.start()
    again = DaemonClient(kitd.url, kitd.sign_in("officer"))  # tokens died with the daemon
    stale = DaemonClient(kitd.url, officer.token)  # the old token at the new daemon's address
    assert stale.request("GET", f"/api/v1/visits/{visit['id']}").status == 401
    visit = again.checked("GET", f"/api/v1/visits/{visit['id']}").json()
    assert visit["resumed"] and visit["state"] == "capturing" and visit["current"] == "iris:right"
    for item in FINGERS:
        entry = items(visit)[item]
        assert entry["status"] == "to_retake" and entry["history"][-1]["score"] == scores[item]
    for item in [*IRISES, "signature", *FINGERS]:  # on from the irises, then the fingers again
        assert visit["current"] == item
        visit = take(again, visit, item)
    assert visit["state"] == "review" and all(i["status"] == "captured" for i in visit["items"])
    visit = act(again, visit, "finish")
    assert visit["state"] == "finished"
    opened = office_opens(kitd, visit)
    assert opened.manifest["visit"]["resumed"] is True
    fingers = {i["item"]: i for i in opened.manifest["items"] if i["item"] in FINGERS}
    assert all(entry["history"][-1]["ended"] == "restart" for entry in fingers.values()), fingers["finger:1"]


@pytest.mark.parametrize("code", ["not_home", "refused", "unable", "rescheduled", "cancelled"])
def test_cancel_then_each_outcome_erases_the_order(kit, code: str) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    visit = start_visit(officer, "MJK-002")
    guardian = {"name": "Sri", "relation": "kakak"}
    alone = officer.request(
        "POST", f"/api/v1/visits/{visit['id']}/identity", {"present": ["Karno"], "consent_by": "applicant"}
    )
    assert alone.status == 400 and alone.json()["field"] == "consent_by"  # odgj: a guardian consents
    visit = act(
        officer,
        visit,
        "identity",
        {"present": ["Karno", "Sri"], "consent_by": "guardian", "guardian": guardian},
    )
    visit = act(officer, visit, "cancel")
    assert visit["state"] == "ending"
    # A Cancel by mistake, with finger:1's session running: carried on, the visit is back at
    # finger:1, to retake, and its reader is free at once; cancelled again.
    visit = act(officer, visit, "carry-on")
    assert (visit["state"], visit["current"]) == ("capturing", "finger:1")
    sims["fingerprint"].control("condition light")
    act(officer, visit, "items/finger:1/start")
    wait_until(
        lambda: (
            "press_harder"
            in items(officer.checked("GET", f"/api/v1/visits/{visit['id']}").json())["finger:1"]["feedback"]
        ),
        "finger:1 says press_harder",
        60,
    )
    visit = act(officer, visit, "cancel")
    visit = act(officer, visit, "carry-on")
    assert (visit["state"], visit["current"]) == ("capturing", "finger:1")
    assert items(visit)["finger:1"]["status"] == "to_retake"
    visit = act(officer, visit, "items/finger:1/start")  # not 409 busy: the reader was freed
    assert items(visit)["finger:1"]["status"] == "capturing"
    sims["fingerprint"].control("condition good")
    again = officer.request("POST", f"/api/v1/visits/{visit['id']}/carry-on")
    assert again.status == 409 and again.json()["state"] == "capturing", again.body
    visit = act(officer, visit, "cancel")
    assert visit["state"] == "ending"
    # A note the kit cannot keep, a date no appointment has, and one already past (a dialog
    # left open): 400 naming the field, and the visit still open for its outcome (it once
    # ended in memory only, stuck until a restart).
    for wrong, field, error in (
        ({"code": "not_home", "note": "tidak ada \ud800"}, "note", "bad_request"),
        (
            {
                "code": "rescheduled",
                "reschedule": {"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-01T01:00:00+01:00"},
            },
            "reschedule.start",
            "bad_request",
        ),
        (
            {"code": "rescheduled", "reschedule": appointment_in_days(-1)},
            "reschedule.start",
            "appointment_past",
        ),
    ):
        refused = officer.request("POST", f"/api/v1/visits/{visit['id']}/outcome", wrong)
        assert refused.status == 400 and refused.json()["field"] == field, refused.body
        assert refused.json()["error"] == error, refused.body
    assert officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()["state"] == "ending"
    refused = officer.request("POST", f"/api/v1/visits/{visit['id']}/items/finger:1/start")
    assert refused.status == 409 and refused.json()["state"] == "ending"
    body: dict[str, Any] = {"code": code, "note": "catatan petugas"}
    if code == "rescheduled":
        body["reschedule"] = appointment_in_days(2)
    visit = act(officer, visit, "outcome", body)
    assert visit["state"] == "ended" and visit["outcome"]["code"] == code and visit["bundle"] is None
    assert not (kitd.data_dir / "outbox").exists() or not any((kitd.data_dir / "outbox").iterdir())
    with sqlite3.connect(kitd.data_dir / "kitd.sqlite3") as db:
        status, content, outcome = db.execute(
            "SELECT status, content, outcome FROM work_orders WHERE order_id = 'MJK-002'"
        ).fetchone()
    assert outcome == code
    if code == "rescheduled":
        assert status == "pending" and body["reschedule"]["start"] in content
    else:
        assert (status, content) == ("done", None)


def test_bodies_no_file_or_number_can_hold_are_400s_naming_where(kit) -> None:  # noqa: ANN001
    """Text with half of a UTF-16 pair (no UTF-8 for it), nesting past what any body needs, and
    numbers past any the kit takes: each a 400 naming where, never a 500 from deep inside."""
    kitd, _, officer = kit
    technician = DaemonClient(kitd.url, kitd.sign_in("technician"))
    deep = b'{"order_id": ' + b'{"a": ' * 975 + b"1" + b"}" * 975 + b"}"
    for client, path, body, says in (
        (
            officer,
            "/api/v1/visits",
            b'{"order_id": "\\ud800"}',
            "order_id contains U+D800, half of a UTF-16 pair",
        ),
        (officer, "/api/v1/visits", b'{"\\udc00": 1}', "a field name contains U+DC00"),
        (officer, "/api/v1/visits", deep, "nested more than 64 deep"),
        (officer, "/api/v1/visits", b'{"order_id": 1' + b"0" * 400 + b"}", "a whole number of 401 digits"),
        (officer, "/api/v1/visits", b'{"order_id": 1e309}', "the number 1e309 is too large"),
        (technician, "/api/v1/diagnostics/report", b'{"run_id": "\\ud800"}', "run_id contains U+D800"),
        (technician, "/api/v1/pairing", b'{"seconds": 1e-300}', "seconds must be 1 or more"),
    ):
        refused = client.request("POST", path, body, content_type="application/json")
        assert refused.status == 400, (path, body[:40], refused.status, refused.body[:200])
        assert says in refused.json()["message"], refused.json()
    # Lists and texts past what a living room holds, and parameters in the one documented form.
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    visit = start_visit(officer, "MJK-001")
    crowd = {"present": ["Budi"] * 21, "consent_by": "applicant"}
    for client, method, path, body, status, says in (
        (
            officer,
            "POST",
            f"/api/v1/visits/{visit['id']}/identity",
            crowd,
            400,
            "present: 21 items, at most 20",
        ),
        (
            technician,
            "POST",
            "/api/v1/sessions",
            {"device_id": "iris", "modality": "iris", "category": "lansia", "label": "x" * 65},
            400,
            "label: 65 characters, at most 64",
        ),
        (supervisor, "GET", "/api/v1/orders?day=20261201", None, 400, "day '20261201' is not one YYYY-MM-DD"),
        (
            supervisor,
            "GET",
            "/api/v1/orders?day=2026-12-01&day=2026-12-02",
            None,
            400,
            "is not one YYYY-MM-DD",
        ),
    ):
        refused = client.request(method, path, body)
        assert refused.status == status and says in refused.json()["message"], (path, refused.body[:300])
    # A request line over aiohttp's 8190 bytes: its parser answers 400; the log says so in one
    # warning line, not an error with a traceback.
    assert supervisor.request("GET", "/api/v1/orders?day=" + "9" * 9000).status == 400
    wide = b"order_id,name\nMJK-900," + b"x" * 140_000 + b"\n"
    refused = supervisor.request("POST", "/api/v1/orders", wide, content_type="text/csv")
    assert refused.status == 400 and refused.json()["error"] == "bad_request", refused.body[:300]
    assert "Traceback" not in kitd.logs() and "Error handling request" not in kitd.logs()
    assert "refused a malformed HTTP request from 127.0.0.1: Got more than 8190 bytes" in kitd.logs()


@pytest.fixture
def softhsm(tmp_path: Path) -> dict[str, str]:
    """A SoftHSM2 token 'kit' of this test's own, and a 0600 file with its user PIN."""
    if not SOFTHSM.exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("needs SoftHSM2 (Debian softhsm2)")
    (tmp_path / "tokens").mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "kit", "--pin", "4826", "--so-pin", "9713"],
        env=dict(os.environ, SOFTHSM2_CONF=str(config)), check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    pin_file = tmp_path / "token.pin"
    pin_file.write_text("4826\n")
    pin_file.chmod(0o600)
    return {"SOFTHSM2_CONF": str(config), "pin_file": str(pin_file)}


def test_a_whole_visit_sealed_with_a_token_key_and_the_officers_installed_credential(
    tmp_path: Path, rig_logs: Any, softhsm: dict[str, str]
) -> None:
    """On a kit with keys.backend = "pkcs11": the technician makes the kit's key in the token
    (kitctl keys init), installs the certificate the office's CA signed, a supervisor installs
    the officer's PKCS#12 credential (wrapped with the token's secret); the officer's sign-in
    opens it, a whole visit is captured and finished, and the office verifies the bundle."""
    settings = {
        "keys.backend": "pkcs11",
        "keys.pkcs11_module": str(SOFTHSM),
        "keys.pin_file": softhsm["pin_file"],
    }
    kitd, sims, simulated = start_rig(
        tmp_path, rig_logs, settings, {"SOFTHSM2_CONF": softhsm["SOFTHSM2_CONF"]}
    )
    try:
        keys = kitd.data_dir / "keys"
        officer_nip, officer_pin = simulation_officer("officer")["nip"], simulation_officer("officer")["pin"]
        for simulation_file in ("kit.key", "kit.crt", f"officers/{officer_nip}.key"):
            (keys / simulation_file).unlink()  # this kit's keys are the token's and the officer's own
        assert not kitd.client.checked("GET", "/api/v1/status").json()["sealing"]["ready"]

        def kitctl(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [venv_script("kitctl"), *map(str, args), "--config", str(kitd.config_path)],
                input=stdin, env=kitd.env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip

        done = kitctl("keys", "init")
        assert done.returncode == 0 and "made in the token" in done.stdout, done.stderr
        issued = sign_request((keys / "kit.csr").read_bytes(), kitd.office_dir, keys)
        (tmp_path / "kit.crt").write_bytes(issued.public_bytes(serialization.Encoding.PEM))
        assert kitctl("keys", "install", tmp_path / "kit.crt", keys / "ca.crt").returncode == 0
        (tmp_path / "officer.p12").write_bytes(officer_pkcs12(kitd.office_dir, keys, officer_nip, b"rahasia"))
        done = kitctl("officers", "credential", officer_nip, tmp_path / "officer.p12", "--stdin",
                      stdin=f"rahasia\n{officer_pin}\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert not (keys / "kit.key").exists() and not (keys / "kit-secret").exists()  # all in the token
        listed = json.loads(kitctl("keys", "status", "--json").stdout)
        assert listed[0]["backend"] == "pkcs11" and listed[0]["problem"] is None
        assert kitd.client.checked("GET", "/api/v1/status").json()["sealing"]["ready"]

        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-001")])
        signed_in = (
            DaemonClient(kitd.url)
            .checked("POST", "/api/v1/auth/signin", {"nip": officer_nip, "pin": officer_pin})
            .json()
        )
        assert signed_in["credential"] == {"state": "unlocked", "problem": None}
        officer = DaemonClient(kitd.url, signed_in["token"])
        visit = start_visit(officer)
        visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
        for item in [*FINGERS, *IRISES, "signature"]:
            visit = take(officer, visit, item)
        visit = act(officer, visit, "finish")
        opened = office_opens(kitd, visit)
        assert common_name(opened.kit) == "kit kit-sim" and opened.kit.public_key() == issued.public_key()
        assert common_name(opened.officer) == f"officer {officer_nip}"
        assert len(opened.transaction.fingers) == 10 and len(opened.transaction.irises) == 2
    finally:
        stop_rig(kitd, simulated)


def test_a_retake_tapped_while_a_capture_runs_starts_a_fresh_one(kit) -> None:  # noqa: ANN001
    """Ulangi while the reader's session is still judging presses: the old session ends and a
    new one starts on the same reader (not 409 busy, leaving the item on a dead session). Then
    the reader goes away mid-capture: accepting an item with no capture is refused and the
    item stays as it was (not 'forced' in memory with nothing behind it)."""
    kitd, sims, officer = kit
    visit = start_visit(officer)
    visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    vid = visit["id"]

    def current() -> dict[str, Any]:
        return items(officer.checked("GET", f"/api/v1/visits/{vid}").json())["finger:1"]

    sims["fingerprint"].control("condition light")
    sessions = {act(officer, visit, "items/finger:1/start")["items"][0]["session_id"]}
    for attempt in range(4):
        wait_until(lambda: "press_harder" in current()["feedback"], "finger:1 says press_harder", 60)
        retried = officer.request("POST", f"/api/v1/visits/{vid}/items/finger:1/retry", timeout_s=30)
        assert retried.status == 200, (attempt, retried.status, retried.body)
        item = items(retried.json())["finger:1"]
        assert item["status"] == "capturing" and item["session_id"] not in sessions
        sessions.add(item["session_id"])
    wait_until(lambda: current()["score"] is not None, "finger:1 has a score", 60)
    sims["fingerprint"].stop()
    kitd.wait_for_status("fingerprint", "disconnected")
    refused = officer.request("POST", f"/api/v1/visits/{vid}/items/finger:1/accept", timeout_s=30)
    assert refused.status == 409 and refused.json()["error"] == "wrong_state", refused.body
    assert "no capture" in refused.json()["message"]
    after = officer.checked("GET", f"/api/v1/visits/{vid}").json()
    assert items(after)["finger:1"]["status"] == "capturing" and after["current"] == "finger:1"
