"""Signature capture: record the pad's pen packets, and what a recording is made into.

`record_signature` runs on the caller's thread (the device slot's in the daemon):
it starts the pad and keeps every pen packet until the time is up, or until no
packet at all has arrived for a while after the first tip-down. A `Signature` is
the time series in device units with the pad's maxima and resolution; from it
come the JSON the API and kitctl hand out, the ISO/IEC 19794-7 channels, the
strokes (tip down to tip up; an unfinished one is closed at the end), simple facts
and a rendered PNG (white background, black ink whose width follows pressure,
cropped to the ink with a margin).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kitd.drivers.isdv4 import POINTS_PER_MM, LineCounts, PenQuery, PenSample
from kitd.errors import KitError, NoPenInput, ProtocolError
from kitd.grey_image import encode_png

# Rendering: 10 px per mm is 254 dpi, finer than the pen's line; ink 0.1-0.6 mm wide.
RENDER_PX_PER_MM = 10.0
RENDER_MARGIN_MM = 3.0
INK_MIN_PX = 1.0
INK_MAX_PX = 6.0
_SUBPIXEL_SHIFT = 4  # cv2 fixed-point coordinates: 1/16 px


class Pad(Protocol):
    """What a recording needs from a pad driver (ISDV4Pad on a kit)."""

    query: PenQuery | None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read_samples(self, timeout_s: float = ...) -> list[PenSample]: ...

    @property
    def counts(self) -> LineCounts: ...


@dataclass(frozen=True)
class PadInfo:
    """The pad as the recording describes it (device units)."""

    max_x: int
    max_y: int
    max_pressure: int
    firmware: int
    points_per_mm: int = POINTS_PER_MM


@dataclass(frozen=True)
class PenPoint:
    """One pen packet of a recording; t_ms counts from the recording's first packet."""

    t_ms: float
    x: int
    y: int
    pressure: int
    tip: bool
    proximity: bool


@dataclass(frozen=True)
class Signature:
    """A recorded signature: every pen packet after start, hover included, in order."""

    pad: PadInfo
    points: tuple[PenPoint, ...]

    def to_json(self) -> dict[str, Any]:
        """The exact shape `kitctl capture signature` writes and the daemon returns."""
        return {
            "device": {
                "max_x": self.pad.max_x,
                "max_y": self.pad.max_y,
                "max_pressure": self.pad.max_pressure,
                "firmware": self.pad.firmware,
                "points_per_mm": self.pad.points_per_mm,
            },
            "points": [
                {
                    "t_ms": p.t_ms,
                    "x": p.x,
                    "y": p.y,
                    "pressure": p.pressure,
                    "tip": p.tip,
                    "proximity": p.proximity,
                }
                for p in self.points
            ],
            "strokes": len(self.strokes()),
        }

    def strokes(self) -> list[range]:
        return strokes([p.tip for p in self.points])

    def channels(self) -> dict[str, np.ndarray]:
        """ISO/IEC 19794-7 channels in device units: X, Y, F (pressure), T (ms), S (tip switch)."""
        return {
            "X": np.array([p.x for p in self.points], dtype=np.int32),
            "Y": np.array([p.y for p in self.points], dtype=np.int32),
            "F": np.array([p.pressure for p in self.points], dtype=np.int32),
            "T": np.array([p.t_ms for p in self.points], dtype=np.float64),
            "S": np.array([p.tip for p in self.points], dtype=bool),
        }

    def channel_scales(self) -> dict[str, dict[str, Any]]:
        """Each channel's unit and range, as 19794-7 describes channels (for quality assessment)."""
        per_mm = self.pad.points_per_mm
        return {
            "X": {"unit": f"1/{per_mm} mm", "min": 0, "max": self.pad.max_x},
            "Y": {"unit": f"1/{per_mm} mm", "min": 0, "max": self.pad.max_y},
            "F": {"unit": "device pressure level", "min": 0, "max": self.pad.max_pressure},
            "T": {"unit": "ms", "min": 0.0, "max": self.points[-1].t_ms if self.points else 0.0},
            "S": {"unit": "tip switch", "min": 0, "max": 1},
        }


def strokes(tip: Sequence[bool]) -> list[range]:
    """Index ranges of the strokes: each run of tip-down packets (one left open is closed at the end)."""
    found: list[range] = []
    start: int | None = None
    for index, down in enumerate(tip):
        if down and start is None:
            start = index
        elif not down and start is not None:
            found.append(range(start, index))
            start = None
    if start is not None:
        found.append(range(start, len(tip)))
    return found


def signature_from_samples(query: PenQuery, samples: Sequence[PenSample]) -> Signature:
    """The recording's time series, t_ms counted from the first packet."""
    pad = PadInfo(query.max_x, query.max_y, query.max_pressure, query.firmware)
    if not samples:
        return Signature(pad, ())
    t0 = samples[0].t
    points = tuple(
        PenPoint(
            t_ms=round((s.t - t0) * 1000.0, 3),
            x=s.pen.x,
            y=s.pen.y,
            pressure=s.pen.pressure,
            tip=s.pen.tip,
            proximity=s.pen.proximity,
        )
        for s in samples
    )
    return Signature(pad, points)


def signature_from_json(doc: Any) -> Signature:
    """A Signature from the JSON shape of `to_json` (ValueError naming what is wrong)."""
    try:
        device = doc["device"]
        pad = PadInfo(
            max_x=int(device["max_x"]),
            max_y=int(device["max_y"]),
            max_pressure=int(device["max_pressure"]),
            firmware=int(device["firmware"]),
            points_per_mm=int(device["points_per_mm"]),
        )
        points = tuple(
            PenPoint(
                t_ms=float(p["t_ms"]),
                x=int(p["x"]),
                y=int(p["y"]),
                pressure=int(p["pressure"]),
                tip=bool(p["tip"]),
                proximity=bool(p["proximity"]),
            )
            for p in doc["points"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a signature recording: {type(exc).__name__} {exc}") from None
    return Signature(pad, points)


# ---- recording ------------------------------------------------------------------------------


def stop_reason(
    now: float,
    started: float,
    seconds: float,
    first_tip_at: float | None,
    last_packet_at: float | None,
    quiet_s: float,
) -> str | None:
    """Why a recording should end now, or None to go on (all times on one monotonic clock)."""
    if now - started >= seconds:
        return "time"
    if first_tip_at is not None and last_packet_at is not None and now - last_packet_at >= quiet_s:
        return "pen lifted"
    return None


def record_signature(
    pad: Pad,
    seconds: float,
    quiet_s: float | None = 2.0,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    until: Callable[[list[PenSample]], bool] | None = None,
) -> Signature:
    """Start the pad and record until `seconds` have passed or `quiet_s` without a packet after
    the first tip-down; NoPenInput when no pen packet arrived at all. Device errors pass through.

    A live session passes `quiet_s=None` (the officer decides when it is finished) and
    `until(samples)`, told of the recording after every read, which ends it by returning True."""
    query = pad.query
    if query is None:
        raise ProtocolError("the signature pad was not opened")
    samples: list[PenSample] = []
    first_tip_at: float | None = None
    pad.start()
    # The pad's counts run for as long as it is open: this recording's noise is what it adds.
    noise_before = pad.counts.noise_bytes
    started = clock()
    try:
        while not (cancel is not None and cancel.is_set()):
            last_at = samples[-1].t if samples else None
            quiet = math.inf if quiet_s is None else quiet_s
            if stop_reason(clock(), started, seconds, first_tip_at, last_at, quiet):
                break
            for sample in pad.read_samples():
                samples.append(sample)
                if first_tip_at is None and sample.pen.tip:
                    first_tip_at = sample.t
            if until is not None and until(samples):
                break
    except BaseException:
        # The loop's error (the pad unplugged, say) is the one to report, not stop's echo of it.
        with contextlib.suppress(KitError):
            pad.stop()
        raise
    pad.stop()
    if not samples:
        noise = pad.counts.noise_bytes - noise_before
        heard = f"; {noise} bytes of line noise (wrong baud rate?)" if noise else ""
        raise NoPenInput(f"no pen input within {seconds:g} s{heard}")
    return signature_from_samples(query, samples)


# ---- facts and rendering ---------------------------------------------------------------------


def signature_facts(signature: Signature) -> dict[str, Any]:
    """Stroke count, pen-down duration and the ink's bounding box in mm (None without ink)."""
    points = signature.points
    found = signature.strokes()
    down_ms = 0.0
    for stroke in found:
        # A stroke lasts from its first tip-down packet to the packet that lifts it (or its last).
        end = stroke.stop if stroke.stop < len(points) else stroke.stop - 1
        down_ms += points[end].t_ms - points[stroke.start].t_ms
    ink = [points[i] for stroke in found for i in stroke]
    per_mm = signature.pad.points_per_mm
    box = None
    if ink:
        xs, ys = [p.x for p in ink], [p.y for p in ink]
        box = {
            "left_mm": round(min(xs) / per_mm, 2),
            "top_mm": round(min(ys) / per_mm, 2),
            "width_mm": round((max(xs) - min(xs)) / per_mm, 2),
            "height_mm": round((max(ys) - min(ys)) / per_mm, 2),
        }
    return {
        "strokes": len(found),
        "points": len(points),
        "pen_down_s": round(down_ms / 1000.0, 3),
        "duration_s": round(points[-1].t_ms / 1000.0, 3) if points else 0.0,
        "ink_mm": box,
    }


def ink_width_px(pressure: float, max_pressure: int) -> float:
    """Line width for a pressure: INK_MIN_PX at a touch, INK_MAX_PX at full pressure."""
    share = min(max(pressure / max_pressure, 0.0), 1.0) if max_pressure > 0 else 0.0
    return INK_MIN_PX + share * (INK_MAX_PX - INK_MIN_PX)


def render_signature(
    signature: Signature, px_per_mm: float = RENDER_PX_PER_MM, margin_mm: float = RENDER_MARGIN_MM
) -> np.ndarray:
    """8-bit grey image: white background, black ink along each stroke, cropped to the ink.

    Device point (x, y) lands on pixel ((x - ink left) * s + margin, (y - ink top) * s + margin)
    with s = px_per_mm / points_per_mm. Without ink the image is the margin alone.
    """
    import cv2

    points = signature.points
    found = signature.strokes()
    margin = int(round(margin_mm * px_per_mm))
    ink = [points[i] for stroke in found for i in stroke]
    if not ink:
        return np.full((2 * margin + 1, 2 * margin + 1), 255, dtype=np.uint8)
    scale = px_per_mm / signature.pad.points_per_mm
    left, top = min(p.x for p in ink), min(p.y for p in ink)
    width = int(math.ceil((max(p.x for p in ink) - left) * scale)) + 2 * margin + 1
    height = int(math.ceil((max(p.y for p in ink) - top) * scale)) + 2 * margin + 1
    image = np.full((height, width), 255, dtype=np.uint8)
    unit = 1 << _SUBPIXEL_SHIFT

    def at(p: PenPoint) -> tuple[int, int]:
        return (
            int(round(((p.x - left) * scale + margin) * unit)),
            int(round(((p.y - top) * scale + margin) * unit)),
        )

    max_pressure = signature.pad.max_pressure
    for stroke in found:
        run = [points[i] for i in stroke]
        if len(run) == 1:
            radius = ink_width_px(run[0].pressure, max_pressure) / 2
            cv2.circle(image, at(run[0]), int(round(radius * unit)), 0, -1, cv2.LINE_AA, _SUBPIXEL_SHIFT)
            continue
        for a, b in zip(run, run[1:], strict=False):
            width_px = ink_width_px((a.pressure + b.pressure) / 2, max_pressure)
            cv2.line(image, at(a), at(b), 0, max(1, int(round(width_px))), cv2.LINE_AA, _SUBPIXEL_SHIFT)
    return image


def render_png(signature: Signature) -> bytes:
    return encode_png(render_signature(signature))
