"""The iris preview's frames carry only drawings, no words (touch-screen issue): the assessor's
pupil and limbus circles and eyelid lines, the limbus in the pass or fail colour; no score, no
message, no session line, and a plain dark card when there is no frame. The page says all of
that itself, in its own language, from the API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from hil.synthetic_eye import EyeParams, render
from kitd.capture.iris_overlay import FAIL_COLOUR, PASS_COLOUR, IrisQualityOverlay, draw_assessment
from kitd.capture.iris_preview import CARD_GREY, render_card, render_preview
from kitd.capture.iris_quality import IrisReport, assess_iris
from kitd.services.iris_feed import IrisFeed

SCALE = 0.75  # a 640-wide camera frame on the 480-wide preview
SLACK = 3  # pixels either side of a drawn line that may change (its width, antialiasing)


def _preview(eye: np.ndarray) -> np.ndarray:
    size = (round(eye.shape[1] * SCALE), round(eye.shape[0] * SCALE))
    return cv2.cvtColor(cv2.resize(eye, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)


def _drawable(report: IrisReport, shape: tuple[int, ...]) -> np.ndarray:
    """Where drawing `report` may change the preview: thick rings along its two circles and
    bands along its eyelid lines, worked out here from the report's numbers alone."""
    mask = np.zeros(shape[:2], np.uint8)
    circles = report.circles()
    if circles is None:
        return mask.astype(bool)
    width = 2 * SLACK + 2
    for x, y, r in circles:
        cv2.circle(mask, (round(x * SCALE), round(y * SCALE)), round(r * SCALE), 1, width)
    _, (ix, _, ir) = circles
    for key in ("upper_eyelid_y", "lower_eyelid_y"):
        if key in report.metrics:
            y, half, cx = report.metrics[key] * SCALE, 0.5 * ir * SCALE, ix * SCALE
            cv2.line(mask, (round(cx - half), round(y)), (round(cx + half), round(y)), 1, width)
    return mask.astype(bool)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)


def _eye_with_words() -> tuple[np.ndarray, IrisReport]:
    eye, _ = render(EyeParams(eyelid=0.5))  # an eye the assessor has a message for
    report = assess_iris(eye)
    assert report.feedback and report.circles() is not None and not report.passed
    assert "upper_eyelid_y" in report.metrics
    return eye, report


def test_a_report_with_feedback_changes_the_frame_only_along_its_circles_and_lids() -> None:
    eye, report = _eye_with_words()
    for background in (_preview(eye), np.full_like(_preview(eye), 255)):  # the eye; bright skin
        image = background.copy()
        draw_assessment(image, report, SCALE)
        changed = _changed(background, image)
        allowed = _drawable(report, image.shape)
        assert not (changed & ~allowed).any(), np.argwhere(changed & ~allowed)[:5]
        # And the drawing is there: most of each ring and lid band changed, the limbus in the
        # failing colour.
        assert changed[allowed].mean() > 0.25
        assert np.all(image == FAIL_COLOUR, axis=2).sum() > 100
        assert not np.all(image == PASS_COLOUR, axis=2).any()


def test_a_report_without_an_eye_draws_nothing() -> None:
    blank = np.full((480, 640), 200, np.uint8)  # no eye: no circles, and no score either
    report = assess_iris(blank)
    assert report.circles() is None and report.feedback
    image = _preview(blank)
    before = image.copy()
    draw_assessment(image, report, SCALE)
    assert np.array_equal(image, before)


def test_the_preview_overlay_draws_no_session_line() -> None:
    eye, report = _eye_with_words()
    overlay = IrisQualityOverlay()
    overlay.session_message = ("Tahan posisi... 1/3", "Hold still... 1/3")
    frame = SimpleNamespace(seq=1, image=eye)
    image = _preview(eye)
    before = image.copy()
    overlay(image, frame, SCALE)
    changed = _changed(before, image)
    assert changed.any()
    assert not (changed & ~_drawable(report, image.shape)).any()


def test_a_previewed_frame_differs_from_the_camera_frame_only_along_the_drawing() -> None:
    eye, report = _eye_with_words()
    frame: Any = SimpleNamespace(seq=1, image=eye)
    plain = cv2.imdecode(np.frombuffer(render_preview(eye, frame, 480, 95, []), np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(
        np.frombuffer(render_preview(eye, frame, 480, 95, [IrisQualityOverlay()]), np.uint8), cv2.IMREAD_COLOR
    )
    assert plain.shape == drawn.shape == (360, 480, 3)
    # JPEG spreads a change over its 8x8 block: outside the drawing's reach (widened by a
    # block), the two pictures agree to within JPEG's noise.
    near = cv2.dilate(_drawable(report, drawn.shape).astype(np.uint8), np.ones((17, 17), np.uint8))
    far = near == 0
    difference = np.abs(plain.astype(int) - drawn.astype(int)).max(axis=2)
    assert difference[far].max() <= 12, np.argwhere(far & (difference > 12))[:5]
    assert difference[~far].max() > 100  # the drawing itself


def test_the_card_is_a_plain_dark_frame() -> None:
    card = cv2.imdecode(np.frombuffer(render_card(480), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert card.shape == (360, 480)
    assert np.abs(card.astype(int) - CARD_GREY).max() <= 2  # nothing drawn on it
    feed = IrisFeed(SimpleNamespace(id="iris"))  # type: ignore[arg-type]
    try:
        assert feed.card(480) == render_card(480)
    finally:
        feed.close()
