"""Fingerprint capture: wait for a finger on the reader, then take one frame (raw) or
run presses through a capture session until one passes the quality gate (gated)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from kitd.capture.session import FAILED, FORCED, CaptureSession, SessionPolicy, configured_policy
from kitd.errors import KitError, NoFinger, ProtocolError, QualityGateFailed


class FingerprintReader(Protocol):
    def finger_present(self) -> bool: ...

    def capture_frame(self) -> np.ndarray: ...


def capture_raw_fingerprint(
    reader: FingerprintReader,
    timeout_s: float,
    poll_interval_s: float = 0.1,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Poll until a finger is present, then capture one frame (no quality gate).

    Raises NoFinger when no finger arrives within `timeout_s` or the wait is
    cancelled; device errors pass through as the driver raised them.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if reader.finger_present():
            return reader.capture_frame()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoFinger(f"no finger on the reader within {timeout_s:g} s")
        pause = min(poll_interval_s, remaining)
        if cancel is not None:
            if cancel.wait(pause):
                raise NoFinger("capture cancelled before a finger arrived")
        else:
            time.sleep(pause)


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit grey frame as PNG bytes (lossless)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ProtocolError("could not encode the frame as PNG")
    return data.tobytes()


def fingerprint_policy(config: Any, timeout_s: float | None = None) -> SessionPolicy:
    """The session policy for a fingerprint capture from the config."""
    return configured_policy(config, "fingerprint", timeout_s)


def fingerprint_assessor(config: Any) -> Callable[[np.ndarray], Any]:
    """assess(frame) with the configured resolution and thresholds."""
    from kitd.capture.fingerprint_quality import assess_fingerprint

    ppi = float(config["fingerprint.ppi"])
    thresholds = config.thresholds("fingerprint") or None
    return lambda frame: assess_fingerprint(frame, ppi, thresholds)


def run_fingerprint_session(
    reader: FingerprintReader,
    policy: SessionPolicy | CaptureSession,
    assess: Callable[[np.ndarray], Any],
    poll_interval_s: float = 0.1,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_assessment: Callable[[CaptureSession, Any], None] | None = None,
    lock: threading.Lock | None = None,
) -> CaptureSession:
    """Capture and assess presses while a finger is on the reader, until the session ends.

    `lock` guards the session against confirm/cancel from another thread;
    `on_assessment(session, report)` is told of every press as it is judged.
    """
    session = policy if isinstance(policy, CaptureSession) else CaptureSession(policy, started_at=clock())
    guard = lock or threading.Lock()
    while True:
        with guard:
            if cancel is not None and cancel.is_set():
                session.cancel()
            if session.ended:
                return session
        if reader.finger_present():
            frame = reader.capture_frame()
            report = assess(frame)
            with guard:
                session.offer(report, frame, clock())
            if on_assessment is not None:
                on_assessment(session, report)
        else:
            with guard:
                running = session.tick(clock()) == "running"
            if running:
                time.sleep(poll_interval_s)


@dataclass
class GatedCapture:
    """The frame a gated capture returns, its report, and whether it was forced."""

    frame: np.ndarray
    report: Any
    forced: bool
    reasons: list[str]


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
    if session.state == FORCED and not force:
        checks = ", ".join(best.report.failed_checks) or "score"
        raise QualityGateFailed(
            f"no {unit} passed the quality gate (best score {best.score:.0f}; failing: {checks})",
            score=best.score,
            failed_checks=list(best.report.failed_checks),
            feedback=list(best.report.feedback),
        )
    return GatedCapture(best.payload, best.report, session.state == FORCED, list(session.reasons))
