"""kitctl's inputs: a file's bytes, a JSON document (a statement, a report, receipts, a
recording), an image as 8-bit grey; each with a one-line reason when it is not one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from kitformats.named_files import read_named_file

from kitd.grey_image import to_grey8


class InputUnreadable(Exception):
    """The input file is missing, unreadable or not of the expected kind (says why)."""


def read_input(path: Path) -> bytes:
    """The bytes of an input file, or InputUnreadable saying in a few words why not."""
    try:
        return read_named_file(path)
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


def json_document(data: bytes) -> Any:
    """`data` as a JSON document, or InputUnreadable saying in one line why it is not one:
    not UTF-8, not JSON (where), nested past what the parser recurses into, or a number of
    thousands of digits. (NaN is read as Python reads it: the document's checks name it.)"""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputUnreadable(f"not JSON: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputUnreadable(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputUnreadable("not JSON: nested too deeply") from None
    except ValueError:  # an integer past Python's limit on digits
        raise InputUnreadable("not JSON: a number of thousands of digits") from None
