"""How far the iris assessor's finding is from the hand marks, image by image, and in sum.

Its one job: compare what :func:`kitd.capture.iris_quality.assess_iris` found in an image
(pupil and limbus circles, lid heights) with the image's marks, and summarise a set of
images against the issue's tolerances: the pupil's centre and radius within 3 px, the
limbus's within 5 px, each lid within 8 px at its three columns (the iris centre and half
an iris radius either side), lids clipped to the limbus on both sides (a lid above the iris
hides nothing, wherever above it is).

    python -m groundtruth.iris_agreement [--marks FILE] [--half development|held-out|all] [--json]
    python -m groundtruth.iris_agreement --repeat [--json]

`--repeat` measures the marker against themself instead: the ten images marked twice, the
second marking taken as the finding (needs no images).

The IITD images are split by subject: the 16 lowest subject numbers are for development,
the 16 highest are held out (only measured).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from groundtruth.iris_marks import (
    IITD_MARKS,
    IITD_REPEAT_MARKS,
    EyeMarks,
    circle_distance,
    lid_columns,
    lid_curve,
    load_marks,
    visible_lid,
)
from kitd.capture.iris_quality import IrisReport, assess_iris

IITD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "iitd-iris"
PUPIL_TOLERANCE_PX = 3.0
LIMBUS_TOLERANCE_PX = 5.0
LID_TOLERANCE_PX = 8.0


def subject(name: str) -> int:
    return int(name.split("_", 1)[0])


def iitd_halves(directory: Path = IITD_DIR) -> tuple[list[Path], list[Path]]:
    """(development, held-out) images: split by subject, the lower half of the subjects first."""
    images = sorted(directory.glob("*.png"))
    subjects = sorted({subject(p.name) for p in images})
    cut = subjects[len(subjects) // 2] if subjects else 0
    return [p for p in images if subject(p.name) < cut], [p for p in images if subject(p.name) >= cut]


@dataclass(frozen=True)
class Agreement:
    """One image: the distances between the assessor's finding and the marks (pixels)."""

    image: str
    found: bool
    pupil_centre: float = math.inf
    pupil_radius: float = math.inf
    limbus_centre: float = math.inf
    limbus_radius: float = math.inf
    upper_lid: float | None = None  # worst of the three columns; None when not marked
    lower_lid: float | None = None

    @property
    def pupil_ok(self) -> bool:
        return self.pupil_centre <= PUPIL_TOLERANCE_PX and self.pupil_radius <= PUPIL_TOLERANCE_PX

    @property
    def limbus_ok(self) -> bool:
        return self.limbus_centre <= LIMBUS_TOLERANCE_PX and self.limbus_radius <= LIMBUS_TOLERANCE_PX

    def lid_ok(self, part: str) -> bool | None:
        worst = getattr(self, part)
        return None if worst is None else worst <= LID_TOLERANCE_PX


LidAt = Callable[[str, list[float]], list[float]]  # a lid's heights at columns, by part


def _lid_error(marks: EyeMarks, seen_at: LidAt, part: str) -> float | None:
    """The worst of the three columns between the marked lid and the one `seen_at` gives
    (its heights at the marks' columns), both clipped to the marked limbus."""
    limbus = marks.limbus
    columns = lid_columns(limbus)
    heights = marks.lid_heights(part, columns)
    if heights is None:
        return None
    marked = visible_lid(heights, columns, limbus, part)
    seen = visible_lid(seen_at(part, columns), columns, limbus, part)
    return max(abs(a - b) for a, b in zip(marked, seen, strict=True))


def _assessor_lid(metrics: Mapping[str, float], part: str, columns: list[float]) -> list[float]:
    """The assessor's lid at `columns`: its three heights, joined by a parabola."""
    name = part.replace("_lid", "")
    found_columns = lid_columns((metrics["iris_x"], metrics["iris_y"], metrics["iris_r"]))
    found = [metrics[f"{name}_eyelid_y_left"], metrics[f"{name}_eyelid_y"], metrics[f"{name}_eyelid_y_right"]]
    curve = lid_curve(list(zip(found_columns, found, strict=True)))
    return [float(y) for y in np.polyval(curve, columns)]


def _marked_lid(marks: EyeMarks, part: str, columns: list[float]) -> list[float]:
    """Another marking's lid at `columns`; an unmarked lid hides nothing (its limbus's edge,
    as the assessor gives a lid it did not find)."""
    heights = marks.lid_heights(part, columns)
    if heights is None:
        heights = [-math.inf if part == "upper_lid" else math.inf] * len(columns)
    return visible_lid(heights, columns, marks.limbus, part)


def marked_iris(marks: EyeMarks, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Masks of a frame of `shape`: the marked iris (between the marked pupil and limbus),
    and what of it the marked lids leave uncovered."""
    h, w = shape[:2]
    (px, py, pr), (ix, iy, ir) = marks.pupil, marks.limbus
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    iris = (np.hypot(xs - px, ys - py) > pr) & (np.hypot(xs - ix, ys - iy) < ir)
    hidden = np.zeros_like(iris)
    for part, above in (("upper_lid", True), ("lower_lid", False)):
        curve = lid_curve(marks.points.get(part, []))
        if curve is not None:
            lid_y = np.polyval(curve, xs)
            hidden |= ys < lid_y if above else ys > lid_y
    return iris, iris & ~hidden


def marked_usable_area(marks: EyeMarks, shape: tuple[int, ...]) -> float:
    """The share of the marked iris that the marked lids leave uncovered: what
    usable_iris_area would be with the marks (reflections aside), to tell whether
    open_wider is due."""
    iris, visible = marked_iris(marks, shape)
    return float(visible.sum() / max(int(iris.sum()), 1))


def _agreement(
    name: str,
    marks: EyeMarks,
    pupil: tuple[float, float, float],
    limbus: tuple[float, float, float],
    lid_at: LidAt,
) -> Agreement:
    pc, pr = circle_distance(marks.pupil, pupil)
    lc, lr = circle_distance(marks.limbus, limbus)
    upper, lower = (_lid_error(marks, lid_at, part) for part in ("upper_lid", "lower_lid"))
    return Agreement(name, True, pc, pr, lc, lr, upper, lower)


def agreement(name: str, marks: EyeMarks, report: IrisReport) -> Agreement:
    m = report.metrics
    if not m.get("eye_found"):
        return Agreement(name, False)
    pupil, limbus = (m["pupil_x"], m["pupil_y"], m["pupil_r"]), (m["iris_x"], m["iris_y"], m["iris_r"])
    return _agreement(name, marks, pupil, limbus, functools.partial(_assessor_lid, m))


def repeat_agreement(name: str, marks: EyeMarks, again: EyeMarks) -> Agreement:
    """How far a second marking of the image (`again`) is from the first, measured as the
    assessor is: the yardstick its tolerances are read against."""
    return _agreement(name, marks, again.pupil, again.limbus, functools.partial(_marked_lid, again))


def summarise(rows: list[Agreement]) -> dict[str, float | int]:
    """Shares of the images within tolerance (lids: of the images whose lid was marked)."""

    def share(values: list[bool]) -> float:
        return round(sum(values) / len(values), 3) if values else float("nan")

    upper = [r.lid_ok("upper_lid") for r in rows if r.upper_lid is not None or not r.found]
    lower = [r.lid_ok("lower_lid") for r in rows if r.lower_lid is not None or not r.found]
    return {
        "images": len(rows),
        "found": share([r.found for r in rows]),
        "pupil_within_3px": share([r.pupil_ok for r in rows]),
        "limbus_within_5px": share([r.limbus_ok for r in rows]),
        "upper_lid_within_8px": share([bool(v) for v in upper]),
        "lower_lid_within_8px": share([bool(v) for v in lower]),
        "lids_within_8px": share([bool(v) for v in upper + lower]),
    }


def marked_eyes(
    marks: Mapping[str, EyeMarks], images: Iterable[Path]
) -> Iterator[tuple[str, np.ndarray, EyeMarks]]:
    """(name, grey image, its marks) for each of `images` that is marked, read once."""
    for path in images:
        if path.name in marks:
            yield path.name, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), marks[path.name]


def measure(
    marks: Mapping[str, EyeMarks], images: list[Path], thresholds: Mapping[str, float] | None = None
) -> list[Agreement]:
    return [
        agreement(name, eye_marks, assess_iris(grey, thresholds))
        for name, grey, eye_marks in marked_eyes(marks, images)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m groundtruth.iris_agreement", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--marks", type=Path, default=IITD_MARKS)
    parser.add_argument("--half", choices=("development", "held-out", "all"), default="development")
    parser.add_argument(
        "--repeat",
        action="store_true",
        help=f"the second marking ({IITD_REPEAT_MARKS.name}) against the first, not the assessor",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.repeat:
        marks, again = load_marks(args.marks), load_marks(IITD_REPEAT_MARKS)
        rows = [repeat_agreement(name, marks[name], again[name]) for name in sorted(again) if name in marks]
        half = "repeat"
    else:
        if not IITD_DIR.is_dir():
            missing = f"iris_agreement: {IITD_DIR} is not there (the IITD eyes live in ../shared)"
            print(missing, file=sys.stderr)
            return 2
        development, held_out = iitd_halves()
        images = {"development": development, "held-out": held_out, "all": development + held_out}[args.half]
        rows = measure(load_marks(args.marks), images)
        half = args.half
    for row in rows:
        if args.json:
            print(json.dumps(asdict(row)))
        else:
            flags = "".join(
                "." if ok else "x"
                for ok in (
                    row.found,
                    row.pupil_ok,
                    row.limbus_ok,
                    row.lid_ok("upper_lid") is not False,
                    row.lid_ok("lower_lid") is not False,
                )
            )
            print(
                f"{row.image} {flags} pupil {row.pupil_centre:.1f}/{row.pupil_radius:.1f} "
                f"limbus {row.limbus_centre:.1f}/{row.limbus_radius:.1f} "
                f"lids {row.upper_lid if row.upper_lid is None else round(row.upper_lid, 1)}/"
                f"{row.lower_lid if row.lower_lid is None else round(row.lower_lid, 1)}"
            )
    print(json.dumps({"half": half, **summarise(rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
