"""Fingerprint capture: wait for a finger on the reader, then take one frame (raw) or
run presses through the quality gate until one passes (gated).

`take_fingerprint` is the one way a fingerprint is taken, by the daemon (on the reader's
own thread) and by `kitctl capture fingerprint --device` alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from kitd.capture.gate import GatedCapture, gate_outcome, run_gate
from kitd.capture.session import CaptureSession, SessionPolicy
from kitd.errors import DeviceTimeout, NoFinger, ProtocolError

log = logging.getLogger("kitd.capture.fingerprint")

# A session retries a press after a device error (one unanswered command, one garbled reply)
# and fails only after this many in a row; a pause first lets the reader settle.
MAX_DEVICE_ERRORS = 3
DEVICE_ERROR_PAUSE_S = 0.2


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


def run_fingerprint_session(
    reader: FingerprintReader,
    policy: SessionPolicy | CaptureSession,
    assess: Callable[[np.ndarray], Any],
    poll_interval_s: float = 0.1,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_assessment: Callable[[CaptureSession, Any], None] | None = None,
    lock: threading.Lock | None = None,
    *,
    retry_device_errors: bool = False,
    device: str = "fingerprint",
) -> CaptureSession:
    """Capture and assess presses while a finger is on the reader, until the session ends.

    `lock` guards the session against confirm/cancel from another thread;
    `on_assessment(session, report)` is told of every press as it is judged. With
    `retry_device_errors` a press that met a DeviceTimeout or ProtocolError is logged and
    tried again after a short pause, up to MAX_DEVICE_ERRORS in a row; otherwise (and after
    that) the error passes through. `device` names the reader in the log.
    """
    errors_in_a_row = 0

    def press() -> np.ndarray | None:
        if reader.finger_present():
            return reader.capture_frame()
        time.sleep(poll_interval_s)
        return None

    def next_press() -> np.ndarray | None:
        nonlocal errors_in_a_row
        try:
            frame = press()
        except (DeviceTimeout, ProtocolError) as exc:
            errors_in_a_row += 1
            if not retry_device_errors or errors_in_a_row >= MAX_DEVICE_ERRORS:
                raise
            log.warning(
                "press on %s failed (%d of %d in a row), retrying: %s",
                device,
                errors_in_a_row,
                MAX_DEVICE_ERRORS,
                exc,
                extra={"device": device, "reason": str(exc), "action": "retry", "errors": errors_in_a_row},
            )
            if cancel is not None:
                cancel.wait(DEVICE_ERROR_PAUSE_S)
            else:
                time.sleep(DEVICE_ERROR_PAUSE_S)
            return None
        if errors_in_a_row:
            log.info(
                "%s answers again after %d failed press(es)",
                device,
                errors_in_a_row,
                extra={"device": device, "reason": "answered again", "action": "recovered"},
            )
            errors_in_a_row = 0
        return frame

    told = None if on_assessment is None else (lambda session, _frame, report: on_assessment(session, report))
    return run_gate(policy, next_press, assess, clock=clock, cancel=cancel, lock=lock, on_assessment=told)


def take_fingerprint(
    reader: FingerprintReader,
    policy: SessionPolicy,
    assess: Callable[[np.ndarray], Any],
    *,
    raw: bool = False,
    force: bool = False,
    poll_interval_s: float = 0.1,
    cancel: threading.Event | None = None,
) -> GatedCapture:
    """One fingerprint: with `raw`, the first frame once a finger is on (judged, never
    refused); otherwise presses through the gate until one passes (QualityGateFailed when
    none did, unless `force` keeps the best)."""
    if raw:
        frame = capture_raw_fingerprint(reader, policy.timeout_s, poll_interval_s, cancel)
        return GatedCapture(frame, assess(frame), forced=False, reasons=[])
    session = run_fingerprint_session(reader, policy, assess, poll_interval_s, cancel)
    return gate_outcome(session, force)
