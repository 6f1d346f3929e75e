"""The physical panel: a button press to the visit's change and to the LED's, and the panel's
CPU while idle, on the whole simulated kit (kit-sim's simulators and the real kitd).

Each round presses Capture/Next on a pending fingerprint (the reader's finger is too light,
so the session keeps running) and measures, from the press's control command, the time
until the API shows the item capturing, and, in the panel simulator's own clock, from the
contact's first movement to the amber LED coming on (target: median <= 50 ms); the item
is then excepted through the API. The named reference is the screen's way: the same start
asked of the API directly (request to answer). CPU: kitd's share of a core while idle with
the panel connected, against the same kitd with the panel unplugged.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import cpu_seconds, summary_ms
from hil.kit_sim import start_kit
from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient

TARGET_MS = 50.0
PRESS_GAP_S = 0.2  # between one round's release and the next press: over the bounce time


def _item(officer: DaemonClient, visit_id: str, item: str) -> dict[str, Any]:
    visit = officer.checked("GET", f"/api/v1/visits/{visit_id}").json()
    return next(i for i in visit["items"] if i["item"] == item)


def _skip(officer: DaemonClient, visit_id: str, item: str) -> None:
    officer.checked(
        "POST",
        f"/api/v1/visits/{visit_id}/items/{item}/except",
        {"reason": "bandaged", "confirm": True},
    )


def _led_latency(panel: Any, since: int) -> float:
    """Seconds from the last press after change `since` to the amber LED's next coming on."""

    def found() -> float | None:
        changes = json.loads(panel.control(f"history {since}"))["changes"]
        press = next((c["t"] for c in changes if c["part"] == "button:capture" and c["value"] == 1), None)
        led = next((c["t"] for c in changes if c["part"] == "capturing" and c["value"] == 1), None)
        return None if press is None or led is None else max(1e-4, led - press)

    return float(wait_until(found, "the amber LED", 20))


def _rounds(
    kitd: Any, officer: DaemonClient, panel: Any, visit_id: str, fingers: list[str]
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"api": [], "led": [], "reference": []}
    for n, item in enumerate(fingers):
        if n % 2:  # the reference: the screen starts the item through the API
            started = time.perf_counter()
            officer.checked("POST", f"/api/v1/visits/{visit_id}/items/{item}/start")
            times["reference"].append(time.perf_counter() - started)
        else:
            # No finger presses again within the panel's bounce time (0.05 s) of a release: a
            # press that soon is dropped as contact bounce. The rounds come faster than that
            # since an exception returns once its session has let go of the reader.
            time.sleep(PRESS_GAP_S)
            since = json.loads(panel.control("history 0"))["next"] - 1
            started = time.perf_counter()
            panel.control("press capture")
            wait_until(lambda item=item: _item(officer, visit_id, item)["status"] == "capturing", item, 20)
            times["api"].append(time.perf_counter() - started)
            panel.control("release capture")
            times["led"].append(_led_latency(panel, since))
        _skip(officer, visit_id, item)
        kitd.wait_for_status("fingerprint", "ready")  # the cancelled session has let go of it
    return times


def _idle_cpu(kitd: Any, seconds: float) -> float:
    pid = kitd.process.pid
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def run(smoke: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    kitd, simulated = start_kit(workdir, 0, "warning")
    try:
        sims = {device.simulator.name: device.simulator for device in simulated}
        panel = sims["panel_sim"]
        for device_id in ("fingerprint", "panel"):
            kitd.wait_for_status(device_id, "ready")
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-001")])
        officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
        sims["nb1010_sim"].control("condition light")
        visit = officer.checked("POST", "/api/v1/visits", {"order_id": "MJK-001"}).json()
        officer.checked(
            "POST",
            f"/api/v1/visits/{visit['id']}/identity",
            {"present": ["Sumiati"], "consent_by": "applicant"},
        )
        fingers = [f"finger:{n}" for n in range(1, 5 if smoke else 11)]
        times = _rounds(kitd, officer, panel, visit["id"], fingers)
        reference = statistics.median(times["reference"])
        api = statistics.median(times["api"])
        led = statistics.median(times["led"])
        print(f"   press -> API state change: {summary_ms(times['api'])}")
        print(f"   press -> amber LED on:     {summary_ms(times['led'])} (target <= {TARGET_MS:g} ms)")
        print(f"   reference, the start through the API (the screen's way): {summary_ms(times['reference'])}")
        print(f"   to the reference: press->API {api / reference:.2f}x, press->LED {led / reference:.2f}x")
        print(f"   LED median {'within' if led * 1e3 <= TARGET_MS else 'OVER'} the {TARGET_MS:g} ms target")
        # Idle: no session, no visit changes.
        officer.checked("POST", f"/api/v1/visits/{visit['id']}/cancel")
        seconds = 2.0 if smoke else 10.0
        time.sleep(0.5)
        with_panel = _idle_cpu(kitd, seconds)
        panel.control("unplug")
        kitd.wait_for_status("panel", "disconnected")
        without = _idle_cpu(kitd, seconds)
        print(
            f"   kitd idle CPU: {with_panel * 100:.2f}% of a core with the panel, "
            f"{without * 100:.2f}% with it unplugged (reference): the panel's share "
            f"{(with_panel - without) * 100:+.2f} points over {seconds:g} s"
        )
    finally:
        kitd.stop()
        for device in simulated:
            device.simulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
