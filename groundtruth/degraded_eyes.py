"""Degraded copies of a real eye: what goes wrong in a living room, done to a good image.

Its one job: make, from one grey eye image and where its iris is, the copies the iris
assessor must score lower and name: blurred (out of focus), an upper lid lowered over the
iris (flat skin grey, or skin texture taken from the image's own skin), darkened (a weak
illuminator) and noisy (a sensor at high gain). Each comes with the feedback a person
would give. Also a curtain of lashes hung from a marked upper lid, which must not move the
lid found, a clump of lashes about the pupil's size, which must not be taken for the
pupil, a band of lashes run into the pupil's top, which must not move it, a ring of lamps'
reflections in the pupil, which must not move it either, glare from glasses, which must not
be taken for a lid, and another camera's tone curve and light falling off towards the
frame's edges or its top, which must not move the lids. Pure functions of numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from kitd.capture.iris_geometry import into_copy, ray_to_ellipse

Circle = tuple[float, float, float]


def blurred(grey: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    return cv2.GaussianBlur(grey, (0, 0), sigma)


def _lit(grey: np.ndarray, light: np.ndarray | float) -> np.ndarray:
    """The eye under `light` times the light it had (a number, or an array that broadcasts)."""
    return np.clip(grey.astype(np.float32) * light, 0, 255).astype(np.uint8)


def _saturated_shape(
    grey: np.ndarray, draw: Callable[[np.ndarray, int], None], soften: float = 0.0
) -> np.ndarray:
    """The eye with a saturated shape laid over it: `draw(canvas, scale)` draws it in 255 on
    a blank canvas `scale` times the frame's size (for a smooth outline), which is brought back
    to the frame's size and blurred by `soften` px (an edge out of focus). Whatever it covers is
    lost."""
    scale = 4
    canvas = np.zeros((grey.shape[0] * scale, grey.shape[1] * scale), np.uint8)
    draw(canvas, scale)
    cover = cv2.resize(canvas, grey.shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if soften:
        cover = cv2.GaussianBlur(cover, (0, 0), soften)
    return np.clip(grey.astype(np.float32) * (1.0 - cover) + 255.0 * cover, 0, 255).astype(np.uint8)


def darkened(grey: np.ndarray, factor: float = 0.25) -> np.ndarray:
    return _lit(grey, factor)


def darker_iris(grey: np.ndarray, iris: np.ndarray, target: float = 50.0) -> np.ndarray:
    """The eye of a person whose iris is darker in the near infrared (more pigment), under the
    same light: the pixels of the `iris` mask (what the lids leave of it) scaled so their
    median becomes `target`, the scaling faded out over about 2 px past the mask's edge (a
    limbus and a lid margin stay as soft as they were)."""
    values = grey[iris]
    if not values.size:
        return grey.copy()
    factor = min(1.0, target / max(float(np.median(values)), 1.0))
    weight = cv2.GaussianBlur(iris.astype(np.float32), (0, 0), 1.0)
    gain = 1.0 - (1.0 - factor) * weight
    return np.clip(grey.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def toned(grey: np.ndarray, gamma: float) -> np.ndarray:
    """Another camera's tone curve: grey (as a share of 255) raised to `gamma`."""
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(grey, table)


def vignetted(grey: np.ndarray, corner: float = 0.5) -> np.ndarray:
    """Light falling off from the frame's centre towards its edges, as a camera's lens and an
    illuminator aimed at the middle make it: the corners get `corner` of the centre's light,
    the edges' middles halfway between, quadratically in the distance."""
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    falloff = 1.0 - 2.0 * (1.0 - corner) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    return _lit(grey, falloff)


def lit_from_below(grey: np.ndarray, top: float = 0.85) -> np.ndarray:
    """Light falling off from the frame's bottom to its top, as an illuminator below the lens
    or a brow's shadow makes it: the top row gets `top` of the bottom row's light, linearly
    in between."""
    return _lit(grey, np.linspace(top, 1.0, grey.shape[0], dtype=np.float32)[:, None])


def lit_from_above(grey: np.ndarray, bottom: float = 0.85) -> np.ndarray:
    """Light falling off from the frame's top to its bottom, as an illuminator above the lens
    or a lamp overhead makes it: the bottom row gets `bottom` of the top row's light (the
    frame lit from below, upside down)."""
    return lit_from_below(grey[::-1], bottom)[::-1]


def noisy(grey: np.ndarray, sigma: float = 40.0, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, grey.shape)
    return np.clip(grey.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def glasses_glare(
    grey: np.ndarray,
    iris: Circle,
    where: tuple[float, float],
    size: tuple[float, float] = (0.3, 0.18),
    tilt: float = 20.0,
) -> np.ndarray:
    """The illuminator's image in the applicant's glasses: a saturated patch, elliptical,
    `size` iris radii across its two half-axes, turned by `tilt` degrees, its centre at
    `where` = (direction in degrees, y downwards; distance in iris radii) from the iris's
    centre, its edge soft over about 2 px (the lens is out of focus). Whatever it covers is
    lost: neither lid nor iris shows through."""
    ix, iy, ir = iris
    angle, reach = math.radians(where[0]), where[1] * ir
    centre = (ix + reach * math.cos(angle), iy + reach * math.sin(angle))

    def draw(canvas: np.ndarray, scale: int) -> None:
        cv2.ellipse(
            canvas,
            (round(into_copy(centre[0], scale)), round(into_copy(centre[1], scale))),
            (round(size[0] * ir * scale), round(size[1] * ir * scale)),
            tilt, 0, 360, 255, -1, cv2.LINE_AA,
        )  # fmt: skip

    return _saturated_shape(grey, draw, soften=1.0)


def lamp_ring(grey: np.ndarray, pupil: Circle, share: float, radius: float, lamps: int = 8) -> np.ndarray:
    """The reflections of an illuminator made of a ring of lamps, as some iris cameras have
    (the CASIA Interval set's: eight near-infrared LEDs round the lens): `lamps` saturated
    spots of `radius` px, evenly round a circle of `share` of the pupil's radius about its
    centre, their edges soft over about a pixel."""
    px, py, pr = pupil

    def draw(canvas: np.ndarray, scale: int) -> None:
        for k in range(lamps):
            angle = 2.0 * math.pi * k / lamps
            x, y = px + share * pr * math.cos(angle), py + share * pr * math.sin(angle)
            centre = (round(into_copy(x, scale)), round(into_copy(y, scale)))
            cv2.circle(canvas, centre, round(radius * scale), 255, -1, cv2.LINE_AA)

    return _saturated_shape(grey, draw)


def clouded_pupil(grey: np.ndarray, pupil: Circle, iris: Circle, share: float) -> np.ndarray:
    """The eye of a person with a cataract (many of the elderly the kit records): the lens
    behind the pupil clouded, so the pupil is greyer in the near infrared. Each pixel of the
    pupil moves `share` of the way to the iris's median grey (between 1.3 pupil radii and
    halfway to the limbus); the pupil's edge keeps its softness and the specular spots (from
    200) stay."""
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    from_pupil = np.hypot(xx - pupil[0], yy - pupil[1])
    inside = cv2.GaussianBlur((from_pupil <= pupil[2]).astype(np.float32), (0, 0), 1.0)
    ring = (from_pupil >= 1.3 * pupil[2]) & (from_pupil <= 0.5 * (pupil[2] + iris[2]))
    iris_grey = float(np.median(grey[ring])) if ring.any() else float(np.median(grey))
    g = grey.astype(np.float32)
    clouded = g + share * inside * (iris_grey - g)
    return np.where(g < 200, clouded, g).clip(0, 255).astype(np.uint8)


def constricted_pupil(grey: np.ndarray, pupil: Circle, iris: Circle, share: float) -> np.ndarray:
    """The eye with its pupil shrunk to `share` of the iris's radius, as an old person's is
    (senile miosis): along each ray from the pupil's centre, the pupil is squeezed into the
    new radius and the iris stretched from there to the limbus (a rubber sheet), the rest of
    the frame as it was."""
    px, py, pr = pupil
    lx, ly, lr = iris
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - px, yy - py
    rho = np.hypot(dx, dy) + 1e-6
    cos, sin = dx / rho, dy / rho
    limbus = ray_to_ellipse(px, py, cos, sin, (lx, ly, lr, lr))  # along each ray from the pupil's centre
    small = share * lr
    source = np.where(
        rho < small, rho * pr / small, pr + (rho - small) * (limbus - pr) / np.maximum(limbus - small, 1e-3)
    )
    source = np.where(rho >= limbus, rho, source)
    return cv2.remap(grey, px + cos * source, py + sin * source, cv2.INTER_LINEAR)


def _lid_mask(shape: tuple[int, ...], iris: Circle, pupil: Circle) -> np.ndarray:
    """Above a lid margin lowered to just above the pupil's centre over the iris centre and
    falling by a quarter of the iris radius at its sides (a drowsy lid: it hides the upper
    third or so of the iris)."""
    h, w = shape[:2]
    ix, iy, ir = iris
    px, py, pr = pupil
    xs = np.arange(w, dtype=np.float32)
    margin = py - 0.3 * pr + 0.25 * ir * ((xs - ix) / ir) ** 2
    return np.arange(h, dtype=np.float32)[:, None] < margin[None, :]


def skin_grey(grey: np.ndarray, iris: Circle) -> float:
    """The lid skin's grey: the brighter part of the image outside the iris (skin and sclera)."""
    h, w = grey.shape
    ix, iy, ir = iris
    yy, xx = np.mgrid[0:h, 0:w]
    outside = (xx - ix) ** 2 + (yy - iy) ** 2 > (1.3 * ir) ** 2
    values = grey[outside]
    return float(np.percentile(values, 70)) if values.size else 180.0


def lid_lowered_flat(grey: np.ndarray, iris: Circle, pupil: Circle) -> np.ndarray:
    out = grey.copy()
    out[_lid_mask(grey.shape, iris, pupil)] = round(skin_grey(grey, iris))
    return out


def lid_lowered_textured(grey: np.ndarray, iris: Circle, pupil: Circle, seed: int = 0) -> np.ndarray:
    """The lid filled with skin texture: the image's own bright surround's grain (its
    high-pass detail at skin contrast) over the skin grey, with a shadowed margin."""
    rng = np.random.default_rng(seed)
    h, w = grey.shape
    base = skin_grey(grey, iris)
    grain = cv2.GaussianBlur(rng.normal(0.0, 1.0, (h, w)).astype(np.float32), (0, 0), 1.5)
    grain *= 12.0 / max(float(grain.std()), 1e-6)
    skin = base + grain
    mask = _lid_mask(grey.shape, iris, pupil)
    # A lid's margin is in its own shadow: a few pixels darker where it meets the eye.
    edge = mask & ~np.roll(mask, -4, axis=0)
    skin[edge] -= 25.0
    out = grey.astype(np.float32)
    out[mask] = skin[mask]
    return np.clip(out, 0, 255).astype(np.uint8)


DEGRADATIONS: dict[str, tuple[str | None, Callable[[np.ndarray, Circle, Circle], np.ndarray]]] = {
    "blurred": ("out_of_focus", lambda g, iris, pupil: blurred(g)),
    "lid_flat": ("open_wider", lid_lowered_flat),
    "lid_textured": ("open_wider", lid_lowered_textured),
    "darkened": ("too_dark", lambda g, iris, pupil: darkened(g)),
    "noisy": (None, lambda g, iris, pupil: noisy(g)),  # any feedback: it must not pass
}


def _strands(
    grey: np.ndarray,
    iris: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    reach: float,
    seed: int,
    down: bool,
    root_above: float,
    fan: float,
    wander: float,
    shortest: float = 0.1,
    per_px: float = 0.6,
    widths: tuple[int, ...] = (3, 4, 6),
) -> np.ndarray:
    """Dense near-black strands rooted along the upper lid's margin (`margin`: its y for an
    array of x), `root_above` iris radii above it: `per_px` a pixel along it (one about every
    1.7 px), each `shortest`-`reach` iris radii long, down over the iris (`down`) or up over
    the skin, leaning towards the eye's corners by `fan` of their length per iris radius out,
    give or take `wander`, `widths` quarter pixels thick (0.75-1.5 px)."""
    rng = np.random.default_rng(seed)
    ix, _, ir = iris
    h, w = grey.shape
    scale = 4  # drawn at four times the size, then shrunk: strands a pixel thick, smooth
    ink = np.zeros((h * scale, w * scale), np.uint8)
    way = 1.0 if down else -1.0
    x = ix - 1.1 * ir
    while x < ix + 1.1 * ir:
        root = float(margin(np.array([x]))[0]) - root_above * ir
        length = rng.uniform(shortest, reach) * ir
        lean = length * (fan * (x - ix) / ir + rng.normal(0.0, wander))
        t = np.linspace(0.0, 1.0, 8)
        points = np.stack([x + lean * t * t, root - 1.0 + way * length * t], axis=1)
        # polylines' shift=2 takes coordinates in quarter pixels of the drawn canvas
        cv2.polylines(
            ink, [np.rint(points * scale * 4).astype(np.int32)], False, 255,
            int(rng.choice(widths)), cv2.LINE_AA, shift=2,
        )  # fmt: skip
        x += rng.exponential(1.0 / per_px)
    cover = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    out = grey.astype(np.float32) * (1.0 - cover) + 30.0 * cover
    return np.clip(out, 0, 255).astype(np.uint8)


def lash_curtain(
    grey: np.ndarray,
    iris: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    reach: float = 0.4,
    seed: int = 0,
) -> np.ndarray:
    """Dense dark lashes hanging from the upper lid's margin over the iris (`margin`: the lid's
    y for an array of x): one strand about every 1.7 px along the margin, each from its root
    down to 0.1-`reach` iris radii, 0.75-1.5 px thick, fanning out towards the eye's corners,
    in near-black. The margin, at the roots, stays where it was: a lid finder must find it there,
    not at the strands' tips."""
    return _strands(grey, iris, margin, reach, seed, down=True, root_above=0.0, fan=0.25, wander=0.1)


def lashes_on_skin(
    grey: np.ndarray,
    iris: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    reach: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Dense dark lashes curling up from the upper lid's margin over the lid's skin, as a
    frontal camera sees upper lashes that turn upwards (`margin`: the lid's y for an array of
    x): strands as in :func:`lash_curtain`, rooted 0.03 iris radii above the margin, going up
    0.1-`reach` iris radii and fanning out more. The iris below the margin is untouched: a lid
    finder must not climb into them."""
    return _strands(grey, iris, margin, reach, seed, down=False, root_above=0.03, fan=0.4, wander=0.15)


def lash_clumps(
    grey: np.ndarray,
    iris: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    reach: float = 0.4,
    seed: int = 0,
    lash_grey: float | None = None,
    above: float = 0.0,
    soft: float = 0.0,
) -> np.ndarray:
    """A curtain of lashes as real ones hang over an iris seen close up: clumps, not single
    hairs. Measured on the development eyes whose upper iris is behind lashes (sizes in iris
    radii): clumps 0.04-0.1 wide a little below the margin, wider and merged at the roots
    (lash-dark over 0.7-0.9 of a row there) and tapering to their tips, centres 0.1-0.18
    apart, near black in their cores (the pupil's grey), soft-edged (out of focus, nearer the
    camera than the iris), bent rather than straight, their tips at scattered heights down to
    `reach` (about 0.5 at most), iris seen between them. The margin, at the roots, stays where
    it was. `lash_grey`: the clumps' core grey (default: the image's dark end, the pupil's).
    `soft`: more blur, in iris radii, for lashes further out of focus than the iris: lashes
    drooping from a heavy lid hang nearer the lens, and merge into a soft dark band."""
    rng = np.random.default_rng(seed)
    ix, _, ir = iris
    h, w = grey.shape
    core = float(np.percentile(grey, 1)) if lash_grey is None else float(lash_grey)
    scale = 4
    ink = np.zeros((h * scale, w * scale), np.float32)
    x = ix - 1.1 * ir + rng.uniform(0.0, 0.14) * ir
    while x < ix + 1.1 * ir:
        root = float(margin(np.array([x]))[0])
        length = rng.uniform(0.3, 1.0) * reach * ir
        root_width = rng.uniform(0.08, 0.13) * ir
        tip_width = 0.015 * ir
        # Bent: the fan towards the eye's corners grows down the clump, and a curl of its own.
        lean = length * (0.3 * (x - ix) / ir + rng.normal(0.0, 0.15))
        curl = length * rng.normal(0.0, 0.1)
        t = np.linspace(0.0, 1.0, 24)
        cx = x + lean * t * t + curl * np.sin(np.pi * t)
        start = rng.uniform(0.5, 1.0) * above * ir
        cy = root - 0.5 - start + (length + start) * t
        half = 0.5 * (root_width + (tip_width - root_width) * t)
        left = np.stack([cx - half, cy], 1)
        right = np.stack([cx + half, cy], 1)[::-1]
        poly = np.rint(np.concatenate([left, right]) * scale * 4).astype(np.int32)
        opacity = rng.uniform(0.8, 1.0)
        layer = np.zeros_like(ink)
        cv2.fillPoly(layer, [poly], opacity, cv2.LINE_AA, shift=2)
        ink = np.maximum(ink, layer)
        x += rng.uniform(0.08, 0.15) * ir
    cover = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    cover = cv2.GaussianBlur(cover, (0, 0), max(0.5, 0.012 * ir) + soft * ir)  # out of focus
    # Fading towards the tips is in the taper; the roots above the margin are not touched.
    out = grey.astype(np.float32) * (1.0 - cover) + core * cover
    return np.clip(out, 0, 255).astype(np.uint8)


def lash_mass(
    grey: np.ndarray,
    iris: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    depth: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """Lashes so many and so close over the top of the iris that nothing of it is seen
    between them near the lid: about three strands a pixel along the upper lid's margin
    (`margin`: its y for an array of x), each 1-2 px thick, near-black, hanging from the
    margin down to 0.7-1.15 times `depth` iris radii, fanning out a little towards the eye's
    corners. The mass hides the iris down to about `depth` below the margin, where the tips
    thin out and the iris shows between them: that is where a person puts the lid (the iris
    seen ends there), and where a lid finder must find it, not at the roots."""
    return _strands(
        grey, iris, margin, 1.15 * depth, seed, down=True, root_above=0.0, fan=0.2, wander=0.1,
        shortest=0.7 * depth, per_px=3.0, widths=(4, 6, 8),
    )  # fmt: skip


def stuck_lashes(
    grey: np.ndarray,
    iris: Circle,
    pupil: Circle,
    margin: Callable[[np.ndarray], np.ndarray],
    at: float = -0.55,
    hanging: bool = True,
    width: float = 1.2,
    length: float = 1.8,
    strands: int = 40,
    thickness: tuple[float, float] = (1.2, 2.5),
    ink: float = 1.0,
    flare: float = 0.0,
    shadow: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A clump of lashes stuck together (mascara, tears, sleep), about as big as the pupil:
    `strands` dark strands whose roots lie along `width` pupil radii of the upper lid's margin
    (`margin`: its y for an array of x) centred `at` iris radii from the iris centre (negative:
    the image's left), each 0.6-1 times `length` pupil radii long, leaning outwards like the
    lid's other lashes and drawn towards the clump's axis, so that they cross into one dense
    dark mass with lighter gaps between the strands; `thickness` in px at a 100 px iris
    radius (1-2.5 px: the IITD eyes' own lashes; mascara thickens them). Hanging down over
    the iris (`hanging`), stopped short of the pupil's edge (a clump on the pupil joins it, a
    different case), or lying up on the lid skin. `ink`: the strands' grey as a share of the
    pupil's (its darkest tenth): 1 as dark as the pupil, less for mascara (carbon black, darker
    in near infrared than a pupil the illuminator's light scattered in the eye greys).
    `flare`: grey added to the whole frame first, fading towards white (a camera's black
    level, stray light): the IITD pupils are clipped to 0, and nothing could be darker.
    `shadow`: how much the clump's shadow, cast onto the eye just below it by an illuminator
    below the camera, darkens there (0 none, 0.5 halves the grey)."""
    rng = np.random.default_rng(seed)
    ix, _, ir = iris
    px, py, pr = pupil
    h, w = grey.shape
    out = flare + grey.astype(np.float32) * (1.0 - flare / 255.0)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = out[(xx - px) ** 2 + (yy - py) ** 2 < (0.8 * pr) ** 2]
    ink *= float(np.percentile(inside, 10)) if inside.size else 0.0
    scale = 4  # drawn at four times the size, then shrunk: strands smooth at a pixel's width
    canvas = np.zeros((h * scale, w * scale), np.uint8)
    centre = ix + at * ir
    down = 1.0 if hanging else -1.0
    t = np.linspace(0.0, 1.0, 12)
    for _ in range(strands):
        x = centre + rng.uniform(-0.5, 0.5) * width * pr
        root = float(margin(np.array([x]))[0])
        long = rng.uniform(0.6, 1.0) * length * pr
        # Tips gather towards the axis (some past it: the strands cross), the whole clump
        # leaning outwards as the lid's lashes fan out towards the eye's corners.
        tip_x = centre + rng.uniform(-0.5, 0.5) * (x - centre) + long * (0.3 * at + rng.normal(0.0, 0.08))
        bend = rng.normal(0.0, 0.08) * long * np.sin(np.pi * t)
        points = np.stack([x + (tip_x - x) * t * t + bend, root - down + down * long * t], axis=1)
        if hanging:
            clear = np.hypot(points[:, 0] - px, points[:, 1] - py) > 1.2 * pr
            points = points[: int(np.argmin(clear)) if not clear.all() else len(points)]
        if len(points) < 2:
            continue
        cv2.polylines(
            canvas, [np.rint(points * scale * 4).astype(np.int32)], False, 255,
            max(1, round(rng.uniform(*thickness) * ir / 100.0 * scale)), cv2.LINE_AA, shift=2,
        )  # fmt: skip
    cover = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if shadow > 0:
        drop = max(1, round(0.06 * ir))
        cast = cv2.GaussianBlur(np.roll(cover, drop, axis=0), (0, 0), 0.02 * ir + 1.0)
        out *= 1.0 - shadow * np.clip(1.5 * cast, 0.0, 1.0)
    out = out * (1.0 - cover) + ink * cover
    return np.clip(out, 0, 255).astype(np.uint8)


def lash_band(
    grey: np.ndarray,
    iris: Circle,
    pupil: Circle,
    thickness: float = 0.15,
    side: int = 1,
    overlap: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """A lid come down to the pupil with its lashes seen end on: a band of near-black lashes
    `thickness` iris radii tall, curved like a lid's margin, its lower edge `overlap` pupil
    radii into the pupil's top, so that the pupil and the band are one dark blob, wider than
    the pupil and not a disk. The band runs from just past the pupil's centre towards one
    corner of the eye (`side`: +1 the image's right, -1 its left) and ends an iris radius
    out; its top is ragged and its strands a little lighter here and there. The pupil stays
    where it was: a pupil finder must find it there, not the blob's outline."""
    rng = np.random.default_rng(seed)
    h, w = grey.shape
    ix, _, ir = iris
    px, py, pr = pupil
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bottom = py - pr + overlap * pr + 0.2 * ir * ((xx - px) / ir) ** 2
    ragged = rng.uniform(0.0, 0.05 * ir, w).astype(np.float32)[None, :]
    band = (yy < bottom) & (yy > bottom - thickness * ir + ragged)
    band &= (side * (xx - px) > -0.3 * pr) & (np.abs(xx - ix) < ir)
    strands = rng.uniform(0.0, 8.0, w).astype(np.float32)[None, :] * np.ones((h, 1), np.float32)
    out = grey.astype(np.float32)
    out[band] = float(np.percentile(grey, 1)) + 3.0 + strands[band]
    return np.clip(cv2.GaussianBlur(out, (0, 0), 0.8), 0, 255).astype(np.uint8)
