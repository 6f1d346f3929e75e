"""kitd.capture.blank_frame: a fingerprint sensor's blank frame judged on synthetic arrays (a
clean glass with noise and shading, and each defect put into it), and on the real NB-1010's
background when ../shared/fixtures is there."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kitd.capture.blank_frame import (
    BlankFrameLimits,
    blank_frame_report,
    dark_share,
    dead_lines,
    equal_neighbour_share,
    neighbour_levels,
    stuck_lines,
)

H, W = 180, 256
REAL_FRAME = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nb1010" / "capture.png"


def glass(seed: int = 1, noise: float = 1.5, vignette: float = 0.02, grey: float = 231.0) -> np.ndarray:
    """An empty sensor: light grey, darker towards the corners, pixel noise, rare dark specks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r2 = ((x - (W - 1) / 2) / (W / 2)) ** 2 + ((y - (H - 1) / 2) / (H / 2)) ** 2
    image = grey * (1 - vignette / 2 * r2) + rng.normal(0, noise, (H, W))
    specks = rng.random((H, W)) < 0.003
    image = np.where(specks, image - rng.uniform(40, 160, (H, W)), image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def darken_ellipse(
    frame: np.ndarray, centre: tuple[int, int], axes: tuple[int, int], by: float
) -> np.ndarray:
    shade = np.zeros(frame.shape, np.float32)
    cv2.ellipse(shade, centre, axes, 30.0, 0, 360, by, -1)
    shade = cv2.GaussianBlur(shade, (0, 0), 1.0)
    return np.clip(np.rint(frame * (1 - shade)), 0, 255).astype(np.uint8)


def healthy(report) -> bool:  # noqa: ANN001
    return not (report.damaged or report.dirty or report.uneven or report.dim)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("noise", "vignette"), [(0.8, 0.0), (1.5, 0.02), (3.0, 0.05)])
def test_a_clean_glass_is_healthy_whatever_its_noise_and_shading(
    seed: int, noise: float, vignette: float
) -> None:
    report = blank_frame_report(glass(seed, noise, vignette))
    assert healthy(report), report
    assert report.blotches == () and report.unevenness < 0.08
    assert 215 < report.background < 235 and report.dark_share < 0.01


def test_a_dead_row_and_a_dead_column_are_found() -> None:
    frame = glass()
    frame[70, :] = np.random.default_rng(2).integers(0, 12, W)
    frame[:, 200] = 20
    report = blank_frame_report(frame)
    assert report.dead_rows == (70,) and report.dead_columns == (200,)
    assert report.damaged and not report.dirty  # the broken line is judged once, not as dirt too


def test_a_cluster_of_dead_rows_is_found_whole() -> None:
    frame = glass()
    frame[100:104, :] = 8
    assert dead_lines(frame, 0) == [100, 101, 102, 103]


@pytest.mark.parametrize("value", [140, 231, 255])
def test_a_column_stuck_at_one_value_is_found(value: int) -> None:
    frame = glass()
    frame[:, 37] = value
    report = blank_frame_report(frame)
    assert report.stuck_columns == (37,) and report.dead_columns == ()
    assert report.damaged


def test_a_saturated_row_with_noise_is_stuck_too() -> None:
    frame = glass()
    frame[12, :] = 255 - np.random.default_rng(3).integers(0, 3, W)
    assert stuck_lines(frame, 0) == [12]


def test_a_frame_with_no_noise_at_all_calls_no_line_stuck() -> None:
    # Every line is flat: none stands out from its neighbours.
    flat = np.full((H, W), 229, np.uint8)
    assert equal_neighbour_share(flat, 0).min() == 1.0
    assert stuck_lines(flat, 0) == [] and stuck_lines(flat, 1) == []


def test_a_blotch_of_residue_is_dirt() -> None:
    # 1.0 x 0.5 mm at 385 ppi, 30% darker: small, but residue a finger would print through.
    report = blank_frame_report(darken_ellipse(glass(), (90, 60), (8, 4), 0.3))
    assert report.dirty and not report.damaged
    assert len(report.blotches) == 1 and report.blotches[0] >= BlankFrameLimits().dirty_px


def test_a_latent_print_is_dirt() -> None:
    frame = glass().astype(np.float64)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    inside = np.clip(1.3 - np.hypot((x - 150) / 32, (y - 80) / 24), 0, 1)
    ridges = 0.5 + 0.5 * np.cos(2 * np.pi * (0.8 * x + 0.6 * y) / 7.0)
    report = blank_frame_report(np.clip(np.rint(frame - 25 * inside * ridges), 0, 255).astype(np.uint8))
    assert report.dirty and not report.damaged


def test_specks_and_a_tiny_cluster_are_not_dirt() -> None:
    frame = glass(noise=2.0)
    frame[40:42, 50] = 60  # two dark pixels together: the real sensor has some
    frame[120, 30:33] = 90
    report = blank_frame_report(frame)
    assert healthy(report), report


def test_shading_and_a_dim_sensor_are_told() -> None:
    y, x = np.mgrid[0:H, 0:W]
    ramp = glass().astype(np.float64) * (1.0 - 0.3 * x / W)  # one side 30% darker
    assert blank_frame_report(np.rint(ramp).astype(np.uint8)).uneven
    dim = blank_frame_report(glass(grey=150.0))
    assert dim.dim and not dim.uneven


def test_neighbour_levels_leave_the_line_itself_out() -> None:
    levels = np.array([10.0, 10.0, 0.0, 10.0, 10.0])
    assert list(neighbour_levels(levels, 2)) == [5.0, 10.0, 10.0, 10.0, 5.0]


def test_the_report_as_json() -> None:
    frame = glass()
    frame[:, 100] = 140
    values = blank_frame_report(frame).to_json()
    assert values["stuck_columns"] == [100] and values["dead_rows"] == [] and values["blotch_px"] == 0
    assert set(values) >= {"background", "unevenness", "dark_share", "blotches"}


@pytest.mark.skipif(not REAL_FRAME.exists(), reason=f"real NB-1010 fixture absent: {REAL_FRAME}")
def test_the_real_sensors_background_is_a_healthy_blank_frame() -> None:
    real = cv2.imread(str(REAL_FRAME), cv2.IMREAD_GRAYSCALE)
    # Away from the finger (its right-hand strip and bottom right corner): the real empty glass.
    for strip in (real[:, 224:], real[132:, 156:]):
        report = blank_frame_report(strip)
        assert healthy(report), report.to_json()
        assert report.unevenness < 0.03
    # The whole frame holds a finger: a third of it dark, far from the empty glass's specks.
    assert dark_share(real) > 0.25 and dark_share(real[:, 224:]) < 0.01
