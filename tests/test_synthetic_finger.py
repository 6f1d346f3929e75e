"""Tests of the synthetic fingerprint generator (hil/synthetic_finger.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.synthetic_finger import (
    CONDITIONS,
    MM_PER_INCH,
    contact_sheet,
    finger_spec,
    render_finger,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

# A real adult finger's ridge period (mm); the generator draws each finger's period
# from 0.45-0.50 mm, so the nominal value is within 6% of any finger's.
NOMINAL_PERIOD_MM = 0.475


def spectral_period_px(image: np.ndarray) -> float:
    """Dominant ridge period (px) from the image's 2-D power spectrum.

    The Hann-windowed frame's power is averaged over rings of equal radial frequency;
    the ring of most power between 2.5 and 20 px periods is the ridge frequency, and
    the power-weighted mean frequency within 25% of it refines the estimate beyond
    the ring spacing (a plain centroid over the whole band would be pulled up by the
    harmonics of the non-sinusoidal ridge profile).
    """
    img = image.astype(np.float64)
    img -= img.mean()
    h, w = img.shape
    img *= np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(img)) ** 2
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    edges = np.arange(1 / 20, 1 / 2.5, 1 / max(h, w))
    ring = np.digitize(f, edges)
    ring_power = np.bincount(ring.ravel(), power.ravel(), len(edges) + 1)[1:-1]
    ring_count = np.bincount(ring.ravel(), minlength=len(edges) + 1)[1:-1]
    peak = edges[np.argmax(ring_power / np.maximum(ring_count, 1))] + 0.5 / max(h, w)
    near = (f > 0.75 * peak) & (f < 1.25 * peak)
    return float(1.0 / ((power * f)[near].sum() / power[near].sum()))


def _ridge_detail(image: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Band-passed image (local mean removed) and its local standard deviation."""
    img = image.astype(np.float32)
    detail = img - cv2.GaussianBlur(img, (0, 0), period)
    std = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), period))
    return detail, std


def test_conditions_are_the_issue_list() -> None:
    assert CONDITIONS == (
        "good",
        "light",
        "wet",
        "dry",
        "partial",
        "off_center",
        "smudged",
        "dirty_sensor",
        "no_finger",
    )


@pytest.mark.parametrize("condition", CONDITIONS)
def test_deterministic_per_seed_and_condition(condition: str) -> None:
    a = render_finger(7, condition)
    b = render_finger(7, condition)
    assert a.dtype == np.uint8 and a.shape == (180, 256)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_finger(8, condition))


def test_deterministic_across_cache_clear() -> None:
    """The cached ridge pattern and a freshly grown one are the same pixels."""
    from hil import synthetic_finger

    first = render_finger(11, "good", width=200, height=150, ppi=450.0)
    synthetic_finger._canvas.cache_clear()
    assert np.array_equal(first, render_finger(11, "good", width=200, height=150, ppi=450.0))


def test_same_finger_in_every_condition() -> None:
    """The seed fixes the finger; conditions only change how it touches the sensor."""
    period = finger_spec(3).ridge_period_px(385.0)
    good, good_std = _ridge_detail(render_finger(3, "good"), period)
    for condition in ("light", "dry", "dirty_sensor"):
        other, other_std = _ridge_detail(render_finger(3, condition), period)
        # Where both show ridges, the ridges are the same ones (they line up).
        mask = (good_std > 30) & (other_std > 8)
        r = np.corrcoef(good[mask], other[mask])[0, 1]
        assert mask.mean() > 0.2 and r > 0.35, (condition, mask.mean(), r)
    # A different seed is a different finger: its ridges do not line up.
    other, other_std = _ridge_detail(render_finger(4, "good"), period)
    mask = (good_std > 30) & (other_std > 30)
    assert abs(np.corrcoef(good[mask], other[mask])[0, 1]) < 0.2


def test_sizes_and_bad_arguments() -> None:
    assert render_finger(1, "good", width=500, height=500, ppi=500.0).shape == (500, 500)
    with pytest.raises(ValueError):
        render_finger(1, "muddy")


@pytest.mark.parametrize(("ppi", "width", "height"), [(385.0, 256, 180), (500.0, 333, 234)])
def test_ridge_period_from_spectrum(ppi: float, width: int, height: int) -> None:
    expected = NOMINAL_PERIOD_MM * ppi / MM_PER_INCH
    for seed in range(6):
        measured = spectral_period_px(render_finger(seed, "good", width=width, height=height, ppi=ppi))
        spec_px = finger_spec(seed).ridge_period_px(ppi)
        print(f"ppi {ppi:.0f} seed {seed}: {measured:.2f} px (finger {spec_px:.2f}, nominal {expected:.2f})")
        assert abs(measured - expected) <= 0.15 * expected
        assert abs(measured - spec_px) <= 0.10 * spec_px


def test_pattern_classes_all_occur() -> None:
    patterns = {finger_spec(seed).pattern for seed in range(60)}
    assert patterns == {"arch", "tented_arch", "left_loop", "right_loop", "whorl"}


def test_contact_sheet_of_all_conditions() -> None:
    """Writes artifacts/fingers_contact_sheet.png: two fingers in every condition."""
    images = {}
    for seed in (0, 5):
        for condition in CONDITIONS:
            images[f"{seed} {condition}"] = render_finger(seed, condition)
    sheet = contact_sheet(images)
    assert sheet.ndim == 2 and sheet.dtype == np.uint8
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "fingers_contact_sheet.png"
    assert cv2.imwrite(str(path), sheet)
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), sheet)
    # What a person looks at is every frame, whole and unaltered (doubled, pixel for pixel),
    # each once, in reading order.
    places = [
        where_on_sheet(sheet, np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)) for image in images.values()
    ]
    assert all(len(found) == 1 for found in places), places
    corners = [found[0] for found in places]
    assert corners == sorted(corners) and len(set(corners)) == len(corners)


def where_on_sheet(sheet: np.ndarray, image: np.ndarray) -> list[tuple[int, int]]:
    """Every (row, column) at which `image` lies on `sheet` exactly."""
    h, w = image.shape
    cy, cx = h // 2, w // 2
    patch = image[cy : cy + 12, cx : cx + 12]
    scores = cv2.matchTemplate(sheet, np.ascontiguousarray(patch), cv2.TM_SQDIFF)
    found = []
    for y, x in np.argwhere(scores < 100):  # an exact match, give or take float rounding; checked below
        top, left = int(y) - cy, int(x) - cx
        if top >= 0 and left >= 0 and np.array_equal(sheet[top : top + h, left : left + w], image):
            found.append((top, left))
    return found
