"""Fingerprint capture: wait for a finger on the reader, then take one frame."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import cv2
import numpy as np

from kitd.errors import NoFinger, ProtocolError


class FingerprintReader(Protocol):
    def finger_present(self) -> bool: ...

    def capture_frame(self) -> np.ndarray: ...


def capture_raw_fingerprint(
    reader: FingerprintReader,
    timeout_s: float,
    poll_interval_s: float = 0.1,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Poll until a finger is present, then capture one frame (no quality gate).

    Raises NoFinger when no finger arrives within `timeout_s` or the wait is
    cancelled; device errors pass through as the driver raised them.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if reader.finger_present():
            return reader.capture_frame()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoFinger(f"no finger on the reader within {timeout_s:g} s")
        pause = min(poll_interval_s, remaining)
        if cancel is not None:
            if cancel.wait(pause):
                raise NoFinger("capture cancelled before a finger arrived")
        else:
            time.sleep(pause)


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit grey frame as PNG bytes (lossless)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ProtocolError("could not encode the frame as PNG")
    return data.tobytes()
