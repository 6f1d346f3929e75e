"""A technician's pen on the signature pad, as pen packets: taps at its corners, straight lines.

Its one job: the scripted pen paths of the pad's guided test, one PenPacket per packet at the
pad's rate, for the pad simulator's `draw` commands (hil/isdv4_sim.py) and for unit tests that
feed kitd's test directly. A stroke comes into range hovering, goes down, moves along its
points at an even speed, lifts (a tip-up packet) and leaves (a last packet out of proximity),
as the ISDV4 reports a real pen. Coordinates are the pad's units, origin top left, y down.

    stroke(points)                   one pen-down stroke through the points, in order
    corner_taps(max_x, max_y)        a tap near each corner: top left, top right, bottom right,
                                     bottom left (``inset``: how far in, a share of the extent)
    diagonal(max_x, max_y, wobble)   top left to bottom right; ``wobble`` bends it sideways (a
                                     share of its length, one and a half waves): a hand without
                                     a ruler, or a digitiser that bends lines
    parse_points("x,y;x,y;...")      the points of a `draw path` command
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from kitd.drivers.isdv4 import POINTS_PER_MM, PenPacket

RATE_HZ = 130.0
SPEED_MM_S = 80.0
PRESSURE = 500
HOVER_PACKETS = 4
TAP_PACKETS = 10
CORNER_INSET = 0.03
LINE_INSET = 0.1


def _along(points: Sequence[tuple[float, float]], rate_hz: float, speed_mm_s: float) -> np.ndarray:
    """Positions at every packet moving along the polyline at an even speed (its ends included)."""
    path = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(path) == 1:
        return path
    steps = np.hypot(*np.diff(path, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    per_packet = speed_mm_s * POINTS_PER_MM / rate_hz
    n = max(2, int(math.ceil(along[-1] / per_packet)) + 1)
    at = np.linspace(0.0, along[-1], n)
    return np.column_stack([np.interp(at, along, path[:, 0]), np.interp(at, along, path[:, 1])])


def stroke(
    points: Sequence[tuple[float, float]],
    rate_hz: float = RATE_HZ,
    speed_mm_s: float = SPEED_MM_S,
    pressure: int = PRESSURE,
    dwell: int = 0,
) -> list[PenPacket]:
    """One stroke through ``points``: hover in, down, along, (``dwell`` packets still at the end),
    up, away."""
    placed = [(int(round(x)), int(round(y))) for x, y in _along(points, rate_hz, speed_mm_s)]
    placed += [placed[-1]] * dwell
    (x0, y0), (x1, y1) = placed[0], placed[-1]
    states = [PenPacket(x0, y0, 0, tip=False, proximity=True) for _ in range(HOVER_PACKETS)]
    states += [PenPacket(x, y, pressure, tip=True, proximity=True) for x, y in placed]
    states.append(PenPacket(x1, y1, 0, tip=False, proximity=True))
    states.append(PenPacket(x1, y1, 0, tip=False, proximity=False))
    return states


def corner_taps(
    max_x: int, max_y: int, inset: float = CORNER_INSET, rate_hz: float = RATE_HZ
) -> list[PenPacket]:
    """A short tap near each corner in turn, ``inset`` of the extent in from both edges."""
    dx, dy = inset * max_x, inset * max_y
    corners = [(dx, dy), (max_x - dx, dy), (max_x - dx, max_y - dy), (dx, max_y - dy)]
    states: list[PenPacket] = []
    for corner in corners:
        states += stroke([corner], rate_hz, dwell=TAP_PACKETS)
    return states


def diagonal(
    max_x: int, max_y: int, wobble: float = 0.0, inset: float = LINE_INSET, rate_hz: float = RATE_HZ
) -> list[PenPacket]:
    """A line from near the top left to near the bottom right; ``wobble`` bends it sideways by
    that share of its length in one and a half waves."""
    start = np.array([inset * max_x, inset * max_y])
    end = np.array([(1 - inset) * max_x, (1 - inset) * max_y])
    length = float(np.hypot(*(end - start)))
    normal = np.array([-(end - start)[1], (end - start)[0]]) / length
    u = np.linspace(0.0, 1.0, 200)
    bend = wobble * length * np.sin(3 * math.pi * u)
    path = start + np.outer(u, end - start) + np.outer(bend, normal)
    return stroke([(float(x), float(y)) for x, y in path], rate_hz)


def parse_points(text: str) -> list[tuple[float, float]]:
    """``x,y;x,y;...`` in pad units; ValueError naming what is wrong."""
    points = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        x, sep, y = item.partition(",")
        if not sep:
            raise ValueError(f"'{item}' is not X,Y")
        points.append((float(x), float(y)))
    if not points:
        raise ValueError("no points: X,Y;X,Y;...")
    return points
