"""HIL: the fingerprint reader's and the signature pad's diagnostics, through the API, against
their simulators: a healthy kit reports them ok; each fault the simulators inject (a dirty
sensor, dead rows, stuck columns, garbage and broken packets on the pad's line) gives the
expected status and message; a reader unplugged in the middle of its blank frame fails that
check, and the run still completes. One kitd for every case, faults cleared in between.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from hil.kit_sim import simulated_kitd, start_fingerprint_reader, start_signature_pad
from kitd.cli.daemon_client import DaemonClient

READER_CHECKS = ("fingerprint.identity", "fingerprint.finger_baseline", "fingerprint.blank_frame")
PAD_CHECKS = ("signature.identity", "signature.line")


def diagnose(technician: DaemonClient) -> dict[str, dict[str, Any]]:
    run = technician.checked("GET", "/api/v1/diagnostics", timeout_s=60).json()
    return {check["id"]: check for check in run["checks"]}


def test_the_readers_and_the_pads_checks_catch_the_simulators_faults(tmp_path: Path, rig_logs: Any) -> None:
    simulated = [start_fingerprint_reader(tmp_path), start_signature_pad(tmp_path)]
    reader, pad = (device.simulator for device in simulated)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    kitd = simulated_kitd(tmp_path, simulated)
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        kitd.wait_for_status("fingerprint", "ready")
        kitd.wait_for_status("signature", "ready")
        technician = DaemonClient(kitd.url, kitd.sign_in("technician"))
        reader.control("finger off")  # a technician runs the checks with nothing on the sensor

        healthy = diagnose(technician)
        for check_id in READER_CHECKS + PAD_CHECKS:
            assert healthy[check_id]["status"] == "ok", healthy[check_id]
        assert healthy["fingerprint.identity"]["values"]["usb_id"] == "298d:1010"
        assert healthy["fingerprint.finger_baseline"]["values"]["coverage"] == 0
        line = healthy["signature.line"]["values"]
        # The simulated pen writes from 0.2 s on: about 1.8 s of packets at 130 a second.
        assert line["pen_packets"] > 100 and line["noise_bytes"] == 0 and 90 < line["rate_hz"] < 180

        reader.control("fault dirty")
        pad.control("fault noise")
        found = diagnose(technician)
        blank = found["fingerprint.blank_frame"]
        assert blank["status"] == "warning" and blank["values"]["blotch_px"] > 0
        assert blank["message"]["id"].endswith("bersihkan permukaan sensor dengan kain lembut, lalu ulangi.")
        assert blank["message"]["en"].endswith(
            "clean the sensor's surface with a soft cloth, then run again."
        )
        noisy = found["signature.line"]
        assert noisy["status"] == "failed" and noisy["values"]["noise_bytes"] > 0
        assert noisy["message"]["en"].startswith("The pad's line is noisy")
        assert "check the cable and the baud rate (set to 38400)" in noisy["message"]["en"]

        reader.control("fault clear")
        reader.control("fault dead-rows 2")
        pad.control("fault clear")
        pad.control("fault corrupt")
        found = diagnose(technician)
        dead = found["fingerprint.blank_frame"]
        assert dead["status"] == "failed" and dead["values"]["dead_rows"] == [60, 120]
        assert dead["message"]["en"] == "The sensor is damaged (2 dead rows (60, 120)): replace the reader."
        assert dead["message"]["id"] == "Sensor rusak (2 baris mati (60, 120)): ganti pembaca sidik jari."
        corrupt = found["signature.line"]
        assert corrupt["status"] == "failed" and corrupt["values"]["rejected"] > 0

        reader.control("fault clear")
        reader.control("fault stuck-columns 2")
        pad.control("fault clear")
        found = diagnose(technician)
        stuck = found["fingerprint.blank_frame"]
        assert stuck["status"] == "failed" and stuck["values"]["stuck_columns"] == [85, 170]
        assert stuck["message"]["en"].endswith("2 stuck columns (85, 170)): replace the reader.")
        assert found["signature.line"]["status"] == "ok"

        reader.control("fault clear")
        reader.control("fault unplug-mid-frame 30")
        found = diagnose(technician)
        gone = found["fingerprint.blank_frame"]
        assert gone["status"] == "failed", gone
        assert "went away in the middle of the check" in gone["message"]["en"]
        assert "unplugged" in gone["values"]["error"]
        # The run went on past the reader: the pad was checked, as were the unit and its data.
        assert found["signature.line"]["status"] == "ok"
        assert {"unit.disk", "data.audit_log"} <= set(found)
        reader.control("replug")
        kitd.wait_for_status("fingerprint", "ready")

        # A hung pad: its port stays open, it answers nothing. Silence from it is not ok.
        assert pad.process is not None
        os.kill(pad.process.pid, signal.SIGSTOP)
        try:
            found = diagnose(technician)
        finally:
            os.kill(pad.process.pid, signal.SIGCONT)
        hung = found["signature.line"]
        assert hung["status"] == "failed" and "no answer to the pen query" in hung["message"]["en"], hung
        assert diagnose(technician)["signature.line"]["status"] == "ok"
    finally:
        kitd.stop()
        for device in simulated:
            device.simulator.stop()
