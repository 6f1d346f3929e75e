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
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kitd.capture.session import CaptureSession, SessionPolicy
from kitd.errors import DeviceTimeout, EndOfStream

Assess = Callable[[np.ndarray], Any]


def iris_policy(config: Any, timeout_s: float | None = None) -> SessionPolicy:
    """The session policy for a gated iris capture from the config (0 attempts: no limit)."""
    attempts = int(config["iris.max_attempts"])
    return SessionPolicy(
        consecutive_passes=int(config["iris.consecutive_passes"]),
        keep_best=int(config["iris.keep_best"]),
        timeout_s=float(timeout_s or config["iris.capture_timeout_s"]),
        max_attempts=attempts or None,
    )


def iris_assessor(config: Any) -> Assess:
    """assess(frame) with the configured `[quality.iris]` thresholds."""
    from kitd.capture.iris_quality import assess_iris

    thresholds = config.thresholds("iris") or None
    return lambda image: assess_iris(image, thresholds)


async def gate_feed(feed: Any, policy: SessionPolicy, assess: Assess) -> CaptureSession:
    """Judge the frames of a daemon feed (kitd.capture.iris.IrisFeed) until the session ends.

    The payload of each candidate is the Frame itself. Assessment runs off the event loop.
    EndOfStream (a replayed file ran out) passes through when nothing was judged yet;
    otherwise the session is forced with what it has.
    """
    loop = asyncio.get_running_loop()
    session = CaptureSession(policy, started_at=loop.time())
    after = 0  # the newest frame first: it is at most one frame old
    while not session.ended:
        remaining = policy.timeout_s - (loop.time() - session.started_at)
        if remaining <= 0:
            session.tick(loop.time())
            break
        try:
            frame = await feed.next(after, min(remaining, 0.5))
        except EndOfStream:
            if not session.best:
                raise
            session._force("the replay ended before a frame passed")  # noqa: SLF001 - same gate
            break
        if frame is None:
            session.tick(loop.time())
            continue
        after = frame.seq
        if not frame.intact:
            continue
        report = await loop.run_in_executor(None, assess, frame.image)
        session.offer(report, frame, loop.time())
    return session


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
                session.offer(assess(frame.image), frame, clock())
            if session.ended:
                return session
        if not session.best:
            raise EndOfStream(f"{camera.source.label}: no intact frame")
        session._force("the replay ended before a frame passed")  # noqa: SLF001 - same gate
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
        session.offer(assess(frame.image), frame, clock())
    return session
