"""HIL: what the touch screen's visit needs of the daemon, through the API against the
simulators: the latest press of a fingerprint session with its score (never cached), the
session's progress toward a capture (passes so far / needed) in its events and its JSON,
and the pen's points of a signature session as ``ink`` events that add up to the recording.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from hil.events import EventRecorder
from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from tests.test_hil_visits import act, items, start_rig, start_visit, stop_rig


def test_press_image_progress_and_ink_for_the_screen(tmp_path: Any, rig_logs: Any) -> None:
    kitd, sims, simulated = start_rig(tmp_path, rig_logs)
    events = None
    try:
        DaemonClient(kitd.url, kitd.sign_in("supervisor")).checked(
            "POST", "/api/v1/orders", [sample_order("MJK-001")]
        )
        token = kitd.sign_in("officer")
        officer = DaemonClient(kitd.url, token)
        events = EventRecorder(kitd.url, token)
        visit = start_visit(officer)
        visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
        sims["fingerprint"].control("condition light")
        visit = act(officer, visit, "items/finger:1/start")
        sid = items(visit)["finger:1"]["session_id"]
        light = events.wait_for(
            lambda e: (
                e["type"] == "assessment"
                and e["data"]["session"] == sid
                and "press_harder" in e["data"]["feedback"]
            )
        )["data"]
        assert light["passes"] == 0 and light["passes_needed"] >= 1
        press = officer.checked("GET", f"/api/v1/sessions/{sid}/press")
        assert press.headers["Content-Type"] == "image/png" and press.headers["Cache-Control"] == "no-store"
        # The press shown is one the session judged and told: its number and its score.
        number, quality = int(press.headers["X-Kit-Press"]), float(press.headers["X-Kit-Quality"])
        shown = ("assessment", sid, number)
        told = events.wait_for(
            lambda e: (e["type"], e["data"].get("session"), e["data"].get("frame")) == shown
        )["data"]
        assert told["score"] == quality
        frame = cv2.imdecode(np.frombuffer(press.body, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert frame is not None and frame.shape[0] > 100 and frame.shape[1] > 100
        summary = officer.checked("GET", f"/api/v1/sessions/{sid}").json()
        assert summary["passes_needed"] == light["passes_needed"] and summary["passes"] == 0  # still light
        sims["fingerprint"].control("condition good")
        events.wait_for(
            lambda e: e["type"] == "assessment" and e["data"]["session"] == sid and e["data"]["passes"] >= 1
        )
        wait_until(
            lambda: (
                items(officer.checked("GET", f"/api/v1/visits/{visit['id']}").json())["finger:1"]["status"]
                == "captured"
            ),
            "finger:1 captured",
            60,
        )
        # The press stays readable after its session ended (the screen shows the last one).
        assert officer.request("GET", f"/api/v1/sessions/{sid}/press").status == 200
        assert officer.request("GET", "/api/v1/sessions/nothing/press").status == 404
        # On to the signature: everything else excepted (fast), then the pen's points live.
        skip = {"finger": "amputated", "iris": "missing"}
        for item in [f"finger:{n}" for n in range(2, 11)] + ["iris:right", "iris:left"]:
            body = {"reason": skip[item.split(":")[0]], "confirm": True}
            visit = act(officer, visit, f"items/{item}/except", body)
        assert visit["current"] == "signature"
        visit = act(officer, visit, "items/signature/start")
        pen = items(visit)["signature"]["session_id"]
        nothing = officer.request("GET", f"/api/v1/sessions/{pen}/press")
        assert nothing.status == 409 and nothing.json()["error"] == "session_state"

        def signed() -> bool:
            now = officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()
            return bool(items(now)["signature"]["passed"])

        wait_until(signed, "the signature passes", 60)
        visit = act(officer, visit, "items/signature/accept")
        recording = officer.checked("GET", f"/api/v1/visits/{visit['id']}/items/signature/capture").json()
        kept = [[p["x"], p["y"], p["pressure"], int(p["tip"])] for p in recording["points"]]
        # The last batch (sent as the session ends) may still be on its way to the recorder.
        wait_until(
            lambda: sum(len(ink["points"]) for ink in events.of("ink", pen)) >= len(kept), "the last ink"
        )
        inks = events.of("ink", pen)
        assert len(inks) >= 3, inks
        sent = 0
        drawn: list[list[int]] = []
        for ink in inks:  # contiguous batches, in order, with the pad's extent
            assert ink["from"] == sent and ink["points"] and ink["max_x"] == recording["device"]["max_x"]
            assert abs(ink["read_at"] - time.time()) < 300  # the host's clock, in seconds
            sent += len(ink["points"])
            drawn += ink["points"]
        assert drawn[: len(kept)] == kept  # what the screen drew is what was kept
        signature_assessments = events.of("assessment", pen)
        assert signature_assessments and all(a["passes_needed"] is None for a in signature_assessments)
    finally:
        if events is not None:
            events.close()
        stop_rig(kitd, simulated)
