"""The visit at the applicant's home as one pure state machine: items, exceptions, outcomes.

Its one job: :class:`Visit` holds what a visit has reached and says which actions its
state allows. Every action either changes it or raises :class:`WrongState` (naming the
state), :class:`BadVisitRequest` (naming the field) or :class:`UnknownItem`. No I/O, no
devices and no captures: the daemon runs the capture sessions and tells the visit what
they found; the visit is kept as JSON (:meth:`Visit.to_json`) in the database after each
change, and :meth:`Visit.resume` brings it back after a restart with the items whose
captures lived only in memory marked ``to_retake``. The clock is injectable.

States: ``identity`` (who is present, who consents) -> ``capturing`` (ten fingers, two
irises, the signature or a thumbprint in its place) -> ``review`` (every item done) ->
``finished``. ``cancel`` puts a visit in ``ending``, from which ``carry_on`` goes back to the
work; an outcome (not at home, refused, unable, rescheduled, cancelled) ends it from any state
before ``finished``: ``ended``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from kitd.ansi_nist_text import text_problem
from kitd.clock import system_now
from kitd.errors import KitError, shown_value
from kitd.store.work_orders import APPOINTMENT_YEARS

STATES: tuple[str, ...] = ("identity", "capturing", "review", "ending", "finished", "ended")
ITEM_STATUSES: tuple[str, ...] = ("pending", "capturing", "captured", "forced", "excepted", "to_retake")
OUTCOMES: tuple[str, ...] = ("not_home", "refused", "unable", "rescheduled", "cancelled")
MAX_OUTCOME_NOTE = 1000  # characters: a few sentences for the office, why the visit ended so
# FGP finger positions (ANSI/NIST-ITL): 1 right thumb .. 5 right little, 6 left thumb .. 10.
DEFAULT_FINGER_ORDER: tuple[int, ...] = tuple(range(1, 11))
THUMBS: tuple[int, ...] = (1, 6)
EXCEPTION_REASONS: dict[str, tuple[str, ...]] = {
    "finger": ("amputated", "bandaged", "unable_to_print", "cannot_position"),
    "thumbprint": ("amputated", "bandaged", "unable_to_print", "cannot_position"),
    "iris": ("missing", "blind_or_diseased", "cannot_open"),
    "signature": ("cannot_sign",),
}
CONSENT_BY: tuple[str, ...] = ("applicant", "guardian")
# Categories whose applicant cannot consent alone (orang dengan gangguan jiwa).
GUARDIAN_REQUIRED: tuple[str, ...] = ("odgj",)
# Items a capture can be started on, and where an outcome can still be given.
CAPTURE_STATES: tuple[str, ...] = ("capturing", "review")
OPEN_STATES: tuple[str, ...] = ("identity", "capturing", "review", "ending")
DONE: tuple[str, ...] = ("captured", "forced", "excepted")


class VisitError(KitError):
    """An action the visit cannot take."""


class WrongState(VisitError):
    """The visit's state does not allow the action (409)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class BadVisitRequest(VisitError):
    """The action's request is wrong (400, ``code``); ``field`` names what."""

    code = "bad_request"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class PastAppointment(BadVisitRequest):
    """A new appointment that starts before the kit's clock says now."""

    code = "appointment_past"


class UnknownItem(VisitError):
    """No such item in this visit (404)."""


def _plain(value: Any) -> Any:
    """A field's value as JSON-ready data (dataclasses as dicts, lists and dicts copied)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def utc_now() -> dt.datetime:
    return system_now()


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def item_kind(item: str) -> str:
    """``finger``, ``iris``, ``signature`` or ``thumbprint``."""
    return item.split(":", 1)[0]


@dataclass
class Item:
    """One thing to capture (or to except) and what became of it."""

    item: str
    status: str = "pending"
    score: float | None = None
    passed: bool | None = None
    feedback: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    attempts: int = 0
    session_id: str | None = None
    exception: dict[str, Any] | None = None
    finger: int | None = None  # a thumbprint's FGP position
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_retake(self, why: str, at: str) -> None:
        """Taken again: what it had reached goes to its history (`why`), its capture is gone."""
        self._archive(why, at)
        self.status, self.score, self.passed, self.session_id = "to_retake", None, None, None
        self.feedback, self.failed_checks = [], []

    def _archive(self, why: str, at: str) -> None:
        """Keep what this item had reached before it starts again."""
        if self.attempts or self.exception:
            self.history.append(
                {
                    "status": self.status,
                    "score": self.score,
                    "passed": self.passed,
                    "attempts": self.attempts,
                    "exception": self.exception,
                    "ended": why,
                    "at": at,
                }
            )


@dataclass
class Visit:
    """One visit: its order, officer, state, items, identity and outcome."""

    id: str
    order_id: str
    officer: str
    category: str
    state: str = "identity"
    current: str | None = None
    outcome: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    items: list[Item] = field(default_factory=list)
    started_at: str = ""
    updated_at: str = ""
    resumed: bool = False
    # The sealed bundle a finished visit became: {"id", "size", "sealed_at"}.
    bundle: dict[str, Any] | None = None
    # The office withdrew the visit's order while it ran: the screen says so; the visit may
    # still finish (the office decides what to do with its bundle).
    order_withdrawn: bool = False
    clock: Callable[[], dt.datetime] = field(default=utc_now, repr=False, compare=False)

    # --- building, saving, resuming ---------------------------------------------------

    @classmethod
    def start(
        cls,
        visit_id: str,
        order_id: str,
        officer: str,
        category: str,
        finger_order: Sequence[int] = DEFAULT_FINGER_ORDER,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> Visit:
        if sorted(finger_order) != list(DEFAULT_FINGER_ORDER):
            raise BadVisitRequest("finger_order must name each FGP position 1-10 once", "finger_order")
        now = _stamp(clock())
        items = [Item(f"finger:{n}") for n in finger_order]
        items += [Item("iris:right"), Item("iris:left"), Item("signature")]
        return cls(
            visit_id, order_id, officer, category, items=items, started_at=now, updated_at=now, clock=clock
        )

    def to_json(self) -> dict[str, Any]:
        # Not asdict(self): it would deep-copy the clock (the kit's, with its lock) to drop it.
        return {f.name: _plain(getattr(self, f.name)) for f in dataclass_fields(self) if f.name != "clock"}

    @classmethod
    def from_json(cls, data: dict[str, Any], clock: Callable[[], dt.datetime] = utc_now) -> Visit:
        fields = {k: v for k, v in data.items() if k != "items"}
        return cls(**fields, items=[Item(**i) for i in data["items"]], clock=clock)

    def resume(self) -> None:
        """After a restart: captures were only in memory, so captured items are retaken.

        The visit comes back at the item it had reached; the items to retake follow the
        ones never taken.
        """
        now = self._touch()
        reached = self.current
        for item in self.items:
            if item.status in ("captured", "forced", "capturing"):
                item.to_retake("restart", now)
        self.resumed = True
        if self.state in CAPTURE_STATES:
            self.state = "capturing"
            self._advance()
            if reached is not None and self.item(reached).status in ("pending", "to_retake"):
                self.current = reached

    # --- queries ------------------------------------------------------------------------

    def item(self, name: str) -> Item:
        for item in self.items:
            if item.item == name:
                return item
        raise UnknownItem(f"visit {self.id} has no item {shown_value(name)}")

    def _touch(self) -> str:
        self.updated_at = _stamp(self.clock())
        return self.updated_at

    def _require(self, states: Sequence[str], action: str) -> None:
        if self.state not in states:
            raise WrongState(f"cannot {action} a visit in state '{self.state}'", self.state)

    def _advance(self) -> None:
        """The next item needing work becomes current; with none left, review."""
        if any(i.status == "capturing" for i in self.items):
            self.current = next(i.item for i in self.items if i.status == "capturing")
            return
        # Items never taken first, in order; then those to retake after a restart.
        waiting = [i for i in self.items if i.status == "pending"]
        waiting += [i for i in self.items if i.status == "to_retake"]
        if waiting:
            self.state, self.current = "capturing", waiting[0].item
        else:
            self.state, self.current = "review", None

    # --- actions --------------------------------------------------------------------------

    def record_identity(self, present: Any, consent_by: Any, guardian: Any = None) -> None:
        """Who is present and who consents; a guardian when the category needs one."""
        self._require(("identity",), "record the identity of")
        if (
            not isinstance(present, list)
            or not present
            or not all(isinstance(p, str) and p.strip() for p in present)
        ):
            raise BadVisitRequest("present must list at least one person by name", "present")
        if consent_by not in CONSENT_BY:
            raise BadVisitRequest(f"consent_by must be one of {', '.join(CONSENT_BY)}", "consent_by")
        needs_guardian = consent_by == "guardian" or self.category in GUARDIAN_REQUIRED
        if needs_guardian:
            if consent_by != "guardian":
                raise BadVisitRequest(
                    f"a '{self.category}' applicant consents through a guardian", "consent_by"
                )
            if not isinstance(guardian, dict) or not all(
                isinstance(guardian.get(k), str) and guardian[k].strip() for k in ("name", "relation")
            ):
                raise BadVisitRequest("guardian needs a name and a relation", "guardian")
        # These names go into the sealed bundle: refused now rather than at finish.
        named = [("present", p) for p in present]
        if needs_guardian:
            named += [("guardian", guardian["name"]), ("guardian", guardian["relation"])]
        for field_name, text in named:
            problem = text_problem(text)
            if problem is not None:
                raise BadVisitRequest(f"{field_name}: {shown_value(text)} {problem}", field_name)
        self.identity = {
            "present": [p.strip() for p in present],
            "consent_by": consent_by,
            "guardian": {"name": guardian["name"].strip(), "relation": guardian["relation"].strip()}
            if needs_guardian
            else None,
        }
        self._touch()
        self.state = "capturing"
        self._advance()

    def start_item(self, name: str, session_id: str) -> Item:
        """A capture session begins on ``name`` (also to revisit a done item from review)."""
        self._require(CAPTURE_STATES, "start an item of")
        item = self.item(name)
        busy = next((i.item for i in self.items if i.status == "capturing" and i.item != name), None)
        if busy:
            raise WrongState(f"item '{busy}' is being captured: accept, retry or except it first", self.state)
        if item.status == "capturing":
            raise WrongState(f"item '{name}' is being captured already (retry starts it again)", self.state)
        now = self._touch()
        if item.status in DONE:
            item._archive("revisited", now)
            item.exception, item.score, item.passed, item.feedback, item.failed_checks = (
                None,
                None,
                None,
                [],
                [],
            )
        return self._begin(item, session_id)

    def retry_item(self, name: str, session_id: str) -> Item:
        """A new session for an item being captured, or one already captured."""
        self._require(CAPTURE_STATES, "retry an item of")
        item = self.item(name)
        if item.status not in ("capturing", "captured", "forced"):
            raise WrongState(f"item '{name}' is {item.status}: start it instead", self.state)
        busy = next((i.item for i in self.items if i.status == "capturing" and i.item != name), None)
        if busy:
            raise WrongState(f"item '{busy}' is being captured: accept, retry or except it first", self.state)
        item._archive("retried", self._touch())
        item.score, item.passed, item.feedback, item.failed_checks = None, None, [], []
        return self._begin(item, session_id)

    def _begin(self, item: Item, session_id: str) -> Item:
        item.status, item.session_id = "capturing", session_id
        item.attempts += 1
        self.state, self.current = "capturing", item.item
        return item

    def session_best(
        self,
        name: str,
        session_id: str,
        score: float,
        passed: bool,
        feedback: Sequence[str],
        failed_checks: Sequence[str],
        final: bool = True,
    ) -> None:
        """A session's best capture so far (``final``: the session has ended with it).

        A passing final best captures the item and moves on. A passing best the session
        still holds (a signature waits for the officer) shows its score until accepted.
        """
        item = self.item(name)
        if item.status != "capturing" or item.session_id != session_id:
            return  # a late answer of a session the officer has already left
        item.score, item.passed = round(float(score), 1), bool(passed)
        item.feedback, item.failed_checks = list(feedback), list(failed_checks)
        self._touch()
        if passed and final:
            item.status = "captured"
            self._advance()

    def accept_item(self, name: str) -> Item:
        """Keep the best capture of an item as it is: forced when it did not pass."""
        self._require(CAPTURE_STATES, "accept an item of")
        item = self.item(name)
        if item.status != "capturing":
            raise WrongState(f"item '{name}' is {item.status}: nothing to accept", self.state)
        if item.score is None:
            raise WrongState(f"item '{name}' has no capture yet to accept", self.state)
        item.status = "captured" if item.passed else "forced"
        item.session_id = None
        self._touch()
        self._advance()
        return item

    def except_item(self, name: str, reason: Any, confirm: Any, confirmed_by: str) -> Item:
        """The item cannot be captured, for ``reason``, confirmed explicitly by the officer."""
        self._require(CAPTURE_STATES, "except an item of")
        item = self.item(name)
        kind = item_kind(name)
        if reason not in EXCEPTION_REASONS[kind]:
            raise BadVisitRequest(
                f"reason for a {kind} must be one of {', '.join(EXCEPTION_REASONS[kind])}", "reason"
            )
        if confirm is not True:
            raise BadVisitRequest("an exception needs confirm: true", "confirm")
        now = self._touch()
        if item.attempts or item.exception:
            item._archive("excepted", now)
        item.status, item.session_id = "excepted", None
        item.exception = {"reason": reason, "confirmed_by": confirmed_by, "at": now}
        if kind == "signature":
            self._thumbprint_instead()
        self._advance()
        return item

    def _thumbprint_instead(self) -> None:
        """A thumbprint in the signature's place: the first thumb not excepted, else any finger."""
        if any(i.item == "thumbprint" for i in self.items):
            return
        excepted = {
            int(i.item.split(":")[1])
            for i in self.items
            if item_kind(i.item) == "finger" and i.status == "excepted"
        }
        fingers = [int(i.item.split(":")[1]) for i in self.items if item_kind(i.item) == "finger"]
        usable = [f for f in THUMBS if f not in excepted] + [f for f in fingers if f not in excepted]
        if not usable:
            return  # every finger excepted: the signature's exception stands alone
        at = next(n for n, i in enumerate(self.items) if i.item == "signature") + 1
        self.items.insert(at, Item("thumbprint", finger=usable[0]))

    def finish(self) -> None:
        """Every item done: the visit is finished (the kit seals it before saving this)."""
        self._require(("review",), "finish")
        self._touch()
        self.state, self.current = "finished", None

    def cancel(self) -> None:
        """Stop capturing until an outcome is given (a front end that cannot choose one)."""
        self._require(("identity", "capturing", "review", "ending"), "cancel")
        self._touch()
        for item in self.items:
            if item.status == "capturing":
                item.session_id = None  # the running session is abandoned; its best stays
        self.state, self.current = "ending", None

    def carry_on(self) -> None:
        """Back from ``ending`` to the work (a Cancel held by mistake): the identity when none
        was recorded, else the item the cancel interrupted (to retake: its session was stopped),
        the next item needing work, or the review when every item is done."""
        self._require(("ending",), "carry on with")
        now = self._touch()
        if self.identity is None:
            self.state, self.current = "identity", None
            return
        # An item the cancel interrupted has no session and no capture: it is taken again,
        # first (its best so far is kept in its history).
        interrupted = next((i for i in self.items if i.status == "capturing"), None)
        if interrupted is not None:
            interrupted.to_retake("cancelled", now)
        self.state = "capturing"
        self._advance()
        if interrupted is not None:
            self.current = interrupted.item

    def set_outcome(self, code: Any, note: Any = None, reschedule: Any = None, by: str | None = None) -> None:
        """End a visit that cannot finish: not at home, refused, unable, rescheduled, cancelled;
        `by`: whoever gave the outcome (a NIP, or the system), kept so that the visit's own
        officer can be told when someone else ended it."""
        self._require(OPEN_STATES, "give an outcome to")
        if code not in OUTCOMES:
            raise BadVisitRequest(f"code must be one of {', '.join(OUTCOMES)}", "code")
        if note is not None and not isinstance(note, str):
            raise BadVisitRequest("note must be text", "note")
        if note is not None and len(note) > MAX_OUTCOME_NOTE:
            raise BadVisitRequest(f"note: {len(note)} characters, at most {MAX_OUTCOME_NOTE}", "note")
        problem = None if note is None else text_problem(note, line_breaks=True)
        if problem:
            raise BadVisitRequest(f"note {problem}", "note")
        if code in ("unable", "cancelled") and not (note or "").strip():
            raise BadVisitRequest(f"outcome '{code}' needs a note saying why", "note")
        slot = None
        if code == "rescheduled":
            slot = _appointment(reschedule, self.clock())
        elif reschedule is not None:
            raise BadVisitRequest("only a rescheduled visit takes a reschedule", "reschedule")
        self._touch()
        self.outcome = {"code": code, "note": (note or "").strip() or None, "reschedule": slot, "by": by}
        self.state, self.current = "ended", None


def _appointment(value: Any, now: dt.datetime) -> dict[str, str]:
    """A new appointment ``{"start", "end"}``: ISO 8601 with offsets, in APPOINTMENT_YEARS (as
    an imported order's), end after start, and not starting before `now` (a screen's dialog
    left open past the half hour it offered, a laptop's clock behind the kit's)."""
    if not isinstance(value, dict):
        raise BadVisitRequest("rescheduled needs reschedule {start, end}", "reschedule")
    moments = {}
    for key in ("start", "end"):
        text = value.get(key)
        try:
            moment = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise BadVisitRequest(f"reschedule.{key} must be ISO 8601 with a UTC offset", f"reschedule.{key}")
        first, last = APPOINTMENT_YEARS
        if not first <= moment.year <= last:
            raise BadVisitRequest(f"reschedule.{key} must be in {first}-{last}", f"reschedule.{key}")
        moments[key] = moment
    if moments["end"] <= moments["start"]:
        raise BadVisitRequest("reschedule.end must be after reschedule.start", "reschedule.end")
    if moments["start"] < now:
        at = now.astimezone(moments["start"].tzinfo).isoformat(timespec="seconds")
        raise PastAppointment(
            f"reschedule.start {value['start']} has already passed (the kit's clock says {at})",
            "reschedule.start",
        )
    return {"start": value["start"], "end": value["end"]}
