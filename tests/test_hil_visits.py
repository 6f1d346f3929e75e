"""HIL: whole visits through the API against the real daemon on the three simulators.

An officer signs in, starts a visit from an imported order and drives it item by item,
as the touch screen will; each step asserts what the API answers. The fingerprint
reader, the iris camera and the signature pad are the kit-sim simulators in their own
processes (USB/IP, MJPEG over HTTP, a pty).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
from typing import Any

import pytest

from hil.kit_sim import SIMULATORS
from hil.rig import KitdProcess, wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.services.visit_machine import Item

FINGERS = [f"finger:{n}" for n in range(1, 11)]
ITEM_FIELDS = [f.name for f in dataclasses.fields(Item)]
IRISES = ["iris:right", "iris:left"]


@pytest.fixture
def kit(tmp_path, rig_logs):  # noqa: ANN001, ANN201
    """The three simulators and a kitd with them; an order imported by the supervisor."""
    simulated = [start(tmp_path) for start in SIMULATORS.values()]
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    settings: dict[str, Any] = {"api.port": 0, "fingerprint.capture_timeout_s": 30.0}
    devices: list[dict[str, str]] = []
    for device in simulated:
        settings.update(device.settings)
        devices.extend(device.devices)
    kitd = KitdProcess(tmp_path / "kitd", devices=devices, settings=settings)
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    for device_id in ("fingerprint", "iris_camera", "signature"):
        kitd.wait_for_status(device_id, "ready")
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    orders = [
        sample_order("MJK-001"),
        sample_order("MJK-002", category="odgj", nik="3576011208550002", birth_date="1955-08-12", sex="L"),
    ]
    assert supervisor.checked("POST", "/api/v1/orders", orders).json()["imported"] == 2
    sims = {name: device.simulator for name, device in zip(SIMULATORS, simulated, strict=True)}
    yield kitd, sims, DaemonClient(kitd.url, kitd.sign_in("officer"))
    kitd.stop()
    for device in simulated:
        device.simulator.stop()


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
    visit = act(officer, visit, "finish")
    assert visit["state"] == "finished"
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
    assert act(officer, visit, "finish")["state"] == "finished"


def test_not_home_and_rescheduled_for_tomorrow(kit) -> None:  # noqa: ANN001
    kitd, sims, officer = kit
    visit = start_visit(officer)
    tomorrow = {"start": "2026-12-02T09:00:00+07:00", "end": "2026-12-02T10:00:00+07:00"}
    visit = act(
        officer, visit, "outcome", {"code": "rescheduled", "note": "tidak di rumah", "reschedule": tomorrow}
    )
    assert visit["state"] == "ended" and visit["outcome"]["reschedule"] == tomorrow
    listed = officer.checked("GET", "/api/v1/orders?day=2026-12-02").json()
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
    assert act(again, visit, "finish")["state"] == "finished"


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
    refused = officer.request("POST", f"/api/v1/visits/{visit['id']}/items/finger:1/start")
    assert refused.status == 409 and refused.json()["state"] == "ending"
    body: dict[str, Any] = {"code": code, "note": "catatan petugas"}
    if code == "rescheduled":
        body["reschedule"] = {"start": "2026-12-03T09:00:00+07:00", "end": "2026-12-03T10:00:00+07:00"}
    visit = act(officer, visit, "outcome", body)
    assert visit["state"] == "ended" and visit["outcome"]["code"] == code
    with sqlite3.connect(kitd.data_dir / "kitd.sqlite3") as db:
        status, content, outcome = db.execute(
            "SELECT status, content, outcome FROM work_orders WHERE order_id = 'MJK-002'"
        ).fetchone()
    assert outcome == code
    if code == "rescheduled":
        assert status == "pending" and "2026-12-03T09:00:00+07:00" in content
    else:
        assert (status, content) == ("done", None)
