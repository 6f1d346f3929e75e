"""The ISDV4 codec against packets computed by hand from the layout in ../shared/DESIGN.md.

Pen packet: byte 0 = 0x80 | 0x20 proximity | 0x04, 0x02 side switches | 0x01 tip;
x = b1<<9 | b2<<2 | (b6&0x60)>>5; y = b3<<9 | b4<<2 | (b6&0x18)>>3;
pressure = b5 | (b6&0x07)<<7; tilt = b7, b8. Query reply: the same layout after 0xC0,
firmware = b9<<7 | b10.
"""

from __future__ import annotations

import pytest

from kitd.drivers.isdv4 import (
    Limits,
    PacketParser,
    PenPacket,
    PenQuery,
    TouchQuery,
    decode_pen_packet,
    decode_query_reply,
    decode_touch_query_reply,
    encode_pen_packet,
    encode_query_reply,
    encode_touch_packet,
    encode_touch_query_reply,
    packet_length,
    touch_packet_length,
)
from kitd.errors import ProtocolError

# x = 0xABCD = 43981: x>>9 = 0x55, (x>>2)&0x7f = 0x73, x&3 = 1 -> 0x20 in b6
# y = 0x1357 = 4951:  y>>9 = 0x09, (y>>2)&0x7f = 0x55, y&3 = 3 -> 0x18 in b6
# pressure = 0x2A5 = 677: &0x7f = 0x25, >>7 = 5 -> 0x05 in b6; b6 = 0x3D
# header: 0x80 | proximity 0x20 | side switch 0x02 | tip 0x01 = 0xA3; tilt 0x11, 0x22
EVERY_FIELD = bytes.fromhex("a3 55 73 09 55 25 3d 11 22")


def test_a_packet_with_every_field() -> None:
    pen = decode_pen_packet(EVERY_FIELD)
    assert pen == PenPacket(
        x=43981, y=4951, pressure=677, tip=True, proximity=True, buttons=1, tilt_x=0x11, tilt_y=0x22
    )
    assert encode_pen_packet(pen) == EVERY_FIELD


@pytest.mark.parametrize(
    ("header", "tip", "proximity", "buttons"),
    [
        (0x80, False, False, 0),  # out of proximity: the pen has left
        (0xA0, False, True, 0),  # hovering
        (0xA1, True, True, 0),  # writing
        (0xA2, False, True, 1),  # side switch 1 (0x02)
        (0xA4, False, True, 2),  # side switch 2 (0x04)
        (0xA7, True, True, 3),
    ],
)
def test_header_bits(header: int, tip: bool, proximity: bool, buttons: int) -> None:
    packet = bytes([header, 0, 0, 0, 0, 0, 0, 0, 0])
    pen = decode_pen_packet(packet)
    assert (pen.tip, pen.proximity, pen.buttons) == (tip, proximity, buttons)
    assert encode_pen_packet(pen) == packet


@pytest.mark.parametrize(
    ("body", "x", "y", "pressure"),
    [
        # only the low bits carried in byte 6
        ("00 00 00 00 00 60 00 00", 3, 0, 0),
        ("00 00 00 00 00 20 00 00", 1, 0, 0),
        ("00 00 00 00 00 40 00 00", 2, 0, 0),
        ("00 00 00 00 00 18 00 00", 0, 3, 0),
        ("00 00 00 00 00 08 00 00", 0, 1, 0),
        ("00 00 00 00 00 07 00 00", 0, 0, 0x380),
        ("00 00 00 00 00 01 00 00", 0, 0, 0x080),
        # each 7-bit byte alone
        ("01 00 00 00 00 00 00 00", 1 << 9, 0, 0),
        ("40 00 00 00 00 00 00 00", 0x40 << 9, 0, 0),
        ("00 01 00 00 00 00 00 00", 1 << 2, 0, 0),
        ("00 00 01 00 00 00 00 00", 0, 1 << 9, 0),
        ("00 00 00 01 00 00 00 00", 0, 1 << 2, 0),
        ("00 00 00 00 7f 00 00 00", 0, 0, 0x7F),
        # everything at its maximum: 16-bit x and y, 10-bit pressure
        ("7f 7f 7f 7f 7f 7f 00 00", 65535, 65535, 1023),
    ],
)
def test_coordinate_and_pressure_bits(body: str, x: int, y: int, pressure: int) -> None:
    packet = bytes([0xA0]) + bytes.fromhex(body)
    pen = decode_pen_packet(packet)
    assert (pen.x, pen.y, pen.pressure) == (x, y, pressure)
    assert encode_pen_packet(pen) == packet


def test_tilt_bytes() -> None:
    pen = decode_pen_packet(bytes.fromhex("a0 00 00 00 00 00 00 7f 01"))
    assert (pen.tilt_x, pen.tilt_y) == (127, 1)


def test_pen_packets_that_are_not() -> None:
    with pytest.raises(ProtocolError, match="8 bytes, expected 9"):
        decode_pen_packet(EVERY_FIELD[:8])
    with pytest.raises(ProtocolError, match="lacks 0x80"):
        decode_pen_packet(bytes([0x23]) + EVERY_FIELD[1:])
    with pytest.raises(ProtocolError, match="byte 4 is 0xd5"):
        decode_pen_packet(EVERY_FIELD[:4] + bytes([0xD5]) + EVERY_FIELD[5:])
    with pytest.raises(ProtocolError, match="control or touch"):
        decode_pen_packet(bytes([0xC0]) + EVERY_FIELD[1:])
    with pytest.raises(ValueError, match="do not fit"):
        encode_pen_packet(PenPacket(x=65536, y=0, pressure=0, tip=False, proximity=True))
    with pytest.raises(ValueError, match="do not fit"):
        encode_pen_packet(PenPacket(x=0, y=0, pressure=1024, tip=False, proximity=True))


# max x 9600: >>9 = 0x12, (>>2)&0x7f = 0x60, &3 = 0; max y 6000: >>9 = 0x0b, (>>2)&0x7f = 0x5c, &3 = 0;
# max pressure 1023: b5 = 0x7f, b6 low bits 7; no tilt; firmware 4660 = 0x1234: b9 = 0x24, b10 = 0x34
QUERY_REPLY = bytes.fromhex("c0 12 60 0b 5c 7f 07 00 00 24 34")


def test_query_reply() -> None:
    query = decode_query_reply(QUERY_REPLY)
    assert query == PenQuery(max_x=9600, max_y=6000, max_pressure=1023, firmware=4660)
    assert encode_query_reply(query) == QUERY_REPLY


def test_query_reply_low_bits_and_tilt() -> None:
    # max x 0x6003 (low bits 3), max y 0x0002 (low bits 2), pressure 0x100, tilt 60/61, firmware 0x3fff
    packet = bytes.fromhex("c0 30 00 00 00 00 72 3c 3d 7f 7f")
    query = decode_query_reply(packet)
    assert (query.max_x, query.max_y, query.max_pressure) == (0x6003, 2, 0x100)
    assert (query.max_tilt_x, query.max_tilt_y, query.firmware) == (60, 61, 0x3FFF)
    assert encode_query_reply(query) == packet


def test_query_replies_that_are_not() -> None:
    with pytest.raises(ProtocolError, match="expected 0xc0"):
        decode_query_reply(bytes([0xC1]) + QUERY_REPLY[1:])
    with pytest.raises(ProtocolError, match="10 bytes, expected 11"):
        decode_query_reply(QUERY_REPLY[:10])
    with pytest.raises(ProtocolError, match="0 is impossible"):
        decode_query_reply(bytes.fromhex("c0 00 00 0b 5c 7f 07 00 00 24 34"))


# Touch query reply (isdv4.h): b1 panel resolution, b2 = (x&3)<<5 | (y&3)<<3 | sensor id,
# b3/b4 = x>>9, (x>>2)&0x7f; b5/b6 the same for y; b7 capacity resolution; b9/b10 firmware.
# sensor 5, max 4095 x 4095: b2 = 0x60 | 0x18 | 5 = 0x7d, b3 = 7, b4 = 0x7f; firmware 1.
TOUCH_REPLY = bytes.fromhex("c1 0a 7d 07 7f 07 7f 09 00 00 01")


def test_touch_query_reply() -> None:
    touch = decode_touch_query_reply(TOUCH_REPLY)
    assert touch == TouchQuery(
        sensor_id=5, max_x=4095, max_y=4095, firmware=1, panel_resolution=10, capacity_resolution=9
    )
    assert touch.packet_length == 13
    assert encode_touch_query_reply(touch) == TOUCH_REPLY


@pytest.mark.parametrize(("sensor", "length"), [(0, 5), (1, 7), (2, 5), (3, 7), (4, 7), (5, 13), (None, 5)])
def test_touch_packet_lengths_by_sensor(sensor: int | None, length: int) -> None:
    assert touch_packet_length(sensor) == length


@pytest.mark.parametrize(
    ("header", "length"),
    [(0x00, 0), (0x7F, 0), (0x80, 9), (0xA1, 9), (0xC0, 11), (0xE0, 11), (0x90, 7), (0xD0, 7), (0xF1, 7)],
)
def test_packet_length_from_the_header(header: int, length: int) -> None:
    assert packet_length(header, touch_length=7) == length


def test_touch_packet_bytes() -> None:
    # 0x90 | 1 (down), x = 300 -> 02 2c, y = 129 -> 01 01, padded to the sensor's length
    assert encode_touch_packet(300, 129, True, 7) == bytes.fromhex("91 02 2c 01 01 00 00")


# ---- the parser on hand-made streams ----------------------------------------------------------

HOVER = bytes.fromhex("a0 04 40 03 20 00 00 00 00")  # x 0x0900 = 2304, y 0x0680 = 1664
WRITE = bytes.fromhex("a1 04 41 03 21 30 01 00 00")  # x 2308, y 1668, pressure 0xb0 = 176


def pens(parser: PacketParser, data: bytes) -> list[tuple[int, int, int, bool]]:
    return [(p.offset, p.pen.x, p.pen.pressure, p.pen.tip) for p in parser.feed(data) if p.pen]


def test_parser_resynchronises_after_noise() -> None:
    parser = PacketParser()
    stream = b"\x01\x7f" + HOVER + b"\x05" + WRITE
    assert pens(parser, stream) == [(2, 2304, 0, False), (12, 2308, 176, True)]
    assert parser.counts.noise_bytes == 3


def test_parser_skips_touch_packets_by_length() -> None:
    parser = PacketParser(touch_length=13)
    touch = encode_touch_packet(100, 200, True, 13)
    assert pens(parser, HOVER + touch + WRITE) == [(0, 2304, 0, False), (22, 2308, 176, True)]
    assert parser.counts.touch == 1 and parser.counts.noise_bytes == 0


def test_parser_rejects_a_packet_with_a_header_inside() -> None:
    # A pen packet cut short by the next one's header: rejected, the next decoded.
    parser = PacketParser()
    assert pens(parser, HOVER[:5] + WRITE) == [(5, 2308, 176, True)]
    assert parser.counts.rejected == 1 and parser.counts.noise_bytes == 5


def test_parser_rejects_impossible_pen_packets() -> None:
    parser = PacketParser(limits=Limits(max_x=2305, max_y=6000, max_pressure=1023))
    tip_out_of_range = bytes([0x81]) + WRITE[1:]  # tip down but not in proximity
    assert pens(parser, tip_out_of_range + WRITE + HOVER) == [(18, 2304, 0, False)]  # WRITE's x 2308 > 2305
    assert parser.counts.rejected == 2


def test_parser_emits_control_packets() -> None:
    parser = PacketParser()
    found = parser.feed(QUERY_REPLY + WRITE)
    assert [(p.kind, p.offset) for p in found] == [("control", 0), ("pen", 11)]
    assert found[0].data == QUERY_REPLY


def test_parser_takes_bytes_one_at_a_time() -> None:
    stream = b"\x33" + HOVER + encode_touch_packet(1, 2, False, 5) + WRITE + QUERY_REPLY + HOVER
    whole = [(p.kind, p.offset, p.data) for p in PacketParser().feed(stream)]
    parser = PacketParser()
    piecewise = [
        (p.kind, p.offset, p.data) for i in range(len(stream)) for p in parser.feed(stream[i : i + 1])
    ]
    assert piecewise == whole
    assert [k for k, _, _ in whole] == ["pen", "pen", "control", "pen"]
