"""HIL: the pre-visit check (issue 31). Starting a visit runs the quick diagnostics: with the
fingerprint reader unplugged the visit is refused with 409 precheck_failed naming the check and
what to do, in both languages; with the reader back it starts, and the check's warnings come
with the new visit. Each run is stored (the history) and audited. An outcome known at the door
(nobody home, another day) needs no device: with the reader unplugged it is still taken."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from hil.kit_sim import simulated_kitd, start_fingerprint_reader
from hil.sample_orders import appointment_in_days, sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.store.audit import find_entries


@pytest.fixture
def reader_kit(tmp_path: Path, rig_logs: Any) -> Iterator[tuple[Any, Any]]:
    """A kitd with only the fingerprint reader's simulator (and the reader), ready."""
    simulated = [start_fingerprint_reader(tmp_path)]
    reader = simulated[0].simulator
    rig_logs.add(reader.name, reader.logs)
    kitd = simulated_kitd(tmp_path, simulated)
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        kitd.wait_for_status("fingerprint", "ready")
        yield kitd, reader
    finally:
        kitd.stop()
        reader.stop()


def test_a_visit_without_its_fingerprint_reader_is_refused_before_it_starts(reader_kit: Any) -> None:
    kitd, reader = reader_kit
    DaemonClient(kitd.url, kitd.sign_in("supervisor")).checked(
        "POST", "/api/v1/orders", [sample_order("MJK-301")]
    )
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    reader.control("unplug")
    kitd.wait_for_status("fingerprint", "disconnected")

    refused = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-301"}, timeout_s=30)
    assert refused.status == 409, refused.body
    answer = refused.json()
    assert answer["error"] == "precheck_failed" and "fingerprint.present" in answer["message"]
    (failed,) = answer["checks"]
    assert failed["id"] == "fingerprint.present" and failed["status"] == "failed"
    assert failed["message"]["id"].startswith("Pembaca sidik jari tidak terhubung")
    assert "check its cable" in failed["message"]["en"]
    assert officer.checked("GET", "/api/v1/visits").json() == []  # nothing started

    reader.control("replug")
    kitd.wait_for_status("fingerprint", "ready")
    started = officer.checked("POST", "/api/v1/visits", {"order_id": "MJK-301"}, timeout_s=30)
    assert started.status == 201
    precheck = started.json()["precheck"]
    assert precheck["critical"] == [] and precheck["status"] in ("ok", "warning")
    # The kit's clock is not confirmed by a laptop in the rig: the officer is told so.
    warned = {f["id"]: f for f in precheck["findings"]}
    assert warned["unit.clock"]["status"] == "warning" and warned["unit.clock"]["message"]["id"]

    technician = DaemonClient(kitd.url, kitd.sign_in("technician"))
    runs = technician.checked("GET", "/api/v1/diagnostics/history?limit=5").json()["runs"]
    audited = audited_runs(kitd)
    assert [r["run_id"] for r in runs[:2]] == [precheck["run_id"], audited[0]["run_id"]]
    assert all(r["quick"] for r in runs[:2]) and runs[1]["status"] == "failed"
    assert audited[0]["not_ok"]["fingerprint.present"] == "failed" and len(audited) == 2
    trend = technician.checked("GET", "/api/v1/diagnostics/history?check=fingerprint.present").json()
    assert [f["status"] for f in trend["findings"]] == ["failed", "ok"]  # oldest first


def test_nobody_at_home_is_said_with_the_reader_unplugged(reader_kit: Any) -> None:
    kitd, reader = reader_kit
    orders = [sample_order(f"MJK-31{n}") for n in range(1, 5)]
    DaemonClient(kitd.url, kitd.sign_in("supervisor")).checked("POST", "/api/v1/orders", orders)
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    reader.control("unplug")
    kitd.wait_for_status("fingerprint", "disconnected")
    refused = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-311"}, timeout_s=30)
    assert refused.status == 409 and refused.json()["error"] == "precheck_failed", refused.body

    ended = officer.request("POST", "/api/v1/orders/MJK-311/outcome", {"code": "not_home"})
    assert ended.status == 201, ended.body
    visit = ended.json()
    assert ended.headers["Location"] == f"/api/v1/visits/{visit['id']}"
    assert (visit["state"], visit["order_id"], visit["outcome"]["code"]) == (
        "ended",
        "MJK-311",
        "not_home",
    )
    assert visit["officer"] == officer.checked("GET", "/api/v1/auth/me").json()["officer"]["nip"]
    assert officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()["state"] == "ended"
    tomorrow = appointment_in_days(1)
    body = {"code": "rescheduled", "note": "keluarga minta besok", "reschedule": tomorrow}
    assert officer.request("POST", "/api/v1/orders/MJK-312/outcome", body).status == 201
    # Refused whole, nothing saved: the field or the order named.
    for path, wrong, status, said in (
        ("MJK-313", {"code": "unable"}, 400, "note"),
        ("MJK-313", {"code": "not_home", "note": "bel\x07"}, 400, "note"),
        ("MJK-313", {"code": "gone"}, 400, "code"),
        ("MJK-311", {"code": "not_home"}, 404, "unknown_order"),
        ("MJK-399", {"code": "not_home"}, 404, "unknown_order"),
    ):
        answer = officer.request("POST", f"/api/v1/orders/{path}/outcome", wrong)
        assert answer.status == status, (wrong, answer.body)
        assert said in (answer.json().get("field"), answer.json()["error"]), answer.body
    pending = officer.checked("GET", f"/api/v1/orders?day={tomorrow['start'][:10]}").json()
    assert [(o["order_id"], o["appointment"]) for o in pending][:1] == [("MJK-312", tomorrow)]
    assert {o["order_id"] for o in pending} == {"MJK-312", "MJK-313", "MJK-314"}
    with closing(sqlite3.connect(kitd.data_dir / "kitd.sqlite3")) as db:
        rows = db.execute("SELECT order_id, status, content FROM work_orders ORDER BY order_id")
        assert [(o, s, c is None) for o, s, c in rows][:1] == [("MJK-311", "done", True)]
        db.row_factory = sqlite3.Row
        ends = [e["details"] for e in find_entries(db, action="visit_ended")]
    assert [(e["order"], e["outcome"], e["at_door"]) for e in ends] == [
        ("MJK-311", "not_home", True),
        ("MJK-312", "rescheduled", True),
    ]

    # A visit that did start gives its outcome itself, not at the door; another order's door
    # outcome meanwhile leaves it running.
    reader.control("replug")
    kitd.wait_for_status("fingerprint", "ready")
    started = officer.checked("POST", "/api/v1/visits", {"order_id": "MJK-313"}, timeout_s=30).json()
    answer = officer.request("POST", "/api/v1/orders/MJK-313/outcome", {"code": "not_home"})
    assert answer.status == 409 and answer.json()["state"] == "identity", answer.body
    assert started["id"] in answer.json()["message"]
    next_door = officer.request("POST", "/api/v1/orders/MJK-314/outcome", {"code": "not_home"})
    assert next_door.status == 201, next_door.body
    assert [v["id"] for v in officer.checked("GET", "/api/v1/visits").json()] == [started["id"]]
    assert (
        officer.checked("POST", f"/api/v1/visits/{started['id']}/outcome", {"code": "refused"}).json()[
            "state"
        ]
        == "ended"
    )


def audited_runs(kitd: Any) -> list[dict[str, Any]]:
    """The diagnostics runs' summaries in the kit's audit log, oldest first."""
    with closing(sqlite3.connect(kitd.data_dir / "kitd.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        return [e["details"] for e in find_entries(db, action="diagnostics_run")]
