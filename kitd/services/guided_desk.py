"""The kit's guided tests: one at a time, each under its time limit, each finding kept.

Its one job: :class:`GuidedDesk` starts a guided test (kitd.services.guided_panel, guided_pad)
when its device is free — no visit active (the panel and the pad are the visit's), no other
guided test running, the device ready — runs its procedure under :data:`TIME_LIMIT_S`, hands
the technician's answers to its confirm steps, cancels it, and publishes its state as a
``guided`` event on every change (carrying the pen's new points, such an event is live only:
never replayed). When the test ends (every step done, a step failed, the time up, cancelled)
its finding, check ``<device>.guided``, is stored as a diagnostics run of that one check,
audited, in the history; the last :data:`KEEP_ENDED` tests stay readable here.

While one runs, :meth:`GuidedDesk.holding` is the finding the pre-visit check refuses a visit
with: the devices are the test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from kitd.clock import KitClock, iso
from kitd.errors import KitError
from kitd.events import EventHub
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, WARNING, Words, diagnostics_run, finding
from kitd.services.guided import (
    CANCELLED,
    PASSED,
    RUNNING,
    SKIPPED,
    STEP_FAILED,
    TESTS,
    TIMED_OUT,
    WAITING,
    Guide,
    GuidedRefused,
    GuidedTest,
    Procedure,
    StepFailed,
)
from kitd.services.guided import FAILED as TEST_FAILED
from kitd.services.guided_pad import PadTest
from kitd.services.guided_panel import PanelTest
from kitd.services.panel import Panel
from kitd.services.slots import not_ready_text
from kitd.services.visits import VisitDesk
from kitd.store.diagnostics import record_run

T = TypeVar("T")
log = logging.getLogger("kitd.guided")

# Long enough for a technician to walk through every step; a test left alone ends by itself
# and frees its device.
TIME_LIMIT_S = 120.0
KEEP_ENDED = 20
# How long a confirm's answer waits for the test to have taken it, and a cancel for the test
# to have freed its device.
SETTLE_S = 5.0

CANCELLED_WORDS = Words(
    "Uji terpandu dibatalkan sebelum selesai: jalankan lagi untuk hasil yang lengkap.",
    "The guided test was cancelled before it finished: run it again for a complete result.",
)
TIMED_OUT_WORDS = Words(
    "Uji terpandu tidak selesai tepat waktu: jalankan lagi.",
    "The guided test did not finish in time: run it again.",
)


def _crashed(exc: BaseException) -> Words:
    what = f"{type(exc).__name__}: {exc}"
    return Words(
        f"Uji terpandu gagal berjalan ({what}): ulangi; jika tetap gagal, kirim laporan ke vendor.",
        f"The guided test could not run ({what}): run it again; if it fails again, send the report "
        "to the vendor.",
    )


class GuidedContext(Protocol):
    """What the desk needs of its kit (kitd.kit.Kit)."""

    events: EventHub
    visits: VisitDesk
    slots: dict[str, Any]
    panel: Panel | None
    clock: KitClock
    config: Any
    database: Any

    async def in_database(self, job: Callable[..., T], *args: Any) -> T: ...


def guided_check_ids(kit: Any) -> list[str]:
    """The check ids the guided tests of ``kit`` store their findings under."""
    ids = [f"{kit.panel.device_id}.guided"] if kit.panel is not None else []
    return ids + [f"{slot.id}.guided" for slot in kit.slots.values() if slot.kind == "signature"]


class GuidedDesk:
    """One kit's guided tests."""

    def __init__(self, kit: GuidedContext, time_limit_s: float = TIME_LIMIT_S) -> None:
        self.kit = kit
        self.time_limit_s = time_limit_s
        self._tests: dict[str, GuidedTest] = {}
        self._running: GuidedTest | None = None
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._work: dict[str, asyncio.Task[None]] = {}

    # --- asking ------------------------------------------------------------------------------

    def running(self) -> GuidedTest | None:
        return self._running

    def get(self, guided_id: str) -> GuidedTest:
        test = self._tests.get(guided_id)
        if test is None:
            raise GuidedRefused(404, "unknown_guided_test", f"no guided test {guided_id!r} on this kit")
        return test

    def holding(self) -> dict[str, Any] | None:
        """While a test runs, the failed finding that refuses a visit (the pre-visit check's)."""
        test = self._running
        if test is None:
            return None
        name = DEVICE_NAMES["panel" if test.test == "panel" else "signature"]
        found = finding(
            FAILED,
            {"guided_id": test.id, "test": test.test},
            Words(
                f"Uji terpandu sedang memakai {name.id}: tunggu sampai selesai atau batalkan, lalu "
                "mulai kunjungan.",
                f"A guided test is using the {name.en}: wait for it to end or cancel it, then start "
                "the visit.",
            ),
        )
        return {"id": f"{test.device}.guided", "device": test.device, **found, "duration_s": 0.0}

    # --- starting, answering, cancelling ---------------------------------------------------------

    def start(self, test_name: str, actor: str, device: str | None = None) -> GuidedTest:
        """Start the guided test ``test_name`` (panel, pad); GuidedRefused when it cannot now.
        Synchronous up to the test's task: two starts cannot both pass the checks."""
        if test_name not in TESTS:
            raise GuidedRefused(400, "bad_request", f"test: one of {', '.join(TESTS)}, not {test_name!r}")
        running = self._running
        if running is not None:
            raise GuidedRefused(
                409,
                "guided_test_running",
                f"guided test {running.id} ({running.test}) is running: let it end or cancel it first",
            )
        active = self.kit.visits.active()
        if active:
            raise GuidedRefused(
                409,
                "visit_active",
                f"visit {active[0].id} is active: the panel and the signature pad are its until it ends",
            )
        procedure = self._procedure(test_name, device)
        steps = procedure.steps()
        test = GuidedTest(
            id=uuid.uuid4().hex[:12],
            test=test_name,
            device=procedure.device,
            steps=steps,
            started_at=iso(self.kit.clock.now()),
            time_limit_s=self.time_limit_s,
            actor=actor,
            current=steps[0].id,
        )
        procedure.take()
        self._running = test
        self._remember(test)
        self._runners[test.id] = asyncio.create_task(self._run(test, procedure), name=f"guided-{test.id}")
        log.info("guided test %s (%s on %s) started by %s", test.id, test_name, test.device, actor)
        return test

    def _procedure(self, test_name: str, device: str | None) -> Procedure:
        if test_name == "panel":
            panel = self.kit.panel
            if panel is None:
                raise GuidedRefused(409, "no_device", "this kit has no panel (panel.enabled is false)")
            if device not in (None, panel.device_id):
                raise GuidedRefused(404, "unknown_device", f"no panel {device!r} on this kit")
            slot = self.kit.slots[panel.device_id]
            _require_ready(slot)
            return PanelTest(panel, slot)
        pads = [s for s in self.kit.slots.values() if s.kind == "signature"]
        if device is not None:
            pads = [s for s in pads if s.id == device]
            if not pads:
                raise GuidedRefused(404, "unknown_device", f"no signature pad {device!r} on this kit")
        if not pads:
            raise GuidedRefused(409, "no_device", "this kit has no signature pad")
        _require_ready(pads[0])
        return PadTest(pads[0])

    async def confirm(self, guided_id: str, step_id: str, seen: bool) -> GuidedTest:
        """The technician's answer to the confirm step ``step_id``; the test as it is once the
        answer was taken (the next step waiting, or the test ended)."""
        test = self._require_running(guided_id)
        awaiting = test.awaiting
        if awaiting is None or awaiting[0] != step_id:
            waiting = test.step(test.current) if test.current else None
            now = f"{waiting.id} ({waiting.kind})" if waiting else "no step"
            raise GuidedRefused(
                409, "wrong_step", f"step {step_id!r} is not waiting for an answer: the test is at {now}"
            )
        if not awaiting[1].done():
            awaiting[1].set_result(seen)
        deadline = time.monotonic() + SETTLE_S
        while test.state == RUNNING and test.current == step_id and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(test.changed.wait(), deadline - time.monotonic())
        runner = self._runners.get(test.id)
        if test.state != RUNNING and runner is not None:
            await asyncio.wait({runner}, timeout=SETTLE_S)  # its finding stored
        return test

    async def cancel(self, guided_id: str) -> GuidedTest:
        """End the running test ``guided_id`` now: its device freed, its finding (cancelled) kept."""
        test = self._require_running(guided_id)
        work = self._work.get(test.id)
        if work is not None:
            work.cancel()
        runner = self._runners.get(test.id)
        if runner is not None:
            await asyncio.wait({runner}, timeout=SETTLE_S)
        return test

    def _require_running(self, guided_id: str) -> GuidedTest:
        test = self.get(guided_id)
        if test.state != RUNNING:
            raise GuidedRefused(409, "not_running", f"guided test {guided_id} has ended ({test.state})")
        return test

    async def shutdown(self) -> None:
        """The daemon is stopping: a running test is cancelled (its devices freed)."""
        test = self._running
        if test is not None:
            await self.cancel(test.id)

    # --- running -------------------------------------------------------------------------------

    def _publish(self, test: GuidedTest, ink: dict[str, Any] | None) -> None:
        test.version += 1
        changed, test.changed = test.changed, asyncio.Event()
        changed.set()
        data = test.to_json()
        if ink is not None:
            data["ink"] = ink
        # The pen's points go to whoever watches now, never to a replay.
        self.kit.events.publish("guided", data, live_only=ink is not None)

    async def _run(self, test: GuidedTest, procedure: Procedure) -> None:
        guide = Guide(test, self._publish)
        work = asyncio.create_task(procedure.run(guide), name=f"guided-{test.id}-steps")
        self._work[test.id] = work
        try:
            done, _ = await asyncio.wait({work}, timeout=test.time_limit_s)
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await procedure.release()
            raise
        state, status, message = self._outcome(test, procedure, work, timed_out=not done)
        await asyncio.gather(work, return_exceptions=True)
        # The device back before the test is said to have ended: the next test may take it.
        await procedure.release()
        for step in test.steps:
            if step.status == WAITING:
                step.status = SKIPPED
        test.state, test.current = state, None
        values = {"state": state, "steps": {s.id: s.status for s in test.steps}, **procedure.summary()}
        test.finding = {
            "id": procedure.check_id,
            "device": procedure.device,
            **finding(status, values, message),
            "duration_s": round(time.monotonic() - test.started, 3),
        }
        await self._record(test)
        self._running = None
        self._work.pop(test.id, None)
        log.info(
            "guided test %s ended %s: %s",
            test.id,
            state,
            status,
            extra={"guided_id": test.id, "state": state, "status": status},
        )
        self._publish(test, None)

    def _outcome(
        self, test: GuidedTest, procedure: Procedure, work: asyncio.Task[None], timed_out: bool
    ) -> tuple[str, str, Words | None]:
        """How the test ended: its state, its finding's status and what to do."""
        if timed_out:
            work.cancel()
            step = test.step(test.current) if test.current else None
            status, message = (step.late if step and step.late else None) or (FAILED, TIMED_OUT_WORDS)
            if step is not None and status == FAILED and step.status == WAITING:
                step.status = STEP_FAILED
            return TIMED_OUT, status, message
        if work.cancelled():
            return CANCELLED, WARNING, CANCELLED_WORDS
        exc = work.exception()
        if isinstance(exc, StepFailed):
            return TEST_FAILED, FAILED, exc.message
        if exc is not None:
            log.error("guided test %s raised %s: %s", test.id, type(exc).__name__, exc, exc_info=exc)
            if test.current is not None and test.step(test.current).status == WAITING:
                test.step(test.current).status = STEP_FAILED
            return TEST_FAILED, FAILED, _crashed(exc)
        status, message = procedure.judge()
        return (PASSED if status != FAILED else TEST_FAILED), status, message

    async def _record(self, test: GuidedTest) -> None:
        """The finding as a diagnostics run of one check, stored and audited (by who started it)."""
        assert test.finding is not None
        run = diagnostics_run(self.kit, [test.finding], False, test.started_at, test.finding["duration_s"])
        run["guided_id"] = test.id
        try:
            await self.kit.in_database(record_run, self.kit.database, run, test.actor)
        except (OSError, sqlite3.Error, KitError) as exc:
            log.error("guided test %s: its finding could not be stored: %s", test.id, exc)
            return
        test.run_id = run["run_id"]

    def _remember(self, test: GuidedTest) -> None:
        self._tests[test.id] = test
        ended = [t for t in self._tests.values() if t.state != RUNNING]
        for old in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._tests[old.id]
            self._runners.pop(old.id, None)


def _require_ready(slot: Any) -> None:
    status, reason, _since = slot.current()
    if status == "busy":
        raise GuidedRefused(
            409, "device_busy", f"device {slot.id} is busy ({reason}): try again once it is free"
        )
    if status != "ready":
        raise GuidedRefused(503, "device_not_ready", not_ready_text(slot.id, status, reason))
