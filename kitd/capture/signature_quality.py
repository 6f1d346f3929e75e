"""Signature quality: is this recording a usable signature, and if not, why.

Its one job: :func:`assess_signature` turns one recorded :class:`Signature` (the
time series ``kitctl capture signature`` writes: device units, the pad's maxima and
its 100 points per mm) into a :class:`SignatureReport`: a score 0-100, metrics,
pass/fail against thresholds, and feedback codes an officer can act on, most
important first. A pure function (no I/O, no state), vectorised with numpy, so the
capture session can assess the signature so far on every packet batch.

What the kit accepts as a signature (the population: elderly, disabled and mentally
ill applicants, signing at home, often slowly and with a trembling hand):

* Slowness, tremor and many pen lifts are the norm, not defects: speed is reported
  but never judged, and tremor (a few tenths of a mm) does not make a stroke
  "curved" nor a line "not straight".
* What is judged is whether there is enough writing to be a signature: enough pen-down
  time, enough points for that time, ink large enough to see, a shape that is more
  than dots and straight lines, and a pen whose pressure is read.
* A mark made only of dots and straight lines with at most two strokes (a cross, a
  plus, a tick of two strokes, a dash) is not a signature: it is the mark of someone
  who cannot sign, and for them the visit takes a thumbprint in its place (issue 10).
  It fails with ``dot_or_line``, whose message says exactly that. Three or more
  straight strokes (block initials such as "HT") are writing and are not refused
  for it.

Thresholds are in :data:`DEFAULT_THRESHOLDS`; the configuration's
``[quality.signature]`` table overrides them key by key. The metrics and the score
depend on the recording only, never on the thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kitd.capture.quality_report import QualityReport, judge, merge_thresholds
from kitd.capture.signature import Signature

FEEDBACK_CODES: tuple[str, ...] = (
    "empty",
    "too_few_points",
    "too_short",
    "dot_or_line",
    "too_small",
    "no_pressure",
)

# Officer-facing messages: (Bahasa Indonesia, English).
FEEDBACK_MESSAGES: dict[str, tuple[str, str]] = {
    "empty": (
        "Belum ada tanda tangan: minta pemohon menandatangani di pad",
        "No signature yet: ask the applicant to sign on the pad",
    ),
    "too_few_points": (
        "Titik tanda tangan terlalu sedikit (data dari pad hilang): ulangi; bila berulang, periksa kabel pad",
        "Too few points recorded (the pad lost data): sign again; if it repeats, check the pad's cable",
    ),
    "too_short": (
        "Tanda tangan terlalu singkat: minta pemohon menulis tanda tangan lengkap",
        "Signature too brief: ask the applicant for the whole signature",
    ),
    "dot_or_line": (
        "Hanya titik atau garis: minta tanda tangan; bila pemohon tidak bisa menandatangani, "
        "ambil cap jempol sebagai gantinya",
        "Only dots or straight lines: ask for a signature; if the applicant cannot sign, "
        "take a thumbprint instead",
    ),
    "too_small": (
        "Tanda tangan terlalu kecil: minta pemohon menulis lebih besar",
        "Signature too small: ask the applicant to write larger",
    ),
    "no_pressure": (
        "Tekanan pena tidak terbaca: tekan pena ke pad saat menulis; bila tetap, periksa pena",
        "No pen pressure read: press the pen onto the pad while writing; if it stays so, check the pen",
    ),
}

# Order in which feedback is given when several checks fail. A dot or a line comes
# first: it is also short, small and poor in points, and telling someone who cannot
# sign to "write the whole signature" or "write larger" is the wrong instruction.
# A signature cut short is also small and has fewer points: the cause is named.
# Too few points for the time the pen was down means the pad lost data (a fault of
# the equipment, not the applicant), so it precedes size; pressure is last, since a
# pen that reads no pressure still leaves a usable image.
FEEDBACK_PRIORITY: tuple[str, ...] = (
    "empty",
    "dot_or_line",
    "too_short",
    "too_few_points",
    "too_small",
    "no_pressure",
)

# What each metric of a report means (units in brackets). All are floats.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "packet_count": "pen packets in the recording, hover included [count]",
    "point_count": "ink points: packets with the tip down [count]",
    "stroke_count": "strokes: runs of tip-down packets [count]",
    "point_rate_hz": "ink points per second of pen-down time (an ISDV4 pad sends ~130) [1/s]",
    "duration_s": "from the first packet to the last [s]",
    "pen_down_s": "time the tip was down: each stroke from its first packet to the one lifting it [s]",
    "ink_width_mm": "width of the ink's bounding box [mm]",
    "ink_height_mm": "height of the ink's bounding box [mm]",
    "ink_size_mm": "the longer side of the ink's bounding box [mm]",
    "ink_breadth_mm": "the ink's extent across its best-fit line: the height of the writing [mm]",
    "path_length_mm": "length of the pen's path while the tip was down [mm]",
    "ink_spread_mm": "RMS distance of the ink points from their best-fit straight line [mm]",
    "ink_line_ratio": "ink_spread_mm over the ink's extent along that line [0 a line, ~0.3 a round blot]",
    "curved_strokes": "strokes that are neither a dot nor a straight line (see STRAIGHT_*, DOT_MM) [count]",
    "curved_share": "share of the path length that lies in curved strokes [0-1]",
    "pressure_mean": "mean pressure of the ink points, as a share of the pad's maximum [0-1]",
    "pressure_range": "95th minus 5th percentile of the ink points' pressure, share of maximum [0-1]",
    "pressure_variation": "standard deviation over mean of the ink points' pressure [ratio]",
    "speed_mean_mm_s": "path length over pen-down time [mm/s]",
    "speed_median_mm_s": "median pen speed over 50 ms windows within strokes [mm/s]",
    "speed_p95_mm_s": "95th percentile of that speed [mm/s]",
    "speed_variation": "standard deviation over mean of that speed [ratio]",
}

# What a stroke is, for curved_strokes (fixed, so that metrics do not depend on the
# thresholds). A hand-drawn straight stroke bows by a mm or so over a few cm and a
# trembling hand adds ~0.2 mm RMS: a stroke is straight when its points lie within
# 1 mm RMS of a line AND that is under 5 % of its length (so a small letter "o"
# 2.5 mm across, 0.9 mm RMS but 35 % of its length, is still round). A dot: shorter
# than 2 mm along its line.
STRAIGHT_SPREAD_MM = 1.0
STRAIGHT_RATIO = 0.05
DOT_MM = 2.0
# Speed is measured over windows of this length: the pad's packets arrive in bursts
# stamped with one host time, so speeds between single packets would be 0 or double.
SPEED_WINDOW_MS = 50.0

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Overall gate: refuse a signature scoring below this even when no single check
    # fails. Each score factor is 0.5 at its check's default limit, so 25 is a
    # signature at the edge of two limits at once (say small and brief).
    "min_score": 25.0,
    # Ink points (tip down). A signature of 0.4 s at the pad's ~130 points/s has 52;
    # fewer than 40 means the pad lost data or sent too slowly.
    "min_points": 40.0,
    # Points per second of pen-down time: an ISDV4 pad sends ~130; below 50 more
    # than half the packets are missing and the shape between them is guessed.
    "min_point_rate_hz": 50.0,
    # Pen-down time. A quick name takes 1-4 s, hurried initials 0.5-1 s, a tap or a
    # flick 0.05-0.3 s: under 0.4 s is too short whatever its size.
    "min_pen_down_s": 0.4,
    # Ink under small_ink_mm across written in under min_pen_down_small_s is the
    # first letter or two of a signature, not a signature (too_short: "the whole
    # signature"), however carefully drawn. A small ink that took longer is cramped
    # writing (too_small below 10 mm: "write larger"). The simulated pad's writers
    # (steady, shaky, halting) take 0.4-1.2 s for their first 10 mm, so 1.5 s.
    "small_ink_mm": 15.0,
    "min_pen_down_small_s": 1.5,
    # The ink's longer side. Only a signature small every way is too small: one cut
    # short keeps its first letters' height (that is too_short), one flattened keeps
    # its length (that is a line), and a small, flat hand (micrographia, common in
    # Parkinson's disease) still writes 20-40 mm long. Under 10 mm across, a
    # signature is a knot once scaled onto the card.
    "min_ink_size_mm": 10.0,
    # The whole ink is a dot when its longer side is under this.
    "max_dot_mm": 2.0,
    # The whole ink is a straight line when its points lie within this RMS distance
    # of one line AND that is under max_line_ratio of its length. Lines drawn by the
    # pen model (hil.hand_drawn: 20-50 mm, straight or bowed 2 mm, steady or with a
    # 0.35 mm tremor) have 0.07-0.7 mm and 0.001-0.015; the simulated pad's
    # signatures 2.3-3 mm and 0.04-0.08. A signature written small keeps its ratio,
    # so the ratio keeps it from being called a line.
    "max_line_spread_mm": 1.0,
    "max_line_ratio": 0.025,
    # A mark of at most this many strokes, none of them curved (a cross, a plus, a
    # dash), is the mark of someone who cannot sign: dot_or_line.
    "mark_max_strokes": 2.0,
    # Pressure range (5th to 95th percentile, share of the pad's maximum). Writing
    # varies it by 30-70 %; below 2 % (20 of the ISDV4's 1023 levels) the pen is
    # reporting a constant: its pressure sensor is not working or not there.
    "min_pressure_range": 0.02,
}

# Scales of the score's factors: the default limits (each factor is 0.5 there). Kept
# apart from the thresholds so a configured threshold changes the verdict, not the score.
_SCORE_SCALES: dict[str, float] = {
    "points": 40.0,
    "point_rate_hz": 50.0,
    "pen_down_s": 0.4,
    "size_mm": 10.0,
    "line_spread_mm": 1.0,
    "line_ratio": 0.025,
    "curved_share": 0.25,
    "pressure_range": 0.02,
    "mark_max_strokes": 2.0,
}


@dataclass
class SignatureReport(QualityReport):
    """What :func:`assess_signature` found; ``to_json()`` is the CLI/API form."""

    FEEDBACK = FEEDBACK_MESSAGES


# --- measurement ---------------------------------------------------------------------


def _empty_metrics(packets: int, duration_s: float) -> dict[str, float]:
    metrics = dict.fromkeys(METRIC_DESCRIPTIONS, 0.0)
    metrics["packet_count"] = float(packets)
    metrics["duration_s"] = duration_s
    return metrics


def _arrays(signature: Signature) -> tuple[np.ndarray, ...]:
    """t (ms), x, y, pressure (float64) and tip (bool) of every packet, in one pass."""
    rows = [(p.t_ms, p.x, p.y, p.pressure, p.tip) for p in signature.points]
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4] > 0.5


def _line_fit(
    x: np.ndarray, y: np.ndarray, offsets: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group of consecutive points: RMS distance from the best-fit line, extent along it and across it.

    The 2 x 2 covariance of each group (by reduceat sums) gives the principal axis; the
    minor eigenvalue is the mean squared distance from the line through the centroid.
    """
    n = counts.astype(np.float64)
    mx = np.add.reduceat(x, offsets) / n
    my = np.add.reduceat(y, offsets) / n
    dx = x - np.repeat(mx, counts)
    dy = y - np.repeat(my, counts)
    sxx = np.add.reduceat(dx * dx, offsets) / n
    syy = np.add.reduceat(dy * dy, offsets) / n
    sxy = np.add.reduceat(dx * dy, offsets) / n
    half_trace = 0.5 * (sxx + syy)
    root = np.sqrt(0.25 * (sxx - syy) ** 2 + sxy * sxy)
    spread = np.sqrt(np.maximum(half_trace - root, 0.0))
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    cos, sin = np.repeat(np.cos(theta), counts), np.repeat(np.sin(theta), counts)
    along = dx * cos + dy * sin
    across = dy * cos - dx * sin
    extent = np.maximum.reduceat(along, offsets) - np.minimum.reduceat(along, offsets)
    breadth = np.maximum.reduceat(across, offsets) - np.minimum.reduceat(across, offsets)
    return spread, extent, breadth


def _quantiles(values: np.ndarray, shares: tuple[float, ...]) -> list[float]:
    """np.percentile's linear quantiles from one sort (np.percentile costs ~0.1 ms a call here)."""
    ordered = np.sort(values)
    out = []
    for share in shares:
        position = share * (ordered.size - 1)
        low = int(position)
        high = min(low + 1, ordered.size - 1)
        out.append(float(ordered[low] + (ordered[high] - ordered[low]) * (position - low)))
    return out


def _window_speeds(t: np.ndarray, walked: np.ndarray, stroke_of: np.ndarray) -> np.ndarray:
    """Pen speed (mm/s) from each ink point to the first point SPEED_WINDOW_MS later in its stroke."""
    # One sorted key across strokes: stroke number in the high part, time in the low.
    key = stroke_of * 1e9 + (t - t.min())
    later = np.searchsorted(key, key + SPEED_WINDOW_MS)
    valid = later < key.size
    start = np.flatnonzero(valid)
    end = later[valid]
    same = stroke_of[end] == stroke_of[start]
    start, end = start[same], end[same]
    return (walked[end] - walked[start]) / ((t[end] - t[start]) / 1000.0)


def _measure(signature: Signature) -> dict[str, float]:
    points = signature.points
    duration_s = points[-1].t_ms / 1000.0 if points else 0.0
    t, x, y, pressure, tip = _arrays(signature)
    if not tip.any():
        return _empty_metrics(len(points), duration_s)
    per_mm = float(signature.pad.points_per_mm)
    max_pressure = float(signature.pad.max_pressure)

    # Strokes: runs of tip-down packets, [start, stop) in packet indices.
    edges = np.diff(np.concatenate(([0], tip.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    # A stroke lasts until the packet that lifts it (or its own last packet at the end).
    ends = np.where(stops < t.size, stops, stops - 1)
    pen_down_s = float((t[ends] - t[starts]).sum()) / 1000.0

    ink = np.flatnonzero(tip)
    counts = stops - starts
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    stroke_of = np.repeat(np.arange(counts.size, dtype=np.float64), counts)
    ix, iy, it = x[ink] / per_mm, y[ink] / per_mm, t[ink]

    # Path: steps between consecutive ink points of the same stroke (a pen lift is no ink).
    step = np.zeros(ink.size)
    step[1:] = np.hypot(np.diff(ix), np.diff(iy))
    step[offsets] = 0.0
    walked = np.cumsum(step)
    path_mm = float(walked[-1])
    stroke_path = np.add.reduceat(step, offsets)

    spread_s, extent_s, _ = _line_fit(ix, iy, offsets, counts)
    straight = (spread_s < STRAIGHT_SPREAD_MM) & (spread_s < STRAIGHT_RATIO * extent_s)
    curved = ~straight & (extent_s >= DOT_MM)
    [ink_spread], [ink_extent], [ink_breadth] = _line_fit(ix, iy, np.array([0]), np.array([ink.size]))

    width = float(ix.max() - ix.min())
    height = float(iy.max() - iy.min())
    share = pressure[ink] / max_pressure if max_pressure > 0 else np.zeros(ink.size)
    low, high = _quantiles(share, (0.05, 0.95))
    mean_share = float(share.mean())

    speeds = _window_speeds(it, walked, stroke_of)
    if speeds.size:
        speed_median, speed_p95 = _quantiles(speeds, (0.5, 0.95))
        speed_mean_w = float(speeds.mean())
        speed_variation = float(speeds.std() / speed_mean_w) if speed_mean_w > 0 else 0.0
    else:
        speed_median = speed_p95 = speed_variation = 0.0

    return {
        "packet_count": float(t.size),
        "point_count": float(ink.size),
        "stroke_count": float(counts.size),
        "point_rate_hz": ink.size / pen_down_s if pen_down_s > 0 else 0.0,
        "duration_s": duration_s,
        "pen_down_s": pen_down_s,
        "ink_width_mm": width,
        "ink_height_mm": height,
        "ink_size_mm": max(width, height),
        "ink_breadth_mm": float(ink_breadth),
        "path_length_mm": path_mm,
        "ink_spread_mm": float(ink_spread),
        "ink_line_ratio": float(ink_spread / ink_extent) if ink_extent > 0 else 0.0,
        "curved_strokes": float(curved.sum()),
        "curved_share": float(stroke_path[curved].sum() / path_mm) if path_mm > 0 else 0.0,
        "pressure_mean": mean_share,
        "pressure_range": float(high - low),
        "pressure_variation": float(share.std() / mean_share) if mean_share > 0 else 0.0,
        "speed_mean_mm_s": path_mm / pen_down_s if pen_down_s > 0 else 0.0,
        "speed_median_mm_s": float(speed_median),
        "speed_p95_mm_s": float(speed_p95),
        "speed_variation": speed_variation,
    }


# --- score ------------------------------------------------------------------------------


def _knee(ratio: float) -> float:
    """0 at 0, 0.5 at 1 (a check's limit), 0.9 at 1.5, 0.996 at 2: flat over usable values.

    Steep, so that a metric comfortably past its limit no longer moves the score: a
    long, flat signature is not worth less than a compact one.
    """
    return 1.0 - 0.5 ** (max(ratio, 0.0) ** 3)


def _is_mark(m: Mapping[str, float], max_strokes: float) -> bool:
    """Only dots and straight lines, in few strokes: a cross, a plus, a dash."""
    return m["curved_strokes"] == 0 and m["stroke_count"] <= max_strokes


def _score(m: Mapping[str, float]) -> float:
    """0-100 from the metrics: the product of one knee per check, each monotonic in its metric.

    A signature well clear of every limit scores 90-100; each factor falls to 0.5 at
    its check's default limit and to 0 for nothing at all (no points, no time, no
    size, a perfectly straight line). Missing pressure only halves the score: the
    ink is still a usable image. Speed and tremor are not in it (see the module doc).
    """
    if m["point_count"] <= 0:
        return 0.0
    s = _SCORE_SCALES
    f_points = _knee(m["point_count"] / s["points"]) * _knee(m["point_rate_hz"] / s["point_rate_hz"])
    f_time = _knee(m["pen_down_s"] / s["pen_down_s"])
    f_size = _knee(m["ink_size_mm"] / s["size_mm"])
    line = max(m["ink_spread_mm"] / s["line_spread_mm"], m["ink_line_ratio"] / s["line_ratio"])
    f_shape = _knee(line)
    if m["stroke_count"] <= s["mark_max_strokes"]:
        # Few strokes: as much a signature as its share of curved writing.
        f_shape *= _knee(m["curved_share"] / s["curved_share"])
    f_pressure = 0.5 + 0.5 * _knee(m["pressure_range"] / s["pressure_range"])
    return float(round(100.0 * f_points * f_time * f_size * f_shape * f_pressure, 1))


# --- checks and feedback ------------------------------------------------------------------


def _checks(m: Mapping[str, float], t: Mapping[str, float]) -> list[str]:
    """The feedback codes whose checks fail, in :data:`FEEDBACK_PRIORITY` order."""
    if m["point_count"] <= 0:
        return ["empty"]  # nothing else is worth saying about no ink
    failed = set()
    dot = m["ink_size_mm"] < t["max_dot_mm"]
    line = m["ink_spread_mm"] < t["max_line_spread_mm"] and m["ink_line_ratio"] < t["max_line_ratio"]
    if dot or line or _is_mark(m, t["mark_max_strokes"]):
        failed.add("dot_or_line")
    brief = m["pen_down_s"] < t["min_pen_down_small_s"] and m["ink_size_mm"] < t["small_ink_mm"]
    if m["pen_down_s"] < t["min_pen_down_s"] or brief:
        failed.add("too_short")
    if m["point_count"] < t["min_points"] or m["point_rate_hz"] < t["min_point_rate_hz"]:
        failed.add("too_few_points")
    if m["ink_size_mm"] < t["min_ink_size_mm"]:
        failed.add("too_small")
    if m["pressure_range"] < t["min_pressure_range"]:
        failed.add("no_pressure")
    return [code for code in FEEDBACK_PRIORITY if code in failed]


def _closest_to_failing(m: Mapping[str, float], t: Mapping[str, float]) -> str:
    """The feedback code whose metric is nearest its limit (as a ratio; lower is closer)."""
    eps = 1e-9
    margins = {
        "too_short": m["pen_down_s"] / max(t["min_pen_down_s"], eps),
        "too_few_points": min(
            m["point_count"] / max(t["min_points"], eps),
            m["point_rate_hz"] / max(t["min_point_rate_hz"], eps),
        ),
        "too_small": m["ink_size_mm"] / max(t["min_ink_size_mm"], eps),
        "dot_or_line": max(
            m["ink_spread_mm"] / max(t["max_line_spread_mm"], eps),
            m["ink_line_ratio"] / max(t["max_line_ratio"], eps),
        ),
        "no_pressure": m["pressure_range"] / max(t["min_pressure_range"], eps),
    }
    return min(margins, key=lambda code: margins[code])


def assess_signature(signature: Signature, thresholds: Mapping[str, float] | None = None) -> SignatureReport:
    """Score one recorded signature and say what, if anything, the officer should do.

    ``signature`` is the recording in device units with its pad's maxima and resolution
    (hover packets are ignored; only tip-down packets are ink). ``thresholds`` overrides
    keys of :data:`DEFAULT_THRESHOLDS` (unknown keys are an error, so a typo in the
    config does not silently keep a default).
    """
    t = merge_thresholds(DEFAULT_THRESHOLDS, thresholds, "signature")
    if signature.pad.points_per_mm <= 0:
        raise ValueError(f"points_per_mm must be above 0, not {signature.pad.points_per_mm!r}")
    metrics = {k: round(float(v), 4) for k, v in _measure(signature).items()}
    return judge(SignatureReport, _score(metrics), metrics, _checks(metrics, t), t, _closest_to_failing)
