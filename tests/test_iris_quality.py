"""Tests of the iris quality assessor (kitd/capture/iris_quality.py).

Calibration and held-out data: the assessor's constants and default thresholds were set
on synthetic eyes (hil.synthetic_eye) with seeds 1-5 only. These tests run the simulated
ladders on the held-out seeds 11-13, and the real near-infrared eye of
../shared/fixtures/open-iris (never used to set a constant, see the note on
max_edge_width_px in DEFAULT_THRESHOLDS) with its hand-measured circles and its own
degradation ladders. Tests that need ../shared/fixtures skip, saying so, when it is absent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.synthetic_eye import EyeParams, eyelids, motion_kernel, noise_bank, render, with_noise
from kitd.capture.iris_overlay import draw_assessment
from kitd.capture.iris_quality import (
    DEFAULT_THRESHOLDS,
    FEEDBACK_CODES,
    FEEDBACK_MESSAGES,
    FEEDBACK_PRIORITY,
    METRIC_DESCRIPTIONS,
    IrisReport,
    assess_iris,
)
from kitd.capture.iris_segmentation import LID_TONE_RANGE, lid_reference_above, lid_tone_table

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
REAL_EYE = REPO.parent / "shared" / "fixtures" / "open-iris" / "anonymized.png"
HELD_OUT_SEEDS = (11, 12, 13)

needs_real_eye = pytest.mark.skipif(
    not REAL_EYE.is_file(), reason=f"real near-infrared eye not found at {REAL_EYE} (../shared/fixtures)"
)

# Hand measurement of the real eye: boundary points read off zoomed crops and grey profiles
# along rays (where the grey crosses half-way between the two sides: pupil ~30 / iris ~65,
# iris ~105 / sclera ~185), avoiding the lashes, the lids and the reflections; a circle is
# fitted through them. The upper limbus is under the lid, so its points are the sides and
# the bottom.
HAND_PUPIL_POINTS = [
    (390, 234), (387, 250), (381, 264), (370, 276), (359, 288), (344, 296), (328, 298), (311, 296),
    (296, 289), (283, 279), (274, 265), (268, 250), (267, 234), (269, 218), (274, 203), (283, 189),
    (296, 179), (312, 172), (328, 170), (345, 171), (361, 177), (374, 188), (383, 202), (389, 218),
]  # fmt: skip
HAND_LIMBUS_POINTS = [
    (426, 170), (437, 189), (444, 209), (446, 230), (445, 252), (439, 272), (429, 291), (215, 292),
    (206, 272), (201, 251), (201, 230), (206, 209), (212, 190), (224, 173), (401, 323), (384, 335),
    (365, 346), (323, 354), (302, 352), (281, 346), (261, 338), (243, 325),
]  # fmt: skip
HAND_PUPIL = (328.1, 233.2, 63.0)  # x, y, r in pixels: the circle through HAND_PUPIL_POINTS
HAND_IRIS = (323.4, 233.2, 121.2)  # the circle through HAND_LIMBUS_POINTS
# The upper lid over the pupil's columns: where the grey crosses half-way between the lid
# skin just above the margin (~155-180) and the tear film's dark line under it (~60), on
# columns x 290, 310, 330, 350, 370 (5 px averaged): y 157.1, 155.9, 154.0, 154.4, 156.1.
HAND_UPPER_LID_Y = 155.5


def circle_through(points: list[tuple[int, int]]) -> tuple[float, float, float]:
    p = np.asarray(points, np.float64)
    a = np.c_[2 * p[:, 0], 2 * p[:, 1], np.ones(len(p))]
    cx, cy, c = np.linalg.lstsq(a, (p**2).sum(axis=1), rcond=None)[0]
    return float(cx), float(cy), float(math.sqrt(c + cx * cx + cy * cy))


def real_eye() -> np.ndarray:
    image = cv2.imread(str(REAL_EYE), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def simulated(seed: int, **changes: object) -> np.ndarray:
    """A held-out synthetic eye with the simulator's sensor noise."""
    image, _ = render(EyeParams(seed=seed, **changes))  # type: ignore[arg-type]
    return with_noise(image, noise_bank(2.0, image.shape, 1, seed)[0])


def close(a: tuple[float, float, float], b: tuple[float, float, float], tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --- the report ---------------------------------------------------------------------------------


def test_feedback_codes_are_the_issue_s_eleven_and_grainy_each_with_both_languages() -> None:
    # `grainy` came with issue 18: sensor noise (gain turned up for want of light).
    assert FEEDBACK_CODES == (
        "no_eye", "open_wider", "move_closer", "move_back", "off_center", "look_at_camera",
        "hold_still", "out_of_focus", "too_dark", "too_bright", "grainy", "reflection_on_iris",
    )  # fmt: skip
    assert sorted(FEEDBACK_PRIORITY) == sorted(FEEDBACK_CODES)


def test_readme_gives_the_feedback_order_the_assessor_uses() -> None:
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert ", ".join(f"`{code}`" for code in FEEDBACK_PRIORITY) in readme
    for code in FEEDBACK_CODES:
        indonesian, english = FEEDBACK_MESSAGES[code]
        assert indonesian and english and indonesian != english


def test_report_shape_and_metrics_are_described() -> None:
    report = assess_iris(simulated(11))
    assert isinstance(report, IrisReport)
    data = report.to_json()
    assert set(data) == {"score", "passed", "metrics", "feedback"}
    assert set(report.metrics) == set(METRIC_DESCRIPTIONS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in report.metrics.values())
    assert report.passed and report.feedback == [] and 0 <= report.score <= 100
    assert report.messages("id") == [] and report.circles() is not None


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
@pytest.mark.parametrize(
    "changes",
    [{}, {"iris_x": 250.0, "iris_y": 260.0}, {"iris_r": 140.0, "pupil_r": 60.0}, {"pupil_r": 30.0}],
    ids=["default", "moved", "larger", "small-pupil"],
)
def test_located_circles_match_the_simulator_s_truth(seed: int, changes: dict) -> None:
    image, truth = render(EyeParams(seed=seed, **changes))
    report = assess_iris(with_noise(image, noise_bank(2.0, image.shape, 1, seed)[0]))
    pupil, iris = report.circles() or ((0, 0, 0), (0, 0, 0))
    assert close(pupil, truth.pupil, 2.0), (pupil, truth.pupil)
    assert close(iris, truth.iris, 3.0), (iris, truth.iris)


def test_the_lids_tone_table_brings_an_iris_back_into_the_development_eyes_range() -> None:
    """Pupil 5, sclera 205: an iris at 0.3 of the way up (a camera whose tone curve darkens
    the middle greys) is brought to the range's lower end, one at 0.85 to its upper end;
    one inside the range is left alone, and so are greys past the pupil's and the sclera's."""
    lo, hi = LID_TONE_RANGE
    assert lid_tone_table(5.0, 5.0 + 200.0 * 0.5 * (lo + hi), 205.0) is None
    assert lid_tone_table(5.0, 100.0, 9.0) is None  # no span between pupil and sclera
    for share, end in ((0.3, lo), (0.85, hi)):
        table = lid_tone_table(5.0, 5.0 + 200.0 * share, 205.0)
        assert table is not None and table.dtype == np.uint8 and table.shape == (256,)
        assert abs(int(table[round(5 + 200 * share)]) - (5 + 200 * end)) <= 1
        assert (np.diff(table.astype(int)) >= 0).all()
        assert (table[:6] == np.arange(6)).all() and (table[205:] == np.arange(205, 256)).all()


def test_no_eye_frames_say_no_eye_and_carry_no_circles() -> None:
    rng = np.random.default_rng(7)
    frames = {
        "skin": simulated(11, eye=False),
        "black": np.zeros((480, 640), np.uint8),
        "grey": np.full((480, 640), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640), dtype=np.uint8),
        "white": np.full((480, 640), 255, np.uint8),
    }
    for name, frame in frames.items():
        report = assess_iris(frame)
        # A burnt-out frame may hide an eye: what to change is the light.
        assert report.feedback == (["too_bright"] if name == "white" else ["no_eye"]), name
        # The same whatever form the frame comes in (burnt out is judged on its grey).
        for form in (cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), frame.astype(np.float32) / 255.0):
            assert assess_iris(form).feedback == report.feedback, name
        assert not report.passed and report.score == 0.0, name
        assert "pupil_x" not in report.metrics and "iris_r" not in report.metrics, name
        assert report.circles() is None


def test_any_size_colour_and_float_frames() -> None:
    base = simulated(12)
    reference = assess_iris(base).circles()
    assert reference is not None
    for factor in (0.5, 2.0):
        scaled = cv2.resize(base, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        pupil, iris = assess_iris(scaled).circles() or ((0, 0, 0), (0, 0, 0))
        expected_pupil = tuple(v * factor for v in reference[0])
        expected_iris = tuple(v * factor for v in reference[1])
        assert close(pupil, expected_pupil, 2.0 * max(factor, 1)), (factor, pupil)  # type: ignore[arg-type]
        assert close(iris, expected_iris, 3.0 * max(factor, 1)), (factor, iris)  # type: ignore[arg-type]
    colour = assess_iris(cv2.cvtColor(base, cv2.COLOR_GRAY2BGR))
    as_float = assess_iris(base.astype(np.float32) / 255.0)
    plain = assess_iris(base)
    assert colour.metrics == plain.metrics and as_float.circles() is not None


def test_thresholds_override_and_unknown_names_are_refused() -> None:
    frame = simulated(13)
    assert assess_iris(frame).passed
    strict = assess_iris(frame, {"min_iris_diameter": 300})
    assert not strict.passed and strict.feedback[0] == "move_closer"
    assert "move_closer" in strict.failed_checks
    with pytest.raises(ValueError, match="min_iris_diametre"):
        assess_iris(frame, {"min_iris_diametre": 300})
    with pytest.raises(ValueError, match="16 x 16"):
        assess_iris(np.zeros((8, 8), np.uint8))


def test_any_threshold_at_0_still_gives_a_report() -> None:
    """A threshold of 0 (a minimum size turned off, or a maximum no eye meets) still gives a
    report: the score's knees that scale with a threshold must not divide by it."""
    frame = simulated(13)
    for name in DEFAULT_THRESHOLDS:
        report = assess_iris(frame, {name: 0})
        assert 0.0 <= report.score <= 100.0, name
    assert assess_iris(frame, {"min_iris_diameter": 0}).passed


def test_defaults_hold_the_issue_s_210_px_gate() -> None:
    assert DEFAULT_THRESHOLDS["min_iris_diameter"] == 210.0

    # ...and the default assessment applies it: an iris of 220 px is near enough, 200 px is not.
    def eye(iris_r: float) -> np.ndarray:
        glint = ((320 + 0.16 * iris_r, 240 - 0.16 * iris_r),)
        return simulated(13, iris_r=iris_r, pupil_r=0.39 * iris_r, reflections=glint)

    near, far = assess_iris(eye(110.0)), assess_iris(eye(100.0))
    assert near.metrics["iris_diameter"] >= 210.0 > far.metrics["iris_diameter"]
    assert "move_closer" not in near.failed_checks, near.failed_checks
    assert "move_closer" in far.failed_checks, far.failed_checks


# --- the real eye -------------------------------------------------------------------------------


@needs_real_eye
def test_real_eye_circles_lie_on_the_hand_measured_boundaries() -> None:
    assert close(circle_through(HAND_PUPIL_POINTS), HAND_PUPIL, 0.15)
    assert close(circle_through(HAND_LIMBUS_POINTS), HAND_IRIS, 0.15)
    image = real_eye()
    report = assess_iris(image)
    circles = report.circles()
    assert circles is not None
    pupil, iris = circles
    # The drawn artifact: hand circles in white (thin), located ones in colour.
    ARTIFACTS.mkdir(exist_ok=True)
    picture = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for x, y, r in (HAND_PUPIL, HAND_IRIS):
        cv2.circle(picture, (round(x), round(y)), round(r), (255, 255, 255), 1, cv2.LINE_AA)
    for x, y in HAND_PUPIL_POINTS + HAND_LIMBUS_POINTS:
        cv2.drawMarker(picture, (x, y), (255, 255, 255), cv2.MARKER_CROSS, 5, 1)
    draw_assessment(picture, report)
    cv2.imwrite(str(ARTIFACTS / "iris_real_eye_circles.png"), picture)
    assert close(pupil, HAND_PUPIL, 5.0), pupil
    assert close(iris, HAND_IRIS, 5.0), iris
    assert abs(report.metrics["upper_eyelid_y"] - HAND_UPPER_LID_Y) <= 5.0, report.metrics
    # Wide enough, mostly visible (the upper lid hides about a fifth), in focus, lit well.
    m = report.metrics
    assert m["iris_diameter"] >= 210 and 0.7 <= m["usable_iris_area"] <= 0.9
    assert m["edge_width_px"] < DEFAULT_THRESHOLDS["max_edge_width_px"]
    assert DEFAULT_THRESHOLDS["min_iris_grey"] < m["iris_grey"] < DEFAULT_THRESHOLDS["max_iris_grey"]


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
@pytest.mark.parametrize("spot", [(338.0, 222.0), (321.0, 268.0)], ids=["upper-pupil", "lower-pupil"])
def test_eyelid_boundaries_match_the_simulator_s_lids(seed: int, spot: tuple[float, float]) -> None:
    """From wide open to the lid over the pupil's centre: both lids within 5 px of where the
    simulator drew them, over the iris's centre. The illuminator's spot in the pupil, high
    (hidden once the lid comes down) or low (still seen under it), is not taken for the lid."""
    for opening in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
        params = EyeParams(seed=seed, eyelid=opening, reflections=(spot,))
        upper, lower = (float(v[0]) for v in eyelids(params, np.array([params.iris_x])))
        m = assess_iris(simulated(seed, eyelid=opening, reflections=(spot,))).metrics
        assert abs(m["upper_eyelid_y"] - upper) <= 5.0, (opening, upper, m["upper_eyelid_y"])
        # Wide open, the lower lid is just under the limbus: the limbus is where the iris ends.
        assert abs(m["lower_eyelid_y"] - min(lower, params.iris_y + params.iris_r)) <= 5.0, (opening, m)


@needs_real_eye
def test_real_eye_passes_the_gate() -> None:
    # Among what it passes with: the tear film's glint where the upper lid meets the iris
    # (about x 316, y 158-162: 4-6 px under the lid margin) is not a reflection on the iris.
    assert (real_eye()[158:163, 315:320] >= 250).any()
    report = assess_iris(real_eye())
    assert report.passed, report.feedback
    assert report.metrics["reflection_on_iris"] == 0.0


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
@pytest.mark.parametrize("side", [-1, 1])
def test_a_glint_at_the_lid_margin_is_not_a_reflection_on_the_iris(seed: int, side: int) -> None:
    """The same spot: in the tear film just under the upper lid it is not counted; on the
    upper iris, 24 px and more below the lid, it is (and is not taken for the lid). (The
    tear film's reach is 0.15 iris radii, 17 px here, from the lid as found, which sits up
    to 3 px below the drawn one at these columns: a spot 20 px down is on that line.)"""
    params = EyeParams(seed=seed, eyelid=0.8)
    x = params.iris_x + side * 65.0
    lid_y = float(eyelids(params, np.array([x]))[0][0])
    image = simulated(seed, eyelid=0.8)
    for below in (0.0, 4.0, 8.0):
        report = assess_iris(reflection_at(image, x, lid_y + below))
        assert "reflection_on_iris" not in report.feedback, (below, report.metrics)
    for below in (24.0, 30.0, 40.0):
        report = assess_iris(reflection_at(image, x, lid_y + below))
        assert report.feedback[:1] == ["reflection_on_iris"], (below, report.feedback, report.metrics)


@pytest.mark.parametrize("iris_r", [90.0, 115.0])
def test_the_illuminator_s_own_glint_by_a_small_pupil_is_not_glasses_glare(iris_r: float) -> None:
    """The illuminator's image on the cornea has one size whatever the pupil: by a small pupil
    (16-24 px) it is still far smaller than glare in glasses, in the pupil, on its edge or
    beside it, and the pupil's edge is not said to be under glare."""
    for pupil_r in (16.0, 18.0, 20.0, 22.0, 24.0):
        edge = 0.74 * pupil_r  # on the pupil's edge, up and to the right (as 0.7 x 1.05 of it)
        for glint in ((338.0, 222.0), (320.0 + edge, 240.0 - edge)):
            for seed in HELD_OUT_SEEDS[:2]:
                image = simulated(seed, iris_r=iris_r, pupil_r=pupil_r, reflections=(glint,))
                metrics = assess_iris(image).metrics
                assert metrics["glare_at_pupil_edge"] == 0.0, (pupil_r, glint, seed)


# --- degradation ladders ------------------------------------------------------------------------


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image


def moved(image: np.ndarray, length: float) -> np.ndarray:
    return cv2.filter2D(image, -1, motion_kernel(length, 20.0)) if length >= 2 else image


def exposed(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def skin_grey(image: np.ndarray) -> int:
    return int(np.median(image))


def rescaled(image: np.ndarray, factor: float, centre: tuple[float, float]) -> np.ndarray:
    """The frame as seen from nearer (factor > 1) or farther, about `centre`; skin-grey beyond."""
    matrix = cv2.getRotationMatrix2D(centre, 0.0, factor)
    h, w = image.shape
    return cv2.warpAffine(
        image,
        matrix,
        (w, h),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=skin_grey(image),
    )


def shifted(image: np.ndarray, dx: float) -> np.ndarray:
    h, w = image.shape
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=skin_grey(image))


def turned(image: np.ndarray, squeeze: float, centre: tuple[float, float]) -> np.ndarray:
    """Foreshortened across: what a look to the side does to pupil and iris."""
    cx, _ = centre
    matrix = np.float32([[squeeze, 0, cx * (1 - squeeze)], [0, 1, 0]])
    h, w = image.shape
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def lid_lowered(image: np.ndarray, lid_y: float, centre_x: float) -> np.ndarray:
    """An upper lid (skin, dark margin) lowered to `lid_y` over the iris centre, curving up at the sides."""
    h, w = image.shape
    out = image.copy()
    xs = np.arange(w)
    edge = lid_y - 120.0 * np.clip(np.abs(xs - centre_x) / 260.0, 0, 1) ** 2
    rows = np.arange(h)[:, None]
    out[rows < edge[None, :]] = 200
    margin = (rows >= edge[None, :] - 3) & (rows < edge[None, :] + 2)
    out[margin] = 45
    return out


def reflection_at(image: np.ndarray, x: float, y: float) -> np.ndarray:
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    spot = 255.0 * np.clip(1.6 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.5**2)), 0, 1)
    return np.maximum(image.astype(np.float32), spot).astype(np.uint8)


def faded(image: np.ndarray, alpha: float) -> np.ndarray:
    """The eye fading into the surrounding skin (alpha 1: the eye, 0: nothing but skin)."""
    skin = np.full_like(image, int(np.percentile(image, 75)))
    return (alpha * image.astype(np.float32) + (1 - alpha) * skin).astype(np.uint8)


Ladder = tuple[str, Callable[[np.ndarray, float], np.ndarray], list[float], int]

# (expected code, degrade(image, step), steps, index of the first step that must fail).
# Steps before that index must pass; from it on, each must fail with the code first.
REAL_CENTRE = (328.0, 233.0)
REAL_LADDERS: dict[str, Ladder] = {
    "blur": ("out_of_focus", blurred, [0.0, 0.8, 2.5, 3.0, 4.0], 2),
    "motion": ("hold_still", moved, [0.0, 3.0, 10.0, 14.0, 20.0], 2),
    # The eye's own lid is at y 153-161 over the iris (HAND_UPPER_LID_Y): a lid lowered to
    # 150 hides nothing more than it does, so the ladder's second step is a little below it.
    "eyelid": ("open_wider", lambda im, y: lid_lowered(im, y, 325.0), [120.0, 160.0, 195.0, 215.0, 240.0], 2),
    "gaze": ("look_at_camera", lambda im, s: turned(im, s, REAL_CENTRE), [1.0, 0.97, 0.82, 0.75, 0.7], 2),
    "under-exposure": ("too_dark", exposed, [1.0, 0.85, 0.55, 0.45, 0.35], 2),
    "over-exposure": ("too_bright", exposed, [1.0, 1.15, 1.9, 2.2, 2.6], 2),
    "smaller": ("move_closer", lambda im, f: rescaled(im, f, REAL_CENTRE), [1.0, 0.9, 0.8, 0.7, 0.6], 2),
    "larger": ("move_back", lambda im, f: rescaled(im, f, REAL_CENTRE), [1.0, 1.2, 1.5, 1.6, 1.7], 2),
    "towards the edge": ("off_center", shifted, [0.0, -80.0, -140.0, -160.0, -180.0], 2),
    "reflection onto the iris": (
        "reflection_on_iris",
        lambda im, dx: reflection_at(im, 328.0 + dx, 238.0),
        [0.0, 30.0, 85.0, 95.0, 105.0],
        2,
    ),
    "no eye": ("no_eye", faded, [1.0, 0.9, 0.15, 0.05, 0.0], 2),
}

SIM_LADDERS: dict[str, tuple[str, Callable[[float], dict], list[float], int]] = {
    "blur": ("out_of_focus", lambda v: {"blur": v}, [0.0, 1.0, 3.0, 4.0, 5.0], 2),
    "motion": ("hold_still", lambda v: {"motion": v, "motion_angle": 20.0}, [0.0, 4.0, 11.0, 12.5, 14.0], 2),
    "eyelid": ("open_wider", lambda v: {"eyelid": v}, [1.0, 0.9, 0.65, 0.58, 0.5], 2),
    "gaze": ("look_at_camera", lambda v: {"gaze_dx": v}, [0.0, 20.0, 50.0, 60.0, 70.0], 2),
    "under-exposure": ("too_dark", lambda v: {"exposure": v}, [1.0, 0.8, 0.45, 0.35, 0.25], 2),
    "over-exposure": ("too_bright", lambda v: {"exposure": v}, [1.0, 1.3, 1.7, 1.85, 2.0], 2),
    "smaller": (
        "move_closer",
        lambda v: {"iris_r": v, "pupil_r": v * 0.39, "reflections": ((320 + 0.16 * v, 240 - 0.16 * v),)},
        [115.0, 108.0, 95.0, 85.0, 75.0],
        2,
    ),
    "larger": (
        "move_back",
        lambda v: {"iris_r": v, "pupil_r": v * 0.39, "reflections": ((320 + 0.16 * v, 240 - 0.16 * v),)},
        [115.0, 150.0, 185.0, 195.0, 205.0],
        2,
    ),
    "towards the edge": (
        "off_center",
        lambda v: {"iris_x": v, "reflections": ((v + 18.0, 222.0),)},
        [320.0, 220.0, 170.0, 150.0, 130.0],
        2,
    ),
    "reflection onto the iris": (
        "reflection_on_iris",
        lambda v: {"reflections": ((v, 240.0 - 0.1 * (v - 320.0)),)},
        [338.0, 350.0, 385.0, 395.0, 405.0],
        2,
    ),
    "no eye": ("no_eye", lambda v: {"eye": v >= 0.5}, [1.0, 1.0, 0.0, 0.0, 0.0], 2),
}

# Scores along a ladder must not rise by more than this between steps (metrics of a frame
# carry a little noise; a degradation that has not yet reached its knee leaves them flat).
# The real eye moved by 0-3 whole pixels, nothing else changed, scores over a range of 1.8.
SCORE_SLACK = 2.0


def check_ladder(name: str, code: str, reports: list[IrisReport], fail_from: int) -> None:
    scores = [r.score for r in reports]
    for before, after in zip(scores, scores[1:], strict=False):
        assert after <= before + SCORE_SLACK, f"{name}: scores {scores} rise"
    assert scores[-1] < scores[0] - 30, f"{name}: scores {scores} hardly fall"
    for i, report in enumerate(reports):
        if i < fail_from:
            assert report.passed, f"{name} step {i}: {report.feedback} {report.failed_checks} ({scores})"
        else:
            assert not report.passed, f"{name} step {i} passed ({scores})"
            assert report.feedback[0] == code, f"{name} step {i}: {report.feedback} ({scores})"


@needs_real_eye
@pytest.mark.parametrize("name", list(REAL_LADDERS))
def test_real_eye_degradation_ladders(name: str) -> None:
    code, degrade, steps, fail_from = REAL_LADDERS[name]
    image = real_eye()
    reports = [assess_iris(degrade(image, step)) for step in steps]
    check_ladder(name, code, reports, fail_from)


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
@pytest.mark.parametrize("name", list(SIM_LADDERS))
def test_simulated_eye_degradation_ladders(name: str, seed: int) -> None:
    code, changes, steps, fail_from = SIM_LADDERS[name]
    reports = [assess_iris(simulated(seed, **changes(step))) for step in steps]
    check_ladder(name, code, reports, fail_from)


@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_an_eye_closing_past_half_is_told_to_open_wider(seed: int) -> None:
    """Past the ladder's end: the lid over the pupil's centre (0.45, 0.4) still leaves an eye
    to locate, and open_wider comes first; closed further, what is left of the eye is a sliver
    or nothing, and the officer hears open_wider or no_eye, never to move the camera."""
    for opening in (0.45, 0.4):
        report = assess_iris(simulated(seed, eyelid=opening))
        assert report.feedback[:1] == ["open_wider"], (opening, report.feedback, report.metrics)
    for opening in (0.35, 0.3, 0.2, 0.1, 0.0):
        report = assess_iris(simulated(seed, eyelid=opening))
        assert report.feedback[0] in ("open_wider", "no_eye"), (opening, report.feedback, report.metrics)


def test_overlay_draws_the_circles_and_no_words() -> None:
    frame = simulated(11, eyelid=0.55)
    report = assess_iris(frame)
    assert report.feedback[0] == "open_wider"
    canvas = cv2.cvtColor(cv2.resize(frame, (480, 360), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    before = canvas.copy()
    draw_assessment(canvas, report, 0.75)
    changed = np.any(canvas != before, axis=2)
    (px, py, pr), (ix, iy, ir) = report.circles()  # type: ignore[misc]
    # Pixels on the drawn pupil and limbus circles changed; where the message (top left) and
    # the score (bottom left) used to be, nothing did: the page says those.
    for x, y, r in ((px, py, pr), (ix, iy, ir)):
        on_circle = [
            changed[round((y + r * math.sin(a)) * 0.75), round((x + r * math.cos(a)) * 0.75)]
            for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)
            if 0 <= (y + r * math.sin(a)) * 0.75 < 359 and 0 <= (x + r * math.cos(a)) * 0.75 < 479
        ]
        assert np.mean(on_circle) > 0.8
    assert not changed[:60, :240].any() and not changed[-30:, :80].any()


def test_the_lower_lid_s_reference_is_the_iris_a_run_s_length_above() -> None:
    """Each row's reference is the mean of the rows of its column that end `gap` rows above it,
    so that a run of skin starting at a row never sets its own reference."""
    column = np.array([[10.0], [20.0], [30.0], [40.0], [200.0], [200.0], [200.0]])
    reference = lid_reference_above(column, rows=2, gap=2)[:, 0]
    assert np.isneginf(reference[:2]).all()
    assert reference[2] == 10.0  # only row 0 lies far enough above
    assert reference[4] == 25.0  # rows 1 and 2
    assert reference[5] == 35.0  # rows 2 and 3: the skin from row 4 on is not in it
    assert reference[6] == 120.0
