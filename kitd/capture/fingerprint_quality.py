"""Fingerprint quality: an NFIQ 2-class score in a few milliseconds, with feedback.

Its one job: :func:`assess_fingerprint` turns one grey fingerprint frame and its
resolution into a :class:`FingerprintReport`: a score 0-100, the component metrics,
pass/fail against thresholds, and feedback codes an officer can act on, most
important first. It is a pure function (no I/O, no state) so the capture gate, the
CLI and the benchmarks all call the same thing.

NFIQ 2 (ISO/IEC 29794-4) in spirit, computed our own way and vectorised:

* The frame is resampled to a working resolution of 385 ppi (the NB-1010's), so a
  ridge period is ~7 px whatever the sensor, and cut into 12 x 12 px blocks (0.8 mm).
* Per block: mean grey, ridge amplitude (band-passed energy), the gradient structure
  tensor (orientation certainty, like NFIQ 2's OCL), the ridge period from the ratio
  of ridge energy to gradient energy (frequency plausibility, like FDA), the dark
  fraction (ridge/valley balance, like RVU), and how well the block matches its own
  copy smoothed along the ridges (ridge continuity, like LCS).
* Foreground: blocks with ridge structure or ink; their area (mm^2) and where their
  centre of mass sits on the sensor.
* Minutiae estimate: the along-ridge-smoothed ridge map is binarised, thinned
  (Zhang-Suen by lookup table) and its ridge endings and bifurcations are counted by
  crossing number, away from the foreground border.

The score multiplies a usable-area term by quality factors; its few constants were
calibrated against NFIQ 2 on FVC2002 DB1_B fingers 101-105 only (fingers 106-110 are
held out for the test; see tests/test_fingerprint_quality.py and
bench/fingerprint_quality.py). Thresholds for the checks are in
:data:`DEFAULT_THRESHOLDS`; the configuration's ``[quality.fingerprint]`` table
overrides them key by key.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from kitd.capture.quality_report import QualityReport, judge, merge_thresholds
from kitd.grey_image import to_grey8

MM_PER_INCH = 25.4
# Everything is measured at the NB-1010's resolution: one set of pixel constants
# serves every sensor, and a 500 ppi frame gets cheaper (0.59x the pixels).
WORK_PPI = 385.0
# A typical adult ridge period (mm): sizes the band-pass and smoothing filters.
NOMINAL_PERIOD_MM = 0.475
BLOCK = 12  # px at WORK_PPI, 0.79 mm: about 1.7 ridge periods
# A block whose orientation certainty is below this has no clear ridge direction.
UNCERTAIN_ORIENTATION = 0.5

FEEDBACK_CODES: tuple[str, ...] = (
    "no_finger",
    "press_harder",
    "too_wet",
    "too_dry",
    "off_center",
    "partial",
    "smudged",
    "dirty_sensor",
)

# Officer-facing messages: (Bahasa Indonesia, English).
FEEDBACK_MESSAGES: dict[str, tuple[str, str]] = {
    "no_finger": ("Letakkan jari di sensor", "Place a finger on the sensor"),
    "press_harder": ("Tekan jari lebih kuat", "Press the finger more firmly"),
    "too_wet": (
        "Jari terlalu basah, keringkan dengan tisu",
        "Finger too wet: dry it with a tissue",
    ),
    "too_dry": (
        "Jari terlalu kering, lembapkan sedikit (tiup atau usap dahi)",
        "Finger too dry: moisten it a little (breathe on it or touch the forehead)",
    ),
    "off_center": (
        "Geser jari ke tengah sensor",
        "Move the finger to the middle of the sensor",
    ),
    "partial": (
        "Letakkan seluruh ujung jari rata di sensor",
        "Lay the whole fingertip flat on the sensor",
    ),
    "smudged": (
        "Jangan gerakkan jari sampai selesai",
        "Keep the finger still until the capture is done",
    ),
    "dirty_sensor": ("Bersihkan permukaan sensor", "Clean the sensor surface"),
}

# Order in which feedback is given when several checks fail: first what makes
# every other measurement meaningless (nothing there, dirt on the glass), then
# where the finger is, then the skin and the press, and "partial" last: wet, dry
# or light presses also touch with less of the finger, and fixing the cause fixes
# the area. One instruction at a time is what an officer can pass on; the list
# keeps the rest for the technician.
FEEDBACK_PRIORITY: tuple[str, ...] = (
    "no_finger",
    "dirty_sensor",
    "off_center",
    "too_wet",
    "too_dry",
    "smudged",
    "press_harder",
    "partial",
)

# What each metric of a report means (units in brackets). All are floats.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "foreground_area_mm2": "area of the print: blocks with ridges or ink [mm^2]",
    "foreground_fraction": "that area as a fraction of the frame [0-1]",
    "centroid_offset": "print centre from frame centre, fraction of half the frame [0 centred, 1 edge]",
    "border_contact": "fraction of the frame's edge the print runs into [0-1]",
    "mean_grey": "mean grey of the print [0-255]",
    "background_grey": "grey of the empty sensor (98th percentile) [0-255]",
    "ridge_contrast": "ridge-to-valley contrast, median over the print, peak to peak [grey levels]",
    "modulation": "valley-minus-ridge grey over ridge depth below the empty sensor [~1 sharp, 0 flat]",
    "valley_fill": "how far valleys are darkened, as a fraction of ridge depth [0 clean, 1 filled]",
    "ridge_fraction": "fraction of the print darker than the local mid-grey [0-1]",
    "orientation_certainty": "mean block orientation certainty, as NFIQ 2's OCL [0-1]",
    "uncertain_orientation": "fraction of the print's blocks with orientation certainty below 0.5 [0-1]",
    "ridge_continuity": "energy kept by smoothing along the ridges, as NFIQ 2's LCS [0-1]",
    "ridge_period_mm": "median ridge period [mm]",
    "frequency_plausibility": "fraction of blocks with a ridge period of 0.3-0.8 mm [0-1]",
    "noise": "speckle where there are no ridges, median over blocks [grey levels]",
    "minutiae_estimate": "ridge endings and bifurcations found inside the print [count]",
}

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Overall gate: refuse a print scoring below this even when no single check
    # fails. The score is on NFIQ 2's scale; 39 is where, finger by finger cross-
    # validated on FVC2002 DB1_B and DB4_B, the gate passes 59 of 65 prints NFIQ 2
    # scores >= 50 and fails 40 of 43 it scores < 30 (from 38.5 to 39.5 both stay
    # at or above 90%; the five good prints a check refuses cap the first at 60).
    "min_score": 39.0,
    # Less finger than this (mm^2) and the sensor is treated as empty (no_finger).
    "min_finger_area_mm2": 12.0,
    # A firm adult press covers 150-250 mm^2; below 80 mm^2 (about 9 x 9 mm) too
    # little of the pattern is there to match (partial).
    "min_foreground_area_mm2": 80.0,
    # Centre of the print from the centre of the frame, as a fraction of the
    # half-width or half-height, whichever is worse (0 = centred, 1 = on the edge).
    # off_center above.
    "max_centroid_offset": 0.35,
    # Ridge-to-valley contrast, grey levels peak to peak (calibration prints:
    # 75-233). press_harder below, when the ridges are faint but still sharp.
    "min_ridge_contrast": 55.0,
    # Fraction of the print that is ridge (darker than the local mid-grey).
    # Calibration prints: 0.14-0.62. Wet skin closes the valleys (too_wet above);
    # dry skin touches only in dots along the ridges (too_dry below).
    "max_ridge_fraction": 0.66,
    "min_ridge_fraction": 0.20,
    # Modulation: valley-to-ridge grey difference over the ridges' depth below the
    # empty sensor (calibration prints: 0.53-0.97). A print that moved or smeared
    # loses it (smudged below); so does a wet one, told apart by its darkness.
    "min_modulation": 0.45,
    # Faint ridges (below min_ridge_contrast) mean a light press only when they
    # are still this sharp (a light press keeps 0.75-0.9); softer, they are a smear.
    "min_sharp_modulation": 0.6,
    # Mean grey of the print as a fraction of the empty sensor's: below it, a print
    # that lost its modulation is wet (ink spread), not smudged (ink moved).
    "wet_max_mean_grey_fraction": 0.42,
    # Speckle where there are no ridges: median over those blocks of the mean
    # difference from the 3 x 3 median, grey levels (calibration prints: 0; the
    # real NB-1010 frame: 1.4; synthetic clean frames: 1.1-2.5, dirty ones: 8-15;
    # Gaussian noise of sigma 16 added to a print: 6). dirty_sensor above.
    "max_noise": 5.0,
}


@dataclass
class FingerprintReport(QualityReport):
    """What :func:`assess_fingerprint` found; ``to_json()`` is the CLI/API form."""

    FEEDBACK = FEEDBACK_MESSAGES


# --- thinning and crossing-number tables -------------------------------------
# Neighbour bits: P2 (north) = 1, then clockwise NE 2, E 4, SE 8, S 16, SW 32,
# W 64, NW 128. filter2D with this kernel turns a 0/1 image into each pixel's
# 8-neighbour code in one pass; tables then answer per code.
_NEIGHBOUR_BITS = np.array([[128, 1, 2], [64, 0, 4], [32, 16, 8]], np.float32)


def _thinning_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = np.zeros(256, np.uint8)
    second = np.zeros(256, np.uint8)
    crossings = np.zeros(256, np.uint8)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]  # P2..P9
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        p2, _, p4, _, p6, _, p8, _ = p
        if 2 <= count <= 6 and transitions == 1:
            first[code] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
            second[code] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
        crossings[code] = transitions
    return first, second, crossings


_ZS_FIRST, _ZS_SECOND, _CROSSINGS = _thinning_tables()


def _thin(binary: np.ndarray, max_passes: int = 6) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 uint8 image (ridges ~4 px wide need ~3 passes)."""
    img = binary.copy()
    for _ in range(max_passes):
        changed = False
        for table in (_ZS_FIRST, _ZS_SECOND):
            code = cv2.filter2D(img, -1, _NEIGHBOUR_BITS, borderType=cv2.BORDER_CONSTANT)
            delete = cv2.LUT(code, table)
            delete &= img
            if cv2.countNonZero(delete):
                img -= delete
                changed = True
        if not changed:
            break
    return img


# --- measurement ---------------------------------------------------------------


# Sensor resolutions a fingerprint image is assessed at: outside them the number is a slip
# (a 0, a dpi in thousands), not a sensor; the config and kitctl's --ppi both refuse it.
PLAUSIBLE_PPI = (50.0, 5000.0)


def _working_image(image: np.ndarray, ppi: float) -> np.ndarray:
    g = to_grey8(image)
    scale = WORK_PPI / float(ppi)
    if abs(scale - 1.0) > 0.02:
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=interpolation)
    return np.ascontiguousarray(g)


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of every pixel (float32), for remap; frames repeat sizes."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = False
    gy.flags.writeable = False
    return gx, gy


def _keep_main_regions(mask: np.ndarray, min_blocks: int) -> np.ndarray:
    """Drop foreground specks: keep components of at least a quarter of the largest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8, cv2.CV_16U)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= max(min_blocks, 0.25 * int(areas.max()))
    return keep[labels]


def _measure(image: np.ndarray, ppi: float) -> dict[str, float]:
    g8 = _working_image(image, ppi)
    h, w = g8.shape
    bh, bw = h // BLOCK, w // BLOCK
    px_mm = WORK_PPI / MM_PER_INCH
    block_mm2 = (BLOCK / px_mm) ** 2
    metrics: dict[str, float] = {
        "foreground_area_mm2": 0.0,
        "foreground_fraction": 0.0,
        "centroid_offset": 1.0,
        "border_contact": 0.0,
        "mean_grey": float(g8.mean()) if g8.size else 0.0,
        "background_grey": 0.0,
        "ridge_contrast": 0.0,
        "modulation": 0.0,
        "valley_fill": 0.0,
        "ridge_fraction": 0.0,
        "orientation_certainty": 0.0,
        "uncertain_orientation": 1.0,
        "ridge_continuity": 0.0,
        "ridge_period_mm": 0.0,
        "frequency_plausibility": 0.0,
        "noise": 0.0,
        "minutiae_estimate": 0.0,
    }
    if bh < 2 or bw < 2:
        return metrics
    # Blocks tile the frame from its centre; the few leftover edge pixels are dropped.
    y0, x0 = (h - bh * BLOCK) // 2, (w - bw * BLOCK) // 2
    g8 = g8[y0 : y0 + bh * BLOCK, x0 : x0 + bw * BLOCK]
    H, W = g8.shape
    g = g8.astype(np.float32)
    period = NOMINAL_PERIOD_MM * px_mm

    # Empty-sensor grey: 98th percentile. Valleys of an optical or capacitive print
    # read as the empty glass, so this holds even when the finger fills the frame.
    cdf = np.cumsum(np.bincount(g8.ravel(), minlength=256))
    bg = float(np.searchsorted(cdf, 0.98 * cdf[-1]))
    metrics["background_grey"] = bg

    # Ridge band: the local mean is two box filters one period wide (a box of one
    # period has a zero at the ridge frequency), the 3x3 Gaussian drops pixel noise.
    k = int(round(period)) | 1
    local_mean = cv2.blur(cv2.blur(g, (k, k)), (k, k))
    r = cv2.GaussianBlur(g, (3, 3), 0) - local_mean
    dx = cv2.Sobel(r, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    dy = cv2.Sobel(r, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    valley = (r > 0).astype(np.float32)
    med = cv2.medianBlur(g8, 3)
    speck = cv2.absdiff(g8, med).astype(np.float32)
    # Ink: darker than halfway between the local lightest and darkest grey (over a
    # window of 1.3 periods, so it spans a ridge and a valley). Unlike the local mean
    # this keeps measuring ridge width when the valleys close up (a wet finger) and
    # stays at one half for a blurred print, whose profile turns symmetric.
    win = cv2.getStructuringElement(cv2.MORPH_RECT, (int(1.3 * period) | 1,) * 2)
    midrange = (cv2.dilate(med, win).astype(np.float32) + cv2.erode(med, win)) * 0.5
    inked = (med.astype(np.float32) < midrange).astype(np.float32)

    def bmean(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a, (bw, bh), interpolation=cv2.INTER_AREA)

    m = bmean(g)
    er = bmean(r * r)
    gxx, gyy, gxy = bmean(dx * dx), bmean(dy * dy), bmean(dx * dy)
    vfrac = bmean(valley)
    vsum = bmean(g * valley)
    ink = bmean(inked)
    nz = bmean(speck)
    amp = np.sqrt(er)
    grad = gxx + gyy + 1e-6
    ocl = np.sqrt((gxx - gyy) ** 2 + 4.0 * gxy * gxy) / grad
    # Sobel at 385 ppi sees a 7 px ridge wave at 0.85 of its true slope: the period
    # from energy ratios is corrected by that factor (checked on synthetic fingers).
    period_px = 2.0 * math.pi * np.sqrt(er / grad) * 0.85

    # Ridge direction per block from the tensor smoothed over 3 x 3 blocks; its
    # coherence tells ridges (0.5-0.95) from noise and dirt (below 0.25).
    sxx = cv2.GaussianBlur(gxx - gyy, (3, 3), 0)
    sxy = cv2.GaussianBlur(2.0 * gxy, (3, 3), 0)
    coherence = np.sqrt(sxx * sxx + sxy * sxy) / cv2.GaussianBlur(grad, (3, 3), 0)

    # Foreground: ridge structure, or ink without structure (a wet or smeared
    # press still means a finger is there).
    ridged = (amp > 6.0) & (coherence > 0.25)
    fg = _keep_main_regions(ridged | ((bg - m) > 60.0), 4)
    n_fg = int(fg.sum())
    metrics["foreground_area_mm2"] = n_fg * block_mm2
    metrics["foreground_fraction"] = n_fg / fg.size
    if n_fg == 0:
        return metrics
    ys, xs = np.nonzero(fg)
    # Offsets in frame coordinates (the tiling is centred, so blocks are symmetric).
    cy = (y0 + (ys.mean() + 0.5) * BLOCK) / h
    cx = (x0 + (xs.mean() + 0.5) * BLOCK) / w
    metrics["centroid_offset"] = float(2.0 * max(abs(cx - 0.5), abs(cy - 0.5)))
    # How much of the frame's edge the print runs into: the finger went on beyond
    # the sensor there, so part of it is missing.
    ring = np.concatenate([fg[0], fg[-1], fg[1:-1, 0], fg[1:-1, -1]])
    metrics["border_contact"] = float(ring.mean())

    amp_fg = amp[fg]
    mean_fg = float(m[fg].mean())
    contrast = float(np.median(amp_fg)) * 2.0 * math.sqrt(2.0)
    v_n = float(vfrac[fg].sum())
    valley_grey = float(vsum[fg].sum() / v_n) if v_n > 0 else mean_fg
    r_n = float(n_fg - v_n)
    ridge_grey = float((m[fg].sum() - vsum[fg].sum()) / r_n) if r_n > 0 else mean_fg
    depth = max(bg - ridge_grey, 1.0)
    metrics["mean_grey"] = mean_fg
    metrics["ridge_contrast"] = contrast
    metrics["modulation"] = float(np.clip((valley_grey - ridge_grey) / depth, 0.0, 2.0))
    metrics["valley_fill"] = float(np.clip((bg - valley_grey) / depth, 0.0, 1.0))
    metrics["ridge_fraction"] = float(ink[fg].mean())
    metrics["orientation_certainty"] = float(ocl[fg].mean())
    # Blocks whose ridges have no clear direction at their own scale: noise, blotches,
    # scars, dots of dry skin. A core or a delta bends the ridges over several blocks
    # but each block of it stays directed (unlike the 3 x 3-block coherence above).
    metrics["uncertain_orientation"] = float(np.mean(ocl[fg] < UNCERTAIN_ORIENTATION))
    period_mm = period_px[fg] / px_mm
    metrics["ridge_period_mm"] = float(np.median(period_mm))
    # Adult ridge periods lie within about 0.3-0.8 mm; outside, the block is noise
    # or a blur, not a ridge.
    metrics["frequency_plausibility"] = float(np.mean((period_mm > 0.3) & (period_mm < 0.8)))
    # Dirt shows off the print: speckle (grey levels) of the blocks with neither
    # ridge structure nor ink, median over them (the print's ragged edge and a few
    # blocks of stray skin do not move it). Blotches of ink inside the print are
    # skin (wet or smeared spots), not glass: on a window the finger fills (the
    # NB-1010's 17 x 12 mm) they were all that was left to judge, and a sharp print
    # read as a dirty sensor. With the print everywhere, dirt cannot be told from
    # skin texture (the NB-1010's ridges are grainy): 0.
    clear = ~ridged & ~fg
    metrics["noise"] = float(np.median(nz[clear])) if clear.sum() >= 4 else 0.0

    # r smoothed along the ridge direction (5 taps over 1.2 periods): ridges stay,
    # pores, dots and noise go.
    theta = 0.5 * np.arctan2(sxy, sxx) + 0.5 * math.pi  # ridge direction
    step = 0.3 * period
    tx = cv2.resize((np.cos(theta) * step).astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)
    ty = cv2.resize((np.sin(theta) * step).astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)
    gx, gy = _pixel_grid(H, W)
    rs = r.copy()
    for s in (1.0, -1.0, 2.0, -2.0):
        rs += cv2.remap(r, gx + s * tx, gy + s * ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rs *= 0.2
    resid = bmean((r - rs) ** 2)
    continuity = 1.0 - resid / (er + 1e-6)
    metrics["ridge_continuity"] = float(np.clip(continuity[fg], 0.0, 1.0).mean())

    # Minutiae: thin the smoothed ridge map and count crossing numbers 1 and 3 at
    # least a block inside the foreground and the frame (the cut ends of ridges at
    # the border of the print are not minutiae).
    fg_px = cv2.resize(fg.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)
    inner = fg_px.copy()
    edge = BLOCK // 2
    inner[:edge] = 0
    inner[-edge:] = 0
    inner[:, :edge] = 0
    inner[:, -edge:] = 0
    inner = cv2.erode(inner, np.ones((BLOCK + 1, BLOCK + 1), np.uint8), borderValue=0)
    ridges = ((rs < 0) & (fg_px > 0)).astype(np.uint8)
    skeleton = _thin(ridges)
    code = cv2.filter2D(skeleton, -1, _NEIGHBOUR_BITS, borderType=cv2.BORDER_CONSTANT)
    crossings = cv2.LUT(code, _CROSSINGS)
    on = (skeleton > 0) & (inner > 0)
    metrics["minutiae_estimate"] = float(np.count_nonzero(on & ((crossings == 1) | (crossings == 3))))
    return metrics


# --- score ---------------------------------------------------------------------


# The score predicts NFIQ 2's 0-100 from two features that do not depend on a
# sensor's grey levels: how much finger was captured (mm^2, so any resolution) and
# how much of it has no clear ridge direction. Fitted by least squares,
# NFIQ 2 ~ degradation_factor * (intercept + sum of weight * feature), to NFIQ 2
# (nbis-py 0.1.3) on all 160 prints of FVC2002 DB1_B (optical) and DB4_B (synthetic,
# another noise and contact), and evaluated finger by finger: leave one finger out,
# fit on the other 19, score its 8 prints. Reproduce the fit and the evaluation with
# ``python -m groundtruth.fingerprint_agreement``. More metrics (ridge continuity,
# minutiae, orientation flow, period spread, ink) each won a few hundredths on one
# set and lost them on the other; two carry across sensors.
SCORE_MODEL: dict[str, float] = {
    "intercept": -42.5122,
    "captured_area": 1.0168,
    "uncertain_orientation": -53.9199,
}
# Area stops adding much once a whole fingertip is there: the captured-area feature
# is AREA_SATURATION_MM2 * (1 - exp(-area / AREA_SATURATION_MM2)), 0.63 of it at
# 150 mm^2, so a wetter press whose ridges spread over a few more edge blocks does
# not score higher than the clean one.
AREA_SATURATION_MM2 = 150.0


def score_features(m: Mapping[str, float]) -> dict[str, float]:
    """The features :data:`SCORE_MODEL` weighs, from a report's metrics."""
    area = m["foreground_area_mm2"]
    return {
        "captured_area": AREA_SATURATION_MM2 * (1.0 - math.exp(-area / AREA_SATURATION_MM2)),
        "uncertain_orientation": m["uncertain_orientation"],
    }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def degradation_factor(m: Mapping[str, float]) -> float:
    """Knees close to 1 over the range of real, usable prints, falling fast beyond it.

    They carry the degradations the two metrics of the score do not see, so that a
    print smeared, faint, on a dirty window, too wet or dry, or off the sensor's
    middle scores lower than its clean self. Each is monotonic in its metric.
    """
    f_contrast = 1.0 - math.exp(-m["ridge_contrast"] / 20.0)
    f_sharp = _sigmoid((m["modulation"] - 0.35) / 0.05)
    f_clean = _sigmoid((6.5 - m["noise"]) / 1.0)
    f_balance = _sigmoid((m["ridge_fraction"] - 0.10) / 0.03) * _sigmoid((0.70 - m["ridge_fraction"]) / 0.04)
    f_place = _sigmoid((0.6 - m["centroid_offset"]) / 0.05)
    return f_contrast * f_sharp * f_clean * f_balance * f_place


def score_from_metrics(m: Mapping[str, float], model: Mapping[str, float] = SCORE_MODEL) -> float:
    """0-100 on NFIQ 2's scale: ``model``'s linear prediction times the knees."""
    if m["foreground_area_mm2"] <= 0.0:
        return 0.0
    features = score_features(m)
    linear = model["intercept"] + sum(w * features[key] for key, w in model.items() if key != "intercept")
    return float(round(min(max(degradation_factor(m) * linear, 0.0), 100.0), 1))


# --- checks and feedback ---------------------------------------------------------


def _checks(m: Mapping[str, float], t: Mapping[str, float]) -> list[str]:
    """The feedback codes whose checks fail, in :data:`FEEDBACK_PRIORITY` order."""
    if m["foreground_area_mm2"] < t["min_finger_area_mm2"]:
        return ["no_finger"]  # nothing else is worth saying about an empty sensor
    failed = set()
    if m["noise"] > t["max_noise"]:
        failed.add("dirty_sensor")
    if m["centroid_offset"] > t["max_centroid_offset"]:
        failed.add("off_center")
    if m["foreground_area_mm2"] < t["min_foreground_area_mm2"]:
        failed.add("partial")
    dark = m["mean_grey"] < t["wet_max_mean_grey_fraction"] * max(m["background_grey"], 1.0)
    blurred = m["modulation"] < t["min_modulation"]
    if m["ridge_fraction"] > t["max_ridge_fraction"] or (blurred and dark):
        failed.add("too_wet")
    if m["ridge_fraction"] < t["min_ridge_fraction"]:
        failed.add("too_dry")
    faint = m["ridge_contrast"] < t["min_ridge_contrast"]
    soft = m["modulation"] < t["min_sharp_modulation"]
    if not dark and (blurred or (faint and soft)):
        failed.add("smudged")
    # Faint ridges that are still sharp: the finger barely touched. (Faint and
    # soft is a smear, reported as such.)
    if faint and not soft:
        failed.add("press_harder")
    return [code for code in FEEDBACK_PRIORITY if code in failed]


def _closest_to_failing(m: Mapping[str, float], t: Mapping[str, float]) -> str:
    """The feedback code whose metric is nearest its threshold (as a ratio)."""
    eps = 1e-6
    margins = {
        "partial": m["foreground_area_mm2"] / max(t["min_foreground_area_mm2"], eps),
        "press_harder": m["ridge_contrast"] / max(t["min_ridge_contrast"], eps),
        "smudged": m["modulation"] / max(t["min_modulation"], eps),
        "too_dry": m["ridge_fraction"] / max(t["min_ridge_fraction"], eps),
        "too_wet": t["max_ridge_fraction"] / max(m["ridge_fraction"], eps),
        "off_center": t["max_centroid_offset"] / max(m["centroid_offset"], eps),
        "dirty_sensor": t["max_noise"] / max(m["noise"], eps),
    }
    return min(margins, key=lambda code: margins[code])


def fingerprint_metrics(image: np.ndarray, ppi: float) -> dict[str, float]:
    """The metrics of :data:`METRIC_DESCRIPTIONS` for one frame, rounded as reported."""
    if ppi <= 0 or not math.isfinite(ppi):
        raise ValueError(f"ppi must be a positive number, not {ppi!r}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"expected a 2-D grey image, got shape {arr.shape}")
    return {k: round(float(v), 4) for k, v in _measure(arr, float(ppi)).items()}


def judge_fingerprint(
    metrics: dict[str, float], score: float, thresholds: Mapping[str, float] | None = None
) -> FingerprintReport:
    """The report for measured ``metrics`` and their ``score`` against the checks."""
    t = merge_thresholds(DEFAULT_THRESHOLDS, thresholds, "fingerprint")
    return judge(FingerprintReport, score, metrics, _checks(metrics, t), t, _closest_to_failing)


def assess_fingerprint(
    image: np.ndarray, ppi: float, thresholds: Mapping[str, float] | None = None
) -> FingerprintReport:
    """Score one fingerprint frame and say what, if anything, the officer should fix.

    ``image`` is a 2-D grey (or 3-channel colour) array, bright background and dark
    ridges; ``ppi`` its resolution. ``thresholds`` overrides keys of
    :data:`DEFAULT_THRESHOLDS` (unknown keys are an error, so a typo in the config
    does not silently keep a default).
    """
    metrics = fingerprint_metrics(image, ppi)
    return judge_fingerprint(metrics, score_from_metrics(metrics), thresholds)
