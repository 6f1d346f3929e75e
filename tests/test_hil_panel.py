"""HIL: a whole enrollment driven by the panel's buttons, against the real kitd and every
simulator (the panel's in its own process, its contacts bouncing on every press).

After sign-in, the order's choice and the identity through the API (the screen's part),
only buttons drive the visit; after each step the simulator's record of the LEDs and the
buzzer is read and asserted. Tones are told apart by pitch (1320 Hz a good capture, 660 Hz
a failure or a forced capture, 220 Hz a button without a meaning), never by their times.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.services.panel_rules import BEEP_HZ, LONG_HZ, LOW_HZ
from tests.test_hil_visits import FINGERS, IRISES, act, items, start_rig, start_visit, stop_rig


class PanelRecord:
    """The panel simulator's history, read step by step."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.seen = 0

    def step(self) -> list[tuple[str, float]]:
        """The LED and buzzer changes since the last step, as (part, value)."""
        reply = json.loads(self.sim.control(f"history {self.seen}"))
        self.seen = reply["next"] - 1
        return [(c["part"], c["value"]) for c in reply["changes"]]

    def tones(self, changes: list[tuple[str, float]]) -> list[float]:
        return [value for part, value in changes if part == "buzzer" and value]

    def heard(self, hz: float, what: str) -> list[tuple[str, float]]:
        """The changes up to a tone of `hz` having played and stopped."""
        seen: list[tuple[str, float]] = []

        def done() -> bool:
            seen.extend(self.step())
            buzzer = [value for part, value in seen if part == "buzzer"]
            return hz in buzzer and 0.0 in buzzer[buzzer.index(hz) :]

        wait_until(done, what, 20)
        return seen

    def led(self, name: str) -> float:
        return json.loads(self.sim.control("state"))["leds"][name]


@pytest.fixture
def rig(tmp_path, rig_logs):  # noqa: ANN001, ANN201
    kitd, sims, simulated = start_rig(tmp_path, rig_logs)
    kitd.wait_for_status("panel", "ready")
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    assert supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-001")]).json()["imported"] == 1
    yield kitd, sims, DaemonClient(kitd.url, kitd.sign_in("officer"))
    stop_rig(kitd, simulated)


def visit_now(officer: DaemonClient, visit: dict[str, Any]) -> dict[str, Any]:
    return officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> bool:
    # The start's answer also carries its pre-visit check, which the visit itself does not keep.
    strip = lambda v: {k: x for k, x in v.items() if k not in ("updated_at", "precheck")}  # noqa: E731
    return strip(before) == strip(after)


def test_an_enrollment_driven_by_the_panel(rig) -> None:  # noqa: ANN001
    kitd, sims, officer = rig
    panel, record = sims["panel"], PanelRecord(sims["panel"])
    wait_until(lambda: record.led("ready") == 1.0, "the ready LED", 20)
    record.step()

    visit = start_visit(officer)
    # In `identity` Capture/Next has no meaning yet (who is present is the screen's): the low
    # tone, and the visit is as it was.
    panel.control("tap capture")
    record.heard(LOW_HZ, "the low tone")
    assert unchanged(visit, visit_now(officer, visit))
    visit = act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    assert visit["current"] == "finger:1"
    # Retry with nothing taken yet: the low tone again, nothing changes.
    panel.control("tap retry")
    record.heard(LOW_HZ, "the low tone")
    assert unchanged(visit, visit_now(officer, visit))

    for n, item in enumerate(FINGERS):
        if n == 1:
            # A failing session: light presses only. Capture/Next keeps the best so far,
            # forced, with the long (low-pitched) tone.
            sims["fingerprint"].control("condition light")
            panel.control("tap capture")
            wait_until(
                lambda: items(visit_now(officer, visit))["finger:2"]["score"] is not None, "judged", 60
            )
            assert record.led("capturing") or "capturing" in dict(record.step())
            panel.control("tap capture")
            wait_until(
                lambda: items(visit_now(officer, visit))["finger:2"]["status"] == "forced", "forced", 60
            )
            changes = record.heard(LONG_HZ, "the long tone")
            assert BEEP_HZ not in record.tones(changes) and LOW_HZ not in record.tones(changes)
            sims["fingerprint"].control("condition good")
            continue
        panel.control("tap capture")
        wait_until(lambda item=item: items(visit_now(officer, visit))[item]["status"] == "captured", item, 60)
        seen = record.heard(BEEP_HZ, f"{item}: the short beep")
        # The amber LED came on for the session (at least CAPTURING_SHOWN_S, so it may still be
        # on at the beep) and goes off; one press, one session.
        assert ("capturing", 1.0) in seen, seen
        assert LOW_HZ not in record.tones(seen) and LONG_HZ not in record.tones(seen), seen
        assert wait_until(
            lambda: record.led("ready") == 1.0 and record.led("capturing") == 0.0, "ready again", 20
        )

    for item in IRISES:
        panel.control("tap capture")
        wait_until(lambda item=item: items(visit_now(officer, visit))[item]["status"] == "captured", item, 60)
        record.heard(BEEP_HZ, f"{item}: the short beep")

    panel.control("tap capture")  # the signature: the pad's simulator signs, the officer accepts
    wait_until(lambda: items(visit_now(officer, visit))["signature"]["passed"], "the signature passes", 60)
    panel.control("tap capture")
    visit = wait_until(
        lambda: (v := visit_now(officer, visit))["state"] == "review" and v, "every item done", 60
    )
    record.heard(BEEP_HZ, "signature: the short beep")
    done = items(visit)
    assert all(done[i]["status"] == "captured" for i in [*FINGERS, *IRISES, "signature"] if i != "finger:2")
    assert done["finger:2"]["status"] == "forced"
    # Every press bounced, and each acted once: one session per item.
    assert all(i["attempts"] == 1 for i in done.values()), {k: i["attempts"] for k, i in done.items()}

    # Cancel released before its hold time: the rising tone stops, nothing happens.
    panel.control("hold cancel 1.0")
    rising = record.tones(record.heard(440.0, "the rising tone, stopped"))
    assert len(rising) >= 3 and rising == sorted(rising) and rising[0] == 440.0, rising
    assert unchanged(visit, visit_now(officer, visit))
    # Held its 2 s: the visit is ending (its outcome is the screen's to give).
    panel.control("hold cancel 2.6")
    wait_until(lambda: visit_now(officer, visit)["state"] == "ending", "the visit ending", 20)
    assert kitd.devices()["panel"]["status"] == "ready"


def test_the_panel_vanishing_leaves_the_daemon_up_and_reports_it(rig) -> None:  # noqa: ANN001
    kitd, sims, officer = rig
    sims["panel"].stop()
    gone = kitd.wait_for_status("panel", "disconnected")
    assert gone["detail"]["status_reason"].startswith("panel at 127.0.0.1:"), gone
    status = kitd.client.checked("GET", "/api/v1/status").json()
    assert status["devices"]["disconnected"] == 1
    # The kit works from the screen alone meanwhile.
    visit = start_visit(officer)
    act(officer, visit, "identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    assert kitd.process is not None and kitd.process.poll() is None
    reply = kitd.client.request("POST", "/api/v1/devices/panel/capture", {})  # a technician
    assert (reply.status, reply.json()["error"]) == (400, "not_capturable")


def test_kitctl_devices_lists_the_panel_held_by_kitd_and_opened_when_free(rig) -> None:  # noqa: ANN001
    """A technician's `kitctl devices` lists the panel as the other devices: as the running
    daemon sees it, and, the daemon stopped, opened briefly on its pins."""
    kitd, sims, _ = rig
    env = {k: v for k, v in kitd.env.items() if k != "KITD_TOKEN"}  # on the kit: its socket

    def listed_panel() -> dict[str, Any]:
        listed = kitd.kitctl("devices", "--json", "--config", str(kitd.config_path), env=env)
        assert listed.returncode == 0, listed.stderr
        (panel,) = [e for e in json.loads(listed.stdout) if e["kind"] == "panel"]
        return panel

    held = listed_panel()
    assert (held["id"], held["status"], held["detail"]["held_by"]) == ("panel", "ready", "kitd")
    assert held["uri"] == f"gpio:socket:{sims['panel'].addresses['pins']}"
    table = kitd.kitctl("devices", "--config", str(kitd.config_path), env=env)
    assert table.returncode == 0 and any(
        line.split()[:3] == ["panel", "panel", "ready"] for line in table.stdout.splitlines()
    )
    kitd.stop()
    free = listed_panel()
    assert (free["id"], free["status"], free["uri"]) == ("panel", "ready", held["uri"])
    assert "held_by" not in free["detail"] and free["detail"]["pin_factory"] == held["detail"]["pin_factory"]
    sims["panel"].stop()
    gone = listed_panel()
    assert gone["status"] == "disconnected" and "panel" in gone["detail"]["reason"], gone
