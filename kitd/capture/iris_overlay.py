"""What the iris assessor found, drawn on the live preview: the pupil and limbus circles and
the eyelid lines, the limbus in the pass or fail colour. No words, no score: the page says
what to do, in its own language, from the feedback codes the API reports.

`draw_assessment` draws one report on a BGR image (the preview frame, scaled); each camera's
preview (kitd.services.iris_feed) has its own `IrisQualityOverlay`, which assesses each
previewed frame (once, whatever the number of viewers and sessions, on the preview's own
thread) and draws it.
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

from kitd.capture.iris_quality import IrisReport, assess_iris

RECENT_REPORTS = 4
PASS_COLOUR = (80, 200, 80)  # BGR
FAIL_COLOUR = (40, 170, 255)
PUPIL_COLOUR = (255, 200, 0)
LID_COLOUR = (200, 120, 255)


def draw_assessment(image: np.ndarray, report: IrisReport, scale: float = 1.0) -> None:
    """Draw `report`'s circles and eyelids on the BGR `image` in place (nothing when it found
    no eye); `scale` is image pixels per frame pixel."""
    circles = report.circles()
    if circles is None:
        return
    colour = PASS_COLOUR if report.passed else FAIL_COLOUR
    line = max(1, round(2 * image.shape[1] / 640))
    (px, py, pr), (ix, iy, ir) = circles
    cv2.circle(image, (round(px * scale), round(py * scale)), max(1, round(pr * scale)), PUPIL_COLOUR, line)
    cv2.circle(image, (round(ix * scale), round(iy * scale)), max(1, round(ir * scale)), colour, line)
    m = report.metrics
    for key in ("upper_eyelid_y", "lower_eyelid_y"):
        if key in m:
            y = round(m[key] * scale)
            half = round(0.5 * ir * scale)
            cx = round(ix * scale)
            cv2.line(image, (cx - half, y), (cx + half, y), LID_COLOUR, line)


class IrisQualityOverlay:
    """A preview overlay and a camera's one judge: assess frames (thresholds from the config),
    at most `judge_fps` a second, and draw the newest report's circles on every preview frame.

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
        # A running capture session's line for the officer, (Bahasa Indonesia, English), as
        # kitd.services.sessions sets it. Not drawn: the preview carries no words.
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
