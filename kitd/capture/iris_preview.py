"""The iris camera's live preview as pictures: frames scaled for the 7" screen with the
overlays drawn on them, and the plain dark card shown while there is no frame to show.

The pictures carry no words: the page says what is going on, in its own language, from the
API (the device's status, the session's state and feedback codes).

Pure image work (OpenCV); serving it over HTTP is the API's (kitd.api.preview_stream) and
keeping it fed from the camera is the kit's (kitd.services.iris_feed). Nothing here writes a
frame to disk.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from kitd.drivers.camera_frames import Frame

# Drawn on every preview frame, in order: overlay(image, frame, scale) with `image` the scaled
# BGR preview (draw in place) and `scale` preview pixels per camera pixel.
Overlay = Callable[[np.ndarray, Frame, float], None]


def render_preview(
    image: np.ndarray, frame: Frame, width: int, quality: int, overlays: list[Overlay]
) -> bytes:
    """One preview JPEG: scaled down to `width` (never up), overlays drawn, encoded."""
    height_in, width_in = image.shape[:2]
    scale = min(1.0, width / width_in)
    if scale < 1.0:
        size = (max(1, round(width_in * scale)), max(1, round(height_in * scale)))
        # Linear, not area: a 0.75 reduction for a 7" screen shows no aliasing worth the 5x cost.
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if overlays:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        for overlay in overlays:
            overlay(image, frame, scale)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the preview frame")
    return data.tobytes()


CARD_GREY = 24


def render_card(width: int) -> bytes:
    """A plain dark 4:3 card `width` pixels wide: nothing drawn on it."""
    card = np.full((width * 3 // 4, width), CARD_GREY, np.uint8)
    ok, data = cv2.imencode(".jpg", card, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("could not encode the preview card")
    return data.tobytes()
