"""The one gate loop: candidates from any source through a CaptureSession until it ends,
and what an ended session gives the caller.

A source is a function returning the next candidate (a fingerprint press, an intact camera
frame), or None when there was none this time (no finger on the reader, no new frame
yet); it raises EndOfStream when a replayed source has run out. Each modality supplies its
source; the loop, the locking against confirm/cancel from another thread and the verdict
are the same for all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kitd.capture.session import FAILED, FORCED, CaptureSession, SessionPolicy
from kitd.errors import EndOfStream, KitError, NoFinger, NotSteady, QualityGateFailed


def run_gate(
    policy: SessionPolicy | CaptureSession,
    next_candidate: Callable[[], Any | None],
    assess: Callable[[Any], Any],
    *,
    clock: Callable[[], float] = time.monotonic,
    cancel: threading.Event | None = None,
    lock: threading.Lock | None = None,
    on_assessment: Callable[[CaptureSession, Any, Any], None] | None = None,
) -> CaptureSession:
    """Offer each candidate's assessment to the session until it ends.

    A live session passes its own CaptureSession, the `lock` that guards it against
    confirm/cancel, a `cancel` event, and `on_assessment(session, candidate, report)` to
    hear of every judged candidate. EndOfStream passes through when nothing was judged yet;
    otherwise the session is forced with what it has.
    """
    session = policy if isinstance(policy, CaptureSession) else CaptureSession(policy, started_at=clock())
    guard = lock or threading.Lock()
    while True:
        with guard:
            if cancel is not None and cancel.is_set():
                session.cancel()
            if session.ended:
                return session
        try:
            candidate = next_candidate()
        except EndOfStream:
            with guard:
                if not session.best:
                    raise
                session.give_up(session.why_not("before the replay ended"), "end_of_input")
            return session
        if candidate is None:
            with guard:
                session.tick(clock())
            continue
        report = assess(candidate)
        with guard:
            session.offer(report, candidate, clock())
        if on_assessment is not None:
            on_assessment(session, candidate, report)


@dataclass
class GatedCapture:
    """The capture a gate returns (a frame), its report, and whether it was forced."""

    frame: Any
    report: Any
    forced: bool
    reasons: list[str]

    def why_forced(self) -> str:
        """Why a forced capture is forced: its failing checks, or (when its checks pass) why
        the gate still did not take it, e.g. never enough passes in a row."""
        if self.report.failed_checks:
            return f"failing: {', '.join(self.report.failed_checks)}"
        return f"its checks pass, but {self.reasons[0]}"


def gate_outcome(
    session: CaptureSession, force: bool, unit: str = "press", nothing: type[KitError] = NoFinger
) -> GatedCapture:
    """What an ended session gives the caller: the capture, or the reason there is none.

    `unit` names what was judged in the message ("press", "frame"); `nothing` is the error
    when nothing was judged at all (no finger came; no intact frame came).
    """
    if session.state == FAILED or session.result is None:
        raise nothing(session.reasons[0] if session.reasons else "capture cancelled")
    best = session.result
    reasons = list(session.reasons)
    if session.state == FORCED and session.not_steady:
        # The session counts "captures"; the caller's words name what they were.
        needed, why = session.policy.consecutive_passes, reasons[0]
        limit = why.partition(" in a row ")[2] or f"({why})"
        units = unit if session.passes == 1 else f"{unit}{'es' if unit.endswith('s') else 's'}"
        reasons[0] = f"{session.passes} {units} passed but never {needed} in a row {limit}"
        if not force:
            raise NotSteady(
                f"{reasons[0]} (best score {best.score:.0f})",
                score=best.score,
                feedback=list(best.report.feedback),
                passes=session.passes,
                consecutive_passes=needed,
            )
    if session.state == FORCED and not force:
        checks = ", ".join(best.report.failed_checks) or "score"
        raise QualityGateFailed(
            f"no {unit} passed the quality gate (best score {best.score:.0f}; failing: {checks})",
            score=best.score,
            failed_checks=list(best.report.failed_checks),
            feedback=list(best.report.feedback),
        )
    return GatedCapture(best.payload, best.report, session.state == FORCED, reasons)
