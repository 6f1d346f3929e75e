"""A camera's one judge (IrisQualityOverlay): frames judged at most judge_fps a second however
many look at them, each judged once, the preview drawing the newest report in between."""

from __future__ import annotations

import numpy as np

from hil.synthetic_eye import EyeParams, render
from kitd.capture.iris_overlay import IrisQualityOverlay

EYE, _ = render(EyeParams())


class FakeFrame:
    def __init__(self, seq: int, image: np.ndarray | None = EYE) -> None:
        self.seq, self.image, self.intact = seq, image, True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_thirty_frames_a_second_are_judged_at_the_configured_pace() -> None:
    clock = Clock()
    judge = IrisQualityOverlay(judge_fps=8, clock=clock)
    seen = []
    for seq in range(1, 91):  # three seconds at 30 fps
        newest = judge.judge_if_due(FakeFrame(seq))
        assert newest is not None
        seen.append(newest[0].seq)
        clock.now += 1 / 30
    assert 23 <= judge.judged <= 25  # 8 a second, not 30
    # Between two judgements the newest report stands, never one of a frame not judged.
    assert len(set(seen)) == judge.judged
    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False))


def test_a_frame_is_judged_once_whoever_asks() -> None:
    clock = Clock()
    judge = IrisQualityOverlay(judge_fps=8, clock=clock)
    frame = FakeFrame(1)
    first = judge.judge_if_due(frame)
    assert first is not None and first[0] is frame
    assert judge.report_for(frame) is first[1]  # the session asking for the same frame
    clock.now += 1.0
    assert judge.judge_if_due(frame) == first  # due again, but this frame is judged already
    assert judge.judged == 1


def test_zero_judges_every_frame_and_report_for_always_answers() -> None:
    judge = IrisQualityOverlay(judge_fps=0, clock=Clock())
    for seq in range(1, 6):
        judge.judge_if_due(FakeFrame(seq))
    assert judge.judged == 5
    paced = IrisQualityOverlay(judge_fps=1, clock=Clock())
    paced.judge_if_due(FakeFrame(1))
    late = FakeFrame(2)
    assert paced.judge_if_due(late)[0].seq == 1  # not due: the newest report stands
    assert paced.report_for(late).score >= 0  # but asked directly, it is judged
    assert paced.judged == 2


def test_a_frame_without_an_image_is_never_judged() -> None:
    judge = IrisQualityOverlay(judge_fps=0, clock=Clock())
    assert judge.judge_if_due(FakeFrame(1, image=None)) is None
    assert judge.judged == 0
