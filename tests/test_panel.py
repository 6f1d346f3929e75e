"""The panel's logic: the pure rules, the driver on gpiozero's MockFactory, and the panel
service on the driver with a kit made of the real visit machine and an event hub."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hil.rig import wait_until
from kitd.drivers.panel import PanelDriver, PanelWiring
from kitd.events import EventHub
from kitd.services.panel import Panel
from kitd.services.panel_rules import TONES, PanelView, decide, leds, rising_tone, tone_for
from kitd.services.sessions import SessionNotFound
from kitd.services.visit_machine import Visit

WIRING = PanelWiring(hold_time_s=0.3, bounce_time_s=0.0)
NIP = "198001012005011002"


def capturing(**changes: Any) -> PanelView:
    base = {"visit_id": "v1", "state": "capturing", "current": "finger:1", "current_status": "pending"}
    return PanelView(**{**base, **changes})


# --- the rules ----------------------------------------------------------------------------


def test_capture_next_starts_the_pending_item_and_accepts_a_running_session() -> None:
    assert decide(capturing(), "capture", "pressed").action == "start"
    running = capturing(current_status="capturing", session_running=True, has_best=True)
    assert decide(running, "capture", "pressed").action == "accept"
    nothing_yet = capturing(current_status="capturing", session_running=True)
    decision = decide(nothing_yet, "capture", "pressed")
    assert (decision.action, decision.tone) == ("meaningless", "meaningless")
    assert decide(capturing(), "capture", "released").action == "none"


@pytest.mark.parametrize(
    ("view", "button"),
    [
        (PanelView(), "capture"),
        (PanelView(), "retry"),
        (PanelView(), "skip"),
        (PanelView(), "cancel"),
        (capturing(state="identity", current=None, current_status=None), "capture"),
        (capturing(state="review", current=None, current_status=None), "capture"),
        (capturing(state="review", current=None, current_status=None), "skip"),
        (capturing(state="ending", current=None, current_status=None), "cancel"),
        (capturing(), "retry"),
        (capturing(officer_present=False), "capture"),
        (capturing(officer_present=False), "cancel"),
    ],
)
def test_a_button_without_a_meaning_is_the_low_tone(view: PanelView, button: str) -> None:
    decision = decide(view, button, "pressed")
    assert (decision.action, decision.tone) == ("meaningless", "meaningless"), decision


def test_retry_skip_and_cancel() -> None:
    running = capturing(current_status="capturing", session_running=True)
    assert (decide(running, "retry", "pressed").action, decide(running, "retry", "pressed").item) == (
        "retry",
        "finger:1",
    )
    after = capturing(current="finger:2", last_done="finger:1")
    assert decide(after, "retry", "pressed").item == "finger:1"
    assert decide(running, "skip", "pressed").action == "exception_reasons"
    assert decide(running, "cancel", "pressed").action == "hold_cancel"
    assert decide(running, "cancel", "held").action == "cancel"
    assert decide(running, "cancel", "released").action == "quiet"


def test_leds_say_ready_capturing_judging_and_error() -> None:
    assert leds(PanelView()) == {"ready": "on", "capturing": "off", "error": "off"}
    running = capturing(current_status="capturing", session_running=True)
    assert leds(running) == {"ready": "off", "capturing": "on", "error": "off"}
    judging = capturing(current_status="capturing", session_running=True, judging=True)
    assert leds(judging)["capturing"] == "blink"
    assert leds(capturing(failed=True)) == {"ready": "off", "capturing": "off", "error": "on"}
    # A session started just now is shown capturing, even one already over.
    shown = capturing(current_status="captured", session_running=False, capture_shown=True)
    assert leds(shown) == {"ready": "off", "capturing": "on", "error": "off"}


def test_tones_for_the_kit_s_events() -> None:
    assert tone_for("end", {"outcome": "captured"}, True) == "good"
    assert tone_for("end", {"outcome": "forced"}, True) == "long"
    assert tone_for("end", {"outcome": "failed"}, True) == "long"
    assert tone_for("end", {"outcome": "captured"}, False) is None  # a technician's session
    assert tone_for("end", {"outcome": "confirmed"}, True) is None  # the accept that follows sounds
    assert tone_for("visit", {"change": "item_accepted", "status": "captured"}, False) == "good"
    assert tone_for("visit", {"change": "item_accepted", "status": "forced"}, False) == "long"
    assert tone_for("visit", {"change": "item_excepted"}, False) == "exception"
    assert tone_for("visit", {"change": "item_started"}, False) is None
    rising = rising_tone(2.0)
    assert rising[0][0] < rising[-1][0] and abs(sum(seconds for _, seconds in rising) - 2.0) < 1e-9


# --- the driver on MockFactory ------------------------------------------------------------


def mock_factory() -> MockFactory:
    # Never gpiozero's process-global default: a factory of this test's own, passed in.
    return MockFactory(pin_class=MockPWMPin)


def test_driver_reports_buttons_and_drives_leds_and_buzzer() -> None:
    factory = mock_factory()
    driver = PanelDriver(WIRING, lambda: factory)
    told: list[tuple[str, str]] = []
    driver.on_button = lambda name, what: told.append((name, what))
    facts = driver.open()
    try:
        assert facts.detail["buttons"]["capture"] == 5 and driver.is_present()
        factory.pin(5).drive_low()  # active low: pressed
        factory.pin(5).drive_high()
        factory.pin(19).drive_low()
        wait_until(lambda: ("cancel", "held") in told, "cancel held")
        factory.pin(19).drive_high()
        assert told == [
            ("capture", "pressed"),
            ("capture", "released"),
            ("cancel", "pressed"),
            ("cancel", "held"),
            ("cancel", "released"),
        ]
        driver.show({"ready": "on", "error": "on"})
        wait_until(lambda: factory.pin(17).state and factory.pin(22).state, "LEDs on")
        driver.play(TONES["good"])
        wait_until(lambda: factory.pin(18).frequency, "a tone")
        wait_until(lambda: not factory.pin(18).state, "silence after the beep")
    finally:
        driver.close()
    assert not driver.is_present()


# --- the service: the real visit machine, an event hub, a driver on MockFactory ------------


class FakeSession:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.error = None
        self.core = type("Core", (), {"ended": False, "best": []})()


class FakeKit:
    """What the panel needs of a kit: the visit machine behind the visit desk's actions."""

    def __init__(self) -> None:
        self.events = EventHub()
        self.visit = Visit.start("v1", "MJK-001", NIP, "lansia")
        self.visit.record_identity(["Sumiati"], "applicant")
        self.sessions_by_id: dict[str, FakeSession] = {}
        self.calls: list[tuple[str, str]] = []
        self.visits = self
        self.sessions = self
        self.signed_in = self
        self.present = True
        self.uses = 0

    # the visit desk
    def active(self) -> list[Visit]:
        return [self.visit] if self.visit.state not in ("finished", "ended") else []

    def _announce(self, change: str, item: str | None = None) -> None:
        data = {"visit": "v1", "change": change, "state": self.visit.state, "current": self.visit.current}
        if item is not None:
            data.update(item=item, status=self.visit.item(item).status)
        self.events.publish("visit", data)

    async def start_item(self, visit_id: str, item: str, retry: bool = False, actor: str = "") -> Visit:
        self.calls.append(("retry" if retry else "start", item))
        session = f"s{len(self.calls)}"
        self.sessions_by_id[session] = FakeSession()
        (self.visit.retry_item if retry else self.visit.start_item)(item, session)
        self._announce("item_retried" if retry else "item_started", item)
        return self.visit

    async def accept_item(self, visit_id: str, item: str, actor: str = "") -> Visit:
        self.calls.append(("accept", item))
        self.visit.accept_item(item)
        self._announce("item_accepted", item)
        return self.visit

    async def cancel(self, visit_id: str, actor: str = "") -> Visit:
        self.calls.append(("cancel", ""))
        self.visit.cancel()
        self._announce("ending")
        return self.visit

    # the sessions
    def get(self, session_id: str) -> FakeSession:
        if session_id not in self.sessions_by_id:
            raise SessionNotFound(session_id)
        return self.sessions_by_id[session_id]

    # the sign-ins
    def is_signed_in(self, nip: str) -> bool:
        return self.present and nip == NIP

    def use(self, nip: str) -> None:
        self.uses += 1


async def run_panel(test: Callable[[FakeKit, Panel, MockFactory], Any]) -> None:
    kit = FakeKit()
    kit.events.bind(asyncio.get_running_loop())
    factory = mock_factory()
    driver = PanelDriver(PanelWiring(hold_time_s=0.3, bounce_time_s=0.0), lambda: factory)
    driver.open()
    panel = Panel(kit, driver)  # type: ignore[arg-type]
    task = asyncio.create_task(panel.run())
    try:
        await asyncio.sleep(0.05)
        await test(kit, panel, factory)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        driver.close()


async def settle(condition: Callable[[], Any], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.01)


def tap(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def test_panel_drives_a_visit_from_button_presses() -> None:
    async def scenario(kit: FakeKit, panel: Panel, factory: MockFactory) -> None:
        events = kit.events.open(after=0)
        led = {name: factory.pin(pin) for name, pin in WIRING.leds.items()}
        await settle(lambda: led["ready"].state, "ready LED")
        tap(factory, 5)  # Capture/Next between items: the first finger starts
        await settle(lambda: kit.calls == [("start", "finger:1")], "finger:1 started")
        await settle(lambda: led["capturing"].state and not led["ready"].state, "amber on, green off")
        tap(factory, 5)  # nothing judged yet: nothing to keep, the low tone
        await settle(lambda: factory.pin(18).frequency == pytest.approx(220.0, rel=0.01), "low tone")
        assert kit.calls == [("start", "finger:1")]
        # The session judged a press that failed: Capture/Next keeps it, forced, the long tone.
        kit.visit.session_best("finger:1", "s1", 30.0, False, ["press_harder"], ["coverage"], final=False)
        kit.sessions_by_id["s1"].core.best = [object()]
        kit.events.publish("assessment", {"session": "s1", "frame": 1, "score": 30.0, "passed": False})
        tap(factory, 5)
        await settle(lambda: kit.calls[-1] == ("accept", "finger:1"), "accepted")
        assert kit.visit.item("finger:1").status == "forced"
        await settle(lambda: factory.pin(18).state and factory.pin(18).frequency == 660.0, "the long tone")
        tap(factory, 6)  # Retry between items: the item just taken, again
        await settle(lambda: kit.calls[-1] == ("retry", "finger:1"), "retried")
        kinds = []
        while (event := await asyncio.wait_for(events.get(), 1)) is not None and len(kinds) < 50:
            kinds.append((event.type, event.data.get("action"), event.data.get("outcome")))
            if event.type == "panel" and event.data["action"] == "retry":
                break
        assert ("panel", "meaningless", "meaningless") in kinds and ("panel", "accept", "done") in kinds
        events.close()

    asyncio.run(run_panel(scenario))


def test_another_orders_visit_ended_at_the_door_leaves_the_running_ones_state() -> None:
    async def scenario(kit: FakeKit, panel: Panel, factory: MockFactory) -> None:
        led = {name: factory.pin(pin) for name, pin in WIRING.leds.items()}
        await settle(lambda: led["ready"].state, "ready LED")
        await kit.start_item("v1", "finger:1")
        kit.visit.session_best("finger:1", "s1", 30.0, False, ["press_harder"], ["coverage"], final=False)
        await kit.accept_item("v1", "finger:1")
        await settle(lambda: panel._last_done == "finger:1", "finger:1 the item just done")
        # Nobody home next door, said on the screen meanwhile: that visit starts and ends at once.
        kit.events.publish("visit", {"visit": "v2", "change": "ended", "state": "ended", "current": None})
        await asyncio.sleep(0.2)
        tap(factory, 6)  # Retry between items: still the item just taken here
        await settle(lambda: kit.calls[-1] == ("retry", "finger:1"), "finger:1 retried")

    asyncio.run(run_panel(scenario))


def test_a_capture_over_before_the_panel_follows_still_shows_amber() -> None:
    # A CI run on a busy machine: the panel read the item's start after its session had
    # ended, and amber never lit. It is shown CAPTURING_SHOWN_S all the same, then green.
    async def scenario(kit: FakeKit, panel: Panel, factory: MockFactory) -> None:
        led = {name: factory.pin(pin) for name, pin in WIRING.leds.items()}
        await settle(lambda: led["ready"].state, "ready LED")
        await kit.start_item("v1", "finger:1")  # from the screen
        kit.sessions_by_id["s1"].core.ended = True  # over before the panel reads the start
        await settle(lambda: led["capturing"].state and not led["ready"].state, "amber shown")
        await settle(lambda: led["ready"].state and not led["capturing"].state, "then ready again")

    asyncio.run(run_panel(scenario))


def test_cancel_held_ends_the_visit_and_released_early_does_nothing() -> None:
    async def scenario(kit: FakeKit, panel: Panel, factory: MockFactory) -> None:
        factory.pin(19).drive_low()
        await asyncio.sleep(0.1)  # under the 0.3 s hold
        factory.pin(19).drive_high()
        await asyncio.sleep(0.5)
        assert kit.calls == [] and kit.visit.state == "capturing"
        factory.pin(19).drive_low()
        await settle(lambda: kit.calls == [("cancel", "")], "cancelled once held")
        factory.pin(19).drive_high()
        assert kit.visit.state == "ending"

    asyncio.run(run_panel(scenario))


def test_skip_asks_the_screen_and_nothing_acts_without_the_officer() -> None:
    async def scenario(kit: FakeKit, panel: Panel, factory: MockFactory) -> None:
        events = kit.events.open(after=0)
        tap(factory, 13)
        event = await asyncio.wait_for(events.get(), 5)
        assert event is not None and event.type == "panel"
        assert (event.data["action"], event.data["item"]) == ("exception_reasons", "finger:1")
        kit.present = False
        tap(factory, 5)
        event = await asyncio.wait_for(events.get(), 5)
        assert event is not None and event.data["outcome"] == "meaningless"
        assert "not signed in" in event.data["message"] and kit.calls == []
        events.close()

    asyncio.run(run_panel(scenario))
