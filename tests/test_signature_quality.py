"""Tests of the signature quality assessor (kitd/capture/signature_quality.py).

Metrics against hand-computed recordings; degradation ladders from simulated
signatures (hil.synthetic_signature, every style); the hand-made signatures of
tests/data/signatures/ with their expected verdicts (the policy is in drawings.toml).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hil.hand_drawn import Hand, draw_signature, load_drawings, recording, recording_json
from hil.synthetic_signature import synthetic_signature
from kitd.capture.signature import PadInfo, PenPoint, Signature, signature_facts, signature_from_json
from kitd.capture.signature_quality import (
    DEFAULT_THRESHOLDS,
    FEEDBACK_CODES,
    FEEDBACK_MESSAGES,
    FEEDBACK_PRIORITY,
    METRIC_DESCRIPTIONS,
    SignatureReport,
    assess_signature,
)
from kitd.config import threshold_defaults

DATA = Path(__file__).parent / "data" / "signatures"
DRAWINGS = DATA / "drawings.toml"
PAD = PadInfo(max_x=9600, max_y=6000, max_pressure=1023, firmware=4660)


def synthetic(seed: int, style: str = "steady") -> Signature:
    packets = synthetic_signature(
        seed, max_x=PAD.max_x, max_y=PAD.max_y, max_pressure=PAD.max_pressure, style=style
    )
    return recording(PAD, packets)


def point(
    t_ms: float, x: int, y: int, pressure: int = 0, tip: bool = True, proximity: bool = True
) -> PenPoint:
    return PenPoint(t_ms, x, y, pressure, tip, proximity)


# --- API ----------------------------------------------------------------------------------


def test_feedback_codes_and_messages() -> None:
    assert FEEDBACK_CODES == (
        "empty",
        "too_few_points",
        "too_short",
        "dot_or_line",
        "too_small",
        "no_pressure",
    )
    assert sorted(FEEDBACK_PRIORITY) == sorted(FEEDBACK_CODES)
    assert set(FEEDBACK_MESSAGES) == set(FEEDBACK_CODES)
    for indonesian, english in FEEDBACK_MESSAGES.values():
        assert indonesian and english and indonesian != english
    assert "cap jempol" in FEEDBACK_MESSAGES["dot_or_line"][0]  # who cannot sign gives a thumbprint


def test_report_shape_and_json() -> None:
    report = assess_signature(synthetic(1))
    assert isinstance(report, SignatureReport)
    assert 0.0 <= report.score <= 100.0
    data = report.to_json()
    assert list(data) == ["score", "passed", "metrics", "feedback"]
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    assert list(report.metrics) == list(METRIC_DESCRIPTIONS)
    assert all(isinstance(v, float) for v in report.metrics.values())
    assert report.passed and report.feedback == [] and report.failed_checks == []
    assert report.messages("en") == []


def test_thresholds_are_the_config_table() -> None:
    assert DEFAULT_THRESHOLDS and all(isinstance(v, float) for v in DEFAULT_THRESHOLDS.values())
    assert threshold_defaults("signature") == DEFAULT_THRESHOLDS


def test_pure_and_deterministic() -> None:
    signature = synthetic(2, "shaky")
    assert assess_signature(signature) == assess_signature(signature)
    assert assess_signature(signature_from_json(signature.to_json())) == assess_signature(signature)


def test_thresholds_override_and_validation() -> None:
    signature = synthetic(3)
    sparse = fewer_points(signature, 2)  # 65 points a second: passes, but scores lower
    assert assess_signature(sparse).passed and assess_signature(sparse).score < 80
    strict = assess_signature(sparse, {"min_score": 80})
    assert not strict.passed and strict.failed_checks == ["min_score"]
    # No check fails, so the officer hears the one closest to failing.
    assert strict.feedback == ["too_few_points"]
    big = assess_signature(signature, {"min_ink_size_mm": 500.0})
    assert big.feedback == ["too_small"] and big.score == assess_signature(signature).score
    with pytest.raises(ValueError, match="unknown signature quality threshold"):
        assess_signature(signature, {"min_scroe": 10})
    with pytest.raises(ValueError, match="points_per_mm"):
        assess_signature(Signature(dataclasses.replace(PAD, points_per_mm=0), signature.points))


# --- metrics by hand ------------------------------------------------------------------------

# Two strokes at 10 ms a packet. Stroke 1: an L, 10 mm right then 5 mm down (pressure
# 200, 400, 600, 400 of 1023), lifted by the hover packet at 30 ms. Stroke 2: a 3 mm
# dash from 60 ms, left open at the end. Coordinates in 1/100 mm.
HAND = Signature(
    PAD,
    (
        point(0, 1000, 1000, 200),
        point(10, 2000, 1000, 400),
        point(20, 2000, 1500, 600),
        point(30, 2000, 1500, 0, tip=False),
        point(40, 2500, 1500, 0, tip=False),
        point(50, 3000, 1500, 0, tip=False),
        point(60, 3000, 2000, 400),
        point(70, 3300, 2000, 400),
    ),
)


def test_metrics_of_a_hand_computed_recording() -> None:
    m = assess_signature(HAND).metrics
    assert m["packet_count"] == 8 and m["point_count"] == 5 and m["stroke_count"] == 2
    assert m["duration_s"] == 0.07
    assert m["pen_down_s"] == pytest.approx(0.030 + 0.010)  # 0-30 ms, then 60-70 ms (open at the end)
    assert m["pen_down_s"] == signature_facts(HAND)["pen_down_s"]
    assert m["point_rate_hz"] == pytest.approx(5 / 0.040, rel=1e-3)
    assert (m["ink_width_mm"], m["ink_height_mm"], m["ink_size_mm"]) == (23.0, 10.0, 23.0)
    assert m["path_length_mm"] == pytest.approx(10 + 5 + 3)  # the lift from (20, 15) to (30, 20) is no ink
    assert m["speed_mean_mm_s"] == pytest.approx(18 / 0.040, rel=1e-3)
    shares = np.array([200, 400, 600, 400, 400]) / 1023
    assert m["pressure_mean"] == pytest.approx(shares.mean(), abs=1e-4)
    assert m["pressure_range"] == pytest.approx(
        np.percentile(shares, 95) - np.percentile(shares, 5), abs=1e-4
    )
    assert m["pressure_variation"] == pytest.approx(shares.std() / shares.mean(), abs=1e-4)
    # The L is curved (1.9 mm RMS off its best line); the dash is straight.
    assert m["curved_strokes"] == 1 and m["curved_share"] == pytest.approx(15 / 18, abs=1e-4)


def test_speed_is_measured_over_windows_not_between_packets() -> None:
    """Packets read together share a host stamp: speed per packet pair would be 0 or doubled."""
    straight = [point(i * 7.7, 1000 + 40 * i, 3000, 500) for i in range(200)]  # 40 / 7.7 ms = 52 mm/s
    even = Signature(PAD, tuple(straight))
    # Every second packet arrives in the same read as the one after it.
    bursty = Signature(
        PAD, tuple(dataclasses.replace(p, t_ms=straight[i | 1].t_ms) for i, p in enumerate(straight))
    )
    for signature in (even, bursty):
        m = assess_signature(signature).metrics
        assert m["speed_median_mm_s"] == pytest.approx(0.4 / 0.0077, rel=0.1)
        assert m["speed_p95_mm_s"] < 1.2 * m["speed_median_mm_s"]


def test_metrics_agree_with_the_capture_facts() -> None:
    for style in ("steady", "shaky", "halting"):
        signature = synthetic(4, style)
        m = assess_signature(signature).metrics
        facts = signature_facts(signature)
        assert m["stroke_count"] == facts["strokes"]
        assert m["pen_down_s"] == pytest.approx(facts["pen_down_s"], abs=1e-3)
        assert m["ink_width_mm"] == pytest.approx(facts["ink_mm"]["width_mm"], abs=0.01)
        assert m["ink_height_mm"] == pytest.approx(facts["ink_mm"]["height_mm"], abs=0.01)


# --- empty and degenerate recordings ----------------------------------------------------------


@pytest.mark.parametrize(
    "points",
    [
        (),
        (point(0, 10, 10, tip=False),),
        tuple(point(i * 7.7, 3000 + i, 3000, tip=False) for i in range(200)),
    ],
    ids=["no-packets", "one-hover", "hover-only"],
)
def test_empty_recording_is_empty(points: tuple[PenPoint, ...]) -> None:
    report = assess_signature(Signature(PAD, points))
    assert report.feedback == ["empty"] and report.failed_checks == ["empty", "min_score"]
    assert report.score == 0.0 and not report.passed


def test_a_tap_is_a_dot_first() -> None:
    """A tap is also short, small and poor in points: the officer hears the cause, not its effects."""
    tap = Signature(PAD, tuple(point(i * 7.7, 4000, 3000 + (i % 2), 300 + 30 * i) for i in range(8)))
    report = assess_signature(tap)
    assert report.feedback == ["dot_or_line", "too_short", "too_few_points", "too_small"]


def test_a_pad_without_pressure_is_no_pressure() -> None:
    flat = dataclasses.replace(PAD, max_pressure=0)
    signature = synthetic(5)
    report = assess_signature(
        Signature(flat, tuple(dataclasses.replace(p, pressure=0) for p in signature.points))
    )
    assert report.feedback == ["no_pressure"] and report.metrics["pressure_range"] == 0.0
    assert 40.0 <= report.score <= 50.0  # still a usable image: the score halves, no more


def test_two_straight_strokes_are_a_mark_three_are_writing() -> None:
    hand = Hand(speed_mm_s=30.0, seed=3)
    plus = [[(30.0, 20.0), (30.0, 40.0)], [(20.0, 30.0), (40.0, 30.0)]]  # "+" (or a "T")
    h = [[(50.0, 20.0), (50.0, 40.0)], [(62.0, 20.0), (62.0, 40.0)], [(50.0, 30.0), (62.0, 30.0)]]  # "H"
    assert assess_signature(draw_signature(plus, hand, PAD)).feedback == ["dot_or_line"]
    block = assess_signature(draw_signature(h, hand, PAD))
    assert block.passed, block
    assert assess_signature(draw_signature(h, hand, PAD), {"mark_max_strokes": 3}).feedback == ["dot_or_line"]


@pytest.mark.parametrize("tremor_mm", [0.0, 0.35])
@pytest.mark.parametrize(
    "line",
    [
        [(20.0, 30.0), (45.0, 30.2), (70.0, 30.0)],
        [(20.0, 30.0), (45.0, 32.0), (70.0, 30.0)],
        [(20.0, 30.0), (40.0, 30.5)],
    ],
    ids=["straight-50mm", "bowed-50mm", "straight-20mm"],
)
def test_a_drawn_line_is_a_line(line: list[tuple[float, float]], tremor_mm: float) -> None:
    hand = Hand(speed_mm_s=20.0 if tremor_mm else 40.0, tremor_mm=tremor_mm, seed=5)
    report = assess_signature(draw_signature([line], hand, PAD))
    assert report.feedback == ["dot_or_line"] and report.score == 0.0


# --- degradation ladders -------------------------------------------------------------------
# Each ladder degrades a full simulated signature step by step. The score must not
# rise along it (by more than 0.5: a step can round a metric either way) and ends far
# below where it started; the signature passes at step 0, the last step fails, and
# once a step fails every later one does; every failing step's first feedback code
# names the degradation.


def _ink(signature: Signature) -> np.ndarray:
    return np.array([(p.x, p.y) for p in signature.points if p.tip], dtype=np.float64)


def _moved(signature: Signature, move: Callable[[np.ndarray], np.ndarray]) -> Signature:
    xy = np.array([(p.x, p.y) for p in signature.points], dtype=np.float64)
    placed = np.rint(move(xy)).astype(int)
    points = tuple(
        dataclasses.replace(p, x=int(x), y=int(y)) for p, (x, y) in zip(signature.points, placed, strict=True)
    )
    return Signature(signature.pad, points)


def fewer_points(signature: Signature, keep_every: float) -> Signature:
    """Only every k-th packet arrives: a pad losing data, or one sampling too slowly."""
    return Signature(signature.pad, signature.points[:: int(keep_every)])


def shorter(signature: Signature, share: float) -> Signature:
    """The applicant stops early: the recording ends after `share` of the ink points."""
    ink = [i for i, p in enumerate(signature.points) if p.tip]
    last = ink[max(0, math.ceil(share * len(ink)) - 1)]
    return Signature(signature.pad, signature.points[: last + 1])


def shrunk(signature: Signature, scale: float) -> Signature:
    """The same signature written smaller, about the centre of its ink."""
    ink = _ink(signature)
    centre = (ink.min(axis=0) + ink.max(axis=0)) / 2
    return _moved(signature, lambda xy: centre + scale * (xy - centre))


def straight_line(signature: Signature, keep: float) -> Signature:
    """The writing flattened onto its own best-fit line, keeping `keep` of its spread across it."""
    ink = _ink(signature)
    centre = ink.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((ink - centre).T))
    across = vectors[:, 0]
    return _moved(signature, lambda xy: xy - (1.0 - keep) * np.outer((xy - centre) @ across, across))


def constant_pressure(signature: Signature, keep: float) -> Signature:
    """Pressure pulled towards its mean, keeping `keep` of its variation (a pen reading less and less)."""
    mean = np.mean([p.pressure for p in signature.points if p.tip])
    points = tuple(
        dataclasses.replace(p, pressure=int(round(mean + keep * (p.pressure - mean)))) if p.tip else p
        for p in signature.points
    )
    return Signature(signature.pad, points)


# name: (degrade, steps, code). "single_dot" collapses the whole signature onto its centre,
# the pen down just as long: from 2 % of its size (about 1 mm) to a point.
LADDERS: dict[str, tuple[Callable[[Signature, float], Signature], list[float], str]] = {
    "fewer_points": (fewer_points, [1, 2, 4, 8, 16, 32], "too_few_points"),
    "shorter": (shorter, [1.0, 0.5, 0.3, 0.2, 0.15, 0.1, 0.07], "too_short"),
    "single_dot": (shrunk, [1.0, 0.02, 0.01, 0.005, 0.0], "dot_or_line"),
    "straight_line": (straight_line, [1.0, 0.6, 0.4, 0.25, 0.1, 0.0], "dot_or_line"),
    "shrunk": (shrunk, [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1], "too_small"),
    "constant_pressure": (constant_pressure, [1.0, 0.3, 0.1, 0.05, 0.02, 0.0], "no_pressure"),
}
LADDER_SIGNATURES = [(style, seed) for style in ("steady", "shaky", "halting") for seed in range(4)]


@pytest.mark.parametrize("ladder", sorted(LADDERS))
@pytest.mark.parametrize(("style", "seed"), LADDER_SIGNATURES, ids=[f"{s}-{n}" for s, n in LADDER_SIGNATURES])
def test_degradation_ladder(ladder: str, style: str, seed: int) -> None:
    degrade, steps, code = LADDERS[ladder]
    full = synthetic(seed, style)
    reports = [assess_signature(degrade(full, step)) for step in steps]
    scores = [r.score for r in reports]
    print(
        f"\n{ladder} on {style} {seed}: "
        + ", ".join(f"{s}: {r.score:.1f}" for s, r in zip(steps, reports, strict=True))
    )
    assert reports[0].passed, reports[0]
    for before, after in zip(scores, scores[1:], strict=False):
        assert after <= before + 0.5, scores
    assert scores[-1] == min(scores) and scores[-1] < scores[0] - 40, scores
    failing = [not r.passed for r in reports]
    assert failing[-1] and failing == sorted(failing), failing  # once failed, failed from then on
    for step, report in zip(steps, reports, strict=True):
        if not report.passed:
            assert report.feedback[0] == code, (step, report)


# --- hand-made signatures -------------------------------------------------------------------

PAD_OF_DRAWINGS, HAND_MADE = load_drawings(DRAWINGS)


def test_the_hand_made_set_has_each_kind() -> None:
    names = {d.name for d in HAND_MADE}
    assert {"name_budi", "initials_sr", "elderly_siti_shaky", "cross"} <= names
    assert PAD_OF_DRAWINGS == PAD  # the simulated pad's default maxima


@pytest.mark.parametrize("drawing", HAND_MADE, ids=[d.name for d in HAND_MADE])
def test_hand_made_signature_verdict(drawing) -> None:
    stored = (DATA / f"{drawing.name}.json").read_text()
    report = assess_signature(signature_from_json(json.loads(stored)))
    print(f"\n{drawing.name}: score {report.score}, feedback {report.feedback}, metrics {report.metrics}")
    assert report.passed is drawing.expect_passed, (drawing.why, report)
    assert (report.feedback[0] if report.feedback else "") == drawing.expect_first, report


@pytest.mark.parametrize("drawing", HAND_MADE, ids=[d.name for d in HAND_MADE])
def test_hand_made_json_is_what_its_drawing_makes(drawing) -> None:
    """The stored recordings are reproducible: edit drawings.toml and regenerate, not the JSON."""
    stored = (DATA / f"{drawing.name}.json").read_text()
    assert stored == recording_json(drawing, PAD_OF_DRAWINGS) + "\n"


def test_tremor_and_slowness_are_not_held_against_the_writer() -> None:
    """The shaky elderly hand scores like the steady name; the same drawing without tremor scores the same."""
    by_name = {d.name: d for d in HAND_MADE}
    elderly = by_name["elderly_siti_shaky"]
    shaky = assess_signature(draw_signature(elderly.strokes, elderly.hand, PAD))
    steady_hand = dataclasses.replace(elderly.hand, tremor_mm=0.0, speed_mm_s=45.0, pause_s=(0.15, 0.3))
    steady = assess_signature(draw_signature(elderly.strokes, steady_hand, PAD))
    assert shaky.passed and steady.passed
    assert abs(shaky.score - steady.score) <= 1.0
    assert shaky.metrics["speed_median_mm_s"] < 0.5 * steady.metrics["speed_median_mm_s"]
