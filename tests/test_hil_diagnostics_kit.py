"""HIL: a healthy simulated kit, all its devices, reports every check ok — but for what a rig
cannot have: the clock no laptop confirmed yet (a warning saying so), and the facts a machine does
not report (an SD card's wear, a Pi's throttling flags, no laptop paired), which are
not_available with their reason. The full run in the documented shape, stored in the history."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hil.kit_sim import simulated_kitd, start_simulators, stop_simulators
from kitd.cli.daemon_client import DaemonClient
from kitd.schemas import check

DEVICE_IDS = ("fingerprint", "iris_camera", "signature", "panel", "peripheral")
# What a healthy rig may leave not_available, and why (the check's own message says it).
MAY_BE_ABSENT = {"unit.sd_wear", "unit.cpu_temperature", "unit.throttling", "unit.battery", "data.last_sync"}


def _wait_for(read: Any, done: Any, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done(read()):
            return True
        time.sleep(0.2)
    return False


def test_a_healthy_simulated_kit_reports_its_checks_ok(tmp_path: Path, rig_logs: Any) -> None:
    simulated = start_simulators(tmp_path)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    # The screen's battery is read often here, to see a change arrive.
    kitd = simulated_kitd(tmp_path, simulated, {"devices.battery_interval_s": 0.5})
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        for device_id in DEVICE_IDS:
            kitd.wait_for_status(device_id, "ready")
        next(d for d in simulated if d.simulator.name == "nb1010_sim").simulator.control("finger off")
        technician = DaemonClient(kitd.url, kitd.sign_in("technician"))
        run = technician.checked("GET", "/api/v1/diagnostics", timeout_s=120).json()
        check("DiagnosticsRun", run)
        found = {f["id"]: f for f in run["checks"]}
        devices = [f for f in run["checks"] if f["device"] is not None]
        assert {f["device"] for f in devices} == {*DEVICE_IDS}
        # The peripheral's gauge is read, and the illuminator was lit while the camera's checks looked.
        assert found["unit.battery"]["status"] == "ok" and found["unit.battery"]["values"]["percent"] == 80
        peripheral = next(d for d in simulated if d.simulator.name == "smp_peripheral_sim").simulator
        lit = json.loads(peripheral.control("counts"))
        assert lit["illuminator_on"] == lit["illuminator_off"] == 2  # exposure and focus, each
        assert [(f["id"], f["status"]) for f in devices if f["status"] != "ok"] == []
        clock = found.pop("unit.clock")
        assert clock["status"] == "warning" and "confirmed" in clock["message"]["en"]
        for check_id, finding in found.items():
            allowed = ("ok", "not_available") if check_id in MAY_BE_ABSENT else ("ok",)
            assert finding["status"] in allowed, finding
            assert (finding["status"] == "ok") == (finding["message"] is None), finding
        assert run["status"] == "warning" and run["stored"] is True
        latest = technician.checked("GET", "/api/v1/diagnostics/history?limit=1").json()["runs"]
        assert latest[0]["run_id"] == run["run_id"]
        # The screen's status bar has the gauge too, and follows it.
        summary = technician.checked("GET", "/api/v1/summary").json()
        check("Summary", summary)
        assert summary["battery"]["percent"] == 80 and summary["battery"]["charging"] is False
        peripheral.control("battery 3550 9 true")
        assert _wait_for(
            lambda: technician.checked("GET", "/api/v1/summary").json()["battery"],
            lambda battery: battery["percent"] == 9 and battery["charging"] is True,
        )
    finally:
        kitd.stop()
        stop_simulators(simulated)
