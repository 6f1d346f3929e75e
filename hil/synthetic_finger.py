"""Synthetic fingerprint frames for the simulated fingerprint reader.

Its one job: turn a seed and a capture condition into an 8-bit grey frame that looks
like what a NEXT Biometrics NB-1010-U (or any flat single-finger sensor) returns when
that finger is pressed in that condition: bright background and valleys, dark ridges.

How a frame is made:

1. The seed alone fixes the *finger* (:func:`finger_spec`): a pattern class (arch,
   tented arch, left loop, right loop, whorl), core and delta positions in mm, a
   rotation, a ridge period (0.45-0.50 mm, like an adult finger), the size of the
   contact ellipse and a smooth individual perturbation of the orientation field.
2. The orientation field is a Sherlock-Monro zero-pole model (half the sum of the
   arguments to the cores minus half the sum to the deltas); arches, which have no
   singular points, use the level sets of an arched surface instead.
3. Ridges are grown from seeded noise by iterative Gabor filtering (as SFinGe does),
   with the filter bank quantised into orientation bins and each oriented Gabor
   written as two separable filters so that one image costs tens of milliseconds.
   The ridge pattern depends on (seed, ppi) only and is cached, so a simulator that
   serves the same finger in several conditions pays for it once.
4. The condition (:data:`CONDITIONS`) then decides where and how the finger touches
   the sensor (contact area, position, pressure, moisture, motion, dirt), and sensor
   noise is added. Condition randomness is seeded by (seed, condition), so every
   frame is deterministic for (seed, condition, width, height, ppi).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

CONDITIONS: tuple[str, ...] = (
    "good",
    "light",
    "wet",
    "dry",
    "partial",
    "off_center",
    "smudged",
    "dirty_sensor",
    "no_finger",
)

PATTERN_CLASSES: tuple[str, ...] = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")

# Grey levels of the NB-1010 frame in ../shared/fixtures/nb1010/capture.png: an empty
# sensor reads about 229, a firmly pressed ridge reads near 0.
BACKGROUND_GREY = 229.0
RIDGE_GREY = 12.0

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class FingerSpec:
    """What the seed fixes about a finger, independent of condition and sensor."""

    seed: int
    pattern: str
    cores: tuple[tuple[float, float], ...]  # (u, v) mm in finger coordinates
    deltas: tuple[tuple[float, float], ...]
    rotation_deg: float  # finger axis against the sensor's vertical, clockwise
    ridge_period_mm: float
    half_width_mm: float  # semi-axes of the contact ellipse of a firm press
    half_height_mm: float

    def ridge_period_px(self, ppi: float) -> float:
        return self.ridge_period_mm * ppi / MM_PER_INCH


def _rng(*key: object) -> np.random.Generator:
    # A stable seed from the key: Python's hash() of a str changes per process.
    words = [zlib.crc32(repr(k).encode()) for k in key]
    return np.random.default_rng(np.random.SeedSequence(words))


def finger_spec(seed: int) -> FingerSpec:
    """The finger a seed stands for (same in every condition, size and ppi)."""
    rng = _rng("finger", int(seed))
    # Rough population shares: loops are the most common, arches the rarest.
    pattern = str(rng.choice(PATTERN_CLASSES, p=[0.07, 0.08, 0.30, 0.30, 0.25]))
    jitter = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - local shorthand
    cores: list[tuple[float, float]] = []
    deltas: list[tuple[float, float]] = []
    if pattern == "tented_arch":
        cores = [(jitter(0.6), -0.5 + jitter(0.5))]
        deltas = [(cores[0][0] + jitter(0.3), cores[0][1] + 2.8 + jitter(0.4))]
    elif pattern in ("left_loop", "right_loop"):
        # A left loop's ridges enter and leave on the left; its delta is on the right.
        side = 1.0 if pattern == "left_loop" else -1.0
        cores = [(jitter(0.8), -0.8 + jitter(0.6))]
        deltas = [(side * (4.5 + jitter(0.6)), 4.2 + jitter(0.6))]
    elif pattern == "whorl":
        cu, cv = jitter(0.6), -0.4 + jitter(0.5)
        dx, dy = 0.5 + jitter(0.2), 0.7 + jitter(0.3)  # two cores: a slight spiral
        cores = [(cu - dx / 2, cv - dy / 2), (cu + dx / 2, cv + dy / 2)]
        deltas = [(-5.5 + jitter(0.6), 4.8 + jitter(0.6)), (5.5 + jitter(0.6), 4.8 + jitter(0.6))]
    return FingerSpec(
        seed=int(seed),
        pattern=pattern,
        cores=tuple(cores),
        deltas=tuple(deltas),
        rotation_deg=float(np.clip(rng.normal(0.0, 8.0), -20.0, 20.0)),
        ridge_period_mm=float(rng.uniform(0.45, 0.50)),
        half_width_mm=float(rng.uniform(6.6, 7.6)),
        half_height_mm=float(rng.uniform(9.5, 11.0)),
    )


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-std noise smooth over about ``scale_px`` pixels."""
    h, w = shape
    sh, sw = max(2, int(math.ceil(h / scale_px)) + 2), max(2, int(math.ceil(w / scale_px)) + 2)
    coarse = rng.standard_normal((sh, sw)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _orientation(spec: FingerSpec, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ridge direction (radians, mod pi) at finger coordinates u, v (mm, v downwards)."""
    if spec.pattern == "arch":
        # Ridges are level sets of F = v + A*exp(-u^2 / 2s^2) * g(v): bowed in the
        # middle of the upper finger, flattening towards the crease.
        a, s = 2.2, 4.5
        g = 1.0 / (1.0 + np.exp((v - 3.0) / 2.0))
        dg = -g * (1.0 - g) / 2.0
        bump = a * np.exp(-(u**2) / (2 * s * s))
        fu = bump * (-u / (s * s)) * g
        fv = 1.0 + bump * dg
        # The ridge runs perpendicular to grad F.
        return np.arctan2(fv, fu) + np.pi / 2
    z = u + 1j * v
    theta = np.zeros_like(u)
    for cu, cv in spec.cores:
        theta += 0.5 * np.angle(z - complex(cu, cv))
    for du, dv in spec.deltas:
        theta -= 0.5 * np.angle(z - complex(du, dv))
    return theta


@functools.lru_cache(maxsize=8)
def _gabor_bank(period_px: float, bins: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Separable pieces of ``bins`` oriented even Gabor filters.

    G(x)G(y)cos(a x + b y) = G cos(ax) * G cos(by) - G sin(ax) * G sin(by), so each
    oriented filter is two separable passes instead of one dense 2-D convolution.
    """
    sigma = 0.5 * period_px
    radius = int(math.ceil(2.2 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma * sigma))
    omega = 2 * math.pi / period_px
    bank = []
    for k in range(bins):
        ridge = math.pi * k / bins
        normal = ridge + math.pi / 2  # the filter oscillates across the ridge
        a, b = omega * math.cos(normal), omega * math.sin(normal)
        pieces = (
            (g * np.cos(a * x)).astype(np.float32),
            (g * np.cos(b * x)).astype(np.float32),
            (g * np.sin(a * x)).astype(np.float32),
            (g * np.sin(b * x)).astype(np.float32),
        )
        bank.append(pieces)
    return tuple(bank)


@dataclass(frozen=True)
class _Canvas:
    """A finger's ridges and finger coordinates, in sensor axes, centred on the finger."""

    ridges: np.ndarray  # float32 in [-1, 1], +1 = ridge centre
    u: np.ndarray  # float32 finger coordinates (mm) of each canvas pixel: across,
    v: np.ndarray  # and along the finger axis (v < 0 towards the tip)
    period_px: float


# Ridge growth: orientation bins of the Gabor bank and iterations. 12 bins keep the
# interpolation error under 8 degrees; 8 iterations from band-limited noise give
# continuous ridges (checked by eye on the contact sheet), at ~50 ms a finger.
GABOR_BINS = 12
GABOR_ITERATIONS = 8


@functools.lru_cache(maxsize=32)
def _canvas(seed: int, ppi: float) -> _Canvas:
    spec = finger_spec(seed)
    px_per_mm = ppi / MM_PER_INCH
    period = spec.ridge_period_px(ppi)
    # Bounding box of the rotated contact ellipse (with room for a wet, spread press).
    rot = math.radians(spec.rotation_deg)
    cr, sr = math.cos(rot), math.sin(rot)
    a, b = spec.half_width_mm * 1.08 + 0.3, spec.half_height_mm * 1.08 + 0.3
    half_w = math.hypot(a * cr, b * sr)
    half_h = math.hypot(a * sr, b * cr)
    cols = int(math.ceil(2 * half_w * px_per_mm)) | 1
    rows = int(math.ceil(2 * half_h * px_per_mm)) | 1
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    x_mm, y_mm = (xx - (cols - 1) / 2) / px_per_mm, (yy - (rows - 1) / 2) / px_per_mm
    # Sensor axes (mm) -> finger axes: undo the finger's rotation.
    u = cr * x_mm + sr * y_mm
    v = -sr * x_mm + cr * y_mm
    theta = _orientation(spec, u, v) - rot  # back into sensor axes
    theta = theta + 0.12 * _smooth_noise(_rng("orientation", seed), theta.shape, 6 * px_per_mm)

    bins = GABOR_BINS
    bank = _gabor_bank(period, bins)
    pos = np.mod(theta, np.pi) / np.pi * bins
    k0 = np.floor(pos).astype(np.int64) % bins
    w1 = (pos - np.floor(pos)).astype(np.float32)
    weights = np.zeros((bins, rows, cols), dtype=np.float32)
    r_idx, c_idx = np.indices((rows, cols))
    weights[k0, r_idx, c_idx] = 1.0 - w1
    weights[(k0 + 1) % bins, r_idx, c_idx] += w1
    active = {k for k in range(bins) if weights[k].any()}
    # Bins k and bins-k are mirror images: the same cos*cos and sin*sin passes, the
    # sin*sin term with opposite sign. Filter once per pair.
    pairs = [k for k in range(bins // 2 + 1) if k in active or (bins - k) % bins in active]

    img = _rng("ridges", seed).standard_normal((rows, cols)).astype(np.float32)
    for _ in range(GABOR_ITERATIONS):
        acc = np.zeros((rows, cols), dtype=np.float32)
        for k in pairs:
            cax, cby, sax, sby = bank[k]
            cc = cv2.sepFilter2D(img, cv2.CV_32F, cax, cby, borderType=cv2.BORDER_REFLECT)
            mirror = (bins - k) % bins
            if mirror == k:
                ss = 0.0  # axis-aligned bins: one of the sine pieces is identically 0
            else:
                ss = cv2.sepFilter2D(img, cv2.CV_32F, sax, sby, borderType=cv2.BORDER_REFLECT)
            if k in active:
                acc += (cc - ss) * weights[k]
            if mirror != k and mirror in active:
                acc += (cc + ss) * weights[mirror]
        # Saturate: pushes the pattern towards binary ridges and fixes its amplitude.
        img = np.clip(acc * (3.0 / (float(acc.std()) + 1e-6)), -1.0, 1.0)
    # Ridge profile: round off the binary-ish result like a skin ridge.
    ridges = cv2.GaussianBlur(img, (0, 0), 0.15 * period)
    return _Canvas(
        ridges=ridges.astype(np.float32),
        u=u.astype(np.float32),
        v=v.astype(np.float32),
        period_px=period,
    )


def _paste(canvas: np.ndarray, shape: tuple[int, int], cx: float, cy: float, fill: float):
    """Place ``canvas`` (centred) at pixel (cx, cy) of a frame of ``shape``."""
    h, w = shape
    out = np.full(shape, fill, dtype=np.float32)
    ch, cw = canvas.shape
    x0 = int(round(cx - (cw - 1) / 2))
    y0 = int(round(cy - (ch - 1) / 2))
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(w, x0 + cw), min(h, y0 + ch)
    if fx1 > fx0 and fy1 > fy0:
        out[fy0:fy1, fx0:fx1] = canvas[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    return out


def render_finger(
    seed: int,
    condition: str = "good",
    *,
    width: int = 256,
    height: int = 180,
    ppi: float = 385.0,
) -> np.ndarray:
    """A ``height`` x ``width`` uint8 frame of finger ``seed`` pressed in ``condition``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
    if width < 16 or height < 16 or ppi <= 0:
        raise ValueError("frame must be at least 16 x 16 pixels and ppi positive")
    shape = (int(height), int(width))
    px_per_mm = ppi / MM_PER_INCH
    rng = _rng("condition", int(seed), condition, shape, float(ppi))
    noise_rng = _rng("noise", int(seed), condition, shape, float(ppi))

    if condition == "no_finger":
        return _sensor(np.full(shape, BACKGROUND_GREY, np.float32), noise_rng)

    spec = finger_spec(seed)
    canvas = _canvas(int(seed), float(ppi))
    period = canvas.period_px

    # Where the finger sits (pixels from the frame centre) and which part touches:
    # an ellipse (cu, cv, ru, rv) in finger coordinates, mm.
    # A careful officer's placement: a little off the middle, the same for every
    # condition that does not move the finger, so the conditions of one seed can be
    # compared pixel for pixel.
    offset = _rng("placement", int(seed)).normal(0.0, 0.4, 2) * px_per_mm
    ru, rv, cu, cv_ = spec.half_width_mm, spec.half_height_mm, 0.0, 0.0
    if condition == "light":
        ru, rv = 0.85 * ru, 0.85 * rv  # a light press flattens less of the pad
    elif condition == "wet":
        ru, rv = 1.05 * ru, 1.05 * rv
    elif condition == "off_center":
        # The finger about 6 mm to one side (and a little up or down): a good half of
        # the pad misses the sensor, the rest touches firmly.
        ang = rng.uniform(-0.4, 0.4) + (0.0 if rng.random() < 0.5 else math.pi)
        dist = rng.uniform(5.8, 6.6) * px_per_mm
        offset = np.array([math.cos(ang) * dist, math.sin(ang) * dist])
    elif condition == "partial":
        # Only the tip touches (finger held steeply or barely on the glass): a small
        # patch of the pad above the core.
        ru, rv = rng.uniform(3.2, 3.8), rng.uniform(2.6, 3.0)
        cu, cv_ = rng.uniform(-1.0, 1.0), -(spec.half_height_mm - rv - 0.3)
        patch_at = np.array([rng.uniform(-2.0, 2.0), rng.uniform(-1.0, 1.0)]) * px_per_mm
        # Put the patch (not the whole finger) near where the officer aimed.
        rot = math.radians(spec.rotation_deg)
        dx = (math.cos(rot) * cu - math.sin(rot) * cv_) * px_per_mm
        dy = (math.sin(rot) * cu + math.cos(rot) * cv_) * px_per_mm
        offset = patch_at - np.array([dx, dy])

    cx = (shape[1] - 1) / 2 + float(offset[0])
    cy = (shape[0] - 1) / 2 + float(offset[1])
    ridges = _paste(canvas.ridges, shape, cx, cy, 0.0)
    u = _paste(canvas.u, shape, cx, cy, 99.0)
    v = _paste(canvas.v, shape, cx, cy, 99.0)
    ell = np.sqrt(((u - cu) / ru) ** 2 + ((v - cv_) / rv) ** 2)

    # Contact: a soft-edged ellipse with an irregular border (skin is not a lens).
    border = 0.04 * _smooth_noise(rng, shape, 3.0 * px_per_mm)
    edge = 0.6 / min(ru, rv)  # ~0.6 mm soft edge
    contact = np.clip((1.0 + border - ell) / edge, 0.0, 1.0)

    # Pressure: firmest in the middle of the pad, fading towards the border.
    pressure = 1.15 - 0.35 * ell**2 + 0.08 * _smooth_noise(rng, shape, 4.0 * px_per_mm)
    ink_threshold = 0.0  # ridge profile level above which skin touches glass
    softness = 0.35
    ridge_grey, valley_grey = RIDGE_GREY, BACKGROUND_GREY - 8.0

    if condition == "light":
        # Low contrast and broken contact: ridges grey, whole patches not touching.
        patches = _smooth_noise(rng, shape, 2.5 * px_per_mm)
        contact *= np.clip((patches + 0.35) / 0.5, 0.0, 1.0)
        ridge_grey = 162.0
        ink_threshold = 0.25
    elif condition == "wet":
        # Water fills the valleys: fat ridges, valleys greyed, merging into dark pools.
        ink_threshold = -0.45
        softness = 0.5
        ridge_grey, valley_grey = 10.0, 150.0
        pools = np.clip((_smooth_noise(rng, shape, 1.2 * px_per_mm) - 0.5) / 0.5, 0.0, 1.0)
        ridges = np.maximum(ridges, pools * 1.2)
    elif condition == "dry":
        # Dry skin touches only in spots along the ridges: thin, broken, faint ridges.
        ink_threshold = 0.55
        softness = 0.25
        ridge_grey = 95.0
        speckle = _smooth_noise(rng, shape, 0.35 * period)
        contact *= np.clip((speckle + 0.1) / 0.4, 0.0, 1.0)
    inked = 1.0 / (1.0 + np.exp(-(ridges - ink_threshold) / (softness * 0.5)))
    darkness = contact * np.clip(pressure, 0.0, 1.0) * inked
    img = BACKGROUND_GREY - (BACKGROUND_GREY - valley_grey) * contact
    img = (img - (valley_grey - ridge_grey) * darkness).astype(np.float32)
    if condition == "wet":
        img = cv2.GaussianBlur(img, (0, 0), 0.15 * period)
    elif condition == "smudged":
        # The finger slid during the exposure: a motion blur over two to three ridge
        # periods, sweat smeared along (a slight all-round blur), and a ghost of
        # where it started 1.5 periods back (out of phase, so it fills valleys).
        ang = rng.uniform(0, math.pi)
        length = rng.uniform(2.2, 2.8) * period
        img = _motion_blur(img, length, ang)
        img = cv2.GaussianBlur(img, (0, 0), 0.2 * period)
        back = 1.5 * period
        shift = np.float32([[1, 0, back * math.cos(ang)], [0, 1, back * math.sin(ang)]])
        ghost = cv2.warpAffine(img, shift, (shape[1], shape[0]), borderMode=cv2.BORDER_REFLECT)
        img = 0.65 * img + 0.35 * ghost
    elif condition == "dirty_sensor":
        img = _dirt(img, rng, px_per_mm)
    return _sensor(img, noise_rng)


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    c = n // 2
    cv2.line(
        kernel,
        (int(round(c - c * math.cos(angle))), int(round(c - c * math.sin(angle)))),
        (int(round(c + c * math.cos(angle))), int(round(c + c * math.sin(angle)))),
        1.0,
        1,
        cv2.LINE_AA,
    )
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _dirt(img: np.ndarray, rng: np.random.Generator, px_per_mm: float) -> np.ndarray:
    """Grime on the glass: dark blotches and specks over finger and background alike."""
    h, w = img.shape
    dirt = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(10, 16))):
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (
            max(1, int(rng.uniform(0.6, 2.2) * px_per_mm)),
            max(1, int(rng.uniform(0.3, 1.0) * px_per_mm)),
        )
        strength = float(rng.uniform(0.7, 1.0))
        cv2.ellipse(dirt, centre, axes, float(rng.uniform(0, 180)), 0, 360, strength, -1)
    # Ragged edges and uneven density, like dried sweat and dust rather than ink.
    texture = np.clip(0.85 + 0.4 * _smooth_noise(rng, (h, w), 0.25 * px_per_mm), 0.0, 1.0)
    blot = np.clip(cv2.GaussianBlur(dirt, (0, 0), 0.15 * px_per_mm) * texture, 0.0, 1.0)
    img = img * (1.0 - 0.75 * blot) + 70.0 * 0.75 * blot
    specks = rng.random((h, w)) < 0.03
    img = np.where(specks, img * rng.uniform(0.0, 0.4, (h, w)), img)
    img = img + rng.normal(0.0, 14.0, (h, w))
    return img.astype(np.float32)


def _sensor(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: per-pixel read noise and a sprinkle of dark specks (as on the NB-1010)."""
    h, w = img.shape
    img = img + rng.normal(0.0, 3.0, (h, w)).astype(np.float32)
    specks = rng.random((h, w)) < 0.002
    img = np.where(specks, img - rng.uniform(40, 160, (h, w)).astype(np.float32), img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def contact_sheet(images: dict[str, np.ndarray], columns: int = 3, scale: int = 2) -> np.ndarray:
    """A labelled grid of grey frames (uint8), for looking at the generator's output."""
    if not images:
        raise ValueError("no images")
    cell_h = max(im.shape[0] for im in images.values()) * scale
    cell_w = max(im.shape[1] for im in images.values()) * scale
    label_h, pad = 28, 6
    cols = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / cols)
    sheet = np.full((rows * (cell_h + label_h + pad) + pad, cols * (cell_w + pad) + pad), 255, np.uint8)
    for i, (name, im) in enumerate(images.items()):
        grey = im if im.ndim == 2 else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        big = cv2.resize(
            grey, (grey.shape[1] * scale, grey.shape[0] * scale), interpolation=cv2.INTER_NEAREST
        )
        r, c = divmod(i, cols)
        y = pad + r * (cell_h + label_h + pad)
        x = pad + c * (cell_w + pad)
        cv2.putText(sheet, name, (x, y + label_h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
        sheet[y + label_h : y + label_h + big.shape[0], x : x + big.shape[1]] = big
        cv2.rectangle(sheet, (x - 1, y + label_h - 1), (x + big.shape[1], y + label_h + big.shape[0]), 0, 1)
    return sheet
