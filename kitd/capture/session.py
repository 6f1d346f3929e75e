"""The capture session: one gate for every modality.

Pure logic, no I/O: each frame's assessment is offered as it arrives (for the
NB-1010 one press). The session auto-captures once the score has passed on K
consecutive frames, keeps the best N candidates, and ends on auto-capture,
confirmation, cancel, or — after its timeout or attempt limit — with its best
candidate flagged `forced` and the failing checks recorded, never silently.
The caller supplies the clock, so tests script time as they script scores.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Protocol


class Assessment(Protocol):
    """What an assessor's report offers the session."""

    score: float
    passed: bool
    failed_checks: list[str]
    feedback: list[str]


@dataclass(frozen=True)
class SessionPolicy:
    """How patient a session is: K passes in a row, N kept, time and attempt limits."""

    consecutive_passes: int = 1
    keep_best: int = 3
    timeout_s: float = 20.0
    max_attempts: int | None = None
    # A growing capture (the signature so far) is best when latest: keep and return the newest.
    prefer_latest: bool = False
    # Never captured by itself: only the officer's confirm ends it with a capture (a signature).
    needs_confirm: bool = False

    def __post_init__(self) -> None:
        if self.consecutive_passes < 1 or self.keep_best < 1 or self.timeout_s <= 0:
            raise ValueError("consecutive_passes and keep_best must be >= 1, timeout_s > 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 when given")


@dataclass
class Candidate:
    """One assessed frame the session may return."""

    frame: int
    report: Any
    payload: Any

    @property
    def score(self) -> float:
        return float(self.report.score)


RUNNING = "running"
CAPTURED = "captured"  # auto-captured: K consecutive passes
CONFIRMED = "confirmed"  # the officer accepted the best candidate
FORCED = "forced"  # limit reached: the best candidate, flagged, with its failing checks
CANCELLED = "cancelled"
FAILED = "failed"  # limit reached with nothing assessed at all
# What ended a session, for a screen that must not guess it from the reason's words: enough
# passes, the officer's accept, the time or attempt limit, the end of a replayed input, a cancel.
ENDED_BY: tuple[str, ...] = ("passes", "officer", "time_limit", "attempt_limit", "end_of_input", "cancel")


@dataclass
class CaptureSession:
    """A session's state; feed it with `offer`, `tick`, `confirm` and `cancel`."""

    policy: SessionPolicy
    started_at: float
    state: str = RUNNING
    attempts: int = 0
    passes_in_a_row: int = 0
    passes: int = 0  # frames that passed, in a row or not
    best: list[Candidate] = field(default_factory=list)  # best first
    result: Candidate | None = None
    reasons: list[str] = field(default_factory=list)
    ended_by: str | None = None  # one of ENDED_BY once ended

    @property
    def ended(self) -> bool:
        return self.state != RUNNING

    @property
    def forced(self) -> bool:
        return self.state == FORCED

    def offer(self, report: Assessment, payload: Any, now: float) -> str:
        """Assess one more frame; returns the state after it."""
        if self.ended:
            return self.state
        self.attempts += 1
        candidate = Candidate(frame=self.attempts, report=report, payload=payload)
        self._keep(candidate)
        self.passes_in_a_row = self.passes_in_a_row + 1 if report.passed else 0
        self.passes += bool(report.passed)
        if self.passes_in_a_row >= self.policy.consecutive_passes and not self.policy.needs_confirm:
            self._end(CAPTURED, self._best_passing(candidate), "passes")
        elif self.policy.max_attempts is not None and self.attempts >= self.policy.max_attempts:
            self.give_up(self.why_not(f"in {self.attempts} attempts"), "attempt_limit")
        else:
            self.tick(now)
        return self.state

    def tick(self, now: float) -> str:
        """Let time pass: the session is forced once its timeout has run out."""
        if not self.ended and now - self.started_at >= self.policy.timeout_s:
            self.give_up(self.why_not(f"within {self.policy.timeout_s:g} s"), "time_limit")
        return self.state

    @property
    def not_steady(self) -> bool:
        """Frames passed, but never as many in a row as the gate needs."""
        return self.passes > 0 and not self.policy.needs_confirm

    def why_not(self, limit: str) -> str:
        """Why nothing was captured within `limit` ("within 20 s", "in 6 attempts"), truthfully."""
        if self.policy.needs_confirm and self.best and self.best[0].report.passed:
            return f"not confirmed by the officer {limit}"
        if self.not_steady:
            needed = self.policy.consecutive_passes
            captures = "capture" if self.passes == 1 else "captures"
            return f"{self.passes} {captures} passed but never {needed} in a row {limit}"
        return f"no capture passed {limit}"

    def confirm(self) -> str:
        """The officer accepts the best candidate as it is (flagged forced if it fails the gate)."""
        if self.ended:
            return self.state
        if not self.best:
            raise ValueError("nothing to confirm yet")
        top = self.best[0]
        if top.report.passed:
            self._end(CONFIRMED, top, "officer")
        else:
            self.give_up("accepted by the officer without passing", "officer")
        return self.state

    def cancel(self) -> str:
        if not self.ended:
            self._end(CANCELLED, None, "cancel")
        return self.state

    def _keep(self, candidate: Candidate) -> None:
        # Sorted by score, best first; ties keep the earlier frame first.
        if self.policy.prefer_latest:
            self.best.insert(0, candidate)
        else:
            keys = [(-c.score, c.frame) for c in self.best]
            self.best.insert(bisect.bisect(keys, (-candidate.score, candidate.frame)), candidate)
        del self.best[self.policy.keep_best :]

    def _best_passing(self, latest: Candidate) -> Candidate:
        # A failing frame can outscore a passing one; only a passing frame is captured.
        return next((c for c in self.best if c.report.passed), latest)

    def give_up(self, why: str, by: str) -> None:
        """End now with the best candidate flagged forced (failed when there is none), saying
        why; ``by`` is what ended it (ENDED_BY)."""
        if not self.best:
            self._end(FAILED, None, by)
            self.reasons = [why]
            return
        top = self.best[0]
        self._end(FORCED, top, by)
        self.reasons = [why, *top.report.failed_checks]

    def _end(self, state: str, result: Candidate | None, by: str) -> None:
        self.state = state
        self.result = result
        self.ended_by = by
