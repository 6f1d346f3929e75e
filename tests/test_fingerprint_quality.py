"""Tests of the fingerprint quality assessor (kitd/capture/fingerprint_quality.py).

The score's two weights are fitted to NFIQ 2 on FVC2002 DB1_B and DB4_B; its rank
correlation with NFIQ 2 and its gate are checked here finger by finger (leave one
finger out, see groundtruth/fingerprint_agreement.py). The degradation ladders run
on DB1_B prints (they check behaviour, not the calibration). Tests that need
../shared/fixtures skip with the reason when it is absent.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from groundtruth import fingerprint_agreement as agreement
from hil.synthetic_finger import CONDITIONS, render_finger
from kitd.capture.fingerprint_quality import (
    DEFAULT_THRESHOLDS,
    FEEDBACK_CODES,
    FEEDBACK_MESSAGES,
    METRIC_DESCRIPTIONS,
    SCORE_MODEL,
    FingerprintReport,
    assess_fingerprint,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
FVC = FIXTURES / "fvc2002-db1b"
FVC_DB4 = FIXTURES / "fvc2002-db4b"
NB1010_FRAME = FIXTURES / "nb1010" / "capture.png"
DATA = Path(__file__).resolve().parent / "data"
NB1010_REPORT = DATA / "nb1010_capture_quality.json"

needs_fvc = pytest.mark.skipif(
    not FVC.is_dir(), reason=f"FVC2002 DB1_B fixtures not found at {FVC} (../shared/fixtures)"
)
needs_both_sets = pytest.mark.skipif(
    not (FVC.is_dir() and FVC_DB4.is_dir()),
    reason=f"FVC2002 DB1_B and DB4_B fixtures not found under {FIXTURES} (../shared/fixtures)",
)
needs_nb1010 = pytest.mark.skipif(
    not NB1010_FRAME.is_file(), reason=f"NB-1010 frame not found at {NB1010_FRAME}"
)

FVC_PPI = 500.0


# --- helpers -----------------------------------------------------------------------


def fvc(name: str) -> np.ndarray:
    image = cv2.imread(str(FVC / name), cv2.IMREAD_GRAYSCALE)
    assert image is not None, name
    return image


# --- API -------------------------------------------------------------------------


def test_feedback_codes_and_messages() -> None:
    assert set(FEEDBACK_CODES) == {
        "no_finger",
        "press_harder",
        "too_wet",
        "too_dry",
        "off_center",
        "partial",
        "smudged",
        "dirty_sensor",
    }
    assert set(FEEDBACK_MESSAGES) == set(FEEDBACK_CODES)
    for indonesian, english in FEEDBACK_MESSAGES.values():
        assert indonesian and english and indonesian != english
    assert FEEDBACK_MESSAGES["press_harder"][0] == "Tekan jari lebih kuat"


def test_report_shape_and_json() -> None:
    report = assess_fingerprint(render_finger(1, "good"), 385.0)
    assert isinstance(report, FingerprintReport)
    assert 0.0 <= report.score <= 100.0
    data = report.to_json()
    assert set(data) == {"score", "passed", "metrics", "feedback"}
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    assert all(isinstance(v, float) for v in report.metrics.values())
    assert set(report.metrics) == set(METRIC_DESCRIPTIONS)
    for key in (
        "foreground_area_mm2",
        "centroid_offset",
        "mean_grey",
        "ridge_contrast",
        "orientation_certainty",
        "ridge_continuity",
        "ridge_period_mm",
        "frequency_plausibility",
        "minutiae_estimate",
    ):
        assert key in report.metrics
    assert report.passed and report.feedback == [] and report.failed_checks == []


def test_pure_and_deterministic() -> None:
    image = render_finger(2, "dry")
    before = image.copy()
    first = assess_fingerprint(image, 385.0)
    assert np.array_equal(image, before)
    assert assess_fingerprint(image, 385.0) == first


def test_accepts_colour_and_float_images() -> None:
    grey = render_finger(4, "good")
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    assert assess_fingerprint(colour, 385.0).score == assess_fingerprint(grey, 385.0).score
    assert assess_fingerprint(grey / 255.0, 385.0).passed


def test_thresholds_override_and_validation() -> None:
    image = render_finger(5, "good")
    assert assess_fingerprint(image, 385.0).passed
    strict = assess_fingerprint(image, 385.0, {"min_score": 99.0})
    assert not strict.passed and "min_score" in strict.failed_checks
    assert strict.feedback  # still tells the officer something to try
    tiny = assess_fingerprint(image, 385.0, {"min_foreground_area_mm2": 400.0})
    assert tiny.feedback[0] == "partial"
    with pytest.raises(ValueError, match="unknown"):
        assess_fingerprint(image, 385.0, {"min_scroe": 10})
    with pytest.raises(ValueError):
        assess_fingerprint(image, 0.0)
    with pytest.raises(ValueError):
        assess_fingerprint(np.zeros((0, 0), np.uint8), 385.0)


def test_default_thresholds_are_numbers() -> None:
    assert DEFAULT_THRESHOLDS and all(isinstance(v, float) for v in DEFAULT_THRESHOLDS.values())


@pytest.mark.parametrize(
    "blank",
    [
        np.full((180, 256), 229, np.uint8),
        np.full((500, 500), 255, np.uint8),
        np.clip(np.random.default_rng(0).normal(229, 3, (180, 256)), 0, 255).astype(np.uint8),
        np.zeros((180, 256), np.uint8),
    ],
    ids=["nb1010-empty", "white-500", "sensor-noise", "black"],
)
def test_blank_is_no_finger(blank: np.ndarray) -> None:
    report = assess_fingerprint(blank, 385.0 if blank.shape == (180, 256) else 500.0)
    assert report.feedback == ["no_finger"] and not report.passed and report.score == 0.0


def test_tiny_frames_do_not_crash() -> None:
    for shape in ((5, 5), (20, 30), (1, 400)):
        report = assess_fingerprint(np.full(shape, 200, np.uint8), 500.0)
        assert report.feedback == ["no_finger"]


# --- synthetic fingers of every condition ---------------------------------------------

EXPECTED_CODE = {"light": "press_harder", "wet": "too_wet", "dry": "too_dry"}


@pytest.mark.parametrize(
    ("width", "height", "ppi"),
    [(256, 180, 385.0), (333, 234, 500.0), (500, 500, 500.0)],
    ids=["nb1010", "nb1010-area-at-500ppi", "500x500"],
)
@pytest.mark.parametrize("condition", CONDITIONS)
def test_synthetic_condition_gets_its_code(condition: str, width: int, height: int, ppi: float) -> None:
    for seed in range(6):
        report = assess_fingerprint(render_finger(seed, condition, width=width, height=height, ppi=ppi), ppi)
        if condition == "good":
            assert report.passed, (seed, report)
        else:
            expected = EXPECTED_CODE.get(condition, condition)
            assert not report.passed, (seed, report)
            assert report.feedback and report.feedback[0] == expected, (seed, report)


# --- NFIQ 2 rank correlation -------------------------------------------------------


def test_rank_statistics() -> None:
    assert agreement.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert agreement.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert list(agreement.ranks([3.0, 1.0, 3.0, 2.0])) == [2.5, 0.0, 2.5, 1.0]
    assert agreement.spearman([1, 1, 1], [1, 2, 3]) == 0.0
    # Fingers resampled whole: with two fingers that disagree, the interval is wide.
    x = [1, 2, 3, 4, 5, 6, 7, 8]
    y = [1, 2, 3, 4, 8, 7, 6, 5]
    low, high = agreement.bootstrap_interval(x, y, ["a"] * 4 + ["b"] * 4, rounds=400)
    assert low < agreement.spearman(x, y) < high and high - low > 0.3


def assert_gate_meets_the_issue(gate: dict[str, dict[str, int]]) -> None:
    """Issue 19: the gate passes >= 90 % of the prints NFIQ 2 scores >= 50 and fails >= 90 %
    of those it scores < 30."""
    good, poor = gate[">=50"], gate["<30"]
    assert good["pass"] >= 0.9 * (good["pass"] + good["fail"]), gate
    assert poor["fail"] >= 0.9 * (poor["pass"] + poor["fail"]), gate


@pytest.fixture(scope="module")
def measured_prints() -> list[agreement.Print]:
    prints = agreement.load_prints(FIXTURES)
    agreement.measure(prints, FIXTURES)
    return prints


@needs_both_sets
def test_score_model_is_the_fit_on_every_print(measured_prints: list[agreement.Print]) -> None:
    """The shipped weights are what the documented fit gives (no hand edits)."""
    assert len(measured_prints) == 160
    fitted = agreement.fit_score_model(measured_prints)
    assert set(fitted) == set(SCORE_MODEL)
    for key, value in fitted.items():
        assert SCORE_MODEL[key] == pytest.approx(value, abs=1e-3, rel=1e-3), key


@needs_both_sets
def test_cross_validated_agreement_with_nfiq2(measured_prints: list[agreement.Print]) -> None:
    """Leave one finger out: rank correlation per set and pooled, and the gate's table.

    Floors are the figures measured when the model was fitted, rounded down (issue
    19 asks 0.85 for each; DB1_B and DB4_B alone stay below it, see the closing
    note); the gate meets the issue's 90% on both sides.
    """
    scores = agreement.cross_validated_scores(measured_prints)
    passed = agreement.cross_validated_passes(measured_prints, scores)
    result = agreement.agreement(measured_prints, scores, passed)
    agreement.print_report(result, "\nleave one finger out")
    assert result["db1b"]["spearman"] >= 0.72
    assert result["db4b"]["spearman"] >= 0.76
    assert result["pooled"]["spearman"] >= 0.85
    assert_gate_meets_the_issue(result["pooled"]["gate"])


@needs_both_sets
def test_nfiq2_agrees_with_itself_only_so_far() -> None:
    """The yardstick of the floors above: NFIQ 2 of each print cropped by a few pixels,
    turned 2 degrees or mirrored (tables by bench/make_nfiq2_reference.py --altered),
    ranked against NFIQ 2 of the print. Within a set it agrees with itself at 0.82-0.87
    once the copy is turned, mirrored or cropped by 4 px, the level issue 19 asks of our
    score; a table out of step with its prints ranks near 0, a copy of the references at 1.
    """
    results = agreement.retest_agreement(agreement.load_prints(FIXTURES))
    assert set(results) == {
        "crop_top_1",
        "crop_left_1",
        "crop_corner_2",
        "crop_sides_4",
        "turn_plus_2",
        "turn_minus_2",
        "mirror",
    }
    for alteration in ("crop_sides_4", "turn_plus_2", "turn_minus_2", "mirror"):
        result = results[alteration]
        for name in ("db1b", "db4b"):
            assert 0.75 <= result[name]["spearman"] <= 0.9, (alteration, name, result[name])
        assert 0.9 <= result["pooled"]["spearman"] < 0.97, (alteration, result["pooled"])


# --- degradation ladders --------------------------------------------------------------
# Each ladder degrades a clean calibration print step by step. The score must not
# rise along it (a rise of up to 0.5 is allowed: foreground blocks at the print's
# edge can flip either way at a mild step) and ends well below where it started;
# the print passes at step 0 and fails from the stated step on (by a check or by
# the score); every failing step's first feedback code names the degradation.

PX_MM = FVC_PPI / 25.4


def _background() -> int:
    return 255  # the FVC optical sensor's empty glass


def blur(img: np.ndarray, sigma_mm: float) -> np.ndarray:
    return img if sigma_mm == 0 else cv2.GaussianBlur(img, (0, 0), sigma_mm * PX_MM)


def add_noise(img: np.ndarray, sigma: float) -> np.ndarray:
    """Grey noise and dark specks of dust, as a dirty window gives."""
    rng = np.random.default_rng(1)
    out = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape)
    specks = rng.random(img.shape) < sigma / 1000.0
    out[specks] = rng.uniform(0, 80, int(specks.sum()))
    return np.clip(out, 0, 255).astype(np.uint8)


def lose_contrast(img: np.ndarray, k: float) -> np.ndarray:
    """Ridges fade towards the empty glass: a lighter and lighter press."""
    bg = _background()
    return np.clip(bg - (bg - img.astype(np.float32)) * k, 0, 255).astype(np.uint8)


def _print_mask(img: np.ndarray) -> np.ndarray:
    return cv2.blur((img < 200).astype(np.float32), (31, 31)) > 0.15


def keep_part(img: np.ndarray, fraction: float) -> np.ndarray:
    """Only a disc of ``fraction`` of the print's area, around its centre, touches."""
    mask = _print_mask(img)
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    radius = math.sqrt(mask.sum() * fraction / math.pi)
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    out = img.copy()
    out[(yy - cy) ** 2 + (xx - cx) ** 2 > radius * radius] = _background()
    return out


def shift(img: np.ndarray, fraction: float) -> np.ndarray:
    """Move the print sideways by ``fraction`` of the frame width, away from the centre."""
    h, w = img.shape
    cx = np.nonzero(_print_mask(img))[1].mean()
    dx = fraction * w * (1.0 if cx >= w / 2 else -1.0)
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(img, matrix, (w, h), borderValue=_background())


def wet(img: np.ndarray, step: int) -> np.ndarray:
    """Ridges spread (grey erosion), the film of water darkens and softens it all."""
    if step == 0:
        return img
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * step + 1,) * 2)
    out = cv2.erode(img, kernel).astype(np.float32) * (1.0 - 0.12 * step)
    return np.clip(cv2.GaussianBlur(out, (0, 0), 0.4 * step), 0, 255).astype(np.uint8)


def dry(img: np.ndarray, step: int) -> np.ndarray:
    """Ridges thin (grey dilation) and break where dry skin does not touch."""
    if step == 0:
        return img
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * step + 1,) * 2)
    out = cv2.dilate(img, kernel)
    rng = np.random.default_rng(2)
    gaps = cv2.GaussianBlur(rng.random(img.shape).astype(np.float32), (0, 0), 2.0)
    gaps = (gaps - gaps.mean()) / gaps.std()
    out[gaps > 1.2 - 0.3 * step] = _background()
    return out


# name: (degrade, steps, index of the first step that must fail, expected code)
LADDERS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], list[float], int, str]] = {
    "blur": (blur, [0, 0.04, 0.08, 0.12, 0.16, 0.2], 3, "smudged"),  # sigma in mm
    "noise": (add_noise, [0, 4, 8, 16, 24, 32], 3, "dirty_sensor"),  # grey levels
    "contrast": (lose_contrast, [1.0, 0.8, 0.6, 0.45, 0.3, 0.2], 4, "press_harder"),
    "partial": (keep_part, [1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.12], 5, "partial"),  # area kept
    "shift": (shift, [0, 0.08, 0.16, 0.24, 0.32, 0.4], 3, "off_center"),  # frame widths
    "wet": (wet, [0, 1, 2, 3, 4], 2, "too_wet"),
    "dry": (dry, [0, 1, 2], 2, "too_dry"),
}
LADDER_PRINTS = ["101_6.tif", "102_6.tif", "103_3.tif", "104_4.tif", "105_7.tif"]


@needs_fvc
@pytest.mark.parametrize("ladder", sorted(LADDERS))
@pytest.mark.parametrize("name", LADDER_PRINTS)
def test_degradation_ladder(ladder: str, name: str) -> None:
    degrade, steps, fails_from, code = LADDERS[ladder]
    clean = fvc(name)
    reports = [assess_fingerprint(degrade(clean, step), FVC_PPI) for step in steps]
    scores = [r.score for r in reports]
    print(
        f"\n{ladder} on {name}: "
        + ", ".join(f"{s}: {r.score:.1f}" for s, r in zip(steps, reports, strict=True))
    )
    assert reports[0].passed, reports[0]
    for before, after in zip(scores, scores[1:], strict=False):
        assert after <= before + 0.5, scores
    assert max(scores[fails_from:]) < scores[0] and scores[-1] == min(scores), scores
    for index, (step, report) in enumerate(zip(steps, reports, strict=True)):
        if index >= fails_from:
            assert not report.passed, (step, report)
        if not report.passed:
            assert report.feedback[0] == code, (step, report)


# --- the real NB-1010 frame --------------------------------------------------------


def _regression_entry(report: FingerprintReport) -> dict[str, object]:
    return {
        "source": "../shared/fixtures/nb1010/capture.png (as read by cv2.imread, BGR), ppi 385",
        **report.to_json(),
        "failed_checks": report.failed_checks,
    }


@needs_fvc
def test_a_finger_filling_the_nb1010_window_is_no_dirty_sensor() -> None:
    """Every DB1_B print NFIQ 2 scores >= 50, cut to the NB-1010's window: the finger covers
    it all, and its wet or smeared spots are the print's, not dirt on the glass (three such
    windows read as a dirty sensor when dirt was judged over every block without ridges)."""
    good = [p for p in agreement.load_prints(FIXTURES) if p.set == "db1b" and p.nfiq2 >= 50]
    dirty = []
    for p in good:
        report = assess_fingerprint(agreement.nb1010_window(fvc(p.file)), agreement.NB1010_PPI)
        if "dirty_sensor" in report.failed_checks:
            dirty.append((p.file, report.metrics["noise"]))
    assert len(good) >= 60 and not dirty, dirty


@needs_both_sets
def test_the_nb1010_window_ranks_like_nfiq2() -> None:
    """Each print cut to the NB-1010's window at its 385 ppi, ranked against NFIQ 2 of the
    same window (tables by bench/make_nfiq2_reference.py --window): the finger fills such a
    window, so the score cannot lean on the print's area. Measured: 0.730 / 0.681 / 0.852,
    the gate 57 of 62 good passed and 32 of 34 poor failed (pooled 0.791 while sharp
    windows read as a dirty sensor; plain orientation certainty: 0.579 / 0.701 / 0.781)."""
    result = agreement.window_agreement(agreement.load_prints(FIXTURES), FIXTURES)
    assert result["pooled"]["prints"] == 160
    agreement.print_report(result, "\nNB-1010 window")
    assert result["db1b"]["spearman"] >= 0.7 and result["db4b"]["spearman"] >= 0.65
    assert result["pooled"]["spearman"] >= 0.83
    assert_gate_meets_the_issue(result["pooled"]["gate"])


@needs_nb1010
def test_nb1010_frame_regression() -> None:
    """The real sensor's frame is assessed without error and as it was when recorded.

    Regenerate after a deliberate change of the assessor with
    ``KITD_UPDATE_REGRESSION=1 .venv/bin/pytest tests/test_fingerprint_quality.py -k nb1010``.
    """
    frame = cv2.imread(str(NB1010_FRAME), cv2.IMREAD_COLOR)  # RGB file with equal channels
    assert frame is not None and frame.shape == (180, 256, 3)
    report = assess_fingerprint(frame, 385.0)
    entry = _regression_entry(report)
    if os.environ.get("KITD_UPDATE_REGRESSION") == "1":
        NB1010_REPORT.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    kept = json.loads(NB1010_REPORT.read_text())
    print(f"\nNB-1010 frame: {json.dumps(report.to_json())}")
    assert report.passed == kept["passed"]
    assert report.feedback == kept["feedback"]
    assert report.failed_checks == kept["failed_checks"]
    assert report.score == pytest.approx(kept["score"], abs=0.5)
    assert set(report.metrics) == set(kept["metrics"])
    for key, value in kept["metrics"].items():
        # Small slack for OpenCV/numpy builds that round differently.
        assert report.metrics[key] == pytest.approx(value, rel=0.02, abs=0.02), key
