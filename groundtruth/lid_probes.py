"""How the lids found hold on altered copies of the marked development eyes.

Its one job: alter each marked development eye as heads, lashes, lids and cameras do (turned 6,
12 and 15 degrees either way; curtains and clumps of lashes hung from its marked upper lid, sharp
and out of focus, masses of lashes that hide the top of the iris, and lashes curled up over the
skin above it; its real upper lid drooping lower over the iris, evenly or slanted; blurred,
moved vertically, vignetted, lit from below and from above, flattened, through tone curves,
grainy, half size), move the marks with it, and count, per kind of copy and per half of the
development subjects (odd and even numbers), the lids found within 8 px of the marks at their
three columns (a half-size copy's error counted at full size). A change to the lid finder is
worth keeping when both halves gain and no kind of copy loses; a gain on one half only is
noise. The held-out half is never read.

    python -m groundtruth.lid_probes [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from groundtruth.degraded_eyes import (
    lash_clumps,
    lash_curtain,
    lash_mass,
    lashes_on_skin,
    lit_from_above,
    lit_from_below,
    toned,
    vignetted,
)
from groundtruth.iris_agreement import (
    IITD_DIR,
    LID_TOLERANCE_PX,
    agreement,
    iitd_halves,
    marked_eyes,
    subject,
)
from groundtruth.iris_marks import IITD_MARKS, EyeMarks, lid_curve, load_marks, marks_through, scaled_marks
from kitd.capture.iris_quality import assess_iris

TURNS = (6.0, 12.0, 15.0)  # degrees, each either way
CURTAIN_REACHES = (0.25, 0.4, 0.55)  # iris radii the lashes hang down to
CLUMP_REACHES = (0.3, 0.5)
SOFT_CLUMPS = (0.02, 0.03)  # iris radii of blur: drooping lashes out of focus
SKIN_LASH_REACHES = (0.3, 0.5)  # iris radii lashes curled up over the skin reach
MASS_DEPTHS = (0.15, 0.3)  # iris radii below the margin a mass of lashes hides the iris down to
SEEDS = (0, 1)
LIT_FROM_BELOW = (0.92, 0.85)  # the top row's share of the bottom row's light
LIT_FROM_ABOVE = (0.85, 0.7)  # the bottom row's share of the top row's light
DROOPS = (0.2, 0.4)  # iris radii a drooping upper lid comes down, evenly
DROOP_SLANT = 0.3  # iris radii a slanted one comes down at one side of the iris (none at the other)
DROOP_EDGE = 0.02  # iris radii below the marked margin that move with the lid: the margin's own edge
PARTS = ("upper_lid", "lower_lid")
# Only the upper lid is counted in these: the lashes hang from it or lie on the skin above it.
LASH_KINDS = ("curtain", "clumps", "soft_clumps", "lashes_on_skin", "lash_mass")

Copy = tuple[str, np.ndarray, EyeMarks, float]  # kind, image, its marks, its scale


def turned(image: np.ndarray, marks: EyeMarks, degrees: float) -> tuple[np.ndarray, EyeMarks]:
    """The eye and its marks turned `degrees` (counter-clockwise as seen) about the marked
    limbus's centre: a head tilted to one side. The frame's edge is mirrored into the corners."""
    ix, iy, _ = marks.limbus
    matrix = cv2.getRotationMatrix2D((ix, iy), degrees, 1.0)
    h, w = image.shape
    moved = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return moved, marks_through(marks, matrix)


def upper_lid_lowered(marks: EyeMarks, depth: float) -> EyeMarks:
    """The marks with the upper lid's `depth` iris radii lower: where the iris seen ends under
    lashes that hide it down to there (groundtruth.degraded_eyes.lash_mass)."""
    down = marks_through(marks, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, depth * marks.limbus[2]]]))
    return EyeMarks({**marks.points, "upper_lid": down.points["upper_lid"]})


def drooping(
    image: np.ndarray, marks: EyeMarks, depth: float, slant: int = 0
) -> tuple[np.ndarray, EyeMarks] | None:
    """The eye with its real upper lid (skin, margin, lashes) come down `depth` iris radii over
    the iris, as a lid droops (ptosis, common among the elderly): evenly, or, with `slant` 1
    (-1), from nothing at the iris's left (right) edge to `depth` at its other edge. Each
    column above the marked margin, and DROOP_EDGE below it, moves down by its own shift; the
    rows left at the frame's top are the frame mirrored. Under the lid the eye stays where it
    is: the lid covers what it comes down over, the pupil's top as the iris's. The marked upper
    lid moves with it. None when the upper lid is not marked."""
    curve = lid_curve(marks.points.get("upper_lid", []))
    if curve is None:
        return None
    ix, _, ir = marks.limbus

    def shift(x: np.ndarray) -> np.ndarray:
        if not slant:
            return np.full_like(x, depth * ir)
        rising = np.clip((x - (ix - ir)) / (2.0 * ir), 0.0, 1.0)
        return depth * ir * (rising if slant > 0 else 1.0 - rising)

    h, w = image.shape
    xs = np.arange(w, dtype=np.float64)
    down = shift(xs)
    ys = np.arange(h, dtype=np.float64)[:, None]
    moved_edge = np.polyval(curve, xs) + down + DROOP_EDGE * ir
    # All of a column's shift above the moved margin's edge, none 3 px under it.
    lid = np.clip((moved_edge[None, :] - ys) / 3.0, 0.0, 1.0)
    map_y = (ys - down[None, :] * lid).astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], (h, w)).astype(np.float32)
    lowered = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    points = marks.points["upper_lid"]
    lowered_by = shift(np.array([x for x, _ in points]))
    upper = [(x, y + float(d)) for (x, y), d in zip(points, lowered_by, strict=True)]
    return lowered, EyeMarks({**marks.points, "upper_lid": upper})


def camera_like(grey: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """What another camera or a moving head makes of the same eye (the marks stay)."""
    g = grey.astype(np.float32)
    yield "blur", cv2.GaussianBlur(grey, (0, 0), 1.5)
    streak = np.zeros((9, 9), np.float32)
    streak[2:7, 4] = 1.0 / 5.0  # 5 px of vertical motion
    yield "vertical_motion", cv2.filter2D(grey, -1, streak)
    yield "vignetting", vignetted(grey, 0.5)
    for top in LIT_FROM_BELOW:
        yield "lit_from_below", lit_from_below(grey, top)
    for bottom in LIT_FROM_ABOVE:
        yield "lit_from_above", lit_from_above(grey, bottom)
    yield "low_contrast", np.clip(128.0 + 0.6 * (g - 128.0), 0, 255).astype(np.uint8)
    for gamma in (0.7, 1.4):
        yield "tone_curve", toned(grey, gamma)
    grain = np.random.default_rng(1).normal(0.0, 6.0, grey.shape)
    yield "grain", np.clip(g + grain, 0, 255).astype(np.uint8)


def copies(grey: np.ndarray, marks: EyeMarks) -> Iterator[Copy]:
    """Every altered copy of one marked eye, the eye as it is first."""
    yield "as_is", grey, marks, 1.0
    for degrees in TURNS:
        for sign in (-1.0, 1.0):
            yield (f"turned_{degrees:.0f}", *turned(grey, marks, sign * degrees), 1.0)
    curve = lid_curve(marks.points.get("upper_lid", []))
    if curve is not None:

        def margin(x: np.ndarray) -> np.ndarray:
            return np.polyval(curve, x)

        for reach, seed in itertools.product(CURTAIN_REACHES, SEEDS):
            yield "curtain", lash_curtain(grey, marks.limbus, margin, reach, seed), marks, 1.0
        for reach, seed in itertools.product(CLUMP_REACHES, SEEDS):
            yield "clumps", lash_clumps(grey, marks.limbus, margin, reach, seed), marks, 1.0
        for soft, seed in itertools.product(SOFT_CLUMPS, SEEDS):
            yield "soft_clumps", lash_clumps(grey, marks.limbus, margin, 0.4, seed, soft=soft), marks, 1.0
        for reach, seed in itertools.product(SKIN_LASH_REACHES, SEEDS):
            yield "lashes_on_skin", lashes_on_skin(grey, marks.limbus, margin, reach, seed), marks, 1.0
        for depth, seed in itertools.product(MASS_DEPTHS, SEEDS):
            image = lash_mass(grey, marks.limbus, margin, depth, seed)
            yield "lash_mass", image, upper_lid_lowered(marks, depth), 1.0
    for depth, slant in [(d, 0) for d in DROOPS] + [(DROOP_SLANT, -1), (DROOP_SLANT, 1)]:
        lowered = drooping(grey, marks, depth, slant)
        if lowered is not None:
            yield ("drooping", *lowered, 1.0)
    for kind, image in camera_like(grey):
        yield kind, image, marks, 1.0
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    yield "half_size", half, scaled_marks(marks, 0.5), 0.5


def probe_counts(eyes: Iterable[tuple[str, np.ndarray, EyeMarks]]) -> dict[tuple[str, str, str], list[int]]:
    """(kind of copy, lid, "odd" or "even" subjects) -> [lids within 8 px, lids marked]."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for name, grey, marks in eyes:
        half = "odd" if subject(name) % 2 else "even"
        for kind, image, moved, scale in copies(grey, marks):
            row = agreement(name, moved, assess_iris(image))
            for part in PARTS:
                # A marked lid counts whether or not the eye was found: a copy that loses the eye
                # is a miss, not one fewer to count.
                if moved.lid_heights(part) is None or (kind in LASH_KINDS and part != "upper_lid"):
                    continue
                error = getattr(row, part)
                cell = counts.setdefault((kind, part, half), [0, 0])
                cell[0] += int(row.found and error is not None and error / scale <= LID_TOLERANCE_PX)
                cell[1] += 1
    return counts


def development_eyes() -> Iterator[tuple[str, np.ndarray, EyeMarks]]:
    return marked_eyes(load_marks(IITD_MARKS), iitd_halves()[0])


def table(counts: dict[tuple[str, str, str], list[int]]) -> list[str]:
    """One line per kind of copy and one for all: each lid's count on the even and odd subjects."""
    kinds = list(dict.fromkeys(kind for kind, _, _ in counts))
    columns = [(part, half) for part in PARTS for half in ("even", "odd")]
    lines = [f"{'copy':16s}" + "".join(f"{part.split('_')[0] + ' ' + half:>15s}" for part, half in columns)]
    for kind in [*kinds, "all"]:
        cells = []
        for part, half in columns:
            chosen = [
                v
                for (k, p, h), v in counts.items()
                if p == part and h == half and (kind == "all" or k == kind)
            ]
            hit, total = sum(v[0] for v in chosen), sum(v[1] for v in chosen)
            cells.append(f"{hit:>8d}/{total:<6d}" if total else f"{'':15s}")
        lines.append(f"{kind:16s}" + "".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m groundtruth.lid_probes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not IITD_DIR.is_dir():
        print(f"lid_probes: {IITD_DIR} is not there (the IITD eyes live in ../shared)", file=sys.stderr)
        return 2
    counts = probe_counts(development_eyes())
    if args.json:
        print(
            json.dumps(
                [
                    {"copy": k, "lid": p, "subjects": h, "within": v[0], "of": v[1]}
                    for (k, p, h), v in counts.items()
                ]
            )
        )
    else:
        print("\n".join(table(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
