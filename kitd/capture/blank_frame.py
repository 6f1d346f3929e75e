"""A fingerprint sensor's blank frame: what it shows with no finger on it, and what that says
of the sensor's health.

Its one job: :func:`blank_frame_report` turns one grey frame taken with nothing on the sensor
into a :class:`BlankFrameReport`: its background level and shading, dead lines (rows or
columns far darker than their neighbours), stuck lines (one value along the line, or
saturated), and dirt (small areas deviating from the background: residue, a latent print).
Pure functions over arrays, in pixels; the caller knows the sensor and says what to do.

What a healthy blank frame looks like, measured on the real NB-1010-U frame in
../shared/fixtures/nb1010/capture.png (its background, away from the finger): a light grey of
228-231 everywhere (the fitted background spans 1.3-2% of its level, no vignetting to speak
of), pixel noise of about 1.5 grey (1.48 x MAD), no line that stands out, and dark specks of
one or two pixels on ~0.3% of it (under 1% of pixels 20% below the glass). The limits below
find nothing there, nor on the simulator's blank frame (a 2% vignette, the same noise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

# The real sensor's empty glass reads about 229 (capture.png's background).
EMPTY_GREY = 229.0


@dataclass(frozen=True)
class BlankFrameLimits:
    """Where a blank frame stops being healthy (pixels and grey levels; 385 ppi: 15.2 px/mm)."""

    # The background, fitted as a smooth surface to block medians.
    block_px: int = 8
    # A background this far below the empty glass's grey: something covers the sensor.
    dim_below: float = 0.8 * EMPTY_GREY
    # Shading: the fitted background's range over its median. Real glass: 0.013-0.02.
    uneven_above: float = 0.12
    # Dead line: its median below this share of its neighbouring lines' median.
    dead_ratio: float = 0.5
    # How many lines each side are its neighbours (a cluster of dead lines stays visible).
    line_window: int = 8
    # Stuck line: this share of its pixels equal their neighbour along the line, while a
    # typical line of the same frame has at most stuck_typical_at_most (noise: ~0.25).
    stuck_equal_share: float = 0.9
    stuck_typical_at_most: float = 0.6
    # Saturated line: its median at or above this grey while its neighbours' is not.
    saturated_grey: float = 250.0
    # Dirt: the local RMS deviation from the background above this share of it (~10 grey).
    # Real noise after a 3 x 3 median: ~0.8 grey; at 0.035 a cluster of specks on the real
    # glass already reads as a 28 px blotch. A latent print shows from ~20 grey deep ridges.
    dirt_deviation: float = 0.045
    # A blotch smaller than this is a speck (0.1 mm²): sensors have a few.
    min_blotch_px: int = 24
    # Dirty: blotches covering this much in all (0.25 mm²).
    dirty_px: int = 58
    # Dark share: pixels this far below the empty glass (a finger's ridges, even a light
    # press's at ~160 grey; dirt's darkest parts).
    dark_ratio: float = 0.8


@dataclass(frozen=True)
class BlankFrameReport:
    """What a blank frame shows. Lines are 0-based indices, top row and left column first."""

    background: float
    unevenness: float
    dead_rows: tuple[int, ...] = ()
    dead_columns: tuple[int, ...] = ()
    stuck_rows: tuple[int, ...] = ()
    stuck_columns: tuple[int, ...] = ()
    blotches: tuple[int, ...] = ()  # each blotch's area (px), largest first
    dark_share: float = 0.0
    limits: BlankFrameLimits = field(default_factory=BlankFrameLimits, repr=False, compare=False)

    @property
    def damaged(self) -> bool:
        """Dead or stuck lines: the sensor itself is broken (no cloth mends it)."""
        return bool(self.dead_rows or self.dead_columns or self.stuck_rows or self.stuck_columns)

    @property
    def dirty(self) -> bool:
        return sum(self.blotches) >= self.limits.dirty_px

    @property
    def uneven(self) -> bool:
        return self.unevenness > self.limits.uneven_above

    @property
    def dim(self) -> bool:
        return self.background < self.limits.dim_below

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        del values["limits"]
        values["background"] = round(self.background, 1)
        values["unevenness"] = round(self.unevenness, 4)
        values["dark_share"] = round(self.dark_share, 4)
        values["blotch_px"] = sum(self.blotches)
        for name in ("dead_rows", "dead_columns", "stuck_rows", "stuck_columns", "blotches"):
            values[name] = list(values[name])
        return values


def line_medians(frame: np.ndarray, axis: int) -> np.ndarray:
    """Each row's (axis 0) or column's (axis 1) median grey."""
    return np.median(frame, axis=1 - axis).astype(np.float64)


def neighbour_levels(levels: np.ndarray, window: int) -> np.ndarray:
    """For each line, the median of the `window` lines each side of it (itself left out)."""
    padded = np.pad(levels.astype(np.float64), window, constant_values=np.nan)
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1).copy()
    around[:, window] = np.nan
    if len(levels) < 2:
        return levels.astype(np.float64)
    return np.nanmedian(around, axis=1)


def dead_lines(frame: np.ndarray, axis: int, limits: BlankFrameLimits = BlankFrameLimits()) -> list[int]:
    """Rows (axis 0) or columns (axis 1) far darker than their neighbours."""
    levels = line_medians(frame, axis)
    around = neighbour_levels(levels, limits.line_window)
    return [int(i) for i in np.flatnonzero(levels < limits.dead_ratio * around)]


def equal_neighbour_share(frame: np.ndarray, axis: int) -> np.ndarray:
    """For each row (axis 0) or column (axis 1): the share of its pixels equal to the next one
    along it. Sensor noise makes a healthy line's low; a line stuck at one value has 1.0."""
    along = 1 - axis
    same = np.diff(frame.astype(np.int16), axis=along) == 0
    return same.mean(axis=along)


def stuck_lines(frame: np.ndarray, axis: int, limits: BlankFrameLimits = BlankFrameLimits()) -> list[int]:
    """Rows (axis 0) or columns (axis 1) stuck at one value, or saturated among normal lines.

    A frame with no noise at all (every line flat) has no line that stands out: none is
    called stuck, since the comparison with its neighbours is what tells a stuck line."""
    share = equal_neighbour_share(frame, axis)
    stuck = set()
    if np.median(share) <= limits.stuck_typical_at_most:
        stuck.update(int(i) for i in np.flatnonzero(share >= limits.stuck_equal_share))
    levels = line_medians(frame, axis)
    around = neighbour_levels(levels, limits.line_window)
    saturated = (levels >= limits.saturated_grey) & (around < limits.saturated_grey)
    stuck.update(int(i) for i in np.flatnonzero(saturated))
    return sorted(stuck)


def mend_lines(frame: np.ndarray, rows: list[int], columns: list[int]) -> np.ndarray:
    """The frame with these rows and columns replaced by their nearest healthy neighbours'
    mean, so that a broken line is judged once (as broken) and not again as dirt or shading."""
    mended = frame.astype(np.float32)
    for axis, lines in ((0, rows), (1, columns)):
        bad = set(lines)
        size = frame.shape[axis]
        healthy = [i for i in range(size) if i not in bad]
        if not healthy:
            continue
        for line in lines:
            below = [i for i in healthy if i < line][-1:]
            above = [i for i in healthy if i > line][:1]
            picks = below + above
            if axis == 0:
                mended[line, :] = mended[picks, :].mean(axis=0)
            else:
                mended[:, line] = mended[:, picks].mean(axis=1)
    return mended


def block_medians(frame: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Medians of the whole `block` x `block` tiles, with their centres' x and y (pixels)."""
    rows, cols = frame.shape[0] // block, frame.shape[1] // block
    tiles = frame[: rows * block, : cols * block].reshape(rows, block, cols, block)
    medians = np.median(tiles.transpose(0, 2, 1, 3).reshape(rows, cols, -1), axis=2)
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float64) * block + (block - 1) / 2
    return medians.ravel(), xs.ravel(), ys.ravel()


def _quadratic_terms(xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
    u, v = xs / width - 0.5, ys / height - 0.5
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def fit_background(frame: np.ndarray, block: int = 8, rounds: int = 4) -> np.ndarray:
    """The frame's background as a smooth surface (a quadratic: shading, vignetting) fitted to
    its block medians, blocks that stand out from the fit left out round by round (so that
    dirt does not pull the background towards itself)."""
    height, width = frame.shape
    medians, xs, ys = block_medians(frame, block)
    terms = _quadratic_terms(xs, ys, width, height)
    keep = np.ones(medians.size, dtype=bool)
    coefficients = np.zeros(terms.shape[1])
    for _ in range(rounds):
        coefficients, *_ = np.linalg.lstsq(terms[keep], medians[keep], rcond=None)
        residual = medians - terms @ coefficients
        spread = 1.4826 * float(np.median(np.abs(residual[keep])))
        keep = np.abs(residual) <= max(3.0 * spread, 2.0)
        if keep.sum() < terms.shape[1] * 2:
            break
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    return (_quadratic_terms(xx, yy, width, height) @ coefficients).astype(np.float32)


def blotch_areas(
    frame: np.ndarray, background: np.ndarray, limits: BlankFrameLimits = BlankFrameLimits()
) -> list[int]:
    """Areas (px, largest first) of the places that deviate from the background: a darker or
    lighter patch (residue, a drop) or a textured one (a latent print's ridges). A 3 x 3
    median first drops isolated specks, the sensor's own."""
    cleaned = cv2.medianBlur(np.clip(frame, 0, 255).astype(np.uint8), 3).astype(np.float32)
    deviation = cleaned - background
    rms = np.sqrt(cv2.GaussianBlur(deviation * deviation, (0, 0), 2.0))
    level = max(float(np.median(background)), 1.0)
    mask = (rms > limits.dirt_deviation * level).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = [int(stats[i, cv2.CC_STAT_AREA]) for i in range(1, count)]
    return sorted((a for a in areas if a >= limits.min_blotch_px), reverse=True)


def dark_share(frame: np.ndarray, limits: BlankFrameLimits = BlankFrameLimits()) -> float:
    """The share of pixels well below the empty glass: a finger's ridges darken 7% (a light or
    partial press) to 80% (a wet one) of a frame, the real sensor's empty glass has specks on
    under 1%, a dirty one ~4%."""
    return float(np.mean(frame < limits.dark_ratio * EMPTY_GREY))


def blank_frame_report(frame: np.ndarray, limits: BlankFrameLimits = BlankFrameLimits()) -> BlankFrameReport:
    """What a blank frame (8-bit grey, nothing on the sensor) says of the sensor."""
    if frame.ndim != 2 or frame.size == 0:
        raise ValueError(f"a blank frame is a 2-D grey image, got shape {frame.shape}")
    dead_rows, dead_columns = dead_lines(frame, 0, limits), dead_lines(frame, 1, limits)
    stuck_rows = [i for i in stuck_lines(frame, 0, limits) if i not in dead_rows]
    stuck_columns = [i for i in stuck_lines(frame, 1, limits) if i not in dead_columns]
    mended = mend_lines(frame, dead_rows + stuck_rows, dead_columns + stuck_columns)
    background = fit_background(mended, limits.block_px)
    level = float(np.median(background))
    unevenness = float(background.max() - background.min()) / max(level, 1.0)
    return BlankFrameReport(
        background=level,
        unevenness=unevenness,
        dead_rows=tuple(dead_rows),
        dead_columns=tuple(dead_columns),
        stuck_rows=tuple(stuck_rows),
        stuck_columns=tuple(stuck_columns),
        blotches=tuple(blotch_areas(mended, background, limits)),
        dark_share=dark_share(frame, limits),
        limits=limits,
    )
