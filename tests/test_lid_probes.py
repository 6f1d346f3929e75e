"""The lid probes of groundtruth.lid_probes: the copies and their marks move together, and the
counts are the agreement's own verdicts. The eyes themselves are in ../shared (skips without)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groundtruth.degraded_eyes import lash_mass
from groundtruth.iris_agreement import IITD_DIR, agreement, iitd_halves, marked_eyes, subject
from groundtruth.iris_marks import IITD_MARKS, lid_curve, load_marks
from groundtruth.lid_probes import (
    PARTS,
    copies,
    drooping,
    main,
    probe_counts,
    table,
    turned,
    upper_lid_lowered,
)
from kitd.capture.iris_quality import assess_iris
from tests.test_iris_marks import eye_marks

needs_iitd = pytest.mark.skipif(not IITD_DIR.is_dir(), reason=f"the IITD eyes are not at {IITD_DIR}")


def test_a_turned_eye_s_marks_turn_with_its_image() -> None:
    """A bright dot on the marked upper lid, turned a quarter turn about the limbus's centre,
    lands where the turned marks put that point; the circles keep their centre and size."""
    image = np.zeros((240, 320), np.uint8)
    marks = eye_marks()
    x, y = marks.points["upper_lid"][2]
    image[round(y), round(x)] = 255
    moved, moved_marks = turned(image, marks, 90.0)
    mx, my = moved_marks.points["upper_lid"][2]
    assert moved[round(my), round(mx)] == 255
    assert (round(mx), round(my)) != (round(x), round(y))
    assert np.allclose(moved_marks.limbus, marks.limbus, atol=1e-6)
    assert np.allclose(moved_marks.pupil, marks.pupil, atol=1e-6)


@pytest.mark.parametrize(("slant", "shift"), [(0, 40.0), (1, 28.0), (-1, 12.0)])
def test_a_drooping_lid_comes_down_with_its_marks_over_what_was_under_it(slant: int, shift: float) -> None:
    """A bright patch on the lid just above its marked margin comes down 0.4 iris radii (all of
    it evenly; slanted, in proportion to how far across the iris it lies) to where the moved
    marks put the margin; the eye under the lid (the pupil's middle) stays as it was, and only
    the upper lid's marks move."""
    marks = eye_marks()  # iris radius 100 about (160, 120); margin at y = 40 + 0.002 (x - 160)^2
    image = np.full((240, 320), 120, np.uint8)
    x = 200
    margin = 40 + 0.002 * (x - 160) ** 2
    image[round(margin) - 6 : round(margin) - 1, x - 2 : x + 3] = 255
    image[118:123, 158:163] = 7
    lowered = drooping(image, marks, 0.4, slant)
    assert lowered is not None
    moved, moved_marks = lowered
    new_margin = float(np.polyval(lid_curve(moved_marks.points["upper_lid"]), x))
    assert new_margin - margin == pytest.approx(shift, abs=0.01)
    assert moved[round(new_margin) - 4, x] == 255
    assert (moved[118:123, 158:163] == 7).all()
    assert {k: v for k, v in moved_marks.points.items() if k != "upper_lid"} == {
        k: v for k, v in marks.points.items() if k != "upper_lid"
    }
    assert drooping(image, eye_marks(lid=None), 0.4) is None


def test_a_lash_mass_hides_the_iris_down_to_the_lowered_upper_lid() -> None:
    """Under a mass of lashes 0.3 iris radii deep, the iris is hidden just above the upper lid
    the lowered marks give (dark along it) and seen a few pixels below it; only the upper lid's
    marks move, by that depth."""
    marks = eye_marks()
    image = np.full((240, 320), 120, np.uint8)
    curve = lid_curve(marks.points["upper_lid"])
    assert curve is not None
    ix, _, ir = marks.limbus
    masked = lash_mass(image, marks.limbus, lambda x: np.polyval(curve, x), 0.3, 0)
    lowered = upper_lid_lowered(marks, 0.3)
    assert {k: v for k, v in lowered.points.items() if k != "upper_lid"} == {
        k: v for k, v in marks.points.items() if k != "upper_lid"
    }
    xs = np.arange(round(ix - 0.5 * ir), round(ix + 0.5 * ir))
    lid_y = np.polyval(lid_curve(lowered.points["upper_lid"]), xs)
    assert np.allclose(lid_y - np.polyval(curve, xs), 0.3 * ir)
    hidden = masked[np.rint(lid_y - 0.1 * ir).astype(int), xs]
    seen = masked[np.rint(lid_y + 0.1 * ir).astype(int), xs]
    assert hidden.mean() < 50 and seen.mean() > 100, (hidden.mean(), seen.mean())


def test_the_table_sums_each_lid_and_half_over_the_copies() -> None:
    counts = {
        ("as_is", "upper_lid", "even"): [3, 4],
        ("as_is", "lower_lid", "odd"): [1, 2],
        ("curtain", "upper_lid", "even"): [5, 8],
    }
    lines = table(counts)
    assert lines[0].split()[0] == "copy" and len(lines) == 4
    assert lines[-1].split() == ["all", "8/12", "1/2"]
    assert lines[2].split() == ["curtain", "5/8"]


@needs_iitd
def test_counts_are_the_agreement_s_verdicts_on_each_copy() -> None:
    """Two development eyes, one of an odd subject and one of an even: every copy is counted
    once per marked lid, the lashes' copies for the upper lid only, and the eyes as they are
    count as the agreement with their own marks says."""
    marks = load_marks(IITD_MARKS)
    development = [p for p in iitd_halves()[0] if p.name in marks]
    odd = next(p for p in development if subject(p.name) % 2)
    even = next(p for p in development if subject(p.name) % 2 == 0)
    eyes = list(marked_eyes(marks, [odd, even]))
    counts = probe_counts(eyes)
    for name, grey, its_marks in eyes:
        half = "odd" if name == odd.name else "even"
        row = agreement(name, its_marks, assess_iris(grey))
        for part in PARTS:
            if getattr(row, part) is None:
                continue
            assert counts["as_is", part, half] == [int(row.lid_ok(part)), 1]
            assert counts["turned_12", part, half][1] == 2
            assert ("curtain", part, half) in counts or part == "lower_lid"
        kinds = [kind for kind, *_ in copies(grey, its_marks)]
        assert kinds.count("curtain") == 6 and kinds.count("tone_curve") == 2
    assert all(0 <= hit <= total for hit, total in counts.values())


def test_a_copy_that_loses_the_eye_counts_as_a_miss() -> None:
    """A blank frame under a development eye's marks: no eye is found in any copy, and every
    marked lid of every copy counts, none of them within 8 px."""
    name = "001_03_L.png"
    marks = load_marks(IITD_MARKS)[name]
    counts = probe_counts([(name, np.full((240, 320), 128, np.uint8), marks)])
    assert counts["as_is", "upper_lid", "odd"] == [0, 1]
    assert counts["as_is", "lower_lid", "odd"] == [0, 1]
    assert counts["curtain", "upper_lid", "odd"] == [0, 6]
    # Lashes drawn up from the marked lid over a blank frame leave a dark fringe whose lower
    # edge is that lid: an eye may be found there, and its lid on the marks; every copy still
    # counts.
    assert counts["lashes_on_skin", "upper_lid", "odd"][1] == 4
    assert all(hit == 0 for (kind, _, _), (hit, _) in counts.items() if kind != "lashes_on_skin")


def test_without_the_eyes_the_command_says_where_they_should_be(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("groundtruth.lid_probes.IITD_DIR", tmp_path / "absent")
    assert main([]) == 2
    assert "absent" in capsys.readouterr().err
