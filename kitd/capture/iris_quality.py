"""Iris quality on every live frame: ISO/IEC 29794-6 metrics in a few milliseconds, with feedback.

Its one job: :func:`assess_iris` turns one grey near-infrared frame (any size) into an
:class:`IrisReport`: a score 0-100, the metrics (with the located pupil and limbus circles),
pass/fail against thresholds, and feedback codes an officer can act on, most important first.
It is a pure function (no I/O, no state) so the capture gate, the preview overlay, the CLI
and the benchmarks all call the same thing.

How, within one frame's time (open-iris needs 200-400 ms; a live gate gets ~5 ms):

* **Pupil, coarse**: on a copy shrunk to ~160 px wide, dark blobs at a few thresholds
  between the darkest patch and the median; the blob that is round, filled and darker than
  its surround wins. A pupil cut by the upper lid keeps its width, so the radius comes from
  the blob's width; a pupil the lashes or the lid margin touch is one blob with them, and
  its largest inscribed disk is taken when that fits a pupil's edge better.
* **Pupil, fine**: 48 rays from the coarse centre at full resolution; on each, the strongest
  dark-to-bright step near the coarse circle; a circle fitted to those points, outliers
  (lashes, lid, a reflection at the edge) dropped and refitted; then each ray's step again,
  only near that circle, and the circle and an axis-aligned ellipse fitted to them. The
  ellipse (the pupil's foreshortening) tells the gaze.
* **Limbus**: rays from the pupil centre over the left, right and lower sectors; the radius
  where the summed iris-to-sclera steps peak, then each ray's own step near it, moved in to
  the foot of its ramp (where a person puts the limbus). Rays whose step is far stronger
  than the near-horizontal rays' (a lid, lashes) or lands on grey far darker than their
  sclera (sclera the lid shades) give no point, and so do weak steps on rays that leave
  the frame near the limbus (the iris may run on past its edge). The circle is fitted to
  the side sectors, its centre drawn a little towards where real limbi sit relative to
  their pupils (side arcs alone hardly fix its height), then the lower sector's points on
  it join in.
* **Lids**: column by column across the iris, walking away from the pupil on a copy blurred
  along the rows, the first run of grey that is not the iris's (skin, or the lid's dark
  margin and the lashes' roots); a parabola through those points, robustly. An upper walk
  that stops on dark may be in a curtain of lashes: the margin is then the bottom of the
  band the lashes' roots make (where lash-dark pixels are densest along a lid-shaped
  curve); where the lid still runs along strands hanging down the eye (a curtain), the
  margin is the row of their roots, the lid-shaped curve above along which no iris shows
  between the strands (the darkest). A lower walk stops on skin brighter than both the
  iris's middle and the iris just above it (a lighter lower iris, light falling off towards
  the frame's edges), then moves up into the margin's dark band, and only the points one
  flat lid shape agrees with are fitted (where the walk meets the limbus, the points curve as
  it does). A lid down over the pupil is read down the pupil's middle column. Glare over the iris (the
  illuminator's image in glasses: a saturated patch) is neither iris nor lid: an upper walk
  that crossed it, or a lower walk that stops just past it, gives no point, and along the
  curves the margin is searched on, the glare is filled in from round it. Whatever the lids
  leave between them, in the frame, less specular spots, is the usable iris; when that is
  too little though the lids leave enough, the reflection is what to change, not the lids.
* **Iris annulus**: sampled between the two circles (Daugman's rubber sheet, 120 angles x 20
  radii); its usable samples give contrast, grey-scale use and exposure.
* **Sharpness and motion**: the width of the pupil edge (its rise over its steepest slope),
  per edge orientation, across the pupil's ellipse. Defocus widens every orientation
  alike; motion widens the edges across the motion and leaves those along it sharp, so the
  narrowest orientation measures focus and the spread between orientations measures motion.
  The spread is taken in quadrature (the square of the widest orientation but one less the
  narrowest's: blurs add so, not width to width; one orientation wide alone is that part of
  the edge, a motion widens two neighbours). A 9 px smear read as widest minus narrowest came
  to about 5 px on the development eyes (their pupils' own edges are 3-5 px wide), and 92 of
  304 such smears passed; so it reads about 6.5 px and 10 pass.
* **Reflections**: bright spots (well above the sclera) whose surroundings are iris, not
  pupil, lid or sclera, away from both lids' lines and with iris between them and the
  nearer lid (the tear film glints along the lid margin). Glare (a lamp's image in glasses:
  large, compact, saturated) across the pupil's edge makes every other measure doubtful:
  reflection_on_iris is then all that is said, unless the eye is over-exposed.
* **Noise**: a 3 x 3 mask that cancels planes and straight edges, its median response round
  the pupil (Immerkaer's estimate): sensor gain turned up for want of light.

The pupil, the limbus, the lids and the reflections are found by
:mod:`kitd.capture.iris_segmentation` (on the sampling and fitting of
:mod:`kitd.capture.iris_geometry`); this module turns what they found into the metrics,
scores them and checks them.

Constants were first set on synthetic eyes (hil.synthetic_eye, seeds 1-5; seeds 11-15 and
the real eye in ../shared/fixtures/open-iris are held out for tests/test_iris_quality.py),
then those of the lids, the limbus and the pupil's coarse search on the real eyes of
../shared/fixtures/iitd-iris against hand marks (groundtruth/): the development half only
(subjects 001-106); the held-out half (113-218) is only measured (tests/test_iris_real_eyes.py).
Thresholds are in :data:`DEFAULT_THRESHOLDS`, the kit camera's; the configuration's
``[quality.iris]`` table overrides them key by key (etc/iris-camera-320x240.toml does it
for another camera).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from kitd.capture.iris_geometry import annulus, aspect, entropy, median, percentile, sample, unit_rays
from kitd.capture.iris_segmentation import (
    COARSE_WIDTH,
    PUPIL_RAYS,
    SATURATED_GREY,
    clear_enough,
    clearer_edge,
    clouded_pupil_black,
    coarse_pupils,
    edge_widths,
    eyelids,
    fine_pupil,
    glare_at_pupil_edge,
    levelled_eyelids,
    lid_tone_table,
    limbus,
    noise_grey,
    reflection_on_iris,
    specular_spots,
)
from kitd.capture.quality_report import QualityReport, judge, merge_thresholds
from kitd.grey_image import to_grey8

# The rubber sheet's grid (the iris annulus sampled between the pupil and the limbus).
ANNULUS_ANGLES = 120
ANNULUS_RADII = 20
# A lid margin this close above the pupil's top (pupil radii) touches it: on real eyes
# (IITD development half) the dark margin and the pupil then read as one edge.
LID_NEAR_PUPIL = 0.15
# px: how well the pupil ellipse's axes are known. An aspect within this of 1 (as a share of
# the radius) is a round pupil: read as it is, a pixel's error was a gaze, the more so the
# smaller the pupil (acos is steep by 1). The development eyes, looking at the camera, read a
# median 10 degrees (now 0), and with their pupils made small as an old person's (0.15-0.2 of the iris
# radius) 11 of 100 were told look_at_camera; so, 5. 1 px took the simulated eye's turn to 50
# within 0.5 degrees of the 25 degree limit.
PUPIL_AXIS_PX = 0.75
# Below this iris-sclera contrast the "iris" is lid skin (see _checks): the eye is closed.
HIDDEN_IRIS_CONTRAST = 0.1  # real eyes of the development half: 0.15 and more
# Glare touching more than this share of the pupil's edge: the eye is measured through it
# (see _checks). None of the 156 IITD eyes has any; glasses glare over the pupil's edge of
# the development eyes, 0.1-0.3.
GLARE_AT_PUPIL_EDGE = 0.05
# A sclera this bright or brighter is burnt out: the eye is over-exposed, and what is bright
# on it (an iris as bright as the sclera, glare) is the light's doing.
BURNT_OUT_SCLERA = 240
# A frame without an eye found, more than half of it at 250 or more: burnt out (too_bright).
# A real eye lit 1.9 times too strongly is 73 % so.
BURNT_OUT_FRAME = 0.5
MIN_FRAME_SIDE = 16  # px: a smaller frame is refused (an error, not a report): it cannot hold an eye
# px: a frame whose shorter side is at least this is searched for the pupil and the limbus on a
# copy of half its size. At full size a large iris's texture (its collarette, crypts) steps as
# sharply as its limbus, and the limbus search can take it for the limbus: the development eyes
# shrunk to 0.8-0.99 of their 320 x 240 (frames 192-238 px high, an iris 150-200 px across),
# searched at full size below the cut of 240 there was, gave 15 limbi of 380 more than 10 px
# from the limbus found on the eye as it is (092_01_L at 0.99: radius 95 -> 60 px); at half
# size, none. Smaller frames keep their full size: an iris that fills one is small enough that
# its texture blurs at the limbus's scale (at 0.4 and 0.35, 108 and 84 px high, one such
# limbus either way; cuts of 150-170 gave the same, 140 and 200 one more). Over ten sizes from
# 0.35 to 0.99, the marked development eyes' lids within 8 px (scaled) 882 -> 896 of 960 and
# limbi within 5 px 318 -> 312 of 500: the full size's finer steps place a limbus it does find
# a little better.
HALF_SIZE_FROM = 160
# px: the largest iris radius the limbus is searched for at in the half-size copy. A frame's
# size does not say the iris's: on the development eyes enlarged 1.75 and 2 times (frames 560 x
# 420 and 640 x 480, an iris 350-400 px across, the kit camera close up) the limbus search took
# the texture again in 5 and 8 of 50 (092_01_L: radius 118 px for 185). So the limbus is first
# looked for on the pupil's coarse copy (160 px wide), and an iris larger than this in the
# half-size copy is searched again on a copy that brings it to LIMBUS_COPY_RADIUS, about the
# development eyes' own in theirs (45-52 px). At 1.4-2 times, limbi more than 10 px off 34 -> 20
# of 350, within 5 px 228 -> 237, lids within 8 px 628 -> 639 of 672; 75 and 90 gave the same
# within 2, a target of 44 and 52 within 9.
LIMBUS_LARGEST_IN_COPY = 80.0
LIMBUS_COPY_RADIUS = 48.0

FEEDBACK_CODES: tuple[str, ...] = (
    "no_eye",
    "open_wider",
    "move_closer",
    "move_back",
    "off_center",
    "look_at_camera",
    "hold_still",
    "out_of_focus",
    "too_dark",
    "too_bright",
    "grainy",
    "reflection_on_iris",
)

# Officer-facing messages: (Bahasa Indonesia, English). Said to the officer, who says it
# on (or steadies the camera): short, one thing to do.
FEEDBACK_MESSAGES: dict[str, tuple[str, str]] = {
    "no_eye": ("Arahkan kamera ke mata", "Point the camera at the eye"),
    "open_wider": ("Minta buka mata lebih lebar", "Ask for the eye to open wider"),
    "move_closer": ("Dekatkan kamera ke mata", "Move the camera closer to the eye"),
    "move_back": ("Jauhkan kamera dari mata", "Move the camera back from the eye"),
    "off_center": ("Geser kamera agar mata di tengah", "Move the camera so the eye is in the middle"),
    "look_at_camera": ("Minta lihat lurus ke kamera", "Ask them to look straight at the camera"),
    "hold_still": ("Tahan kamera dan kepala tetap diam", "Hold the camera and the head still"),
    "out_of_focus": ("Gambar buram, atur jarak kamera", "Blurred: adjust the camera's distance"),
    "too_dark": ("Terlalu gelap, dekatkan lampu kamera", "Too dark: bring the camera's light closer"),
    "too_bright": ("Terlalu terang, kurangi cahaya", "Too bright: reduce the light"),
    # Sensor noise in the near infrared is gain turned up for want of light.
    "grainy": ("Gambar berbintik, dekatkan lampu kamera", "Grainy picture: bring the camera's light closer"),
    "reflection_on_iris": (
        "Pantulan cahaya di iris, ubah sudut kamera",
        "Reflection on the iris: change the camera's angle",
    ),
}

# Order in which feedback is given when several checks fail: first what makes every
# other measurement meaningless (no eye, exposure, motion: a moving eye smears every edge,
# so its shape and size are not to be trusted), then where the eye looks (a turned eye is
# measured foreshortened, smaller than it is, and slides under the lids), then the opening
# (the size and place of an eye the lids mostly hide are read off a sliver of it: an eye
# nearly closed was told to come closer), then where it is (size, place), then focus, and
# a reflection last: it is fixed by the angle once everything else is right.
FEEDBACK_PRIORITY: tuple[str, ...] = (
    "no_eye",
    "too_dark",
    "too_bright",
    "grainy",
    "hold_still",
    "look_at_camera",
    "open_wider",
    "move_back",
    "move_closer",
    "off_center",
    "out_of_focus",
    "reflection_on_iris",
)

# What each metric of a report means (units in brackets). All are floats; the circles are
# left out when no eye was found.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "eye_found": "1 when a pupil and a limbus were located, else 0",
    "pupil_x": "pupil centre, x [px]",
    "pupil_y": "pupil centre, y [px]",
    "pupil_r": "pupil radius [px]",
    "iris_x": "limbus (iris outer boundary) centre, x [px]",
    "iris_y": "limbus centre, y [px]",
    "iris_r": "limbus radius [px]",
    "iris_diameter": "limbus diameter [px]",
    "pupil_iris_ratio": "pupil radius over iris radius (pupil dilation) [0-1]",
    "concentricity": "1 minus the distance between the centres over the iris radius [1 concentric]",
    "pupil_circularity": "1 minus the RMS distance of pupil edge points from their circle over its radius",
    "margin_left_right": "smaller gap, left or right, between the iris and the frame edge [iris radii]",
    "margin_top_bottom": "smaller gap, above or below, between the iris and the frame edge [iris radii]",
    "upper_eyelid_y": "upper eyelid over the iris centre, y [px] (the iris top when the lid is above it)",
    "upper_eyelid_y_left": "upper eyelid half an iris radius left of the iris centre, y [px] (as above)",
    "upper_eyelid_y_right": "upper eyelid half an iris radius right of the iris centre, y [px] (as above)",
    "lower_eyelid_y": "lower eyelid under the iris centre, y [px] (the iris bottom when it is below)",
    "lower_eyelid_y_left": "lower eyelid half an iris radius left of the iris centre, y [px] (as above)",
    "lower_eyelid_y_right": "lower eyelid half an iris radius right of the iris centre, y [px] (as above)",
    "eyelid_opening": "visible height of the iris along its vertical axis over its diameter [0-1]",
    "usable_iris_area": "share of the iris in the frame not hidden by lids, lashes or reflections [0-1]",
    "iris_between_lids": "share of the iris in the frame the lids leave, reflections on it counted [0-1]",
    "iris_sclera_contrast": "(sclera - iris) / (sclera + iris - 2 pupil), median greys [0-1]",
    "iris_pupil_contrast": "(iris - pupil) / (iris + pupil) median greys [0-1]",
    "grey_scale_use": "entropy of the usable iris's grey levels [bits]",
    "iris_grey": "median grey of the usable iris [0-255]",
    "sclera_grey": "median grey just outside the limbus, left and right [0-255]",
    "sclera_sides": "sides of the limbus, left and right, whose sclera is in the frame [0-2]",
    "saturated_fraction": "share of the iris annulus (without an eye: of the frame) at 250 or more [0-1]",
    "edge_width_px": "width of the pupil edge in its sharpest orientation (defocus) [px]",
    "motion_blur_px": "blur along a motion: the widest pupil-edge orientation but one's width beyond "
    "the sharpest's, in quadrature [px]",
    "sharpness": "2 px over the edge width, at most 1 [0-1]",
    "gaze_deg": "how far the eye looks away: arccos of the pupil ellipse's aspect (0: pupil partly hidden)",
    "reflection_on_iris": "share of the iris annulus covered by specular reflections [0-1]",
    "glare_at_pupil_edge": "share of the pupil's edge a large saturated patch (glasses) touches [0-1]",
    "noise_grey": "sensor noise around the iris, a standard deviation [grey levels]",
}

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Overall gate: refuse a frame scoring below this even when no single check fails.
    "min_score": 50.0,
    # Enrollment programs ask an iris diameter of at least 210 px (move_closer below).
    "min_iris_diameter": 210.0,
    # The largest iris a 640 x 480 frame holds with the margins below: 350 + 2 x 0.6 x 175
    # = 560 < 640 across, 350 + 2 x 0.2 x 175 = 420 < 480 down (move_back above).
    "max_iris_diameter": 350.0,
    # ISO/IEC 29794-6 margins: 0.6 iris radii left and right, 0.2 above and below
    # (off_center below).
    "min_margin_left_right": 0.6,
    "min_margin_top_bottom": 0.2,
    # ISO/IEC 29794-6 and enrollment practice: at least 70 % of the iris usable
    # (open_wider below; lids are what usually hides it).
    "min_usable_iris_area": 0.70,
    # Gaze: an iris foreshortened to cos(25 deg) = 0.91 of its height (look_at_camera above).
    "max_gaze_deg": 25.0,
    # Pupil edge width in its sharpest orientation: a Gaussian blur of sigma s widens a
    # step to about 2.5 s; 4 px is sigma 1.6 (out_of_focus above). Synthetic eyes in focus:
    # 1.6-2.2 px.
    "max_edge_width_px": 5.0,
    # The widest orientation but one's width beyond the sharpest's, in quadrature: a smear of
    # L px reads about 0.7 L on real eyes (hold_still above).
    "max_motion_blur_px": 5.0,
    # Exposure from the usable iris's median grey: NIR irises sit at 90-130 when lit well.
    # too_dark below, too_bright above; and too_bright when this share of the iris annulus
    # is saturated.
    "min_iris_grey": 60.0,
    # An iris darker than min_iris_grey is too_dark only when the sclera beside it is darker
    # than this too: how dark an iris is in the near infrared is the person's (its pigment),
    # how bright the sclera is, the light's. Lit well, the sclera reads 130-210 on the IITD
    # development eyes and 194-212 on the open-iris and simulated eyes; at 0.55 of the light,
    # 72-117; at a quarter, 30-55.
    "min_sclera_grey": 120.0,
    "max_iris_grey": 175.0,
    "max_saturated_fraction": 0.10,
    # Specular reflections on the iris (not the pupil, where they belong): more than this
    # share of the annulus (reflection_on_iris above). The simulated illuminator's spot
    # (~7 px across) on a 230 px iris covers ~0.15 %; a third of it is enough to say so.
    "max_reflection_on_iris": 0.0005,
    # Sensor noise (grainy below): real enrolment eyes show 0.5-2 grey levels, a NIR texture's
    # contrast is 10-20; noise of 8 drowns much of it.
    "max_noise_grey": 8.0,
    # Below this pupil-iris contrast there is no pupil to trust: no_eye.
    "min_iris_pupil_contrast": 0.12,
}


@dataclass
class IrisReport(QualityReport):
    """What :func:`assess_iris` found; ``to_json()`` is the CLI/API form."""

    FEEDBACK = FEEDBACK_MESSAGES

    def circles(self) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """((pupil x, y, r), (iris x, y, r)) in frame pixels, or None when no eye was found."""
        m = self.metrics
        if "pupil_x" not in m:
            return None
        return (m["pupil_x"], m["pupil_y"], m["pupil_r"]), (m["iris_x"], m["iris_y"], m["iris_r"])


# --- measurement ------------------------------------------------------------------------------


def _measure(g: np.ndarray) -> dict[str, float]:
    h, w = g.shape
    metrics: dict[str, float] = {"eye_found": 0.0}
    factor = 2.0 if min(h, w) >= HALF_SIZE_FROM else 1.0
    half = (
        cv2.resize(g, (round(w / factor), round(h / factor)), interpolation=cv2.INTER_AREA)
        if factor > 1
        else g
    )
    hh, hw = half.shape
    shrink = min(1.0, COARSE_WIDTH / max(hw, hh))  # 640 x 480 -> 160 x 120
    small = cv2.resize(
        half, (max(8, round(hw * shrink)), max(8, round(hh * shrink))), interpolation=cv2.INTER_AREA
    )
    # Bright level: reflections and lid skin above it are flattened while the limbus is sought.
    bright = max(percentile(np.bincount(small.ravel(), minlength=256), 0.98), 40.0)
    # A dark blob that is not a disk (the pupil run into lashes) comes with a second reading:
    # the pupil is the one whose edge the rays find more clearly at full resolution.
    # Where that edge is not as clear as a pupil's, a greyer blob (a clouded pupil) takes its
    # place if its own edge is (a nearly closed eye's dark shapes stay as they were read).
    fine = None
    spots = specular_spots(g, small.shape)
    for coarse in coarse_pupils(small, w, h, spots):
        edge = fine_pupil(g, coarse)
        if fine is None or (edge is not None and clearer_edge(edge, fine)):
            fine = edge
    if fine is None or not clear_enough(fine):
        for coarse in coarse_pupils(small, w, h, spots, greyer=True):
            edge = fine_pupil(g, coarse)
            if edge is not None and clear_enough(edge) and (fine is None or clearer_edge(edge, fine)):
                fine = edge
    if fine is None:
        return metrics
    pupil, pupil_rms = fine.circle, fine.rms
    px, py, pr = pupil
    if pr < 3:
        return metrics
    iris = None
    if small.shape != half.shape:
        # An iris too large for the half-size copy is searched for on a smaller one.
        first = limbus(small, w / small.shape[1], pupil, bright)
        if first is not None and first[2] / factor > LIMBUS_LARGEST_IN_COPY:
            size = LIMBUS_COPY_RADIUS / first[2]
            copy = cv2.resize(
                g, (max(8, round(w * size)), max(8, round(h * size))), interpolation=cv2.INTER_AREA
            )
            iris = limbus(copy, w / copy.shape[1], pupil, bright)
    if iris is None:
        iris = limbus(half, factor, pupil, bright)
    if iris is None:
        return metrics
    ix, iy, ir = iris
    if not (ir > 1.2 * pr and math.hypot(ix - px, iy - py) < 0.5 * ir):
        return metrics

    grey, xs, ys, u = annulus(g, pupil, iris, ANNULUS_ANGLES, ANNULUS_RADII)
    inside = (xs >= 0) & (ys >= 0) & (xs <= w - 1) & (ys <= h - 1)
    cos, sin = unit_rays(PUPIL_RAYS, 0.0, 360.0)
    # The pupil's grey: the darkest tenth of three rings inside it (a lid come down past the
    # pupil's centre covers most of them with skin).
    rings = np.array([0.3, 0.5, 0.7], np.float32)[:, None] * pr
    inside_pupil = sample(g, px + rings * cos[None, :], py + rings * sin[None, :]).ravel()
    pupil_grey = float(np.partition(inside_pupil, len(inside_pupil) // 10)[len(inside_pupil) // 10])
    # Sclera: just outside the limbus, left and right.
    side = np.radians(np.array([-20.0, -10.0, 0.0, 10.0, 20.0, 160.0, 170.0, 180.0, 190.0, 200.0]))
    sclera_x = ix + np.cos(side)[:, None] * ir * np.array([1.12, 1.2, 1.28])[None, :]
    sclera_y = iy + np.sin(side)[:, None] * ir * np.array([1.12, 1.2, 1.28])[None, :]
    on_frame = (sclera_x >= 0) & (sclera_x <= w - 1)
    sclera_samples = sample(g, sclera_x, sclera_y)[on_frame]
    # A side (the right's five angles, then the left's) counts with a third of its samples in
    # the frame: a few at the frame's edge are not the sclera.
    per_side = on_frame.reshape(2, -1).sum(axis=1)
    sclera_sides = int((3 * per_side >= on_frame.size // 2).sum())
    # The brighter half of them: the sclera's edge by the limbus is often shaded by the lids
    # and the lashes, where only some of the samples land.
    upper_quarter = (3 * sclera_samples.size) // 4
    sclera_grey = (
        float(np.partition(sclera_samples, upper_quarter)[upper_quarter])
        if sclera_samples.size
        else float(grey.max())
    )
    # What the lids are told apart from the iris by starts from the eye's black: the pupil's,
    # or the lashes' where the pupil is clouded (EYE_CLOUDED_PUPIL).
    clouded = clouded_pupil_black(g, pupil, iris, pupil_grey, sclera_grey)
    black = pupil_grey if clouded is None else clouded
    # The iris's own grey: the middle of what lies between that black and the sclera. (The
    # annulus's median would be lid skin when the lid hides most of it.)
    gap = max(sclera_grey - black, 8.0)
    middle = inside & (grey > black + 0.2 * gap) & (grey < sclera_grey - 0.2 * gap)
    iris_ref = median(grey[middle]) if middle.any() else black + 0.5 * gap

    # Specular reflections: far above the sclera's grey (the illuminator's image saturates).
    spec_cut = sclera_grey + 0.4 * max(255.0 - sclera_grey, 0.0)
    bright_cut = iris_ref + 0.5 * max(sclera_grey - iris_ref, 12.0)
    dark_cut = iris_ref - 0.5 * max(iris_ref - black, 12.0)
    # The lids on the eye's greys brought into the development eyes' tone (another camera's
    # tone curve): everything else is measured on the frame as it is.
    skin_cut = black + 0.5 * (bright_cut - black)
    table = lid_tone_table(black, iris_ref, sclera_grey)
    if table is not None:
        skin_cut = float(np.interp(skin_cut, np.arange(256), table))
    upper_lid, lower_lid = levelled_eyelids(
        functools.partial(eyelids, skin_cut=skin_cut, spec_cut=spec_cut, black=clouded),
        g if table is None else cv2.LUT(g, table),
        pupil,
        iris,
    )
    beyond = np.zeros(grey.shape, bool)
    if upper_lid is not None:
        beyond |= ys < upper_lid.y_at(xs)
    if lower_lid is not None:
        beyond |= ys > lower_lid.y_at(xs)
    # What the lids leave, in the frame, less the specular spots. Single lashes across the
    # iris are not taken off: by grey alone they cannot be told from the dark crypts of
    # real irises, and taking the crypts off refused eyes people see as wide open.
    usable = inside & ~beyond & (grey < spec_cut)
    # Samples farther out stand for more area. Iris outside the frame is left out: the
    # usable area is what the lids, lashes and reflections leave (ISO/IEC 29794-6), and
    # the frame's edges are the margins' checks (off_center), which are the camera's.
    weight = (pr + u * (ir - pr)) * inside
    total = max(float(weight.sum()), 1e-6)
    usable_area = float((weight * usable).sum() / total)
    between_lids = float((weight * (inside & ~beyond)).sum() / total)
    iris_values = grey[usable]
    # A sliver of iris between nearly closed lids says little: the grey of all the annulus
    # in the frame speaks for it (lid skin, when the eye is closed).
    iris_grey = median(iris_values) if iris_values.size and usable_area >= 0.3 else median(grey[inside])

    # The lids' heights over the iris at its centre column and half a radius either side,
    # clipped to the limbus: a lid above (below) the iris there hides none of it.
    lid_heights: dict[str, float] = {}
    for name, lid, side in (("upper", upper_lid, -1.0), ("lower", lower_lid, 1.0)):
        for suffix, offset in (("_left", -0.5), ("", 0.0), ("_right", 0.5)):
            x = ix + offset * ir
            edge = iy + side * math.sqrt(max(ir * ir - (x - ix) ** 2, 0.0))
            y = edge if lid is None else float(lid.y_at(x))
            lid_heights[f"{name}_eyelid_y{suffix}"] = max(y, edge) if side < 0 else min(y, edge)
    upper_y, lower_y = lid_heights["upper_eyelid_y"], lid_heights["lower_eyelid_y"]

    reflection = reflection_on_iris(g, pupil, iris, spec_cut, (dark_cut, bright_cut), (upper_lid, lower_lid))

    # Saturation where it costs texture: over the iris annulus (sclera and skin may clip).
    saturated = float((weight * (grey >= SATURATED_GREY)).sum() / max(weight.sum(), 1e-6))

    # With the top of the pupil's edge under the lid, or the lid's dark margin touching it
    # (the two merge, and the edge found runs along the margin), its ellipse says more about
    # the lid than about the gaze: 0, and open_wider speaks instead.
    pupil_aspect = aspect(fine.ellipse)
    lid_on_pupil = upper_lid is not None and float(upper_lid.y_at(px)) > py - (1.0 + LID_NEAR_PUPIL) * pr
    gaze = (
        math.degrees(math.acos(min(1.0, max(0.0, pupil_aspect + PUPIL_AXIS_PX / pr))))
        if fine.seen >= 0.9 and not lid_on_pupil
        else 0.0
    )
    widths = edge_widths(g, fine)
    edge_width, widest = widths if widths else (float(2.0 * pr), float(2.0 * pr))

    metrics.update(
        {
            "eye_found": 1.0,
            "pupil_x": px,
            "pupil_y": py,
            "pupil_r": pr,
            "iris_x": ix,
            "iris_y": iy,
            "iris_r": ir,
            "iris_diameter": 2.0 * ir,
            "pupil_iris_ratio": pr / ir,
            "concentricity": max(0.0, 1.0 - math.hypot(ix - px, iy - py) / ir),
            "pupil_circularity": max(0.0, 1.0 - pupil_rms / pr),
            "margin_left_right": min(ix - ir, w - 1 - ix - ir) / ir,
            "margin_top_bottom": min(iy - ir, h - 1 - iy - ir) / ir,
            **lid_heights,
            "eyelid_opening": float(np.clip((lower_y - upper_y) / (2.0 * ir), 0.0, 1.0)),
            "usable_iris_area": usable_area,
            "iris_between_lids": between_lids,
            "iris_sclera_contrast": float(
                np.clip((sclera_grey - iris_grey) / max(sclera_grey + iris_grey - 2 * pupil_grey, 1.0), 0, 1)
            ),
            "iris_pupil_contrast": float(
                np.clip((iris_grey - pupil_grey) / max(iris_grey + pupil_grey, 1.0), 0, 1)
            ),
            "grey_scale_use": entropy(iris_values),
            "iris_grey": iris_grey,
            "sclera_grey": sclera_grey,
            "sclera_sides": float(sclera_sides),
            "saturated_fraction": saturated,
            "edge_width_px": edge_width,
            "motion_blur_px": math.sqrt(max(0.0, widest * widest - edge_width * edge_width)),
            "sharpness": min(1.0, 2.0 / max(edge_width, 1e-6)),
            # A turned eye foreshortens pupil and limbus alike. The pupil's edge is sharp and
            # seen all round; the limbus is soft and its top and bottom are under the lids,
            # which made its ellipse too round by 0.04-0.17 on turned calibration eyes. So the
            # pupil's ellipse tells the gaze (a real pupil is itself oval by a few per cent:
            # 0.95 reads as 18 degrees, under the default limit).
            "gaze_deg": gaze,
            "reflection_on_iris": reflection,
            "glare_at_pupil_edge": glare_at_pupil_edge(g, pupil, iris, spec_cut),
            "noise_grey": noise_grey(g, iris),
        }
    )
    return metrics


# --- score ---------------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def _score(m: Mapping[str, float], t: Mapping[str, float]) -> float:
    """0-100 from the metrics: the usable iris times knee factors, one per quality.

    Each factor is close to 1 over the range that synthetic eyes of the calibration seeds
    (1-5) span when nothing is wrong, and falls steeply past its knee, which sits a little
    beyond the default threshold of the same quality; each is monotonic in its metric, so
    the score falls along every degradation. The score ranks frames (best of N) and backs
    the gate's min_score; the checks say what is wrong.
    """
    if not m.get("eye_found"):
        return 0.0
    # Size and place are the camera's (its thresholds): the knees sit where the kit camera's
    # defaults put them (210 px: 185, 350 px: 380; margins 0.15 and 0.12 under their minimum).
    # A threshold of 0 (a size check turned off) still gives each knee a width.
    d, low, high = m["iris_diameter"], max(t["min_iris_diameter"], 1.0), max(t["max_iris_diameter"], 1.0)
    f_size = _sigmoid((d - 0.88 * low) / (0.029 * low)) * _sigmoid((1.086 * high - d) / (0.017 * high))
    usable = m["usable_iris_area"]
    f_usable = usable * _sigmoid((usable - 0.6) / 0.05)
    f_focus = _sigmoid((5.5 - m["edge_width_px"]) / 0.6)
    f_motion = _sigmoid((6.5 - m["motion_blur_px"]) / 0.9)
    f_gaze = _sigmoid((30.0 - m["gaze_deg"]) / 3.0)
    grey = m["iris_grey"]
    f_exposure = (
        _sigmoid((_lit_grey(m, t) - 50.0) / 6.0)
        * _sigmoid((185.0 - grey) / 6.0)
        * _sigmoid((0.3 - m["saturated_fraction"]) / 0.04)
    )
    f_margin = _sigmoid((m["margin_left_right"] - t["min_margin_left_right"] + 0.15) / 0.06) * _sigmoid(
        (m["margin_top_bottom"] - t["min_margin_top_bottom"] + 0.12) / 0.04
    )
    # Real limbi are soft and some irises are light: 0.05 is a clear limbus on real eyes.
    f_contrast = _sigmoid((m["iris_sclera_contrast"] - 0.03) / 0.01) * _sigmoid(
        (m["iris_pupil_contrast"] - 0.15) / 0.03
    )
    # A reflection on the iris halves the score, whatever its size once it is past the
    # check's limit: where it sits matters (it hides texture the matcher needs), not a few
    # pixels more or less. Under the limit it costs next to nothing: a glint the check lets
    # through must not sink the score on its own (and have the gate name some other cause).
    limit = max(t["max_reflection_on_iris"], 1e-6)
    f_reflection = 1.0 - 0.5 * _sigmoid((m["reflection_on_iris"] - 1.25 * limit) / (0.15 * limit))
    noise = max(t["max_noise_grey"], 0.1)
    f_noise = _sigmoid((1.25 * noise - m["noise_grey"]) / (0.2 * noise))
    q = f_size * f_usable * f_focus * f_motion * f_gaze * f_exposure * f_margin * f_contrast * f_reflection
    q *= f_noise
    return float(round(100.0 * q, 1))


# --- checks and feedback ---------------------------------------------------------------------------


def _lit_grey(m: Mapping[str, float], t: Mapping[str, float]) -> float:
    """The iris's grey, or what the sclera's light says it would be at least: a dark iris
    beside a well-lit sclera is dark by its pigment, and more light is not what it needs."""
    ratio = t["min_iris_grey"] / max(t["min_sclera_grey"], 1e-6)
    return max(m["iris_grey"], ratio * m.get("sclera_grey", 0.0))


def _checks(m: Mapping[str, float], t: Mapping[str, float]) -> list[str]:
    """The feedback codes whose checks fail, in :data:`FEEDBACK_PRIORITY` order."""
    if not m.get("eye_found"):
        # Nothing else is worth saying about a frame without an eye, unless it is burnt out:
        # the eye may be there, washed out with its limbus, and the light is what to change.
        return ["too_bright"] if m.get("saturated_fraction", 0.0) > BURNT_OUT_FRAME else ["no_eye"]
    over_exposed = m["sclera_grey"] >= BURNT_OUT_SCLERA or m["iris_grey"] > t["max_iris_grey"]
    if m["glare_at_pupil_edge"] > GLARE_AT_PUPIL_EDGE and not over_exposed:
        # Glare across the pupil's edge (glasses) may have been taken for part of it: the
        # circles, the lids and the greys are measured wrong, and the glare is what to change.
        # (With the sclera burnt out, or the iris too bright, the eye is over-exposed.)
        return ["reflection_on_iris"]
    if (
        m["iris_sclera_contrast"] < HIDDEN_IRIS_CONTRAST
        and m["sclera_grey"] < BURNT_OUT_SCLERA
        and m["sclera_sides"] == 2
    ):
        # An "iris" as bright as the sclera beside it (unless both are burnt out: too
        # bright) is lid skin: the eye is (nearly) closed, and what was measured on it (its
        # grey, its edges, its size) says nothing. Only with the sclera seen on both sides:
        # in near-infrared one side (the nasal, mostly) is often little brighter than the
        # iris, and an open eye at the frame's edge would be told to open wider, not to move.
        return ["open_wider"]
    failed = set()
    if _lit_grey(m, t) < t["min_iris_grey"]:
        failed.add("too_dark")
    if m["iris_grey"] > t["max_iris_grey"] or m["saturated_fraction"] > t["max_saturated_fraction"]:
        failed.add("too_bright")
    if m["iris_diameter"] > t["max_iris_diameter"]:
        failed.add("move_back")
    if m["iris_diameter"] < t["min_iris_diameter"]:
        failed.add("move_closer")
    if (
        m["margin_left_right"] < t["min_margin_left_right"]
        or m["margin_top_bottom"] < t["min_margin_top_bottom"]
    ):
        failed.add("off_center")
    if m["gaze_deg"] > t["max_gaze_deg"]:
        failed.add("look_at_camera")
    if m["usable_iris_area"] < t["min_usable_iris_area"]:
        # Lids that leave enough of the iris are not the fault: glare on it (glasses) is,
        # unless the whole eye is too bright (the iris itself then reads as glare).
        lids_leave_enough = m["iris_between_lids"] >= t["min_usable_iris_area"]
        failed.add("reflection_on_iris" if lids_leave_enough and "too_bright" not in failed else "open_wider")
    if m["noise_grey"] > t["max_noise_grey"]:
        failed.add("grainy")
    if m["motion_blur_px"] > t["max_motion_blur_px"]:
        failed.add("hold_still")
    if m["edge_width_px"] > t["max_edge_width_px"]:
        failed.add("out_of_focus")
    if m["reflection_on_iris"] > t["max_reflection_on_iris"]:
        failed.add("reflection_on_iris")
    return [code for code in FEEDBACK_PRIORITY if code in failed]


def _closest_to_failing(m: Mapping[str, float], t: Mapping[str, float]) -> str:
    """The feedback code whose metric is nearest its threshold (as a ratio)."""
    eps = 1e-6
    margins = {
        "move_closer": m["iris_diameter"] / max(t["min_iris_diameter"], eps),
        "move_back": t["max_iris_diameter"] / max(m["iris_diameter"], eps),
        "off_center": min(
            m["margin_left_right"] / max(t["min_margin_left_right"], eps),
            m["margin_top_bottom"] / max(t["min_margin_top_bottom"], eps),
        ),
        "look_at_camera": t["max_gaze_deg"] / max(m["gaze_deg"], eps),
        "open_wider": m["usable_iris_area"] / max(t["min_usable_iris_area"], eps),
        "hold_still": t["max_motion_blur_px"] / max(m["motion_blur_px"], eps),
        "out_of_focus": t["max_edge_width_px"] / max(m["edge_width_px"], eps),
        "too_dark": _lit_grey(m, t) / max(t["min_iris_grey"], eps),
        "too_bright": t["max_iris_grey"] / max(m["iris_grey"], eps),
        "grainy": t["max_noise_grey"] / max(m["noise_grey"], eps),
    }
    return min(margins, key=lambda code: margins[code])


def merged_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with `thresholds` over them; ValueError naming any unknown key."""
    return merge_thresholds(DEFAULT_THRESHOLDS, thresholds, "iris")


def _pupil_inside(metrics: Mapping[str, float], shape: tuple[int, ...]) -> bool:
    """Whether the located pupil lies wholly inside the frame.

    A pupil cut by the frame's edge cannot be judged, and a dark blob at the border (hair,
    a shadow, a printed mark in a corner) is the commonest thing taken for one when no eye
    is in view; an eye only towards the edge, pupil still inside, is told `off_center`.
    """
    height, width = shape[0], shape[1]
    x, y, r = metrics["pupil_x"], metrics["pupil_y"], metrics["pupil_r"]
    return r <= x <= width - r and r <= y <= height - r


def assess_iris(image: np.ndarray, thresholds: Mapping[str, float] | None = None) -> IrisReport:
    """Score one near-infrared eye frame and say what, if anything, the officer should change.

    ``image`` is a 2-D grey (or 3-channel colour) array of any size; lengths in the report
    are pixels of that frame. ``thresholds`` overrides keys of :data:`DEFAULT_THRESHOLDS`
    (unknown keys are an error, so a typo in the config does not silently keep a default).
    """
    t = merged_thresholds(thresholds)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0 or min(arr.shape[:2]) < MIN_FRAME_SIDE:
        raise ValueError(
            f"expected a grey image of at least {MIN_FRAME_SIDE} x {MIN_FRAME_SIDE} pixels, "
            f"got shape {arr.shape}"
        )
    grey = to_grey8(arr)
    raw = _measure(grey)
    metrics = {k: round(float(v), 4) for k, v in raw.items() if math.isfinite(v)}
    if (
        not metrics.get("eye_found")
        or metrics["iris_pupil_contrast"] < t["min_iris_pupil_contrast"]
        or not _pupil_inside(metrics, arr.shape[:2])
    ):
        # Circles found on something that is not an eye (skin texture, a shadow) are not
        # reported: the officer is told there is no eye, the overlay draws nothing.
        metrics = {"eye_found": 0.0, "saturated_fraction": round(float((grey >= SATURATED_GREY).mean()), 4)}
    score = _score(metrics, t) if metrics.get("eye_found") else 0.0
    return judge(IrisReport, score, metrics, _checks(metrics, t), t, _closest_to_failing)
