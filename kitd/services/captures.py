"""What the daemon's capture endpoint does, per device kind.

Each kind has an async `run` that performs one capture on the kit: the same `take_*`
function kitctl uses with a device of its own, run here on the device's thread. The request
it is given has been checked against its kind's schema (kitd.schemas.CAPTURE_REQUESTS) by
the API. A new device kind adds one entry here and one schema there.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kitd.capture.fingerprint import take_fingerprint
from kitd.capture.gate import GatedCapture
from kitd.capture.iris_gate import take_iris
from kitd.capture.signature import record_signature, signature_facts
from kitd.config import KitConfig
from kitd.drivers.camera_frames import Frame
from kitd.errors import DeviceGone, DeviceTimeout
from kitd.grey_image import encode_png
from kitd.services.gates import fingerprint_assessor, gate_policy
from kitd.services.iris_feed import IrisFeed
from kitd.services.slots import DeviceSlot, not_ready_text

log = logging.getLogger("kitd.capture")


class CaptureContext(Protocol):
    """What a capture needs of the kit that runs it (kitd.kit.Kit is one)."""

    config: KitConfig

    def iris_feed(self, device_id: str) -> IrisFeed: ...


@dataclass
class Capture:
    """A finished capture as the API returns it."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    # What the assessor found (score, metrics, feedback): sealing writes it into the bundle.
    report: Any = None


@dataclass(frozen=True)
class CaptureKind:
    run: Callable[[CaptureContext, DeviceSlot, dict[str, Any]], Awaitable[Capture]]


def quality_headers(report: Any, forced: GatedCapture | None = None) -> dict[str, str]:
    """The report's score and feedback; for a `forced` capture, that it is and why."""
    headers = {
        "X-Kit-Quality": f"{report.score:.1f}",
        "X-Kit-Feedback": ",".join(report.feedback),
    }
    if forced is not None:
        headers["X-Kit-Forced"] = "true"
        headers["X-Kit-Forced-Because"] = forced.why_forced()
    return headers


def frame_headers(frame: Frame) -> dict[str, str]:
    """What a client may know of a camera frame: its number, time, losses and flags (no pixels)."""
    return {
        "X-Frame-Seq": str(frame.seq),
        "X-Frame-Time": f"{frame.wall:.3f}",
        "X-Frame-Missed": str(frame.missed),
        "X-Frame-Missed-Total": str(frame.missed_total),
        "X-Frame-Flags": ",".join(sorted(frame.flags)),
    }


def _log_capture(slot: DeviceSlot, options: dict[str, Any], result: GatedCapture, **extra: Any) -> None:
    log.info(
        "captured from %s",
        slot.id,
        extra={
            "device": slot.id,
            "raw": bool(options.get("raw")),
            **extra,
            **(
                {}
                if result.report is None
                else {
                    "score": round(float(result.report.score), 1),
                    "forced": result.forced,
                    "reasons": result.reasons,
                }
            ),
        },
    )


async def capture_fingerprint(kit: CaptureContext, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Raw: one frame once a finger is on. Gated: presses through the gate until one passes."""
    config = kit.config
    policy = gate_policy(config, "fingerprint", options.get("timeout_s"))
    assess = fingerprint_assessor(config)
    poll = float(config["fingerprint.poll_interval_s"])

    def job(reader: Any, cancel: threading.Event) -> GatedCapture:
        return take_fingerprint(
            reader,
            policy,
            assess,
            raw=bool(options.get("raw")),
            force=bool(options.get("force")),
            poll_interval_s=poll,
            cancel=cancel,
        )

    result = await slot.run_job(job)
    _log_capture(slot, options, result)
    return Capture(
        body=encode_png(result.frame),
        content_type="image/png",
        headers=quality_headers(result.report, result if result.forced else None),
    )


async def capture_iris(kit: CaptureContext, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Raw: the next intact frame. Gated: live frames through the gate until one passes.

    The capture holds the camera as a job (a second capture or a session gets 409), while the
    preview, which only watches, goes on; the gate takes the
    frames the camera's judge (the preview's overlay) judges, at its pace, so a frame is
    judged once and the camera's judging costs the same however many look at it."""
    policy = gate_policy(kit.config, "iris", options.get("timeout_s"))
    judge = kit.iris_feed(slot.id).quality

    def job(camera: Any, cancel: threading.Event) -> tuple[GatedCapture, bytes]:
        try:
            result = take_iris(
                camera,
                policy,
                judge.report_for,
                raw=bool(options.get("raw")),
                force=bool(options.get("force")),
                cancel=cancel,
                judge=judge,
            )
        except DeviceTimeout as exc:
            # No frame because the stream went away is the camera being gone, not a slow eye.
            status, reason, _ = camera.live_status()
            if status != "ready":
                raise DeviceGone(not_ready_text(slot.id, status, reason)) from exc
            raise
        return result, encode_png(result.frame.image)

    result, png = await slot.run_job(job)
    _log_capture(slot, options, result, seq=result.frame.seq)
    headers = frame_headers(result.frame)
    if result.report is not None:
        headers.update(quality_headers(result.report, result if result.forced else None))
    return Capture(body=png, content_type="image/png", headers=headers)


async def capture_signature(kit: CaptureContext, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Record one signature: pen packets until `seconds` pass or the pen has been lifted a while."""
    config = kit.config
    seconds = float(options.get("seconds") or config["signature.capture_seconds"])
    quiet = float(config["signature.pen_lift_stop_s"])

    def job(pad: Any, cancel: threading.Event) -> Any:
        return record_signature(pad, seconds, quiet, cancel)

    signature = await slot.run_job(job)
    facts = signature_facts(signature)
    log.info(
        "recorded a signature from %s",
        slot.id,
        extra={"device": slot.id, **{k: facts[k] for k in ("strokes", "points", "pen_down_s")}},
    )
    return Capture(body=json.dumps(signature.to_json()).encode(), content_type="application/json")


CAPTURE_KINDS: dict[str, CaptureKind] = {
    "fingerprint": CaptureKind(run=capture_fingerprint),
    "iris_camera": CaptureKind(run=capture_iris),
    "signature": CaptureKind(run=capture_signature),
}
