"""Reading kitctl's inputs from disk: bytes, or an image as 8-bit grey; one-line reasons when not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kitd.grey_image import to_grey8


class InputUnreadable(Exception):
    """The input file is missing, unreadable or not of the expected kind (says why)."""


def read_input(path: Path) -> bytes:
    """The bytes of an input file, or InputUnreadable saying in a few words why not."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputUnreadable("no such file") from None
    except IsADirectoryError:
        raise InputUnreadable("is a directory") from None
    except OSError as exc:
        raise InputUnreadable(exc.strerror or str(exc)) from None


def read_grey_image(path: Path) -> np.ndarray:
    """Any PNG, TIFF, BMP or JPEG as an 8-bit grey array, by the kit's one rule (kitd.grey_image)."""
    data = np.frombuffer(read_input(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputUnreadable("not a readable image (PNG, TIFF, BMP or JPEG)")
    return to_grey8(image)
