"""Geometry and sampling for the iris assessor: pure numeric helpers, no notion of an eye.

Its one job: sample a grey frame (bilinearly, along rays, over the rubber sheet between two
circles) and fit shapes to points (circles and axis-aligned ellipses, plainly or robustly),
with the small statistics the assessor needs on the way (histogram percentiles, medians,
step strength along profiles, entropy). It may import numpy and cv2 only: nothing from
:mod:`kitd.capture.iris_segmentation` or :mod:`kitd.capture.iris_quality`, which build on it.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np


def percentile(hist: np.ndarray, q: float) -> float:
    cdf = np.cumsum(hist)
    return float(np.searchsorted(cdf, q * cdf[-1]))


@functools.lru_cache(maxsize=16)
def unit_rays(count: int, start_deg: float, stop_deg: float) -> tuple[np.ndarray, np.ndarray]:
    angles = np.radians(np.linspace(start_deg, stop_deg, count, endpoint=False))
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    cos.flags.writeable = False
    sin.flags.writeable = False
    return cos, sin


def sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` at float coordinates (same shape); edges replicate."""
    return cv2.remap(
        image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)


def into_copy(v: np.ndarray | float, scale: float) -> np.ndarray | float:
    """A frame coordinate in a copy of the frame resized by `scale` (cv2.resize's pixel
    centres: the centre of the frame's first pixel is that of the copy's, not its corner)."""
    return (v + 0.5) * scale - 0.5


def out_of_copy(v: np.ndarray | float, scale: float) -> np.ndarray | float:
    """A coordinate in a copy resized by `scale`, back in the frame (into_copy's inverse)."""
    return (v + 0.5) / scale - 0.5


def median(values: np.ndarray) -> float:
    """The (lower) median: np.median's checks cost more than the partition on these small arrays."""
    flat = np.ravel(values)
    if flat.size == 0:
        return float("nan")
    k = (flat.size - 1) // 2
    return float(np.partition(flat, k)[k])


def _fit_circle(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through points, by its 3 x 3 normal equations."""
    n = xs.size
    mx, my = float(xs.sum()) / n, float(ys.sum()) / n
    u, v = xs - mx, ys - my  # centred, for a well-conditioned system
    suu, svv, suv = float(u @ u), float(v @ v), float(u @ v)
    zz = u * u + v * v
    suz, svz = float(u @ zz), float(v @ zz)
    det = suu * svv - suv * suv
    if abs(det) < 1e-9:
        return mx, my, 0.0
    a = (suz * svv - svz * suv) / (2.0 * det)
    b = (svz * suu - suz * suv) / (2.0 * det)
    r2 = a * a + b * b + float(zz.mean())
    return mx + a, my + b, math.sqrt(max(r2, 0.0))


def robust_circle(
    xs: np.ndarray, ys: np.ndarray, tolerance: float
) -> tuple[tuple[float, float, float], np.ndarray] | None:
    """Circle fit that drops points farther than `tolerance` (or 2.5 median residuals) and refits."""
    keep = np.ones(len(xs), bool)
    circle = None
    for _ in range(4):
        if keep.sum() < 5:
            return None
        circle = _fit_circle(xs[keep], ys[keep])
        residual = np.abs(np.hypot(xs - circle[0], ys - circle[1]) - circle[2])
        limit = max(tolerance, 2.5 * median(residual[keep]))
        new_keep = residual <= limit
        if (new_keep == keep).all():
            break
        keep = new_keep
    if circle is None or keep.sum() < 5:
        return None
    return circle, keep


def solve_small(m: list[list[float]], b: list[float]) -> list[float] | None:
    """x with m x = b for a small square system (the 3 x 3 and 4 x 4 normal equations of the
    fits here), by Gaussian elimination with partial pivoting on Python floats: numpy's
    solvers cost more than the arithmetic on systems this small. None when m is singular."""
    n = len(b)
    rows = [m[i][:] + [b[i]] for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            f = rows[r][col] / rows[col][col]
            if f:
                rows[r] = [x - f * y for x, y in zip(rows[r], rows[col], strict=True)]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (rows[r][n] - sum(rows[r][k] * x[k] for k in range(r + 1, n))) / rows[r][r]
    return x


def circle_with_prior(
    xs: np.ndarray, ys: np.ndarray, centre: tuple[float, float], weight: float, radius: float
) -> tuple[float, float, float] | None:
    """Circle through points, its centre drawn towards `centre` as if `weight` points said so.

    Kasa's algebraic fit, with the guess as extra equations on the centre (full weight in
    y, a third in x); the points farther than 2.5 median residuals (at least 1.5 px) are
    dropped and the circle refitted. `radius` is the expected size (it scales the guess's
    equations to the points'). None with fewer than five points.
    """
    keep = np.ones(xs.size, bool)
    circle = None
    pull = 4.0 * radius * radius * max(weight, 0.0)  # a guess equation's weight, squared
    u, v = xs - centre[0], ys - centre[1]
    z = u * u + v * v
    # Every sum the normal equations of 2 a u + 2 b v + k = u^2 + v^2 need, per point.
    terms = np.stack([u * u, v * v, u * v, u, v, u * z, v * z, z])
    for _ in range(3):
        n = int(keep.sum())
        if n < 5:
            return circle
        suu, svv, suv, su, sv, suz, svz, sz = (float(t) for t in terms @ keep.astype(np.float64))
        # The guess pulls a and b towards 0 (the centre it names).
        solved = solve_small(
            [
                [4 * suu + pull / 9.0, 4 * suv, 2 * su],
                [4 * suv, 4 * svv + pull, 2 * sv],
                [2 * su, 2 * sv, float(n)],
            ],
            [2 * suz, 2 * svz, sz],
        )
        if solved is None:
            return circle
        a, b, k = solved
        r2 = k + a * a + b * b
        if r2 <= 0:
            return circle
        circle = (centre[0] + float(a), centre[1] + float(b), math.sqrt(r2))
        residual = np.abs(np.hypot(u - a, v - b) - circle[2])
        new_keep = residual <= max(1.5, 2.5 * median(residual[keep]))
        if (new_keep == keep).all():
            break
        keep = new_keep
    return circle


def _ellipse(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float] | None:
    """Centre and semi-axes (x0, y0, semi_x, semi_y) of the axis-aligned ellipse through points.

    Fitted as A x^2 + C y^2 + D x + E y = 1 on centred coordinates; None when the points do
    not make an ellipse.
    """
    if len(xs) < 6:
        return None
    mx, my = float(xs.sum()) / xs.size, float(ys.sum()) / ys.size
    u, v = xs - mx, ys - my
    scale = float(max(np.abs(u).max(), np.abs(v).max(), 1e-6))
    u, v = u / scale, v / scale
    design = np.stack([u * u, v * v, u, v], axis=1)
    # The normal equations.
    solved = solve_small(
        [list(map(float, row)) for row in design.T @ design], list(map(float, design.sum(axis=0)))
    )
    if solved is None:
        return None
    a, c, d, e = solved
    if a <= 0 or c <= 0:
        return None
    f = 1.0 + d * d / (4 * a) + e * e / (4 * c)
    if f <= 0:
        return None
    return (
        mx - scale * d / (2 * a),
        my - scale * e / (2 * c),
        scale * math.sqrt(f / a),
        scale * math.sqrt(f / c),
    )


def robust_ellipse(
    xs: np.ndarray, ys: np.ndarray, tolerance: float
) -> tuple[tuple[float, float, float, float], np.ndarray] | None:
    """The axis-aligned ellipse through points and which points are on it, robustly.

    Points farther than `tolerance` (or 2.5 median residuals) from the ellipse, such as a
    lid margin a few rays found instead of the edge, are dropped and the ellipse refitted.
    """
    keep = np.ones(len(xs), bool)
    fit = None
    for _ in range(3):
        fit = _ellipse(xs[keep], ys[keep])
        if fit is None:
            return None
        x0, y0, sx, sy = fit
        residual = np.abs(np.hypot((xs - x0) / sx, (ys - y0) / sy) - 1.0) * 0.5 * (sx + sy)
        new_keep = residual <= max(tolerance, 2.5 * median(residual[keep]))
        if np.array_equal(new_keep, keep) or new_keep.sum() < 6:
            break
        keep = new_keep
    return (fit, keep) if fit is not None else None


def aspect(ellipse: tuple[float, float, float, float] | None) -> float:
    """Minor over major semi-axis (1 for a circle, or when there is no ellipse)."""
    if ellipse is None:
        return 1.0
    return min(ellipse[2], ellipse[3]) / max(ellipse[2], ellipse[3])


def ray_to_ellipse(
    x: float, y: float, cos: np.ndarray, sin: np.ndarray, ellipse: tuple[float, float, float, float]
) -> np.ndarray:
    """How far each ray from (x, y), inside the ellipse, goes before it meets the ellipse."""
    x0, y0, sx, sy = ellipse
    dx, dy = (x - x0) / sx, (y - y0) / sy
    u, v = cos / sx, sin / sy
    a = u * u + v * v
    b = u * dx + v * dy
    c = dx * dx + dy * dy - 1.0
    return (-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / a


def circle_below(r: float, height: float) -> float:
    """Area of the part of a circle of radius `r` within `height` of its bottom."""
    d = r - height  # from the centre up to the chord (negative: the chord is above it)
    return r * r * math.acos(max(-1.0, min(1.0, d / r))) - d * math.sqrt(max(r * r - d * d, 0.0))


def edge_profiles(
    g: np.ndarray, cx: float, cy: float, r0: float, r1: float, step: float, cos: np.ndarray, sin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grey profiles along rays (rows) from (cx, cy), radii r0..r1 every `step` px."""
    radii = np.arange(r0, r1, step, dtype=np.float32)
    xs = cx + cos[:, None] * radii[None, :]
    ys = cy + sin[:, None] * radii[None, :]
    return sample(g, xs, ys), radii


def step_strength(profiles: np.ndarray, half: int) -> np.ndarray:
    """Per sample: mean of the next `half` samples minus the mean of the previous `half`."""
    rows, n = profiles.shape
    c = np.empty((rows, n + 1), np.float64)
    c[:, 0] = 0.0
    np.cumsum(profiles, axis=1, out=c[:, 1:])
    out = np.zeros(profiles.shape, profiles.dtype)
    if n > 2 * half:
        h = half
        out[:, h : n - h] = (
            (c[:, 2 * h + 1 : n + 1] - c[:, h + 1 : n - h + 1]) - (c[:, h : n - h] - c[:, : n - 2 * h])
        ) / h
    return out


def annulus(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    angles: int,
    radii: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rubber-sheet samples between the pupil and limbus circles: grey, x, y, u (0 pupil .. 1 limbus).

    `angles` rays evenly round from 0 degrees (or those of them in `rows`), `radii` samples
    along each.
    """
    cos, sin = unit_rays(angles, 0.0, 360.0)
    if rows is not None:
        cos, sin = cos[rows], sin[rows]
    u = (np.arange(radii, dtype=np.float32) + 0.5) / radii
    px, py, pr = pupil
    ix, iy, ir = iris
    inner_x, inner_y = px + pr * cos, py + pr * sin
    outer_x, outer_y = ix + ir * cos, iy + ir * sin
    xs = inner_x[:, None] + (outer_x - inner_x)[:, None] * u[None, :]
    ys = inner_y[:, None] + (outer_y - inner_y)[:, None] * u[None, :]
    return sample(g, xs, ys), xs, ys, np.broadcast_to(u, xs.shape)


def entropy(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    hist = np.bincount(np.clip(values, 0, 255).astype(np.int64), minlength=256).astype(np.float64)
    p = hist[hist > 0] / values.size
    return float(-(p * np.log2(p)).sum())
