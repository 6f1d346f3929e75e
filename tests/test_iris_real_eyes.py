"""The iris assessor on real eyes from another camera: the IIT Delhi eyes of
../shared/fixtures/iitd-iris against the hand marks of groundtruth/, on the held-out half
(subjects 113-218, never used to set the assessor), with that camera's size checks
(etc/iris-camera-320x240.toml); degraded copies of them; and development eyes placed at any
size and place in a kit-sized frame. Skips, saying why, when the images are absent.

What the issue asks (18) and what is measured are in the closing note; where a figure is
short of the issue's, the test holds the measured floor and says so, so that it cannot slip
further unnoticed.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from groundtruth.degraded_eyes import (
    DEGRADATIONS,
    clouded_pupil,
    constricted_pupil,
    darkened,
    darker_iris,
    glasses_glare,
    lamp_ring,
    lash_band,
    lash_clumps,
    lash_curtain,
    lash_mass,
    lashes_on_skin,
    lit_from_above,
    lit_from_below,
    stuck_lashes,
    toned,
    vignetted,
)
from groundtruth.draw_iris import contact_sheet, draw_eye
from groundtruth.iris_agreement import (
    IITD_DIR,
    LID_TOLERANCE_PX,
    agreement,
    iitd_halves,
    marked_eyes,
    marked_iris,
    marked_usable_area,
    measure,
    summarise,
)
from groundtruth.iris_marks import IITD_MARKS, EyeMarks, lid_curve, load_marks, scaled_marks
from groundtruth.lid_probes import LIT_FROM_ABOVE, LIT_FROM_BELOW, drooping, turned, upper_lid_lowered
from hil.rig import REPO, venv_script
from hil.synthetic_eye import motion_kernel
from kitd.capture import iris_quality
from kitd.capture.iris_geometry import out_of_copy
from kitd.capture.iris_quality import IrisReport, assess_iris

ARTIFACTS = REPO / "artifacts"
CAMERA_320 = REPO / "etc" / "iris-camera-320x240.toml"

pytestmark = pytest.mark.skipif(
    not IITD_DIR.is_dir(), reason=f"the IITD eyes are not at {IITD_DIR} (../shared/fixtures)"
)


def camera_checks() -> dict[str, float]:
    return tomllib.loads(CAMERA_320.read_text())["quality"]["iris"]


def grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return image


@pytest.fixture(scope="module")
def held_out() -> list[Path]:
    return iitd_halves()[1]


@pytest.fixture(scope="module")
def held_out_images(held_out: list[Path]) -> dict[str, np.ndarray]:
    """Each held-out eye, read once for every test of the module."""
    return {path.name: grey(path) for path in held_out}


@pytest.fixture(scope="module")
def held_out_reports(held_out_images: dict[str, np.ndarray]) -> dict[str, IrisReport]:
    checks = camera_checks()
    return {name: assess_iris(image, checks) for name, image in held_out_images.items()}


@dataclass(frozen=True)
class MarkedEye:
    name: str
    image: np.ndarray
    marks: EyeMarks

    def upper_lid_found(self, report: IrisReport) -> bool:
        """Whether `report` puts the upper lid within the issue's 8 px of the marks."""
        error = agreement(self.name, self.marks, report).upper_lid
        return error is not None and error <= LID_TOLERANCE_PX

    def upper_margin(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The marked upper lid's y for an array of x (what lashes are hung from); None unmarked."""
        curve = lid_curve(self.marks.points.get("upper_lid", []))
        return None if curve is None else lambda x: np.polyval(curve, x)


@pytest.fixture(scope="module")
def marked_development() -> list[MarkedEye]:
    """The marked development eyes, each read once for every test of the module."""
    return [MarkedEye(*eye) for eye in marked_eyes(load_marks(IITD_MARKS), iitd_halves()[0])]


@pytest.fixture(scope="module")
def development_reports(marked_development: list[MarkedEye]) -> dict[str, IrisReport]:
    checks = camera_checks()
    return {eye.name: assess_iris(eye.image, checks) for eye in marked_development}


CURTAIN_REACHES = (0.25, 0.4, 0.55)  # iris radii the lashes hang down to, two curtains each


@pytest.fixture(scope="module")
def curtain_reports(marked_development: list[MarkedEye]) -> dict[tuple[str, float, int], IrisReport]:
    """Each marked development eye with an upper lid, under curtains of lashes hung from it."""
    checks, reports = camera_checks(), {}
    for eye in marked_development:
        margin = eye.upper_margin()
        if margin is None:
            continue
        for reach, seed in [(r, s) for r in CURTAIN_REACHES for s in (0, 1)]:
            copy = lash_curtain(eye.image, eye.marks.limbus, margin, reach, seed)
            reports[eye.name, reach, seed] = assess_iris(copy, checks)
    return reports


def test_the_halves_are_the_issue_s(held_out: list[Path]) -> None:
    development = iitd_halves()[0]
    assert len(held_out) == 80 and len(development) == 76
    marks = load_marks(IITD_MARKS)
    assert sum(path.name in marks for path in held_out) == 30
    assert sum(path.name in marks for path in development) == 50


def test_the_eye_is_found_in_the_held_out_half(held_out_reports: dict[str, IrisReport]) -> None:
    found = [name for name, report in held_out_reports.items() if report.metrics.get("eye_found")]
    assert len(found) / len(held_out_reports) >= 0.98


def test_held_out_circles_and_lids_lie_on_the_hand_marks(held_out: list[Path]) -> None:
    summary = summarise(measure(load_marks(IITD_MARKS), held_out, camera_checks()))
    assert summary["images"] == 30 and summary["found"] == 1.0
    assert summary["pupil_within_3px"] >= 0.9
    # Issue 18 asks 0.90 for the limbus and 0.85 for the lids. Measured: 0.73 and 0.73 since the
    # lower lid and a margin above the upper walk's lid may tilt with the head (0.70 before);
    # 0.73 and 0.70 since a clump of lashes is not taken for a pupil (0.70 and 0.68 before,
    # when one pupil was; 0.80 and 0.66 before the side arcs reached 57 deg below horizontal
    # and a curtain's margin was its darkest row of roots: the limbus fell on these subjects
    # while it rose on the development ones, 0.66 to 0.72, its height resting mostly on a
    # prior); 0.77 and 0.71 since a curtain out of focus is looked for (0.77 and 0.75 before:
    # two upper lids moved 6 and 26 px towards the marks, and two of one subject, whose low
    # margin has a dense dark fringe of lashes above it, 17 px away from them, up into it);
    # 0.77 and 0.70 since lids found tilted are looked for again on a turned copy (one lower
    # lid 8.0 -> 8.1 px); 0.77 and 0.71 since lashes so dark that no iris is seen between them
    # are no curtain out of focus (one of the two lids lifted into a dense fringe comes back,
    # 22.2 -> 7.5 px); 0.77 and 0.71 since that darkness is read 0.15-0.25 iris radii above the
    # lid, for every curtain rule (the other of the two comes back, 22.7 -> 4.9 px, and the
    # first goes again, 7.5 -> 22.2: its fringe ends lower); 0.80 and 0.71 since specular spots
    # that a dark blob encloses are part of it when the pupil is first looked for (113_01_L's
    # limbus 5.1 -> 4.9 px off: over the line by chance, not by design). Held a little under
    # those figures until they are met.
    assert summary["limbus_within_5px"] >= 0.66
    assert summary["lids_within_8px"] >= 0.65


def test_held_out_eyes_are_usable_with_the_320x240_camera_s_checks(
    held_out_reports: dict[str, IrisReport],
) -> None:
    refused = {name: report.feedback for name, report in held_out_reports.items() if not report.passed}
    # Issue 18 asks 0.90; measured 0.925 (74 of 80; 0.70 at the first pass, then 0.7875, 0.85,
    # 0.875, 0.8875, 0.9125 and, once a curtain out of focus was looked for, 0.95; two upright
    # eyes whose lids were found slanted, looked at again on a turned copy, have since fallen
    # just under 0.7 usable, 0.925; since lashes that hide the iris are no curtain, two eyes of
    # one subject with a dark fringe of lashes over the top of the iris have too, at 0.691 and
    # 0.664, one of them 0.74 by the marks; 0.925, 74 of 80, since lashes that hide the iris are
    # told 0.15-0.25 iris radii above the lid, and these two pass again): the others are
    # told open_wider, or hold_still on a wrong pupil circle (the closing notes name each with
    # its reason). Held a little under that.
    assert 1 - len(refused) / len(held_out_reports) >= 0.84, refused


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_degraded_copies_score_lower_and_say_why(
    name: str,
    held_out: list[Path],
    held_out_images: dict[str, np.ndarray],
    held_out_reports: dict[str, IrisReport],
) -> None:
    expected, degrade = DEGRADATIONS[name]
    checks = camera_checks()
    pairs, good = 0, []
    for path in held_out:
        original = held_out_reports[path.name]
        m = original.metrics
        if not m.get("eye_found"):
            continue
        iris, pupil = (m["iris_x"], m["iris_y"], m["iris_r"]), (m["pupil_x"], m["pupil_y"], m["pupil_r"])
        copy = assess_iris(degrade(held_out_images[path.name], iris, pupil), checks)
        pairs += 1
        lower = copy.score < original.score or (original.score == 0 and not copy.passed)
        said = expected in copy.feedback if expected else not copy.passed
        if lower and said:
            good.append(path.name)
    assert len(good) / pairs >= 0.95, (name, pairs, len(good))


def embedded(image: np.ndarray, scale: float, x: int, y: int, seed: int) -> np.ndarray:
    """The eye `scale` times its size in a 640 x 480 frame at (x, y), skin-grey around it;
    what falls outside the frame (x or y may be negative) is cut off."""
    small = cv2.resize(
        image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    left, top = max(0, x), max(0, y)
    small = small[top - y : top - y + 480 - top, left - x : left - x + 640 - left]
    frame = np.random.default_rng(seed).normal(float(np.median(image[0])), 3.0, (480, 640))
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return np.clip(frame, 0, 255).astype(np.uint8)


def pupils_found(copies: Iterable[tuple[MarkedEye, tuple, np.ndarray]]) -> tuple[int, list[tuple]]:
    """Of altered copies of marked eyes (the eye, what was done, the copy): how many have their
    pupil found within 3 px of the marks, and what was done to the others."""
    checks, found, missed = camera_checks(), 0, []
    for eye, case, copy in copies:
        row = agreement(eye.name, eye.marks, assess_iris(copy, checks))
        if row.found and row.pupil_ok:
            found += 1
        else:
            missed.append((eye.name, *case))
    return found, missed


def test_a_clump_of_lashes_is_not_taken_for_the_pupil(marked_development: list[MarkedEye]) -> None:
    """A clump of lashes about the pupil's size (groundtruth.degraded_eyes.stuck_lashes), at the
    upper left and the upper right of each marked development eye: hanging from the marked
    upper lid over the iris with its shadow below it, or lying on the lid's skin; mascara
    darker than a pupil greyed by stray light, pupil-sized or half as big again. The pupil is
    still found within 3 px of the marks."""

    def copies() -> Iterator[tuple[MarkedEye, tuple, np.ndarray]]:
        for eye in marked_development:
            margin = eye.upper_margin()
            if margin is None:
                continue
            for at, hanging, size in itertools.product((-0.55, 0.55), (True, False), (1.0, 1.25)):
                yield eye, (at, hanging, size), stuck_lashes(
                    eye.image, eye.marks.limbus, eye.marks.pupil, margin, at=at,
                    hanging=hanging, width=1.2 * size, length=1.8 * size, strands=round(28 * size * size),
                    thickness=(2.0, 3.5), ink=0.3, flare=30.0, shadow=0.5 if hanging else 0.0,
                )  # fmt: skip

    found, missed = pupils_found(copies())
    # Measured: 388 of 400 (314 before the pupil was sized by its inscribed disk and its
    # surround read without its top; the misses: a clump hanging against the pupil, taken in
    # with it, and a flat grey pupil split at the darkest level the lashes set).
    assert found / (found + len(missed)) >= 0.95, missed


def test_a_band_of_lashes_run_into_the_pupil_does_not_move_it(marked_development: list[MarkedEye]) -> None:
    """A lid come down to the pupil, its lashes seen end on (groundtruth.degraded_eyes.lash_band):
    a near-black band 0.15 or 0.25 iris radii tall whose lower edge runs 5 % or 20 % of the
    pupil's radius into its top, towards either corner, so that pupil and lashes are one dark
    blob, wider than the pupil and not a disk. The pupil is still found within 3 px of the marks
    on each marked development eye."""
    found, missed = pupils_found(
        (eye, case, lash_band(eye.image, eye.marks.limbus, eye.marks.pupil, *case))
        for eye in marked_development
        for case in itertools.product((0.15, 0.25), (-1, 1), (0.05, 0.2))
    )
    # Measured: 396 of 400 (342 when only the blob's outline was refined, the pupil then fitted
    # to its own edge on some rays and the band's on others; the misses now by 3.1-3.2 px).
    assert found / (found + len(missed)) >= 0.97, missed


def test_a_ring_of_lamps_reflected_in_the_pupil_does_not_move_it(marked_development: list[MarkedEye]) -> None:
    """An illuminator made of a ring of eight lamps, as some iris cameras have, leaves a ring of
    eight saturated spots in the pupil (groundtruth.degraded_eyes.lamp_ring: 4 and 5 px across
    their radius, round a circle of 0.3, 0.45 and 0.6 of the marked pupil's radius): the pupil
    is still found within 3 px of the marks on each marked development eye."""
    found, missed = pupils_found(
        (eye, case, lamp_ring(eye.image, eye.marks.pupil, *case))
        for eye in marked_development
        for case in itertools.product((0.3, 0.45, 0.6), (4.0, 5.0))
    )
    # Measured: 300 of 300; 294 while specular spots a dark blob enclosed were holes in it (the
    # ring then cut the pupil's blob into a disk and a ring): the misses 5 px spots.
    assert found / (found + len(missed)) >= 0.99, missed


@pytest.mark.parametrize(("share", "floor"), [(0.3, 0.95), (0.5, 0.9), (0.7, 0.8)])
def test_a_pupil_clouded_by_a_cataract_is_still_found(
    share: float, floor: float, marked_development: list[MarkedEye]
) -> None:
    """The marked development eyes with their pupils greyed `share` of the way to the iris
    (a cataract, common among the elderly the kit records): the pupil is still found within
    3 px of the marks, not the darkest clump of lashes."""
    found, missed = pupils_found(
        (eye, (share,), clouded_pupil(eye.image, eye.marks.pupil, eye.marks.limbus, share))
        for eye in marked_development
    )
    # Measured: 50, 50 and 44 of 50; 19, 4 and 0 of 50 while only the darkest level's blob was
    # refined (lash clumps; no_eye for 7, 11 and 14); 50, 35 and 7 while only the first greyer
    # level's was tried besides; 50, 49 and 11 without PUPIL_GREYER_LEVELS.
    assert found >= floor * len(marked_development), missed


@pytest.mark.parametrize(("share", "most_moved"), [(0.3, 1), (0.5, 2), (0.7, 10)])
def test_a_pupil_clouded_by_a_cataract_leaves_the_lids_where_they_are(
    share: float, most_moved: int, marked_development: list[MarkedEye]
) -> None:
    """The marked development eyes with their pupils greyed `share` of the way to the iris: the
    lids are told from the iris by the eye's black, which a cataract does not grey (the
    lashes'), so they stay within 8 px of where they were found on the clear eye and the eye
    is not told to open wider for texture taken for a lid."""
    moved = []
    for eye in marked_development:
        clear = assess_iris(eye.image).metrics
        m = assess_iris(clouded_pupil(eye.image, eye.marks.pupil, eye.marks.limbus, share)).metrics
        if not m.get("eye_found"):
            continue  # the pupil's own test counts these
        shift = max(abs(m[k] - clear[k]) for k in ("upper_eyelid_y", "lower_eyelid_y"))
        if shift > 8:
            moved.append((eye.name, round(shift)))
    # Measured: 0, 1 and 6 of 50 lids moved past 8 px; 4, 10 and 33 while the lids' cuts were
    # shares of the iris's grey less the clouded pupil's.
    assert len(moved) <= most_moved, moved


def test_a_drooping_upper_lid_is_found_where_it_has_come_down(marked_development: list[MarkedEye]) -> None:
    """The marked development eyes with their real upper lid (skin, margin, lashes) come down
    0.2 and 0.4 iris radii over the iris (ptosis, common among the elderly the kit records):
    the upper lid is found within 8 px of the moved marks, not up in the lashes on the skin
    above its margin; and where the lid leaves less of the iris than the camera's checks ask,
    the applicant is told to open wider rather than the capture passing."""
    checks = camera_checks()
    least_usable = {**iris_quality.DEFAULT_THRESHOLDS, **checks}["min_usable_iris_area"]
    within = {0.2: 0, 0.4: 0}
    due, told = 0, 0
    for eye in marked_development:
        for depth in within:
            lowered = drooping(eye.image, eye.marks, depth)
            if lowered is None:
                continue
            image, marks = lowered
            report = assess_iris(image, checks)
            row = agreement(eye.name, marks, report)
            within[depth] += bool(row.found and row.lid_ok("upper_lid"))
            if depth == 0.4 and marked_usable_area(marks, image.shape) < least_usable:
                due += 1
                told += "open_wider" in report.feedback
    # Measured: 32 and 25 of 50 upper lids within 8 px; open_wider for 32 of the 45 eyes whose
    # moved marks leave under 0.7 of the iris at 0.4. Before the margin was looked for under
    # the lid found (iris_segmentation.LID_LINE_GAP): 27, 14, and 21 of 45.
    assert within[0.2] >= 30 and within[0.4] >= 22 and told >= 30, (within, told, due)


def test_a_small_pupil_is_not_taken_for_a_turned_eye(marked_development: list[MarkedEye]) -> None:
    """The marked development eyes, looking at the camera, with their pupils shrunk to 0.2 and
    0.15 of the iris's radius (an old person's): the pupil is found within 3 px and the eye is
    not told to look at the camera."""
    checks, turned_away, missed = camera_checks(), [], []
    for eye in marked_development:
        for share in (0.2, 0.15):
            report = assess_iris(
                constricted_pupil(eye.image, eye.marks.pupil, eye.marks.limbus, share), checks
            )
            m = report.metrics
            if (
                not m.get("eye_found")
                or math.hypot(m["pupil_x"] - eye.marks.pupil[0], m["pupil_y"] - eye.marks.pupil[1]) > 3
            ):
                missed.append((eye.name, share))
            if "look_at_camera" in report.feedback:
                turned_away.append((eye.name, share, round(m["gaze_deg"], 1)))
    # Measured: every pupil found; 5 of 100 told look_at_camera (036_01_L, 036_03_L and 071_06_R,
    # whose pupils read 19-22 degrees as they are); 11 while the aspect was read as it is
    # (PUPIL_AXIS_PX).
    assert not missed and len(turned_away) <= 6, (missed, turned_away)


def test_strong_noise_does_not_shrink_the_pupil(marked_development: list[MarkedEye]) -> None:
    """Each marked development eye under strong sensor noise (the issue's noisy copy, sigma 40):
    a dark blob in noise is no disk, and its largest inscribed disk is a second reading of it;
    a small circle in noise scatters fewer pixels than the pupil's edge, but not fewer of its
    radius. The pupil's radius stays within 20 % of the marks'."""
    noisy = DEGRADATIONS["noisy"][1]
    shrunk = []
    for eye in marked_development:
        m = assess_iris(noisy(eye.image, eye.marks.limbus, eye.marks.pupil), camera_checks()).metrics
        marked = eye.marks.pupil[2]
        if not m.get("eye_found") or abs(m["pupil_r"] - marked) > 0.2 * marked:
            shrunk.append((eye.name, round(m.get("pupil_r", 0.0), 1), round(marked, 1)))
    # Measured: none (3, to 9-16 px, when the readings were weighed by their scatter in pixels).
    assert not shrunk, shrunk


def test_development_eyes_are_found_at_any_size_and_place(marked_development: list[MarkedEye]) -> None:
    """From 80 to 400 px across, anywhere in the frame: the pupil within 4 % of the iris's
    radius of the marks (3 px at the IITD size) and the limbus within 7 % (5 px), scaled."""
    rng = np.random.default_rng(18)
    cases, good, missed = 0, 0, []
    for marked in marked_development[::4]:
        image, eye = marked.image, marked.marks
        for diameter in (80, 120, 200, 300, 400):
            scale = diameter / (2 * eye.limbus[2])
            h, w = min(480, round(240 * scale)), min(640, round(320 * scale))
            x, y = int(rng.integers(0, 640 - w + 1)), int(rng.integers(0, 480 - h + 1))
            m = assess_iris(embedded(image, scale, x, y, cases)).metrics
            cases += 1
            if not m.get("eye_found"):
                missed.append((marked.name, diameter))
                continue
            placed = scaled_marks(eye, scale, (x, y))
            (px, py, pr), (lx, ly, ir) = placed.pupil, placed.limbus
            pupil_ok = math.hypot(m["pupil_x"] - px, m["pupil_y"] - py) <= max(1.5, 0.04 * ir) and abs(
                m["pupil_r"] - pr
            ) <= max(1.5, 0.04 * ir)
            limbus_ok = math.hypot(m["iris_x"] - lx, m["iris_y"] - ly) <= max(2.5, 0.07 * ir) and abs(
                m["iris_r"] - ir
            ) <= max(2.5, 0.07 * ir)
            good += pupil_ok and limbus_ok
    assert not missed and good / cases >= 0.7, (good, cases, missed)


def test_a_lash_curtain_does_not_pull_the_upper_lid_down(
    marked_development: list[MarkedEye], curtain_reports: dict[tuple[str, float, int], IrisReport]
) -> None:
    """Dense lashes hung from the marked upper lid of each marked development eye, down to 0.4
    iris radii over the iris (two curtains each): the lid is still found at their roots."""
    within = []
    for eye in marked_development:
        for seed in (0, 1):
            report = curtain_reports.get((eye.name, 0.4, seed))
            found = report and agreement(eye.name, eye.marks, report)
            if found and found.upper_lid is not None:
                within.append(found.upper_lid <= 8.0)
    # Measured: 86 of 100 (70 before the curtain's margin was its darkest row of roots).
    assert sum(within) / len(within) >= 0.78, (sum(within), len(within))


def test_a_lid_low_over_the_iris_behind_a_lash_curtain_is_still_told_open_wider(
    marked_development: list[MarkedEye], curtain_reports: dict[tuple[str, float, int], IrisReport]
) -> None:
    """Curtains of three lengths (0.25, 0.4 and 0.55 iris radii, two each) on each marked
    development eye: where the marks leave less than 70 % of the iris, open_wider is still
    said, though the lashes may hang over the pupil and the walk up from it start in them;
    where they leave more, it is not."""
    covered = {eye.name: marked_usable_area(eye.marks, eye.image.shape) < 0.7 for eye in marked_development}
    missed, wrongly, low = [], [], 0
    for (name, reach, seed), report in curtain_reports.items():
        said = "open_wider" in report.feedback
        low += covered[name]
        if covered[name] and not said:
            missed.append((name, reach, seed))
        elif said and not covered[name]:
            wrongly.append((name, reach, seed))
    # Measured: missed 1 of 36, said wrongly 5 of 264 (missed 6 before a walk starting in
    # lashes took its start for the lid).
    assert len(missed) <= 2 and low >= 30, (missed, low)
    assert len(wrongly) <= 6, wrongly


def test_clumped_lashes_do_not_hide_an_open_iris(marked_development: list[MarkedEye]) -> None:
    """Lashes as real ones hang over an iris seen close up (clumps tapering to their tips, soft
    edged, down to 0.4 and 0.55 iris radii, two curtains each) from the marked upper lid of
    each marked development eye the marks leave at least 80 % of: the usable area is not taken
    for less than 70 %, as it is when the lid is found at the clumps' tips."""
    checks, hidden, n = camera_checks(), [], 0
    for eye in marked_development:
        margin = eye.upper_margin()
        if margin is None or marked_usable_area(eye.marks, eye.image.shape) < 0.8:
            continue
        for reach, seed in [(r, s) for r in (0.4, 0.55) for s in (0, 1)]:
            copy = lash_clumps(eye.image, eye.marks.limbus, margin, reach, seed)
            n += 1
            if assess_iris(copy, checks).metrics["usable_iris_area"] < 0.7:
                hidden.append((eye.name, reach, seed))
    # Measured: 1 of the copies (6 before the curtain check also looked just above the lid).
    assert n >= 120 and len(hidden) <= 2, (n, hidden)


def test_lashes_out_of_focus_are_hung_from_the_margin(marked_development: list[MarkedEye]) -> None:
    """Lashes drooping from a heavy lid hang nearer the lens than the iris and blur into a soft
    dark band (clumps as above, down to 0.4 iris radii, blurred 0.02 and 0.03 iris radii more,
    two curtains each) from the marked upper lid of each marked development eye: the lid is
    found at the margin they hang from, not at their tips, and an eye the marks leave at least
    80 % of is not taken for less than 70 % usable."""
    checks, near, n, hidden, wide = camera_checks(), 0, 0, [], 0
    for eye in marked_development:
        margin = eye.upper_margin()
        if margin is None:
            continue
        open_eye = marked_usable_area(eye.marks, eye.image.shape) >= 0.8
        for soft, seed in [(s, d) for s in (0.02, 0.03) for d in (0, 1)]:
            copy = lash_clumps(eye.image, eye.marks.limbus, margin, 0.4, seed, soft=soft)
            report = assess_iris(copy, checks)
            n += 1
            near += eye.upper_lid_found(report)
            if open_eye:
                wide += 1
                if report.metrics["usable_iris_area"] < 0.7:
                    hidden.append((eye.name, soft, seed))
    # Measured: 168 of 200 within 8 px (167 before a crest of lash-dark pixels much less dense
    # than the densest was passed over, LID_BAND_RIVAL; 84 while only a lid along strands, 0.15
    # and over, was taken to lie in a curtain; 168 before a band too dark to see iris through
    # was left out of these curtains, 163 while that darkness was read just above the lid rather
    # than 0.15-0.25 iris radii up), and 2 of 128 open eyes hidden (5).
    assert n >= 190 and near >= 150, (near, n)
    assert wide >= 120 and len(hidden) <= 4, hidden


def test_lashes_that_hide_the_iris_end_the_iris_seen(marked_development: list[MarkedEye]) -> None:
    """Lashes so dense over the top of the iris that nothing of it is seen between them
    (groundtruth.degraded_eyes.lash_mass, hiding it down to 0.15 and 0.3 iris radii below the
    marked upper lid of each marked development eye, two masses each): the lid is found at
    their lower edge, where the iris seen ends, not up at the roots as under a curtain the
    iris shows through."""
    near, n = 0, 0
    for eye in marked_development:
        margin = eye.upper_margin()
        if margin is None:
            continue
        for depth, seed in [(d, s) for d in (0.15, 0.3) for s in (0, 1)]:
            copy = lash_mass(eye.image, eye.marks.limbus, margin, depth, seed)
            lowered = MarkedEye(eye.name, copy, upper_lid_lowered(eye.marks, depth))
            n += 1
            near += lowered.upper_lid_found(assess_iris(copy))
    # Measured: 180 of 200 within 8 px (179 before LID_BAND_RIVAL); 144 while the iris was
    # looked for between the strands just above the lid (up to 0.1 iris radii, among the ragged
    # tips) rather than 0.15-0.25 iris radii up, and only for a soft dark band; 107 while a soft
    # dark band was always taken for a curtain out of focus, however dark between its strands.
    assert n >= 190 and near >= 165, (near, n)


def test_lashes_on_the_skin_do_not_lift_the_lid(marked_development: list[MarkedEye]) -> None:
    """Dense dark lashes curled up over the skin above the marked upper lid of each marked
    development eye (groundtruth.degraded_eyes.lashes_on_skin, up to 0.3 and 0.5 iris radii,
    two each): the lid stays at the margin below them, although it is a little along strands
    where they begin; a curtain out of focus is told from them by its darkness between the
    strands."""
    near, n = 0, 0
    for eye in marked_development:
        margin = eye.upper_margin()
        if margin is None:
            continue
        for reach, seed in [(r, s) for r in (0.3, 0.5) for s in (0, 1)]:
            copy = lashes_on_skin(eye.image, eye.marks.limbus, margin, reach, seed)
            n += 1
            near += eye.upper_lid_found(assess_iris(copy))
    # Measured: 166 of 200 within 8 px (164 before LID_BAND_RIVAL); 161 before curtains out of
    # focus were looked for, and as they came in; 154 when any lid over -0.1 along strands was
    # taken to lie in a curtain.
    assert n >= 190 and near >= 158, (near, n)


def test_a_dark_iris_in_good_light_is_not_too_dark(
    marked_development: list[MarkedEye], development_reports: dict[str, IrisReport]
) -> None:
    """Each marked development eye that passes, its iris made as dark as a heavily pigmented
    one (median grey 50; the darkest development iris reads 77) under the same light: not
    too_dark, which asks for more light; the same eye at a quarter of the light still is."""
    checks, dark, passing, lost = camera_checks(), [], 0, []
    for eye in marked_development:
        if not development_reports[eye.name].passed:
            continue
        passing += 1
        report = assess_iris(darker_iris(eye.image, marked_iris(eye.marks, eye.image.shape)[1]), checks)
        if "too_dark" in report.feedback:
            dark.append(eye.name)
        elif not report.passed:
            lost.append((eye.name, report.feedback))
        assert assess_iris(darkened(eye.image), checks).feedback[:1] == ["too_dark"], eye.name
    # Measured: none too_dark (every one before the sclera's light was asked too), and
    # 1 of the 44 copies refused for something else (open_wider: its lid found higher).
    assert passing >= 40 and not dark, dark
    assert len(lost) <= 2, lost


# Where the illuminator's image in glasses is laid (direction in degrees, y downwards; distance
# in iris radii from the iris's centre): over the upper iris, where it often covers the upper
# lid's margin, beside the pupil, and over the lower iris, where it may cover the lower lid's.
GLARE_PLACES = ((-60.0, 0.6), (-120.0, 0.6), (0.0, 0.7), (90.0, 0.65))


def test_glare_from_glasses_is_not_taken_for_a_lid(
    marked_development: list[MarkedEye], development_reports: dict[str, IrisReport]
) -> None:
    """The illuminator's image in an applicant's glasses, a saturated patch 0.6 x 0.36 iris
    radii, laid over each marked development eye in four places: the lids are still found
    where the marks put them (the walks give no point where they met glare), and an eye whose
    lids leave enough iris is not told to open wider for what the glare hides: the glare is
    what to change."""
    checks = camera_checks()
    upper, lower, wrongly = [], [], []
    for eye in marked_development:
        for where in GLARE_PLACES:
            report = assess_iris(glasses_glare(eye.image, eye.marks.limbus, where), checks)
            found = agreement(eye.name, eye.marks, report)
            if found.upper_lid is not None:
                upper.append(found.upper_lid <= 8.0)
            if found.lower_lid is not None:
                lower.append(found.lower_lid <= 8.0)
            if "open_wider" in report.feedback and "open_wider" not in development_reports[eye.name].feedback:
                wrongly.append((eye.name, where))
    # Measured: upper lids 177 of 200 within 8 px, lower 166 of 184, open_wider said for the
    # glare none of 200 times (91, 149 and 117 before glare was told from a lid).
    assert sum(upper) / len(upper) >= 0.85, (sum(upper), len(upper))
    assert sum(lower) / len(lower) >= 0.87, (sum(lower), len(lower))
    assert len(wrongly) <= 2, wrongly


def test_glare_across_the_pupil_s_edge_is_told_as_a_reflection(
    marked_development: list[MarkedEye],
    development_reports: dict[str, IrisReport],
    held_out_reports: dict[str, IrisReport],
) -> None:
    """Glasses glare laid across the top of the pupil's edge cuts the pupil the assessor sees
    (its circle comes out too small): every such copy is told reflection_on_iris first, what
    to change; and no plain eye of either half has glare at its pupil's edge."""
    checks = camera_checks()
    told = [
        assess_iris(glasses_glare(eye.image, eye.marks.limbus, (-90.0, 0.35)), checks).feedback[:1]
        for eye in marked_development
    ]
    # Measured: 50 of 50 (1 before: open_wider, too_bright, or a pass with the pupil wrong).
    assert told.count(["reflection_on_iris"]) == len(told), told
    plain = [*development_reports.values(), *held_out_reports.values()]
    assert all(r.metrics.get("glare_at_pupil_edge", 0.0) == 0.0 for r in plain)


def test_over_exposed_eyes_and_lowered_lids_are_not_told_glare() -> None:
    """Bright is not glare: every IITD eye lit 2.2 times too strongly (its sclera near or at
    saturation, its iris too bright) is told what it was before glare was looked for, mostly
    too_bright, never reflection_on_iris first; every eye under a lid lowered over its iris
    (flat skin grey or its own skin's texture, on the circles found and, where marked, on the
    marked ones) is told open_wider, though the skin may saturate by the pupil's edge."""
    marks = load_marks(IITD_MARKS)
    bright, lids = [], []
    for path in sorted(IITD_DIR.glob("*.png")):
        image = grey(path)
        bright.append(assess_iris(np.clip(image * 2.2, 0, 255).astype(np.uint8)).feedback[:1])
        found = assess_iris(image).circles()
        placed = [found] if found else []
        if path.name in marks:
            placed.append((marks[path.name].pupil, marks[path.name].limbus))
        for pupil, iris in placed:
            for name in ("lid_flat", "lid_textured"):
                lowered = DEGRADATIONS[name][1](image, iris, pupil)
                lids.append((path.name, name, assess_iris(lowered).feedback[:1]))
    # Measured: too_bright first for 127 of 156 (move_closer, off_center, open_wider or
    # look_at_camera for the rest, as before), reflection_on_iris never (4 times, and once for a
    # lowered lid, while glare at the pupil's edge was any large saturated patch).
    assert ["reflection_on_iris"] not in bright and bright.count(["too_bright"]) >= 120, bright
    assert all(told == ["open_wider"] for *_, told in lids), [row for row in lids if row[2] != ["open_wider"]]


@pytest.mark.parametrize("gamma", [0.45, 0.7, 1.4, 2.2])
def test_another_camera_s_tone_curve_keeps_the_lids(
    gamma: float, marked_development: list[MarkedEye]
) -> None:
    """The marked development eyes through a camera's tone curve (grey raised to a gamma of 0.7
    or 1.4, an ordinary difference between cameras; 0.45 and 2.2, one camera's grey encoded
    for a screen and the other's linear): the lids are still found where marked."""
    checks = camera_checks()
    rows = [
        agreement(eye.name, eye.marks, assess_iris(toned(eye.image, gamma), checks))
        for eye in marked_development
    ]
    summary = summarise(rows)
    # Measured, upper / lower: 0.84 / 0.935 at 0.45, 0.86 / 0.957 at 0.7, 0.92 / 0.978 at 1.4 and
    # 0.82 / 0.870 at 2.2 since the lower lid's skin is also read against the iris just above it
    # (0.84 / 0.89, 0.86 / 0.91, 0.90 / 0.93 and 0.82 / 0.89 before, at stop 50; 0.82 / 0.87,
    # 0.90 / 0.89, 0.92 / 0.91 and 0.88 / 0.89 when the tone table came in); 0.80 / 0.85,
    # 0.88 / 0.89, 0.90 / 0.87 and 0.64 / 0.78 while the lids were looked for on the greys as they
    # came (lower lids 0.67 and 0.78 at 0.7 and 1.4 while the lower lid's skin was told from the
    # iris by a share of iris - pupil).
    assert summary["upper_lid_within_8px"] >= 0.8, summary
    assert summary["lower_lid_within_8px"] >= 0.85, summary


@pytest.mark.parametrize("scale", [0.45, 0.6, 0.75])
def test_a_smaller_eye_from_another_camera_keeps_the_lids(
    scale: float, marked_development: list[MarkedEye]
) -> None:
    """The marked development eyes shrunk as another camera would frame them, an iris 90-150 px
    across instead of about 200: the lids are still found where marked, within 8 px at the
    IITD size (scaled with the eye)."""
    lids, missed = [], []
    for eye in marked_development:
        small = cv2.resize(eye.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        row = agreement(eye.name, scaled_marks(eye.marks, scale), assess_iris(small))
        for part in ("upper_lid", "lower_lid"):
            error = getattr(row, part)
            if error is not None or not row.found:
                lids.append(row.found and error / scale <= 8.0)
                if not lids[-1]:
                    missed.append((eye.name, part, error and round(error / scale, 1)))
    # Measured, the upper and lower lids pooled (96 in all): 0.938, 0.906 and 0.969 at 0.45, 0.6
    # and 0.75 (0.938 at 0.75, a frame 180 px high, while frames under 240 px were searched for
    # the limbus at full size: HALF_SIZE_FROM); 0.917, 0.896 and 0.927 at an earlier stop; 0.844,
    # 0.896 and 0.875 while an eye smaller than the lids' work size was looked at its own size.
    assert sum(lids) / len(lids) >= 0.88, missed


@pytest.mark.parametrize(("turn", "pooled", "upper"), [(12.0, 0.88, 0.85), (15.0, 0.84, 0.8)])
def test_a_head_tilted_to_one_side_keeps_the_lids(
    marked_development: list[MarkedEye], turn: float, pooled: float, upper: float
) -> None:
    """The marked development eyes turned 12 and 15 degrees either way, as the head of an
    applicant lying in bed or unable to hold it upright is: the lids, tilted with it, are
    still found where marked, within 8 px at their three columns."""
    checks = camera_checks()
    rows = []
    for eye, degrees in itertools.product(marked_development, (-turn, turn)):
        image, marks = turned(eye.image, eye.marks, degrees)
        rows.append(agreement(f"{eye.name} {degrees:+.0f}", marks, assess_iris(image, checks)))
    summary = summarise(rows)
    # Measured, upper and lower lids pooled (192 in all), at 12 degrees: 0.911 (upper 88 of
    # 100, lower 87 of 92) with the lids looked for again on a copy turned level
    # (levelled_eyelids); 0.854 (upper 82, lower 82) without; 0.844 (upper 78) while the upper
    # walk was drawn to level with the shape's full pull; 0.719 (68 and 70) while the lower
    # walk was too. At 15 degrees: 0.880 (upper 85, lower 84) with, 0.771 (75 and 73) without.
    assert summary["lids_within_8px"] >= pooled, summary
    assert summary["upper_lid_within_8px"] >= upper, summary


@pytest.mark.parametrize("corner", [0.35, 0.5])
def test_light_falling_off_towards_the_frame_s_edges_keeps_the_lower_lid(
    marked_development: list[MarkedEye], corner: float
) -> None:
    """The marked development eyes, which fill their frames, with the corners at 0.35 and half
    the centre's light (groundtruth.degraded_eyes.vignetted): the skin below the lower lid
    darkens more than the lighter lower iris above it, and the lid must not be found up in the
    iris."""
    rows = [
        agreement(eye.name, eye.marks, assess_iris(vignetted(eye.image, corner)))
        for eye in marked_development
    ]
    summary = summarise(rows)
    # Measured: 40 of 46 at both. 37 and 38 (001_03_L's lid 48 px up, at the pupil) while the
    # bright side's cut going down had no floor (LID_SKIN_FLOOR); 34 at 0.5 while it was taken
    # from the iris's middle alone; the eyes as they are, 44.
    assert summary["lower_lid_within_8px"] >= 0.86, [
        (r.image, r.lower_lid) for r in rows if r.lid_ok("lower_lid") is False
    ]


def upper_lids_in_light(
    eyes: list[MarkedEye], light: Callable[[np.ndarray, float], np.ndarray], shares: tuple[float, ...]
) -> tuple[float, list[tuple[str, float | None]]]:
    """The share of the eyes' upper lids found within 8 px under `light` at each of `shares`,
    and the copies whose lid was missed."""
    rows = [
        agreement(f"{eye.name} {share}", eye.marks, assess_iris(light(eye.image, share)))
        for eye in eyes
        for share in shares
    ]
    missed = [(r.image, r.upper_lid) for r in rows if r.lid_ok("upper_lid") is False]
    return summarise(rows)["upper_lid_within_8px"], missed


def test_light_falling_off_towards_the_top_keeps_the_upper_lid(marked_development: list[MarkedEye]) -> None:
    """The marked development eyes lit from below (an illuminator under the lens, a brow's
    shadow), the top of the frame at 0.92 and 0.85 of the bottom's light: the upper iris,
    a little darker, must not be taken for the lid's band of lashes, nor the lid move down."""
    within, missed = upper_lids_in_light(marked_development, lit_from_below, LIT_FROM_BELOW)
    # Measured: 96 of 100 (49 of 50 as they are); 92 (029_03_L's and 036_01_L's upper lids 19 and
    # 14-15 px below the marks under both) while any crest of lash-dark pixels over half the
    # curve's width was the root band, however much denser the margin's above it (LID_BAND_RIVAL).
    assert within >= 0.95, missed


def test_light_falling_off_towards_the_bottom_keeps_the_upper_lid(
    marked_development: list[MarkedEye],
) -> None:
    """The marked development eyes lit from above (an illuminator over the lens, a lamp
    overhead), the bottom row at 0.85 and 0.7 of the top row's light: the upper iris and the
    tear film along the margin, a little brighter, must not be taken for the lid's skin, which
    would leave the lid in the lashes below the margin."""
    within, missed = upper_lids_in_light(marked_development, lit_from_above, LIT_FROM_ABOVE)
    # Measured: 94 of 100 (49 of 50 as they are); 91 (022_01_L's and 022_03_L's upper lids 9 px
    # low at 0.85) while a curve with 0.15 of its pixels skin-bright was the lid's skin
    # (LID_BAND_SKIN).
    assert within >= 0.93, missed


def test_an_eye_smeared_by_a_motion_is_told_to_hold_still() -> None:
    """Each development eye (all 76) smeared by a motion of 9 px, in four directions, is told
    hold_still first; as it is and smeared by 3 px, it is not. (The iris is about 200 px
    across: 9 px blurs its texture past what the focus check lets through.)"""
    checks = camera_checks()
    still, short, long = [], [], []
    for path in iitd_halves()[0]:
        image = grey(path)
        still.append("hold_still" in assess_iris(image, checks).feedback)
        for angle in (0.0, 45.0, 90.0, 135.0):
            smeared = (
                assess_iris(cv2.filter2D(image, -1, motion_kernel(length, angle)), checks)
                for length in (3, 9)
            )
            short.append("hold_still" in next(smeared).feedback)
            long.append(next(smeared).feedback[:1] == ["hold_still"])
    # Measured: 289 of 304 smears told hold_still first (10 pass, 5 open_wider); 0 of 76 as
    # they are and 0 of 304 smears of 3 px. Before the spread between orientations was taken
    # in quadrature, from the widest but one, 198 of 304 smears of 9 px were told so (92 passed).
    assert sum(long) >= 0.9 * len(long), f"{sum(long)} of {len(long)}"
    assert not any(still) and sum(short) <= 0.01 * len(short), (sum(still), sum(short))


@pytest.mark.parametrize("scale", [0.99, 0.9])
def test_a_frame_a_little_smaller_finds_the_same_limbus(scale: float) -> None:
    """Each development eye (all 76, marked or not) shrunk to a frame a little under its
    320 x 240, as a crop or another camera gives it: the limbus is found where it is found on
    the eye as it is (scaled back, within 10 px in centre and radius), not on the iris's
    texture inside it."""
    apart = []
    for path in iitd_halves()[0]:
        image = grey(path)
        seen = assess_iris(image).metrics
        small = assess_iris(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)).metrics
        x, y = (out_of_copy(small[f"iris_{axis}"], scale) for axis in "xy")
        distance = max(
            math.hypot(x - seen["iris_x"], y - seen["iris_y"]), abs(small["iris_r"] / scale - seen["iris_r"])
        )
        apart.append((round(distance, 1), path.name))
    # Measured: none over 10 px at either scale, all but one within 3 px (015_06_R, whose iris
    # runs past the frame's top: 5.2 and 9.9 px); 6 and 2 of 76, 21-43 px off, while only frames
    # 240 px high or more were searched on a half-size copy (HALF_SIZE_FROM).
    assert sum(d > 10.0 for d, _ in apart) <= 1, sorted(apart)[-8:]


@pytest.mark.parametrize("scale", [1.75, 2.0])
def test_an_eye_close_to_the_camera_finds_the_same_limbus(scale: float) -> None:
    """Each development eye (all 76) enlarged to a frame of 560 x 420 or 640 x 480, an iris
    350-400 px across (the issue's largest; the kit camera close up): the limbus is found where
    it is found on the eye as it is (scaled back, within 10 px in centre and radius), not on the
    iris's texture inside it."""
    apart = []
    for path in iitd_halves()[0]:
        image = grey(path)
        seen = assess_iris(image).metrics
        large = assess_iris(
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        ).metrics
        if "iris_x" not in large:
            apart.append((math.inf, path.name))
            continue
        x, y = (out_of_copy(large[f"iris_{axis}"], scale) for axis in "xy")
        distance = max(
            math.hypot(x - seen["iris_x"], y - seen["iris_y"]), abs(large["iris_r"] / scale - seen["iris_r"])
        )
        apart.append((round(distance, 1), path.name))
    # Measured: none over 10 px at either scale, the farthest 7.5 and 4.9 px; 3 and 7 of 76,
    # 35-64 px off (092_01_L: radius 118 px for 185 at 2), while every frame of 160 px and
    # more was searched for the limbus on its half-size copy (LIMBUS_LARGEST_IN_COPY).
    assert sum(d > 10.0 for d, _ in apart) == 0, sorted(apart)[-8:]


def test_a_mirrored_eye_s_limbus_and_upper_lid_are_found_as_the_eye_s() -> None:
    """A left eye is a right eye's mirror image: on each development eye (all 76, marked or
    not) and its mirror image, the limbus and the upper lid are found in the same place (the
    mirror's, mirrored back: the limbus within 1 px in x, y and radius, the lid within 3 px at
    its three columns)."""
    limbus_apart, lid_apart = [], []
    for path in iitd_halves()[0]:
        image = grey(path)
        width = image.shape[1]
        seen, mirrored = assess_iris(image).metrics, assess_iris(cv2.flip(image, 1)).metrics
        limbus_apart.append(
            max(
                abs(seen["iris_x"] - (width - 1 - mirrored["iris_x"])),
                abs(seen["iris_y"] - mirrored["iris_y"]),
                abs(seen["iris_r"] - mirrored["iris_r"]),
            )
        )
        lid_apart.append(
            max(
                abs(seen[f"upper_eyelid_y{a}"] - mirrored[f"upper_eyelid_y{b}"])
                for a, b in (("", ""), ("_left", "_right"), ("_right", "_left"))
            )
        )
    # Measured: the limbus within 1 px on 68 of 76 (at most 3.1 px apart), the upper lid within
    # 3 px on 73 (at most 5.4 px): 74 before the lids found tilted were looked for again on a
    # turned copy, 064_01_L (its iris past the frame's edge, its lid tilted 11-12 degrees) then
    # 2.1 px apart, 3.9 now. While the half-size copy the limbus is looked for on was read
    # half a pixel off (one way on the eye, the other on its mirror) and the left sector's rays
    # were not the right's mirror: the limbus 24 of 76 (5.3 px), the lid 72 (7 px).
    assert sum(a <= 1.0 for a in limbus_apart) >= 64, sorted(limbus_apart)[-10:]
    assert sum(a <= 3.0 for a in lid_apart) >= 73 and max(lid_apart) <= 6.0, sorted(lid_apart)[-6:]


def test_the_upper_lid_hardly_depends_on_a_small_limbus_error(
    monkeypatch: pytest.MonkeyPatch,
    marked_development: list[MarkedEye],
    development_reports: dict[str, IrisReport],
) -> None:
    """The limbus found 2 px off (each way in x, y and radius: within the issue's 5 px) on each
    marked development eye: the upper lid found moves by at most 6 px nearly always. A margin
    with bare skin and then the lid's own lashes above it once jumped 25 px up to those
    lashes for such an error."""
    checks = camera_checks()
    found_limbus = iris_quality.limbus
    moved, cases = [], 0
    for eye in marked_development:
        upper = development_reports[eye.name].metrics.get("upper_eyelid_y")
        if upper is None:
            continue
        for error in ((2, 0, 0), (-2, 0, 0), (0, 2, 0), (0, -2, 0), (0, 0, 2), (0, 0, -2)):

            def off(*args: object, error: tuple[int, int, int] = error) -> tuple[float, ...] | None:
                circle = found_limbus(*args)
                return None if circle is None else tuple(v + e for v, e in zip(circle, error, strict=True))

            monkeypatch.setattr(iris_quality, "limbus", off)
            now = assess_iris(eye.image, checks).metrics.get("upper_eyelid_y")
            monkeypatch.undo()
            cases += 1
            if now is None or abs(now - upper) > 6.0:
                moved.append((eye.name, error, now and round(now - upper, 1)))
    # Measured: 1 of 300 (6 before a curve over the lid's skin ended the search for the lashes'
    # root band).
    assert len(moved) <= 3, (cases, moved)


def moved_sideways(image: np.ndarray, dx: int, seed: int) -> np.ndarray:
    """The frame's content moved `dx` px right (left when negative), skin-grey noise where
    it leaves a gap."""
    width = image.shape[1]
    fill = float(np.median(image[:, :8] if dx > 0 else image[:, -8:]))
    frame = np.random.default_rng(seed).normal(fill, 3.0, image.shape)
    if dx > 0:
        frame[:, dx:] = image[:, : width - dx]
    else:
        frame[:, : width + dx] = image[:, -dx:]
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_development_eyes_past_the_frame_s_side_are_off_center(
    marked_development: list[MarkedEye], development_reports: dict[str, IrisReport]
) -> None:
    """A development eye that passes, moved so its marked limbus runs past the frame's left or
    right edge: 0.05 iris radii past (the 320 x 240 camera allows 0.1) it still passes; 0.3
    past it is refused, mostly off_center, which needs the limbus followed past the edge
    rather than shrunk into the frame. Only where the frame holds the sclera on the other side
    (0.3 iris radii past the limbus): moved away from it, an eye already at one edge has no
    sclera left at all, only the fill, and an iris no darker than what surrounds it is a
    closed eye (open_wider), as it should be."""
    checks = camera_checks()
    slightly, far, off_center = [], [], 0
    for eye in marked_development:
        if not development_reports[eye.name].passed:
            continue
        image = eye.image
        ix, _, ir = eye.marks.limbus
        for seed, (past, side) in enumerate([(0.05, -1), (0.05, 1), (0.3, -1), (0.3, 1)]):
            gap = ix - ir if side < 0 else image.shape[1] - 1 - ix - ir
            other_gap = image.shape[1] - 1 - ix - ir if side < 0 else ix - ir
            if other_gap < 0.3 * ir:
                continue
            report = assess_iris(moved_sideways(image, round(side * (gap + past * ir)), seed), checks)
            (slightly if past < 0.1 else far).append(report.passed)
            off_center += past > 0.1 and "off_center" in report.feedback
    # Measured: 72 of 75 pass slightly past; 67 of 75 refused far past, 61 of them off_center.
    # 66 and 58 while an iris little darker than the one sclera left in the frame was taken
    # for a closed eye (open_wider): in near-infrared the nasal side's is often 130-140 against
    # an iris of 110-130, the other side's 180-190.
    assert sum(slightly) / len(slightly) >= 0.9, (sum(slightly), len(slightly))
    assert 1 - sum(far) / len(far) >= 0.8, (sum(far), len(far))
    assert off_center / len(far) >= 0.7, (off_center, len(far))


def test_an_open_eye_at_the_kit_frame_s_side_is_told_to_move_not_to_open_wider(
    marked_development: list[MarkedEye], development_reports: dict[str, IrisReport]
) -> None:
    """Each development eye that passes, enlarged to a 240 px iris (the kit camera's) in a 640 x
    480 frame, its marked limbus at the frame's left or right edge: one sclera is out of the
    frame, and what to say first is off_center (the kit's checks want 0.6 iris radii of room),
    never open_wider for an eye that is open."""
    told, others = 0, []
    for n, eye in enumerate(e for e in marked_development if development_reports[e.name].passed):
        ix, iy, ir = eye.marks.limbus
        scale = 120.0 / ir
        for side in (-1, 1):
            x = -(ix - ir) * scale if side < 0 else 639 - (ix + ir) * scale
            feedback = assess_iris(embedded(eye.image, scale, round(x), round(240 - iy * scale), n)).feedback
            told += feedback[:1] == ["off_center"]
            if feedback[:1] != ["off_center"]:
                others.append((eye.name, side, feedback))
    # Measured: off_center first on 84 of 86 (the two others: an eye whose lids leave less
    # than 70 % of its iris, open_wider with off_center; a limbus found 0.2 radii inside the
    # marks, its sclera samples on the iris). 80 while an iris little darker than the one
    # sclera left in the frame was taken for a closed eye.
    assert told >= 82, (told, others)


def test_the_held_out_contact_sheet_is_drawn(
    held_out: list[Path], held_out_images: dict[str, np.ndarray], held_out_reports: dict[str, IrisReport]
) -> None:
    """artifacts/iris_held_out_contact_sheet.png: every held-out eye, its marks in green when
    it has them, what the assessor found in magenta, its verdict in the title."""
    marks = load_marks(IITD_MARKS)
    pictures = []
    for path in held_out:
        report = held_out_reports[path.name]
        verdict = "pass" if report.passed else ",".join(report.feedback[:2])
        title = f"{path.stem} {report.score:.0f} {verdict}"
        pictures.append(draw_eye(held_out_images[path.name], marks.get(path.name), report.metrics, 1, title))
    sheet = contact_sheet(pictures, columns=6)
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "iris_held_out_contact_sheet.png"
    assert cv2.imwrite(str(target), sheet)
    assert cv2.imread(str(target)).shape == sheet.shape


def test_kitctl_judges_another_camera_s_eyes_with_its_config(
    held_out: list[Path], held_out_reports: dict[str, IrisReport]
) -> None:
    """The way a technician does it (README): kitctl with the camera's checks as a config."""
    paths = held_out[:4]
    result = subprocess.run(
        [venv_script("kitctl"), "quality", "iris", "--config", str(CAMERA_320), "--json", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for path, line in zip(paths, lines, strict=True):
        report = held_out_reports[path.name]
        assert (line["score"], line["passed"], line["feedback"]) == (
            report.score,
            report.passed,
            report.feedback,
        )
