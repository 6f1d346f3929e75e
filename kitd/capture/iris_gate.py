"""The iris quality gate: live frames through a capture session until one passes.

The same gate as the fingerprint reader's (kitd.capture.session and
kitd.capture.fingerprint.gate_outcome): every intact frame is assessed as it arrives, the
capture ends once `iris.consecutive_passes` frames in a row have passed, the best
`iris.keep_best` are kept, and on the timeout (or attempt limit) the best frame comes back
flagged forced with its failing checks — or, without --force, a 422 naming them. Frames
that are not intact (torn, black, repeated) are not judged at all. Two ways in: the daemon's
asyncio feed (`gate_feed`) and a camera opened directly by kitctl (`gate_camera`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from kitd.capture.session import CaptureSession, SessionPolicy, configured_policy
from kitd.errors import DeviceTimeout, EndOfStream

Assess = Callable[[Any], Any]  # assess(frame) -> report, the frame a driver Frame


def iris_policy(config: Any, timeout_s: float | None = None) -> SessionPolicy:
    """The session policy for a gated iris capture from the config."""
    return configured_policy(config, "iris", timeout_s)


def iris_assessor(config: Any) -> Assess:
    """assess(frame) with the configured `[quality.iris]` thresholds.

    In the daemon the preview overlay judges the same frames with the same thresholds and
    keeps its last report, so a gate or session asks it rather than judging a frame twice.
    """
    from kitd.capture.iris import PREVIEW_OVERLAYS
    from kitd.capture.iris_overlay import installed_overlay
    from kitd.capture.iris_quality import assess_iris

    thresholds = config.thresholds("iris") or None
    overlay = installed_overlay(PREVIEW_OVERLAYS)
    if overlay is not None and (overlay.thresholds or None) == thresholds:
        return overlay.report_for
    return lambda frame: assess_iris(frame.image, thresholds)


async def gate_feed(
    feed: Any,
    policy: SessionPolicy | CaptureSession,
    assess: Assess,
    *,
    on_assessment: Callable[[CaptureSession, Any, Any], None] | None = None,
    lock: threading.Lock | None = None,
    cancel: threading.Event | None = None,
) -> CaptureSession:
    """Judge the frames of a daemon feed (kitd.capture.iris.IrisFeed) until the session ends.

    The payload of each candidate is the Frame itself. Assessment runs off the event loop.
    EndOfStream (a replayed file ran out) passes through when nothing was judged yet;
    otherwise the session is forced with what it has. A live session passes its own
    CaptureSession, the `lock` that guards it against confirm/cancel, a `cancel` event, and
    `on_assessment(session, frame, report)` to hear of every judged frame.
    """
    loop = asyncio.get_running_loop()
    session = policy if isinstance(policy, CaptureSession) else CaptureSession(policy, started_at=loop.time())
    started = loop.time()
    guard = lock or threading.Lock()
    timeout_s = session.policy.timeout_s
    after = 0  # the newest frame first: it is at most one frame old
    while True:
        elapsed = loop.time() - started
        with guard:
            if cancel is not None and cancel.is_set():
                session.cancel()
            if not session.ended and elapsed >= timeout_s:
                session.give_up(f"no capture passed within {timeout_s:g} s")
            if session.ended:
                return session
        try:
            frame = await feed.next(after, min(timeout_s - elapsed, 0.5))
        except EndOfStream:
            with guard:
                if not session.best:
                    raise
                session.give_up("the replay ended before a frame passed")
            return session
        if frame is None or not frame.intact:
            after = frame.seq if frame is not None else after
            continue
        after = frame.seq
        report = await loop.run_in_executor(None, assess, frame)
        with guard:
            # The session's own clock is not the loop's: only order and the timeout above matter.
            session.offer(report, frame, session.started_at + (loop.time() - started))
        if on_assessment is not None:
            on_assessment(session, frame, report)


def gate_camera(
    camera: Any, policy: SessionPolicy, assess: Assess, clock: Callable[[], float] = time.monotonic
) -> CaptureSession:
    """Judge frames of a camera opened directly (kitctl --device) until the session ends.

    A replayed file is judged frame by frame in order (its end ends the session); a live
    camera frame by frame as they come. Payloads are Frames.
    """
    session = CaptureSession(policy, started_at=clock())
    if not camera.source.live:
        for frame in camera.frames():
            if frame.intact:
                session.offer(assess(frame), frame, clock())
            if session.ended:
                return session
        if not session.best:
            raise EndOfStream(f"{camera.source.label}: no intact frame")
        session.give_up("the replay ended before a frame passed")
        return session
    camera.open()
    while not session.ended:
        remaining = policy.timeout_s - (clock() - session.started_at)
        if remaining <= 0:
            session.tick(clock())
            break
        try:
            frame = camera.next_intact(remaining)
        except DeviceTimeout:
            session.tick(clock())
            if not session.ended:
                raise
            break
        session.offer(assess(frame), frame, clock())
    return session
