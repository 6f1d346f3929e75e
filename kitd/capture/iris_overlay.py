"""What the iris assessor found, drawn on the live preview: circles, eyelids, score and message.

`draw_assessment` draws one report on a BGR image (the preview frame, scaled); each camera's
preview (kitd.services.iris_feed) has its own `IrisQualityOverlay`, which assesses each
previewed frame (once, whatever the number of viewers and sessions, on the preview's own
thread) and draws it. The officer reads the message in Bahasa Indonesia, with the English under it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np

from kitd.capture.iris_quality import FEEDBACK_MESSAGES, IrisReport, assess_iris

RECENT_REPORTS = 4
PASS_COLOUR = (80, 200, 80)  # BGR
FAIL_COLOUR = (40, 170, 255)
PUPIL_COLOUR = (255, 200, 0)
LID_COLOUR = (200, 120, 255)


BAND_COLOUR = (24, 24, 24)


def _text(
    image: np.ndarray, line: str, origin: tuple[int, int], size: float, colour: tuple[int, int, int]
) -> None:
    # On a solid dark band: readable on bright skin and dark lashes alike. An outline drawn as
    # a second, thicker pass drifts from the fill along the line (and costs a second pass).
    thickness = max(1, round(1.6 * size))
    (width, height), baseline = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
    pad = max(2, round(height * 0.25))
    x, y = origin
    cv2.rectangle(
        image, (x - pad, y - height - pad), (x + width + pad, y + baseline), BAND_COLOUR, cv2.FILLED
    )
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
    """A preview overlay and a camera's one judge: assess frames (thresholds from the config),
    at most `judge_fps` a second, and draw the newest report on every preview frame.

    Judging a frame costs several times what showing it does (5 ms against 1 ms at 640 x 480
    on this kind of machine, three times that on a Pi), so a camera's frames are judged at a
    bounded rate however many viewers, sessions and captures look at them: they all share the
    same reports. Between two judgements the preview shows the newest report, at most one
    judging interval old. judge_fps 0 judges every frame.
    """

    def __init__(
        self,
        thresholds: Mapping[str, float] | None = None,
        judge_fps: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thresholds = dict(thresholds or {})
        self.interval_s = 1.0 / judge_fps if judge_fps > 0 else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._judged_at = -math.inf
        # The last few (frame, report) judged, newest last: a session asking for the report of
        # a frame it was offered finds it here even if a newer one has been judged since.
        self._recent: deque[tuple[Any, IrisReport]] = deque(maxlen=RECENT_REPORTS)
        self.judged = 0
        # A running capture session's line for the officer: (Bahasa Indonesia, English).
        self.session_message: tuple[str, str] | None = None

    def _find(self, frame: Any) -> IrisReport | None:
        # Keyed by the frame object itself, not its number: two cameras number alike.
        return next((report for judged, report in self._recent if judged is frame), None)

    def _judge(self, frame: Any, now: float) -> IrisReport:
        report = assess_iris(frame.image, self.thresholds or None)
        self._recent.append((frame, report))
        self._judged_at = now
        self.judged += 1
        return report

    def report_for(self, frame: Any) -> IrisReport:
        """The report of `frame`, judged now if it has not been (whatever the pace)."""
        # Held while judging: the preview and a session ask for the same new frame at once,
        # and the second should wait for the first's report rather than judge it again.
        with self._lock:
            report = self._find(frame)
            return report if report is not None else self._judge(frame, self._clock())

    def due_in(self) -> float:
        """Seconds until the next judgement is due (0 when it is due now)."""
        return max(0.0, self._judged_at + self.interval_s - self._clock())

    def judge_if_due(self, frame: Any) -> tuple[Any, IrisReport] | None:
        """Judge `frame` if a judgement is due, then the newest (frame, report) judged (None
        before the first)."""
        with self._lock:
            now = self._clock()
            due = now - self._judged_at >= self.interval_s
            if due and frame.image is not None and self._find(frame) is None:
                self._judge(frame, now)
            return self._recent[-1] if self._recent else None

    def __call__(self, image: np.ndarray, frame: Any, scale: float) -> None:
        if frame.image is None:
            return
        newest = self.judge_if_due(frame)
        if newest is not None:
            draw_assessment(image, newest[1], scale)
        message = self.session_message
        if message is not None:
            draw_session_message(image, message)
