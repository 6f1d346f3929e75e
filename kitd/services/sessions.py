"""Live capture sessions in the daemon: started over the API, run on the device's thread,
reported as events, kept in memory only (nothing biometric is written to disk).

A session holds its device for its whole life. Each modality says how its
session runs (SESSION_MODALITIES); the shared gate is kitd.capture.session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kitd.capture.fingerprint import run_fingerprint_session
from kitd.capture.iris_gate import run_iris_session
from kitd.capture.session import CaptureSession, SessionPolicy
from kitd.capture.signature import record_signature, signature_from_samples
from kitd.capture.signature_quality import assess_signature
from kitd.config import CATEGORIES, KitConfig
from kitd.errors import ConfigError, DeviceBusy, DeviceGone, KitError, NoPenInput, shown_value
from kitd.events import EventHub
from kitd.grey_image import encode_png
from kitd.services.captures import Capture, CaptureContext, quality_headers
from kitd.services.gates import fingerprint_assessor, gate_policy
from kitd.services.slots import DeviceSlot, not_ready_text

log = logging.getLogger("kitd.sessions")

KEEP_ENDED = 50
# The pen's points go to the screen in batches this far apart (~20 a second).
INK_INTERVAL_S = 0.05


class SessionNotFound(KitError):
    pass


class SessionConflict(KitError):
    """The session is not in a state that allows the request (e.g. no capture yet)."""


@dataclass
class LiveSession:
    """One session as the daemon tracks it."""

    id: str
    device_id: str
    modality: str
    label: str
    category: str
    core: CaptureSession
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancel: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.time)
    error: str | None = None
    # The latest press of a fingerprint session (press number, frame, its score), for the
    # officer's screen; in memory only, like everything a session holds.
    latest: tuple[int, Any, float] | None = None
    # Set on the event loop once the session's job has returned and its device is free again:
    # the core says "ended" from the device's thread a moment before that.
    freed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def device_freed(self) -> bool:
        return self.freed.is_set()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            core = self.core
            best = core.best[0] if core.best else None
            result = core.result
            return {
                "id": self.id,
                "device_id": self.device_id,
                "modality": self.modality,
                "label": self.label,
                "category": self.category,
                "state": "failed" if self.error else core.state,
                "attempts": core.attempts,
                "timeout_s": core.policy.timeout_s,
                "max_attempts": core.policy.max_attempts,
                "best_score": None if best is None else round(best.score, 1),
                **session_progress(core),
                "forced": core.forced,
                "reasons": [self.error] if self.error else list(core.reasons),
                "ended_by": "device" if self.error else core.ended_by,
                "result": None
                if result is None
                else {
                    "frame": result.frame,
                    "score": round(result.score, 1),
                    "feedback": list(result.report.feedback),
                },
            }


Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class SessionModality:
    """How one modality's session runs: its device kind, policy, runner and result encoding.

    `run(kit, slot, live, emit)` feeds `live.core` (under `live.lock`) until it ends,
    calling `emit("assessment", ...)` for each frame it judges; `emit` is safe from any thread.
    """

    kind: str
    policy: Callable[[KitConfig], SessionPolicy]
    run: Callable[[CaptureContext, DeviceSlot, LiveSession, Emit], Awaitable[None]]
    encode: Callable[[Any], Capture]


def session_progress(core: CaptureSession) -> dict[str, int | None]:
    """Passing frames in a row so far and how many capture the item ("Tahan posisi... 1/3");
    ``passes_needed`` is None for a session the officer ends (a signature)."""
    needed = core.policy.consecutive_passes
    return {
        "passes": core.passes_in_a_row,
        "passes_needed": None if core.policy.needs_confirm or needed == sys.maxsize else needed,
    }


def assessment_event(live: LiveSession, frame: int, report: Any) -> dict[str, Any]:
    return {
        "session": live.id,
        "frame": frame,
        "score": round(float(report.score), 1),
        "passed": bool(report.passed),
        "feedback": list(report.feedback),
        **session_progress(live.core),
    }


def latest_press(live: LiveSession) -> Capture:
    """The latest press of a running (or ended) fingerprint session as a PNG, with its score;
    SessionConflict when there is none (yet, or not a fingerprint session)."""
    with live.lock:
        latest = live.latest
    if latest is None:
        raise SessionConflict(f"session {live.id} has no press to show (yet)")
    press, frame, score = latest
    headers = {"X-Kit-Press": str(press), "X-Kit-Quality": f"{score:.1f}"}
    return Capture(encode_png(frame), "image/png", headers, None)


async def _run_fingerprint(kit: CaptureContext, slot: DeviceSlot, live: LiveSession, emit: Emit) -> None:
    """Presses on the reader's thread, holding the reader for the session's life."""
    config = kit.config
    assess = fingerprint_assessor(config)
    poll = float(config["fingerprint.poll_interval_s"])

    pressed: list[Any] = [None]

    def judge(frame: Any) -> Any:
        pressed[0] = frame  # the frame this report is about, kept by told() for the screen
        return assess(frame)

    def told(session: CaptureSession, report: Any) -> None:
        live.latest = (session.attempts, pressed[0], round(float(report.score), 1))
        emit("assessment", assessment_event(live, session.attempts, report))

    def job(driver: Any, _cancel: threading.Event) -> CaptureSession:
        return run_fingerprint_session(
            driver,
            live.core,
            judge,
            poll,
            live.cancel,
            on_assessment=told,
            lock=live.lock,
            retry_device_errors=True,
            device=slot.id,
        )

    await slot.run_job(job)


def session_message(core: CaptureSession) -> tuple[str, str]:
    """What the officer is told of a session's state, in Bahasa Indonesia and English."""
    if core.state == "running":
        if core.passes_in_a_row:
            done, needed = core.passes_in_a_row, core.policy.consecutive_passes
            return (f"Tahan posisi... {done}/{needed}", f"Hold still... {done}/{needed}")
        return ("Sesi perekaman berjalan", "Capture session running")
    return {
        "captured": ("Berhasil direkam", "Captured"),
        "confirmed": ("Diterima petugas", "Accepted by the officer"),
        "forced": ("Direkam dengan catatan kualitas", "Captured with quality notes (forced)"),
        "cancelled": ("Dibatalkan", "Cancelled"),
    }.get(core.state, ("Gagal direkam", "Capture failed"))


async def _run_iris(kit: CaptureContext, slot: DeviceSlot, live: LiveSession, emit: Emit) -> None:
    """Frames from the camera's reader thread (the preview keeps running), judged as they come
    by the preview's own overlay, which also shows the session's state to the officer."""
    overlay = kit.iris_feed(slot.id).quality

    def told(session: CaptureSession, frame: Any, report: Any) -> None:
        event = assessment_event(live, session.attempts, report)
        circles = report.circles()
        if circles is not None:
            event["circles"] = {
                "pupil": [round(v, 1) for v in circles[0]],
                "iris": [round(v, 1) for v in circles[1]],
            }
        event["camera_frame"] = frame.seq
        emit("assessment", event)
        overlay.session_message = session_message(session)

    def job(camera: Any, _cancel: threading.Event) -> CaptureSession:
        return run_iris_session(
            camera,  # type: ignore[arg-type]
            live.core,
            overlay.report_for,
            cancel=live.cancel,
            lock=live.lock,
            on_assessment=told,
            judge=overlay,
        )

    try:
        await slot.run_job(job)
    finally:
        overlay.session_message = session_message(live.core)
        asyncio.get_running_loop().call_later(3.0, _clear_message, overlay, live)


def _clear_message(overlay: Any, live: LiveSession) -> None:
    if overlay.session_message == session_message(live.core):
        overlay.session_message = None


def signature_policy(config: KitConfig) -> SessionPolicy:
    """A signature is never captured by itself: the officer confirms it, or the time runs out."""
    return SessionPolicy(
        consecutive_passes=sys.maxsize,
        keep_best=1,
        timeout_s=float(config["signature.capture_seconds"]),
        prefer_latest=True,
        needs_confirm=True,
    )


async def _run_signature(kit: CaptureContext, slot: DeviceSlot, live: LiveSession, emit: Emit) -> None:
    """The pad streams; the signature so far is judged after every read that brought packets."""
    thresholds = kit.config.thresholds("signature") or None
    core = live.core

    def job(pad: Any, _cancel: threading.Event) -> None:
        judged = 0
        ink = InkBatcher(live.id, pad.query, emit)

        def progress(samples: list[Any]) -> bool:
            nonlocal judged
            now = time.monotonic()
            ink.offer(samples, now)
            with live.lock:
                if live.cancel.is_set():
                    core.cancel()
                core.tick(now)
                ended = core.ended
            if ended:
                ink.offer(samples, now, flush=True)  # the screen has every point kept
                return True
            if len(samples) == judged:
                return False
            judged = len(samples)
            signature = signature_from_samples(pad.query, samples)
            report = assess_signature(signature, thresholds)
            with live.lock:
                confirmed = core.ended  # while this read was judged: keep what was confirmed
                if not confirmed:
                    core.offer(report, signature, now)
            if confirmed:
                ink.offer(samples, now, flush=True)  # as above: the screen has every point kept
                return True
            emit("assessment", {**assessment_event(live, core.attempts, report), "points": len(samples)})
            return False

        # A margin past the session's own timeout: the session, not the recording, ends it.
        try:
            record_signature(pad, core.policy.timeout_s + 5.0, quiet_s=None, until=progress)
        except NoPenInput:
            if not core.ended:  # cancelled before the pen touched the pad is just cancelled
                raise
        with live.lock:
            core.tick(time.monotonic() + core.policy.timeout_s)  # the recording ran out

    await slot.run_job(job)


class InkBatcher:
    """The pen's new points as ``ink`` events, at most one every INK_INTERVAL_S (and at once
    when the pen lifts, so a stroke's end is not held back): the screen draws them live."""

    def __init__(self, session_id: str, query: Any, emit: Emit) -> None:
        self.session_id = session_id
        self.pad = {"max_x": query.max_x, "max_y": query.max_y, "max_pressure": query.max_pressure}
        self.emit = emit
        self.sent = 0
        self.sent_at = -math.inf
        self.tip_down = False  # the pen was on the pad at the last point sent

    def offer(self, samples: list[Any], now: float, flush: bool = False) -> None:
        new = samples[self.sent :]
        if not new:
            return
        # A stroke ended within these points (the tip went up): sent at once. A pen hovering
        # above the pad is no stroke's end and waits for the interval like any point.
        lifted = False
        tip_down = self.tip_down
        for sample in new:
            lifted = lifted or (tip_down and not sample.pen.tip)
            tip_down = bool(sample.pen.tip)
        if now - self.sent_at < INK_INTERVAL_S and not (lifted or flush):
            return
        self.tip_down = tip_down
        points = [[s.pen.x, s.pen.y, s.pen.pressure, 1 if s.pen.tip else 0] for s in new]
        # When the batch's first point was read, on the host's clock: the screen (same host)
        # can tell how long a point took to become ink.
        read_at = round(time.time() - (time.monotonic() - new[0].t), 3)
        self.emit(
            "ink",
            {"session": self.session_id, "from": self.sent, "points": points, "read_at": read_at, **self.pad},
        )
        self.sent, self.sent_at = len(samples), now


def _signature_result(candidate: Any) -> Capture:
    return Capture(
        json.dumps(candidate.payload.to_json()).encode(),
        "application/json",
        quality_headers(candidate.report),
        candidate.report,
    )


def _iris_result(candidate: Any) -> Capture:
    report = candidate.report
    return Capture(encode_png(candidate.payload.image), "image/png", quality_headers(report), report)


def _fingerprint_result(candidate: Any) -> Capture:
    report = candidate.report
    return Capture(encode_png(candidate.payload), "image/png", quality_headers(report), report)


SESSION_MODALITIES: dict[str, SessionModality] = {
    "signature": SessionModality(
        kind="signature", policy=signature_policy, run=_run_signature, encode=_signature_result
    ),
    "iris": SessionModality(
        kind="iris_camera",
        policy=lambda config: gate_policy(config, "iris"),
        run=_run_iris,
        encode=_iris_result,
    ),
    "fingerprint": SessionModality(
        kind="fingerprint",
        policy=lambda config: gate_policy(config, "fingerprint"),
        run=_run_fingerprint,
        encode=_fingerprint_result,
    ),
}


def category_policy(base: SessionPolicy, config: KitConfig, category: str) -> SessionPolicy:
    """More time and attempts for the categories that need patience; the same thresholds."""
    time_factor = float(config[f"categories.{category}.time_factor"])
    attempt_factor = float(config[f"categories.{category}.attempt_factor"])
    attempts = base.max_attempts
    return dataclasses.replace(
        base,
        timeout_s=base.timeout_s * time_factor,
        max_attempts=None if attempts is None else max(1, math.ceil(attempts * attempt_factor)),
    )


class LiveSessions:
    """The daemon's sessions, by id; ended ones are kept (in memory) for a while."""

    def __init__(self, kit: CaptureContext, events: EventHub) -> None:
        self.kit = kit
        self.config = kit.config
        self.events = events
        self._sessions: OrderedDict[str, LiveSession] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, session_id: str) -> LiveSession:
        live = self._sessions.get(session_id)
        if live is None:
            raise SessionNotFound(f"no session {shown_value(session_id)}")
        return live

    def start(self, slot: DeviceSlot, modality: str, label: str, category: str) -> LiveSession:
        spec = SESSION_MODALITIES.get(modality)
        if spec is None:
            raise ConfigError(
                f"field 'modality': '{modality}' has no session (known: {', '.join(SESSION_MODALITIES)})"
            )
        if spec.kind != slot.kind:
            raise ConfigError(f"field 'modality': device '{slot.id}' is a {slot.kind} device, not {modality}")
        if category not in CATEGORIES:
            raise ConfigError(f"field 'category': '{category}' is not one of {', '.join(CATEGORIES)}")
        status, reason, _ = slot.current()
        running = any(
            s.device_id == slot.id and not (s.core.ended or s.error) for s in self._sessions.values()
        )
        if status == "busy" or running:
            raise DeviceBusy(f"device {slot.id} is busy")
        if status != "ready":
            raise DeviceGone(not_ready_text(slot.id, status, reason))
        policy = category_policy(spec.policy(self.config), self.config, category)
        live = LiveSession(
            id=uuid.uuid4().hex[:12],
            device_id=slot.id,
            modality=modality,
            label=label,
            category=category,
            core=CaptureSession(policy, started_at=time.monotonic()),
        )
        self._sessions[live.id] = live
        self._forget_old()
        task = asyncio.create_task(self._run(slot, spec, live), name=f"session-{live.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info(
            "session %s started on %s", live.id, slot.id, extra={"session": live.id, "category": category}
        )
        return live

    async def _run(self, slot: DeviceSlot, spec: SessionModality, live: LiveSession) -> None:
        try:
            await spec.run(self.kit, slot, live, self.events.publish_threadsafe)
        except KitError as exc:
            live.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a session must end with a reason, whatever happened
            log.exception("session %s failed", live.id)
            live.error = f"unexpected error: {exc}"
        live.freed.set()
        summary = live.summary()
        if summary["result"] is not None and not live.error:
            self.events.publish(
                "capture",
                {"session": live.id, "score": summary["result"]["score"], "forced": summary["forced"]},
            )
        self.events.publish(
            "end",
            {
                "session": live.id,
                "outcome": summary["state"],
                "reasons": summary["reasons"],
                "ended_by": summary["ended_by"],
            },
        )
        failed = summary["state"] == "failed"
        log.log(
            logging.WARNING if failed else logging.INFO,
            "session %s ended %s",
            live.id,
            summary["state"],
            extra={
                "session": live.id,
                "device": live.device_id,
                **({"reason": summary["reasons"][0] if summary["reasons"] else ""} if failed else {}),
                **summary,
            },
        )

    def confirm(self, session_id: str) -> LiveSession:
        live = self.get(session_id)
        with live.lock:
            if live.core.ended:
                raise SessionConflict(f"session {session_id} has already ended ({live.core.state})")
            if not live.core.best:
                raise SessionConflict(f"session {session_id} has nothing to confirm yet")
            live.core.confirm()
        return live

    def cancel(self, session_id: str) -> LiveSession:
        live = self.get(session_id)
        with live.lock:
            if live.core.ended or live.error:
                state = "failed" if live.error else live.core.state
                raise SessionConflict(f"session {session_id} has already ended ({state})")
            live.cancel.set()
        return live

    async def freed(self, session_id: str, timeout_s: float) -> bool:
        """Whether session ``session_id`` has ended and freed its device, waiting up to
        ``timeout_s`` for it (a cancelled session ends at its device's next frame or press)."""
        live = self._sessions.get(session_id)
        if live is None or live.device_freed:
            return True
        try:
            await asyncio.wait_for(live.freed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def result(self, session_id: str) -> Capture:
        live = self.get(session_id)
        with live.lock:
            candidate = live.core.result
            forced = live.core.forced
        if candidate is None:
            raise SessionConflict(f"session {session_id} has no capture (state {live.summary()['state']})")
        capture = SESSION_MODALITIES[live.modality].encode(candidate)
        if forced:
            capture.headers["X-Kit-Forced"] = "true"
        return capture

    def _forget_old(self) -> None:
        ended = [sid for sid, s in self._sessions.items() if s.core.ended or s.error]
        for sid in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._sessions[sid]

    async def shutdown(self) -> None:
        for live in self._sessions.values():
            live.cancel.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
