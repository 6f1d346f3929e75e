"""What the daemon's capture endpoint accepts and does, per device kind.

Each kind names the request fields it accepts (with their types) and an async
`run` that performs one capture on a device slot. The API validates a request
against its kind's fields; the daemon dispatches to its `run`. A new device kind
adds one entry to CAPTURE_KINDS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kitd.capture.fingerprint import capture_raw_fingerprint, encode_png
from kitd.config import KitConfig
from kitd.devices import DeviceSlot

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


async def capture_fingerprint(config: KitConfig, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
    """Wait for a finger and take one frame (every capture is raw until the quality gate lands)."""
    timeout = float(options.get("timeout_s") or config["fingerprint.capture_timeout_s"])
    poll = float(config["fingerprint.poll_interval_s"])

    def job(driver: Any) -> Any:
        return capture_raw_fingerprint(driver, timeout, poll, slot.cancel)

    frame = await slot.run_job(job)
    log.info("captured from %s", slot.id, extra={"device": slot.id, "raw": True})
    return Capture(body=encode_png(frame), content_type="image/png")


SECONDS = RequestField((int, float), "a number of seconds above 0", positive=True)
FLAG = RequestField(bool, "true or false")

CAPTURE_KINDS: dict[str, CaptureKind] = {
    "fingerprint": CaptureKind(
        fields={"timeout_s": SECONDS, "raw": FLAG, "force": FLAG},
        run=capture_fingerprint,
    ),
}
