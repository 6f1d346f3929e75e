"""What the daemon's capture endpoint accepts and does, per device kind.

Each kind names the request fields it accepts (with their types) and an async
`run` that performs one capture on a device slot. The API validates a request
against its kind's fields; the daemon dispatches to its `run`. A new device kind
adds one entry to CAPTURE_KINDS.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kitd.capture.fingerprint import (
    GatedCapture,
    capture_raw_fingerprint,
    encode_png,
    fingerprint_assessor,
    fingerprint_policy,
    gate_outcome,
    run_fingerprint_session,
)
from kitd.capture.iris import capture_intact_png, feed_for, frame_headers
from kitd.capture.iris_gate import gate_feed, iris_assessor, iris_policy
from kitd.capture.signature import record_signature, signature_facts
from kitd.config import KitConfig
from kitd.devices import DeviceSlot
from kitd.errors import DeviceGone, DeviceTimeout

log = logging.getLogger("kitd.capture")


@dataclass
class Capture:
    """A finished capture as the API returns it."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestField:
    types: type | tuple[type, ...]
    meaning: str
    positive: bool = False


@dataclass(frozen=True)
class CaptureKind:
    fields: dict[str, RequestField]
    run: Callable[[KitConfig, DeviceSlot, dict[str, Any]], Awaitable[Capture]]


def validate_request(kind: CaptureKind, body: Any) -> dict[str, Any]:
    """The request's options, or ValueError naming the field that is wrong."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    for key, value in body.items():
        spec = kind.fields.get(key)
        if spec is None:
            raise ValueError(f"unknown field '{key}' (accepted: {', '.join(kind.fields)})")
        types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong or (spec.positive and not value > 0):
            raise ValueError(f"field '{key}' must be {spec.meaning}, got {value!r}")
    return dict(body)


def quality_headers(report: Any, forced: bool = False) -> dict[str, str]:
    headers = {
        "X-Kit-Quality": f"{report.score:.1f}",
        "X-Kit-Feedback": ",".join(report.feedback),
    }
    if forced:
        headers["X-Kit-Forced"] = "true"
    return headers


async def capture_fingerprint(config: KitConfig, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Raw: one frame once a finger is on. Gated: presses through a session until one passes."""
    timeout = float(options.get("timeout_s") or config["fingerprint.capture_timeout_s"])
    poll = float(config["fingerprint.poll_interval_s"])
    assess = fingerprint_assessor(config)

    if options.get("raw"):

        def raw_job(driver: Any) -> Any:
            frame = capture_raw_fingerprint(driver, timeout, poll, slot.cancel)
            return GatedCapture(frame, assess(frame), forced=False, reasons=[])

        result = await slot.run_job(raw_job)
    else:
        policy = fingerprint_policy(config, timeout)

        def gated_job(driver: Any) -> Any:
            return run_fingerprint_session(driver, policy, assess, poll, slot.cancel)

        session = await slot.run_job(gated_job)
        result = gate_outcome(session, bool(options.get("force")))
    log.info(
        "captured from %s",
        slot.id,
        extra={
            "device": slot.id,
            "raw": bool(options.get("raw")),
            "score": round(float(result.report.score), 1),
            "forced": result.forced,
            "reasons": result.reasons,
        },
    )
    return Capture(
        body=encode_png(result.frame),
        content_type="image/png",
        headers=quality_headers(result.report, result.forced),
    )


async def capture_iris(config: KitConfig, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Raw: the next intact frame. Gated: live frames through a session until one passes."""
    timeout = float(options.get("timeout_s") or config["iris.capture_timeout_s"])
    if options.get("raw"):
        frame, png = await capture_intact_png(slot, timeout)
        log.info("captured from %s", slot.id, extra={"device": slot.id, "raw": True, "seq": frame.seq})
        return Capture(body=png, content_type="image/png", headers=frame_headers(frame))
    if slot.status != "ready":
        raise DeviceGone(f"device {slot.id} is {slot.status}: {slot.reason}")
    session = await gate_feed(feed_for(slot), iris_policy(config, timeout), iris_assessor(config))
    result = gate_outcome(session, bool(options.get("force")), unit="frame", nothing=DeviceTimeout)
    frame = result.frame
    png = await asyncio.get_running_loop().run_in_executor(None, encode_png, frame.image)
    log.info(
        "captured from %s",
        slot.id,
        extra={
            "device": slot.id,
            "raw": False,
            "seq": frame.seq,
            "score": round(float(result.report.score), 1),
            "forced": result.forced,
            "reasons": result.reasons,
        },
    )
    headers = {**frame_headers(frame), **quality_headers(result.report, result.forced)}
    return Capture(body=png, content_type="image/png", headers=headers)


async def capture_signature(config: KitConfig, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Record one signature: pen packets until `seconds` pass or the pen has been lifted a while."""
    seconds = float(options.get("seconds") or config["signature.capture_seconds"])
    quiet = float(config["signature.pen_lift_stop_s"])

    def job(pad: Any) -> Any:
        return record_signature(pad, seconds, quiet, slot.cancel)

    signature = await slot.run_job(job)
    facts = signature_facts(signature)
    log.info(
        "recorded a signature from %s",
        slot.id,
        extra={"device": slot.id, **{k: facts[k] for k in ("strokes", "points", "pen_down_s")}},
    )
    return Capture(body=json.dumps(signature.to_json()).encode(), content_type="application/json")


SECONDS = RequestField((int, float), "a number of seconds above 0", positive=True)
FLAG = RequestField(bool, "true or false")

CAPTURE_KINDS: dict[str, CaptureKind] = {
    "fingerprint": CaptureKind(
        fields={"timeout_s": SECONDS, "raw": FLAG, "force": FLAG},
        run=capture_fingerprint,
    ),
    "iris_camera": CaptureKind(fields={"timeout_s": SECONDS, "raw": FLAG, "force": FLAG}, run=capture_iris),
    "signature": CaptureKind(fields={"seconds": SECONDS}, run=capture_signature),
}
