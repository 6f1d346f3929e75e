"""The kit's clock on the real kitd (issue 30): a kit a year behind is corrected by the laptop's
first sync and flagged confirmed; the bundle sealed before says ``clock.confirmed: false``, the
one sealed after ``true``; a restart with the clock set back is flagged, on the status, the
officer's screen and in the audit log.

The kit's "system clock" is moved with libfaketime for the kitd process alone
(hil.shifted_clock): the machine's clock is never touched, and the kit corrects itself by its
own offset (clock.set_system off, as in the rig)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from kitformats.signing import read_certificate

from hil.field_laptop import KitSync, complete_visit, network_port
from hil.kit_sim import LOOPBACK_NETWORK, simulated_kitd, start_simulators, stop_simulators
from hil.pytest_plugin import RigLogs
from hil.rig import KitdProcess
from hil.sample_orders import sample_order
from hil.shifted_clock import faketime_library, shifted_clock_env
from kitd.cli.daemon_client import DaemonClient
from kitd.crypto.bundle import open_bundle
from kitd.store.audit import find_entries

pytestmark = pytest.mark.skipif(
    faketime_library() is None, reason="libfaketime is not installed (scripts/install-system-packages)"
)

YEAR_S = 365 * 86400


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _manifest(kitd: KitdProcess, bundle_id: str) -> dict[str, Any]:
    """The bundle's manifest as the central office opens it (its key, the kit's CA)."""
    outbox = kitd.data_dir / "outbox"
    key = serialization.load_pem_private_key((kitd.office_dir / "central.key").read_bytes(), None)
    statement = json.loads((outbox / f"{bundle_id}.statement.json").read_text())
    sealed = (outbox / f"{bundle_id}.p7m").read_bytes()
    opened = open_bundle(sealed, key, [read_certificate(kitd.data_dir / "keys" / "ca.crt")], statement)  # type: ignore[arg-type]
    return opened.manifest


def _clock_entries(kitd: KitdProcess) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(kitd.data_dir / "kitd.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        return [e for e in find_entries(db) if e["action"].startswith("clock_")]


def test_a_kit_a_year_behind_is_corrected_at_sync_and_a_clock_set_back_is_flagged(
    tmp_path: Path, rig_logs: RigLogs
) -> None:
    simulated = start_simulators(tmp_path)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    kitd = simulated_kitd(
        tmp_path,
        simulated,
        {"fingerprint.capture_timeout_s": 30.0, **LOOPBACK_NETWORK},
        env=shifted_clock_env(-365),
    )
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        for device_id in ("fingerprint", "iris_camera", "signature"):
            kitd.wait_for_status(device_id, "ready")
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        status = supervisor.checked("GET", "/api/v1/status").json()["clock"]
        behind = (dt.datetime.now(dt.UTC) - _time(status["now"])).total_seconds()
        assert abs(behind - YEAR_S) < 600 and status["confirmed"] is False, status
        # Its database already holds entries written on the right time (the rig added its officers
        # and credentials before it started, as an office provisions a kit): behind them, flagged.
        assert abs(status["went_back"]["behind_s"] - YEAR_S) < 600, status
        supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-201"), sample_order("MJK-202")])
        laptop = KitSync(tmp_path / "laptop")
        laptop.pair(kitd, "lap-clock")
        officer = DaemonClient(kitd.url, kitd.sign_in("officer"))

        before = complete_visit(officer, "MJK-201")["bundle"]["id"]
        out = tmp_path / "bundles"
        pulled = laptop.run("pull", out)
        assert pulled.returncode == 0, pulled.stderr
        assert "the kit's clock was 365 days behind and was corrected" in pulled.stderr, pulled.stderr

        status = supervisor.checked("GET", "/api/v1/status").json()["clock"]
        assert status["confirmed"] is True and status["confirmed_by"] == "lap-clock", status
        assert abs((_time(status["now"]) - dt.datetime.now(dt.UTC)).total_seconds()) < 60
        corrected = [e for e in _clock_entries(kitd) if e["action"] == "clock_corrected"]
        assert len(corrected) == 1 and corrected[0]["actor"] == "laptop:lap-clock"
        old, new = (
            _time(corrected[0]["details"]["kit_time_before"]),
            _time(corrected[0]["details"]["kit_time"]),
        )
        assert abs((new - old).total_seconds() - YEAR_S) < 600, corrected
        screen = officer.checked("GET", "/api/v1/summary").json()["clock"]
        assert (
            abs((_time(screen.pop("now")) - _time(status["now"])).total_seconds()) < 60
        )  # the corrected one
        assert screen == {"confirmed": True, "confirmed_at": status["confirmed_at"], "went_back": False}
        assert status["went_back"] is None  # the confirmation cleared the flag of the start

        after = complete_visit(officer, "MJK-202")["bundle"]["id"]
        first, second = _manifest(kitd, before), _manifest(kitd, after)
        assert first["clock"] == {"confirmed": False, "confirmed_at": None}
        assert second["clock"] == {"confirmed": True, "confirmed_at": status["confirmed_at"]}
        assert (_time(second["created_at"]) - _time(first["created_at"])).total_seconds() > YEAR_S - 600
        again = laptop.run("pull", out)
        assert again.returncode == 0 and "corrected" not in again.stderr, again.stderr
        shown = json.loads(laptop.run("status", "--json").stdout)[0]["clock"]
        assert shown["corrected"] is False and abs(shown["skew_s"]) < 120, shown

        # The kit restarts with its system clock set back a further day: flagged, unconfirmed.
        kitd.stop()
        kitd.env.update(shifted_clock_env(-366))
        kitd.start()
        status = DaemonClient(kitd.url, kitd.sign_in("supervisor")).checked("GET", "/api/v1/status").json()
        went_back = status["clock"]["went_back"]
        assert status["clock"]["confirmed"] is False and went_back is not None, status["clock"]
        assert 86400 - 600 < went_back["behind_s"] < 86400 + 600, went_back
        flagged = [e for e in _clock_entries(kitd) if e["action"] == "clock_went_back"]
        assert len(flagged) == 2 and flagged[-1]["details"]["behind_s"] == went_back["behind_s"]
        screen = DaemonClient(kitd.url, kitd.sign_in("officer")).checked("GET", "/api/v1/summary").json()
        assert screen["clock"]["went_back"] is True and screen["clock"]["confirmed"] is False
        # The next sync confirms it again (the restarted kit listens on a new free port).
        laptop.point_at(network_port(kitd))
        synced = laptop.run("pull", out)
        assert synced.returncode == 0 and "24 hours behind" in synced.stderr, synced.stderr
        status = DaemonClient(kitd.url, kitd.sign_in("supervisor")).checked("GET", "/api/v1/status").json()
        assert status["clock"]["confirmed"] is True and status["clock"]["went_back"] is None
    finally:
        kitd.stop()
        stop_simulators(simulated)
