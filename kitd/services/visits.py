"""The kit's visits: one active at a time, each item captured by a live session.

Its one job: :class:`VisitDesk` runs the pure state machine (kitd.services.visit_machine)
against the kit: it starts a visit from a pending work order, runs each capture item as a
live session on the right device (with the order's category), follows the session to
feed the visit its best score and keep its capture, saves the visit's record in the
database after every change, closes the order when the visit ends, and publishes a
``visit`` event for each change. Captures stay in memory, owned by the visit (never the
session list, which forgets ended sessions); a restart resumes the active visit with its
captured items to retake.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kitformats.signing import KeyProblem

from kitd.clock import KitClock
from kitd.errors import DeviceGone, KitError, shown_value
from kitd.events import EventHub
from kitd.services.captures import Capture
from kitd.services.outbox import Outbox, OutboxError
from kitd.services.sealing import BundleSealer, SealingFailed
from kitd.services.sessions import LiveSession, LiveSessions, SessionConflict, SessionNotFound
from kitd.services.slots import DeviceSlot
from kitd.services.visit_machine import Visit, WrongState, item_kind
from kitd.store.audit import SYSTEM, AuditEntry
from kitd.store.visits import active_visits, end_visit, load_visit, pending_order, save_visit
from kitd.store.work_orders import withdraw_order

T = TypeVar("T")


class VisitContext(Protocol):
    """What the visit desk needs of its kit (kitd.kit.Kit)."""

    database: Any
    slots: dict[str, DeviceSlot]
    sessions: LiveSessions
    events: EventHub
    clock: KitClock

    async def in_database(self, job: Callable[..., T], *args: Any) -> T: ...

    async def checkpoint_audit(self) -> None: ...

    async def precheck(self, actor: str) -> dict[str, Any]: ...


log = logging.getLogger("kitd.visits")

# What each kind of item is captured with: (device kind, session modality).
ITEM_DEVICES: dict[str, tuple[str, str]] = {
    "finger": ("fingerprint", "fingerprint"),
    "thumbprint": ("fingerprint", "fingerprint"),
    "iris": ("iris_camera", "iris"),
    "signature": ("signature", "signature"),
}
FOLLOW_INTERVAL_S = 0.25
# How long accept waits for a running session to hand over its best once confirmed.
CONFIRM_WAIT_S = 10.0
# How long a retake or an exception waits for the item's cancelled session to free its device.
SESSION_STOP_WAIT_S = 10.0


class VisitNotFound(KitError):
    """No visit with that id (404)."""


class OfficerCannotSign(KitError):
    """The visit's officer has no usable signing credential open (409)."""


class NotVisitsOfficer(KitError):
    """The caller is signed in as another officer than the visit's (403): only its own officer
    works on a visit (its bundle carries their signature); anyone may end it with an outcome."""


class NoCapture(KitError):
    """The item has no capture kept in memory (404)."""


class PrecheckFailed(KitError):
    """The pre-visit check found a fault that would make the visit fail (409 precheck_failed);
    ``checks`` are the failed findings."""

    def __init__(self, message: str, checks: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.checks = checks


async def _to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` as a task of its own that a cancelled caller does not cancel."""
    task = asyncio.ensure_future(work)
    # If nobody waits any more, its error is still read (and logged), never left dangling.
    task.add_done_callback(_log_orphan_failure)
    return await asyncio.shield(task)


def _log_orphan_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("visit action ended with: %s", task.exception())


def visit_facts(visit: Visit, item: str | None = None) -> dict[str, Any]:
    """What the audit log says of a visit's change: ids, state, and the item's standing
    (scores and flags, never a capture)."""
    facts: dict[str, Any] = {"visit": visit.id, "order": visit.order_id, "state": visit.state}
    if item is not None:
        record = visit.item(item)
        facts.update(
            item=item,
            status=record.status,
            score=None if record.score is None else round(float(record.score), 1),
            passed=record.passed,
            attempts=record.attempts,
        )
        if record.status == "forced":
            facts["failed_checks"] = list(record.failed_checks)
        if record.exception is not None:
            facts["exception"] = dict(record.exception)
    return facts


def item_label(visit: Visit, item: str) -> str:
    kind = item_kind(item)
    if kind == "finger":
        return f"FGP {item.split(':')[1]}"
    if kind == "thumbprint":
        return f"FGP {visit.item(item).finger} (in place of the signature)"
    if kind == "iris":
        return f"{item.split(':')[1]} eye"
    return "signature"


@dataclass
class _Active:
    visit: Visit
    # The pre-visit check's findings that were not ok (warnings shown with the new visit).
    precheck: dict[str, Any] | None = None
    captures: dict[str, Capture] = field(default_factory=dict)
    followers: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class VisitDesk:
    """The visits of one kit."""

    def __init__(
        self,
        kit: VisitContext,
        finger_order: list[int],
        sealer: BundleSealer,
        outbox: Outbox,
        clock: Callable[[], Any] | None = None,
        require_officer_signature: bool = True,
    ) -> None:
        self.kit = kit
        self.finger_order = list(finger_order)
        self.sealer = sealer
        self.outbox = outbox
        self.require_officer_signature = require_officer_signature
        self._active: _Active | None = None
        self._lock = asyncio.Lock()
        self._clock = clock

    # --- lifecycle ---------------------------------------------------------------------

    async def restore(self) -> None:
        """After a start: the visit that was active resumes, its captured items to retake."""
        records = await self.kit.in_database(active_visits, self.kit.database)
        if not records:
            return
        visit = self._from_json(records[-1])
        visit.resume()
        self._active = _Active(visit)
        await self._saved(visit, "resumed")
        log.info("visit %s resumed at %s", visit.id, visit.current, extra={"visit": visit.id})

    async def shutdown(self) -> None:
        if self._active is not None:
            for task in self._active.followers.values():
                task.cancel()

    def _would_allow(self, visit: Visit, action: Callable[[Visit], object]) -> None:
        """Raise what ``action`` would raise, trying it on a copy: the visit itself changes
        only once the kit's side of the action (a session, a device) has been done."""
        action(self._from_json(visit.to_json()))

    def _from_json(self, record: dict[str, Any]) -> Visit:
        return Visit.from_json(record, **({"clock": self._clock} if self._clock else {}))

    # --- queries -------------------------------------------------------------------------

    async def get(self, visit_id: str) -> Visit:
        if self._active is not None and self._active.visit.id == visit_id:
            return self._active.visit
        record = await self.kit.in_database(load_visit, self.kit.database, visit_id)
        if record is None:
            raise VisitNotFound(f"no visit {shown_value(visit_id)}")
        return self._from_json(record)

    def active(self) -> list[Visit]:
        return [] if self._active is None else [self._active.visit]

    def capture(self, visit_id: str, item: str, actor: str | None = None) -> Capture:
        """The item's kept capture, shown to the visit's own officer (or the kit itself) only."""
        active = self._require_own(visit_id, actor)
        active.visit.item(item)  # UnknownItem for a made-up one
        capture = active.captures.get(item)
        if capture is None:
            raise NoCapture(f"item '{item}' has no capture in this visit")
        return capture

    def _require_active(self, visit_id: str) -> _Active:
        if self._active is None or self._active.visit.id != visit_id:
            raise VisitNotFound(f"no active visit {shown_value(visit_id)}")
        return self._active

    def _require_own(self, visit_id: str, actor: str | None) -> _Active:
        """The active visit ``visit_id``, for work by ``actor``: its own officer, or the kit
        itself (the socket, SYSTEM; None). Another officer may only end it (an outcome)."""
        active = self._require_active(visit_id)
        visit = active.visit
        if actor not in (None, SYSTEM, visit.officer):
            raise NotVisitsOfficer(
                f"visit {visit.id} is officer {visit.officer}'s: only they work on it (its bundle "
                "carries their signature); another may end it with an outcome"
            )
        return active

    # --- actions ---------------------------------------------------------------------------

    async def start(self, order_id: str, officer: str, actor: str | None = None) -> Visit:
        async with self._lock:
            if self._active is not None:
                visit = self._active.visit
                raise WrongState(f"visit {visit.id} is active: end it first", visit.state)
            order = await self.kit.in_database(pending_order, self.kit.database, order_id)
            # A visit that could not be sealed would be lost work (off the loop: it may ask the token).
            await asyncio.get_running_loop().run_in_executor(None, self.sealer.require_ready)
            self.outbox.require_reserve()  # room on the disk for its bundle, and the next ones
            # The quick checks (a few seconds): a fault that would make the visit fail refuses it
            # here, in the office's words, rather than in the applicant's living room.
            precheck = await self.kit.precheck(actor or officer)
            if precheck["critical"]:
                first = precheck["critical"][0]
                said = first["message"]["en"] if first["message"] else first["id"]
                raise PrecheckFailed(
                    f"the pre-visit check failed: {first['id']}: {said}", precheck["critical"]
                )
            visit = self._new_visit(order_id, officer, order["category"])
            self._active = _Active(visit, precheck)
            await self._saved(visit, "started", actor=actor or officer, category=visit.category)
            return visit

    async def outcome_at_door(
        self, order_id: str, officer: str, code: Any, note: Any, reschedule: Any, actor: str | None = None
    ) -> Visit:
        """The visit of order ``order_id`` ends at the door with an outcome (not at home, refused,
        rescheduled, ...) before any capture: no device is needed, so neither the pre-visit check
        nor the sealer is asked (a reader unplugged must not keep the officer from saying that
        nobody was home). Saved as a visit started and ended at once, like any other outcome."""
        return await _to_the_end(self._outcome_at_door(order_id, officer, code, note, reschedule, actor))

    async def _outcome_at_door(
        self, order_id: str, officer: str, code: Any, note: Any, reschedule: Any, actor: str | None
    ) -> Visit:
        async with self._lock:
            # Another order's open visit is no matter (a family next door asked to wait); this
            # order's own is ended where it runs.
            if self._active is not None and self._active.visit.order_id == order_id:
                visit = self._active.visit
                raise WrongState(
                    f"visit {visit.id} of this order is active: give its outcome there", visit.state
                )
            order = await self.kit.in_database(pending_order, self.kit.database, order_id)
            visit = self._new_visit(order_id, officer, order["category"])
            visit.set_outcome(code, note, reschedule, actor or officer)  # a refusal leaves nothing behind
            slot = visit.outcome["reschedule"] if visit.outcome else None
            await self._close(_Active(visit), code, slot, actor or officer, at_door=True)
            return visit

    def _new_visit(self, order_id: str, officer: str, category: str) -> Visit:
        kwargs = {"clock": self._clock} if self._clock else {}
        return Visit.start(uuid.uuid4().hex[:12], order_id, officer, category, self.finger_order, **kwargs)

    def precheck_of(self, visit_id: str) -> dict[str, Any] | None:
        """The pre-visit check that let the active visit ``visit_id`` start (None: none ran)."""
        active = self._active
        return active.precheck if active is not None and active.visit.id == visit_id else None

    async def record_identity(self, visit_id: str, body: dict[str, Any], actor: str = SYSTEM) -> Visit:
        async with self._lock:
            visit = self._require_own(visit_id, actor).visit
            visit.record_identity(body.get("present"), body.get("consent_by"), body.get("guardian"))
            identity = visit.identity or {}
            guardian = identity.get("guardian") or {}
            await self._saved(
                visit,
                "identity",
                actor=actor,
                present=len(identity.get("present") or []),
                consent_by=identity.get("consent_by"),
                guardian_relation=guardian.get("relation"),
            )
            return visit

    async def start_item(self, visit_id: str, item: str, retry: bool = False, actor: str = SYSTEM) -> Visit:
        async with self._lock:
            active = self._require_own(visit_id, actor)
            visit = active.visit
            # The machine must allow it before a device is claimed for a session.
            self._would_allow(visit, lambda v: (v.retry_item if retry else v.start_item)(item, "check"))
            if retry:
                await self._stop_session_and_wait(active, item)
            live = self._open_session(visit, item)
            (visit.retry_item if retry else visit.start_item)(item, live.id)
            active.captures.pop(item, None)
            active.followers[item] = asyncio.create_task(
                self._follow(active, item, live), name=f"visit-{item}"
            )
            await self._saved(visit, "item_retried" if retry else "item_started", item, actor)
            return visit

    async def accept_item(self, visit_id: str, item: str, actor: str = SYSTEM) -> Visit:
        async with self._lock:
            active = self._require_own(visit_id, actor)
            visit = active.visit
            record = visit.item(item)
            if record.status == "capturing" and record.session_id and item not in active.captures:
                await self._confirm_session(active, item, record.session_id)
                if record.status == "captured":  # the session handed over a passing capture
                    await self._saved(visit, "item_accepted", item, actor)
                    return visit
            self._would_allow(visit, lambda v: v.accept_item(item))
            if item not in active.captures:  # checked before the visit changes, not after
                raise WrongState(f"item '{item}' has no capture to accept", visit.state)
            visit.accept_item(item)
            await self._saved(visit, "item_accepted", item, actor)
            return visit

    async def except_item(
        self, visit_id: str, item: str, reason: Any, confirm: Any, officer: str, actor: str | None = None
    ) -> Visit:
        async with self._lock:
            active = self._require_own(visit_id, actor)
            visit = active.visit
            # The machine must allow it before the running session is stopped.
            self._would_allow(visit, lambda v: v.except_item(item, reason, confirm, officer))
            await self._stop_session_and_wait(active, item)
            visit.except_item(item, reason, confirm, officer)
            active.captures.pop(item, None)
            await self._saved(visit, "item_excepted", item, actor or officer)
            return visit

    async def finish(self, visit_id: str, caller_nip: str | None = None, credential: Any = None) -> Visit:
        """:meth:`_finish`, carried to its end even if the request that asked goes away: a
        bundle half registered, or a visit finished on disk and active in memory, would be
        worse than an answer nobody reads."""
        return await _to_the_end(self._finish(visit_id, caller_nip, credential))

    async def _finish(self, visit_id: str, caller_nip: str | None, credential: Any) -> Visit:
        """Seal the visit into the outbox, then end it; if sealing fails it stays in review.

        The officer's signature is theirs alone: only the visit's officer, signed in, finishes
        it with ``credential`` (what their sign-in opened) or their plain development key."""
        async with self._lock:
            active = self._require_own(visit_id, caller_nip)
            finished = self._from_json(active.visit.to_json())
            finished.finish()
            officer_signer, officer_signs = None, True
            try:
                if caller_nip != finished.officer:
                    who = finished.officer
                    raise KeyProblem(
                        f"only officer {who}, signed in, finishes this visit: it carries their signature"
                    )
                officer_signer = await asyncio.get_running_loop().run_in_executor(
                    None, self.sealer.keys.officer_signer, finished.officer, credential
                )
            except KeyProblem as exc:
                if self.require_officer_signature:
                    raise OfficerCannotSign(f"the visit cannot be signed: {exc}") from None
                officer_signs = False  # the manifest says so, and the office sees it
                log.warning("visit %s sealed without the officer's signature: %s", finished.id, exc)
            order = await self.kit.in_database(
                pending_order, self.kit.database, finished.order_id, finished.order_withdrawn
            )
            devices = [slot.describe() for slot in self.kit.slots.values()]
            now = self._clock() if self._clock else None
            sealed = await asyncio.get_running_loop().run_in_executor(
                None,
                self.sealer.seal,
                finished.to_json(),
                order,
                dict(active.captures),
                devices,
                now,
                officer_signer,
                officer_signs,
            )
            finished.bundle = {
                "id": sealed.bundle_id,
                "size": len(sealed.sealed),
                "sealed_at": sealed.statement["statement"]["created_at"],
            }
            try:
                # Registered, written, then in one transaction: sealed, visit saved, order closed.
                record = await self.kit.in_database(
                    self.outbox.store,
                    self.kit.database,
                    sealed,
                    finished.to_json(),
                    now or self.kit.clock.now(),
                )
            except OutboxError as exc:
                raise SealingFailed(str(exc)) from None
            finished = self._from_json(record)
            log.info(
                "visit %s sealed as bundle %s (%d bytes)",
                finished.id,
                finished.bundle["id"],
                finished.bundle["size"],
                extra={"visit": finished.id, "bundle": finished.bundle["id"]},
            )
            for item in list(active.followers):
                self._stop_session(active, item)
            self._active = None
            active.captures.clear()  # sealed and saved: the plaintext goes
            self._announce(finished, finished.state)
            await self.kit.checkpoint_audit()  # every sealed bundle is under a signed checkpoint
            log.info(
                "visit %s ended: finished", finished.id, extra={"visit": finished.id, "outcome": "finished"}
            )
            return finished

    async def set_outcome(
        self, visit_id: str, code: Any, note: Any, reschedule: Any, actor: str = SYSTEM
    ) -> Visit:
        return await _to_the_end(self._set_outcome(visit_id, code, note, reschedule, actor))

    async def _set_outcome(self, visit_id: str, code: Any, note: Any, reschedule: Any, actor: str) -> Visit:
        async with self._lock:
            active = self._require_active(visit_id)
            visit = active.visit
            before = self._from_json(visit.to_json())
            visit.set_outcome(code, note, reschedule, actor)
            try:
                await self._close(active, code, visit.outcome["reschedule"] if visit.outcome else None, actor)
            except BaseException:
                # Not saved: the visit stays as it was, open, so that the outcome can be given again.
                active.visit = before
                raise
            return visit

    async def cancel(self, visit_id: str, actor: str = SYSTEM) -> Visit:
        async with self._lock:
            active = self._require_active(visit_id)
            visit = active.visit
            self._would_allow(visit, lambda v: v.cancel())
            # Before the visit forgets its sessions' ids: the running one is stopped and its
            # device freed, so that carrying on can start the item again at once.
            for item in list(active.followers):
                await self._stop_session_and_wait(active, item)
            visit.cancel()
            await self._saved(visit, "ending", actor=actor)
            return visit

    async def carry_on(self, visit_id: str, actor: str = SYSTEM) -> Visit:
        """Back from ``ending`` to the work, nothing captured lost (Visit.carry_on)."""
        async with self._lock:
            active = self._require_own(visit_id, actor)
            active.visit.carry_on()
            await self._saved(active.visit, "carried_on", actor=actor)
            return active.visit

    async def withdraw_order(self, order_id: str, actor: str = SYSTEM) -> dict[str, Any]:
        """The office takes order ``order_id`` back (kitd.store.work_orders.withdraw_order). If
        its visit is running, the visit is flagged ``order_withdrawn`` (saved with the order's
        change, announced: the screen shows it) and may still finish. An ``order_withdrawn``
        event either way. UnknownOrder, OrderConflict (its visit ended) from the store."""
        async with self._lock:
            active = self._active if self._active and self._active.visit.order_id == order_id else None
            flagged = None
            if active is not None and not active.visit.order_withdrawn:
                flagged = self._from_json(active.visit.to_json())
                flagged.order_withdrawn = True
            answer = await self.kit.in_database(
                withdraw_order,
                self.kit.database,
                order_id,
                actor,
                None if flagged is None else flagged.to_json(),
            )
            visit_id = None
            if active is not None:
                visit_id = active.visit.id
                if flagged is not None:
                    active.visit.order_withdrawn = True
                    self._announce(active.visit, "order_withdrawn")
                    log.warning(
                        "order %s was withdrawn while its visit %s runs: the visit may still finish",
                        order_id,
                        visit_id,
                        extra={"visit": visit_id, "order": order_id},
                    )
            self.kit.events.publish(
                "order_withdrawn",
                {"order_id": order_id, "visit": visit_id, "visit_running": answer["visit_running"]},
            )
            return answer

    # --- sessions ------------------------------------------------------------------------

    def _open_session(self, visit: Visit, item: str) -> LiveSession:
        device_kind, modality = ITEM_DEVICES[item_kind(item)]
        slots = [s for s in self.kit.slots.values() if s.kind == device_kind]
        if not slots:
            raise DeviceGone(f"no {device_kind} device is configured for item '{item}'")
        return self.kit.sessions.start(slots[0], modality, item_label(visit, item), visit.category)

    def _stop_session(self, active: _Active, item: str) -> None:
        follower = active.followers.pop(item, None)
        if follower is not None:
            follower.cancel()
        session_id = active.visit.item(item).session_id
        if session_id:
            try:
                self.kit.sessions.cancel(session_id)
            except (SessionNotFound, SessionConflict):
                pass  # it had ended already

    async def _stop_session_and_wait(self, active: _Active, item: str) -> None:
        """:meth:`_stop_session`, then its device freed (up to SESSION_STOP_WAIT_S): a retake or
        the next item on the same device starts on a free device, not into "busy"."""
        session_id = active.visit.item(item).session_id
        self._stop_session(active, item)
        if session_id and not await self.kit.sessions.freed(session_id, SESSION_STOP_WAIT_S):
            log.warning("session %s did not end within %.0f s of its cancel", session_id, SESSION_STOP_WAIT_S)

    async def _follow(self, active: _Active, item: str, live: LiveSession) -> None:
        """Feed the visit the session's best as it improves; keep its capture when it ends."""
        last: tuple[Any, ...] | None = None
        # Woken by the session's own events (each judged frame, its end), so that the visit
        # learns at once; the interval is only a fallback.
        subscription = self.kit.events.open()
        while True:
            with live.lock:
                best = live.core.best[0] if live.core.best else None
                ended = (live.core.ended or live.error is not None) and live.device_freed
                result = live.core.result
            # A passing best captures the item only once its session has ended, handed over
            # the capture and freed its device (the officer's next item may start at once).
            if best is not None:
                report = best.report
                now = (round(best.score, 1), bool(report.passed), tuple(report.feedback))
                if now != last:
                    last = now
                    async with self._lock:
                        active.visit.session_best(
                            item,
                            live.id,
                            best.score,
                            bool(report.passed),
                            list(report.feedback),
                            list(report.failed_checks),
                            final=False,
                        )
                        # A best is worth nothing after a restart (its capture is in memory):
                        # an event for the screen, no write to the database per better frame.
                        self._announce(active.visit, "item_best", item)
            if ended:
                break
            try:
                if await asyncio.wait_for(subscription.get(), FOLLOW_INTERVAL_S) is None:
                    subscription.close()
                    subscription = self.kit.events.open()  # the hub dropped us: listen again
            except TimeoutError:
                pass
        subscription.close()
        async with self._lock:
            if active.visit.item(item).session_id == live.id and result is not None:
                active.captures[item] = self.kit.sessions.result(live.id)
                report = result.report
                active.visit.session_best(
                    item,
                    live.id,
                    result.score,
                    bool(report.passed),
                    list(report.feedback),
                    list(report.failed_checks),
                )
            await self._saved(active.visit, "item_session_ended", item)
        active.followers.pop(item, None)

    async def _confirm_session(self, active: _Active, item: str, session_id: str) -> None:
        """Accept while the session runs: it hands over its best, which the visit keeps."""
        try:
            self.kit.sessions.confirm(session_id)
        except SessionConflict:
            pass  # ended meanwhile, or nothing yet: the follower or the machine says
        follower = active.followers.get(item)
        if follower is not None:
            self._lock.release()  # let the follower record the end
            try:
                await asyncio.wait_for(asyncio.shield(follower), CONFIRM_WAIT_S)
            except (TimeoutError, asyncio.CancelledError):
                pass
            finally:
                await self._lock.acquire()

    # --- saving --------------------------------------------------------------------------

    async def _saved(
        self, visit: Visit, change: str, item: str | None = None, actor: str = SYSTEM, **details: Any
    ) -> None:
        """Write the visit's record and the audit entry of the change (one transaction), then
        announce the change."""
        entry = AuditEntry(actor, f"visit_{change}", {**visit_facts(visit, item), **details})
        await self.kit.in_database(save_visit, self.kit.database, visit.to_json(), entry)
        self._announce(visit, change, item)

    def _announce(self, visit: Visit, change: str, item: str | None = None) -> None:
        data: dict[str, Any] = {
            "visit": visit.id,
            "change": change,
            "state": visit.state,
            "current": visit.current,
        }
        if item is not None:
            record = visit.item(item)
            data.update(item=item, status=record.status, score=record.score)
        self.kit.events.publish("visit", data)

    def _end(
        self, record: dict[str, Any], entry: AuditEntry, outcome: str, reschedule: dict[str, str] | None
    ) -> None:
        """On the database's thread: a bundle an earlier finish left unregistered goes, then the
        visit, its entry and its order's closing are one transaction."""
        self.outbox.forget_unfinished(self.kit.database, record["id"])
        end_visit(self.kit.database, record, entry, outcome, reschedule)

    async def _close(
        self,
        active: _Active,
        outcome: str,
        reschedule: dict[str, str] | None,
        actor: str = SYSTEM,
        at_door: bool = False,
    ) -> None:
        for item in list(active.followers):
            self._stop_session(active, item)
        visit = active.visit
        facts = {**visit_facts(visit), "outcome": outcome, "reschedule": reschedule}
        if at_door:
            facts["at_door"] = True
        entry = AuditEntry(actor, f"visit_{visit.state}", facts)
        await self.kit.in_database(self._end, visit.to_json(), entry, outcome, reschedule)
        self._announce(visit, visit.state)
        if self._active is active:  # not a visit ended at the door while another runs
            self._active = None
        log.info("visit %s ended: %s", visit.id, outcome, extra={"visit": visit.id, "outcome": outcome})
