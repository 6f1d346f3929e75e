"""Iris quality on every live frame: ISO/IEC 29794-6 metrics in a few milliseconds, with feedback.

Its one job: :func:`assess_iris` turns one grey near-infrared frame (any size) into an
:class:`IrisReport`: a score 0-100, the metrics (with the located pupil and limbus circles),
pass/fail against thresholds, and feedback codes an officer can act on, most important first.
It is a pure function (no I/O, no state) so the capture gate, the preview overlay, the CLI
and the benchmarks all call the same thing.

How, within one frame's time (open-iris needs 200-400 ms; a live gate gets ~5 ms):

* **Pupil, coarse**: on a copy shrunk to ~160 px wide, dark blobs at a few thresholds
  between the darkest grey and the median; the blob that is round, filled and darker than
  its surround wins. A pupil cut by the upper lid keeps its width, so the radius comes from
  the blob's width.
* **Pupil, fine**: 48 rays from the coarse centre at full resolution; on each, the strongest
  dark-to-bright step near the coarse circle; a circle fitted to those points, outliers
  (lashes, lid, a reflection at the edge) dropped and refitted; then each ray's step again,
  only near that circle (above a dark upper iris the lid margin steps up more than the
  pupil's edge), and the circle and an axis-aligned ellipse fitted to them. The ellipse
  (the pupil's foreshortening) tells the gaze.
* **Limbus**: rays from the pupil centre over the left, right and lower sectors (the upper
  one is usually under the lid); the radius where the summed iris-to-sclera steps peak, then
  each ray's own step near it, and a robust circle fit.
* **Iris annulus**: sampled between the two circles (Daugman's rubber sheet, 120 angles x 20
  radii). Samples much brighter than the iris are lid skin or reflections, much darker ones
  lashes or lid margin: what is left is the usable iris. Its grey levels give contrast,
  grey-scale use and exposure. In the upper and lower sectors, where the occlusion starts,
  moved in to the step up from iris to lid at full resolution (a lid's shadowed margin is
  iris-grey) and smoothed over neighbouring rays, gives the eyelid boundaries; a lid down
  over the pupil is found up the pupil's middle column.
* **Sharpness and motion**: the width of the pupil edge (its rise over its steepest slope),
  per edge orientation, across the pupil's ellipse. Defocus widens every orientation
  alike; motion widens the edges across the motion and leaves those along it sharp, so the
  narrowest orientation measures focus and the spread between orientations measures motion.
* **Reflections**: bright spots (well above the sclera) whose surroundings are iris, not
  pupil, lid or sclera, and with iris between them and the nearer lid (the tear film
  glints along the lid margin).

Constants were set on synthetic eyes (hil.synthetic_eye) with seeds 1-5 only; seeds 11-15
and the real eye in ../shared/fixtures/open-iris are held out for the tests (see
tests/test_iris_quality.py). Thresholds are in :data:`DEFAULT_THRESHOLDS`; the
configuration's ``[quality.iris]`` table overrides them key by key.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from kitd.capture.quality_report import QualityReport, judge, merge_thresholds

FEEDBACK_CODES: tuple[str, ...] = (
    "no_eye",
    "open_wider",
    "move_closer",
    "move_back",
    "off_center",
    "look_at_camera",
    "hold_still",
    "out_of_focus",
    "too_dark",
    "too_bright",
    "reflection_on_iris",
)

# Officer-facing messages: (Bahasa Indonesia, English). Said to the officer, who says it
# on (or steadies the camera): short, one thing to do.
FEEDBACK_MESSAGES: dict[str, tuple[str, str]] = {
    "no_eye": ("Arahkan kamera ke mata", "Point the camera at the eye"),
    "open_wider": ("Minta buka mata lebih lebar", "Ask for the eye to open wider"),
    "move_closer": ("Dekatkan kamera ke mata", "Move the camera closer to the eye"),
    "move_back": ("Jauhkan kamera dari mata", "Move the camera back from the eye"),
    "off_center": ("Geser kamera agar mata di tengah", "Move the camera so the eye is in the middle"),
    "look_at_camera": ("Minta lihat lurus ke kamera", "Ask them to look straight at the camera"),
    "hold_still": ("Tahan kamera dan kepala tetap diam", "Hold the camera and the head still"),
    "out_of_focus": ("Gambar buram, atur jarak kamera", "Blurred: adjust the camera's distance"),
    "too_dark": ("Terlalu gelap, dekatkan lampu kamera", "Too dark: bring the camera's light closer"),
    "too_bright": ("Terlalu terang, kurangi cahaya", "Too bright: reduce the light"),
    "reflection_on_iris": (
        "Pantulan cahaya di iris, ubah sudut kamera",
        "Reflection on the iris: change the camera's angle",
    ),
}

# Order in which feedback is given when several checks fail: first what makes every
# other measurement meaningless (no eye, exposure, motion: a moving eye smears every edge,
# so its shape and size are not to be trusted), then where the eye looks (a turned eye is
# measured foreshortened, smaller than it is, and slides under the lids), then the opening
# (the size and place of an eye the lids mostly hide are read off a sliver of it: an eye
# nearly closed was told to come closer), then where it is (size, place), then focus, and
# a reflection last: it is fixed by the angle once everything else is right.
FEEDBACK_PRIORITY: tuple[str, ...] = (
    "no_eye",
    "too_dark",
    "too_bright",
    "hold_still",
    "look_at_camera",
    "open_wider",
    "move_back",
    "move_closer",
    "off_center",
    "out_of_focus",
    "reflection_on_iris",
)

# What each metric of a report means (units in brackets). All are floats; the circles are
# left out when no eye was found.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "eye_found": "1 when a pupil and a limbus were located, else 0",
    "pupil_x": "pupil centre, x [px]",
    "pupil_y": "pupil centre, y [px]",
    "pupil_r": "pupil radius [px]",
    "iris_x": "limbus (iris outer boundary) centre, x [px]",
    "iris_y": "limbus centre, y [px]",
    "iris_r": "limbus radius [px]",
    "iris_diameter": "limbus diameter [px]",
    "pupil_iris_ratio": "pupil radius over iris radius (pupil dilation) [0-1]",
    "concentricity": "1 minus the distance between the centres over the iris radius [1 concentric]",
    "pupil_circularity": "1 minus the RMS distance of pupil edge points from their circle over its radius",
    "margin_left_right": "smaller gap, left or right, between the iris and the frame edge [iris radii]",
    "margin_top_bottom": "smaller gap, above or below, between the iris and the frame edge [iris radii]",
    "upper_eyelid_y": "upper eyelid over the iris centre, y [px] (the iris top when the lid is above it)",
    "lower_eyelid_y": "lower eyelid under the iris centre, y [px] (the iris bottom when it is below)",
    "eyelid_opening": "visible height of the iris along its vertical axis over its diameter [0-1]",
    "usable_iris_area": "share of the iris in the frame not hidden by lids, lashes or reflections [0-1]",
    "iris_sclera_contrast": "(sclera - iris) / (sclera + iris - 2 pupil), median greys [0-1]",
    "iris_pupil_contrast": "(iris - pupil) / (iris + pupil) median greys [0-1]",
    "grey_scale_use": "entropy of the usable iris's grey levels [bits]",
    "iris_grey": "median grey of the usable iris [0-255]",
    "sclera_grey": "median grey just outside the limbus, left and right [0-255]",
    "saturated_fraction": "share of the iris annulus at 250 or more [0-1]",
    "edge_width_px": "width of the pupil edge in its sharpest orientation (defocus) [px]",
    "motion_blur_px": "widest minus sharpest pupil-edge orientation (blur along a motion) [px]",
    "sharpness": "2 px over the edge width, at most 1 [0-1]",
    "gaze_deg": "how far the eye looks away: arccos of the pupil ellipse's aspect (0: pupil partly hidden)",
    "reflection_on_iris": "share of the iris annulus covered by specular reflections [0-1]",
}

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Overall gate: refuse a frame scoring below this even when no single check fails.
    "min_score": 50.0,
    # Enrollment programs ask an iris diameter of at least 210 px (move_closer below).
    "min_iris_diameter": 210.0,
    # The largest iris a 640 x 480 frame holds with the margins below: 350 + 2 x 0.6 x 175
    # = 560 < 640 across, 350 + 2 x 0.2 x 175 = 420 < 480 down (move_back above).
    "max_iris_diameter": 350.0,
    # ISO/IEC 29794-6 margins: 0.6 iris radii left and right, 0.2 above and below
    # (off_center below).
    "min_margin_left_right": 0.6,
    "min_margin_top_bottom": 0.2,
    # ISO/IEC 29794-6 and enrollment practice: at least 70 % of the iris usable
    # (open_wider below; lids are what usually hides it).
    "min_usable_iris_area": 0.70,
    # Gaze: an iris foreshortened to cos(25 deg) = 0.91 of its height (look_at_camera above).
    "max_gaze_deg": 25.0,
    # Pupil edge width in its sharpest orientation: a Gaussian blur of sigma s widens a
    # step to about 2.5 s; 4 px is sigma 1.6 (out_of_focus above). Synthetic eyes in focus:
    # 1.6-2.2 px.
    "max_edge_width_px": 5.0,
    # Widest minus sharpest orientation: a motion of L px adds about L (hold_still above).
    "max_motion_blur_px": 5.0,
    # Exposure from the usable iris's median grey: NIR irises sit at 90-130 when lit well.
    # too_dark below, too_bright above; and too_bright when this share of the iris annulus
    # is saturated.
    "min_iris_grey": 60.0,
    "max_iris_grey": 175.0,
    "max_saturated_fraction": 0.10,
    # Specular reflections on the iris (not the pupil, where they belong): more than this
    # share of the annulus (reflection_on_iris above). The simulated illuminator's spot
    # (~7 px across) on a 230 px iris covers ~0.15 %; a third of it is enough to say so.
    "max_reflection_on_iris": 0.0005,
    # Below this pupil-iris contrast there is no pupil to trust: no_eye.
    "min_iris_pupil_contrast": 0.12,
}


@dataclass
class IrisReport(QualityReport):
    """What :func:`assess_iris` found; ``to_json()`` is the CLI/API form."""

    FEEDBACK = FEEDBACK_MESSAGES

    def circles(self) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """((pupil x, y, r), (iris x, y, r)) in frame pixels, or None when no eye was found."""
        m = self.metrics
        if "pupil_x" not in m:
            return None
        return (m["pupil_x"], m["pupil_y"], m["pupil_r"]), (m["iris_x"], m["iris_y"], m["iris_r"])


# --- helpers -------------------------------------------------------------------------------

COARSE_WIDTH = 160  # px: the shrunk copy the pupil is first looked for in
PUPIL_RAYS = 48
LIMBUS_STEP_DEG = 4.0
ANNULUS_ANGLES = 120
ANNULUS_RADII = 20
MIN_SPOT_PX = 12  # smallest specular spot taken for the illuminator's reflection (the simulated one: ~40)


def _grey(image: np.ndarray) -> np.ndarray:
    g = np.asarray(image)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_BGR2GRAY if g.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if g.dtype == np.uint16:
        g = (g >> 8).astype(np.uint8)
    elif g.dtype != np.uint8:
        if np.issubdtype(g.dtype, np.floating) and g.size and float(np.nanmax(g)) <= 1.0:
            g = g * 255.0
        g = np.clip(np.nan_to_num(g), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(g)


def _percentile(hist: np.ndarray, q: float) -> float:
    cdf = np.cumsum(hist)
    return float(np.searchsorted(cdf, q * cdf[-1]))


@functools.lru_cache(maxsize=16)
def _unit_rays(count: int, start_deg: float, stop_deg: float) -> tuple[np.ndarray, np.ndarray]:
    angles = np.radians(np.linspace(start_deg, stop_deg, count, endpoint=False))
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    cos.flags.writeable = False
    sin.flags.writeable = False
    return cos, sin


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` at float coordinates (same shape); edges replicate."""
    return cv2.remap(
        image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)


def _median(values: np.ndarray) -> float:
    """The (lower) median: np.median's checks cost more than the partition on these small arrays."""
    flat = np.ravel(values)
    if flat.size == 0:
        return float("nan")
    k = (flat.size - 1) // 2
    return float(np.partition(flat, k)[k])


def _fit_circle(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through points, by its 3 x 3 normal equations."""
    mx, my = float(xs.mean()), float(ys.mean())
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


def _robust_circle(
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
        limit = max(tolerance, 2.5 * _median(residual[keep]))
        new_keep = residual <= limit
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    if circle is None or keep.sum() < 5:
        return None
    return circle, keep


def _ellipse(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float] | None:
    """Centre and semi-axes (x0, y0, semi_x, semi_y) of the axis-aligned ellipse through points.

    Fitted as A x^2 + C y^2 + D x + E y = 1 on centred coordinates; None when the points do
    not make an ellipse.
    """
    if len(xs) < 6:
        return None
    mx, my = float(xs.mean()), float(ys.mean())
    u, v = xs - mx, ys - my
    scale = float(max(np.abs(u).max(), np.abs(v).max(), 1e-6))
    u, v = u / scale, v / scale
    design = np.stack([u * u, v * v, u, v], axis=1)
    (a, c, d, e), *_ = np.linalg.lstsq(design, np.ones_like(u), rcond=None)
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


def _robust_ellipse(
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
        new_keep = residual <= max(tolerance, 2.5 * _median(residual[keep]))
        if np.array_equal(new_keep, keep) or new_keep.sum() < 6:
            break
        keep = new_keep
    return (fit, keep) if fit is not None else None


def _aspect(ellipse: tuple[float, float, float, float] | None) -> float:
    """Minor over major semi-axis (1 for a circle, or when there is no ellipse)."""
    if ellipse is None:
        return 1.0
    return min(ellipse[2], ellipse[3]) / max(ellipse[2], ellipse[3])


def _ray_to_ellipse(
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


# --- the pupil --------------------------------------------------------------------------------


def _circle_below(r: float, height: float) -> float:
    """Area of the part of a circle of radius `r` within `height` of its bottom."""
    d = r - height  # from the centre up to the chord (negative: the chord is above it)
    return r * r * math.acos(max(-1.0, min(1.0, d / r))) - d * math.sqrt(max(r * r - d * d, 0.0))


def _coarse_pupil(
    small: np.ndarray, frame_width: int, frame_height: int
) -> tuple[float, float, float] | None:
    """(x, y, r) in frame pixels of the best dark round blob, found on a shrunk copy."""
    sy, sx = small.shape
    fx, fy = frame_width / sx, frame_height / sy
    hist = np.bincount(small.ravel(), minlength=256)
    lo, med = _percentile(hist, 0.005), _percentile(hist, 0.5)
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
            fill = area / _circle_below(r, min(float(bh), 2.0 * r))
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


def _edge_profiles(
    g: np.ndarray, cx: float, cy: float, r0: float, r1: float, step: float, cos: np.ndarray, sin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grey profiles along rays (rows) from (cx, cy), radii r0..r1 every `step` px."""
    radii = np.arange(r0, r1, step, dtype=np.float32)
    xs = cx + cos[:, None] * radii[None, :]
    ys = cy + sin[:, None] * radii[None, :]
    return _sample(g, xs, ys), radii


def _step_strength(profiles: np.ndarray, half: int) -> np.ndarray:
    """Per sample: mean of the next `half` samples minus the mean of the previous `half`."""
    c = np.cumsum(np.pad(profiles, ((0, 0), (1, 0))), axis=1)
    n = profiles.shape[1]
    out = np.zeros_like(profiles)
    i = np.arange(half, n - half)
    out[:, i] = ((c[:, i + half + 1] - c[:, i + 1]) - (c[:, i] - c[:, i - half])) / half
    return out


@dataclass(frozen=True)
class PupilEdge:
    """The pupil's edge as the rays found it."""

    circle: tuple[float, float, float]  # x, y, r
    rms: float  # of the circle's inliers' residuals
    ellipse: tuple[float, float, float, float]  # x, y, semi-axis x, semi-axis y (the circle if none)
    xs: np.ndarray  # the edge points on the circle or the ellipse (a turned pupil's ends)
    ys: np.ndarray
    seen: float  # share of the upward rays that found the edge (the rest are under the lid)


def _fine_pupil(g: np.ndarray, coarse: tuple[float, float, float]) -> PupilEdge | None:
    """The pupil's edge, refined at full resolution from the coarse circle."""
    cx, cy, r = coarse
    cos, sin = _unit_rays(PUPIL_RAYS, 0.0, 360.0)
    profiles, radii = _edge_profiles(g, cx, cy, 0.45 * r, 1.6 * r + 4, 0.5, cos, sin)
    # Grey inside the pupil and of the iris around it, from the coarse circle: anything far
    # brighter than the iris (a reflection in the pupil, lid skin) is flattened to the
    # pupil's grey, so that the only big dark-to-bright step left is the pupil's edge.
    inner = _median(profiles[:, radii < 0.7 * r])
    ring = profiles[:, (radii > 1.2 * r) & (radii < 1.5 * r)]
    outer = _median(ring) if ring.size else float(profiles.max())
    profiles = np.where(profiles > outer + 0.5 * max(outer - inner, 8.0), inner, profiles)
    # The step is judged over 4 px either side as well, so that an edge blurred by defocus or
    # motion still counts (it is what the sharpness measures need to see); where the lid hides
    # the edge, nothing steps up but noise.
    strength, wide = _step_strength(profiles, 3), _step_strength(profiles, 8)
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
    fit = _robust_circle(xs[near], ys[near], tolerance=max(1.5, 0.04 * r))
    if fit is None:
        return None
    xs, ys, near = edge_points(_ray_to_ellipse(cx, cy, cos, sin, (*fit[0], fit[0][2])), 0.2 * fit[0][2])
    fit = _robust_circle(xs[near], ys[near], tolerance=max(1.5, 0.04 * r))
    if fit is None:
        return None
    fx, fy, fr = fit[0]
    tolerance = max(1.5, 0.04 * fr)
    residual = np.hypot(xs - fx, ys - fy) - fr
    inliers = near & (np.abs(residual) <= max(tolerance, 2.5 * _median(np.abs(residual[near]))))
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2)))
    # The ellipse (gaze, edge widths) is fitted to every ray with a clear step near the first
    # circle: a turned pupil's ends lie off the fitted circle, and circle inliers would cut them off.
    ellipse = _robust_ellipse(xs[near], ys[near], tolerance)
    if ellipse is None or _aspect(ellipse[0]) < 0.4:
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


def _limbus(
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
    profiles, radii = _edge_profiles(half, px, py, r0, r1, 1.0, cos, sin)
    profiles = np.minimum(profiles, bright)
    profiles = cv2.blur(profiles, (3, 1))
    strength = np.maximum(_step_strength(profiles, 3), 0.0)
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
    keep = found > 0.25 * _median(found[found > 0]) if (found > 0).any() else found > 0
    if keep.sum() < 8:
        return None
    rr = radii[best]
    ex = (px + cos * rr).astype(np.float64)[keep]
    ey = (py + sin * rr).astype(np.float64)[keep]
    fit = _robust_circle(ex, ey, tolerance=max(1.5, 0.03 * peak))
    if fit is None:
        return None
    cx, cy, r = fit[0]
    return cx * factor, cy * factor, r * factor


# --- measurement ------------------------------------------------------------------------------


def _edge_widths(g: np.ndarray, edge: PupilEdge) -> tuple[float, float] | None:
    """(sharpest, widest) pupil-edge width over six orientations, across the edge's ellipse.

    Sampled along rays from the ellipse's centre through the edge points, each centred on
    the ellipse: a turned pupil's edge lies off any circle, and profiles averaged off their
    edge would be widened by the misalignment, not by blur.
    """
    x0, y0, sx, sy = edge.ellipse
    angles = np.arctan2(edge.ys - y0, edge.xs - x0)
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    r = _ray_to_ellipse(x0, y0, cos, sin, edge.ellipse)
    span = min(12.0, 0.6 * min(sx, sy))
    step = 0.5
    offsets = np.arange(-span, span + step / 2, step, dtype=np.float32)
    xs = x0 + cos[:, None] * (r[:, None] + offsets[None, :])
    ys = y0 + sin[:, None] * (r[:, None] + offsets[None, :])
    profiles = _sample(g, xs, ys)
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


def _annulus(
    g: np.ndarray,
    pupil: tuple[float, float, float],
    iris: tuple[float, float, float],
    radii: int = ANNULUS_RADII,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rubber-sheet samples between the pupil and limbus circles: grey, x, y, u (0 pupil .. 1 limbus).

    ANNULUS_ANGLES rays (or those of them in `rows`), `radii` samples along each.
    """
    cos, sin = _unit_rays(ANNULUS_ANGLES, 0.0, 360.0)
    if rows is not None:
        cos, sin = cos[rows], sin[rows]
    u = (np.arange(radii, dtype=np.float32) + 0.5) / radii
    px, py, pr = pupil
    ix, iy, ir = iris
    inner_x, inner_y = px + pr * cos, py + pr * sin
    outer_x, outer_y = ix + ir * cos, iy + ir * sin
    xs = inner_x[:, None] + (outer_x - inner_x)[:, None] * u[None, :]
    ys = inner_y[:, None] + (outer_y - inner_y)[:, None] * u[None, :]
    return _sample(g, xs, ys), xs, ys, np.broadcast_to(u, xs.shape)


def _lid_edges(
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
    grey, _, _, u = _annulus(g, pupil, iris, ANNULUS_RADII * fine, rows)
    step = _step_strength(grey, fine)
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


def _lid_over_pupil(g: np.ndarray, pupil: tuple[float, float, float], skin_cut: float) -> float | None:
    """The y where an upper lid over the pupil ends, down the pupil's middle (5 columns
    averaged): from lid skin above the pupil, the first of 6 px in a row no brighter than
    `skin_cut` (a lash is thinner; the lid's dark margin runs on into the pupil). None when
    no skin is seen above the pupil. Scanning down, a reflection in the pupil's visible
    part, below the lid, is never reached."""
    px, py, pr = pupil
    ys = np.arange(py - pr - 4.0, py + 0.9 * pr, 1.0, dtype=np.float32)
    columns, rows = np.meshgrid(px + np.arange(-2.0, 2.5, 1.0, dtype=np.float32), ys)
    dark = _sample(g, columns, rows).mean(axis=1) <= skin_cut
    run = 6
    if dark[0] or ys.size < run:
        return None
    starts = np.lib.stride_tricks.sliding_window_view(dark, run).all(axis=1)
    return float(ys[starts.argmax()]) if starts.any() else None


def _reflection_on_iris(
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
    cos, sin = _unit_rays(16, 0.0, 360.0)
    low, high = iris_range
    covered = 0
    for i in range(1, count):
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
        ring = _sample(g, cx + radius * cos, cy + radius * sin)
        if np.mean((ring > low) & (ring < high)) < 0.75:
            continue
        # Towards the nearer lid (up above the pupil, down below it), iris for a while
        # beyond the ring: a glint in the tear film sits a few pixels from the lid margin,
        # closer than the annulus's coarse lid line can tell, and has lid or lashes there.
        toward_lid = -1.0 if cy < py else 1.0
        reach = cy + toward_lid * (0.5 * bh + np.arange(2.0, 2.0 + max(6.0, 0.12 * span)))
        columns, rows = np.meshgrid(cx + np.array([-1.0, 0.0, 1.0]), reach)
        stretch = _sample(g, columns, rows)
        if np.mean((stretch > low) & (stretch < high)) >= 0.75:
            covered += area
    return covered / (math.pi * (ir * ir - pr * pr))


def _entropy(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    hist = np.bincount(np.clip(values, 0, 255).astype(np.int64), minlength=256).astype(np.float64)
    p = hist[hist > 0] / values.size
    return float(-(p * np.log2(p)).sum())


def _measure(g: np.ndarray) -> dict[str, float]:
    h, w = g.shape
    metrics: dict[str, float] = {"eye_found": 0.0}
    factor = 2.0 if min(h, w) >= 240 else 1.0
    half = (
        cv2.resize(g, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_AREA)
        if factor > 1
        else g
    )
    hh, hw = half.shape
    shrink = min(1.0, COARSE_WIDTH / max(hw, hh))  # 640 x 480 -> 160 x 120
    small = cv2.resize(
        half, (max(8, round(hw * shrink)), max(8, round(hh * shrink))), interpolation=cv2.INTER_AREA
    )
    # Bright level: reflections and lid skin above it are flattened while the limbus is sought.
    bright = max(_percentile(np.bincount(small.ravel(), minlength=256), 0.98), 40.0)
    coarse = _coarse_pupil(small, w, h)
    if coarse is None:
        return metrics
    fine = _fine_pupil(g, coarse)
    if fine is None:
        return metrics
    pupil, pupil_rms = fine.circle, fine.rms
    px, py, pr = pupil
    if pr < 3:
        return metrics
    iris = _limbus(half, factor, pupil, bright)
    if iris is None:
        return metrics
    ix, iy, ir = iris
    if not (ir > 1.2 * pr and math.hypot(ix - px, iy - py) < 0.5 * ir):
        return metrics

    grey, xs, ys, u = _annulus(g, pupil, iris)
    inside = (xs >= 0) & (ys >= 0) & (xs <= w - 1) & (ys <= h - 1)
    angles = np.linspace(0.0, 360.0, ANNULUS_ANGLES, endpoint=False)
    cos, sin = _unit_rays(PUPIL_RAYS, 0.0, 360.0)
    # The pupil's grey: the darkest tenth of three rings inside it (a lid come down past the
    # pupil's centre covers most of them with skin).
    rings = np.array([0.3, 0.5, 0.7], np.float32)[:, None] * pr
    inside_pupil = _sample(g, px + rings * cos[None, :], py + rings * sin[None, :]).ravel()
    pupil_grey = float(np.partition(inside_pupil, len(inside_pupil) // 10)[len(inside_pupil) // 10])
    # Sclera: just outside the limbus, left and right.
    side = np.radians(np.array([-20.0, -10.0, 0.0, 10.0, 20.0, 160.0, 170.0, 180.0, 190.0, 200.0]))
    sclera_x = ix + np.cos(side)[:, None] * ir * np.array([1.12, 1.2, 1.28])[None, :]
    sclera_y = iy + np.sin(side)[:, None] * ir * np.array([1.12, 1.2, 1.28])[None, :]
    on_frame = (sclera_x >= 0) & (sclera_x <= w - 1)
    sclera_samples = _sample(g, sclera_x, sclera_y)[on_frame]
    sclera_grey = _median(sclera_samples) if sclera_samples.size else float(grey.max())
    # The iris's own grey: the middle of what lies between pupil and sclera. (The annulus's
    # median would be lid skin when the lid hides most of it.)
    gap = max(sclera_grey - pupil_grey, 8.0)
    middle = inside & (grey > pupil_grey + 0.2 * gap) & (grey < sclera_grey - 0.2 * gap)
    iris_ref = _median(grey[middle]) if middle.any() else pupil_grey + 0.5 * gap

    # Classify the annulus: far brighter than the iris is lid skin or a reflection, far
    # darker is lashes or the lid margin; the rest is usable iris.
    bright_cut = iris_ref + 0.5 * max(sclera_grey - iris_ref, 12.0)
    dark_cut = iris_ref - 0.5 * max(iris_ref - pupil_grey, 12.0)
    usable = inside & (grey < bright_cut) & (grey > dark_cut)
    # Specular reflections: far above the sclera's grey (the illuminator's image saturates).
    spec_cut = sclera_grey + 0.4 * max(255.0 - sclera_grey, 0.0)
    # Eyelids: on rays above and below the pupil, once the iris gives way to lid (3 samples
    # in a row not iris, from a tenth of the way out), the rest of the ray is lid too, even
    # where lashes over skin happen to be iris-grey. A reflection is not lid: a spot on the
    # upper iris would otherwise close the ray at the spot, and hide itself.
    occluded = ~usable & inside & (grey < spec_cut)
    run = occluded[:, 2:-2] & occluded[:, 3:-1] & occluded[:, 4:]
    has_run = run.any(axis=1)
    first = np.where(has_run, run.argmax(axis=1) + 2, ANNULUS_RADII)
    lids = ((angles > 195.0) & (angles < 345.0)) | ((angles > 15.0) & (angles < 165.0))
    first = np.where(lids, first, ANNULUS_RADII).astype(np.float64)
    first = _lid_edges(g, pupil, iris, first, 0.35 * max(sclera_grey - iris_ref, 12.0))
    # A lid is a smooth curve: a ray that missed it (a glint, a lash across the margin) takes
    # its neighbours' edge, the median of seven rays (21 degrees).
    around = np.lib.stride_tricks.sliding_window_view(np.concatenate([first[-3:], first, first[:3]]), 7)
    first = np.where(lids, np.partition(around, 3, axis=1)[:, 3], first)
    beyond = np.arange(ANNULUS_RADII)[None, :] + 0.5 > first[:, None]
    usable &= ~beyond
    weight = (pr + u * (ir - pr)) * inside  # samples farther out stand for more area
    usable_area = float((weight * usable).sum() / max(weight.sum(), 1e-6))
    iris_values = grey[usable]
    iris_grey = _median(iris_values) if iris_values.size else iris_ref

    # Eyelid boundaries: where the lid begins on the rays within 30 degrees of straight up
    # and straight down (the limbus where no lid is seen).
    reach = np.minimum(first, ANNULUS_RADII) / ANNULUS_RADII
    angle_sin = np.sin(np.radians(angles))
    boundary_y = (py + pr * angle_sin) * (1.0 - reach) + (iy + ir * angle_sin) * reach
    up = (angles > 240.0) & (angles < 300.0)
    upper_y = _median(boundary_y[up])
    lower_y = _median(boundary_y[(angles > 60.0) & (angles < 120.0)])
    if _median(first[up]) <= 2.5:
        # The lid is down over the pupil's top: it ends where, down the pupil's middle
        # column, lid skin gives way to the pupil's dark.
        over_pupil = _lid_over_pupil(g, pupil, pupil_grey + 0.5 * (bright_cut - pupil_grey))
        upper_y = upper_y if over_pupil is None else over_pupil

    reflection = _reflection_on_iris(g, pupil, iris, spec_cut, (dark_cut, bright_cut), first)

    # Saturation where it costs texture: over the iris annulus (sclera and skin may clip).
    saturated = float((weight * (grey >= 250)).sum() / max(weight.sum(), 1e-6))

    # With the top of the pupil's edge under the lid, its ellipse says more about the lid
    # than about the gaze: 0, and open_wider speaks instead.
    aspect = _aspect(fine.ellipse)
    gaze = math.degrees(math.acos(min(1.0, max(0.0, aspect)))) if fine.seen >= 0.9 else 0.0
    widths = _edge_widths(g, fine)
    edge_width, widest = widths if widths else (float(2.0 * pr), float(2.0 * pr))

    metrics.update(
        {
            "eye_found": 1.0,
            "pupil_x": px,
            "pupil_y": py,
            "pupil_r": pr,
            "iris_x": ix,
            "iris_y": iy,
            "iris_r": ir,
            "iris_diameter": 2.0 * ir,
            "pupil_iris_ratio": pr / ir,
            "concentricity": max(0.0, 1.0 - math.hypot(ix - px, iy - py) / ir),
            "pupil_circularity": max(0.0, 1.0 - pupil_rms / pr),
            "margin_left_right": min(ix - ir, w - 1 - ix - ir) / ir,
            "margin_top_bottom": min(iy - ir, h - 1 - iy - ir) / ir,
            "upper_eyelid_y": upper_y,
            "lower_eyelid_y": lower_y,
            "eyelid_opening": float(np.clip((lower_y - upper_y) / (2.0 * ir), 0.0, 1.0)),
            "usable_iris_area": usable_area,
            "iris_sclera_contrast": float(
                np.clip((sclera_grey - iris_grey) / max(sclera_grey + iris_grey - 2 * pupil_grey, 1.0), 0, 1)
            ),
            "iris_pupil_contrast": float(
                np.clip((iris_grey - pupil_grey) / max(iris_grey + pupil_grey, 1.0), 0, 1)
            ),
            "grey_scale_use": _entropy(iris_values),
            "iris_grey": iris_grey,
            "sclera_grey": sclera_grey,
            "saturated_fraction": saturated,
            "edge_width_px": edge_width,
            "motion_blur_px": max(0.0, widest - edge_width),
            "sharpness": min(1.0, 2.0 / max(edge_width, 1e-6)),
            # A turned eye foreshortens pupil and limbus alike. The pupil's edge is sharp and
            # seen all round; the limbus is soft and its top and bottom are under the lids,
            # which made its ellipse too round by 0.04-0.17 on turned calibration eyes. So the
            # pupil's ellipse tells the gaze (a real pupil is itself oval by a few per cent:
            # 0.95 reads as 18 degrees, under the default limit).
            "gaze_deg": gaze,
            "reflection_on_iris": reflection,
        }
    )
    return metrics


# --- score ---------------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def _score(m: Mapping[str, float]) -> float:
    """0-100 from the metrics: the usable iris times knee factors, one per quality.

    Each factor is close to 1 over the range that synthetic eyes of the calibration seeds
    (1-5) span when nothing is wrong, and falls steeply past its knee, which sits a little
    beyond the default threshold of the same quality; each is monotonic in its metric, so
    the score falls along every degradation. The score ranks frames (best of N) and backs
    the gate's min_score; the checks say what is wrong.
    """
    if not m.get("eye_found"):
        return 0.0
    d = m["iris_diameter"]
    f_size = _sigmoid((d - 185.0) / 6.0) * _sigmoid((380.0 - d) / 6.0)
    usable = m["usable_iris_area"]
    f_usable = usable * _sigmoid((usable - 0.6) / 0.05)
    f_focus = _sigmoid((5.5 - m["edge_width_px"]) / 0.6)
    f_motion = _sigmoid((6.5 - m["motion_blur_px"]) / 0.9)
    f_gaze = _sigmoid((30.0 - m["gaze_deg"]) / 3.0)
    grey = m["iris_grey"]
    f_exposure = (
        _sigmoid((grey - 50.0) / 6.0)
        * _sigmoid((185.0 - grey) / 6.0)
        * _sigmoid((0.3 - m["saturated_fraction"]) / 0.04)
    )
    f_margin = _sigmoid((m["margin_left_right"] - 0.45) / 0.06) * _sigmoid(
        (m["margin_top_bottom"] - 0.08) / 0.04
    )
    f_contrast = _sigmoid((m["iris_sclera_contrast"] - 0.08) / 0.03) * _sigmoid(
        (m["iris_pupil_contrast"] - 0.15) / 0.03
    )
    # A reflection on the iris halves the score, whatever its size once it is there: where
    # it sits matters (it hides texture the matcher needs), not a few pixels more or less.
    f_reflection = 1.0 - 0.5 * min(1.0, m["reflection_on_iris"] / 0.0004)
    q = f_size * f_usable * f_focus * f_motion * f_gaze * f_exposure * f_margin * f_contrast * f_reflection
    return float(round(100.0 * q, 1))


# --- checks and feedback ---------------------------------------------------------------------------


def _checks(m: Mapping[str, float], t: Mapping[str, float]) -> list[str]:
    """The feedback codes whose checks fail, in :data:`FEEDBACK_PRIORITY` order."""
    if not m.get("eye_found"):
        return ["no_eye"]  # nothing else is worth saying about a frame without an eye
    failed = set()
    if m["iris_grey"] < t["min_iris_grey"]:
        failed.add("too_dark")
    if m["iris_grey"] > t["max_iris_grey"] or m["saturated_fraction"] > t["max_saturated_fraction"]:
        failed.add("too_bright")
    if m["iris_diameter"] > t["max_iris_diameter"]:
        failed.add("move_back")
    if m["iris_diameter"] < t["min_iris_diameter"]:
        failed.add("move_closer")
    if (
        m["margin_left_right"] < t["min_margin_left_right"]
        or m["margin_top_bottom"] < t["min_margin_top_bottom"]
    ):
        failed.add("off_center")
    if m["gaze_deg"] > t["max_gaze_deg"]:
        failed.add("look_at_camera")
    if m["usable_iris_area"] < t["min_usable_iris_area"]:
        failed.add("open_wider")
    if m["motion_blur_px"] > t["max_motion_blur_px"]:
        failed.add("hold_still")
    if m["edge_width_px"] > t["max_edge_width_px"]:
        failed.add("out_of_focus")
    if m["reflection_on_iris"] > t["max_reflection_on_iris"]:
        failed.add("reflection_on_iris")
    return [code for code in FEEDBACK_PRIORITY if code in failed]


def _closest_to_failing(m: Mapping[str, float], t: Mapping[str, float]) -> str:
    """The feedback code whose metric is nearest its threshold (as a ratio)."""
    eps = 1e-6
    margins = {
        "move_closer": m["iris_diameter"] / max(t["min_iris_diameter"], eps),
        "move_back": t["max_iris_diameter"] / max(m["iris_diameter"], eps),
        "off_center": min(
            m["margin_left_right"] / max(t["min_margin_left_right"], eps),
            m["margin_top_bottom"] / max(t["min_margin_top_bottom"], eps),
        ),
        "look_at_camera": t["max_gaze_deg"] / max(m["gaze_deg"], eps),
        "open_wider": m["usable_iris_area"] / max(t["min_usable_iris_area"], eps),
        "hold_still": t["max_motion_blur_px"] / max(m["motion_blur_px"], eps),
        "out_of_focus": t["max_edge_width_px"] / max(m["edge_width_px"], eps),
        "too_dark": m["iris_grey"] / max(t["min_iris_grey"], eps),
        "too_bright": t["max_iris_grey"] / max(m["iris_grey"], eps),
    }
    return min(margins, key=lambda code: margins[code])


def merged_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with `thresholds` over them; ValueError naming any unknown key."""
    return merge_thresholds(DEFAULT_THRESHOLDS, thresholds, "iris")


def _pupil_inside(metrics: Mapping[str, float], shape: tuple[int, ...]) -> bool:
    """Whether the located pupil lies wholly inside the frame.

    A pupil cut by the frame's edge cannot be judged, and a dark blob at the border (hair,
    a shadow, a printed mark in a corner) is the commonest thing taken for one when no eye
    is in view; an eye only towards the edge, pupil still inside, is told `off_center`.
    """
    height, width = shape[0], shape[1]
    x, y, r = metrics["pupil_x"], metrics["pupil_y"], metrics["pupil_r"]
    return r <= x <= width - r and r <= y <= height - r


def assess_iris(image: np.ndarray, thresholds: Mapping[str, float] | None = None) -> IrisReport:
    """Score one near-infrared eye frame and say what, if anything, the officer should change.

    ``image`` is a 2-D grey (or 3-channel colour) array of any size; lengths in the report
    are pixels of that frame. ``thresholds`` overrides keys of :data:`DEFAULT_THRESHOLDS`
    (unknown keys are an error, so a typo in the config does not silently keep a default).
    """
    t = merged_thresholds(thresholds)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0 or min(arr.shape[:2]) < 16:
        raise ValueError(f"expected a grey image of at least 16 x 16 pixels, got shape {arr.shape}")
    raw = _measure(_grey(arr))
    metrics = {k: round(float(v), 4) for k, v in raw.items() if math.isfinite(v)}
    if (
        not metrics.get("eye_found")
        or metrics["iris_pupil_contrast"] < t["min_iris_pupil_contrast"]
        or not _pupil_inside(metrics, arr.shape[:2])
    ):
        # Circles found on something that is not an eye (skin texture, a shadow) are not
        # reported: the officer is told there is no eye, the overlay draws nothing.
        metrics = {"eye_found": 0.0}
    score = _score(metrics) if metrics.get("eye_found") else 0.0
    return judge(IrisReport, score, metrics, _checks(metrics, t), t, _closest_to_failing)
