"""What the panel's buttons mean and what its LEDs and buzzer say: pure functions, no I/O.

`decide(view, button, what)` turns a snapshot of the visit (`PanelView`) and a button's
change into one `Decision`: the visit action to call (the same ones the API calls) and
the tone to give at once. `leds(view)` is what the three LEDs show for a view;
`tone_for(event)` is the tone an event of the kit's own earns (a capture, a failure, an
exception), whoever caused it: the panel, the touch screen or a session by itself.
kitd.services.panel runs them against the kit; tests run them on made-up views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One note: a frequency in Hz (None: silence) for so many seconds.
Note = tuple[float | None, float]
BEEP_HZ = 1320.0
# Failure sounds lower as well as longer: told apart by ear in a noisy room, and by a test
# without a stopwatch.
LONG_HZ = 660.0
LOW_HZ = 220.0
TONES: dict[str, tuple[Note, ...]] = {
    "good": ((BEEP_HZ, 0.12),),
    "long": ((LONG_HZ, 0.8),),
    "exception": ((BEEP_HZ, 0.1), (None, 0.1), (BEEP_HZ, 0.1)),
    "meaningless": ((LOW_HZ, 0.4),),
    "quiet": (),
}
# Cancel's tone while it is held rises by a semitone every step until the hold time.
RISE_FROM_HZ = 440.0
RISE_STEP_S = 0.1

# Visit states where Cancel (held) puts the visit in `ending`.
CANCELLABLE = ("identity", "capturing", "review")


def rising_tone(hold_s: float) -> tuple[Note, ...]:
    """The tone played while Cancel is held: rising for `hold_s`, an octave at most."""
    steps = max(1, round(hold_s / RISE_STEP_S))
    return tuple((RISE_FROM_HZ * 2 ** (min(12, 12 * n / steps) / 12), hold_s / steps) for n in range(steps))


@dataclass(frozen=True)
class PanelView:
    """What the panel needs to know of the kit at one moment."""

    visit_id: str | None = None
    state: str | None = None  # the visit's state; None: no active visit
    current: str | None = None  # the item the visit is at
    current_status: str | None = None  # that item's status
    session_running: bool = False  # the current item's session is still judging
    has_best: bool = False  # the current item has a capture to accept (a best so far)
    last_done: str | None = None  # the item captured last (Retry between items retakes it)
    judging: bool = False  # the session judged a press or frame just now
    capture_shown: bool = False  # an item's session started just now (amber is shown a while)
    failed: bool = False  # the last action or session failed (the screen says why)
    officer_present: bool = True  # the visit's officer is signed in


@dataclass(frozen=True)
class Decision:
    """What one button change does: `action` on `item`, and the `tone` to give at once."""

    action: str  # accept, start, retry, exception_reasons, hold_cancel, cancel, quiet, none, meaningless
    item: str | None = None
    tone: str | None = None
    why: str = ""


def _meaningless(why: str) -> Decision:
    return Decision("meaningless", tone="meaningless", why=why)


def decide(view: PanelView, button: str, what: str) -> Decision:
    """The decision for `button` (capture, retry, skip, cancel) going `what` (pressed,
    released, held) in `view`. Anything without a meaning is the low tone and no change."""
    if button == "cancel":
        return _cancel(view, what)
    if what != "pressed":
        return Decision("none")
    if view.state is None:
        return _meaningless("no visit is active")
    if not view.officer_present:
        return _meaningless("the visit's officer is not signed in")
    if button == "capture":
        return _capture(view)
    if button == "retry":
        return _retry(view)
    if button == "skip":
        if view.state == "capturing" and view.current is not None:
            return Decision("exception_reasons", view.current, why="the screen asks for a reason")
        return _meaningless(f"nothing to skip in state {view.state}")
    return _meaningless(f"unknown button {button}")


def _capture(view: PanelView) -> Decision:
    if view.state != "capturing" or view.current is None:
        return _meaningless(f"nothing to capture in state {view.state}")
    if view.current_status == "capturing":
        if view.has_best:
            return Decision("accept", view.current, why="the best so far is kept")
        return _meaningless("the session has nothing to keep yet")
    if view.current_status in ("pending", "to_retake"):
        return Decision("start", view.current, why="the next item starts")
    return _meaningless(f"item {view.current} is {view.current_status}")


def _retry(view: PanelView) -> Decision:
    if view.state not in ("capturing", "review"):
        return _meaningless(f"nothing to retry in state {view.state}")
    if view.current_status == "capturing" and view.current is not None:
        return Decision("retry", view.current, why="the item's session starts again")
    if view.last_done is not None:
        return Decision("retry", view.last_done, why="the item just captured is taken again")
    return _meaningless("no item to retry")


def _cancel(view: PanelView, what: str) -> Decision:
    meaningful = view.state in CANCELLABLE and view.officer_present
    if what == "pressed":
        if meaningful:
            return Decision("hold_cancel", why="hold to end the visit")
        if view.state is not None and not view.officer_present:
            return _meaningless("the visit's officer is not signed in")
        return _meaningless(f"nothing to cancel in state {view.state}")
    if what == "held" and meaningful:
        return Decision("cancel", why="held: the visit ends")
    if what == "released":
        return Decision("quiet")  # released before the hold time: nothing happens
    return Decision("none")


def leds(view: PanelView) -> dict[str, str]:
    """The LEDs for `view`: ready (green), capturing (amber; blinking while judging), error (red)."""
    capturing = view.capture_shown or (view.current_status == "capturing" and view.session_running)
    return {
        "ready": "on" if not (capturing or view.failed) else "off",
        "capturing": ("blink" if view.judging else "on") if capturing else "off",
        "error": "on" if view.failed else "off",
    }


def tone_for(event_type: str, data: dict[str, Any], visit_session: bool) -> str | None:
    """The tone an event earns: a good capture, a failure or a forced capture, an exception.
    `visit_session`: an `end` event's session is an item's of the active visit (a direct
    session of a technician makes no sound)."""
    if event_type == "end" and visit_session:
        outcome = data.get("outcome")
        if outcome == "captured":
            return "good"
        if outcome in ("forced", "failed"):
            return "long"
        return None  # confirmed (the accept that follows sounds), cancelled
    if event_type == "visit":
        change = data.get("change")
        if change == "item_accepted":
            return "good" if data.get("status") == "captured" else "long"
        if change == "item_excepted":
            return "exception"
    return None
