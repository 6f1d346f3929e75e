"""The panel as a client of the kit's state, like the touch screen.

Its one job: :class:`Panel` follows the kit's events (the visit's changes, the sessions'
assessments and ends), keeps the LEDs saying what the kit is doing and sounds the buzzer
for what happened, and turns button presses into the same visit actions the API calls
(kitd.services.visits), deciding with the pure rules of kitd.services.panel_rules. Every
button change that meant something, or nothing, is published as a `panel` event, so that
the screen can show what a button did (Skip asks it to open the exception reasons: a
reason and its confirmation need the screen).

The panel acts only while the visit's officer is signed in (a kit left alone does not
capture for whoever picks it up); a press that acts counts as a use of their sign-in.

A guided test of the panel (kitd.services.guided_panel) takes it over with :meth:`Panel.divert`:
until :meth:`Panel.restore`, button changes go to the test instead of the visit, and the LEDs
and the buzzer are the test's to drive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from kitd.drivers.panel import PanelDriver
from kitd.errors import KitError
from kitd.events import Event, EventHub
from kitd.services.panel_rules import TONES, Decision, PanelView, decide, leds, rising_tone, tone_for
from kitd.services.sessions import LiveSessions, SessionNotFound
from kitd.services.sign_in import SignedInOfficers
from kitd.services.visits import VisitDesk

log = logging.getLogger("kitd.panel")

# The amber LED blinks while judged presses or frames came within this long.
JUDGING_S = 1.0
# A capture that ends at once (a good finger on a quick reader, or the panel following the
# kit's events late on a busy kit) still shows amber this long: a shorter flash is not seen.
CAPTURING_SHOWN_S = 0.4


class _Lately:
    """Something the LEDs show for a while after it happened (judging, a capture started): true
    until `seconds` after the last :meth:`happened`, when the panel renders again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def happened(self, loop: asyncio.AbstractEventLoop | None, render: Callable[[], None]) -> None:
        self._until = time.monotonic() + self.seconds
        self.cancel()
        if loop is not None:
            self._timer = loop.call_later(self.seconds + 0.05, render)

    def __bool__(self) -> bool:
        return time.monotonic() < self._until

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class PanelContext(Protocol):
    """What the panel needs of its kit (kitd.kit.Kit)."""

    events: EventHub
    visits: VisitDesk
    sessions: LiveSessions
    signed_in: SignedInOfficers


class Panel:
    """One kit's panel: its driver's buttons in, its LEDs and buzzer out."""

    def __init__(self, kit: PanelContext, driver: PanelDriver, device_id: str = "panel") -> None:
        self.kit = kit
        self.driver = driver
        self.device_id = device_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._presses: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._judging = _Lately(JUDGING_S)
        self._capturing = _Lately(CAPTURING_SHOWN_S)
        self._failed = False
        self._last_done: str | None = None
        self._visit_sessions: set[str] = set()
        # While a guided test owns the panel: where button changes go instead of the visit.
        self._diverted: Callable[[str, str], None] | None = None

    # --- a guided test's -------------------------------------------------------------------

    def divert(self, to: Callable[[str, str], None]) -> None:
        """Hand every button change to ``to(button, what)`` (on the event loop) instead of the
        visit, and leave the LEDs and the buzzer alone, until :meth:`restore`."""
        self._diverted = to

    def restore(self) -> None:
        """The panel follows the kit again: the buzzer silent, the LEDs saying what it does."""
        self._diverted = None
        self.driver.play(())
        self.render()

    @property
    def diverted(self) -> bool:
        return self._diverted is not None

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the events and the buttons until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.driver.on_button = self._told
        subscription = self.kit.events.open()
        presses = asyncio.create_task(self._take_presses(), name="panel-buttons")
        self.render()
        try:
            while True:
                event = await subscription.get()
                if event is None:  # dropped for falling behind, or the hub closed
                    subscription.close()
                    subscription = self.kit.events.open()
                    continue
                try:
                    self.on_event(event)
                except Exception:  # noqa: BLE001 - one odd event must not leave the panel deaf
                    log.exception("panel: following event %s %s failed", event.id, event.type)
        finally:
            self.driver.on_button = None
            subscription.close()
            presses.cancel()
            self._judging.cancel()
            self._capturing.cancel()

    def _told(self, button: str, what: str) -> None:
        """From gpiozero's threads: hand the change to the event loop, in order."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._presses.put_nowait, (button, what))
        except RuntimeError:  # the loop closed meanwhile (the daemon is stopping): nobody to tell
            pass

    async def _take_presses(self) -> None:
        while True:
            button, what = await self._presses.get()
            try:
                if self._diverted is not None:
                    self._diverted(button, what)
                    continue
                await self.press(button, what)
            except Exception:  # noqa: BLE001 - a bug in one press must not deafen the panel
                log.exception("panel button %s %s failed", button, what)

    # --- what the kit is doing -----------------------------------------------------------

    def view(self) -> PanelView:
        """A snapshot of the active visit and its current item's session."""
        active = self.kit.visits.active()
        if not active:
            return PanelView(failed=self._failed)
        visit = active[0]
        item = visit.item(visit.current) if visit.current else None
        running = has_best = False
        for record in visit.items:
            if record.session_id:
                self._visit_sessions.add(record.session_id)
        if item is not None:
            has_best = item.score is not None
            if item.session_id:
                try:
                    live = self.kit.sessions.get(item.session_id)
                except SessionNotFound:
                    live = None
                if live is not None:
                    with live.lock:
                        running = not (live.core.ended or live.error)
                        has_best = has_best or bool(live.core.best)
        return PanelView(
            visit_id=visit.id,
            state=visit.state,
            current=visit.current,
            current_status=None if item is None else item.status,
            session_running=running,
            has_best=has_best,
            last_done=self._last_done,
            judging=bool(self._judging),
            capture_shown=bool(self._capturing),
            failed=self._failed,
            officer_present=self._officer_present(visit.officer),
        )

    def _officer_present(self, nip: str) -> bool:
        return self.kit.signed_in.is_signed_in(nip)

    def render(self) -> None:
        if self._diverted is None:  # a guided test's LEDs are its own
            self.driver.show(leds(self.view()))

    def sound(self, tone: str) -> None:
        if self._diverted is None:
            self.driver.play(TONES[tone])

    def on_event(self, event: Event) -> None:
        """One event of the kit's: LEDs follow, the buzzer says what happened."""
        data = event.data
        if event.type == "assessment":
            view = self.view()
            if data.get("session") in self._current_sessions(view):
                self._judging.happened(self._loop, self.render)
            else:
                return
        elif event.type == "end":
            session = data.get("session")
            if data.get("outcome") == "failed" and session in self._visit_sessions:
                self._failed = True
            tone = tone_for("end", data, session in self._visit_sessions)
            if tone:
                self.sound(tone)
        elif event.type == "visit":
            self._visit_changed(data)
        elif event.type != "device" or data.get("device") != self.device_id:
            return  # another device's change, or the panel's own events
        self.render()  # after a reconnect the LEDs are shown again

    def _current_sessions(self, view: PanelView) -> set[str]:
        active = self.kit.visits.active()
        if not active or view.current is None:
            return set()
        session_id = active[0].item(view.current).session_id
        return {session_id} if session_id else set()

    def _visit_changed(self, data: dict[str, Any]) -> None:
        active = self.kit.visits.active()
        if active and data.get("visit") != active[0].id:
            return  # another order's visit ended at the door: the running one's state stands
        change, status = data.get("change"), data.get("status")
        fresh = ("item_started", "item_retried", "started", "resumed", "identity", "ending", "carried_on")
        if change in fresh:
            self._failed = False
        if change in ("item_started", "item_retried"):
            self._last_done = None
            self._capturing.happened(self._loop, self.render)
        if change in ("item_accepted", "item_session_ended") and status in ("captured", "forced"):
            self._last_done = data.get("item")
        if change in ("item_excepted", "ending") or data.get("state") in ("finished", "ended"):
            self._last_done = None
        if data.get("state") in ("finished", "ended"):
            self._visit_sessions.clear()
            self._failed = False
        tone = tone_for("visit", data, False)
        if tone:
            self.sound(tone)

    # --- what a button does ----------------------------------------------------------------

    async def press(self, button: str, what: str) -> Decision:
        """Decide what `button` going `what` means now, and do it."""
        view = self.view()
        decision = decide(view, button, what)
        if decision.action == "none":
            return decision
        outcome, message = "done", decision.why
        try:
            await self._do(view, decision)
        except KitError as exc:
            outcome, message = "failed", str(exc)
            self._failed = True
            self.sound("long")
            log.warning("panel %s: %s failed: %s", button, decision.action, exc, extra={"button": button})
        if decision.action == "meaningless":
            outcome = "meaningless"
        if decision.action not in ("quiet", "hold_cancel") or outcome != "done":
            self.kit.events.publish(
                "panel",
                {
                    "button": button,
                    "action": decision.action,
                    "outcome": outcome,
                    "visit": view.visit_id,
                    "item": decision.item,
                    "message": message,
                },
            )
        self.render()
        return decision

    async def _do(self, view: PanelView, decision: Decision) -> None:
        visits, action = self.kit.visits, decision.action
        if decision.tone:
            self.sound(decision.tone)
        if view.visit_id is None or action in ("meaningless", "none"):
            return
        if action == "hold_cancel":
            self.driver.play(rising_tone(self.driver.wiring.hold_time_s))
            return
        if action == "quiet":
            self.sound("quiet")
            return
        if action == "exception_reasons":
            self._use_sign_in()
            return  # the event published for it is what the screen follows
        actor = self._use_sign_in()
        if action == "accept":
            await visits.accept_item(view.visit_id, decision.item or "", actor=actor)
        elif action == "start":
            await visits.start_item(view.visit_id, decision.item or "", actor=actor)
        elif action == "retry":
            await visits.start_item(view.visit_id, decision.item or "", retry=True, actor=actor)
        elif action == "cancel":
            self.sound("quiet")
            await visits.cancel(view.visit_id, actor=actor)

    def _use_sign_in(self) -> str:
        """The visit's officer, whose sign-in this press uses (their idle time restarts)."""
        visit = self.kit.visits.active()[0]
        self.kit.signed_in.use(visit.officer)
        return visit.officer
