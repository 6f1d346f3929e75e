"""Hand-drawn signatures: control points typed in mm on the pad, played by a pen model.

A drawing is a list of strokes, each a list of (x, y) control points in mm on the
simulated pad (origin top left, y down, as the ISDV4 reports). The pen model turns it
into the recording `kitctl capture signature` writes, the way a hand and the kit
would make it:

* each stroke is a Catmull-Rom curve through its points (two points: a straight
  line); the pen slows in bends by the two-thirds power law of handwriting (speed
  proportional to the cube root of the radius of curvature), and eases in and out
  at the ends;
* pressure rises over ~70 ms at the touch, wanders a little, and falls at the lift;
* a trembling hand adds a 5-8 Hz tremor of `tremor_mm` and a little jitter;
* between strokes the pen hovers (tip up, in proximity) for a pause; it comes into
  range before the first stroke and leaves after the last (a packet out of
  proximity);
* packets come at the pad's ~130 a second and are stamped with the host's clock on
  arrival: a few ms late, and now and then two or three arrive in one read and
  share a stamp (as kitd's reads of the serial port do).

Deterministic for a seed. tests/data/signatures/drawings.toml holds the drawings;
`python -m hil.hand_drawn DRAWINGS.toml` writes NAME.json beside it for each.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kitd.capture.signature import PadInfo, PenPoint, Signature
from kitd.drivers.isdv4 import PenPacket

PACKET_RATE_HZ = 130.0
POINTS_PER_MM = 100

Point = tuple[float, float]


@dataclass(frozen=True)
class Hand:
    """How the person writes."""

    speed_mm_s: float = 40.0  # mean speed along the path
    pressure: float = 0.55  # share of the pad's maximum mid-stroke
    pause_s: tuple[float, float] = (0.15, 0.4)  # hover between strokes
    tremor_mm: float = 0.0
    tremor_hz: float = 6.5
    seed: int = 1


def catmull_rom(points: Sequence[Point], per_segment: int = 32) -> np.ndarray:
    """A smooth curve through the points (uniform Catmull-Rom, ends doubled), N x 2 in mm."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 2:
        return p.copy()
    padded = np.vstack([p[0], p, p[-1]])
    u = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    pieces = []
    for i in range(len(p) - 1):
        p0, p1, p2, p3 = padded[i : i + 4]
        pieces.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * u
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * u**3
            )
        )
    pieces.append(p[-1:])
    return np.vstack(pieces)


def _resample(path: np.ndarray, step_mm: float = 0.05) -> np.ndarray:
    """The path at even steps along its length."""
    seg = np.hypot(*np.diff(path, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return path[:1]
    even = np.linspace(0.0, s[-1], max(2, int(math.ceil(s[-1] / step_mm)) + 1))
    return np.column_stack([np.interp(even, s, path[:, 0]), np.interp(even, s, path[:, 1])])


def stroke_timing(path: np.ndarray, speed_mm_s: float) -> np.ndarray:
    """Time (s) at each point of an evenly resampled path: two-thirds power law, eased ends."""
    if len(path) < 2:
        return np.zeros(len(path))
    d1 = np.gradient(path, axis=0)
    d2 = np.gradient(d1, axis=0)
    cross = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    speed = np.hypot(d1[:, 0], d1[:, 1])
    curvature = cross / np.maximum(speed**3, 1e-12)
    radius = np.clip(1.0 / np.maximum(curvature, 1e-9), 0.3, 40.0)
    v = radius ** (1.0 / 3.0)
    step = np.hypot(*np.diff(path, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(step)])
    # Start and finish slowly: a third of full speed at the ends, full after 2 mm.
    ease = np.minimum(np.minimum(s, s[-1] - s) / 2.0, 1.0)
    v = v * (0.35 + 0.65 * np.sin(0.5 * math.pi * ease))
    dt = step / (0.5 * (v[1:] + v[:-1]))
    t = np.concatenate([[0.0], np.cumsum(dt)])
    # Scale so the stroke takes its length over the hand's mean speed.
    return t * (s[-1] / speed_mm_s) / t[-1]


def _bump(u: np.ndarray, edge: float) -> np.ndarray:
    rise = np.clip(u / edge, 0.0, 1.0)
    fall = np.clip((1.0 - u) / edge, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _hover(start: np.ndarray, end: np.ndarray, seconds: float, rate: float) -> np.ndarray:
    n = max(2, int(round(seconds * rate)))
    ease = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, n))[:, None]
    return start + (end - start) * ease


def pen_track(strokes: Sequence[Sequence[Point]], hand: Hand, rate_hz: float = PACKET_RATE_HZ) -> np.ndarray:
    """One row per packet: x mm, y mm, pressure share, tip (0/1), proximity (0/1)."""
    rng = np.random.default_rng(hand.seed)
    rows: list[np.ndarray] = []
    first = np.asarray(strokes[0][0], dtype=np.float64)
    position = first + np.array([-6.0, -5.0])
    for index, stroke in enumerate(strokes):
        path = _resample(catmull_rom(stroke))
        t = stroke_timing(path, hand.speed_mm_s)
        n = max(1, int(round(t[-1] * rate_hz)) + 1)
        times = np.arange(n) / rate_hz
        xy = np.column_stack([np.interp(times, t, path[:, 0]), np.interp(times, t, path[:, 1])])
        if hand.tremor_mm:
            phase = rng.uniform(0, 2 * math.pi, 2)
            wobble = 2 * math.pi * hand.tremor_hz * times
            xy[:, 0] += hand.tremor_mm * np.sin(wobble + phase[0])
            xy[:, 1] += hand.tremor_mm * np.sin(1.13 * wobble + phase[1])
            xy += rng.normal(0.0, 0.03, xy.shape)
        duration = max(times[-1], 1.0 / rate_hz)
        u = times / duration
        wander = 1.0 + 0.12 * np.sin(2 * math.pi * 1.3 * times + rng.uniform(0, 2 * math.pi))
        pressure = hand.pressure * _bump(u, min(0.45, 0.07 / duration)) * wander
        pressure = np.maximum(pressure, 0.02)  # the tip switch closes under some force
        pause = 0.3 if index == 0 else rng.uniform(*hand.pause_s)
        hover = _hover(position, xy[0], pause, rate_hz)
        rows.append(np.column_stack([hover, np.zeros(len(hover)), np.zeros(len(hover)), np.ones(len(hover))]))
        rows.append(np.column_stack([xy, pressure, np.ones(n), np.ones(n)]))
        position = xy[-1] + np.array([0.5, -1.5])
    away = _hover(position, position + np.array([5.0, -6.0]), 0.2, rate_hz)
    rows.append(np.column_stack([away, np.zeros(len(away)), np.zeros(len(away)), np.ones(len(away))]))
    rows.append(np.array([[away[-1, 0], away[-1, 1], 0.0, 0.0, 0.0]]))
    return np.vstack(rows)


def arrival_stamps(count: int, rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Host stamps (ms from the first) of packets sent at `rate_hz`: late by 1-4 ms, and one read
    in eight collects two or three packets under the last one's stamp."""
    sent = np.arange(count) / rate_hz * 1000.0
    stamps = sent + rng.uniform(1.0, 4.0, count)
    index = 0
    while index < count:
        size = int(rng.choice([1, 2, 3], p=[0.875, 0.09, 0.035]))
        group = slice(index, min(index + size, count))
        stamps[group] = stamps[group][-1]
        index += size
    stamps = np.maximum.accumulate(stamps)
    return np.round(stamps - stamps[0], 3)


def recording(
    pad: PadInfo, packets: Sequence[PenPacket], stamps_ms: Sequence[float] | None = None
) -> Signature:
    """The recording of pen packets: stamped as sent at PACKET_RATE_HZ unless `stamps_ms` are given.

    What kitd's capture would hold had the pad sent them (the synthetic signatures of
    hil.synthetic_signature and the hand-drawn ones alike).
    """
    if stamps_ms is None:
        stamps_ms = [round(i * 1000.0 / PACKET_RATE_HZ, 3) for i in range(len(packets))]
    points = tuple(
        PenPoint(float(t), p.x, p.y, p.pressure, p.tip, p.proximity)
        for t, p in zip(stamps_ms, packets, strict=True)
    )
    return Signature(pad, points)


def draw_signature(strokes: Sequence[Sequence[Point]], hand: Hand, pad: PadInfo) -> Signature:
    """The recording of a hand-drawn signature on `pad` (device units, 100 points per mm)."""
    if not strokes or any(len(stroke) < 1 for stroke in strokes):
        raise ValueError("a drawing needs at least one stroke, each with at least one point")
    track = pen_track(strokes, hand)
    rng = np.random.default_rng(hand.seed + 1000)
    stamps = arrival_stamps(len(track), PACKET_RATE_HZ, rng)
    x = np.clip(np.rint(track[:, 0] * POINTS_PER_MM), 0, pad.max_x).astype(int)
    y = np.clip(np.rint(track[:, 1] * POINTS_PER_MM), 0, pad.max_y).astype(int)
    p = np.clip(np.rint(track[:, 2] * pad.max_pressure), 0, pad.max_pressure).astype(int)
    packets = [
        PenPacket(int(x[i]), int(y[i]), int(p[i]), tip=bool(track[i, 3]), proximity=bool(track[i, 4]))
        for i in range(len(track))
    ]
    return recording(pad, packets, stamps.tolist())


@dataclass(frozen=True)
class Drawing:
    """One hand-made signature of a drawings file, with what the assessor must say of it."""

    name: str
    strokes: list[list[Point]]
    hand: Hand
    expect_passed: bool
    expect_first: str
    why: str


def load_drawings(path: Path) -> tuple[PadInfo, list[Drawing]]:
    """The pad and the drawings of a drawings TOML file (see tests/data/signatures/drawings.toml)."""
    doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    pad = PadInfo(**doc["pad"])
    drawings = []
    for name, entry in doc["signature"].items():
        hand = Hand(
            speed_mm_s=float(entry["speed_mm_s"]),
            pressure=float(entry["pressure"]),
            pause_s=(float(entry["pause_s"][0]), float(entry["pause_s"][1])),
            tremor_mm=float(entry.get("tremor_mm", 0.0)),
            tremor_hz=float(entry.get("tremor_hz", 6.5)),
            seed=int(entry["seed"]),
        )
        strokes = [[(float(x), float(y)) for x, y in stroke] for stroke in entry["strokes"]]
        passed, first = bool(entry["expect_passed"]), str(entry["expect_first"])
        drawings.append(Drawing(name, strokes, hand, passed, first, entry["why"]))
    return pad, drawings


def recording_json(drawing: Drawing, pad: PadInfo) -> str:
    """The file kitctl capture signature would write for this drawing."""
    return json.dumps(draw_signature(drawing.strokes, drawing.hand, pad).to_json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.hand_drawn", description=__doc__.splitlines()[0])
    parser.add_argument("drawings", type=Path, help="a drawings TOML file; NAME.json is written beside it")
    args = parser.parse_args(argv)
    try:
        pad, drawings = load_drawings(args.drawings)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        print(f"hand_drawn: {args.drawings}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for drawing in drawings:
        out = args.drawings.parent / f"{drawing.name}.json"
        out.write_text(recording_json(drawing, pad) + "\n", encoding="utf-8")
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
