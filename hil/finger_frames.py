"""What lies on the simulated NB-1010's glass: 256x180 8-bit frames and where they come from.

Test patterns, PNG files, and the synthetic fingers of hil.synthetic_finger in their
named skin conditions, each offered as a frame source (a callable that returns the
next frame) that the simulator swaps in as its "current finger".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The sensor's frame, top row first, one byte a pixel.
WIDTH, HEIGHT = 256, 180
FRAME_BYTES = WIDTH * HEIGHT

# A frame source returns the next frame: 46080 bytes, or a 180x256 uint8 array.
FrameSource = Callable[[], Any]


def as_frame(frame: Any) -> bytes:
    """46080 bytes, top row first, from bytes or a 180x256 uint8 array; else ValueError."""
    if isinstance(frame, np.ndarray):
        if frame.shape != (HEIGHT, WIDTH) or frame.dtype != np.uint8:
            raise ValueError(f"a frame is a {HEIGHT}x{WIDTH} uint8 array, got {frame.shape} {frame.dtype}")
        return np.ascontiguousarray(frame).tobytes()
    frame = bytes(frame)
    if len(frame) != FRAME_BYTES:
        raise ValueError(f"a frame is {FRAME_BYTES} bytes, got {len(frame)}")
    return frame


def make_pattern(name: str) -> bytes:
    """A deterministic 256x180 test pattern: gradient, checker, stripes, rows or blank."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.int64)
    if name == "gradient":  # diagonal ramp 0..255, every row different
        span = (WIDTH - 1) * HEIGHT + (HEIGHT - 1) * WIDTH
        image = (x * HEIGHT + y * WIDTH) * 255 // span
    elif name == "checker":  # 16-pixel squares
        image = np.where((x // 16 + y // 16) % 2 == 0, 0x20, 0xE0)
    elif name == "stripes":  # diagonal ridge-like stripes, period 8 pixels
        image = np.where((x + y) // 4 % 2 == 0, 0x20, 0xE0)
    elif name == "rows":  # each row holds its own index: row order made visible
        image = y
    elif name == "blank":  # an empty sensor, like the recording's background
        image = np.full((HEIGHT, WIDTH), 0xE5)
    else:
        raise ValueError(f"unknown pattern '{name}' (known: {', '.join(PATTERNS)})")
    return image.astype(np.uint8).tobytes()


PATTERNS = ("gradient", "checker", "stripes", "rows", "blank")


def load_frame(path: str | Path) -> bytes:
    """A 256x180 PNG (grey, or three equal channels) as 46080 bytes, top row first."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read image '{path}'")
    if image.dtype != np.uint8:
        raise ValueError(f"'{path}': 8-bit samples expected, got {image.dtype}")
    if image.ndim == 3:
        if image.shape[2] != 3 or not (
            np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2])
        ):
            raise ValueError(f"'{path}': grey or three equal channels expected")
        image = image[:, :, 0]
    if image.shape != (HEIGHT, WIDTH):
        raise ValueError(f"'{path}': {WIDTH}x{HEIGHT} expected, got {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image).tobytes()


def fixed_source(frame: Any) -> FrameSource:
    """A finger that always presents the same frame."""
    frame = as_frame(frame)
    return lambda: frame


def rotating_source(frames: list[bytes]) -> FrameSource:
    """A finger that presents these frames one after another, in turn."""
    state = {"next": 0}

    def source() -> bytes:
        frame = frames[state["next"] % len(frames)]
        state["next"] += 1
        return frame

    return source


# A named finger condition: factory(seed) -> that finger's frame source (seed None: the default finger).
Condition = Callable[[int | None], FrameSource]

SENSOR_PPI = 385.0  # the NB-1010-U datasheet's resolution
DEFAULT_FINGER_SEED = 1


def synthetic_fingers() -> dict[str, Condition]:
    """A conditions table: every condition of hil.synthetic_finger, at the sensor's size and resolution."""
    from hil import synthetic_finger

    def factory_for(condition: str) -> Condition:
        def factory(seed: int | None) -> FrameSource:
            frame = synthetic_finger.render_finger(
                DEFAULT_FINGER_SEED if seed is None else seed,
                condition,
                width=WIDTH,
                height=HEIGHT,
                ppi=SENSOR_PPI,
            )
            return fixed_source(frame.tobytes())

        return factory

    return {condition: factory_for(condition) for condition in synthetic_finger.CONDITIONS}
