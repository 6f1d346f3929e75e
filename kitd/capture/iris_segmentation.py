"""Segmentation for the iris assessor: where the pupil, the limbus, the lids and the reflections are.

Its one job: locate the eye's parts in one grey near-infrared frame: the pupil (coarse, then
fine, and how wide its edge is), the limbus, where the eyelids begin on the rubber sheet, and
the specular reflections that lie on the iris. Turning what it finds into the report's
metrics, the score and the checks is :mod:`kitd.capture.iris_quality`'s. It may import numpy,
cv2 and :mod:`kitd.capture.iris_geometry` only. Its constants were set with the assessor's,
on synthetic eyes of seeds 1-5 (see :mod:`kitd.capture.iris_quality`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from kitd.capture.iris_geometry import (
    annulus,
    aspect,
    circle_below,
    edge_profiles,
    median,
    percentile,
    ray_to_ellipse,
    robust_circle,
    robust_ellipse,
    sample,
    step_strength,
    unit_rays,
)

COARSE_WIDTH = 160  # px: the shrunk copy the pupil is first looked for in
PUPIL_RAYS = 48
LIMBUS_STEP_DEG = 4.0
# The rubber sheet's grid: the assessor's annulus, the lid search and the reflections' lid test
# index the same cells, so all of them take it from here.
ANNULUS_ANGLES = 120
ANNULUS_RADII = 20
MIN_SPOT_PX = 12  # smallest specular spot taken for the illuminator's reflection (the simulated one: ~40)


# --- the pupil --------------------------------------------------------------------------------


def coarse_pupil(small: np.ndarray, frame_width: int, frame_height: int) -> tuple[float, float, float] | None:
    """(x, y, r) in frame pixels of the best dark round blob, found on a shrunk copy."""
    sy, sx = small.shape
    fx, fy = frame_width / sx, frame_height / sy
    hist = np.bincount(small.ravel(), minlength=256)
    lo, med = percentile(hist, 0.005), percentile(hist, 0.5)
    if med - lo < 12:
        return None  # a flat frame: nothing dark stands out
    integral = cv2.integral(small, sdepth=cv2.CV_64F)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    best, best_score = None, 0.0
    min_r = max(2.0, 0.012 * sx)  # pupils smaller than ~8 px of a 640 px frame are not looked for
    for level in (0.2, 0.35, 0.5):
        threshold = lo + level * (med - lo)
        dark = (small <= threshold).astype(np.uint8)
        dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(dark, 8, cv2.CV_16U)
        for i in range(1, count):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            # A lid cuts a pupil's top: its width is its size. A turned eye's pupil is taller
            # than wide (up to 1.6 times: a 50 degree turn); taller still is a lash, hair or
            # a text stroke.
            r = bw / 2.0 if bh <= bw else (bw + bh) / 4.0
            if r < min_r or r > 0.3 * sy or bh > 1.6 * bw or bh < 0.3 * bw:
                continue  # too small, too big, far taller than wide, or a line (a lid margin)
            # Filled against the part of the circle the blob's height leaves below a lid.
            fill = area / circle_below(r, min(float(bh), 2.0 * r))
            if fill < 0.3:
                continue
            # Surround: a box 1.8 radii around the blob's circle, minus the blob itself.
            # A lid cuts the top (wider than tall): the bottom stays on the circle. A turned
            # eye's pupil is taller than wide: its box's centre is the centre.
            ccx, ccy = x + r, (y + bh - r) if bh < bw else (y + bh / 2.0)
            x0, x1 = max(0, int(ccx - 1.8 * r)), min(sx, int(ccx + 1.8 * r) + 1)
            y0, y1 = max(0, int(ccy - 1.8 * r)), min(sy, int(ccy + 1.8 * r) + 1)
            box_sum = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
            inner_sum = integral[y + bh, x + bw] - integral[y, x + bw] - integral[y + bh, x] + integral[y, x]
            box_n = (x1 - x0) * (y1 - y0)
            inner_n = bw * bh
            if box_n - inner_n <= 0:
                continue
            surround = (box_sum - inner_sum) / (box_n - inner_n)
            inside = inner_sum / inner_n
            contrast = (surround - inside) / max(med - lo, 1.0)
            if contrast <= 0.15:
                continue
            score = min(fill, 1.0) * min(contrast, 1.0) * r
            if score > best_score:
                best, best_score = (ccx * fx, ccy * fy, r * fx), score
        if best is not None:
            # The pupil is the darkest round thing: the lowest level that finds one wins.
            # Higher levels would take in a dark iris with its pupil as one blob.
            break
    return best


@dataclass(frozen=True)
class PupilEdge:
    """The pupil's edge as the rays found it."""

    circle: tuple[float, float, float]  # x, y, r
    rms: float  # of the circle's inliers' residuals
    ellipse: tuple[float, float, float, float]  # x, y, semi-axis x, semi-axis y (the circle if none)
    xs: np.ndarray  # the edge points on the circle or the ellipse (a turned pupil's ends)
    ys: np.ndarray
    seen: float  # share of the upward rays that found the edge (the rest are under the lid)


def fine_pupil(g: np.ndarray, coarse: tuple[float, float, float]) -> PupilEdge | None:
    """The pupil's edge, refined at full resolution from the coarse circle."""
    cx, cy, r = coarse
    cos, sin = unit_rays(PUPIL_RAYS, 0.0, 360.0)
    profiles, radii = edge_profiles(g, cx, cy, 0.45 * r, 1.6 * r + 4, 0.5, cos, sin)
    # Grey inside the pupil and of the iris around it, from the coarse circle: anything far
    # brighter than the iris (a reflection in the pupil, lid skin) is flattened to the
    # pupil's grey, so that the only big dark-to-bright step left is the pupil's edge.
    inner = median(profiles[:, radii < 0.7 * r])
    ring = profiles[:, (radii > 1.2 * r) & (radii < 1.5 * r)]
    outer = median(ring) if ring.size else float(profiles.max())
    profiles = np.where(profiles > outer + 0.5 * max(outer - inner, 8.0), inner, profiles)
    # The step is judged over 4 px either side as well, so that an edge blurred by defocus or
    # motion still counts (it is what the sharpness measures need to see); where the lid hides
    # the edge, nothing steps up but noise.
    strength, wide = step_strength(profiles, 3), step_strength(profiles, 8)
    rows = np.arange(len(cos))
    need = 0.25 * max(outer - inner, 8.0)

    def edge_points(expected: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Each ray's strongest step within `reach` of the radius it is expected at.
        window = np.abs(radii[None, :] - expected[:, None]) < reach
        best = np.where(window, strength, -np.inf).argmax(axis=1)
        rr = radii[best].astype(np.float64)
        return cx + cos * rr, cy + sin * rr, wide[rows, best] > need

    # First near the coarse circle, then again near the circle fitted to those steps: the
    # coarse circle's window reaches the lid margin above a dark upper iris, whose step
    # (dark band against skin) can be stronger than the pupil's own; the refit's does not.
    xs, ys, near = edge_points(np.full(len(cos), r), 0.35 * r)
    fit = robust_circle(xs[near], ys[near], tolerance=max(1.5, 0.04 * r))
    if fit is None:
        return None
    xs, ys, near = edge_points(ray_to_ellipse(cx, cy, cos, sin, (*fit[0], fit[0][2])), 0.2 * fit[0][2])
    fit = robust_circle(xs[near], ys[near], tolerance=max(1.5, 0.04 * r))
    if fit is None:
        return None
    fx, fy, fr = fit[0]
    tolerance = max(1.5, 0.04 * fr)
    residual = np.hypot(xs - fx, ys - fy) - fr
    inliers = near & (np.abs(residual) <= max(tolerance, 2.5 * median(np.abs(residual[near]))))
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2)))
    # The ellipse (gaze, edge widths) is fitted to every ray with a clear step near the first
    # circle: a turned pupil's ends lie off the fitted circle, and circle inliers would cut them off.
    ellipse = robust_ellipse(xs[near], ys[near], tolerance)
    if ellipse is None or aspect(ellipse[0]) < 0.4:
        shape, on_edge = (fx, fy, fr, fr), inliers
    else:
        # The circle's inliers stay: under motion blur, the rays across the motion find a
        # wide ramp whose steepest point wanders, and the ellipse's tighter fit drops them.
        shape, on_edge = ellipse[0], inliers.copy()
        on_edge[np.nonzero(near)[0][ellipse[1]]] = True
    top = sin < -0.7  # rays within 45 degrees of straight up, where the upper lid comes down
    return PupilEdge((fx, fy, fr), rms, shape, xs[on_edge], ys[on_edge], float(near[top].mean()))


# --- the limbus -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _limbus_angles() -> tuple[np.ndarray, np.ndarray]:
    # Left and right sectors (+-45 deg around horizontal) and the lower one (60-120 deg,
    # y grows downwards); the upper sector is usually under the lid.
    degrees = np.concatenate(
        [
            np.arange(-45.0, 45.1, LIMBUS_STEP_DEG),
            np.arange(135.0, 225.1, LIMBUS_STEP_DEG),
            np.arange(60.0, 120.1, LIMBUS_STEP_DEG * 1.5),
        ]
    )
    radians = np.radians(degrees)
    return np.cos(radians).astype(np.float32), np.sin(radians).astype(np.float32)


def limbus(
    half: np.ndarray, factor: float, pupil: tuple[float, float, float], bright: float
) -> tuple[float, float, float] | None:
    """Limbus circle (frame pixels).

    Searched on `half`, the frame shrunk by `factor`: the limbus is a soft edge, so half the
    pixels lose nothing and halve the work.
    """
    px, py, pr = (v / factor for v in pupil)
    h, w = half.shape
    cos, sin = _limbus_angles()
    r0 = 1.15 * pr + 2
    r1 = min(pr / 0.18, 0.9 * max(w, h))
    if r1 <= r0 + 10:
        return None
    profiles, radii = edge_profiles(half, px, py, r0, r1, 1.0, cos, sin)
    profiles = np.minimum(profiles, bright)
    profiles = cv2.blur(profiles, (3, 1))
    strength = np.maximum(step_strength(profiles, 3), 0.0)
    # Outside the frame the samples replicate the edge: no steps there.
    xs = px + cos[:, None] * radii[None, :]
    ys = py + sin[:, None] * radii[None, :]
    strength[(xs < 1) | (ys < 1) | (xs > w - 2) | (ys > h - 2)] = 0.0
    total = strength.sum(axis=0)
    if not total.any():
        return None
    peak = float(radii[int(total.argmax())])
    window = (radii >= 0.72 * peak) & (radii <= 1.35 * peak)
    local = np.where(window[None, :], strength, -1.0)
    best = local.argmax(axis=1)
    found = local[np.arange(len(best)), best]
    keep = found > 0.25 * median(found[found > 0]) if (found > 0).any() else found > 0
    if keep.sum() < 8:
        return None
    rr = radii[best]
    ex = (px + cos * rr).astype(np.float64)[keep]
    ey = (py + sin * rr).astype(np.float64)[keep]
    fit = robust_circle(ex, ey, tolerance=max(1.5, 0.03 * peak))
    if fit is None:
        return None
    cx, cy, r = fit[0]
    return cx * factor, cy * factor, r * factor


# --- the pupil edge's width, the lids, reflections ---------------------------------------------


def edge_widths(g: np.ndarray, edge: PupilEdge) -> tuple[float, float] | None:
    """(sharpest, widest) pupil-edge width over six orientations, across the edge's ellipse.

    Sampled along rays from the ellipse's centre through the edge points, each centred on
    the ellipse: a turned pupil's edge lies off any circle, and profiles averaged off their
    edge would be widened by the misalignment, not by blur.
    """
    x0, y0, sx, sy = edge.ellipse
    angles = np.arctan2(edge.ys - y0, edge.xs - x0)
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    r = ray_to_ellipse(x0, y0, cos, sin, edge.ellipse)
    span = min(12.0, 0.6 * min(sx, sy))
    step = 0.5
    offsets = np.arange(-span, span + step / 2, step, dtype=np.float32)
    xs = x0 + cos[:, None] * (r[:, None] + offsets[None, :])
    ys = y0 + sin[:, None] * (r[:, None] + offsets[None, :])
    profiles = sample(g, xs, ys)
    orientation = (np.degrees(np.arctan2(sin, cos)) % 180.0 // 30.0).astype(np.int64)
    # Mean profile per orientation (rays and their opposite ones together).
    member = np.zeros((6, len(cos)), np.float32)
    member[orientation, np.arange(len(cos))] = 1.0
    counts = member.sum(axis=1)
    usable = counts >= 2
    if usable.sum() < 2:
        return None
    means = (member[usable] @ profiles) / counts[usable, None]
    quarter = max(2, len(offsets) // 4)
    low = np.partition(means[:, :quarter], (quarter - 1) // 2, axis=1)[:, (quarter - 1) // 2]
    high = np.partition(means[:, -quarter:], (quarter - 1) // 2, axis=1)[:, (quarter - 1) // 2]
    diffs = np.diff(means, axis=1)
    slope = (diffs[:, 1:] + diffs[:, :-1]).max(axis=1) / (2.0 * step)
    ok = (high - low > 1.0) & (slope > 0)
    if ok.sum() < 2:
        return None
    widths = (high - low)[ok] / slope[ok]
    return float(widths.min()), float(widths.max())


def lid_edges(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    first: np.ndarray,
    min_step: float,
) -> np.ndarray:
    """Where each annulus ray's lid begins (in annulus cells, fractional), to the pixel.

    `first` is the cell where the ray's samples stop being iris-grey. A lid's margin and the
    skin just above it are often in shadow, iris-grey themselves, so the lid truly begins a
    few cells nearer the pupil: where, within four cells inside `first`, the grey steps up
    from iris (or the tear film's dark line) to lid by at least `min_step`.
    """
    rows = np.nonzero(first < ANNULUS_RADII)[0]
    if rows.size == 0:
        return first
    fine = 4  # samples per annulus cell
    grey, _, _, u = annulus(g, pupil, iris, ANNULUS_ANGLES, ANNULUS_RADII * fine, rows)
    step = step_strength(grey, fine)
    cells = u[0] * ANNULUS_RADII  # each fine sample's position, in cells
    window = (cells[None, :] >= first[rows, None] - 4.0) & (cells[None, :] <= first[rows, None] + 0.5)
    strong = window & (step >= min_step)
    # The innermost strong step (farther out, a glint or the skin above the lashes steps up
    # too), at its steepest: the greatest step within a cell of where it starts.
    start = strong.argmax(axis=1)
    ahead = np.minimum(start[:, None] + np.arange(fine)[None, :], step.shape[1] - 1)
    steepest = np.take_along_axis(step, ahead, axis=1).argmax(axis=1)
    best = ahead[np.arange(rows.size), steepest]
    out = first.copy()
    out[rows] = np.where(strong.any(axis=1), np.minimum(cells[best], first[rows]), first[rows])
    return out


def lid_over_pupil(g: np.ndarray, pupil: tuple[float, float, float], skin_cut: float) -> float | None:
    """The y where an upper lid over the pupil ends, down the pupil's middle (5 columns
    averaged): from lid skin above the pupil, the first of 6 px in a row no brighter than
    `skin_cut` (a lash is thinner; the lid's dark margin runs on into the pupil). None when
    no skin is seen above the pupil. Scanning down, a reflection in the pupil's visible
    part, below the lid, is never reached."""
    px, py, pr = pupil
    ys = np.arange(py - pr - 4.0, py + 0.9 * pr, 1.0, dtype=np.float32)
    columns, rows = np.meshgrid(px + np.arange(-2.0, 2.5, 1.0, dtype=np.float32), ys)
    dark = sample(g, columns, rows).mean(axis=1) <= skin_cut
    run = 6
    if dark[0] or ys.size < run:
        return None
    starts = np.lib.stride_tricks.sliding_window_view(dark, run).all(axis=1)
    return float(ys[starts.argmax()]) if starts.any() else None


def reflection_on_iris(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    spec_cut: float,
    iris_range: tuple[float, float],
    lid_start: np.ndarray,
) -> float:
    """Share of the iris annulus covered by specular spots that lie on the iris itself.

    Counted at full resolution (a spot is a few pixels). A spot counts when its centre is
    inside the annulus away from both edges (at the pupil edge a spot is in the pupil,
    where it belongs; at the limbus it is on the sclera or the lid margin) and a ring just
    around it is iris-grey nearly all round, and so is a stretch beyond it towards the
    nearer lid (a reflection on the lid margin or the tear film has lid or lashes on that
    side), a tenth of the annulus inside the eyelid boundary
    (`lid_start`: per annulus ray, the cell where the lid begins), and at least MIN_SPOT_PX
    pixels: the illuminator's image, not a glint off a lash.
    """
    h, w = g.shape
    px, py, pr = pupil
    ix, iy, ir = iris
    span = ir - pr
    x0, x1 = max(0, int(ix - ir)), min(w, int(ix + ir) + 1)
    y0, y1 = max(0, int(iy - ir)), min(h, int(iy + ir) + 1)
    mask = (g[y0:y1, x0:x1] >= spec_cut).astype(np.uint8)
    if not mask.any():
        return 0.0
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, 8, cv2.CV_16U)
    cos, sin = unit_rays(16, 0.0, 360.0)
    low, high = iris_range
    covered = 0
    # Noise over the specular cut makes many one-pixel components: rule out the small ones and
    # those off the annulus all at once, and look closely only at what is left.
    xs, ys = centroids[1:, 0] + x0, centroids[1:, 1] + y0
    on_annulus = (
        (stats[1:, 4] >= MIN_SPOT_PX)
        & (np.hypot(xs - px, ys - py) > pr + 0.1 * span)
        & (np.hypot(xs - ix, ys - iy) < ir - 0.1 * span)
    )
    for i in np.flatnonzero(on_annulus) + 1:
        bw, bh, area = int(stats[i, 2]), int(stats[i, 3]), int(stats[i, 4])
        cx, cy = centroids[i][0] + x0, centroids[i][1] + y0
        from_pupil = math.hypot(cx - px, cy - py)
        if (
            area < MIN_SPOT_PX
            or from_pupil <= pr + 0.1 * span
            or math.hypot(cx - ix, cy - iy) >= ir - 0.1 * span
        ):
            continue
        row = (
            round(math.degrees(math.atan2(cy - py, cx - px)) % 360.0 / (360.0 / ANNULUS_ANGLES))
            % ANNULUS_ANGLES
        )
        col = min(ANNULUS_RADII - 1, max(0, int((from_pupil - pr) / max(span, 1.0) * ANNULUS_RADII)))
        # Away from the lid's edge too, as from the pupil's and the limbus's: a tenth of the
        # annulus (the tear film on a lid margin glints right at it).
        if col >= lid_start[row] - 2:
            continue
        radius = 0.5 * max(bw, bh) + 4.0
        ring = sample(g, cx + radius * cos, cy + radius * sin)
        if np.mean((ring > low) & (ring < high)) < 0.75:
            continue
        # Towards the nearer lid (up above the pupil, down below it), iris for a while
        # beyond the ring: a glint in the tear film sits a few pixels from the lid margin,
        # closer than the annulus's coarse lid line can tell, and has lid or lashes there.
        toward_lid = -1.0 if cy < py else 1.0
        reach = cy + toward_lid * (0.5 * bh + np.arange(2.0, 2.0 + max(6.0, 0.12 * span)))
        columns, rows = np.meshgrid(cx + np.array([-1.0, 0.0, 1.0]), reach)
        stretch = sample(g, columns, rows)
        if np.mean((stretch > low) & (stretch < high)) >= 0.75:
            covered += area
    return covered / (math.pi * (ir * ir - pr * pr))
