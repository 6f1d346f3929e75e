"""Synthetic near-infrared eyes: circles drawn where the ground truth says, every parameter visible,
geometry and grey levels like the real eye, and the simulator's control channel changing its stream."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil import frame_code
from hil.rig import FIXTURES
from hil.synthetic_eye import EyeParams, contact_sheet, noise_bank, render, with_noise

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REAL_EYE = FIXTURES / "open-iris" / "anonymized.png"


def dark_blob(image: np.ndarray, below: int = 50) -> tuple[float, float, float] | None:
    """Centre and equivalent radius of the largest round dark blob (the pupil), or None.

    Lashes and lid margins are dark too, but long and thin: a blob counts only when it fills
    most of the circle around its bounding box."""
    mask = (image < below).astype(np.uint8)
    mask[:40, :220] = 0  # the block code's corner
    count, _, stats, centres = cv2.connectedComponentsWithStats(mask)
    best = None
    for i in range(1, count):
        area = stats[i, cv2.CC_STAT_AREA]
        extent = max(stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT])
        if area >= 50 and area / (np.pi * (extent / 2) ** 2) > 0.6 and (best is None or area > best[2]):
            best = (float(centres[i][0]), float(centres[i][1]), float(area))
    return None if best is None else (best[0], best[1], float(np.sqrt(best[2] / np.pi)))


def iris_edges(image: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Left and right limbus along the row through (x, y): where iris grey turns to bright sclera."""
    row = cv2.GaussianBlur(image, (5, 5), 0)[int(round(y))].astype(float)
    right = int(x) + int(np.argmax(row[int(x) :] > 165))
    left = int(x) - int(np.argmax(row[: int(x) + 1][::-1] > 165))
    return left - 0.5, right - 0.5


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"iris_x": 250.0, "iris_y": 260.0, "pupil_r": 30.0},
        {"iris_r": 140.0, "pupil_r": 70.0},
        {"iris_r": 90.0, "pupil_r": 25.0, "pupil_dx": 6.0, "pupil_dy": -4.0},
        {"gaze_dx": 60.0, "reflections": ()},
    ],
)
def test_rendered_circles_lie_where_the_truth_says(changes: dict) -> None:
    image, truth = render(EyeParams(noise=0, reflections=()).replace(**changes))
    blob = dark_blob(image)
    assert blob is not None
    assert abs(blob[0] - truth.pupil[0]) < 1.5 and abs(blob[1] - truth.pupil[1]) < 1.5
    # The horizontal semi-axis is the truth's radius; a foreshortened pupil's blob is smaller.
    assert abs(blob[2] - truth.pupil[2]) < 2.0 or changes.get("gaze_dx")
    left, right = iris_edges(image, truth.iris[0], truth.iris[1])
    assert abs((left + right) / 2 - truth.iris[0]) < 2.0
    assert abs((right - left) / 2 - truth.iris[2]) < 2.5


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(image, cv2.CV_64F).var())


def test_each_parameter_does_what_it_says_and_a_contact_sheet_shows_it() -> None:
    """Writes artifacts/eye_parameters_contact_sheet.png: one row per parameter sweep."""
    sweeps = {
        "eyelid": [1.0, 0.7, 0.4, 0.15, 0.0],
        "gaze_dx": [0.0, 40.0, 80.0, -80.0, -120.0],
        "iris_r": [70.0, 95.0, 115.0, 140.0, 170.0],
        "iris_x": [320.0, 200.0, 100.0, 40.0, -20.0],
        "blur": [0.0, 1.0, 2.0, 4.0, 8.0],
        "motion": [0.0, 4.0, 8.0, 16.0, 30.0],
        "noise": [0.0, 2.0, 6.0, 12.0, 24.0],
        "exposure": [0.25, 0.5, 1.0, 1.4, 2.0],
        "reflections": [
            (),
            ((338.0, 222.0),),
            ((400.0, 250.0),),
            ((260.0, 200.0), (380.0, 200.0)),
            ((80.0, 80.0),),
        ],
        "eye": [True, False, True, False, True],
        "seed": [1, 2, 3, 4, 5],
    }
    cells, measured = [], {}
    for name, values in sweeps.items():
        for value in values:
            params = EyeParams().replace(
                **{name: value, "pupil_r": 45.0 if name != "iris_r" else value * 0.4}
            )
            image, truth = render(params)
            if params.noise:
                image = with_noise(image, noise_bank(params.noise, image.shape, count=1)[0])
            measured.setdefault(name, []).append((image, truth))
            cells.append((f"{name}={value if name != 'reflections' else len(value)}", image))
    ARTIFACTS.mkdir(exist_ok=True)
    cv2.imwrite(
        str(ARTIFACTS / "eye_parameters_contact_sheet.png"), contact_sheet(cells, columns=5, cell_width=180)
    )

    visible = [t.iris_visible for _, t in measured["eyelid"]]
    assert visible == sorted(visible, reverse=True) and visible[0] > 0.95 and visible[-1] == 0.0
    assert dark_blob(measured["eyelid"][-1][0]) is None  # closed: no pupil to see
    xs = [t.pupil[0] for _, t in measured["gaze_dx"]]
    assert [round(x - 320) for x in xs] == [0, 40, 80, -80, -120]
    assert [dark_blob(i)[0] - 320 for i, _ in measured["gaze_dx"][:3]] == pytest.approx([0, 40, 80], abs=2)
    assert [round(t.iris[2]) for _, t in measured["iris_r"]] == [70, 95, 115, 140, 170]
    near_edge = dark_blob(measured["iris_x"][-2][0])
    assert near_edge is not None and abs(near_edge[0] - 40) < 2  # at the frame's edge
    past_edge, truth = measured["iris_x"][-1]
    assert truth.iris[0] < 0 and past_edge[200:280, 0].mean() < 100  # centre off the frame, iris in view
    for name in ("blur", "motion"):
        values = [sharpness(i) for i, _ in measured[name]]
        assert values == sorted(values, reverse=True), (name, values)
    spreads = [float(np.std(i.astype(int) - measured["noise"][0][0])) for i, _ in measured["noise"]]
    assert spreads == sorted(spreads) and spreads[0] == 0
    means = [float(i.mean()) for i, _ in measured["exposure"]]
    assert means == sorted(means)
    for (image, _truth), spots in zip(measured["reflections"], sweeps["reflections"], strict=True):
        for x, y in spots:
            inside_eye = abs(x - 320) < 2.2 * 115 and abs(y - 245) < 100
            assert (image[int(y), int(x)] > 240) == inside_eye, (x, y)
    assert [dark_blob(i) is not None for i, _ in measured["eye"]] == [True, False, True, False, True]
    textures = [i for i, _ in measured["seed"]]
    assert not np.array_equal(textures[0], textures[1])
    assert all(abs(dark_blob(i)[2] - 45) < 2 for i in textures)


@pytest.mark.skipif(not REAL_EYE.exists(), reason=f"real near-infrared eye not found at {REAL_EYE}")
def test_default_eye_has_the_real_eyes_geometry_and_grey_levels() -> None:
    real = cv2.imread(str(REAL_EYE), cv2.IMREAD_GRAYSCALE)
    synthetic, truth = render(EyeParams())
    # Measured by hand on the real image: pupil (328, 233) r 62, limbus about r 122 around (325, 238).
    real_pupil, real_iris_r = (328, 233, 62), 122
    blob = dark_blob(real)
    assert blob is not None and abs(blob[0] - real_pupil[0]) < 3 and abs(blob[2] - real_pupil[2]) < 3
    assert 0.8 < truth.iris[2] / real_iris_r < 1.1  # about the same size in the frame
    assert 0.3 < truth.pupil[2] / truth.iris[2] < real_pupil[2] / real_iris_r + 0.05
    yy, xx = np.mgrid[0:480, 0:640]

    def median_in(image: np.ndarray, cx: float, cy: float, r0: float, r1: float) -> float:
        d = np.hypot(xx - cx, yy - cy)
        return float(np.median(image[(d > r0) & (d < r1)]))

    for image, (cx, cy), pupil_r, iris_r in (
        (real, (325, 238), 62, 122),
        (synthetic, truth.iris[:2], truth.pupil[2], truth.iris[2]),
    ):
        assert median_in(image, cx, cy, 0, pupil_r * 0.8) < 40  # dark pupil
        assert 80 < median_in(image, cx, cy, pupil_r + 8, iris_r - 8) < 140  # mid-grey iris
        assert median_in(image, cx, cy, iris_r + 12, iris_r + 30) > 160  # bright sclera beyond


def fetch_frame(url: str) -> tuple[int | None, np.ndarray | None]:
    try:
        with urllib.request.urlopen(url.replace("eye.mjpg", "eye.jpg"), timeout=10) as reply:
            image = cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_GRAYSCALE)
    except urllib.error.HTTPError:  # 503 before the first frame
        return None, None
    return frame_code.read(image), image


def test_simulator_control_channel_changes_the_stream(start_simulator) -> None:
    sim = start_simulator("hil.eye_sim")
    url = sim.addresses["url"]
    reply = sim.control("set iris_x=280 pupil_r=32 reflections=none")
    first = int(reply.rpartition("from_frame=")[2])
    deadline = time.monotonic() + 10
    while (frame := fetch_frame(url))[0] is None or frame[0] < first:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    blob = dark_blob(frame[1])
    assert blob is not None and abs(blob[0] - 280) < 1.5 and abs(blob[2] - 32) < 2
    truth = json.loads(sim.control("truth"))
    assert truth["pupil"] == [280.0, 240.0, 32.0] and truth["frame"] >= first
    for bad in ("set colour=red", "set eyelid=2", "fault drop", "applicant maybe"):
        with pytest.raises(RuntimeError, match="err"):
            sim.control(bad)
    assert "frames a loop" in sim.control("applicant on")
    closed = False
    deadline = time.monotonic() + 15
    while not closed and time.monotonic() < deadline:  # the applicant blinks within the loop's first seconds
        closed = dark_blob(fetch_frame(url)[1]) is None
        time.sleep(0.02)
    assert closed
    status = json.loads(sim.control("status"))
    assert status["applicant"] and status["produced"] > 0
