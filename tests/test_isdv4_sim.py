"""The simulated pad's pure parts: the UART model behind `fault wrong-baud`, the broken packets
of `fault corrupt` (each must be detectable), and the synthetic handwriting it plays."""

from __future__ import annotations

import numpy as np
import pytest

from hil.isdv4_sim import corrupt_packet, misframe, uart_bits
from hil.synthetic_signature import STYLES, speeds_mm_s, synthetic_signature
from kitd.drivers.isdv4 import Limits, PacketParser, PenPacket, encode_pen_packet


def test_uart_bits_are_8n1_lsb_first() -> None:
    assert uart_bits(b"\x01") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert uart_bits(b"\x80") == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_same_rate_reads_back_every_byte() -> None:
    data = bytes(range(256))
    assert misframe(data, 38400, 38400) == data


def test_half_rate_by_hand() -> None:
    # 0xFF sent at 19200, read at 38400: each sent bit lasts two read bits. The start bit
    # covers read bits 0-1, so data bit 0 (sampled at 1.5) is still low: 0xFE, then idle.
    assert misframe(b"\xff", 19200, 38400) == b"\xfe"
    # 0x00: nine low sent bits (18 read bits). First byte 0x00; the receiver is ready again at
    # 9.5 read bits, still low, so a second start; its bit 7 (at 18) is the stop bit: 0x80.
    assert misframe(b"\x00", 19200, 38400) == b"\x00\x80"


def test_a_wrong_rate_pen_stream_decodes_to_nothing_real() -> None:
    pen = encode_pen_packet(PenPacket(4000, 3000, 500, tip=True, proximity=True))
    garbled = misframe(pen * 50, 19200, 38400)
    assert garbled and garbled != pen * 50
    parser = PacketParser(limits=Limits(9600, 6000, 1023))
    assert all(p.data != pen for p in parser.feed(garbled))


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_every_corruption_is_detectable(variant: int) -> None:
    rng = np.random.default_rng(variant)
    intact = encode_pen_packet(PenPacket(4000, 3000, 500, tip=True, proximity=True))
    for _ in range(200):
        broken = corrupt_packet(intact, variant, 9600, rng)
        parser = PacketParser(limits=Limits(9600, 6000, 1023))
        found = parser.feed(broken + intact)
        assert [(p.offset, p.data) for p in found] == [(len(broken), intact)]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_synthetic_handwriting_is_plausible(style: str) -> None:
    states = synthetic_signature(11, max_x=9600, max_y=6000, max_pressure=1023, style=style)
    assert states == synthetic_signature(11, max_x=9600, max_y=6000, max_pressure=1023, style=style)
    tips = [s.tip for s in states]
    strokes = sum(1 for a, b in zip([False, *tips], tips, strict=False) if b and not a)
    low, high = STYLES[style].strokes
    assert low <= strokes <= high
    assert all(0 <= s.x <= 9600 and 0 <= s.y <= 6000 and 0 <= s.pressure <= 1023 for s in states)
    assert states[0].proximity and not states[0].tip  # comes into range hovering
    assert not states[-1].proximity and not states[-2].tip  # leaves
    assert all(s.pressure == 0 for s in states if not s.tip)
    speeds = speeds_mm_s(states)
    assert 10 < np.median(speeds) < 200  # handwriting, in mm/s
    # pressure rises after the touch and falls before the lift
    for start in [i for i in range(1, len(tips)) if tips[i] and not tips[i - 1]]:
        end = start
        while end + 1 < len(tips) and tips[end + 1]:
            end += 1
        run = [s.pressure for s in states[start : end + 1]]
        assert run[0] < max(run) and run[-1] < max(run)
