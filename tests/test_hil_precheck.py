"""HIL: the pre-visit check (issue 31). Starting a visit runs the quick diagnostics: with the
fingerprint reader unplugged the visit is refused with 409 precheck_failed naming the check and
what to do, in both languages; with the reader back it starts, and the check's warnings come
with the new visit. Each run is stored (the history) and audited."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from hil.kit_sim import simulated_kitd, start_fingerprint_reader
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.store.audit import find_entries


def test_a_visit_without_its_fingerprint_reader_is_refused_before_it_starts(
    tmp_path: Path, rig_logs: Any
) -> None:
    simulated = [start_fingerprint_reader(tmp_path)]
    reader = simulated[0].simulator
    rig_logs.add(reader.name, reader.logs)
    kitd = simulated_kitd(tmp_path, simulated)
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        kitd.wait_for_status("fingerprint", "ready")
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
    finally:
        kitd.stop()
        reader.stop()


def audited_runs(kitd: Any) -> list[dict[str, Any]]:
    """The diagnostics runs' summaries in the kit's audit log, oldest first."""
    with closing(sqlite3.connect(kitd.data_dir / "kitd.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        return [e["details"] for e in find_entries(db, action="diagnostics_run")]
