"""A signature pad's geometry as a technician's pen shows it: corners reached, a straight line.

Its one job: the pure measures of the pad's guided test (kitd.services.guided_pad). Coordinates
are the pad's own units, origin top left, y down (as ISDV4 reports them), its extent
``0..max_x`` by ``0..max_y``:

* :func:`corner_zone` and :func:`in_corner`: a pen-down counts as touching a corner within
  :data:`CORNER_ZONE` of the pad's extent from it, along each axis;
* :func:`corner_reach`: how far a point is from a corner, as a share of the pad's extent (the
  larger of the two axes);
* :func:`coverage`: the share of the pad's area inside the quadrilateral of the four corner
  touches: a corner the pen cannot reach (a damaged area of the digitiser) pulls it in;
* :func:`line_fit`: a stroke against its fitted straight line (total least squares): its length
  and its largest distance from that line; ``linearity`` is the one over the other. The pen's
  landing and lifting (the first and last :data:`LINE_TRIM` of the stroke's length) are left
  out: a ruler line starts and ends with a small hook however straight the digitiser is.

No I/O, no clock; numbers in, numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# In the order the technician touches them: clockwise from the top left.
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")
# A corner is touched within this share of the pad's extent from it (along x and along y).
CORNER_ZONE = 0.10
# A straight line drawn along a ruler strays far less than this share of its length; a
# digitiser that bends lines (a damaged grid, a pad out of calibration) strays more.
LINEARITY_LIMIT = 0.03
# The four corners' touches, each within its zone, enclose at least (1 - 2 * zone)^2 of the pad.
COVERAGE_MIN = (1 - 2 * CORNER_ZONE) ** 2
# The share of the stroke's length left out at each end (the pen landing and lifting).
LINE_TRIM = 0.05

Point = tuple[float, float]


@dataclass(frozen=True)
class Zone:
    """A rectangle of the pad, bounds included."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def holds(self, x: float, y: float) -> bool:
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max

    def to_json(self) -> dict[str, int]:
        return {
            "x_min": round(self.x_min),
            "x_max": round(self.x_max),
            "y_min": round(self.y_min),
            "y_max": round(self.y_max),
        }


def corner_point(corner: str, max_x: int, max_y: int) -> Point:
    """The corner itself, in pad units."""
    if corner not in CORNERS:
        raise ValueError(f"unknown corner {corner!r} (corners: {', '.join(CORNERS)})")
    return (
        float(max_x) if corner.endswith("right") else 0.0,
        float(max_y) if corner.startswith("bottom") else 0.0,
    )


def corner_zone(corner: str, max_x: int, max_y: int, zone: float = CORNER_ZONE) -> Zone:
    """Where a touch counts as the corner's: within ``zone`` of the extent along each axis."""
    cx, cy = corner_point(corner, max_x, max_y)
    dx, dy = zone * max_x, zone * max_y
    return Zone(max(0.0, cx - dx), min(float(max_x), cx + dx), max(0.0, cy - dy), min(float(max_y), cy + dy))


def corner_reach(x: float, y: float, corner: str, max_x: int, max_y: int) -> float:
    """How far (x, y) is from the corner: the larger of its distances along x and along y, each
    as a share of the pad's extent on that axis (0 at the corner; ``in_corner`` up to the zone)."""
    cx, cy = corner_point(corner, max_x, max_y)
    return max(abs(x - cx) / max_x, abs(y - cy) / max_y)


def in_corner(x: float, y: float, corner: str, max_x: int, max_y: int, zone: float = CORNER_ZONE) -> bool:
    return corner_reach(x, y, corner, max_x, max_y) <= zone


def coverage(touches: Sequence[Point], max_x: int, max_y: int) -> float:
    """The share of the pad's area inside the polygon of ``touches`` (the corners' touches in
    order around the pad); 0 for fewer than three."""
    if len(touches) < 3:
        return 0.0
    xs = np.array([p[0] for p in touches], dtype=float)
    ys = np.array([p[1] for p in touches], dtype=float)
    # The shoelace formula: the polygon's area however it is oriented.
    area = 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
    return min(1.0, area / (float(max_x) * float(max_y)))


@dataclass(frozen=True)
class LineFit:
    """A stroke against its fitted straight line, in pad units."""

    points: int  # the points measured (the trim left out)
    length: float  # the measured points' extent along the line
    deviation: float  # the largest distance of a measured point from the line

    @property
    def linearity(self) -> float:
        """The largest distance from the line as a share of the line's length (inf: no length)."""
        return self.deviation / self.length if self.length > 0 else float("inf")


def _trimmed(path: np.ndarray, trim: float) -> np.ndarray:
    """The points of ``path`` between ``trim`` and ``1 - trim`` of its length along the path."""
    steps = np.hypot(*np.diff(path, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    total = along[-1]
    if total <= 0 or trim <= 0:
        return path
    keep = (along >= trim * total) & (along <= (1 - trim) * total)
    return path[keep] if keep.sum() >= 2 else path


def line_fit(points: Sequence[Point], trim: float = LINE_TRIM) -> LineFit:
    """The stroke's fitted line (total least squares: the principal axis of its points), its
    length along that line and its largest distance from it, without the ends' ``trim``."""
    path = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(path) < 2:
        return LineFit(len(path), 0.0, 0.0)
    measured = _trimmed(path, trim)
    centred = measured - measured.mean(axis=0)
    # The principal axis: the direction the points spread along most (SVD of the centred points).
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    direction, normal = axes[0], np.array([-axes[0][1], axes[0][0]])
    along = centred @ direction
    across = np.abs(centred @ normal)
    return LineFit(len(measured), float(along.max() - along.min()), float(across.max()))
