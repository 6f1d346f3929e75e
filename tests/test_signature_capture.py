"""Signature capture in-process: strokes, the JSON shape, ISO/IEC 19794-7 channels, facts, the
stopping rules of a recording (on a scripted pad with its own clock) and the rendered ink."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from hil.ink_path import ink_distances
from hil.synthetic_signature import synthetic_signature
from kitd.capture.signature import (
    PadInfo,
    PenPoint,
    Signature,
    record_signature,
    render_png,
    render_signature,
    signature_facts,
    signature_from_json,
    stop_reason,
    strokes,
)
from kitd.drivers.isdv4 import LineCounts, PenPacket, PenQuery, PenSample
from kitd.errors import DeviceGone, NoPenInput

PAD = PadInfo(max_x=9600, max_y=6000, max_pressure=1023, firmware=7)


def point(
    t_ms: float, x: int, y: int, pressure: int = 0, tip: bool = False, proximity: bool = True
) -> PenPoint:
    return PenPoint(t_ms, x, y, pressure, tip, proximity)


def test_strokes_run_from_tip_down_to_tip_up() -> None:
    assert strokes([False, True, True, False, True, False, False]) == [range(1, 3), range(4, 5)]
    assert strokes([True, True]) == [range(0, 2)]  # unfinished: closed at the end
    assert strokes([False, False]) == []
    assert strokes([]) == []


SMALL = Signature(
    PAD,
    (
        point(0.0, 1000, 2000),
        point(7.7, 1000, 2000, 300, tip=True),
        point(15.4, 1100, 2050, 500, tip=True),
        point(23.1, 1200, 2100, 0),
        point(30.8, 1500, 2300, 0),
        point(38.5, 1500, 2300, 200, tip=True),
        point(46.2, 1600, 2500, 0, tip=False, proximity=False),
    ),
)


def test_json_has_exactly_the_issue_shape() -> None:
    doc = SMALL.to_json()
    assert set(doc) == {"device", "points", "strokes"}
    assert doc["device"] == {
        "max_x": 9600,
        "max_y": 6000,
        "max_pressure": 1023,
        "firmware": 7,
        "points_per_mm": 100,
    }
    assert doc["strokes"] == 2
    assert doc["points"][1] == {
        "t_ms": 7.7,
        "x": 1000,
        "y": 2000,
        "pressure": 300,
        "tip": True,
        "proximity": True,
    }
    assert all(set(p) == {"t_ms", "x", "y", "pressure", "tip", "proximity"} for p in doc["points"])
    assert signature_from_json(doc) == SMALL


@pytest.mark.parametrize(
    "doc", [{}, {"device": {}, "points": []}, {"device": PAD.__dict__, "points": [{"x": 1}]}]
)
def test_json_that_is_not_a_recording(doc: dict) -> None:
    with pytest.raises(ValueError, match="not a signature recording"):
        signature_from_json(doc)


def test_iso_channels_in_device_units() -> None:
    channels = SMALL.channels()
    assert set(channels) == {"X", "Y", "F", "T", "S"}
    assert channels["X"].tolist() == [1000, 1000, 1100, 1200, 1500, 1500, 1600]
    assert channels["F"].tolist() == [0, 300, 500, 0, 0, 200, 0]
    assert channels["S"].tolist() == [False, True, True, False, False, True, False]
    assert channels["T"][-1] == pytest.approx(46.2)
    scales = SMALL.channel_scales()
    assert scales["X"] == {"unit": "1/100 mm", "min": 0, "max": 9600}
    assert scales["F"]["max"] == 1023


def test_facts() -> None:
    facts = signature_facts(SMALL)
    # stroke 1: tip down at 7.7 ms, lifted by the packet at 23.1 ms; stroke 2: 38.5 -> 46.2 ms
    assert facts["strokes"] == 2
    assert facts["pen_down_s"] == round((23.1 - 7.7 + 46.2 - 38.5) / 1000, 3)  # to the ms
    assert facts["ink_mm"] == {"left_mm": 10.0, "top_mm": 20.0, "width_mm": 5.0, "height_mm": 3.0}
    assert signature_facts(Signature(PAD, (point(0, 1, 1),)))["ink_mm"] is None


def test_stop_reasons() -> None:
    # nothing armed before the first tip-down, however long the silence
    assert (
        stop_reason(now=9.0, started=0.0, seconds=10, first_tip_at=None, last_packet_at=1.0, quiet_s=2)
        is None
    )
    assert stop_reason(10.0, 0.0, 10, None, None, 2) == "time"
    assert stop_reason(5.0, 0.0, 10, 1.0, 3.5, 2) is None
    assert stop_reason(5.5, 0.0, 10, 1.0, 3.5, 2) == "pen lifted"


class ScriptedPad:
    """A pad whose packets arrive at scripted times on its own clock (no I/O, no sleeping)."""

    def __init__(
        self, arrivals: list[tuple[float, PenPacket]], gone_at: float | None = None, noise_per_read: int = 0
    ) -> None:
        self.query = PenQuery(9600, 6000, 1023, 7)
        self.now = 0.0
        self.arrivals = arrivals
        self.gone_at = gone_at
        self.noise_per_read = noise_per_read
        self.calls: list[str] = []
        self.counts = LineCounts()

    def clock(self) -> float:
        return self.now

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")
        if self.gone_at is not None and self.now >= self.gone_at:
            raise DeviceGone("pad unplugged")

    def read_samples(self, timeout_s: float = 0.05) -> list[PenSample]:
        self.now += timeout_s
        if self.gone_at is not None and self.now >= self.gone_at:
            raise DeviceGone("pad unplugged")
        self.counts.noise_bytes += self.noise_per_read
        due = [PenSample(t, p) for t, p in self.arrivals if self.now - timeout_s < t <= self.now]
        return due


HOVER = PenPacket(100, 100, 0, tip=False, proximity=True)
INK = PenPacket(110, 105, 400, tip=True, proximity=True)


def test_recording_stops_two_seconds_after_the_last_packet_once_the_tip_went_down() -> None:
    arrivals = [(0.5, HOVER), (1.0, INK), (1.5, INK), (1.8, HOVER)]
    pad = ScriptedPad(arrivals)
    signature = record_signature(pad, seconds=30, quiet_s=2.0, clock=pad.clock)
    assert [p.tip for p in signature.points] == [False, True, True, False]
    assert signature.points[0].t_ms == 0.0 and signature.points[1].t_ms == pytest.approx(500.0)
    assert 3.8 <= pad.now <= 3.9  # 2 s after the packet at 1.8 s, in 50 ms reads
    assert pad.calls == ["start", "stop"]


def test_hovering_alone_records_until_the_time_is_up() -> None:
    pad = ScriptedPad([(0.2, HOVER), (0.3, HOVER)])
    signature = record_signature(pad, seconds=5, quiet_s=2.0, clock=pad.clock)
    assert len(signature.points) == 2 and signature.to_json()["strokes"] == 0
    assert pad.now >= 5.0


def test_no_pen_packet_at_all_is_no_pen_input() -> None:
    pad = ScriptedPad([], noise_per_read=2)
    pad.counts.noise_bytes = 3142  # heard by earlier recordings on the same open pad: not this one's
    with pytest.raises(NoPenInput, match=r"no pen input within 3 s; 12[02] bytes of line noise"):
        record_signature(pad, seconds=3, clock=pad.clock)
    assert pad.calls == ["start", "stop"]
    # A silent line: no noise to speak of, whatever earlier recordings heard.
    quiet = ScriptedPad([])
    quiet.counts.noise_bytes = 3142
    with pytest.raises(NoPenInput, match=r"^no pen input within 3 s$"):
        record_signature(quiet, seconds=3, clock=quiet.clock)


def test_an_unplugged_pad_ends_the_recording_with_device_gone() -> None:
    pad = ScriptedPad([(0.2, INK), (0.4, INK)], gone_at=0.6)
    with pytest.raises(DeviceGone, match="unplugged"):
        record_signature(pad, seconds=10, clock=pad.clock)
    assert pad.calls == ["start", "stop"]  # stop was tried; its own failure did not mask the first


def test_cancel_ends_a_recording() -> None:
    cancel = threading.Event()
    pad = ScriptedPad([(0.1, INK)])
    cancel.set()
    with pytest.raises(NoPenInput):
        record_signature(pad, seconds=10, cancel=cancel, clock=pad.clock)


def synthetic(seed: int = 5) -> Signature:
    states = synthetic_signature(seed, max_x=9600, max_y=6000, max_pressure=1023, strokes=3)
    points = tuple(
        point(i * 1000 / 130, s.x, s.y, s.pressure, s.tip, s.proximity) for i, s in enumerate(states)
    )
    return Signature(PAD, points)


def test_rendered_ink_lies_along_the_path() -> None:
    signature = synthetic()
    image = render_signature(signature)
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image[0].min() == 255 and image[:, 0].min() == 255  # the margin is white
    from_ink, to_ink = ink_distances(image, [(p.x, p.y, p.tip) for p in signature.points])
    assert from_ink.max() <= 4.0  # half the widest line (3 px) plus anti-aliasing
    assert to_ink.max() <= 1.0
    decoded = cv2.imdecode(np.frombuffer(render_png(signature), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, image)


def test_ink_is_wider_where_the_pen_presses_harder() -> None:
    light = Signature(PAD, (point(0, 1000, 1000, 100, True), point(8, 2000, 1000, 100, True)))
    heavy = Signature(PAD, (point(0, 1000, 1000, 1000, True), point(8, 2000, 1000, 1000, True)))
    assert (render_signature(heavy) < 128).sum() > 2.5 * (render_signature(light) < 128).sum()


def test_without_ink_the_image_is_blank() -> None:
    image = render_signature(Signature(PAD, (point(0, 5, 5),)))
    assert image.min() == 255
