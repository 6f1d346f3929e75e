"""The iris ground truth's tools: marks fitted from points, the marks files, the marking
tool (its page over real HTTP, its typed points, its errors) and the drawing tool."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from groundtruth.draw_iris import FOUND_COLOUR, MARK_COLOUR, contact_sheet, draw_eye, grid_picture
from groundtruth.iris_agreement import iitd_halves, repeat_agreement, subject, summarise
from groundtruth.iris_marks import (
    IITD_MARKS,
    IITD_REPEAT_MARKS,
    EyeMarks,
    MarksError,
    fit_circle,
    lid_columns,
    load_marks,
    visible_lid,
)
from hil.rig import REPO


def circle_points(x: float, y: float, r: float, degrees: range) -> list[tuple[float, float]]:
    return [(x + r * math.cos(math.radians(a)), y + r * math.sin(math.radians(a))) for a in degrees]


def test_a_circle_is_fitted_through_its_points_even_an_arc() -> None:
    for arc in (range(0, 360, 30), range(-40, 41, 10)):
        fitted = fit_circle(circle_points(150.0, 110.0, 60.0, arc), "limbus")
        assert np.allclose(fitted, (150.0, 110.0, 60.0), atol=1e-6)


def test_too_few_points_name_the_part() -> None:
    with pytest.raises(MarksError, match="pupil: 3 points"):
        fit_circle([(0, 0), (1, 1), (2, 0)], "pupil")


def test_lid_heights_are_the_curve_through_its_points_at_three_columns() -> None:
    limbus = circle_points(160.0, 120.0, 100.0, range(0, 360, 30))
    lid = [(x, 40.0 + 0.002 * (x - 150.0) ** 2) for x in (70.0, 110.0, 150.0, 190.0, 240.0)]
    marks = EyeMarks(
        {"pupil": circle_points(160, 120, 40, range(0, 360, 45)), "limbus": limbus, "upper_lid": lid}
    )
    assert lid_columns(marks.limbus) == pytest.approx([110.0, 160.0, 210.0])
    assert marks.lid_heights("upper_lid") == pytest.approx([43.2, 40.2, 47.2])
    assert marks.lid_heights("lower_lid") is None
    # Clipped to the iris: a lid above the limbus hides nothing there.
    assert visible_lid([10.0, 40.0], [160.0, 160.0], marks.limbus, "upper_lid") == pytest.approx([20.0, 40.0])


def test_the_committed_marks_cover_both_halves_and_a_tenth_twice() -> None:
    marks, repeats = load_marks(IITD_MARKS), load_marks(IITD_REPEAT_MARKS)
    subjects = [subject(name) for name in marks]
    assert len(marks) >= 40
    assert sum(s <= 106 for s in subjects) >= 20 and sum(s >= 113 for s in subjects) >= 20
    assert len(repeats) >= 10 and set(repeats) <= set(marks)
    for eye in marks.values():
        assert len(eye.points["pupil"]) >= 5 and len(eye.points["limbus"]) >= 5
    # The data say where they come from, and the terms of the images.
    assert "IITD Iris Database version 1.0" in json.loads(IITD_MARKS.read_text())["about"]


def eye_marks(dx: float = 0.0, dy: float = 0.0, lid: float | None = 40.0) -> EyeMarks:
    points = {
        "pupil": circle_points(160 + dx, 120 + dy, 40, range(0, 360, 45)),
        "limbus": circle_points(160 + dx, 120 + dy, 100, range(0, 360, 30)),
    }
    if lid is not None:
        columns = (70.0, 120.0, 160.0, 200.0, 250.0)
        points["upper_lid"] = [(x + dx, lid + dy + 0.002 * (x - 160.0) ** 2) for x in columns]
    return EyeMarks(points)


def test_a_second_marking_is_measured_against_the_first_as_the_assessor_is() -> None:
    same = repeat_agreement("eye.png", eye_marks(), eye_marks())
    assert same.pupil_ok and same.limbus_ok and same.lid_ok("upper_lid")
    assert same.upper_lid == pytest.approx(0)
    assert same.lower_lid is None  # not marked the first time: nothing to compare
    moved = repeat_agreement("eye.png", eye_marks(), eye_marks(dx=3.0, dy=4.0))
    assert moved.pupil_centre == pytest.approx(5.0) and moved.limbus_centre == pytest.approx(5.0)
    assert not moved.pupil_ok and moved.limbus_ok
    # The lid moved with the eye: 4 px lower at its columns, 3 px along a gentle curve.
    assert moved.upper_lid == pytest.approx(4.0, abs=1.5) and moved.lid_ok("upper_lid")
    # A lid left unmarked the second time hides nothing: it is read at the limbus's top edge,
    # 20 px above the first marking's lid at the iris centre.
    unmarked = repeat_agreement("eye.png", eye_marks(), eye_marks(lid=None))
    assert unmarked.upper_lid == pytest.approx(20.0, abs=0.5) and not unmarked.lid_ok("upper_lid")
    shares = summarise([same, moved, unmarked])
    assert shares["pupil_within_3px"] == pytest.approx(0.667)
    assert shares["upper_lid_within_8px"] == pytest.approx(0.667)


def test_the_repeatability_is_reported_from_the_committed_marks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "groundtruth.iris_agreement", "--repeat"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    *rows, last = result.stdout.strip().splitlines()
    summary = json.loads(last)
    repeats = load_marks(IITD_REPEAT_MARKS)
    assert summary["half"] == "repeat" and summary["images"] == len(repeats) == len(rows)
    assert sorted(row.split()[0] for row in rows) == sorted(repeats)
    # What the README reports of the committed second marking: everything within tolerance
    # but one limbus (120_06_R's centres 6.5 px apart).
    assert summary["pupil_within_3px"] == 1.0 and summary["lids_within_8px"] == 1.0
    assert summary["limbus_within_5px"] == 0.9
    assert [row.split()[0] for row in rows if row.split()[1][2] == "x"] == ["120_06_R.png"]


def test_the_iitd_halves_split_by_subject() -> None:
    development, held_out = iitd_halves()
    if not development:
        pytest.skip("../shared/fixtures/iitd-iris is not there")
    assert max(subject(p.name) for p in development) < min(subject(p.name) for p in held_out)
    assert len({subject(p.name) for p in development}) == len({subject(p.name) for p in held_out}) == 16


@pytest.fixture
def eye_file(tmp_path: Path) -> Path:
    image = np.full((120, 160), 180, np.uint8)
    cv2.circle(image, (80, 60), 40, 100, -1)
    cv2.circle(image, (80, 60), 15, 20, -1)
    path = tmp_path / "eye.png"
    cv2.imwrite(str(path), image)
    return path


def mark_iris(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groundtruth.mark_iris", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_typed_points_are_fitted_and_kept_under_the_image_s_name(eye_file: Path, tmp_path: Path) -> None:
    marks_file = tmp_path / "marks.json"
    pupil = " ".join(f"{x:.1f},{y:.1f}" for x, y in circle_points(80, 60, 15, range(0, 360, 45)))
    limbus = " ".join(f"{x:.1f},{y:.1f}" for x, y in circle_points(80, 60, 40, range(-40, 41, 10)))
    result = mark_iris("add", str(eye_file), "--marks", str(marks_file), "--pupil", pupil, "--limbus", limbus)
    assert result.returncode == 0, result.stderr
    eye = load_marks(marks_file)["eye.png"]
    # Points typed to 0.1 px on an 80-degree arc: the limbus to half a pixel.
    assert np.allclose(eye.pupil, (80, 60, 15), atol=0.1) and np.allclose(eye.limbus, (80, 60, 40), atol=0.5)


@pytest.mark.parametrize(
    ("pupil", "said"),
    [("1,2 3,4", "pupil: 2 points given, at least 5"), ("1,2 x,4", "pupil: 'x,4' is not a point X,Y")],
)
def test_bad_points_are_one_line_and_exit_2(eye_file: Path, tmp_path: Path, pupil: str, said: str) -> None:
    result = mark_iris(
        "add", str(eye_file), "--marks", str(tmp_path / "m.json"), "--pupil", pupil, "--limbus", ""
    )
    assert result.returncode == 2 and said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_an_unreadable_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "not.png").write_text("no image here")
    result = mark_iris("grid", str(tmp_path / "not.png"), "--out", str(tmp_path / "g.png"))
    assert result.returncode == 2 and "not.png: not a readable image" in result.stderr


def test_the_click_page_serves_the_image_and_saves_posted_points(eye_file: Path, tmp_path: Path) -> None:
    marks_file = tmp_path / "clicked.json"
    command = ["serve", str(eye_file), "--port", "0", "--marks", str(marks_file)]
    server = subprocess.Popen(
        [sys.executable, "-m", "groundtruth.mark_iris", *command], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        address = server.stdout.readline().split(" at ")[1].strip()
        page = urllib.request.urlopen(address, timeout=10).read().decode()
        assert "eye.png" in page and "canvas" in page
        png = urllib.request.urlopen(address + "image/eye.png", timeout=10).read()
        assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).shape == (120, 160)
        points = {
            "pupil": circle_points(80, 60, 15, range(0, 360, 40)),
            "limbus": circle_points(80, 60, 40, range(0, 360, 40)),
            "upper_lid": [(50, 30), (80, 25), (110, 30)],
            "lower_lid": [],
        }
        body = json.dumps({"image": "eye.png", "points": points}).encode()
        said = (
            urllib.request.urlopen(urllib.request.Request(address + "marks", body), timeout=10)
            .read()
            .decode()
        )
        assert said.startswith("eye.png: pupil [80.0, 60.0, 15.0]")
        assert load_marks(marks_file)["eye.png"].lid_heights("upper_lid") == pytest.approx(
            [27.22, 25.0, 27.22], abs=0.05
        )
        # Too few points: a 400 that says which part, and nothing saved over the marks.
        bad = json.dumps({"image": "eye.png", "points": {"pupil": [[1, 1]], "limbus": []}}).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(address + "marks", bad), timeout=10)
        assert refused.value.code == 400 and "pupil" in refused.value.read().decode()
        assert load_marks(marks_file)["eye.png"].lid_heights("upper_lid") is not None
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_drawings_show_marks_and_finding_in_their_colours(eye_file: Path) -> None:
    grey = cv2.imread(str(eye_file), cv2.IMREAD_GRAYSCALE)
    marks = EyeMarks(
        {
            "pupil": circle_points(80, 60, 15, range(0, 360, 45)),
            "limbus": circle_points(80, 60, 40, range(0, 360, 45)),
        }
    )
    found = {
        "eye_found": 1.0,
        "pupil_x": 80,
        "pupil_y": 60,
        "pupil_r": 20,
        "iris_x": 80,
        "iris_y": 60,
        "iris_r": 50,
    }
    picture = draw_eye(grey, marks, found, zoom=2)
    assert picture.shape == (240, 320, 3)
    assert (picture == MARK_COLOUR).all(axis=2).any() and (picture == FOUND_COLOUR).all(axis=2).any()
    sheet = contact_sheet([picture] * 5, columns=2)
    assert sheet.shape == (720, 640, 3)
    grid = grid_picture(grey, (40, 20, 120, 100), zoom=4)
    assert grid.shape[0] > 4 * 80 and grid.shape[1] > 4 * 80
