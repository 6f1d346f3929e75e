"""The iris camera's scene measures (kitd.capture.scene_stats) on synthetic frames: the exposure
histogram and its verdicts (a capped lens, a dim illuminator, sunlight, a normal scene), the
focus measure (sharp, blurred, plain; the same at any camera width), and ordinary real
near-infrared eyes (../shared/fixtures, skipped when absent) passing both."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kitd.capture import scene_stats
from kitd.capture.scene_stats import exposure, exposure_verdict, focus, focus_is_low

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
RNG = np.random.default_rng(7)


def noisy(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Sensor noise, as every real frame has."""
    return np.clip(image.astype(np.float32) + RNG.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def scene(width: int = 640, height: int = 480) -> np.ndarray:
    """A lit scene with edges at every scale: skin-grey with dark and bright discs and bars."""
    image = np.full((height, width), 180, np.uint8)
    s = width / 640
    cv2.circle(image, (int(320 * s), int(240 * s)), int(115 * s), 110, -1)
    cv2.circle(image, (int(320 * s), int(240 * s)), int(45 * s), 15, -1)
    for i in range(12):
        x = int((40 + i * 48) * s)
        cv2.rectangle(image, (x, int(40 * s)), (x + int(20 * s), int(120 * s)), 60 if i % 2 else 235, -1)
    return image


def blurred(image: np.ndarray, sigma_at_640: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma_at_640 * image.shape[1] / 640)


def test_exposure_summarises_the_histogram() -> None:
    image = np.zeros((100, 100), np.uint8)
    image[:, :20] = 10  # 20 % clipped dark
    image[:, 20:90] = 128
    image[:, 90:] = 255  # 10 % clipped bright
    found = exposure(image)
    assert found.dark_share == pytest.approx(0.2)
    assert found.bright_share == pytest.approx(0.1)
    assert found.mean == pytest.approx(0.2 * 10 + 0.7 * 128 + 0.1 * 255)
    assert (found.p05, found.p50, found.p95) == (10, 128, 255)
    assert set(found.to_json()) == {"mean", "dark_share", "bright_share", "p05", "p50", "p95"}
    with pytest.raises(ValueError):
        exposure(np.zeros((0, 0), np.uint8))


def test_a_lit_scene_is_normal_and_a_capped_or_blinded_one_is_not() -> None:
    lit = noisy(scene())
    assert exposure_verdict(exposure(lit)) == scene_stats.NORMAL
    # A capped lens or a dead illuminator: sensor noise around black.
    assert exposure_verdict(exposure(noisy(np.full((480, 640), 4, np.uint8)))) == scene_stats.BLACK
    # The illuminator weak: the same scene at a fifth of its light.
    dim = (lit.astype(np.float32) * 0.2).astype(np.uint8)
    assert exposure_verdict(exposure(dim)) == scene_stats.DARK
    # Sunlight: half the frame clipped, then nearly all of it.
    sunlit = np.clip(lit.astype(np.float32) * 1.6, 0, 255).astype(np.uint8)
    assert exposure_verdict(exposure(sunlit)) == scene_stats.BRIGHT
    assert exposure_verdict(exposure(np.full((480, 640), 255, np.uint8))) == scene_stats.SATURATED


def test_focus_falls_with_blur_and_a_plain_scene_is_low_only_when_featureless() -> None:
    sharp = focus(noisy(scene()))
    values = [focus(noisy(blurred(scene(), sigma))) for sigma in (1, 2, 4, 8, 16)]
    assert sharp > values[0] and all(a > b for a, b in zip(values, values[1:], strict=False))
    assert not focus_is_low(sharp) and not focus_is_low(values[1])
    assert focus_is_low(values[-1])  # a smeared lens: nothing left but the sensor's noise
    featureless = noisy(np.full((480, 640), 170, np.uint8))
    assert focus_is_low(focus(featureless))


def test_focus_reads_the_same_scene_alike_at_any_camera_width() -> None:
    at_640 = focus(noisy(scene(640, 480)))
    at_320 = focus(noisy(scene(320, 240)))
    at_1280 = focus(noisy(scene(1280, 960)))
    assert 0.5 < at_320 / at_640 < 2.0 and 0.5 < at_1280 / at_640 < 2.0
    # A frame already narrower than the working width is measured as it is, never scaled up.
    assert focus(noisy(scene(128, 96))) > scene_stats.FOCUS_LOW


def real_eyes() -> list[Path]:
    return sorted((FIXTURES / "iitd-iris").glob("*.png")) + sorted((FIXTURES / "open-iris").glob("*.png"))


@pytest.mark.skipif(not real_eyes(), reason=f"no real NIR eyes at {FIXTURES} (../shared/fixtures)")
def test_ordinary_real_near_infrared_eyes_pass_exposure_and_focus() -> None:
    """156 IITD eyes (320 x 240) and the open-iris one (640 x 480): measured means 95-181,
    dark shares 2-21 %, bright 0.1-18 %, focus 383-2801 (see scene_stats)."""
    for path in real_eyes():
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        found = exposure(image)
        assert exposure_verdict(found) == scene_stats.NORMAL, (path.name, found)
        value = focus(image)
        assert value > 20 * scene_stats.FOCUS_LOW, (path.name, value)
        # A strongly smeared lens over the same eye is caught, also with a sharp timestamp
        # the camera burns into its frames; a lens blurring as much as sigma 4 is not.
        smeared = blurred(image, 8)
        assert focus_is_low(focus(smeared)), path.name
        for stamped in (timestamped(smeared), timestamped(smeared, at=0.5, lines=2)):
            assert focus_is_low(focus(as_jpeg(stamped))), path.name
        assert not focus_is_low(focus(blurred(image, 4))), path.name


def timestamped(image: np.ndarray, at: float = 1.0, lines: int = 1) -> np.ndarray:
    """A camera's burned-in date and time: white text, sharp whatever the lens; by default one
    line along the bottom, else `lines` lines from `at` of the frame's height down."""
    out = image.copy()
    scale = image.shape[1] / 640
    for line in range(lines):
        y = min(image.shape[0] - 10, round(at * image.shape[0]) + round(30 * scale * line))
        cv2.putText(out, "2026-12-04 14:05:33 CAM1", (5, y), 0, scale, 255, max(1, round(2 * scale)))
    return out


def as_jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    """The frame as an MJPEG camera sends it: the text's strokes ring over their 8-pixel blocks."""
    done, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert done
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def test_a_smeared_lens_is_low_whatever_sharp_spots_lie_over_it() -> None:
    """The glint of the illuminator and a timestamp over a smeared lens: still low (the whole
    frame's Laplacian variance read them as focus)."""
    smeared = noisy(blurred(scene(), 16))
    cv2.circle(smeared, (400, 260), 6, 255, -1)  # the illuminator's glint, sharp on the cornea
    assert focus_is_low(focus(timestamped(smeared)))
    assert not focus_is_low(focus(timestamped(noisy(scene()))))


# One line across a boundary between two rows of tiles, two lines, three, four: each reads as
# focus (21-72) over the smeared scene to the measure that only left out the sharpest tiles.
@pytest.mark.parametrize(("at", "lines"), [(0.52, 1), (0.5, 2), (0.2, 3), (0.25, 4)])
def test_a_smeared_lens_is_low_under_a_timestamp_of_any_size_anywhere(at: float, lines: int) -> None:
    """A burned-in timestamp across a row of tiles, or of two lines or more, covers more than
    the fifth of the tiles left out as the sharpest; sent as a JPEG, its strokes ring round
    them. Over a smeared lens it is still no focus; over a sharp scene it hides at most a
    third of the focus (the tiles under its lines are left out)."""
    smeared = noisy(blurred(scene(), 16))
    assert focus_is_low(focus(as_jpeg(timestamped(smeared, at, lines))))
    sharp = noisy(scene())
    assert focus(as_jpeg(timestamped(sharp, at, lines))) > 0.6 * focus(as_jpeg(sharp))
