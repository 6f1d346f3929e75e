"""8-bit grey images: the one rule that turns any decoded image into the grey the kit judges,
and the lossless PNG a capture is handed over in.

The rule, for every modality and every way in (a camera frame, a file given to kitctl, an
image handed to an assessor):
- colour (BGR or BGRA, as OpenCV decodes) becomes grey by OpenCV's luma weights;
- 16-bit samples keep their top 8 bits (`>> 8`): a 16-bit file spans 0-65535, and clipping
  it at 255 would turn every print or eye white;
- floating-point samples are taken as 0-1 when none is above 1, else as 0-255, and clipped
  to 0-255 with NaN as 0;
- anything else (signed or 32-bit integers) is clipped to 0-255.
"""

from __future__ import annotations

import cv2
import numpy as np

from kitd.errors import ProtocolError


def to_grey8(image: np.ndarray) -> np.ndarray:
    """`image` as a contiguous 2-D uint8 array, by the rule above."""
    g = np.asarray(image)
    if g.ndim == 3 and g.shape[2] == 1:
        g = g[:, :, 0]
    if g.dtype == np.uint16:
        g = (g >> 8).astype(np.uint8)
    elif g.dtype != np.uint8:
        g = g.astype(np.float64)
        if np.issubdtype(image.dtype, np.floating) and g.size and float(np.nanmax(g)) <= 1.0:
            g = g * 255.0
        g = np.clip(np.nan_to_num(g), 0, 255).astype(np.uint8)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_BGR2GRAY if g.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if g.ndim != 2:
        raise ValueError(f"not an image: shape {g.shape}")
    return np.ascontiguousarray(g)


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit grey frame as PNG bytes (lossless)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ProtocolError("could not encode the frame as PNG")
    return data.tobytes()
