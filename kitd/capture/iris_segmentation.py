"""Segmentation for the iris assessor: where the pupil, the limbus, the lids and the reflections are.

Its one job: locate the eye's parts in one grey near-infrared frame of any size: the pupil
(coarse, then fine, and how wide its edge is), the limbus, the lids' margins as curves
across the iris, the specular reflections that lie on the iris, and how noisy the sensor
is. Turning what it finds into the report's metrics, the score and the checks is
:mod:`kitd.capture.iris_quality`'s. It may import numpy, cv2 and
:mod:`kitd.capture.iris_geometry` only. Its lengths are relative to the eye (radii of the
pupil or the iris), so that finding the eye never depends on the camera's size checks; its
constants were set on synthetic eyes and on the development half of the hand-marked IITD
eyes (see :mod:`kitd.capture.iris_quality` and groundtruth/).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from kitd.capture.iris_geometry import (
    aspect,
    circle_below,
    circle_with_prior,
    edge_profiles,
    into_copy,
    median,
    out_of_copy,
    percentile,
    ray_to_ellipse,
    robust_circle,
    robust_ellipse,
    sample,
    solve_small,
    step_strength,
    unit_rays,
)

COARSE_WIDTH = 160  # px: the shrunk copy the pupil is first looked for in
PUPIL_LEVELS = (0.2, 0.35, 0.5)  # of the way from the darkest grey to the median: the dark blobs' cuts
# Greyer cuts still, looked at only for a greyer pupil (coarse_pupils' greyer): development eyes
# with their pupils greyed 0.6 and 0.7 of the way to the iris, pupils within 3 px 29 -> 48 and
# 11 -> 44 of 50 with these.
PUPIL_GREYER_LEVELS = (0.65, 0.8)
PUPIL_RAYS = 48
PUPIL_CLEAR = 0.6  # the share of the rays a pupil's edge is found on at least (clarity)
# The pupil's edge on a ray is the first step out of the pupil's grey, not the strongest: past
# it lie the dark crypts of the collarette and, at the top, the lash margin against the skin,
# whose steps can be stronger. A step counts from half the ray's strongest in its window (any
# share from 0.3 to 0.7 gave the same on the development eyes); its point is the steepest
# place of that first run, so a ramp widened by blur or motion is taken at its middle.
PUPIL_FIRST_STEP = 0.5
# Two readings of a dark blob (its outline, its largest inscribed disk), both refined: the other
# one is the pupil only if its edge is this many times as clear (clearer_edge), the scatter
# about the circle weighed as a share of the radius (a tenth of it halves the clarity).
CLEARER_EDGE = 1.2
EDGE_SCATTER_WEIGHT = 10.0
LIMBUS_STEP_DEG = 4.0
# The side arcs the limbus circle is fitted to: up to 45 deg above horizontal (the upper lid
# comes lower) and down to 57 below, where the lower sector begins; a lower lid rarely rises
# past 30 deg either side of the bottom, and the arcs' low ends are what fix the circle's
# height (on the marked development eyes, 33 of 50 limbi within 5 px with +-45 deg, 36 with
# 57, both halves of the subjects gaining).
LIMBUS_SIDE_UP_DEG = 45.0
LIMBUS_SIDE_DOWN_DEG = 57.0
LIMBUS_SIDE_UP_SIN = math.sin(math.radians(LIMBUS_SIDE_UP_DEG + 0.5 * LIMBUS_STEP_DEG))
LIMBUS_SIDE_DOWN_SIN = math.sin(math.radians(LIMBUS_SIDE_DOWN_DEG + 0.5 * LIMBUS_STEP_DEG))
# The limbus (set on the development half of the IITD eyes, see groundtruth/):
LIMBUS_MIN_PUPIL_RATIO = 0.12  # the smallest pupil, as a share of the iris radius, looked for
LIMBUS_FOOT = 0.9  # an edge point sits where its step has fallen to this share of its peak
# Real limbi sit a little below their pupils: by 0.06 iris radii (median of the marked
# development eyes); the side arcs' own evidence weighs against this guess as if it were a
# fifth of their points' worth.
LIMBUS_BELOW_PUPIL = 0.06
LIMBUS_PRIOR_WEIGHT = 0.1
# The limbus seen near the horizontal (rays within about 20 degrees of it, which neither lid
# reaches) is what each ray's step is judged by: a step much stronger than it is a lid's or
# the lashes' edge (dark lashes, then bright skin); a step onto grey much darker than the
# sclera there is onto sclera the upper lid shades, and lies outward of the limbus. On the
# development eyes the points so dropped lay 9-13 px outside the marked limbus, the rest
# within 2 px of it.
LIMBUS_HORIZONTAL_SIN = 0.35  # |sin| of the rays the reference is taken from
# A ray that leaves the frame near the limbus gives a point only with a step this share of
# the horizontal rays' median: with the iris running past the frame's edge, its strongest
# step inside is texture, and a circle fitted through it shrinks into the frame.
LIMBUS_CLIPPED_STEP = 0.7
LIMBUS_MAX_STEP = 1.6  # a limbus step is at most this many times the horizontal rays' median step
LIMBUS_MIN_SCLERA = 0.7  # the grey just past a limbus step: at least this share of the horizontal sclera's
LIMBUS_SCLERA_REACH = 0.16  # iris radii past the step the sclera's grey is read over
LIMBUS_BOTTOM_TOLERANCE = 0.05  # lower-sector points this close (iris radii) to the sides' circle are limbus
# A spot this close to a lid's margin (iris radii) is the tear film's glint along it, not the
# illuminator on the iris: the meniscus and the margin's dark band are 0.05-0.1 iris radii
# wide, and the lid's line is placed within that band (half-way up it for a lower lid).
LID_GLINT_REACH = 0.15
# Iris radii squared: a saturated spot this big over the iris is glare (the illuminator's image
# on the cornea or in glasses) to the lid walks, not a lash's glint.
GLARE_MIN_AREA = 0.005
MIN_SPOT_PX = 12  # smallest specular spot taken for the illuminator's reflection (the simulated one: ~40)
# From this grey up a pixel is saturated, or nearly: the illuminator's image (specular), or
# light the sensor clips.
SATURATED_GREY = 250


# --- the pupil --------------------------------------------------------------------------------


def specular_spots(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Where the frame `g` is specular (from SATURATED_GREY up, with the pixel round each spot
    that its blur spreads over), as a 0/1 mask of a shrunk copy's `shape`; None where nothing
    is."""
    # Only the (few) specular pixels are moved into the copy: resizing a mask of the whole frame
    # cost 0.2 ms of a 640 x 480 frame's 4, this 0.05.
    _, hot = cv2.threshold(g, SATURATED_GREY - 1, 1, cv2.THRESH_BINARY)
    points = cv2.findNonZero(hot)
    if points is None:
        return None
    h, w = g.shape
    points = points.reshape(-1, 2)  # a single point comes as (1, 2), more as (n, 1, 2)
    # Each point and the frame's pixels round it, into the copy's pixels they fall in (the pixel
    # a point's copy coordinate rounds to).
    near = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
    around = points[:, None, :] + near[None, :, :]
    xs, ys = np.clip(around[..., 0], 0, w - 1), np.clip(around[..., 1], 0, h - 1)
    spots = np.zeros(shape[:2], np.uint8)
    spots[
        (into_copy(ys, shape[0] / h) + 0.5).astype(np.int64),
        (into_copy(xs, shape[1] / w) + 0.5).astype(np.int64),
    ] = 1
    return spots


def coarse_pupils(
    small: np.ndarray,
    frame_width: int,
    frame_height: int,
    spots: np.ndarray | None = None,
    greyer: bool = False,
) -> list[tuple[float, float, float]]:
    """(x, y, r) in frame pixels of the best dark round blob, found on a shrunk copy; empty when
    there is none. When the blob is the pupil run into the lashes or the lid's dark margin, the
    other reading of it follows (its largest inscribed disk, or its outline's circle): which one
    is the pupil, only the pupil's edge at full resolution tells. Specular `spots`
    (:func:`specular_spots`) that a dark blob encloses are part of it: an illuminator made of
    several lamps leaves a spot of each in the pupil, often a ring of them, which would cut
    its blob into a disk and a ring, neither of them the pupil.

    `greyer`: instead, the best blobs of the higher levels (greyer cuts) that score higher than
    the darkest's and lie apart from it, if any: a pupil clouded by a cataract, or lit
    by another camera's illuminator, is greyer than the lashes, whose darkest round clump is
    then found first (:func:`clear_enough` tells when to ask)."""
    sy, sx = small.shape
    fx, fy = frame_width / sx, frame_height / sy
    hist = np.bincount(small.ravel(), minlength=256)
    # The darkest grey is the darkest 3 x 3 patch once specks brighter than their
    # surround (the illuminator's glint in the pupil) are opened away: a small eye in a wide
    # view has a pupil of a few dozen pixels, under any percentile of the frame.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    lo = float(cv2.blur(cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel), (3, 3)).min())
    med = percentile(hist, 0.5)
    if med - lo < 12:
        return []  # a flat frame: nothing dark stands out
    integral = cv2.integral(small, sdepth=cv2.CV_64F)

    def grey_sum(left: int, top: int, right: int, bottom: int) -> float:
        """The sum of the shrunk copy's grey over columns left..right-1, rows top..bottom-1."""
        return float(
            integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
        )

    min_r = max(2.0, 0.012 * sx)  # pupils smaller than ~8 px of a 640 px frame are not looked for

    def best_at(
        level: float,
    ) -> tuple[tuple[float, float, float], float, tuple[float, float, float] | None] | None:
        """The best blob darker than `level` of the way from the darkest grey to the median
        (frame pixels), its score and its other reading; None where there is none."""
        best, best_score, best_other = None, 0.0, None
        threshold = lo + level * (med - lo)
        dark = (small <= threshold).astype(np.uint8)
        if spots is not None:
            dark |= _holes_filled(dark) & spots
        dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, 8, cv2.CV_16U)
        inscribed = None
        for i in range(1, count):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < math.pi * min_r * min_r:
                continue
            other, disk_box, disk_taken = None, None, False
            shape_r = bw / 2.0 if bh <= bw else (bw + bh) / 4.0
            shape_y = (y + bh - shape_r) if bh < bw else (y + bh / 2.0)
            if inscribed is None:
                # Padded with dark: past the frame's edge is not pupil, and a blob running off
                # the frame must not have its largest disk centred on the edge.
                padded = np.pad(_holes_filled(dark), 1)
                inscribed = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
            box = inscribed[y : y + bh, x : x + bw] * (labels[y : y + bh, x : x + bw] == i)
            r_in = float(box.max())
            # A pupil the lashes or the lid's dark margin touch is one blob with them, not a
            # disk: its largest inscribed disk may be the pupil, the more likely the taller
            # the blob is than the disk.
            if area < 0.9 * circle_below(shape_r, min(float(bh), 2.0 * shape_r)) and r_in >= min_r:
                cy_in, cx_in = np.unravel_index(int(box.argmax()), box.shape)
                disk = (x + cx_in + 0.5, y + cy_in + 0.5, r_in)
                outline = (x + shape_r, shape_y, shape_r)
                side = max(1, round(2.0 * r_in))
                left, top = round(x + cx_in - r_in), round(y + cy_in - r_in)
                right, bottom = min(sx, left + side), min(sy, top + side)
                left, top = max(0, left), max(0, top)
                area_in = round(math.pi * r_in * r_in)
                disk_box = (left, top, max(1, right - left), max(1, bottom - top), area_in)
                if bh > 2.15 * r_in + 2.0 and _ring_contrast(small, *disk) > _ring_contrast(small, *outline):
                    other, disk_taken, (x, y, bw, bh, area) = outline, True, disk_box
                else:
                    other = disk
            # A lid cuts a pupil's top: its width is its size. A turned eye's pupil is taller
            # than wide (up to 1.6 times: a 50 degree turn); taller still is a lash, hair or
            # a text stroke.
            r = bw / 2.0 if bh <= bw else (bw + bh) / 4.0
            if disk_box is not None and not disk_taken and (r > 0.3 * sy or bh < 0.3 * bw):
                # Too big or too flat for a pupil: a pupil run into a band of lashes, if any.
                other, (x, y, bw, bh, area) = None, disk_box
                r = bw / 2.0 if bh <= bw else (bw + bh) / 4.0
            if r < min_r or r > 0.3 * sy or bh > 1.6 * bw or bh < 0.3 * bw:
                continue  # too small, too big, far taller than wide, or a line (a lid margin)
            # Filled against the part of the circle the blob's height leaves below a lid.
            fill = area / circle_below(r, min(float(bh), 2.0 * r))
            if fill < 0.3:
                continue
            # Surround: a box 1.8 radii around the blob's circle, minus the blob itself, from
            # half a radius above the circle's centre down. A pupil is ringed by its iris at
            # the sides and below; its top may be under a lid (skin, or the lid's dark margin).
            # A clump of lashes has the lid's skin above it and often the pupil below it.
            # A lid cuts the top (wider than tall): the bottom stays on the circle. A turned
            # eye's pupil is taller than wide: its box's centre is the centre.
            ccx, ccy = x + r, (y + bh - r) if bh < bw else (y + bh / 2.0)
            x0, x1 = max(0, int(ccx - 1.8 * r)), min(sx, int(ccx + 1.8 * r) + 1)
            y0, y1 = max(0, int(ccy - 0.5 * r)), min(sy, int(ccy + 1.8 * r) + 1)
            yb = max(y, y0)  # the blob's part within the box
            box_sum = grey_sum(x0, y0, x1, y1)
            part_sum = grey_sum(x, yb, x + bw, y + bh)
            inner_sum = grey_sum(x, y, x + bw, y + bh)
            box_n = (x1 - x0) * (y1 - y0)
            part_n = bw * (y + bh - yb)
            if box_n - part_n <= 0:
                continue
            surround = (box_sum - part_sum) / (box_n - part_n)
            inside = inner_sum / (bw * bh)
            contrast = (surround - inside) / max(med - lo, 1.0)
            if contrast <= 0.15:
                continue
            # Its size is its largest inscribed disk's: a pupil is a compact disk, dark all
            # through; a clump of lashes is elongated, tapers and has lighter gaps between its
            # strands, and the disk inside it is far smaller than its outline.
            score = min(fill, 1.0) * min(contrast, 1.0) * min(r, r_in)
            if score > best_score:
                best, best_score = (ccx * fx, ccy * fy, r * fx), score
                # The other reading only if it is another circle (over a pixel of the shrunk
                # copy away): refining the same pupil twice tells nothing.
                best_other = (
                    None
                    if other is None
                    or not min_r <= other[2] <= 0.3 * sy
                    or max(math.hypot(other[0] - ccx, other[1] - ccy), abs(other[2] - r)) <= 1.0
                    else (other[0] * fx, other[1] * fy, other[2] * fx)
                )
        return None if best is None else (best, best_score, best_other)

    # The pupil is the darkest round thing: the lowest level that finds one wins (higher
    # levels would take in a dark iris with its pupil as one blob).
    levels = iter(PUPIL_LEVELS)
    found = next((f for f in map(best_at, levels) if f is not None), None)
    if found is None:
        return []
    best, best_score, best_other = found
    if not greyer:
        return [best] if best_other is None else [best, best_other]
    above = (
        best_at(level) for level in (*levels, *PUPIL_GREYER_LEVELS)
    )  # the levels above the one that found it
    return [a[0] for a in above if a is not None and a[1] > best_score and apart(a[0], best)]


def apart(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """Whether two circles (x, y, r) do not overlap."""
    return math.hypot(a[0] - b[0], a[1] - b[1]) > a[2] + b[2]


def _ring_contrast(small: np.ndarray, x: float, y: float, r: float) -> float:
    """How much brighter just outside a circle is than just inside it: a pupil's edge all round."""
    cos, sin = unit_rays(24, 0.0, 360.0)
    outside = sample(small, x + 1.25 * r * cos, y + 1.25 * r * sin)
    inside = sample(small, x + 0.75 * r * cos, y + 0.75 * r * sin)
    return float(np.mean(outside - inside))


def _holes_filled(mask: np.ndarray) -> np.ndarray:
    """The mask with what it encloses filled: the illuminator's glint is a hole in the pupil."""
    padded = np.pad(mask, 1)
    outside = padded.copy()
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 1)
    return (padded | (1 - outside))[1:-1, 1:-1]


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
    samples = np.arange(len(radii))
    need = 0.25 * max(outer - inner, 8.0)

    def edge_points(expected: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Each ray's first run of steps at least PUPIL_FIRST_STEP of its strongest within
        # `reach` of the radius it is expected at, and the steepest place in that run.
        window = np.abs(radii[None, :] - expected[:, None]) < reach
        steps = np.where(window, strength, -np.inf)
        strong = steps >= PUPIL_FIRST_STEP * steps.max(axis=1, keepdims=True)
        after = samples[None, :] >= strong.argmax(axis=1)[:, None]
        ended = after & ~strong
        stop = np.where(ended.any(axis=1), ended.argmax(axis=1), len(radii))
        best = np.where(after & (samples[None, :] < stop[:, None]), steps, -np.inf).argmax(axis=1)
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


def clearer_edge(edge: PupilEdge, than: PupilEdge) -> bool:
    """Whether the rays found `edge` clearly more cleanly than `than`: the rays on it,
    discounted by how far they scatter about its circle as a share of its radius, at least
    CLEARER_EDGE times `than`'s. A pupil run into the lashes, refined from the blob's outline,
    is fitted to the pupil's edge on some rays and the lashes' on others: as many rays,
    scattered several pixels. (In pixels, a small circle in noise or texture would win for its
    size alone.) Two refinements within a few pixels of each other found the same pupil:
    `than`, found first, stands."""
    (x, y, r), (tx, ty, tr) = edge.circle, than.circle
    if max(math.hypot(x - tx, y - ty), abs(r - tr)) <= max(1.5, 0.05 * tr):
        return False

    return clarity(edge) > CLEARER_EDGE * clarity(than)


def clarity(edge: PupilEdge) -> float:
    """The rays on the edge, discounted by how far they scatter about its circle as a share
    of its radius (EDGE_SCATTER_WEIGHT)."""
    return edge.xs.size / (1.0 + EDGE_SCATTER_WEIGHT * edge.rms / max(edge.circle[2], 1.0))


def clear_enough(edge: PupilEdge) -> bool:
    """Whether the rays found `edge` as clearly as a pupil's: a clarity of at least
    PUPIL_CLEAR of the rays. (The 76 development eyes' pupils: 32.7 and more of 48; clumps
    of lashes taken for pupils clouded by a cataract: 24 and less.)"""
    return clarity(edge) >= PUPIL_CLEAR * PUPIL_RAYS


# --- the limbus -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _limbus_angles() -> tuple[np.ndarray, np.ndarray]:
    # Left and right sectors (LIMBUS_SIDE_UP_DEG above horizontal to LIMBUS_SIDE_DOWN_DEG
    # below) and the lower one (60-120 deg, y grows downwards); the upper sector is usually
    # under the lid. The left sector is the right one mirrored, ray for ray, so that a left
    # eye is searched as a right eye is.
    right = np.arange(-LIMBUS_SIDE_UP_DEG, LIMBUS_SIDE_DOWN_DEG + 0.1, LIMBUS_STEP_DEG)
    degrees = np.concatenate([right, 180.0 - right, np.arange(60.0, 120.1, LIMBUS_STEP_DEG * 1.5)])
    radians = np.radians(degrees)
    return np.cos(radians).astype(np.float32), np.sin(radians).astype(np.float32)


def limbus(
    half: np.ndarray, factor: float, pupil: tuple[float, float, float], bright: float
) -> tuple[float, float, float] | None:
    """Limbus circle (frame pixels).

    Searched on `half`, the frame shrunk by `factor`: the limbus is a soft edge, so half the
    pixels lose nothing and halve the work. On each ray, the iris-to-sclera step near the
    radius where the rays' steps add up most; each edge point then moves in to where its
    step has fallen to LIMBUS_FOOT of its peak (the foot of the ramp, where a person puts
    the limbus; the sclera by it brightens over many pixels). The circle is fitted to the
    side sectors, which the lids rarely reach, with the centre drawn towards where real
    limbi sit relative to their pupils (side arcs alone hardly tell the centre's height);
    then the lower sector's points that lie on it (the limbus, not the lower lid) join in.
    Rays whose step is far stronger than the near-horizontal rays' or lands on grey far
    darker than their sclera (a lid, lashes, shaded sclera) give no point. Rays that leave
    the frame near the limbus set no reference and give a point only on a strong step: the
    iris may run on past the edge.
    """
    # Pixel centres, not corners, shrink by `factor`: read at v / factor the copy is half a
    # pixel off, left on an eye and right on its mirror image.
    px, py = (into_copy(v, 1.0 / factor) for v in pupil[:2])
    pr = pupil[2] / factor
    h, w = half.shape
    cos, sin = _limbus_angles()
    r0 = 1.15 * pr + 2
    r1 = min(pr / LIMBUS_MIN_PUPIL_RATIO, 0.9 * max(w, h))
    if r1 <= r0 + 10:
        return None
    profiles, radii = edge_profiles(half, px, py, r0, r1, 1.0, cos, sin)
    profiles = np.minimum(profiles, bright)
    profiles = cv2.blur(profiles, (3, 1))
    strength = np.maximum(step_strength(profiles, 3), 0.0)
    # Outside the frame the samples replicate the edge: no steps there.
    xs = px + cos[:, None] * radii[None, :]
    ys = py + sin[:, None] * radii[None, :]
    off_frame = (xs < 1) | (ys < 1) | (xs > w - 2) | (ys > h - 2)
    strength[off_frame] = 0.0
    total = strength.sum(axis=0)
    if not total.any():
        return None
    peak = float(radii[int(total.argmax())])
    window = (radii >= 0.72 * peak) & (radii <= 1.35 * peak)
    local = np.where(window[None, :], strength, -1.0)
    best = local.argmax(axis=1)
    found = local[np.arange(len(best)), best]
    keep = found > 0.25 * median(found[found > 0]) if (found > 0).any() else found > 0
    # The grey just past each step: the sclera's, if the step is the limbus's.
    index = np.arange(radii.size)[None, :]
    reach = max(2, round(LIMBUS_SCLERA_REACH * peak))  # samples are 1 px of the half-size frame apart
    past = (index > best[:, None] + 1) & (index <= best[:, None] + reach) & ~off_frame
    beyond = (profiles * past).sum(axis=1) / np.maximum(past.sum(axis=1), 1)
    # A ray that leaves the frame inside the search window may not reach its limbus at all
    # (the iris continues past the frame's edge): its strongest step there is texture.
    clipped = (off_frame & window[None, :]).any(axis=1)
    horizontal = (np.abs(sin) < LIMBUS_HORIZONTAL_SIN) & keep & past.any(axis=1)
    if (horizontal & ~clipped).sum() >= 3:
        horizontal &= ~clipped
    if horizontal.sum() >= 3:
        greys = beyond[horizontal]
        sclera = float(np.partition(greys, (3 * greys.size) // 4)[(3 * greys.size) // 4])
        step = median(found[horizontal])
        plausible = keep & (beyond >= LIMBUS_MIN_SCLERA * sclera) & (found <= LIMBUS_MAX_STEP * step)
        plausible &= ~clipped | (found >= LIMBUS_CLIPPED_STEP * step)
        # Never at the cost of the eye: with too few left, every step stays.
        if plausible.sum() >= 8:
            keep = plausible
    if keep.sum() < 8:
        return None
    inward = (strength < LIMBUS_FOOT * found[:, None]) & (index <= best[:, None])
    foot = radii.size - 1 - np.argmax(inward[:, ::-1], axis=1)
    foot = np.where(inward.any(axis=1), np.minimum(foot + 1, best), best)
    rr = radii[foot]
    ex = (px + cos * rr).astype(np.float64)[keep]
    ey = (py + sin * rr).astype(np.float64)[keep]
    sides = ((sin > -LIMBUS_SIDE_UP_SIN) & (sin < LIMBUS_SIDE_DOWN_SIN))[keep]
    prior = (px, py + LIMBUS_BELOW_PUPIL * peak)
    circle = circle_with_prior(ex[sides], ey[sides], prior, LIMBUS_PRIOR_WEIGHT * sides.sum(), peak)
    if circle is None:
        return None
    on_it = np.abs(np.hypot(ex - circle[0], ey - circle[1]) - circle[2]) < LIMBUS_BOTTOM_TOLERANCE * circle[2]
    if (on_it & ~sides).sum() >= 3:
        circle = (
            circle_with_prior(
                ex[sides | on_it], ey[sides | on_it], prior, LIMBUS_PRIOR_WEIGHT * sides.sum(), peak
            )
            or circle
        )
    cx, cy, r = circle
    return out_of_copy(cx, 1.0 / factor), out_of_copy(cy, 1.0 / factor), r * factor


# --- the lids ---------------------------------------------------------------------------------

# px: the iris radius the lids are looked for at. Every eye is brought to it, a smaller one
# enlarged as a larger one is shrunk: the lid walk's runs, blurs and windows are whole pixels,
# and at the eye's own size a smaller eye's rounded to other shares of its radius. (The marked
# development eyes shrunk to 0.45, 0.6 and 0.75 of their size, an iris 90-150 px across: the
# lids within 8 px, scaled, in 0.844, 0.896 and 0.875 of them when only larger eyes were
# brought to 90, in 0.917, 0.896 and 0.927 now, the odd and the even subjects both gaining
# over 0.45-0.8; at their own size, an iris about 200 px across, nothing moves.)
LID_WORK_RADIUS = 90
LID_BLUR_ALONG = 0.15  # iris radii: the blur along the rows that fades texture and single lashes
# A lid's side differs from the iris's grey by more than this share of (iris - pupil): skin
# is brighter, the margin and the lashes' roots darker; the iris's texture, once blurred
# along the rows, and the shadow a lid casts on the eye under it stay within it.
LID_NOT_IRIS = 0.4
# Brighter than the iris, where the lower lid's walk meets the lid's skin and where the upper
# lid's margin search tells skin (:func:`_band_above`), the cut is a share of (bright - iris)
# instead, the eye's own levels on that side: a camera's tone curve stretches the greys below
# the iris and those above it differently (a gamma of 0.7 widens iris - pupil by about a tenth
# and narrows skin - iris by about a sixth; 1.4 the reverse), and with the pupil near black a
# share of (iris - pupil) is a fixed ratio to the iris's grey, which the skin, raised to the
# gamma, falls short of or far exceeds. The bright level is the LID_BRIGHT_SHARE quantile of
# the work copy's greys more than LID_BRIGHT_BELOW iris radii below the iris's centre: the
# lower lid's skin and the sclera beside the iris. (The sclera's grey beside the limbus as the
# bright level lost the lower lids whose skin is darker than the sclera; the greys above the
# iris are lashes.) The upper lid's walk keeps the dark side's cut both ways: it stops on the
# margin and the lashes, and with the bright cut it climbed past a margin on the open-iris
# eye. Chosen on the odd development subjects (shares 0.4-0.6 x quantiles 0.65-0.85 tried),
# confirmed on the even: as is, the marked lower lids within 8 px rise from 43 to 44 of 46;
# under gammas 0.7 and 1.4, from 31 and 36 to 40 and 41.
LID_NOT_IRIS_BRIGHT = 0.5
LID_BRIGHT_SHARE = 0.75
LID_BRIGHT_BELOW = 0.5
# Going down, the lower lid's skin is brighter than the iris just above it, not only than the
# iris's middle: the lower iris is often lighter (its periphery), and light that falls off
# towards the frame's edges (vignetting, an illuminator aimed high) darkens the skin below more
# than the iris, so that, measured from the middle, the cut shrinks onto the lighter lower iris
# and the lid came 15-60 px up into it. The bright side's cut is also taken from the mean grey
# of the LID_LOWER_REFERENCE iris radii of the column ending a run's length above each row (a
# run of skin never sets its own reference), where that is lighter than the middle, each grey
# in it capped at LID_LOWER_REFERENCE_CAP of the cut above the middle (a glint, or a lid come
# gradually, raises it no further). (Chosen on the marked development eyes, both halves of the
# subjects, with groundtruth.lid_probes: the lower lids within 8 px over all its copies, even /
# odd subjects, 344 / 263 -> 353 / 269 of 375 / 315, the turned copies of the odd subjects
# losing 3 and every other kind gaining or level; as they are 42 -> 44 of 46, the mean error
# 3.85 -> 3.34 px; with the corners at half the centre's light 34 -> 38; through a gamma of 0.45,
# 0.7, 1.4 and 2.2: 41, 42, 43, 41 -> 43, 44, 45, 40. Capped at the whole cut: 355 / 271, but
# 39 at 2.2; uncapped at 0.05, 0.1 and 0.125: +11 / +1, +5 / +6, +6 / +6.)
LID_LOWER_REFERENCE = 0.075
LID_LOWER_REFERENCE_CAP = 0.5
# Going down, the bright side's cut is at least the smaller of LID_SKIN_FLOOR of the dark
# side's and LID_SKIN_HEADROOM of the way from the iris's grey up to the lid box's white (its
# LID_WHITE_SHARE quantile). The bright level is read far from the iris's middle, in the rows
# below it out to the lid box's corners, and light that falls off towards a frame's edges (a
# lens's vignetting, an illuminator aimed at the middle) darkens it there more than the iris
# or the white near the middle: with the corners at half the centre's light, the cut fell to a
# quarter of the dark side's on a development eye, the lighter lower iris passed for skin, and
# the lower lid came up to the pupil. A tone curve that crowds the greys above the iris (a gamma
# of 0.45) narrows the skin's step and the white's headroom together, and there the second
# floor is the lower; on the eyes as they are neither binds. (The marked development eyes with
# the corners at 0.35 and 0.5 of the centre's light: lower lids within 8 px 37 and 38 -> 40 and
# 40 of 46; groundtruth.lid_probes, lower lids of the odd subjects 396 -> 398 of 441, every other
# count unchanged, and the 157 real eyes' metrics unchanged. The dark side's floor alone: 43 and
# 42 vignetted, but through a gamma of 0.45 lower lids 43 -> 38 of 46; the headroom's alone, as
# much as it took to gain as much vignetted, lost 2 of the eyes as they are. A floor on the
# upper lid's margin search as well took a drooping copy's lid from 2.8 to 18.6 px off.)
LID_SKIN_FLOOR = 0.5
LID_SKIN_HEADROOM = 0.3
LID_WHITE_SHARE = 0.99
LID_RUN = 0.03  # iris radii of not-iris in a row that make the lid (a lash is thinner)
LID_MIN_COLUMNS = 0.15  # share of the columns that must see a lid for there to be one
LID_MAX_BEND = 1.0  # a lid's margin bends less than the limbus: at most this, in 1 / iris radius
LID_COLUMNS = 40
LID_OFF_LIMBUS = 0.01  # iris radii inside the limbus a lid must be to be one (else it is the sclera)
LID_GAP = 0.1  # iris radii below the upper lid the lower one is looked for from (its shadow, its lashes)
LID_BEND = 0.25  # a typical lid's bend, in 1 / iris radius
LID_SHAPE_WEIGHT = 0.1  # the typical shape's pull, as a share of the points
# A head tilted to one side (an applicant lying in bed, or who cannot hold the head upright)
# tilts both lids with it. The upper lid's walk is drawn towards level with half the shape's
# pull (a glint or a clump of lash tips on one side would tilt it otherwise; with the full
# pull, points across the iris kept only about 0.7 of their tilt); the lower lid's walk,
# whose points already agree with one lower-lid shape, with a quarter of it; and a margin
# found above the walk's lid (the lashes' roots, a curtain) keeps near the walk's tilt rather
# than levelling it. (Chosen on the marked development eyes turned by +-6 and +-12 degrees
# about the limbus, odd and even subjects: the lids within 8 px at +-12 degrees rise from 138
# to 158 of 192 with the lower walk's pull, 0, 0.25 and 0.5 tried; the upper walk's half pull
# then takes its lids within 8 px at +-12 degrees from 78 to 82 of 100, at +-15 from 68 to
# 75, odd and even subjects both gaining at +-6, +-12 and +-15, upright 48 of 50 as before;
# the simulated eye's lids move by 2.2 px at most, and a quarter pull let a lash curtain
# tilt the lid.)
LID_LOWER_TILT_PULL = 0.25
LID_UPPER_TILT_PULL = 0.5
# Beyond the pulls, the walk's runs and the margin's shapes are made for lids about level: lids
# found tilted by more than LID_LEVEL_MIN_DEG over the iris's centre are looked for again with
# the frame turned to level them (levelled_eyelids). (Chosen on the development probes, 4, 5,
# 6 and 8 degrees tried: with 5, of the eyes turned by 15 degrees the upper lids within 8 px
# rise from 34 to 43 of 52 (even subjects) and 41 to 42 of 48 (odd), the lower from 43 to 46
# of 50 and 30 to 38 of 42; by 12, upper 42 to 45 and 40 to 43, lower 47 to 49 and 35 to 38;
# upright, upper 48 to 49 of 50; the lash and camera copies gain or hold. Three copies lose a
# lid that was 6-7 px off (8.3-11 px now: two turned by 6 degrees, one vignetted). With 4, an
# upright eye lost too; with 6 and 8, fewer gained.) LID_LEVEL_MAX_DEG bounds the
# turn: a lid found steeper than that is not a head's tilt.
LID_LEVEL_MIN_DEG = 5.0
LID_LEVEL_MAX_DEG = 25.0
# An upper lid's walk that stops on something dark may have stopped in a curtain of lashes
# hanging from the margin, or in the shadow the lid casts on the upper iris; the margin is then
# looked for along lid-shaped curves up to this far above the walk's lid (iris radii; a curtain
# or a shadow reaches about a third of the iris radius below the margin).
LID_MARGIN_REACH = 0.4
LID_MARGIN_BELOW = 0.03  # iris radii below the walk's lid the curve may still lie (its own edge)
# The shapes tried (1 / iris radius, the marked development lids' spread: tilts within +-0.16,
# bends 0.07-0.24).
LID_MARGIN_TILTS = (-0.2, -0.1, 0.0, 0.1, 0.2)
LID_MARGIN_BENDS = (0.05, 0.15, 0.25)
# Lashes hanging from the margin over the iris (a curtain): the margin is the bottom of the band
# their roots make, where lash-dark pixels are densest (:func:`_band_above`).
LID_BAND_WINDOW = 0.1  # iris radii along a row the share of lash-dark pixels is taken over (a few lashes)
# The least share of lash-dark pixels along a curve for a root band: most of the width is lash.
LID_BAND_MIN_SHARE = 0.5
# The band's bottom: where the share has fallen below this share of the crest's (the curtain
# below thins out gradually; a margin with bare iris under it drops at once).
LID_BAND_KEEP = 0.9
# A crest much less dense than the densest in the search is no root band: the iris just above
# the walk's lid, shaded by the lid or darkened where the light falls off towards the top of
# the frame (an illuminator below the lens, a brow's shadow), raises a low crest there that a
# little less light lifts over LID_BAND_MIN_SHARE, and the margin's own band above it was then
# passed over. The lowest crest at least LID_BAND_RIVAL of the densest is the root band. (On
# the development probes, groundtruth.lid_probes, upper lids within 8 px, even / odd subjects,
# before the copies lit from below were among them: 0.6 +3 / +1, 0.7 and 0.75 +4 / +2, 0.8
# +5 / +3, none lost; 0.85 and 0.9 lose lashes on the skin and curtains. With 0.75, all upper
# lids 892 / 840 -> 898 / 844 of 1014 / 936, those lit from below 48 / 44 -> 50 / 46 of 52 /
# 48, no kind of copy losing; the 156 IITD eyes as they are give identical metrics.)
LID_BAND_RIVAL = 0.75
# A curve of the walk's lid's shape with this share of skin-bright pixels (brighter than the
# iris by the bright side's cut, LID_NOT_IRIS_BRIGHT) runs over the lid's skin: the margin is
# below it, and a band of dark above it is the lid's own lashes over the skin, not the roots
# of lashes over the iris. (The lashes crossing the skin leave a third or less of it bare along
# a row; with a share of 0.15 the upper lid of the marked development eyes jumps up to those
# lashes for a 2 px limbus error in 1 case of 300, against 6 without the rule, and is found as
# before otherwise. A share of 0.15 took a curve by the walk's lid for skin where the frame's
# top is a little brighter than its middle (an illuminator above the lens): 022_01_L with the
# bottom row at 0.85 of the top row's light has 0.18 of such a curve over the cut (0.10 as it
# is), every crest above it was dropped, and the walk's lid stood in the lashes, 9 px low. With
# 0.3 (groundtruth.lid_probes, upper lids even / odd subjects): lit from above 46 / 45 -> 48 /
# 46 of 52 / 48, turned 6, 12 and 15 degrees +1, +1 and +2 and drooping +2 on the odd subjects,
# no kind of copy losing, the lower lids unchanged; the 2 px limbus error still moves 1 lid of
# 300; of the 157 real eyes one upper lid moves, by 1.6 px at most. Over the other copies, odd
# subjects, 0.2, 0.25 and 0.4 gained 2, 4 and 4, none lost; 0.5 lost a drooping copy. A curve
# over skin that lashes cross so densely that under 0.3 of it is bare no longer ends the
# search: the lashes-on-skin copies lost nothing by it.)
LID_BAND_SKIN = 0.3
# A lower lid's margin bends much less than an upper lid's (the marked development lower lids:
# median 0.11, 0.0-0.16 for most, against 0.15 for the upper); pulled towards the upper's
# LID_BEND, a lower lid fitted to points on one side bends up at the other, over the iris.
LID_LOWER_BEND = 0.1
# Where the lower lid sits low over the iris, the lower walk's side columns stop on the limbus
# itself (sclera beyond) a few pixels inside a limbus circle that is a little off, and those
# points curve up as the limbus does, steeper than a lower lid can. The lid is the curve most
# points agree with, among lower-lid shapes (tilts and bends, 1 / iris radius: the marked lower
# lids' tilts are within +-0.24, bends within -0.06..0.2 curving up at the sides), a point
# agreeing within LID_LOWER_AGREE iris radii (about two rows of the work copy).
LID_LOWER_TILTS = tuple(np.linspace(-0.3, 0.3, 13).tolist())
LID_LOWER_BENDS = tuple(np.linspace(0.3, -0.1, 9).tolist())
LID_LOWER_AGREE = 0.02
# Going down, the iris meets the lower lid in a dark band (the margin's shadow and the tear
# meniscus's dark edge, a few pixels) just above the bright lid skin, often not dark enough to
# stop the walk, which then stops on the skin below it. A band darker than the iris by this
# share of (iris - pupil), starting within LID_LOWER_BAND_GAP iris radii above a bright stop
# and ending within LID_LOWER_BAND_REACH above it, holds the margin: the marks put it anywhere
# from the band's top to the skin, so the point moves LID_LOWER_BAND_SHARE of the way up it.
LID_LOWER_BAND_DARK = 0.15
LID_LOWER_BAND_GAP = 0.03
LID_LOWER_BAND_REACH = 0.12
LID_LOWER_BAND_SHARE = 0.5
# A lash curtain is made of strands that run up and down the eye, the margin of a lid that runs
# across it: where grey changes mostly along the rows (strands) rather than down the columns
# (a margin, an edge of skin), the structure tensor's share (Gx^2 - Gy^2) / (Gx^2 + Gy^2) over a
# window LID_STRAND_WIDTH x LID_STRAND_HEIGHT iris radii is high. Measured on the marked
# development eyes, the marked upper lid runs along horizontal structure (-0.9..+0.2 mean along
# it) except in the two eyes whose upper iris is behind a curtain; a lid found along strands
# (over LID_CURTAIN_STRANDS) is in a curtain and the margin is above it. The cut sits low in
# the margins' range, not at 0.3 as before: a walk stopped at a curtain's ragged tips runs
# partly across strand ends, and a margin wrongly searched above is still found at the darkest
# roots, its own (the cut chosen on the odd development subjects, 0.3 / 0.15 / none tried; on
# the even ones 0.15 changed nothing and none lost four upper lids).
LID_STRAND_WIDTH = 0.15
LID_STRAND_HEIGHT = 0.05
LID_STRAND_FLOOR = 20.0  # grey levels per pixel: gradients weaker than this (smooth skin) are no structure
LID_CURTAIN_STRANDS = 0.15
# A curtain out of focus reads less along the lid: lashes drooping from a heavy lid hang nearer
# the lens than the iris, blur, and merge into a soft dark band that reads -0.5..0.45 along the
# walk's lid, half of it under LID_CURTAIN_STRANDS (groundtruth.degraded_eyes.lash_clumps with
# `soft` 0.02 and 0.03 iris radii), where the lid found on a development eye as it is (the walk's,
# moved to its root band: not the marked lid of the measure above) reads -0.83..-0.11. So a lid
# over LID_CURTAIN_ALONG, in the gap, is also taken to lie in a curtain where the band just above
# it is dark even between its strands: the brightest grey over LID_CURTAIN_GAPS along the rows,
# averaged over the heights up to LID_STRAND_ABOVE iris radii above the lid, is darker than the
# iris by over LID_SOFT_DARK of the iris's grey over the pupil's (soft curtains -0.63..-0.28 of
# it; dense lashes curled up over the skin above a margin,
# groundtruth.degraded_eyes.lashes_on_skin, -0.34..0.25, skin or iris between them). Upper lids
# within 8 px under soft clumps, odd / even development subjects: 39 / 45 of 96 / 104 before, 78 /
# 86 with it; without the darkness test lashes on the skin lost 7 of 96 odd copies, with it none
# (0.2 and 0.3 tried: one lashes-on-skin or three soft copies less). Of every other kind of copy
# in groundtruth.lid_probes only one clump copy moved out of 8 px (4.3 -> 9.3); the development
# eyes as they are give the same metrics.
# Lashes so many that the iris is not seen between them are no curtain to look past, whichever
# of the rules above says curtain: the iris seen ends at their lower edge, where a person puts
# the lid. Told above the lashes' ragged tips, which let the iris through where they end: the
# brightest grey between strands over LID_CURTAIN_GAPS along the rows, averaged over the heights
# LID_HIDDEN_FROM to LID_HIDDEN_TO iris radii above the lid, lies over LID_OPAQUE of the way
# from the iris's grey to the pupil's. (On the development probes, where a rule took the lid
# for one in a curtain: dense strands hiding the iris 0.15 and 0.3 iris radii below the marked
# lid, groundtruth.degraded_eyes.lash_mass, median 0.70, 38 of 45 over 0.6; soft clumps,
# clumps and curtains at most 0.29 in nine of ten, one of 600 over 0.6.) Upper lids within 8 px,
# even / odd development subjects, against the test before it (the same cut over the heights up
# to LID_STRAND_ABOVE, for the soft rule only): under masses 75 / 69 -> 92 / 87 of 104 / 96,
# soft clumps 83 / 80 -> 87 / 80, every other kind of copy and the eyes as they are unchanged.
# (Heights 0.05-0.15: masses 94 / 86 but clumps 99 -> 96 and soft clumps 79 / 80; 0.1-0.2: 92 /
# 87 and 84 / 80, a curtain and a clump less; 0.1-0.25 as 0.15-0.25; 0.15-0.3 and 0.2-0.3:
# masses 90 / 86 and 88 / 84. Cuts 0.55 and 0.65: masses 92 / 87 and 90 / 80, soft clumps 85 /
# 80 and 88 / 80. Keeping the near test as well: masses 94 / 89, soft clumps 82 / 80.)
LID_CURTAIN_ALONG = -0.1
LID_SOFT_DARK = 0.25
LID_OPAQUE = 0.6
LID_HIDDEN_FROM = 0.15
LID_HIDDEN_TO = 0.25
# Lashes grow from the margin in one row and fan out down a curtain, so between the roots there
# are no gaps: going up from a lid in a curtain, the margin is the curve along which the grey
# with the strands closed over (the rows closed over LID_CURTAIN_GAPS iris radii, which fills
# strands thinner than that, iris seen between them) is darkest, searched up to
# LID_CURTAIN_REACH iris radii above (a curtain of the marked development eyes hangs up to 0.55
# below the margin) and within the iris. Curtain and shadow are lighter (iris between the
# strands), the skin above the roots lighter still. (The first curve above whose closed grey
# was skin-bright, the rule before, climbed past the roots into the lid's own lashes.) Each
# column's point then moves to its darkest closed grey within LID_CURTAIN_SNAP iris radii of
# the curve (a real margin is not exactly the walk's shape), and the lid is the robust
# parabola through them.
LID_CURTAIN_GAPS = 0.15
LID_CURTAIN_REACH = 0.6
LID_CURTAIN_SNAP = 0.08
# A walk stopped at the tips of clumped, tapering, soft-edged lashes (as real curtains hang)
# runs across their ends, not along them: the strands are just above. The lid is also taken to
# lie in a curtain where the mean strandness along it moved up by 0 to LID_STRAND_ABOVE iris
# radii is over LID_CURTAIN_STRANDS and the lid itself is no clear line across the eye
# (strandness over -LID_STRAND_ACROSS): above a bare margin, whose own dark line runs across,
# the lid's lashes over the skin are strands too. (Chosen on the odd development subjects:
# 0.05 / 0.1 / 0.2 tried; the ACROSS condition keeps a margin under dense lashes on skin from
# flipping with a 2 px limbus error.)
LID_STRAND_ABOVE = 0.1
LID_STRAND_ACROSS = 0.25
# A lid low over the iris (a drooping lid, common among the elderly) is often missed upwards:
# the walk climbs past its margin, a dark line two or three pixels thick, into the skin just
# above it, which is little brighter than the iris; or the margin search takes the lashes on
# the skin above it for a curtain's roots. Neither happens where the lid lies at the iris's
# top, as on most eyes, since the search ends at the limbus. So, below the upper lid found,
# from LID_LINE_GAP iris radii under it down to LID_LINE_LOWEST pupil radii above the pupil's
# centre, the margin is looked for as a line: a lid-shaped curve along which at least
# LID_LINE_DARK of the columns (those in the iris and off the pupil, at least LID_LINE_COLUMNS
# of them) are darker than the dark side's cut within a row, which runs across the eye
# (strandness at most -LID_STRAND_ACROSS: no curtain's tips), and which is apart from the lid
# found: in at least LID_LINE_SEPARATE of those columns, a run of LID_LINE_APART iris radii of
# rows no darker than the cut lies between them (a lid's own margin has lighter strips, its
# glint and its grey line, up to about half that wide; the shadow a lid casts runs on from
# it). The lowest such curve is the margin. (The marked development eyes with their real
# upper lid, skin, margin and lashes, moved down over the iris, groundtruth.lid_probes'
# "drooping" copies: upper lids within 8 px of the moved marks, lowered 0.2 and 0.4 iris
# radii, 27 and 14 of 50 -> 32 and 25; slanted from 0 to 0.3 either way 27 and 33 -> 30 and
# 33; and where the marks leave under 0.7 of the iris, at 0.4, open_wider said for 21 of 45
# -> 32. Every other kind of copy in groundtruth.lid_probes gains or holds but one curtain
# copy of the odd subjects, 7.9 -> 8.0 px; the 157 real eyes' metrics are unchanged. Dark
# and separate shares of 0.6-0.8 and runs apart of 0.05-0.07 gave the same within 5 of 50;
# apart 0.03, the dark line under one development eye's lid glint passed for its margin in 8
# of its copies, 5-12 px low.)
LID_LINE_GAP = 0.05
LID_LINE_LOWEST = 0.5
LID_LINE_DARK = 0.7
LID_LINE_COLUMNS = 0.4
LID_LINE_SEPARATE = 0.7
LID_LINE_APART = 0.07
# Where the iris's grey lies between the pupil's and the sclera's (the share of the way up),
# 5th to 95th percentile of the development eyes (median 0.59). The lids' cuts are shares of
# these greys' differences, and a camera's tone curve moves the share: grey raised to a gamma
# of 2.2 brings it to 0.25-0.49, of 0.45 to 0.63-0.77, where iris texture reads as lashes or
# lashes as iris. An eye outside the range is brought to its nearer end before the lids are
# looked for (development eyes through a gamma of 2.2: upper lids within 8 px of the marks
# 0.64 -> 0.88, lower 0.78 -> 0.89; at 1.4 0.90 -> 0.92 and 0.87 -> 0.91; as they are, the
# lids of 6 of the 76 move, by 1.8 px at most).
LID_TONE_RANGE = (0.47, 0.67)


def lid_tone_table(pupil_grey: float, iris_grey: float, sclera_grey: float) -> np.ndarray | None:
    """A grey look-up table (256 uint8) that brings an eye whose iris lies outside
    LID_TONE_RANGE of the way from its pupil's grey to its sclera's back to the range's nearer
    end: a power curve between those two greys, darker and brighter greys kept. None when the
    iris lies within the range (or the greys say nothing: no span between pupil and sclera)."""
    span = sclera_grey - pupil_grey
    if span < 8.0:
        return None
    share = (iris_grey - pupil_grey) / span
    lo, hi = LID_TONE_RANGE
    if not 0.02 < share < 0.98 or lo <= share <= hi:
        return None
    power = math.log(min(max(share, lo), hi)) / math.log(share)
    levels = np.arange(256, dtype=np.float64)
    between = (levels > pupil_grey) & (levels < sclera_grey)
    curved = pupil_grey + span * np.clip((levels - pupil_grey) / span, 0.0, 1.0) ** power
    return np.clip(np.rint(np.where(between, curved, levels)), 0, 255).astype(np.uint8)


# A cataract greys the pupil (many of the elderly the kit records): the lids' cuts, shares of
# the iris's grey less the pupil's, then shrink until iris texture reads as lashes (development
# eyes with their pupils greyed half-way to the iris: 5 upper or lower lids of 50 moved 30-80
# px). The eye's black is then taken from round the iris, where the lashes and the lid's margin
# are as black as a clear pupil: the darkest EYE_BLACK_SHARE of the lids' search box. A pupil
# is clouded when it is greyer than that by EYE_CLOUDED_PUPIL of the way to the sclera (clear
# development pupils: by 4 grey levels at most, 0.02 of the way).
EYE_BLACK_SHARE = 0.005
EYE_CLOUDED_PUPIL = 0.1


def lid_box(shape: tuple[int, ...], iris: tuple[float, float, float]) -> tuple[int, int, int, int]:
    """The part of a frame of `shape` the lids are looked for in (x0, x1, y0, y1, ends
    excluded): an iris radius either side of the iris's centre, 1.1 above and below, cut at
    the frame's edges."""
    h, w = shape[:2]
    ix, iy, ir = iris
    return (
        max(0, int(ix - ir)),
        min(w, int(ix + ir) + 2),
        max(0, int(iy - 1.1 * ir)),
        min(h, int(iy + 1.1 * ir) + 2),
    )


def clouded_pupil_black(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    pupil_grey: float,
    sclera_grey: float,
) -> float | None:
    """The eye's black where the pupil (of grey `pupil_grey`) is clouded, else None: the
    darkest EYE_BLACK_SHARE of the grey round the iris (the lids' search box, every other
    pixel, the pupil left out), the lashes' and the lid margin's."""
    # The black is never below 0: a pupil no greyer than EYE_CLOUDED_PUPIL of the sclera's
    # grey is clear whatever the lashes' (every frame of a clear eye stops here).
    if pupil_grey <= EYE_CLOUDED_PUPIL * sclera_grey:
        return None
    px, py, pr = pupil
    x0, x1, y0, y1 = lid_box(g.shape, iris)
    box = g[y0:y1:2, x0:x1:2]
    ys, xs = np.mgrid[y0:y1:2, x0:x1:2]
    greys = box[np.hypot(xs - px, ys - py) > 1.2 * pr]
    if greys.size == 0:
        return None
    k = int(EYE_BLACK_SHARE * (greys.size - 1))
    black = float(np.partition(greys, k)[k])
    return black if pupil_grey - black > EYE_CLOUDED_PUPIL * (sclera_grey - black) else None


@functools.lru_cache(maxsize=1)
def _lid_grey_points() -> tuple[np.ndarray, ...]:
    """Where the iris's grey is read (rays 5-55 degrees below the horizontal, either side, at
    0.3-0.7 of the way from pupil to limbus) and the pupil's (a 5 x 5 grid over its middle,
    in pupil radii)."""
    angles = np.radians(np.r_[5:56:5, 125:176:5]).astype(np.float32)
    shares = np.linspace(0.3, 0.7, 5, dtype=np.float32)
    cos = np.broadcast_to(np.cos(angles)[:, None], (angles.size, shares.size)).copy()
    sin = np.broadcast_to(np.sin(angles)[:, None], (angles.size, shares.size)).copy()
    across = np.linspace(-0.4, 0.4, 5, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(across, across)
    out = (cos, sin, np.broadcast_to(shares, cos.shape).copy(), grid_x, grid_y)
    for array in out:
        array.flags.writeable = False
    return out


@functools.lru_cache(maxsize=1)
def _lid_column_shares() -> np.ndarray:
    """The columns a lid is looked for in, in iris radii from the iris centre."""
    shares = np.linspace(-0.85, 0.85, LID_COLUMNS)
    shares.flags.writeable = False
    return shares


@dataclass(frozen=True)
class Lid:
    """A lid's margin, a parabola in frame pixels: y = y0 + tilt * (x - x0) + bend * (x - x0) ** 2."""

    x0: float
    y0: float
    tilt: float
    bend: float

    def moved(self, dy: float) -> Lid:
        """The same margin, `dy` pixels lower."""
        return Lid(self.x0, self.y0 + dy, self.tilt, self.bend)

    def y_at(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.y0 + self.tilt * (x - self.x0) + self.bend * (x - self.x0) ** 2

    def slope_at(self, x: float) -> float:
        return self.tilt + 2.0 * self.bend * (x - self.x0)

    def through(self, matrix: np.ndarray, xs: np.ndarray) -> Lid:
        """The margin moved by an affine `matrix` (2 x 3): the parabola through its points at
        `xs`, moved."""
        moved = np.column_stack([xs, self.y_at(xs), np.ones_like(xs)]) @ matrix.T
        x0 = float(np.mean(moved[:, 0]))
        bend, tilt, y0 = np.polyfit(moved[:, 0] - x0, moved[:, 1], 2)
        return Lid(x0, float(y0), float(tilt), float(bend))


def eyelids(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    skin_cut: float,
    spec_cut: float = 256.0,
    black: float | None = None,
) -> tuple[Lid | None, Lid | None]:
    """The upper and lower lids' margins across the iris, or None for a lid not over it.

    Where the iris ends going up (down) from the pupil, column by column: on a copy brought
    to one scale whatever the eye's size and blurred along the rows (the iris's texture and
    single lashes fade; a lid, which runs across the eye, stays), the first run of rows
    whose grey is not the iris's: skin above it, or the lid's dark margin and the lashes'
    roots. A parabola through those points, robustly. Columns where the iris runs on to
    the limbus (sclera beyond, no lid) or out of the frame give no point; with too few
    points the lid is taken not to be over the iris. The lower lid's point moves up into the
    dark band just above where its walk stopped on bright skin (:func:`_above_dark_band`), and
    its points are those agreeing with one lower-lid shape (:func:`_lower_lid_agreeing`):
    the limbus, where the walk meets it, curves more. Where the upper lid's walk stopped on
    dark (a lash curtain or the lid's shadow may hang below the margin), the margin is
    looked for above it: the bottom of the lashes' root band (:func:`_band_above`), and,
    where the lid then still lies along strands, the darkest curve above, between whose
    strands no iris is seen (:func:`_above_curtain`). An upper lid come down over the pupil
    (the walk starts in lid skin) is placed where, down the pupil's middle, grey no brighter
    than `skin_cut` begins (:func:`lid_over_pupil`), and the lower lid is looked for below it;
    a walk that starts in lashes instead (a margin low over the iris, lashes over the pupil)
    takes its start for the lid and looks for the margin above it as on dark. Greys from
    `spec_cut` up are reflections (:func:`_glare_over_iris`; the default, above any grey,
    takes none). The cuts are shares of the iris's grey less the eye's `black`: by default
    the pupil's middle's grey; a caller that found the pupil clouded passes the lashes' black
    (:func:`clouded_pupil_black`).
    """
    h, w = g.shape
    px, py, pr = pupil
    ix, iy, ir = iris
    x0, x1, y0, y1 = lid_box(g.shape, iris)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, None
    scale = LID_WORK_RADIUS / ir
    cw, ch = max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale))
    sx, sy = cw / (x1 - x0), ch / (y1 - y0)
    sharp = cv2.resize(g[y0:y1, x0:x1], (cw, ch), interpolation=cv2.INTER_LINEAR)
    radius = ir * sx
    work = cv2.blur(sharp, (max(3, int(LID_BLUR_ALONG * radius)) | 1, 1)).astype(np.float32)
    # The iris's and the pupil's greys, from the frame: the annulus's middle left and right
    # of the pupil and a little below (a lid come down past the pupil's centre covers the
    # rays above the horizontal); the pupil's middle.
    cos, sin, shares, grid_x, grid_y = _lid_grey_points()
    reach = pr + shares * (ir - pr)
    ax = px + cos * reach
    ay = py + sin * reach
    on = (ax >= 0) & (ax <= w - 1) & (ay >= 0) & (ay <= h - 1)
    if not on.any():
        return None, None
    iris_grey = median(sample(g, ax[on], ay[on]))
    pupil_grey = median(sample(g, px + grid_x * pr, py + grid_y * pr)) if black is None else black
    dark_cut = LID_NOT_IRIS * max(iris_grey - pupil_grey, 8.0)
    run = max(2, round(LID_RUN * radius))
    # Frame coordinates of the work image's columns and rows.
    fx = out_of_copy(np.arange(cw, dtype=np.float32), sx) + x0
    fy = out_of_copy(np.arange(ch, dtype=np.float32), sy) + y0
    # The bright level below the iris (the lower lid's skin, the sclera), and the cut above the
    # iris's grey from it; where the frame ends above the limbus's bottom, the rows below the
    # iris are mostly iris, whose outer ring may be brighter than its middle (on a development
    # eye the lower lid then came 46 px up into the iris), and the dark side's cut stands.
    below = work[fy > iy + LID_BRIGHT_BELOW * ir].ravel()
    bright_cut = dark_cut
    if below.size and iy + ir <= h - 1:
        k = int(LID_BRIGHT_SHARE * (below.size - 1))
        bright_cut = LID_NOT_IRIS_BRIGHT * max(float(np.partition(below, k)[k]) - iris_grey, 8.0)
    columns = np.unique(
        np.clip(np.rint(into_copy(ix + ir * _lid_column_shares() - x0, sx)), 0, cw - 1).astype(np.int64)
    )
    cols_x = fx[columns]
    across = np.abs(cols_x - px)
    pupil_half = np.sqrt(np.maximum(pr * pr - across * across, 0.0))
    limbus_half = np.sqrt(np.maximum(ir * ir - (cols_x - ix) ** 2, 0.0))
    # A run of `run` rows, upwards (ending at the row) and downwards (starting at it).
    # Not iris: darker than it by the dark side's cut, or brighter by the bright side's (the
    # upper walk keeps the dark side's cut both ways, see LID_NOT_IRIS_BRIGHT).
    along = work[:, columns]
    darker = along < iris_grey - dark_cut
    not_iris_up = darker | (along > iris_grey + dark_cut)
    above = lid_reference_above(
        np.minimum(along, iris_grey + LID_LOWER_REFERENCE_CAP * bright_cut),
        max(2, round(LID_LOWER_REFERENCE * radius)),
        run + 1,
    )
    # Going down, the skin's cut has a floor (see LID_SKIN_FLOOR); the white is read only where
    # the cut may be under it.
    skin_cut_down = bright_cut
    if bright_cut < LID_SKIN_FLOOR * dark_cut:
        whitest = int(LID_WHITE_SHARE * (work.size - 1))
        white = float(np.partition(work.ravel(), whitest)[whitest])
        skin_cut_down = max(
            bright_cut, min(LID_SKIN_FLOOR * dark_cut, LID_SKIN_HEADROOM * (white - iris_grey))
        )
    not_iris_down = darker | (along > np.maximum(above, iris_grey) + skin_cut_down)
    glare = _glare_over_iris(sharp, spec_cut, radius, (into_copy(ix - x0, sx), into_copy(iy - y0, sy)))
    if glare is not None:
        not_iris_up &= ~glare[:, columns]
        not_iris_down &= ~glare[:, columns]
    not_iris_up, not_iris_down = not_iris_up.astype(np.uint8), not_iris_down.astype(np.uint8)
    # Eroded along the columns: a row stays where `run` rows of not-iris end (up) or begin (down).
    kernel = np.ones((run, 1), np.uint8)
    up_run = cv2.erode(not_iris_up, kernel, anchor=(0, run - 1), borderValue=0).astype(bool)
    down_run = cv2.erode(not_iris_down, kernel, anchor=(0, 0), borderValue=0).astype(bool)
    rows = fy[:, None]
    lids = []
    for sign, runs in ((1.0, up_run), (-1.0, down_run)):
        # From just outside the pupil (its edge in the columns it spans), away from it; the
        # lower lid from below the upper one, wherever that has come down to.
        start = py - sign * (pupil_half + 0.15 * pr + 1.0)
        if sign < 0 and lids and lids[0] is not None:
            start = np.maximum(start, np.asarray(lids[0].y_at(cols_x)) + LID_GAP * ir)
        limbus_edge = iy - sign * limbus_half
        if sign > 0:
            ok = runs & (rows <= start[None, :]) & (rows >= limbus_edge[None, :] - 2.0 * run / sy)
            found = ok.any(axis=0)
            index = ch - 1 - np.argmax(ok[::-1], axis=0)  # the lowest: nearest the pupil
            edge = fy[np.minimum(index, ch - 1)] + 0.5 / sy  # the bottom of the run's lowest row
        else:
            ok = runs & (rows >= start[None, :]) & (rows <= limbus_edge[None, :] + 2.0 * run / sy)
            found = ok.any(axis=0)
            index = np.argmax(ok, axis=0)
            edge = _above_dark_band(
                work, index, columns, fy, sy, radius, run, iris_grey, iris_grey - pupil_grey
            )
        # Where the iris simply runs on to the limbus (sclera beyond) there is no lid; where
        # the walk starts in lid, the lid is further in, over the pupil.
        found &= sign * (edge - limbus_edge) > max(1.0, LID_OFF_LIMBUS * ir)
        if glare is not None:
            # A walk that met glare may have met the lid under it, and the column cannot tell
            # where it is. Going up, any glare crossed: past it lie the lid's skin and lashes,
            # which blurred along the rows can pass for iris up to the lashes' roots. Going
            # down, glare just before the stop: past glare the lower lid's bare skin stops
            # the walk at once, and a walk that went on through iris after glare found the lid.
            if sign > 0:
                met = (rows <= start[None, :]) & (rows >= edge[None, :])
            else:
                stop = fy[index] - 0.5 / sy  # the stop's row, above any band the edge moved into
                met = (rows < stop[None, :]) & (rows >= stop[None, :] - (run + 2) / sy)
            found &= ~(met & glare[:, columns]).any(axis=0)
        inside_lid = found & (sign * (start - edge) < 1.5 * run / sy)
        found &= ~inside_lid
        lid = None
        if found.sum() >= LID_MIN_COLUMNS * columns.size:
            if sign < 0:
                found &= _lower_lid_agreeing(cols_x, edge, found, ix, ir)
            lid = _robust_lid(
                cols_x[found].astype(np.float64),
                edge[found].astype(np.float64),
                ix,
                ir,
                sign,
                LID_BEND if sign > 0 else LID_LOWER_BEND,
                tilt_pull=LID_UPPER_TILT_PULL if sign > 0 else LID_LOWER_TILT_PULL,
            )
        if sign > 0 and (
            inside_lid.sum() >= LID_MIN_COLUMNS * columns.size
            or (lid is not None and lid.y_at(px) > py - pr + 2.0)
        ):
            over_pupil = lid_over_pupil(g, pupil, skin_cut)
            if over_pupil is not None:
                lid = (
                    Lid(px, over_pupil, 0.0, 0.0)
                    if lid is None
                    else lid.moved(over_pupil - float(lid.y_at(px)))
                )
            elif lid is None and inside_lid.sum() >= LID_MIN_COLUMNS * columns.size:
                # No skin over the pupil, yet the walk starts in something not iris: lashes
                # hanging from a margin low over the iris. The walk's lid is its start.
                lid = _robust_lid(
                    cols_x[inside_lid].astype(np.float64), start[inside_lid].astype(np.float64), ix, ir, sign
                )
                found = inside_lid
        # Stopped on dark (the run's greys below the iris's in most columns): a lash curtain or
        # the lid's shadow may hang below the margin.
        if (
            sign > 0
            and lid is not None
            and found.any()
            and median(work[np.maximum(index[found] - run // 2, 0), columns[found]] - iris_grey) < 0
        ):
            cuts = (iris_grey - dark_cut, iris_grey + bright_cut)
            # Along curves, glare is filled in from round it: a lid's band runs on under it.
            seen = sharp
            if glare is not None:
                seen = cv2.inpaint(sharp, glare.astype(np.uint8), 3, cv2.INPAINT_TELEA)
            band = _band_above(seen, cuts, radius, run, lid, columns, cols_x, fy, sy, y0, (ix, ir))
            lid = _above_curtain(
                seen,
                band if band is not None else lid,
                fx,
                sy,
                y0,
                radius,
                (ix, iy, ir),
                (iris_grey, pupil_grey),
            )
        if sign > 0 and lid is not None:
            lid = (
                _margin_below(sharp, lid, columns, cols_x, fy, (sy, y0), iris, pupil, iris_grey - dark_cut)
                or lid
            )
        lids.append(lid)
    return lids[0], lids[1]


LidFinder = Callable[
    [np.ndarray, tuple[float, float, float], tuple[float, float, float]], tuple[Lid | None, Lid | None]
]


def levelled_eyelids(
    find: LidFinder, g: np.ndarray, pupil: tuple[float, float, float], iris: tuple[float, float, float]
) -> tuple[Lid | None, Lid | None]:
    """The lids `find` (:func:`eyelids` with its cuts) gives on the frame `g`; where they lie
    tilted (a head leant to one side), found again on a copy of the frame turned about the
    iris's centre so that they lie level, and turned back into the frame.

    The tilt is the mean of the lids' slopes over the iris's centre. A head's tilt turns
    both; a gaze to one side slants each over the iris too, so some upright eyes are looked
    at twice as well (16 of the 76 development eyes, at the cost of a second search, about
    1.5 ms at 640 x 480; of the marked ones one upper lid gained, none lost). Weighing the
    lids by their bends, so that a gaze's slants cancel, or asking for both lids, gained less
    on the turned development eyes. Only the part of the frame the lids are looked for in is
    turned (the whole 640 x 480 frame took 1 ms); its corners are the frame mirrored.
    """
    upper, lower = find(g, pupil, iris)
    ix, iy, ir = iris
    slopes = [lid.slope_at(ix) for lid in (upper, lower) if lid is not None]
    if not slopes:
        return upper, lower
    degrees = math.degrees(math.atan(sum(slopes) / len(slopes)))
    if abs(degrees) < LID_LEVEL_MIN_DEG:
        return upper, lower
    degrees = max(-LID_LEVEL_MAX_DEG, min(LID_LEVEL_MAX_DEG, degrees))
    # A box round eyelids' own (1.0 and 1.1 iris radii either side), cut at the frame's edges
    # as eyelids' is: the frame's edges stay where eyelids looks for them.
    h, w = g.shape
    x0, x1 = max(0, int(ix - 1.1 * ir)), min(w, int(ix + 1.1 * ir) + 2)
    y0, y1 = max(0, int(iy - 1.2 * ir)), min(h, int(iy + 1.2 * ir) + 2)
    turn = cv2.getRotationMatrix2D((ix, iy), degrees, 1.0)
    turn[:, 2] -= (x0, y0)  # into the box's pixels
    turned = cv2.warpAffine(
        g, turn, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    px, py = turn @ np.array([pupil[0], pupil[1], 1.0])
    level = find(turned, (float(px), float(py), pupil[2]), (ix - x0, iy - y0, ir))
    back = cv2.invertAffineTransform(turn)
    xs = np.linspace(ix - x0 - 1.2 * ir, ix - x0 + 1.2 * ir, 25)
    upper, lower = (None if lid is None else lid.through(back, xs) for lid in level)
    return upper, lower


def lid_reference_above(along: np.ndarray, rows: int, gap: int) -> np.ndarray:
    """For each row of `along` (rows x columns), the mean of the `rows` rows of its column that
    end `gap` rows above it; -inf where none lie above (the first `gap` rows)."""
    sums = np.vstack([np.zeros((1, along.shape[1])), np.cumsum(along, axis=0, dtype=np.float64)])
    index = np.arange(along.shape[0])
    end = np.clip(index - gap + 1, 0, along.shape[0])
    start = np.clip(end - rows, 0, None)
    count = (end - start)[:, None]
    mean = (sums[end] - sums[start]) / np.maximum(count, 1)
    return np.where(count > 0, mean, -np.inf)


def saturated_patches(
    image: np.ndarray, cut: float, least: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]] | None:
    """The connected patches of `image` at or above `cut` (8-connected): labels, stats and
    centroids as cv2.connectedComponentsWithStats gives them, of the box round the saturated
    pixels only (most frames: a glint or two), and that box's corner in `image`. None with
    fewer than `least` such pixels."""
    mask = (image >= cut).astype(np.uint8)
    bright = cv2.findNonZero(mask)
    if bright is None or len(bright) < least:
        return None
    bx, by, bw, bh = cv2.boundingRect(bright)
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(
        mask[by : by + bh, bx : bx + bw], 8, cv2.CV_32S
    )
    return labels, stats, centroids, (bx, by)


def _glare_over_iris(
    sharp: np.ndarray, spec_cut: float, radius: float, centre: tuple[float, float]
) -> np.ndarray | None:
    """Where, on the lids' work copy, a reflection lies over the iris: the illuminator's image
    in glasses or on the cornea, saturated past `spec_cut`, with the halo the blur along the
    rows spreads round it. A walk that meets it has not met a lid: it says nothing of what is
    behind it. Spots mostly outside the limbus, or reaching the copy's top (skin lit to
    saturation above a lid), are not taken. None when there is none."""
    least = max(4, round(GLARE_MIN_AREA * radius * radius))
    patches = saturated_patches(sharp, spec_cut, least)
    if patches is None:
        return None
    labels, stats, _, (bx, by) = patches
    keep = (stats[:, cv2.CC_STAT_AREA] >= least) & (stats[:, cv2.CC_STAT_TOP] + by > 0)
    keep[0] = False
    if not keep.any():
        return None
    for i in np.flatnonzero(keep):
        x, y, w, h = (int(v) for v in stats[i, :4])
        ys, xs = np.nonzero(labels[y : y + h, x : x + w] == i)
        keep[i] = np.mean(np.hypot(xs + x + bx - centre[0], ys + y + by - centre[1]) < radius) >= 0.5
    if not keep.any():
        return None
    halo = max(3, int(LID_BLUR_ALONG * radius)) // 2 + 2
    glare = np.zeros(sharp.shape, np.uint8)
    glare[by : by + labels.shape[0], bx : bx + labels.shape[1]] = keep[labels]
    return cv2.dilate(glare, np.ones((3, 2 * halo + 1), np.uint8)).astype(bool)


def _strandness(image: np.ndarray, radius: float) -> np.ndarray:
    """How much the grey about each pixel changes along the rows rather than down the columns,
    -1..1 (the structure tensor's (Gx^2 - Gy^2) / (Gx^2 + Gy^2) over LID_STRAND_WIDTH x
    LID_STRAND_HEIGHT iris radii): lashes hanging over the eye are near 1, a lid's margin (its
    dark line, its edge against the skin or the iris) below 0."""
    f = image.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    size = (max(3, int(LID_STRAND_WIDTH * radius)) | 1, max(3, int(LID_STRAND_HEIGHT * radius)) | 1)
    jxx = cv2.blur(gx * gx, size)
    jyy = cv2.blur(gy * gy, size)
    return (jxx - jyy) / (jxx + jyy + LID_STRAND_FLOOR**2)


def _above_curtain(
    sharp: np.ndarray,
    lid: Lid,
    fx: np.ndarray,
    sy: float,
    y0: int,
    radius: float,
    iris: tuple[float, float, float],
    greys: tuple[float, float],
) -> Lid:
    """The upper lid's margin, `lid` (the walk's, moved to the lashes' root band) or above it
    where `lid` lies in a curtain of lashes hanging over the iris.

    Along the lid over the iris (columns within 0.85 iris radii of its centre, rows below the
    limbus) the mean :func:`_strandness` of the unblurred work copy says whether the lid runs
    along strands (a curtain, iris seen between its lashes) or across the eye (a margin); a lid
    not clearly across the eye is in a curtain out of focus where even the brightest grey
    between its strands just above it is dark (`greys`: the iris's and the pupil's). Lashes
    that hide the iris a little higher up (LID_HIDDEN_FROM to LID_HIDDEN_TO iris radii above
    the lid) are no curtain: the lid stays at their lower edge. In a curtain the margin is
    the lash roots' row: of the curves of the lid's shape from it up to LID_CURTAIN_REACH iris
    radii above it, while over the iris, the one along which the grey between the strands (the
    rows closed over LID_CURTAIN_GAPS) is darkest; each column's point then moves to its
    darkest such grey within LID_CURTAIN_SNAP iris radii, and the margin is the robust parabola
    through them."""
    ix, iy, ir = iris
    ch, cw = sharp.shape
    over = np.abs(fx - ix) <= 0.85 * ir
    xs, fxs = np.arange(cw)[over], fx[over]
    limbus_top = iy - np.sqrt(np.maximum(ir * ir - (fxs - ix) ** 2, 0.0))
    lid_y = np.asarray(lid.y_at(fxs))
    # Only the rows the lid crosses are measured, then, in a curtain, those the search crosses
    # (with the window's height of rows around them).
    pad = max(3, int(LID_STRAND_HEIGHT * radius)) + 2
    last = min(ch, int((float(np.max(lid_y)) - y0 + 1.0) * sy) + pad)

    def work_rows(dys: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
        """The work rows (from `first` on) the lid crosses moved up by each of `dys` pixels
        (heights x columns), and where it is over the iris."""
        ys = lid_y[None, :] - dys[:, None]
        rows = np.rint(into_copy(ys - y0, sy)).astype(np.int64) - first
        return rows, (ys > limbus_top + 1.0) & (rows >= 0) & (rows < last - first)

    def along(values: np.ndarray, first: int, dys: np.ndarray) -> np.ndarray:
        """The mean of `values` (work rows from `first` on) along the lid moved up by each of
        `dys` pixels, over the iris; NaN where too little of it is (all heights at once: this
        runs on every frame with lashes over the iris)."""
        rows, inside = work_rows(dys, first)
        picked = np.where(inside, values[np.clip(rows, 0, values.shape[0] - 1), xs[None, :]], 0.0)
        counts = inside.sum(axis=1)
        means = picked.sum(axis=1) / np.maximum(counts, 1)
        return np.where(counts >= LID_MIN_COLUMNS * xs.size, means, np.nan)

    def rows_up_to(height: float) -> int:
        """The first work row measured for heights up to `height` iris radii above the lid
        (with the window's pad)."""
        return max(0, int((float(np.min(lid_y)) - height * ir - y0) * sy) - pad)

    near = rows_up_to(LID_STRAND_ABOVE)
    if last - near < 8:
        return lid
    heights = np.arange(int(LID_STRAND_ABOVE * ir * sy) + 1) / sy
    strands = along(_strandness(sharp[near:last], radius), near, heights)
    along_lid, above = strands[0], float(np.mean(strands))
    along_strands = along_lid > LID_CURTAIN_STRANDS or (
        above > LID_CURTAIN_STRANDS and along_lid > -LID_STRAND_ACROSS
    )
    # No rule can say curtain (NaN, off the iris, too): the grey between strands is not needed.
    if not (along_strands or along_lid > LID_CURTAIN_ALONG):
        return lid
    first = rows_up_to(LID_HIDDEN_TO)
    across_gaps = np.ones((1, max(3, int(LID_CURTAIN_GAPS * radius)) | 1), np.uint8)
    between = cv2.dilate(sharp[first:last], across_gaps).astype(np.float32)
    iris_grey, pupil_grey = greys

    def darkness(heights: np.ndarray) -> float:
        """How far the brightest grey between strands over `heights` above the lid (the mean
        over them of the grey dilated along the rows) lies from the iris's grey to the
        pupil's; NaN where the heights are off the iris."""
        greys_between = along(between, first, heights)
        if not np.isfinite(greys_between).any():
            return float("nan")
        return (iris_grey - float(np.nanmean(greys_between))) / max(iris_grey - pupil_grey, 8.0)

    hidden = np.arange(int(LID_HIDDEN_FROM * ir * sy), int(LID_HIDDEN_TO * ir * sy) + 1) / sy
    # Lashes that hide the iris are no curtain, whichever rule says so; a curtain out of focus
    # is dark even between its strands just above the lid (not lashes with skin or iris
    # between them).
    if darkness(hidden) > LID_OPAQUE or not (along_strands or darkness(heights) > LID_SOFT_DARK):
        return lid
    first = rows_up_to(LID_CURTAIN_REACH)
    gaps = cv2.morphologyEx(sharp[first:last], cv2.MORPH_CLOSE, across_gaps)
    gaps = cv2.blur(gaps, (max(3, int(LID_BLUR_ALONG * radius)) | 1, 1)).astype(np.float32)
    step = 1.0 / sy
    means = along(gaps, first, np.arange(int(LID_CURTAIN_REACH * ir * sy) + 1) * step)
    # Up to the first height off the iris.
    means = means[: int(np.argmax(np.isnan(means))) if np.isnan(means).any() else means.size]
    if not means.size:
        return lid
    roots = int(np.argmin(means)) * step
    rows, inside = (a[0] for a in work_rows(np.array([roots]), first))
    snap = max(1, int(LID_CURTAIN_SNAP * ir * sy))
    near = rows[None, :] + np.arange(-snap, snap + 1)[:, None]
    valid = (near >= 0) & (near < gaps.shape[0])
    darkest = near[
        np.where(valid, gaps[np.clip(near, 0, gaps.shape[0] - 1), xs], np.inf).argmin(axis=0),
        np.arange(xs.size),
    ]
    if inside.sum() < 4:
        return lid.moved(-roots)
    ys = out_of_copy(darkest[inside] + first, sy) + y0
    margin = _robust_lid(fxs[inside].astype(np.float64), ys.astype(np.float64), ix, ir, 1.0, tilt=lid.tilt)
    return margin if margin is not None else lid.moved(-roots)


@functools.lru_cache(maxsize=2)
def _lid_shapes(
    tilts: tuple[float, ...] = LID_MARGIN_TILTS, bends: tuple[float, ...] = LID_MARGIN_BENDS
) -> tuple[np.ndarray, np.ndarray]:
    """Every (tilt, bend) pair of the lid-shaped curves tried, the bends outermost: two
    read-only arrays, made once (the upper lid's margin search, the lower lid's shapes)."""
    tilts, bends = (a.ravel() for a in np.meshgrid(tilts, bends))
    tilts.flags.writeable = False
    bends.flags.writeable = False
    return tilts, bends


def _shape_offsets(
    shapes: tuple[np.ndarray, np.ndarray], cols_x: np.ndarray, iris: tuple[float, float], sy: float
) -> np.ndarray:
    """How far below its height at the iris's centre column each lid shape (tilts, bends in
    1 / iris radius: :func:`_lid_shapes`) runs at the columns `cols_x`, in work rows of scale
    `sy` (shapes x columns)."""
    ix, ir = iris
    tilts, bends = shapes
    u = (cols_x - ix) / ir
    return (tilts[:, None] * u + bends[:, None] * u * u) * (ir * sy)


def _curves_above(
    lid: Lid, cols_x: np.ndarray, iris: tuple[float, float], y0: int, sy: float, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lid-shaped curves a margin is looked for along, at or above `lid` (the walk's):
    the heights (work rows at the iris's centre column, from LID_MARGIN_REACH above the lid to
    LID_MARGIN_BELOW under it), each shape's offsets from them (shapes x columns), and the
    work row each curve crosses each column at (shapes x heights x columns)."""
    ix, ir = iris
    centre = float(lid.y_at(ix))
    lo = int(into_copy(centre - LID_MARGIN_REACH * ir - y0, sy))
    hi = int(into_copy(centre + LID_MARGIN_BELOW * ir - y0, sy))
    levels = np.arange(max(0, lo), min(rows - 1, hi) + 1)
    offsets = _shape_offsets(_lid_shapes(), cols_x, iris, sy)
    at = np.rint(levels[None, :, None] + offsets[:, None, :]).astype(np.int64)
    return levels, offsets, at


def _best_curves(values: np.ndarray, at: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """For each height, the shape whose curve has the highest mean of `values` (rows from work
    row `first` on, x columns) along it, and that mean; parts of a curve off `values` count
    for nothing."""
    rows = values.shape[0]
    inside = (at >= first) & (at < first + rows)
    along = np.arange(values.shape[1])
    scores = np.where(inside, values[np.clip(at - first, 0, rows - 1), along], 0.0).sum(axis=2) / np.maximum(
        inside.sum(axis=2), 1
    )
    which = scores.argmax(axis=0)
    return which, scores[which, np.arange(at.shape[1])]


def _band_above(
    sharp: np.ndarray,
    cuts: tuple[float, float],
    radius: float,
    run: int,
    lid: Lid,
    columns: np.ndarray,
    cols_x: np.ndarray,
    fy: np.ndarray,
    sy: float,
    y0: int,
    iris: tuple[float, float],
) -> Lid | None:
    """The upper lid's margin at or above `lid` (the walk's) where lashes hang over the iris:
    the bottom of the band their roots make, or None where there is no such band.

    Lashes grow from the margin in a row and fan out towards their tips, so the share of
    lash-dark pixels (darker than `cuts`' first, on the unblurred work copy, along each row over
    LID_BAND_WINDOW) is highest along the roots and falls off down a curtain, whose tips end at
    scattered heights; a thin dark margin with bare iris below is a narrow crest of it. Lid-
    shaped curves (LID_MARGIN_TILTS x LID_MARGIN_BENDS) at every height from LID_MARGIN_REACH
    above the walk's lid to just below it score the mean share along them. Going up from the
    walk's lid, the first crest (a height no lower-scoring than any within `run` rows of it,
    away from the search's ends, at least LID_BAND_MIN_SHARE and LID_BAND_RIVAL of the densest
    crest's; or the darkest height of all, just above the walk's lid, the share falling off
    below it) is the root band: a first crest rather than the highest, since the lashes over
    the skin above a bare margin can be denser than the margin itself; and none above a curve
    that runs over skin (LID_BAND_SKIN of its pixels brighter than `cuts`' second). The margin
    is the curve at the band's bottom: the lowest height below the crest whose score is still
    LID_BAND_KEEP of the crest's.
    """
    ix, ir = iris
    dark_cut, skin_cut = cuts
    ch = sharp.shape[0]
    levels, _, at = _curves_above(lid, cols_x, iris, y0, sy, ch)
    if levels.size <= 2 * run:
        return None
    # Only the rows the curves cross are measured.
    first, last = max(0, int(at.min())), min(ch - 1, int(at.max()))
    dark = (sharp[first : last + 1] < dark_cut).astype(np.float32)
    window = (max(3, int(LID_BAND_WINDOW * radius)) | 1, 1)
    share = cv2.blur(dark, window)[:, columns]
    which, by_level = _best_curves(share, at, first)
    # Crests: no lower than any height within `run` rows, nor than what lies past the search's
    # ends. Past its top the band may go on: nothing there is beaten. Past its bottom (the
    # walk's lid) a crest must beat every height above it and have the share fall off below
    # it: a dense thin margin right at the walk's lid is the margin, not the lashes on the
    # skin above it.
    past_bottom = max(float(by_level[:-run].max()), float(by_level[-1]) / LID_BAND_KEEP)
    padded = np.concatenate([np.full(run, np.inf), by_level, np.full(run, past_bottom)])
    crests = (by_level >= np.lib.stride_tricks.sliding_window_view(padded, 2 * run + 1).max(axis=1)) & (
        by_level >= LID_BAND_MIN_SHARE
    )
    # A curve along the lid's skin lies above the margin: no crest above it is the margin's.
    # (Along the walk's lid's own shape: other shapes would find skin at the iris's sides.)
    shape = (np.asarray(lid.y_at(cols_x)) - float(lid.y_at(ix))) * sy
    own = np.rint(levels[:, None] + shape[None, :]).astype(np.int64)
    bright = cv2.blur((sharp[first : last + 1] > skin_cut).astype(np.float32), window)[:, columns]
    _, skin_by_level = _best_curves(bright, own[None], first)
    on_skin = np.flatnonzero(skin_by_level >= LID_BAND_SKIN)
    if on_skin.size:
        crests[: int(on_skin.max()) + 1] = False
    if not crests.any():
        return None
    crests &= by_level >= LID_BAND_RIVAL * float(by_level[crests].max())
    top = int(np.flatnonzero(crests).max())  # the lowest: nearest the walk's lid
    fallen = by_level[top:] < LID_BAND_KEEP * by_level[top]
    k = top + (int(np.argmax(fallen)) - 1 if fallen.any() else fallen.size - 1)
    curve = np.clip(at[which[k], k], 0, ch - 1)
    ys = fy[curve] + 0.5 / sy  # the bottom of the curve's rows
    return _robust_lid(cols_x.astype(np.float64), ys.astype(np.float64), ix, ir, 1.0, tilt=lid.tilt)


def _margin_below(
    sharp: np.ndarray,
    lid: Lid,
    columns: np.ndarray,
    cols_x: np.ndarray,
    fy: np.ndarray,
    copy: tuple[float, int],
    iris: tuple[float, float, float],
    pupil: tuple[float, float, float],
    dark_cut: float,
) -> Lid | None:
    """A lid's margin below the upper lid found (`lid`), or None: the lowest lid-shaped curve
    (LID_LOWER_TILTS x LID_MARGIN_BENDS) from LID_LINE_GAP iris radii under it to
    LID_LINE_LOWEST pupil radii above the pupil's centre that runs as a dark line across the
    iris (greys under `dark_cut`, on the unblurred work copy `sharp`, whose rows `fy` are
    the frame's at `copy`'s scale and offset), apart from the lid above it: see LID_LINE_GAP."""
    sy, y0 = copy
    ix, iy, ir = iris
    px, py, pr = pupil
    ch = sharp.shape[0]
    top = math.ceil(into_copy(float(lid.y_at(ix)) + LID_LINE_GAP * ir - y0, sy))
    bottom = math.floor(into_copy(py - LID_LINE_LOWEST * pr - y0, sy))
    levels = np.arange(max(1, top), min(ch - 2, bottom) + 1)
    if levels.size == 0:
        return None
    tilts, bends = _lid_shapes(LID_LOWER_TILTS, LID_MARGIN_BENDS)
    offsets = np.rint(_shape_offsets((tilts, bends), cols_x, (ix, ir), sy)).astype(np.int32)
    width = columns.size
    # Each curve's points as indices into (work rows x the lid's columns), shapes x levels x
    # columns: read from per-pixel masks, not measured point by point.
    flat = (levels.astype(np.int32) * width)[None, :, None] + (
        offsets * width + np.arange(width, dtype=np.int32)
    )[:, None, :]
    # Counted: in the iris (short of the limbus's own dark ring) and off the pupil, which is
    # dark too; never the first or last row, where an index out of the copy lands.
    ys = fy[:, None]
    countable = (np.hypot(cols_x - ix, ys - iy) < 0.97 * ir) & (np.hypot(cols_x - px, ys - py) > pr + 2.0)
    countable[[0, -1]] = False
    seen = sharp[:, columns]
    # The darkest of each row and its two neighbours: a line a pixel off the curve still counts.
    darkest = cv2.erode(seen, np.ones((3, 1), np.uint8))
    counted = np.take(countable.ravel(), flat, mode="clip")
    n = counted.sum(axis=2)
    dark = np.take((countable & (darkest < dark_cut)).ravel(), flat, mode="clip")
    share = dark.sum(axis=2) / np.maximum(n, 1)
    ok = (n >= LID_LINE_COLUMNS * width) & (share >= LID_LINE_DARK)
    if not ok.any():
        return None
    # Apart from the lid: the first run of LID_LINE_APART iris radii of not-dark rows under
    # the lid's row, in each column, ends above the curve.
    apart = max(3, round(LID_LINE_APART * ir * sy))
    gaps = cv2.erode(
        (seen >= dark_cut).astype(np.uint8), np.ones((apart, 1), np.uint8), anchor=(0, 0), borderValue=0
    ).astype(bool)
    lid_rows = np.rint(into_copy(np.asarray(lid.y_at(cols_x)) - y0, sy)).astype(np.int64)
    below = gaps & (np.arange(ch)[:, None] > lid_rows[None, :])
    first_gap = np.where(below.any(axis=0), below.argmax(axis=0), ch)
    dark_enough = np.nonzero(ok)
    rows = flat[dark_enough] // width
    separate = ((first_gap + apart < rows) & counted[dark_enough]).sum(axis=1) >= LID_LINE_SEPARATE * n[
        dark_enough
    ]
    apart_enough = tuple(index[separate] for index in dark_enough)
    if not apart_enough[0].size:
        return None
    # Across the eye: the strandness, costly, only along the curves left.
    strands = np.take(_strandness(sharp, ir * sy)[:, columns].ravel(), flat[apart_enough], mode="clip")
    lines = np.zeros_like(ok)
    lines[apart_enough] = (
        np.where(counted[apart_enough], strands, 0.0).sum(axis=1) <= -LID_STRAND_ACROSS * n[apart_enough]
    )
    if not lines.any():
        return None
    level = int(np.flatnonzero(lines.any(axis=0)).max())  # the lowest: nearest the pupil
    shape = int(np.argmax(np.where(lines[:, level], share[:, level], -1.0)))
    return Lid(ix, float(fy[levels[level]]) + 0.5 / sy, float(tilts[shape]), float(bends[shape]) / ir)


def _robust_lid(
    xs: np.ndarray,
    ys: np.ndarray,
    centre_x: float,
    ir: float,
    sign: float,
    typical: float = LID_BEND,
    tilt: float = 0.0,
    tilt_pull: float = 1.0,
) -> Lid | None:
    """A parabola through a lid's column points, robustly: the points far off it dropped
    and the rest refitted. Its bend is drawn towards a typical lid's (`typical`) as if
    LID_SHAPE_WEIGHT of the points said so, and its slope towards `tilt` (level, or the
    lid a margin search started from) with `tilt_pull` of that: points on one side of the
    iris only would otherwise bend it wildly over the other."""
    u = (xs - centre_x) / ir
    v = ys / ir
    powers = np.vander(u, 5).T  # u^4, u^3, u^2, u, 1
    moments = powers[2:] * v
    keep = np.ones(xs.size, bool)
    lid = None
    for _ in range(3):
        n = int(keep.sum())
        if n < 4:
            break
        # The normal equations of v = bend u^2 + slope u + level, with the pulls on the bend
        # and the slope.
        weights = keep.astype(np.float64)
        p4, p3, p2, p1, p0 = (float(t) for t in powers @ weights)
        m2, m1, m0 = (float(t) for t in moments @ weights)
        pull = LID_SHAPE_WEIGHT * n
        solved = solve_small(
            [[p4 + pull, p3, p2], [p3, p2 + tilt_pull * pull, p1], [p2, p1, p0]],
            [m2 + pull * sign * typical, m1 + tilt_pull * pull * tilt, m0],
        )
        if solved is None:
            break
        bend, slope, level = solved
        bend = min(max(bend * sign, -0.2), LID_MAX_BEND) * sign
        lid = Lid(centre_x, level * ir, slope, bend / ir)
        residual = np.abs(ir * (level + slope * u + bend * u * u) - ys)
        new_keep = residual <= max(2.0, 2.5 * median(residual[keep]))
        if (new_keep == keep).all():
            break
        keep = new_keep
    return lid


def _above_dark_band(
    work: np.ndarray,
    index: np.ndarray,
    columns: np.ndarray,
    fy: np.ndarray,
    sy: float,
    radius: float,
    run: int,
    iris_grey: float,
    contrast: float,
) -> np.ndarray:
    """The lower walk's edge in each column (frame y): the top of the not-iris run that starts
    at work row `index`, or, where that run is bright (lid skin) and a band darker than the
    iris by LID_LOWER_BAND_DARK of (iris - pupil) lies just above it (LID_LOWER_BAND_GAP, reaching less
    than LID_LOWER_BAND_REACH iris radii up), LID_LOWER_BAND_SHARE of the way up the band."""
    ch = work.shape[0]
    edge = fy[index] - 0.5 / sy
    reach = max(2, round(LID_LOWER_BAND_REACH * radius))
    gap = max(1, round(LID_LOWER_BAND_GAP * radius))
    bright = work[np.minimum(index + run // 2, ch - 1), columns] > iris_grey
    up = index[None, :] - np.arange(1, reach + 1)[:, None]  # rows above the run, going up
    dark = (work[np.maximum(up, 0), columns] < iris_grey - LID_LOWER_BAND_DARK * max(contrast, 8.0)) & (
        up >= 0
    )
    first = np.argmax(dark, axis=0)
    band = dark | (np.arange(reach)[:, None] < first[None, :])  # dark from its first row on
    end = np.argmax(~band, axis=0)  # rows above the run to the band's top
    valid = bright & dark.any(axis=0) & (first < gap) & (~band).any(axis=0)
    top = fy[np.clip(index - end, 0, ch - 1)] - 0.5 / sy
    return np.where(valid, edge + LID_LOWER_BAND_SHARE * (top - edge), edge)


def _lower_lid_agreeing(
    cols_x: np.ndarray, edge: np.ndarray, found: np.ndarray, centre_x: float, ir: float
) -> np.ndarray:
    """`found` less the lower-lid points that disagree with the lower-lid shape (LID_LOWER_TILTS
    x LID_LOWER_BENDS, at any height) the most points lie within LID_LOWER_AGREE iris radii of.
    Whether there is a lid at all is the walk's to say (enough columns found it)."""
    u = (cols_x[found] - centre_x) / ir
    v = edge[found] / ir
    tilt, bend = _lid_shapes(LID_LOWER_TILTS, LID_LOWER_BENDS)
    off = v[None, :] - tilt[:, None] * u[None, :] + bend[:, None] * (u * u)[None, :]  # shapes x points
    # For every shape and every point's height, how many points lie within LID_LOWER_AGREE of
    # it: each shape's heights sorted, all shapes laid end to end (far apart) and searched at once.
    apart = float(np.ptp(off)) + 1.0
    ordered = np.sort(off, axis=1) + apart * np.arange(off.shape[0])[:, None]
    flat = ordered.ravel()
    counts = np.searchsorted(flat, flat + LID_LOWER_AGREE, "right") - np.searchsorted(
        flat, flat - LID_LOWER_AGREE, "left"
    )
    best = int(np.argmax(counts))
    shape = best // off.shape[1]
    agree = np.abs(off[shape] - (flat[best] - apart * shape)) <= LID_LOWER_AGREE
    if agree.sum() < 4:
        return found  # too few to fit a lid to (the walk has said there is one): all are kept
    out = found.copy()
    out[np.flatnonzero(found)] = agree
    return out


# --- the pupil edge's width, the lids, reflections ---------------------------------------------


EDGE_REACH = 2.0 / 3.0  # the widest edge a profile of +-span measures: 2/3 span (its quarter-ends stay flat)


def edge_widths(g: np.ndarray, edge: PupilEdge) -> tuple[float, float] | None:
    """(sharpest, second widest) pupil-edge width over six orientations, across the edge's
    ellipse. A motion widens two neighbouring orientations (at least 0.87 of its smear each);
    one orientation wide alone is the edge there (lashes, the lid's shadow): the open-iris
    eye turned 40 degrees read 6.6 px at its top and 3.2-4.6 px elsewhere.

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
    widths = np.sort((high - low)[ok] / slope[ok])
    if widths[0] > EDGE_REACH * span:
        # Every profile's ends lie on its ramp: the widths are the window's, and their
        # spread says nothing of a motion (a defocus past any focus limit blurs every way).
        return float(widths[0]), float(widths[0])
    return float(widths[0]), float(widths[-2])


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


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_grey(g: np.ndarray, iris: tuple[float, float, float]) -> float:
    """Sensor noise around the iris, as a standard deviation in grey levels.

    Immerkaer's estimate: a 3 x 3 mask that cancels any plane and any straight edge's
    slope leaves mostly noise; its median absolute response (robust to the texture and
    the edges that remain) over the box round the pupil and the inner iris, every second
    pixel, scaled to a standard deviation (the mask's norm is 6).
    """
    h, w = g.shape
    ix, iy, ir = iris
    x0, x1 = max(0, int(ix - 0.6 * ir)), min(w, int(ix + 0.6 * ir) + 1)
    y0, y1 = max(0, int(iy - 0.6 * ir)), min(h, int(iy + 0.6 * ir) + 1)
    if x1 - x0 < 5 or y1 - y0 < 5:
        return 0.0
    response = cv2.filter2D(g[y0:y1, x0:x1].astype(np.float32), -1, _NOISE_KERNEL)[1:-1:2, 1:-1:2]
    return 1.4826 * median(np.abs(response)) / 6.0


# Glare (the illuminator's image in glasses: about 0.17 iris radii squared) is told from the
# illuminator's own image on the cornea (about 0.004 of it, a fixed size whatever the pupil)
# by size: a saturated patch of at least GLARE_IRIS_AREA iris radii squared and
# GLARE_PUPIL_AREA pupil radii squared.
GLARE_IRIS_AREA = 0.02
GLARE_PUPIL_AREA = 0.1
# Glare is the image of a lamp, compact: the patch fills this share of its convex hull (glare
# laid on the development eyes: 0.91 and more). Lid skin lit to saturation is ragged (0.4-0.8).
GLARE_SOLIDITY = 0.85


def _compact(labels: np.ndarray, stats: np.ndarray, i: int) -> bool:
    """Whether component `i` of `labels` fills GLARE_SOLIDITY of its convex hull."""
    x, y, w, h = (int(v) for v in stats[i, :4])
    mask = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
    outline, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.contourArea(cv2.convexHull(np.vstack(outline)))
    return int(stats[i, cv2.CC_STAT_AREA]) >= GLARE_SOLIDITY * hull


def glare_at_pupil_edge(
    g: np.ndarray, pupil: tuple[float, float, float], iris: tuple[float, float, float], spec_cut: float
) -> float:
    """Share of the pupil's edge (48 directions, from 0.9 to 1.25 of its radius, those in the
    frame) that glare touches: where glare lies across the edge, the edge found may be the
    glare's, and the pupil, the iris and the lids measured from it with it."""
    h, w = g.shape
    px, py, pr = pupil
    ix, iy, ir = iris
    # The box round the iris and a little past it: a patch is judged whole.
    reach = 1.2 * ir + 2.0
    x0, x1 = max(0, int(ix - reach)), min(w, int(ix + reach) + 1)
    y0, y1 = max(0, int(iy - reach)), min(h, int(iy + reach) + 1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return 0.0
    cos, sin = unit_rays(48, 0.0, 360.0)
    radii = np.linspace(0.9, 1.25, 8, dtype=np.float32) * pr
    xs = np.rint(px - x0 + cos[:, None] * radii[None, :]).astype(np.int64)
    ys = np.rint(py - y0 + sin[:, None] * radii[None, :]).astype(np.int64)
    on = (xs >= 0) & (xs < x1 - x0) & (ys >= 0) & (ys < y1 - y0)
    seen = on.any(axis=1)
    box = g[y0:y1, x0:x1]
    xs, ys = np.clip(xs, 0, x1 - x0 - 1), np.clip(ys, 0, y1 - y0 - 1)
    # Most frames: nothing saturated round the pupil's edge, and nothing more to look at.
    if not seen.any() or not ((box[ys, xs] >= spec_cut) & on).any():
        return 0.0
    patches = saturated_patches(box, spec_cut)
    if patches is None:
        return 0.0
    labels, stats, _, (bx, by) = patches
    least = max(MIN_SPOT_PX, GLARE_PUPIL_AREA * pr * pr, GLARE_IRIS_AREA * ir * ir)
    big = stats[:, cv2.CC_STAT_AREA] >= least
    big[0] = False
    for i in np.flatnonzero(big):
        big[i] = _compact(labels, stats, i)
    # The ring's samples in the labelled box (any outside it is not saturated).
    lx, ly = xs - bx, ys - by
    in_box = (lx >= 0) & (lx < labels.shape[1]) & (ly >= 0) & (ly < labels.shape[0])
    label = labels[np.clip(ly, 0, labels.shape[0] - 1), np.clip(lx, 0, labels.shape[1] - 1)]
    touched = (big[label] & in_box & on).any(axis=1)
    return float(touched[seen].mean())


def reflection_on_iris(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    spec_cut: float,
    iris_range: tuple[float, float],
    lids: tuple[Lid | None, Lid | None],
) -> float:
    """Share of the iris annulus covered by specular spots that lie on the iris itself.

    Counted at full resolution (a spot is a few pixels). A spot counts when its centre is
    inside the annulus away from both edges (at the pupil edge a spot is in the pupil,
    where it belongs; at the limbus it is on the sclera or the lid margin) and a ring just
    around it is iris-grey nearly all round, and so is a stretch beyond it towards the
    nearer lid (a reflection on the lid margin or the tear film has lid or lashes on that
    side), at least LID_GLINT_REACH inside either lid's margin (`lids`: upper, lower), and at
    least MIN_SPOT_PX pixels: the illuminator's image, not a glint off a lash.
    """
    h, w = g.shape
    px, py, pr = pupil
    ix, iy, ir = iris
    span = ir - pr
    x0, x1 = max(0, int(ix - ir)), min(w, int(ix + ir) + 1)
    y0, y1 = max(0, int(iy - ir)), min(h, int(iy + ir) + 1)
    patches = saturated_patches(g[y0:y1, x0:x1], spec_cut, MIN_SPOT_PX)
    if patches is None:
        return 0.0
    _, stats, centroids, (bx, by) = patches
    x0, y0 = x0 + bx, y0 + by
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
        # Away from the lids' margins too: the tear film along a margin glints right at it,
        # on the upper and on the lower lid alike.
        reach = LID_GLINT_REACH * ir
        if any(
            lid is not None and side * (cy - float(lid.y_at(cx))) < reach
            for lid, side in zip(lids, (1.0, -1.0), strict=True)
        ):
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
