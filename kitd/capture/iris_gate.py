"""Iris capture: the next intact frame (raw), or live frames through the quality gate until
one passes (gated).

The same gate as the fingerprint reader's (kitd.capture.gate): every intact frame is
assessed as it arrives, the capture ends once `iris.consecutive_passes` frames in a row
have passed, the best `iris.keep_best` are kept, and on the timeout (or attempt limit) the
best frame comes back flagged forced with its failing checks — or, without force,
QualityGateFailed naming them. Frames that are not intact (torn, black, repeated) are not
judged at all; when none came intact, the capture says what they were; a camera that sends
no frame for CAMERA_LOST_S ends it as gone (DeviceGone), not blamed on the eye at the time
limit. `take_iris` is the one way an iris is taken, by the daemon (from the
camera's reader thread) and by `kitctl capture iris --device` (which replays a file frame
by frame, without pacing) alike.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from kitd.capture.gate import GatedCapture, gate_outcome, run_gate
from kitd.capture.session import FAILED, CaptureSession, SessionPolicy
from kitd.drivers.camera_frames import Frame, describe_flags
from kitd.drivers.uvc_camera import IrisCamera
from kitd.errors import DeviceGone, DeviceTimeout, EndOfStream

Assess = Callable[[Frame], Any]  # assess(frame) -> report
NEWEST_WAIT_S = 0.5  # a gate with no new frame this long looks at its clock again
# A camera not streaming this long ends a gate's wait as gone: a stall of a second or two
# (the driver reopens the stream) is ridden out, a camera that died is not blamed on the eye.
CAMERA_LOST_S = 3.0


class Judge(Protocol):
    """A camera's paced judge (kitd.capture.iris_overlay.IrisQualityOverlay in the daemon)."""

    def due_in(self) -> float: ...

    def judge_if_due(self, frame: Frame) -> tuple[Frame, Any] | None: ...

    def report_for(self, frame: Frame) -> Any: ...


def newest_frames(
    camera: IrisCamera,
    deadline: Callable[[], float],
    cancel: threading.Event | None = None,
    judge: Judge | None = None,
) -> Callable[[], Frame | None]:
    """Candidates from a camera's reader thread: the newest intact frame each time (at most
    one frame old), None when none came within NEWEST_WAIT_S or before `deadline()`.

    With a `judge`, only frames it has judged are candidates (it judges at its own pace,
    shared with the preview and any other gate on the camera), each once."""
    latest = camera.latest()
    after = latest.seq if latest is not None else 0  # the newest frame first
    offered: Frame | None = None
    started_after = after
    lost_since: float | None = None

    def not_streaming() -> None:
        """DeviceGone once no frame has come for CAMERA_LOST_S: the clock starts at the first
        wait in vain and only a frame stops it (a camera that reopens, says ready, and sends
        nothing again is not streaming either)."""
        nonlocal lost_since
        now = time.monotonic()
        lost_since = now - NEWEST_WAIT_S if lost_since is None else lost_since
        if now - lost_since >= CAMERA_LOST_S:
            status, reason, _ = camera.live_status()
            raise DeviceGone(
                f"the iris camera stopped streaming during the capture: no frame for "
                f"{CAMERA_LOST_S:g} s ({status}: {reason})"
            )

    def next_frame() -> Frame | None:
        nonlocal after, offered, lost_since
        if judge is not None:
            # Nothing will be judged before then: do not wake for the frames in between.
            pause = min(judge.due_in(), max(0.0, deadline()))
            if pause > 0 and (cancel.wait(pause) if cancel is not None else time.sleep(pause)):
                return None
            latest = camera.latest()
            if latest is not None and latest.seq > after and latest.intact:
                after = latest.seq - 1  # take the newest frame now rather than wait for the next
        wait = min(NEWEST_WAIT_S, max(0.0, deadline()))
        try:
            frame = camera.wait_frame(after, wait, cancel)
        except DeviceTimeout:
            not_streaming()
            return None
        lost_since = None
        after = frame.seq
        if judge is None:
            return frame if frame.intact else None
        newest = judge.judge_if_due(frame) if frame.intact else None
        if newest is None:
            return None
        judged = newest[0]
        if judged is offered or not judged.intact or judged.seq <= started_after:
            return None
        offered = judged
        return judged

    return next_frame


def replayed_frames(camera: IrisCamera) -> Callable[[], Frame]:
    """Candidates from a replayed file read directly, in order: each intact frame, then
    EndOfStream (saying what the frames were when none was intact)."""
    frames: Iterator[Frame] = camera.frames()
    seen: Counter[str] = Counter()
    intact = 0

    def next_frame() -> Frame:
        nonlocal intact
        for frame in frames:
            if frame.intact:
                intact += 1
                return frame
            seen.update(frame.flags or {"undecodable"})
        if intact:
            raise EndOfStream(f"{camera.source.label}: replay ended")
        flags = describe_flags(seen) or "no frames at all"
        raise EndOfStream(f"{camera.source.label}: no intact frame ({flags})")

    return next_frame


def run_iris_session(
    camera: IrisCamera,
    policy: SessionPolicy | CaptureSession,
    assess: Assess,
    *,
    replay_directly: bool = False,
    cancel: threading.Event | None = None,
    lock: threading.Lock | None = None,
    on_assessment: Callable[[CaptureSession, Frame, Any], None] | None = None,
    judge: Judge | None = None,
) -> CaptureSession:
    """Judge `camera`'s intact frames until the session ends.

    The camera is open and streaming (the daemon's slot, or kitctl after `open()`), unless
    `replay_directly`: then its replayed file is read frame by frame here. A live session
    passes its own CaptureSession, the `lock` guarding it and `on_assessment`. With a
    `judge` (the daemon's, shared with the preview) only the frames it judged at its pace are
    candidates; `assess` is then its `report_for`, which finds their reports.
    """
    timeout_s = policy.policy.timeout_s if isinstance(policy, CaptureSession) else policy.timeout_s
    started = time.monotonic()
    if replay_directly:
        source: Callable[[], Frame | None] = replayed_frames(camera)
    else:
        source = newest_frames(camera, lambda: timeout_s - (time.monotonic() - started), cancel, judge)
    return run_gate(policy, source, assess, cancel=cancel, lock=lock, on_assessment=on_assessment)


def take_iris(
    camera: IrisCamera,
    policy: SessionPolicy,
    assess: Assess,
    *,
    raw: bool = False,
    force: bool = False,
    replay_directly: bool = False,
    cancel: threading.Event | None = None,
    judge: Judge | None = None,
) -> GatedCapture:
    """One iris capture from `camera` (open, or replayed directly as in run_iris_session).

    With `raw`, the next intact frame, not judged (DeviceTimeout, or EndOfStream for a file,
    saying what the other frames were). Gated, the verdict: QualityGateFailed unless `force`.
    """
    if raw:
        if replay_directly:
            frame = replayed_frames(camera)()
        else:
            frame = camera.next_intact(policy.timeout_s, cancel)
        return GatedCapture(frame, None, forced=False, reasons=[])
    flagged_before = None if replay_directly else Counter(camera.stats.flagged)
    session = run_iris_session(
        camera, policy, assess, replay_directly=replay_directly, cancel=cancel, judge=judge
    )
    if session.state == FAILED and flagged_before is not None:
        # Nothing judged: say what the frames that did come were, as a raw capture does.
        seen = camera.stats.flagged - flagged_before
        if seen:
            why = session.reasons[0] if session.reasons else "no capture passed"
            raise DeviceTimeout(f"{why}; frames seen but not intact: {describe_flags(seen)}")
    return gate_outcome(session, force, unit="frame", nothing=DeviceTimeout)
