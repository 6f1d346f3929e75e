"""What an iris camera's frame says of the camera itself: its exposure and its focus.

Its one job: pure measures of one 8-bit grey frame for the camera's diagnostics
(kitd.services.camera_checks) — the exposure histogram (mean, share of pixels clipped dark and
bright) with its verdict, and a scene focus measure (the Laplacian's variance tile by tile at
a fixed working width, the sharpest tiles left out) with its verdict. They judge the camera
and its illuminator, not an eye: the iris assessor (kitd.capture.iris_quality) judges eyes.
No I/O; numpy and OpenCV only.

The thresholds were set on the simulator's healthy stream (hil.eye_sim) and checked against
real near-infrared eyes (the IIT Delhi set, 320 x 240, and the open-iris sample, 640 x 480, in
../shared/fixtures); the figures are beside each constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A pixel at or below DARK_LEVEL is clipped dark, at or above BRIGHT_LEVEL clipped bright.
# 25 is above a NIR sensor's black level plus its noise (a capped lens reads 0-12), below
# any lit skin (the darkest lit skin in the IITD set is ~60).
DARK_LEVEL = 25
BRIGHT_LEVEL = 250
# Real NIR eyes have pupils, lashes and hair: 4-21 % of their pixels dark (IITD, 156 images),
# 2 % (open-iris); their means are 95-181. A frame over half dark, or with a mean under 50, is
# underexposed (the illuminator weak or off); nearly all dark (the simulator's exposure=0.05:
# 98 %) is the illuminator off or the lens covered.
DARK_SHARE_WARN = 0.5
DARK_SHARE_FAIL = 0.9
MEAN_LOW = 50.0
# Real eyes clip their reflections and some skin: 0.1-9 % (IITD), 18 % (open-iris). Over 40 %
# clipped bright (or a mean over 230) is overexposed — sunlight on the camera, which carries
# much near-infrared; nearly all (the driver flags `saturated` at 95 %) is blinding.
BRIGHT_SHARE_WARN = 0.4
BRIGHT_SHARE_FAIL = 0.9
MEAN_HIGH = 230.0

# Focus is measured at this width, whatever the camera's: a blur then reads the same on a
# 320- or a 1280-pixel camera (it is a share of the frame), and the area downscale averages
# away the sensor noise that would otherwise read as detail.
FOCUS_WIDTH = 160
# The Laplacian's variance in each tile of an 8-column grid, averaged over all but the sharpest
# fifth of the tiles: a few sharp things over a smeared lens (the illuminator's glint, a speck
# of dust) are not focus. The whole frame's variance read a smeared lens (the real eyes below
# blurred at sigma 8) with one burned-in line of text as 9-480, in focus.
FOCUS_GRID_COLUMNS = 8
FOCUS_KEEP = 0.8
# A timestamp the camera burns in is white and sharp whatever the lens, and may cover more
# than a fifth of the tiles (two lines, or one across a row of tiles: 21-26 over the same
# smeared eyes). So pixels clipped bright (BRIGHT_LEVEL), and FOCUS_CLIPPED_REACH px of the
# camera's frame around them (a JPEG's ringing round a stroke spans its 8-pixel block), are
# left out of the measure, and tiles with less than FOCUS_TILE_LEFT of their pixels left are
# not read (the whole frame is, if too few are). Burned-in text, one to four lines anywhere
# over the smeared eyes, then reads as at most 12 (as a PNG or a JPEG of quality 90; 16 at
# quality 70, where the JPEG's own blocks already read 13 with no text). Text that is not
# clipped (grey, or white below 250 with a black outline) is not left out: two lines of it over
# the smeared eyes read 16-140. Leaving out whatever stands out from its surroundings (a
# top-hat) caught such text but took an eye's own lashes with it: real eyes in focus then read
# as low as 12-23.
FOCUS_CLIPPED_REACH = 4
FOCUS_TILE_LEFT = 0.5
# Measured: real eyes 383-2801 (IITD, 156, and open-iris; median 1074); the simulator's eye
# 778, the tests' plain scene 259, a featureless one 7. Real eyes blurred (Gaussian sigma in
# pixels of a 640 frame): sigma 2: 143-1161, sigma 4: 20-131, sigma 8: 3-9. Below 15 even a
# plain in-focus scene is implausible: the lens is smeared (or nothing is in front of it).
FOCUS_LOW = 15.0


@dataclass(frozen=True)
class Exposure:
    """A frame's exposure histogram, summarised."""

    mean: float
    dark_share: float
    bright_share: float
    p05: float
    p50: float
    p95: float

    def to_json(self) -> dict[str, float]:
        return {
            "mean": round(self.mean, 1),
            "dark_share": round(self.dark_share, 4),
            "bright_share": round(self.bright_share, 4),
            "p05": round(self.p05, 1),
            "p50": round(self.p50, 1),
            "p95": round(self.p95, 1),
        }


def exposure(image: np.ndarray) -> Exposure:
    """The exposure of an 8-bit grey frame."""
    if image.size == 0:
        raise ValueError("an empty frame has no exposure")
    histogram = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    cumulative = np.cumsum(histogram) / total

    def percentile(share: float) -> float:
        return float(np.searchsorted(cumulative, share))

    return Exposure(
        mean=float(np.dot(histogram, np.arange(256)) / total),
        dark_share=float(histogram[: DARK_LEVEL + 1].sum() / total),
        bright_share=float(histogram[BRIGHT_LEVEL:].sum() / total),
        p05=percentile(0.05),
        p50=percentile(0.50),
        p95=percentile(0.95),
    )


# Exposure verdicts, worst first within each side.
BLACK, DARK, NORMAL, BRIGHT, SATURATED = "black", "dark", "normal", "bright", "saturated"


def exposure_verdict(found: Exposure) -> str:
    """`black` (nearly all dark), `dark`, `normal`, `bright` or `saturated` (nearly all clipped)."""
    if found.dark_share >= DARK_SHARE_FAIL:
        return BLACK
    if found.bright_share >= BRIGHT_SHARE_FAIL:
        return SATURATED
    if found.dark_share >= DARK_SHARE_WARN or found.mean < MEAN_LOW:
        return DARK
    if found.bright_share >= BRIGHT_SHARE_WARN or found.mean > MEAN_HIGH:
        return BRIGHT
    return NORMAL


def focus(image: np.ndarray) -> float:
    """The frame scaled to FOCUS_WIDTH (area averaging; never up): the Laplacian's variance
    per tile of a grid FOCUS_GRID_COLUMNS wide (square tiles), clipped-bright pixels and
    their surroundings left out, averaged over the FOCUS_KEEP least sharp of the tiles."""
    height, width = image.shape[:2]
    reach = 2 * FOCUS_CLIPPED_REACH + 1
    clipped = cv2.dilate((image >= BRIGHT_LEVEL).astype(np.uint8), np.ones((reach, reach), np.uint8))
    if width > FOCUS_WIDTH:
        size = (FOCUS_WIDTH, max(1, round(height * FOCUS_WIDTH / width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        clipped = cv2.resize(clipped, size, interpolation=cv2.INTER_AREA)
    # The Laplacian of a pixel next to a clipped one is the clip's edge.
    left = cv2.dilate(clipped, np.ones((3, 3), np.uint8)) == 0
    laplacian = cv2.Laplacian(image.astype(np.float32), cv2.CV_32F, ksize=1)
    rows, columns = laplacian.shape
    across = min(FOCUS_GRID_COLUMNS, columns)
    down = max(1, min(rows, round(across * rows / columns)))
    bands = [slice(i * rows // down, (i + 1) * rows // down) for i in range(down)]
    strips = [slice(j * columns // across, (j + 1) * columns // across) for j in range(across)]
    tiles = [(band, strip) for band in bands for strip in strips]
    read = [tile for tile in tiles if left[tile].mean() >= FOCUS_TILE_LEFT]
    if len(read) < (1.0 - FOCUS_KEEP) * len(tiles):
        read, left = tiles, np.ones_like(left)
    variances = np.sort([float(laplacian[tile][left[tile]].var()) for tile in read])
    return float(variances[: max(1, int(FOCUS_KEEP * variances.size))].mean())


def focus_is_low(value: float) -> bool:
    return value < FOCUS_LOW
