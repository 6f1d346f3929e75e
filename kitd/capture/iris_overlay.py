"""What the iris assessor found, drawn on the live preview: circles, eyelids, score and message.

`draw_assessment` draws one report on a BGR image (the preview frame, scaled); each camera's
preview (kitd.services.iris_feed) has its own `IrisQualityOverlay`, which assesses each
previewed frame (once, whatever the number of viewers and sessions, on the preview's own
thread) and draws it. The officer reads the message in Bahasa Indonesia, with the English under it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from kitd.capture.iris_quality import FEEDBACK_MESSAGES, IrisReport, assess_iris

PASS_COLOUR = (80, 200, 80)  # BGR
FAIL_COLOUR = (40, 170, 255)
PUPIL_COLOUR = (255, 200, 0)
LID_COLOUR = (200, 120, 255)


def _text(
    image: np.ndarray, line: str, origin: tuple[int, int], size: float, colour: tuple[int, int, int]
) -> None:
    # Dark outline first: the message stays readable on bright skin and dark lashes alike.
    thickness = max(1, round(1.6 * size))
    cv2.putText(image, line, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, line, origin, cv2.FONT_HERSHEY_SIMPLEX, size, colour, thickness, cv2.LINE_AA)


def draw_assessment(image: np.ndarray, report: IrisReport, scale: float = 1.0) -> None:
    """Draw `report` on the BGR `image` in place; `scale` is image pixels per frame pixel."""
    height, width = image.shape[:2]
    colour = PASS_COLOUR if report.passed else FAIL_COLOUR
    circles = report.circles()
    line = max(1, round(2 * width / 640))
    if circles is not None:
        (px, py, pr), (ix, iy, ir) = circles
        cv2.circle(
            image, (round(px * scale), round(py * scale)), max(1, round(pr * scale)), PUPIL_COLOUR, line
        )
        cv2.circle(image, (round(ix * scale), round(iy * scale)), max(1, round(ir * scale)), colour, line)
        m = report.metrics
        for key in ("upper_eyelid_y", "lower_eyelid_y"):
            if key in m:
                y = round(m[key] * scale)
                half = round(0.5 * ir * scale)
                cx = round(ix * scale)
                cv2.line(image, (cx - half, y), (cx + half, y), LID_COLOUR, line)
    size = 0.6 * width / 480
    step = round(28 * width / 480)
    left = round(10 * width / 480)
    _text(image, f"{report.score:.0f}", (left, height - left), size * 1.4, colour)
    if report.feedback:
        indonesian, english = FEEDBACK_MESSAGES[report.feedback[0]]
        _text(image, indonesian, (left, step), size, colour)
        _text(image, english, (left, 2 * step), size * 0.8, colour)


def draw_session_message(image: np.ndarray, message: tuple[str, str]) -> None:
    """The capture session's state, bottom right, under the assessor's own message."""
    height, width = image.shape[:2]
    size = 0.55 * width / 480
    step = round(24 * width / 480)
    indonesian, english = message
    for offset, (line, scale) in enumerate(((english, 0.8), (indonesian, 1.0))):
        (text_width, _), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, size * scale, 1)
        origin = (
            width - text_width - round(10 * width / 480),
            height - round(10 * width / 480) - offset * step,
        )
        _text(image, line, origin, size * scale, (255, 255, 255))


class IrisQualityOverlay:
    """A preview overlay: assess the frame (thresholds from the config) and draw the report.

    Keeps the last report so that other parts of the daemon (a capture session, the events)
    can show the same judgement without assessing the frame twice.
    """

    def __init__(self, thresholds: Mapping[str, float] | None = None) -> None:
        self.thresholds = dict(thresholds or {})
        self._lock = threading.Lock()
        self.last: tuple[Any, IrisReport] | None = None
        # A running capture session's line for the officer: (Bahasa Indonesia, English).
        self.session_message: tuple[str, str] | None = None

    def report_for(self, frame: Any) -> IrisReport:
        """The report of `frame`, judged once however many viewers and sessions ask.

        Keyed by the frame object itself, not its number: two cameras number alike.
        """
        # Held while judging: the preview and a session ask for the same new frame at once,
        # and the second should wait for the first's report rather than judge it again.
        with self._lock:
            if self.last is None or self.last[0] is not frame:
                self.last = (frame, assess_iris(frame.image, self.thresholds or None))
            return self.last[1]

    def __call__(self, image: np.ndarray, frame: Any, scale: float) -> None:
        if frame.image is None:
            return
        draw_assessment(image, self.report_for(frame), scale)
        message = self.session_message
        if message is not None:
            draw_session_message(image, message)
