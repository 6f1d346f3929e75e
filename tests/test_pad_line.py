"""kitd.capture.pad_line and the signature pad's line check's verdicts: streams made with the
driver's own encoder, read in 50 ms slices as the check reads them."""

from __future__ import annotations

import numpy as np
import pytest

from kitd.capture.pad_line import NOMINAL_RATE_HZ, LineReport, line_report, packet_rate
from kitd.drivers.isdv4 import PenPacket, PenQuery, encode_pen_packet
from kitd.services.diagnostics import FAILED, OK, WARNING
from kitd.services.pad_checks import judge_line

QUERY = PenQuery(max_x=9600, max_y=6000, max_pressure=1023, firmware=4660)
SLICE_S = 0.05


def pen(i: int, x: int | None = None) -> bytes:
    return encode_pen_packet(
        PenPacket(x=1000 + 10 * i if x is None else x, y=2000 + 5 * i, pressure=300, tip=True, proximity=True)
    )


def reads(packets: list[bytes], rate_hz: float, start_s: float = 0.2) -> list[tuple[float, bytes]]:
    """The packets as 50 ms reads would see them at `rate_hz`: each read holds what arrived in its slice."""
    slices: dict[int, bytearray] = {}
    for i, packet in enumerate(packets):
        arrived = start_s + i / rate_hz
        slices.setdefault(int(arrived / SLICE_S) + 1, bytearray()).extend(packet)
    return [(k * SLICE_S, bytes(v)) for k, v in sorted(slices.items())]


def test_a_clean_stream_at_the_nominal_rate() -> None:
    report = line_report(reads([pen(i) for i in range(200)], 130.0), QUERY, 5, 2.0)
    assert report.pen_packets == 200 and report.bytes == 1800
    assert report.noise_bytes == report.rejected == report.out_of_range == 0
    assert report.rate_hz == pytest.approx(130.0, rel=0.05)
    assert judge_line(report, 38400)["status"] == OK


def test_silence_is_fine_and_the_rate_unknown() -> None:
    report = line_report([], QUERY, 5, 2.0)
    assert report.bytes == 0 and report.rate_hz is None
    assert judge_line(report, 38400)["status"] == OK


def test_garbage_between_packets_fails_the_line_and_a_little_warns() -> None:
    rng = np.random.default_rng(1)
    noisy = [pen(i) + rng.integers(0, 0x80, 2, dtype=np.uint8).tobytes() for i in range(150)]
    report = line_report(reads(noisy, 130.0), QUERY, 5, 2.0)
    assert report.noise_bytes == 300 and report.pen_packets == 150
    found = judge_line(report, 38400)
    assert found["status"] == FAILED
    assert "noisy" in found["message"]["en"] and "baud rate (set to 38400)" in found["message"]["en"]
    assert found["message"]["id"].startswith("Jalur data bantalan berisik")
    few = [pen(i) for i in range(150)]
    few[40] += b"\x11\x22\x33\x44"
    found = judge_line(line_report(reads(few, 130.0), QUERY, 5, 2.0), 38400)
    assert found["status"] == WARNING and found["values"]["noise_bytes"] == 4


def test_a_packet_beyond_the_pads_size_fails() -> None:
    packets = [pen(i) for i in range(100)]
    packets[50] = pen(50, x=QUERY.max_x + 500)
    report = line_report(reads(packets, 130.0), QUERY, 5, 2.0)
    assert report.out_of_range == 1 and report.pen_packets == 99 and report.noise_bytes == 0
    found = judge_line(report, 38400)
    assert found["status"] == FAILED and "beyond its own size" in found["message"]["en"]


def test_only_garbage_at_a_wrong_baud_rate_fails() -> None:
    garbage = np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    report = line_report([(0.1 * k, garbage[k * 300 : (k + 1) * 300]) for k in range(10)], QUERY, 5, 2.0)
    assert report.noise_share > 0.5
    assert judge_line(report, 19200)["status"] == FAILED


def test_a_slow_pad_warns() -> None:
    report = line_report(reads([pen(i) for i in range(90)], 50.0), QUERY, 5, 2.0)
    assert report.rate_hz == pytest.approx(50.0, rel=0.1)
    found = judge_line(report, 38400)
    assert found["status"] == WARNING and f"short of its {NOMINAL_RATE_HZ:.0f}" in found["message"]["en"]


def test_the_rate_needs_enough_packets_and_time() -> None:
    assert packet_rate([(0.0, 5), (0.05, 5)]) is None  # too few
    assert packet_rate([(0.0, 20), (0.1, 20)]) is None  # too short
    assert packet_rate([(0.0, 10), (0.5, 0), (1.0, 130)]) == pytest.approx(130.0)


def test_the_report_as_json() -> None:
    values = LineReport(2.0, 90, 9, 0, 9, 1, 0, None).to_json()
    assert values["noise_share"] == 0.1 and values["rate_hz"] is None and values["nominal_rate_hz"] == 130.0
