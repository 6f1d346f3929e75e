"""The preview's messages are legible on any eye: each line sits on a solid dark band (issue 17,
defect 9: an outline drawn as a second, thicker pass drifted from the fill along the line)."""

from __future__ import annotations

import numpy as np

from hil.synthetic_eye import EyeParams, render
from kitd.capture.iris_overlay import BAND_COLOUR, draw_assessment, draw_session_message
from kitd.capture.iris_quality import assess_iris


def _band_share(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    return float(np.mean(np.all(patch == BAND_COLOUR, axis=1)))


def test_messages_sit_on_a_solid_band_even_on_white() -> None:
    eye, _ = render(EyeParams(eyelid=0.5))  # an eye the assessor has words for
    report = assess_iris(eye)
    assert report.feedback, "the eye should get a message"
    image = np.full((360, 480, 3), 255, np.uint8)  # the worst case: bright skin everywhere
    draw_assessment(image, report, 0.75)
    draw_session_message(image, ("Tahan posisi... 1/3", "Hold still... 1/3"))
    # Top left: the assessor's first message; bottom right: the session's line. Most of each
    # area is the band; the rest is the text drawn on it.
    top_left, bottom_right = (10, 12, 200, 28), (390, 339, 470, 351)
    for box in (top_left, bottom_right):
        assert _band_share(image, box) > 0.5, box
