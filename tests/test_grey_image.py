"""One rule to 8-bit grey, whatever the modality and the way in (kitd.grey_image)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.rig import FIXTURES, venv_script
from kitd.capture.fingerprint_quality import assess_fingerprint
from kitd.capture.iris_quality import assess_iris
from kitd.grey_image import to_grey8


def test_16_bit_keeps_the_top_8_bits() -> None:
    wide = np.array([[0, 255, 256, 0x1234, 65535]], np.uint16)
    assert to_grey8(wide).tolist() == [[0, 0, 1, 0x12, 255]]


def test_float_is_0_to_1_or_0_to_255_and_clipped() -> None:
    assert to_grey8(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 127, 255]]
    assert to_grey8(np.array([[-3.0, 128.0, 300.0, np.nan]], np.float32)).tolist() == [[0, 128, 255, 0]]


def test_colour_becomes_luma_and_a_single_channel_is_squeezed() -> None:
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 2] = 200  # pure red
    assert to_grey8(bgr).tolist() == cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).tolist()
    assert to_grey8(np.full((2, 2, 1), 7, np.uint8)).tolist() == [[7, 7], [7, 7]]
    assert to_grey8(np.dstack([bgr, np.full((2, 2), 255, np.uint8)])).shape == (2, 2)


def test_8_bit_grey_is_unchanged() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert to_grey8(grey) is not None and np.array_equal(to_grey8(grey), grey)


def _as_16_bit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.uint16) * 257  # 0..255 -> 0..65535, the top byte is the original


@pytest.mark.parametrize("which", ["fingerprint", "iris"])
def test_both_assessors_judge_a_16_bit_image_as_its_8_bit_original(which: str) -> None:
    """Before, iris shifted 16-bit input and fingerprints clipped it (every print turned white)."""
    if which == "fingerprint":
        path = FIXTURES / "nb1010" / "capture.png"
        judge = lambda image: assess_fingerprint(image, 385.0)  # noqa: E731
    else:
        path = FIXTURES / "open-iris" / "anonymized.png"
        judge = assess_iris
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/fixtures)")
    image = to_grey8(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    original, wide = judge(image), judge(_as_16_bit(image))
    assert wide.score == original.score and wide.feedback == original.feedback


def test_kitctl_reads_a_16_bit_file_by_the_same_rule(tmp_path: Path) -> None:
    path = FIXTURES / "nb1010" / "capture.png"
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/fixtures)")
    image = to_grey8(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), _as_16_bit(image))
    narrow = tmp_path / "narrow.png"
    cv2.imwrite(str(narrow), image)
    lines = subprocess.run(
        [venv_script("kitctl"), "quality", "fingerprint", "--json", str(narrow), str(wide)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert lines[0].replace("narrow", "X") == lines[1].replace("wide", "X")
