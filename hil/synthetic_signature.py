"""Synthetic handwriting for the simulated signature pad: pen states at the pad's packet rate.

A signature is a pen that comes into range, hovers to the start, writes several
strokes (cursive loops moving right at handwriting speed, pressure rising at the
touch and falling at the lift), hovers between strokes, and leaves. Styles give
the kinds of signer a kit meets: `steady`, `shaky` (a 6-9 Hz tremor, slower), and
`halting` (many short strokes, long pauses, lighter pressure). Everything is in
device units (100 per mm) and deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kitd.drivers.isdv4 import PenPacket

PACKET_RATE_HZ = 130.0
POINTS_PER_MM = 100


@dataclass(frozen=True)
class Style:
    strokes: tuple[int, int]  # how many, inclusive range
    stroke_s: tuple[float, float]  # duration of one stroke
    loop_hz: tuple[float, float]  # letter loops per second
    advance_mm_s: tuple[float, float]  # how fast the writing moves right
    pressure: tuple[float, float]  # share of max pressure mid-stroke
    pause_s: tuple[float, float]  # hover between strokes
    tremor_mm: float = 0.0
    tremor_hz: float = 0.0


STYLES: dict[str, Style] = {
    "steady": Style((3, 5), (0.5, 1.1), (3.0, 5.0), (8.0, 15.0), (0.45, 0.7), (0.12, 0.35)),
    "shaky": Style((3, 5), (0.8, 1.6), (1.5, 3.0), (5.0, 9.0), (0.35, 0.6), (0.3, 0.7), 0.25, 7.5),
    "halting": Style((6, 9), (0.25, 0.6), (2.0, 4.0), (6.0, 10.0), (0.25, 0.45), (0.5, 1.2)),
}


def _smooth_bump(u: np.ndarray, edge: float) -> np.ndarray:
    """0 at u=0 and u=1, 1 in between, with raised-cosine edges of width `edge` (share of 1)."""
    rise = np.clip(u / edge, 0.0, 1.0)
    fall = np.clip((1.0 - u) / edge, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _hover(start: tuple[float, float], end: tuple[float, float], seconds: float, rate: float) -> np.ndarray:
    n = max(2, int(round(seconds * rate)))
    u = np.linspace(0.0, 1.0, n)
    ease = 0.5 - 0.5 * np.cos(np.pi * u)
    return np.column_stack([start[0] + (end[0] - start[0]) * ease, start[1] + (end[1] - start[1]) * ease])


def synthetic_signature(
    seed: int,
    *,
    max_x: int,
    max_y: int,
    max_pressure: int,
    style: str = "steady",
    strokes: int | None = None,
    rate_hz: float = PACKET_RATE_HZ,
) -> list[PenPacket]:
    """The pen states of one signature, one per packet at `rate_hz`, ending out of proximity."""
    spec = STYLES[style]
    rng = np.random.default_rng(seed)
    count = strokes if strokes is not None else int(rng.integers(spec.strokes[0], spec.strokes[1] + 1))
    # Drawn in mm from an arbitrary origin; _quantise places it on the pad.
    x_mm = rng.uniform(0, 5)
    base_mm = 20.0 + rng.uniform(-3, 3)
    segments: list[tuple[np.ndarray, np.ndarray | None]] = []  # path in mm, pressure (None: hovering)

    position = (x_mm - 8.0, base_mm - 6.0)
    for index in range(count):
        seconds = rng.uniform(*spec.stroke_s)
        n = max(8, int(round(seconds * rate_hz)))
        t = np.arange(n) / rate_hz
        loop_hz = rng.uniform(*spec.loop_hz)
        height = rng.uniform(6.0, 14.0)
        phase = rng.uniform(0, 2 * math.pi)
        advance = rng.uniform(*spec.advance_mm_s)
        baseline = base_mm + rng.uniform(-2.0, 2.0)
        # Cursive: a forward drift with loops (x and y a quarter-period apart) whose size and
        # pace wander, as letters do.
        size = height * (0.65 + 0.35 * np.sin(2 * np.pi * rng.uniform(0.6, 1.6) * t + rng.uniform(0, 6.3)))
        turn = 2 * np.pi * loop_hz * t + phase + 0.8 * np.sin(2 * np.pi * rng.uniform(0.5, 1.2) * t)
        x = x_mm + advance * t + 0.3 * size * np.sin(turn)
        y = baseline - 0.5 * size * np.cos(turn) + rng.uniform(-1.0, 1.0) * np.sin(np.pi * t / seconds)
        if spec.tremor_mm:
            wobble = 2 * np.pi * spec.tremor_hz * t
            x = x + spec.tremor_mm * np.sin(wobble + rng.uniform(0, 6.3)) + rng.normal(0, 0.03, n)
            y = y + spec.tremor_mm * np.sin(1.1 * wobble + rng.uniform(0, 6.3)) + rng.normal(0, 0.03, n)
        level = rng.uniform(*spec.pressure) * max_pressure
        u = np.linspace(0.0, 1.0, n)
        # Pressure rises over the first ~60 ms and falls over the last; a little slow variation.
        edge = min(0.45, 0.06 / seconds)
        pressure = level * _smooth_bump(u, edge) * (1.0 + 0.15 * np.sin(2 * np.pi * 1.3 * t + phase))
        pressure = np.maximum(pressure, 0.02 * max_pressure)  # the tip switch closes under some force
        start = (float(x[0]), float(y[0]))
        hover_s = 0.3 if index == 0 else rng.uniform(*spec.pause_s)
        segments.append((_hover(position, start, hover_s, rate_hz), None))
        segments.append((np.column_stack([x, y]), pressure))
        position = (float(x[-1]), float(y[-1]) - 1.5)
        x_mm = float(x[-1]) + rng.uniform(1.5, 4.0)
    away = (position[0] + 4.0, position[1] - 5.0)
    segments.append((_hover(position, away, 0.2, rate_hz), None))
    return _quantise(segments, max_x, max_y, max_pressure)


def _quantise(
    segments: list[tuple[np.ndarray, np.ndarray | None]], max_x: int, max_y: int, max_pressure: int
) -> list[PenPacket]:
    """Device-unit states; a signature wider or taller than 90 % of the pad is shrunk to fit."""
    path = np.concatenate([p for p, _ in segments]) * POINTS_PER_MM
    low, high = path.min(axis=0), path.max(axis=0)
    room = np.array([0.9 * max_x, 0.9 * max_y])
    scale = float(min(1.0, *(room / np.maximum(high - low, 1.0))))
    offset = np.array([0.05 * max_x, 0.05 * max_y]) - np.minimum(low * scale, 0.0)
    offset = np.where(high * scale + offset > [max_x, max_y], [max_x, max_y] - high * scale, offset)
    states: list[PenPacket] = []
    for points, pressure in segments:
        placed = np.rint(points * POINTS_PER_MM * scale + offset).astype(int)
        for index, (x, y) in enumerate(placed):
            p = 0 if pressure is None else int(round(min(max(pressure[index], 0), max_pressure)))
            states.append(PenPacket(int(x), int(y), p, tip=pressure is not None, proximity=True))
    last = states[-1]
    states.append(PenPacket(last.x, last.y, 0, tip=False, proximity=False))
    return states


def speeds_mm_s(states: list[PenPacket], rate_hz: float = PACKET_RATE_HZ) -> np.ndarray:
    """Pen speed between consecutive tip-down packets of the same stroke (mm/s)."""
    out = []
    for a, b in zip(states, states[1:], strict=False):
        if a.tip and b.tip:
            out.append(math.hypot(b.x - a.x, b.y - a.y) / POINTS_PER_MM * rate_hz)
    return np.array(out)
