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


# ---- the empty glass and the sensor's defects --------------------------------------------
# What the real NB-1010-U shows where no finger touches (the background of
# ../shared/fixtures/nb1010/capture.png): about 229-231 grey everywhere, pixel noise of ~1.5
# grey, isolated dark specks on ~0.3% of pixels. The simulator adds a mild vignette (2% darker
# in the corners) so that a check that passes it does not rely on a perfectly flat sensor.
GLASS_GREY = 231.0
GLASS_VIGNETTE = 0.02
GLASS_NOISE = 1.5
GLASS_SPECKS = 0.002
DEAD_GREY = 6  # a dead row reads (almost) black
STUCK_GREY = 140  # a stuck column holds one value whatever lies on it


def empty_glass(seed: int = DEFAULT_FINGER_SEED) -> np.ndarray:
    """The 180x256 frame the sensor sends with nothing on it: light, near uniform, noisy."""
    rng = np.random.default_rng([0x61A55, seed])
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    r2 = ((x - (WIDTH - 1) / 2) / (WIDTH / 2)) ** 2 + ((y - (HEIGHT - 1) / 2) / (HEIGHT / 2)) ** 2
    image = GLASS_GREY * (1.0 - GLASS_VIGNETTE / 2 * r2) + rng.normal(0.0, GLASS_NOISE, (HEIGHT, WIDTH))
    specks = rng.random((HEIGHT, WIDTH)) < GLASS_SPECKS
    image = np.where(specks, image - rng.uniform(40, 160, (HEIGHT, WIDTH)), image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def with_dirt(frame: np.ndarray, seed: int = DEFAULT_FINGER_SEED) -> np.ndarray:
    """Dirt on the glass: a few blotches of dried residue (darker, soft edged) and a faint
    latent print (ridges a finger left behind), the same for the same seed."""
    import cv2

    rng = np.random.default_rng([0xD127, seed])
    shade = np.zeros((HEIGHT, WIDTH), np.float32)
    for _ in range(5):
        centre = (int(rng.uniform(20, WIDTH - 20)), int(rng.uniform(15, HEIGHT - 15)))
        axes = (int(rng.uniform(7, 20)), int(rng.uniform(4, 10)))  # 0.5-1.3 mm x 0.3-0.7 mm
        cv2.ellipse(
            shade, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.25, 0.5)), -1
        )
    shade = cv2.GaussianBlur(shade, (0, 0), 1.5)
    # The latent print: ~4 x 3 mm of ridges (period 7 px, as at 385 ppi), 22 grey deep.
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    cx, cy = rng.uniform(60, WIDTH - 60), rng.uniform(45, HEIGHT - 45)
    inside = np.clip(1.3 - np.sqrt(((x - cx) / 32) ** 2 + ((y - cy) / 24) ** 2), 0.0, 1.0)
    angle = rng.uniform(0, np.pi)
    ridges = 0.5 + 0.5 * np.cos(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / 7.0)
    image = frame.astype(np.float32) * (1.0 - shade) - 22.0 * inside * ridges
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def spread_lines(count: int, size: int) -> list[int]:
    """`count` line indices spread evenly over `size` lines (none on the frame's edge)."""
    return [(i + 1) * size // (count + 1) for i in range(count)]


def with_dead_rows(frame: np.ndarray, count: int) -> np.ndarray:
    """`count` rows that read black: their sense line is broken."""
    image = frame.copy()
    image[spread_lines(count, HEIGHT), :] = DEAD_GREY
    return image


def with_stuck_columns(frame: np.ndarray, count: int) -> np.ndarray:
    """`count` columns that hold one value whatever is on them: their drive line is stuck."""
    image = frame.copy()
    image[:, spread_lines(count, WIDTH)] = STUCK_GREY
    return image
