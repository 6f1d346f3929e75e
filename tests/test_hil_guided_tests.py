"""HIL: the guided tests through the API, against the real kitd with the panel's and the pad's
simulators (each in its own process). The panel test driven end to end: the simulator's
buttons pressed in turn (a wrong one first), each LED read from the simulator while the
technician answers, the error LED answered "no": failed, saying what to do, and the panel
the kit's again. The pad test: the simulator's pen taps the corners and draws a straight
line (passed), or a wobbly one (failed on its linearity). A second start while one runs is
409, and so is a visit (the pre-visit check names the test); a cancelled test frees the pad.
Every finding is in the history, audited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hil.events import EventRecorder
from hil.kit_sim import simulated_kitd, start_panel, start_signature_pad
from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.schemas import check

GUIDED = "/api/v1/diagnostics/guided"
BUTTONS = ("capture", "retry", "skip", "cancel")


def state_of(technician: DaemonClient, test: dict[str, Any]) -> dict[str, Any]:
    return technician.checked("GET", f"{GUIDED}/{test['guided_id']}").json()


def until(technician: DaemonClient, test: dict[str, Any], what: str, ok: Any, timeout_s: float = 20) -> Any:
    return wait_until(lambda: (now := state_of(technician, test)) and ok(now) and now, what, timeout_s)


def leds_lit(panel: Any) -> set[str]:
    return {name for name, value in json.loads(panel.control("state"))["leds"].items() if value}


def confirm(technician: DaemonClient, test: dict[str, Any], step: str, seen: bool) -> dict[str, Any]:
    reply = technician.checked("POST", f"{GUIDED}/{test['guided_id']}/confirm", {"step": step, "seen": seen})
    return reply.json()


def test_the_panel_and_the_pad_guided_by_a_technician(tmp_path: Path, rig_logs: Any) -> None:
    simulated = [start_panel(tmp_path), start_signature_pad(tmp_path)]
    panel, pad = (device.simulator for device in simulated)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    kitd = simulated_kitd(tmp_path, simulated)
    rig_logs.add("kitd", kitd.logs)
    events: EventRecorder | None = None
    try:
        kitd.start()
        kitd.wait_for_status("panel", "ready")
        kitd.wait_for_status("signature", "ready")
        token = kitd.sign_in("technician")
        technician = DaemonClient(kitd.url, token)
        events = EventRecorder(kitd.url, token)
        officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        assert officer.request("POST", GUIDED, {"test": "panel"}).status == 403
        wait_until(lambda: leds_lit(panel) == {"ready"}, "the kit's ready LED", 10)

        # --- the panel: the simulator's buttons, the technician's answers ---------------------
        started = technician.request("POST", GUIDED, {"test": "panel"})
        assert started.status == 201, started.body
        test = started.json()
        check("GuidedTest", test)
        assert test["state"] == "running" and test["current"] == "press_capture"
        assert test["steps"][0]["prompt"] == {
            "id": "Tekan tombol Rekam/Lanjut.",
            "en": "Press the Capture/Next button.",
        }
        second = technician.request("POST", GUIDED, {"test": "pad"})
        assert second.status == 409 and second.json()["error"] == "guided_test_running", second.body
        # Nor does a visit start meanwhile: the pre-visit check names the test holding the panel.
        supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-501")])
        refused = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-501"}, timeout_s=30)
        assert refused.status == 409 and refused.json()["error"] == "precheck_failed", refused.body
        assert [c["id"] for c in refused.json()["checks"]] == ["panel.guided"]
        wait_until(lambda: leds_lit(panel) == set(), "the LEDs the test's (all off)", 10)
        panel.control("tap skip")  # not the one asked for: noted, nothing else happens
        until(
            technician, test, "the wrong press noted", lambda t: t["steps"][0]["values"].get("other_presses")
        )
        for n, button in enumerate(BUTTONS):
            panel.control(f"tap {button}")
            after = test["steps"][n + 1]["id"]
            until(technician, test, f"{button} read", lambda t, after=after: t["current"] == after)
        now = state_of(technician, test)
        assert [s["status"] for s in now["steps"][:4]] == ["done"] * 4
        assert now["steps"][0]["values"]["other_presses"] == ["skip"]
        for led in ("ready", "capturing"):
            wait_until(lambda led=led: leds_lit(panel) == {led}, f"the {led} LED lit alone", 10)
            answered = confirm(technician, test, f"led_{led}", True)
            assert (
                answered["steps"][[s["id"] for s in answered["steps"]].index(f"led_{led}")]["status"]
                == "done"
            )
        wait_until(lambda: leds_lit(panel) == {"error"}, "the error LED lit alone", 10)
        ended = confirm(technician, test, "led_error", False)  # the technician sees it dark
        assert ended["state"] == "failed" and ended["current"] is None, ended
        found = ended["finding"]
        assert found["id"] == "panel.guided" and found["status"] == "failed"
        assert found["message"] == {
            "id": "Lampu Galat (merah) tidak menyala: periksa kabelnya; jika tetap padam, ganti lampu "
            "panel itu.",
            "en": "The error (red) LED does not light: check its wiring; if it stays dark, replace the "
            "panel's LED.",
        }
        assert [s["status"] for s in ended["steps"][-2:]] == ["failed", "skipped"]
        assert ended["run_id"]
        # The panel is the kit's again: its ready LED, and a press means what it means to a kit.
        wait_until(lambda: leds_lit(panel) == {"ready"}, "the kit's LEDs again", 10)
        panel.control("tap capture")
        events.wait_for(lambda e: e["type"] == "panel" and e["data"]["action"] == "meaningless", 10)
        panel_presses = [e for e in events.events if e["type"] == "panel"]
        assert len(panel_presses) == 1, "no press during the test reached the visit's actions"

        # --- the pad: the simulator's pen at the corners, then a ruler line -------------------
        assert pad.control("draw corners").endswith("packets for the next start")
        test = technician.checked("POST", GUIDED, {"test": "pad"}).json()
        assert test["device"] == "signature" and test["current"] == "corner_top_left"
        assert test["steps"][0]["values"]["zone"] == {"x_min": 0, "x_max": 960, "y_min": 0, "y_max": 600}
        until(technician, test, "the four corners touched", lambda t: t["current"] == "line")
        assert pad.control("draw line").startswith("playing")
        passed = until(technician, test, "the line judged", lambda t: t["state"] != "running")
        assert passed["state"] == "passed", passed
        values = passed["finding"]["values"]
        assert passed["finding"]["status"] == "ok" and values["coverage"] > 0.85
        assert values["line"]["linearity"] < 0.01 and values["line"]["length_mm"] > 80
        # The pen's points came live with the test's state; none is kept for a replay.
        inked = [e for e in events.events if e["type"] == "guided" and "ink" in e["data"]]
        assert inked and all(e["data"]["guided_id"] == test["guided_id"] for e in inked)
        assert sum(len(e["data"]["ink"]["points"]) for e in inked) > 150
        check("GuidedEvent", inked[-1]["data"])
        kitd.wait_for_status("signature", "ready")

        pad.control("draw corners")
        test = technician.checked("POST", GUIDED, {"test": "pad"}).json()
        until(technician, test, "the four corners touched", lambda t: t["current"] == "line")
        pad.control("draw line 0.05")  # a line no ruler drew
        failed = until(technician, test, "the line judged", lambda t: t["state"] != "running")
        assert failed["state"] == "failed" and failed["finding"]["status"] == "failed", failed
        assert failed["finding"]["message"]["en"].startswith("The line is not straight: it strays")
        assert failed["finding"]["values"]["line"]["linearity"] > 0.03

        # --- cancelled: the pad freed at once -------------------------------------------------
        pad.control("draw path 4800,3000;5200,3200")  # the pen resting mid-pad: no corner
        test = technician.checked("POST", GUIDED, {"test": "pad"}).json()
        assert kitd.wait_for_status("signature", "busy")
        cancelled = technician.checked("DELETE", f"{GUIDED}/{test['guided_id']}").json()
        assert cancelled["state"] == "cancelled" and cancelled["finding"]["status"] == "warning"
        assert {s["status"] for s in cancelled["steps"]} == {"skipped"}
        assert technician.request("DELETE", f"{GUIDED}/{test['guided_id']}").status == 409
        assert kitd.devices()["signature"]["status"] == "ready"
        assert json.loads(pad.control("status"))["sampling"] is False

        # --- every finding in the history, oldest first, and audited ---------------------------
        history = technician.checked("GET", "/api/v1/diagnostics/history?check=signature.guided").json()
        assert [f["status"] for f in history["findings"]] == ["ok", "failed", "warning"]
        assert [f["values"]["state"] for f in history["findings"]] == ["passed", "failed", "cancelled"]
        panel_history = technician.checked("GET", "/api/v1/diagnostics/history?check=panel.guided").json()
        assert [f["status"] for f in panel_history["findings"]] == ["failed"]
        # Newest first by when each started (the refused visit's quick run came amid the panel's).
        runs = [
            r
            for r in technician.checked("GET", "/api/v1/diagnostics/history").json()["runs"]
            if "guided_id" in r
        ]
        assert [r["guided_id"] for r in runs] == [
            test["guided_id"],
            failed["guided_id"],
            passed["guided_id"],
            ended["guided_id"],
        ]
        assert all(r["quick"] is False and len(r["checks"]) == 1 for r in runs)
        entries = supervisor.checked("GET", "/api/v1/audit/entries?count=1000").json()["entries"]
        audited = [e["details"]["run_id"] for e in entries if e["action"] == "diagnostics_run"]
        assert {r["run_id"] for r in runs} <= set(audited)
    finally:
        if events is not None:
            events.close()
        kitd.stop()
        for device in simulated:
            device.simulator.stop()
