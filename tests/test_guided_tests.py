"""The guided tests in the daemon, without a daemon: the desk (kitd.services.guided_desk) with the
panel service on gpiozero's MockFactory, and with a made-up pad fed the pen paths the pad
simulator plays (hil.pen_strokes); the state checked against the API's schemas, the finding
as it is stored, and the events."""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from hil.pen_strokes import corner_taps, diagonal, stroke
from kitd.capture.pad_geometry import CORNER_ZONE, CORNERS, LINEARITY_LIMIT, in_corner, line_fit
from kitd.drivers.isdv4 import PenPacket, PenSample
from kitd.drivers.panel import PanelDriver
from kitd.errors import DeviceGone
from kitd.events import EventHub
from kitd.schemas import check
from kitd.services.guided import GuidedRefused
from kitd.services.guided_desk import GuidedDesk
from kitd.services.panel import Panel
from tests.test_panel import WIRING, mock_factory, tap

MAX_X, MAX_Y = 9600, 6000
LED_PINS = {"ready": 17, "capturing": 27, "error": 22}


class FakeSlot:
    """A device slot as the desk and the tests see it: a status, and jobs on a thread."""

    def __init__(self, device_id: str, kind: str, driver: Any = None) -> None:
        self.id, self.kind, self.driver = device_id, kind, driver
        self.status = "ready"
        self.detail = {"max_x": MAX_X, "max_y": MAX_Y, "max_pressure": 1023, "points_per_mm": 100}
        self.jobs = 0

    def current(self) -> tuple[str, str, float]:
        return self.status, "opened" if self.status == "ready" else "gone", 0.0

    async def run_job(self, job: Callable[[Any, threading.Event], Any], **_how: Any) -> Any:
        self.jobs += 1
        self.status = "busy"
        cancel = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(None, job, self.driver, cancel)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.wait([future])
            raise
        finally:
            if self.status == "busy":
                self.status = "ready"


class FakePad:
    """A pad whose packets the test hands it, a few per read as a serial port delivers them."""

    def __init__(self) -> None:
        self.reads: queue.Queue[list[PenSample]] = queue.Queue()
        self.started = self.stopped = 0
        self.fail: Exception | None = None

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def read_samples(self, timeout_s: float = 0.05) -> list[PenSample]:
        if self.fail is not None:
            raise self.fail
        try:
            return self.reads.get(timeout=timeout_s)
        except queue.Empty:
            return []

    def feed(self, states: list[PenPacket], per_read: int = 6) -> None:
        for at in range(0, len(states), per_read):
            self.reads.put([PenSample(time.monotonic(), s) for s in states[at : at + per_read]])


class GuidedKit:
    """What the desk and the panel service need of a kit; the database records what it is given."""

    def __init__(self) -> None:
        self.events = EventHub()
        self.visits = self
        self.sessions = self
        self.signed_in = self
        self.active_visits: list[Any] = []
        self.slots: dict[str, Any] = {}
        self.panel: Panel | None = None
        self.clock = SimpleNamespace(now=lambda: dt.datetime.now(dt.UTC))
        self.config = SimpleNamespace(kit_id="KIT-TEST")
        self.database = None
        self.recorded: list[tuple[dict[str, Any], str]] = []

    def active(self) -> list[Any]:
        return self.active_visits

    def is_signed_in(self, nip: str) -> bool:
        return False

    async def in_database(self, job: Callable[..., Any], *args: Any) -> Any:
        assert job.__name__ == "record_run"
        _conn, run, actor = args
        self.recorded.append((run, actor))


async def settle(condition: Callable[[], Any], what: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.01)
    return value


def drain(subscription: Any) -> list[Any]:
    """Every event the subscription holds now."""
    found = []
    while True:
        try:
            event = subscription._queue.get_nowait()
        except asyncio.QueueEmpty:
            return found
        if event is not None:
            found.append(event)


# --- the pen paths the simulator plays, against the daemon's measures -----------------------


def test_the_simulators_pen_paths_meet_and_fail_the_measures_as_meant() -> None:
    taps = corner_taps(MAX_X, MAX_Y)
    down = [(s.x, s.y) for s in taps if s.tip]
    for corner in CORNERS:
        assert any(in_corner(x, y, corner, MAX_X, MAX_Y) for x, y in down), corner
    assert taps[-1].proximity is False and taps[-2].tip is False  # lifted, then gone
    straight = [(s.x, s.y) for s in diagonal(MAX_X, MAX_Y) if s.tip]
    assert line_fit(straight).linearity < 0.005
    bent = [(s.x, s.y) for s in diagonal(MAX_X, MAX_Y, wobble=0.05) if s.tip]
    assert line_fit(bent).linearity > LINEARITY_LIMIT
    # At about 80 mm/s and 130 packets a second: a diagonal of about 90 mm in about a second.
    assert 120 < len(straight) < 180


# --- the panel test ----------------------------------------------------------------------------


async def with_panel(scenario: Callable[[GuidedKit, GuidedDesk, Any, Panel], Any], **desk: Any) -> None:
    kit = GuidedKit()
    kit.events.bind(asyncio.get_running_loop())
    factory = mock_factory()
    driver = PanelDriver(WIRING, lambda: factory)
    driver.open()
    panel = Panel(kit, driver)  # type: ignore[arg-type]
    kit.panel = panel
    kit.slots["panel"] = FakeSlot("panel", "panel", driver)
    task = asyncio.create_task(panel.run())
    try:
        await asyncio.sleep(0.05)
        await scenario(kit, GuidedDesk(kit, **desk), factory, panel)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        driver.close()


def lit(factory: Any) -> set[str]:
    return {name for name, pin in LED_PINS.items() if factory.pin(pin).state}


def test_the_panel_test_reads_each_button_and_an_led_answered_no_fails_it() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, factory: Any, panel: Panel) -> None:
        events = kit.events.open()
        test = desk.start("panel", "tech")
        check("GuidedTest", test.to_json())
        assert [s.id for s in test.steps] == [
            "press_capture",
            "press_retry",
            "press_skip",
            "press_cancel",
            "led_ready",
            "led_capturing",
            "led_error",
            "buzzer",
        ]
        assert test.to_json()["current"] == "press_capture" and panel.diverted
        assert test.step("led_ready").prompt.id.startswith("Apakah lampu Siap (hijau) menyala")
        await settle(lambda: lit(factory) == set(), "every LED off while buttons are pressed")
        tap(factory, 6)  # Retry while Capture/Next is asked for: noted, the low tone, still waiting
        await settle(lambda: test.step("press_capture").values.get("other_presses") == ["retry"], "noted")
        assert test.current == "press_capture"
        for pin, step in ((5, "press_retry"), (6, "press_skip"), (13, "press_cancel"), (19, "led_ready")):
            tap(factory, pin)
            await settle(lambda step=step: test.current == step, step)
        assert all(test.step(f"press_{b}").status == "done" for b in ("capture", "retry", "skip", "cancel"))
        await settle(lambda: lit(factory) == {"ready"}, "the ready LED alone")
        with pytest.raises(GuidedRefused) as wrong:
            await desk.confirm(test.id, "led_error", True)
        assert (wrong.value.status, wrong.value.code) == (409, "wrong_step")
        assert "the test is at led_ready (confirm)" in str(wrong.value)
        answered = await desk.confirm(test.id, "led_ready", True)
        assert answered.current == "led_capturing" and answered.step("led_ready").status == "done"
        await settle(lambda: lit(factory) == {"capturing"}, "the capturing LED alone")
        await desk.confirm(test.id, "led_capturing", True)
        await settle(lambda: lit(factory) == {"error"}, "the error LED alone")
        ended = await desk.confirm(test.id, "led_error", False)

        assert ended.state == "failed" and ended.current is None
        assert ended.step("led_error").status == "failed" and ended.step("buzzer").status == "skipped"
        found = ended.finding
        assert found is not None and found["id"] == "panel.guided" and found["status"] == "failed"
        assert found["message"]["en"] == (
            "The error (red) LED does not light: check its wiring; if it stays dark, replace the panel's LED."
        )
        assert found["message"]["id"].startswith("Lampu Galat (merah) tidak menyala")
        assert found["values"]["other_presses"] == {"capture": ["retry"]}
        check("GuidedTest", ended.to_json())
        # Stored as a run of one check, by who started it; the run named in the test.
        [(run, actor)] = kit.recorded
        assert actor == "tech" and run["quick"] is False and run["status"] == "failed"
        assert run["checks"] == [found] and run["guided_id"] == test.id and ended.run_id == run["run_id"]
        check("DiagnosticsRun", run)
        # The panel is the kit's again: its LEDs say what it does, its buttons act on visits.
        assert not panel.diverted
        await settle(lambda: lit(factory) == {"ready"}, "the ready LED as the kit shows it")
        seen = drain(events)
        assert {e.type for e in seen} == {"guided"}, "no button acted on a visit while the test ran"
        assert seen[-1].data["finding"] == found and seen[-1].data["run_id"] == run["run_id"]
        for event in seen:
            check("GuidedEvent", event.data)
        tap(factory, 5)
        after = await settle(lambda: drain(events), "the press acting for the kit again")
        assert after[0].type == "panel" and after[0].data["action"] == "meaningless"
        with pytest.raises(GuidedRefused) as ended_already:
            await desk.confirm(test.id, "buzzer", True)
        assert ended_already.value.code == "not_running"
        events.close()

    asyncio.run(with_panel(scenario))


def test_the_panel_test_passes_with_every_step_confirmed_and_the_buzzer_heard() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, factory: Any, panel: Panel) -> None:
        test = desk.start("panel", "tech")
        for pin in (5, 6, 13, 19):
            tap(factory, pin)
            await asyncio.sleep(0.05)
        for led in ("ready", "capturing", "error"):
            await settle(lambda led=led: test.current == f"led_{led}", led)
            await desk.confirm(test.id, f"led_{led}", True)
        assert test.current == "buzzer"
        await settle(lambda: lit(factory) == set(), "every LED off for the buzzer")
        await settle(lambda: factory.pin(18).frequency, "the buzzer sounding")
        ended = await desk.confirm(test.id, "buzzer", True)
        assert ended.state == "passed" and ended.finding is not None
        assert ended.finding["status"] == "ok" and ended.finding["message"] is None
        assert ended.finding["values"]["buzzer"] is True
        assert all(s.status == "done" for s in ended.steps)
        await settle(lambda: not factory.pin(18).state, "the buzzer silent again")

    asyncio.run(with_panel(scenario))


def test_a_button_never_read_fails_the_panel_test_when_its_time_is_up() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, factory: Any, panel: Panel) -> None:
        test = desk.start("panel", "tech")
        tap(factory, 5)
        await settle(lambda: test.current == "press_retry", "retry asked for")
        ended = await settle(lambda: test.state != "running" and test, "the time limit", 5)
        assert ended.state == "timed_out" and ended.step("press_retry").status == "failed"
        assert ended.finding["status"] == "failed"
        assert ended.finding["message"]["en"].startswith("The Retry button was never read: check its wiring")
        await settle(lambda: kit.recorded, "stored")
        assert not panel.diverted

    asyncio.run(with_panel(scenario, time_limit_s=1.0))


# --- the pad test --------------------------------------------------------------------------------


async def with_pad(scenario: Callable[[GuidedKit, GuidedDesk, FakePad, FakeSlot], Any], **desk: Any) -> None:
    kit = GuidedKit()
    kit.events.bind(asyncio.get_running_loop())
    pad = FakePad()
    slot = FakeSlot("signature", "signature", pad)
    kit.slots["signature"] = slot
    await scenario(kit, GuidedDesk(kit, **desk), pad, slot)  # type: ignore[arg-type]


async def ended(test: Any) -> Any:
    return await settle(lambda: test.state != "running" and test.run_id and test, "the test's end")


def test_the_pad_test_passes_corners_and_a_ruler_line_and_keeps_the_pen_live_only() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, pad: FakePad, slot: FakeSlot) -> None:
        events = kit.events.open()
        test = desk.start("pad", "tech")
        assert [s.id for s in test.steps] == [
            "corner_top_left",
            "corner_top_right",
            "corner_bottom_right",
            "corner_bottom_left",
            "line",
        ]
        assert test.step("corner_top_left").values["zone"] == {
            "x_min": 0,
            "x_max": 960,
            "y_min": 0,
            "y_max": 600,
        }
        await settle(lambda: slot.status == "busy" and pad.started, "the pad the test's")
        # The pen resting in the middle first: neither a corner nor an attempt at one.
        pad.feed(stroke([(4800, 3000), (5000, 3100)]))
        pad.feed(corner_taps(MAX_X, MAX_Y))
        await settle(lambda: test.current == "line", "every corner touched")
        assert "misses" not in test.step("corner_top_left").values
        pad.feed(stroke([(3000, 3000), (3500, 3300)]))  # a tick, not the line
        pad.feed(diagonal(MAX_X, MAX_Y))
        done = await ended(test)
        assert done.state == "passed" and done.finding["status"] == "ok"
        values = done.finding["values"]
        assert values["coverage"] > 0.85 and values["line"]["linearity"] < LINEARITY_LIMIT
        assert values["touches"]["top_left"] == [288, 180] and values["line"]["length_mm"] > 80
        assert done.step("line").values["short_strokes"] == 1
        await settle(lambda: slot.status == "ready", "the pad freed")
        assert pad.stopped == 1
        seen = drain(events)
        inked = [e for e in seen if "ink" in e.data]
        assert inked and sum(len(e.data["ink"]["points"]) for e in inked) > 200
        check("GuidedEvent", inked[0].data)
        # The pen's points went to whoever watched; a client reconnecting gets none of them.
        replayed = drain(kit.events.open(after=0))
        assert replayed and all("ink" not in e.data for e in replayed)
        assert replayed[-1].data["state"] == "passed"

    asyncio.run(with_pad(scenario))


def test_a_wobbly_line_fails_the_pad_test_on_its_linearity() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, pad: FakePad, slot: FakeSlot) -> None:
        test = desk.start("pad", "tech")
        pad.feed(corner_taps(MAX_X, MAX_Y) + diagonal(MAX_X, MAX_Y, wobble=0.05))
        done = await ended(test)
        assert done.state == "failed" and done.step("line").status == "failed"
        message = done.finding["message"]["en"]
        assert message.startswith("The line is not straight: it strays") and "(at most 3%)" in message
        assert "replace the signature pad" in message
        said = done.finding["message"]["id"]
        assert said.startswith("Garis tidak lurus: menyimpang")
        linearity = done.finding["values"]["line"]["linearity"]
        assert linearity > LINEARITY_LIMIT
        # A decimal comma, as the screen beside it writes its own numbers (id-ID): 12.5 would
        # read as twelve thousand five hundred.
        assert f"menyimpang {100 * linearity:.1f}%".replace(".", ",") in said, said

    asyncio.run(with_pad(scenario))


def test_a_corner_the_pen_cannot_reach_fails_after_three_misses() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, pad: FakePad, slot: FakeSlot) -> None:
        test = desk.start("pad", "tech")
        # A dead top-left area: the pad registers the pen no nearer than 20% in.
        near = (0.2 * MAX_X, 0.2 * MAX_Y)
        for _ in range(3):
            pad.feed(stroke([(near[0] + 300, near[1] + 200), near]))
        done = await ended(test)
        step = done.step("corner_top_left")
        assert done.state == "failed" and step.status == "failed" and step.values["misses"] == 3
        assert step.values["nearest"]["mm"] == pytest.approx(22.6, abs=0.1)
        assert done.finding["message"]["en"] == (
            "The pad's top-left corner does not register the pen (the nearest point 23 mm from it): "
            "that part of the digitiser is damaged; replace the signature pad."
        )
        assert done.finding["values"]["coverage"] is None  # the other corners were never tried
        assert all(s.status == "skipped" for s in done.steps[1:])
        assert CORNER_ZONE < 0.2

    asyncio.run(with_pad(scenario))


def test_a_pad_unplugged_mid_test_fails_the_step_it_was_at() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, pad: FakePad, slot: FakeSlot) -> None:
        test = desk.start("pad", "tech")
        pad.feed(corner_taps(MAX_X, MAX_Y)[:34])  # the first two corners' taps
        await settle(lambda: test.current == "corner_bottom_right", "two corners")
        pad.fail = DeviceGone("port unplugged")
        done = await ended(test)
        assert done.state == "failed" and done.step("corner_bottom_right").status == "failed"
        assert done.finding["message"]["en"].startswith(
            "The signature pad stopped in the middle of the test (DeviceGone: port unplugged)"
        )

    asyncio.run(with_pad(scenario))


def test_one_guided_test_at_a_time_none_during_a_visit_and_cancel_frees_the_pad() -> None:
    async def scenario(kit: GuidedKit, desk: GuidedDesk, pad: FakePad, slot: FakeSlot) -> None:
        kit.active_visits = [SimpleNamespace(id="v1")]
        with pytest.raises(GuidedRefused) as visiting:
            desk.start("pad", "tech")
        assert (visiting.value.status, visiting.value.code) == (409, "visit_active")
        kit.active_visits = []
        with pytest.raises(GuidedRefused) as no_panel:
            desk.start("panel", "tech")
        assert (no_panel.value.status, no_panel.value.code) == (409, "no_device")
        slot.status = "disconnected"
        with pytest.raises(GuidedRefused) as away:
            desk.start("pad", "tech")
        assert (away.value.status, away.value.code) == (503, "device_not_ready")
        slot.status = "ready"

        test = desk.start("pad", "tech")
        with pytest.raises(GuidedRefused) as second:
            desk.start("pad", "tech")
        assert (second.value.status, second.value.code) == (409, "guided_test_running")
        held = desk.holding()
        assert held is not None and held["id"] == "signature.guided" and held["status"] == "failed"
        assert "wait for it to end or cancel it, then start the visit" in held["message"]["en"]
        await settle(lambda: slot.status == "busy", "the pad the test's")
        cancelled = await desk.cancel(test.id)
        assert cancelled.state == "cancelled" and cancelled.finding["status"] == "warning"
        assert cancelled.finding["message"]["en"].startswith(
            "The guided test was cancelled before it finished"
        )
        assert all(s.status == "skipped" for s in cancelled.steps)
        assert slot.status == "ready" and pad.stopped == 1 and desk.holding() is None
        assert kit.recorded[-1][0]["checks"][0]["id"] == "signature.guided"
        with pytest.raises(GuidedRefused) as again:
            await desk.cancel(test.id)
        assert (again.value.status, again.value.code) == (409, "not_running")
        with pytest.raises(GuidedRefused) as unknown:
            desk.get("nope")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_guided_test")
        assert desk.get(test.id) is test

    asyncio.run(with_pad(scenario))
