"""A frame's number as a block code in its top-left corner, so that tests know exactly which frames arrived.

Two rows of 16 square cells (white = 1, light grey = 0) on a pale quiet zone: 24 bits of
frame number (frames wrap after 2^24, over six days at 30 fps) and an 8-bit CRC, so a
misread is refused rather than taken for another frame. Cells are 10 px on a 640-px-wide
frame and scale with the width, so the code survives the preview's scaling and JPEG.
"""

from __future__ import annotations

import numpy as np

BITS = 24
CRC_BITS = 8
COLUMNS = 16
ROWS = 2
CELL_AT_640 = 10
MARGIN_AT_640 = 6
# No cell is darker than skin: a black cell in a corner is a dark round blob to the iris
# assessor, which would find a "pupil" in it whenever no eye is in view.
QUIET = 205
ZERO = 170
ONE = 245


def crc8(value: int) -> int:
    """CRC-8 (polynomial 0x07) of the three bytes of `value`, XOR 0xA5 so that a blank corner is no code."""
    crc = 0
    for byte in value.to_bytes(3, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xA5


def _layout(width: int) -> tuple[float, float]:
    scale = width / 640
    return CELL_AT_640 * scale, MARGIN_AT_640 * scale


def code_box(width: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the code and its quiet zone on a frame `width` pixels wide."""
    cell, margin = _layout(width)
    return 0, 0, int(round(2 * margin + COLUMNS * cell)), int(round(2 * margin + ROWS * cell))


def stamp(image: np.ndarray, number: int) -> None:
    """Write `number` (mod 2^24) into the grey image's corner, in place."""
    number %= 1 << BITS
    word = (number << CRC_BITS) | crc8(number)
    cell, margin = _layout(image.shape[1])
    x0, y0, x1, y1 = code_box(image.shape[1])
    image[y0:y1, x0:x1] = QUIET
    for i in range(BITS + CRC_BITS):
        row, col = divmod(i, COLUMNS)
        bit = (word >> (BITS + CRC_BITS - 1 - i)) & 1
        top, left = int(round(margin + row * cell)), int(round(margin + col * cell))
        bottom, right = int(round(margin + (row + 1) * cell)), int(round(margin + (col + 1) * cell))
        image[top:bottom, left:right] = ONE if bit else ZERO


def read(image: np.ndarray) -> int | None:
    """The number stamped in a (possibly scaled, JPEG-compressed) grey image, or None."""
    if image.ndim == 3:
        image = image.mean(axis=2)
    cell, margin = _layout(image.shape[1])
    half = max(1, int(cell / 4))
    quiet = image[: max(1, int(margin / 2)), : int(COLUMNS * cell)]
    if abs(float(quiet.mean()) - QUIET) > 20:
        return None
    word = 0
    for i in range(BITS + CRC_BITS):
        row, col = divmod(i, COLUMNS)
        cy, cx = int(margin + (row + 0.5) * cell), int(margin + (col + 0.5) * cell)
        patch = image[cy - half : cy + half + 1, cx - half : cx + half + 1]
        if patch.size == 0:
            return None
        word = (word << 1) | int(patch.mean() > QUIET)
    number, crc = word >> CRC_BITS, word & 0xFF
    return number if crc8(number) == crc else None
