"""Synthetic near-infrared eyes, as a kit's iris camera sees them, with their ground truth.

An eye is rendered from `EyeParams` on a 640 x 480 grey frame (any size works; lengths are
pixels): skin with soft texture, the eye opening between an upper and a lower eyelid, bright
sclera, a textured iris (radial furrows, crypts, a collarette and a darker limbus), a dark
pupil, eyelashes, and the illuminator's specular reflections. Under near-infrared light skin
and sclera are bright and the iris mid-grey, as in the open-iris sample
(../shared/fixtures/open-iris): the default geometry follows it (iris radius ~115 px, pupil
~45 px, the opening ~4.4 iris radii wide). Gaze moves the iris and pupil inside the opening
and foreshortens them; blur, motion blur and exposure act on the whole frame; sensor noise
is added per frame by the simulator (`noise_bank`). Rendering takes tens of milliseconds,
so the simulator renders once per parameter change and caches.

`render(params)` returns the image and `EyeTruth`: the circles as drawn, how much of the
iris is visible between the lids, and whether there is an eye at all.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
SKIN, SCLERA, IRIS, LIMBUS, PUPIL, LASH = 215.0, 225.0, 118.0, 78.0, 16.0, 28.0


@dataclass(frozen=True)
class EyeParams:
    """Everything the control channel can set; lengths in pixels of the frame."""

    iris_x: float = 320.0
    iris_y: float = 240.0
    iris_r: float = 115.0
    pupil_r: float = 45.0
    pupil_dx: float = 0.0  # pupil offset from the iris centre (real pupils sit a little off)
    pupil_dy: float = 0.0
    gaze_dx: float = 0.0  # where the eye looks: moves iris and pupil in the opening
    gaze_dy: float = 0.0
    eyelid: float = 1.0  # opening: 1 wide open, 0 closed
    blur: float = 0.0  # Gaussian sigma, pixels (out of focus)
    motion: float = 0.0  # motion blur length, pixels
    motion_angle: float = 0.0  # degrees
    noise: float = 2.0  # sensor noise sigma, grey levels (added per frame)
    exposure: float = 1.0  # gain: below 1 too dark, above 1 too bright
    eye: bool = True  # False: skin only (nobody in front of the camera)
    reflections: tuple[tuple[float, float], ...] = ((338.0, 222.0),)  # illuminator spots, frame pixels
    seed: int = 1
    width: int = WIDTH
    height: int = HEIGHT

    def replace(self, **changes: Any) -> EyeParams:
        return dataclasses.replace(self, **changes)


FIELDS = {f.name: f.type for f in dataclasses.fields(EyeParams)}


@dataclass(frozen=True)
class EyeTruth:
    """What was drawn: circles (centre x, y and radius; the iris's horizontal semi-axis when
    foreshortened), the visible share of the iris between the lids, and the eye's presence."""

    eye: bool
    pupil: tuple[float, float, float]
    iris: tuple[float, float, float]
    iris_visible: float
    eyelid: float
    reflections: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean noise of unit spread, smoothed to features of about `sigma` pixels."""
    small = (max(2, int(shape[0] / sigma)), max(2, int(shape[1] / sigma)))
    coarse = rng.normal(0, 1, small).astype(np.float32)
    field_ = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return field_ / max(1e-6, float(field_.std()))


def eyelids(p: EyeParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower eyelid heights (y) along columns x: two arcs meeting at the corners."""
    half_width = 2.2 * p.iris_r
    t = np.clip((x - p.iris_x) / half_width, -1.0, 1.0)
    shape = 1.0 - t**2
    lower_height = 0.92 * p.iris_r
    upper_open = 1.0 * p.iris_r  # the upper lid rests a little over the iris, as in real eyes
    opening = min(max(p.eyelid, 0.0), 1.0)
    # Closing moves the upper lid down onto the lower one.
    upper_height = opening * upper_open - (1.0 - opening) * lower_height
    centre_y = p.iris_y + 0.05 * p.iris_r
    upper = centre_y - upper_height * shape
    lower = centre_y + lower_height * shape
    outside = np.abs((x - p.iris_x) / half_width) >= 1.0
    upper = np.where(outside, centre_y, upper)
    lower = np.where(outside, centre_y, lower)
    return upper, lower


def render(p: EyeParams) -> tuple[np.ndarray, EyeTruth]:
    """The eye as an 8-bit grey frame (without per-frame sensor noise) and its ground truth."""
    rng = np.random.default_rng(p.seed)
    h, w = p.height, p.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    skin_shade = 1.0 - 0.12 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 4
    image = SKIN * skin_shade + 5.0 * _smooth_noise(rng, (h, w), 60) + 3.0 * _smooth_noise(rng, (h, w), 4)
    cx, cy = p.iris_x + p.gaze_dx, p.iris_y + p.gaze_dy
    # Looking away turns the iris: narrower across the direction of gaze.
    squeeze_x = max(0.45, 1.0 - 0.45 * min(1.0, abs(p.gaze_dx) / (1.6 * p.iris_r)))
    squeeze_y = max(0.45, 1.0 - 0.45 * min(1.0, abs(p.gaze_dy) / (1.6 * p.iris_r)))
    iris_visible = 0.0
    if p.eye:
        upper, lower = eyelids(p, xx[0])
        upper_map, lower_map = upper[None, :], lower[None, :]
        # Soft (one-pixel) edges everywhere: coverage from signed distances.
        inside = np.clip(yy - upper_map + 0.5, 0, 1) * np.clip(lower_map - yy + 0.5, 0, 1)
        inside *= (np.abs(xx - p.iris_x) < 2.2 * p.iris_r) * (upper_map < lower_map)
        corner_shade = 1.0 - 0.22 * np.clip(np.abs(xx - p.iris_x) / (2.2 * p.iris_r), 0, 1) ** 2
        eyeball = SCLERA * corner_shade + 4.0 * _smooth_noise(rng, (h, w), 25)

        ex, ey = (xx - cx) / squeeze_x, (yy - cy) / squeeze_y
        radius = np.sqrt(ex**2 + ey**2)
        angle = np.arctan2(ey, ex)
        px, py = cx + p.pupil_dx * squeeze_x, cy + p.pupil_dy * squeeze_y
        pr = np.sqrt(((xx - px) / squeeze_x) ** 2 + ((yy - py) / squeeze_y) ** 2)
        span = max(1.0, p.iris_r - p.pupil_r)
        u = np.clip((radius - p.pupil_r) / span, 0, 1)  # 0 at the pupil, 1 at the limbus
        furrows = sum(
            rng.uniform(0.4, 1.0)
            * np.sin(k * angle + rng.uniform(0, 2 * np.pi) + 3.0 * u * rng.uniform(-1, 1))
            for k in (23, 37, 51, 68)
        )
        iris = IRIS + 7.0 * furrows * (0.6 + 0.4 * np.sin(np.pi * u)) + 6.0 * _smooth_noise(rng, (h, w), 3)
        collarette = 0.33
        iris += 16.0 * np.exp(-(((u - collarette - 0.03 * np.sin(9 * angle)) / 0.05) ** 2))
        iris -= 10.0 * (u < collarette)  # the pupillary zone is a little darker
        for _ in range(9):  # crypts: dark pits in the ciliary zone
            ca, cu = rng.uniform(0, 2 * np.pi), rng.uniform(collarette + 0.1, 0.85)
            cr = cu * span + p.pupil_r
            ccx, ccy = cx + cr * math.cos(ca) * squeeze_x, cy + cr * math.sin(ca) * squeeze_y
            size = rng.uniform(3, 8)
            iris -= 28.0 * np.exp(-(((xx - ccx) ** 2 + (yy - ccy) ** 2) / (2 * size**2)))
        iris = iris * (1 - np.clip((u - 0.8) / 0.2, 0, 1)) + LIMBUS * np.clip((u - 0.8) / 0.2, 0, 1)
        in_iris = np.clip(p.iris_r - radius + 0.5, 0, 1)
        in_pupil = np.clip(p.pupil_r - pr + 0.5, 0, 1)
        eyeball = eyeball * (1 - in_iris) + iris * in_iris
        eyeball = eyeball * (1 - in_pupil) + PUPIL * in_pupil
        # The upper lid shades the top of the eyeball.
        eyeball *= 1.0 - 0.25 * np.exp(-np.maximum(yy - upper_map, 0) / 12.0)
        iris_area = float(in_iris.sum())
        iris_visible = float((in_iris * inside).sum()) / iris_area if iris_area else 0.0
        image = image * (1 - inside) + eyeball * inside
        _draw_lids_and_lashes(image, p, upper, lower, rng)
        for rx, ry in p.reflections:
            spot = np.exp(-((xx - rx) ** 2 + (yy - ry) ** 2) / (2 * 3.5**2))
            glow = np.exp(-((xx - rx) ** 2 + (yy - ry) ** 2) / (2 * 9.0**2))
            image = np.maximum(image, 255.0 * np.clip(spot * 1.6, 0, 1) * inside + image * 0.25 * glow)
    image *= p.exposure
    image = np.clip(image, 0, 255)
    if p.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), p.blur)
    if p.motion >= 2:
        image = cv2.filter2D(image, -1, motion_kernel(p.motion, p.motion_angle))
    truth = EyeTruth(
        eye=p.eye,
        pupil=(cx + p.pupil_dx * squeeze_x, cy + p.pupil_dy * squeeze_y, p.pupil_r * squeeze_x),
        iris=(cx, cy, p.iris_r * squeeze_x),
        iris_visible=round(iris_visible, 4),
        eyelid=p.eyelid,
        reflections=tuple(p.reflections),
    )
    return np.clip(image, 0, 255).astype(np.uint8), truth


def _draw_lids_and_lashes(
    image: np.ndarray, p: EyeParams, upper: np.ndarray, lower: np.ndarray, rng: np.random.Generator
) -> None:
    """Lid margins and eyelashes, drawn onto the float image in place."""
    xs = np.arange(image.shape[1])
    left, right = int(p.iris_x - 2.2 * p.iris_r), int(p.iris_x + 2.2 * p.iris_r)
    keep = (xs > left) & (xs < right)
    layer = np.zeros(image.shape, np.float32)
    upper_line = np.stack([xs[keep], upper[keep]], axis=1).astype(np.int32)
    lower_line = np.stack([xs[keep], lower[keep]], axis=1).astype(np.int32)
    cv2.polylines(layer, [upper_line], False, 1.0, 3, cv2.LINE_AA)
    cv2.polylines(layer, [lower_line], False, 0.6, 2, cv2.LINE_AA)
    count = int(70 * (right - left) / (4.4 * 115))
    for i in range(count):
        x0 = rng.uniform(left + 0.08 * (right - left), right - 0.08 * (right - left))
        y0 = float(np.interp(x0, xs, upper))
        side = (x0 - p.iris_x) / (2.2 * p.iris_r)
        length = rng.uniform(0.25, 0.45) * p.iris_r * (1 - 0.5 * side**2)
        lean = side * 0.9 + rng.normal(0, 0.15)
        points = []
        for t in np.linspace(0, 1, 6):
            # Lashes rise, then curl outwards.
            points.append((x0 + length * (lean * t + 0.35 * side * t * t), y0 - length * (t - 0.45 * t * t)))
        cv2.polylines(layer, [np.array(points, np.int32)], False, 1.0, 2 if i % 3 else 1, cv2.LINE_AA)
    for _ in range(count // 4):
        x0 = rng.uniform(left + 0.2 * (right - left), right - 0.2 * (right - left))
        y0 = float(np.interp(x0, xs, lower))
        length = rng.uniform(0.08, 0.16) * p.iris_r
        tip = (x0 + rng.normal(0, 0.3) * length, y0 + length)
        cv2.line(layer, (int(x0), int(y0)), (int(tip[0]), int(tip[1])), 0.7, 1, cv2.LINE_AA)
    image *= 1 - layer * (1 - LASH / SKIN)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line kernel: blur along a motion of `length` pixels at `angle_deg`."""
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    half = (length - 1) / 2
    cv2.line(
        kernel,
        (int(round(c - dx * half)), int(round(c - dy * half))),
        (int(round(c + dx * half)), int(round(c + dy * half))),
        1.0,
        1,
        cv2.LINE_AA,
    )
    return kernel / kernel.sum()


def noise_bank(noise: float, shape: tuple[int, int], count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """`count` fields of sensor noise (int16) to add to successive frames, cycled."""
    rng = np.random.default_rng(seed)
    return [np.round(rng.normal(0, noise, shape)).astype(np.int16) for _ in range(count)]


def with_noise(image: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    if noise is None:
        return image.copy()
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def parse_value(name: str, text: str) -> Any:
    """A control-channel value for field `name`: numbers, on/off, or reflections as x,y;x,y."""
    if name not in FIELDS:
        raise ValueError(f"unknown parameter '{name}' (known: {', '.join(FIELDS)})")
    if name == "eye":
        if text not in ("on", "off", "1", "0", "true", "false"):
            raise ValueError("eye takes on or off")
        return text in ("on", "1", "true")
    if name == "reflections":
        if text in ("", "none"):
            return ()
        try:
            return tuple(tuple(float(v) for v in pair.split(",")) for pair in text.split(";"))
        except ValueError:
            raise ValueError("reflections take x,y;x,y (or none)") from None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} takes a number, got '{text}'") from None
    if name in ("seed", "width", "height"):
        return int(value)
    return value


def check_params(p: EyeParams) -> None:
    """ValueError naming the parameter that cannot be drawn."""
    if not 16 <= p.width <= 4096 or not 16 <= p.height <= 4096:
        raise ValueError("width and height must be 16..4096")
    if p.iris_r <= 0 or not 0 < p.pupil_r < p.iris_r:
        raise ValueError("need 0 < pupil_r < iris_r")
    if not 0 <= p.eyelid <= 1:
        raise ValueError("eyelid must be 0..1")
    if p.blur < 0 or p.motion < 0 or p.noise < 0 or p.exposure < 0:
        raise ValueError("blur, motion, noise and exposure must not be negative")


def contact_sheet(images: list[tuple[str, np.ndarray]], columns: int, cell_width: int = 200) -> np.ndarray:
    """Labelled thumbnails in a grid, for looking at what parameters do."""
    cell_height = cell_width * 3 // 4
    rows = (len(images) + columns - 1) // columns
    sheet = np.full((rows * (cell_height + 18), columns * cell_width), 255, np.uint8)
    for i, (label, image) in enumerate(images):
        r, c = divmod(i, columns)
        thumb = cv2.resize(image, (cell_width, cell_height), interpolation=cv2.INTER_AREA)
        y, x = r * (cell_height + 18), c * cell_width
        sheet[y : y + cell_height, x : x + cell_width] = thumb
        cv2.putText(
            sheet, label, (x + 3, y + cell_height + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA
        )
    return sheet
