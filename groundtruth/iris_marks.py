"""Hand marks of an eye: the points a person placed on the pupil's edge, the limbus and each
lid, and the shapes fitted to them.

Its one job: turn clicked points into the ground truth the iris assessor is measured
against (a circle for the pupil and one for the limbus, a curve for each lid), read and
write the marks file, say how two marks of the same eye differ, and move marks as their
image is moved, turned or resized. Pure functions and
plain data; the tool that collects the points is :mod:`groundtruth.mark_iris`.

A lid is described by its height (y, frame pixels) at three columns: the marked iris
centre and half an iris radius either side. Its curve is a parabola through the lid's
points (a line when fewer than three points are given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kitd.capture.iris_geometry import robust_circle

MARKS_DIR = Path(__file__).resolve().parent / "data"
IITD_MARKS = MARKS_DIR / "iitd_iris_marks.json"
IITD_REPEAT_MARKS = MARKS_DIR / "iitd_iris_marks_repeat.json"
LID_COLUMNS = (-0.5, 0.0, 0.5)  # in iris radii from the iris centre
PARTS = ("pupil", "limbus", "upper_lid", "lower_lid")

Point = tuple[float, float]


class MarksError(ValueError):
    """Marks that cannot be fitted; the message names the part."""


def fit_circle(points: Sequence[Point], part: str) -> tuple[float, float, float]:
    """The circle through a boundary's marked points (at least 5, spread around it)."""
    if len(points) < 5:
        raise MarksError(f"{part}: {len(points)} points given, at least 5 are needed for a circle")
    xs = np.array([p[0] for p in points], np.float64)
    ys = np.array([p[1] for p in points], np.float64)
    # Hand marks have no outliers to drop: a tolerance wider than any slip keeps them all.
    fit = robust_circle(xs, ys, tolerance=1e6)
    if fit is None or fit[0][2] <= 0:
        raise MarksError(f"{part}: the points do not make a circle")
    return fit[0]


def lid_curve(points: Sequence[Point]) -> np.ndarray | None:
    """Polynomial coefficients (numpy order) of a lid through its points; None without points."""
    if len(points) < 2:
        return None
    xs = np.array([p[0] for p in points], np.float64)
    ys = np.array([p[1] for p in points], np.float64)
    degree = 2 if len(points) >= 3 and np.ptp(xs) > 0 else 1
    if np.ptp(xs) == 0:
        raise MarksError("lid: its points are all in one column")
    return np.polyfit(xs, ys, degree)


def lid_columns(limbus: tuple[float, float, float]) -> list[float]:
    """The three columns a lid's height is given at, for this iris."""
    ix, _, ir = limbus
    return [ix + k * ir for k in LID_COLUMNS]


@dataclass(frozen=True)
class EyeMarks:
    """One image's marks: the points and what is fitted to them."""

    points: dict[str, list[Point]]

    @property
    def pupil(self) -> tuple[float, float, float]:
        return fit_circle(self.points["pupil"], "pupil")

    @property
    def limbus(self) -> tuple[float, float, float]:
        return fit_circle(self.points["limbus"], "limbus")

    def lid_heights(self, part: str, columns: Iterable[float] | None = None) -> list[float] | None:
        """The lid's y at `columns` (default: the three columns of the marked iris)."""
        curve = lid_curve(self.points.get(part, []))
        if curve is None:
            return None
        at = list(columns) if columns is not None else lid_columns(self.limbus)
        return [float(np.polyval(curve, x)) for x in at]

    def to_json(self) -> dict:
        out: dict = {}
        for part in PARTS:
            pts = [[round(x, 1), round(y, 1)] for x, y in self.points.get(part, [])]
            out[part] = {"points": pts}
        out["pupil"]["circle"] = [round(v, 2) for v in self.pupil]
        out["limbus"]["circle"] = [round(v, 2) for v in self.limbus]
        columns = lid_columns(self.limbus)
        for part in ("upper_lid", "lower_lid"):
            heights = self.lid_heights(part)
            out[part]["columns"] = [round(c, 2) for c in columns]
            out[part]["heights"] = None if heights is None else [round(h, 2) for h in heights]
        return out

    @classmethod
    def from_json(cls, data: dict) -> EyeMarks:
        points = {
            part: [(float(x), float(y)) for x, y in data.get(part, {}).get("points", [])] for part in PARTS
        }
        marks = cls(points)
        marks.pupil, marks.limbus  # noqa: B018 - fail now, naming the part, not when measured
        return marks


def load_marks(path: Path) -> dict[str, EyeMarks]:
    """Image name -> marks, from a marks file."""
    data = json.loads(path.read_text())
    return {name: EyeMarks.from_json(entry) for name, entry in data["images"].items()}


def save_marks(path: Path, marks: dict[str, EyeMarks], about: str) -> None:
    """Write a marks file, images in name order (so that a diff shows what changed)."""
    lines = [f"{json.dumps(name)}: {json.dumps(marks[name].to_json())}" for name in sorted(marks)]
    path.write_text("{\n" + f'"about": {json.dumps(about)},\n"images": {{\n' + ",\n".join(lines) + "\n}\n}\n")


def marks_through(marks: EyeMarks, matrix: np.ndarray) -> EyeMarks:
    """The marks moved as the image is by the 2 x 3 affine `matrix` (cv2.warpAffine's)."""
    return EyeMarks(
        {
            part: [
                (float(x), float(y))
                for x, y in np.array(points, np.float64).reshape(-1, 2) @ matrix[:, :2].T + matrix[:, 2]
            ]
            for part, points in marks.points.items()
        }
    )


def scaled_marks(marks: EyeMarks, scale: float, at: tuple[int, int] = (0, 0)) -> EyeMarks:
    """The marks of the eye resized `scale` times (pixel centres kept on pixel centres) and
    placed with its top left corner at `at` in a larger frame."""
    shift = 0.5 * scale - 0.5
    return marks_through(marks, np.array([[scale, 0.0, shift + at[0]], [0.0, scale, shift + at[1]]]))


def circle_distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float]:
    """(centre distance, radius difference) between two circles, in pixels."""
    return math.hypot(a[0] - b[0], a[1] - b[1]), abs(a[2] - b[2])


def visible_lid(
    heights: Sequence[float], columns: Sequence[float], limbus: tuple[float, float, float], part: str
) -> list[float]:
    """Lid heights clipped to the iris: a lid above (upper) or below (lower) the limbus at a
    column hides nothing there, and is given as the limbus's own edge."""
    ix, iy, ir = limbus
    out = []
    for y, x in zip(heights, columns, strict=True):
        half_chord = math.sqrt(max(ir * ir - (x - ix) ** 2, 0.0))
        top, bottom = iy - half_chord, iy + half_chord
        out.append(max(y, top) if part == "upper_lid" else min(y, bottom))
    return out
