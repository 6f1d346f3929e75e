"""Property: the ISDV4 streaming parser survives any bytes and never loses an intact packet.

Streams are built from segments: intact pen, control and touch packets, and
"damage" (random noise, or an intact packet mutated by bit flips, truncation,
insertion or deletion). Fed in random pieces, the parser must raise nothing
(nothing but the kit's own errors, were it to raise), decode every intact packet
at its exact offset with its exact values (so it regains sync within one packet of
the end of any damage), and report no packet that overlaps an intact one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from kitd.drivers.isdv4 import (
    TOUCH_PACKET_LENGTHS,
    Limits,
    PacketParser,
    PenPacket,
    decode_pen_packet,
    encode_pen_packet,
)
from kitd.errors import KitError

# A thousand streams in `make test`; the 10,000-stream run is a documented command, run once
# (README, "Longer runs"): KITD_PROPERTY_EXAMPLES=10000.
EXAMPLES = int(os.environ.get("KITD_PROPERTY_EXAMPLES", "1000"))


@dataclass(frozen=True)
class Segment:
    kind: str  # pen, control, touch (intact) or damage
    data: bytes


def pen_from(raw: bytes, lim: Limits) -> bytes:
    """A valid pen packet within the limits, its values taken from 13 raw bytes."""
    proximity = bool(raw[0] & 1)
    pen = PenPacket(
        x=int.from_bytes(raw[1:3]) % (lim.max_x + 1),
        y=int.from_bytes(raw[3:5]) % (lim.max_y + 1),
        pressure=int.from_bytes(raw[5:7]) % (lim.max_pressure + 1),
        tip=proximity and bool(raw[0] & 2),
        proximity=proximity,
        buttons=raw[7] & 3,
        tilt_x=raw[8] & 0x7F,
        tilt_y=raw[9] & 0x7F,
    )
    return encode_pen_packet(pen)


def control_from(raw: bytes) -> bytes:
    return bytes([0xC0 | raw[0] & 0x2F]) + bytes(b & 0x7F for b in raw[1:11])


def touch_from(raw: bytes, length: int) -> bytes:
    return bytes([0x90 | raw[0] & 0x6F]) + bytes(b & 0x7F for b in raw[1:length])


def mutate(packet: bytes, edits: bytes) -> bytes:
    """The packet damaged by each (operation, argument) byte pair: flip a bit, cut, insert, delete."""
    data = bytearray(packet)
    for op, arg in zip(edits[::2], edits[1::2], strict=False):
        where = arg % (len(data) + 1)
        if op % 4 == 0 and where < len(data):
            data[where] ^= 1 << (op >> 5)
        elif op % 4 == 1 and 0 < where < len(data):
            del data[where:]
        elif op % 4 == 2:
            data.insert(where, op)
        elif where < len(data):
            del data[where]
    return bytes(data) if data != bytearray(packet) else bytes(packet[:-1])


KINDS = ("pen", "pen", "control", "touch", "noise", "mutated")


def segments_from(plan: bytes, lim: Limits, touch_length: int) -> list[Segment]:
    """Read a stream's segments off one random byte string: a kind byte, 13 bytes of values,
    a length byte and that many bytes of noise or mutation edits (one draw keeps hypothesis fast)."""
    segments, i = [], 0
    while i + 15 <= len(plan):
        kind, raw = KINDS[plan[i] % len(KINDS)], plan[i + 1 : i + 14]
        extra = plan[i + 15 : i + 15 + 1 + plan[i + 14] % 40]
        i += 15 + len(extra)
        packets = {
            "pen": pen_from(raw, lim),
            "control": control_from(raw),
            "touch": touch_from(raw, touch_length),
        }
        if kind == "noise":
            segments.append(Segment("damage", extra))
        elif kind == "mutated" and extra:
            segments.append(
                Segment("damage", mutate(packets[("pen", "control", "touch")[extra[0] % 3]], extra[1:]))
            )
        elif kind in packets:
            segments.append(Segment(kind, packets[kind]))
    return [s for s in segments if s.data]


@st.composite
def streams(draw: st.DrawFn) -> tuple[Limits, int, list[Segment], list[int]]:
    lim = Limits(
        max_x=draw(st.integers(1, 65535)),
        max_y=draw(st.integers(1, 65535)),
        max_pressure=draw(st.integers(1, 1023)),
    )
    touch_length = draw(st.sampled_from(sorted(set(TOUCH_PACKET_LENGTHS.values()))))
    segments = segments_from(draw(st.binary(min_size=15, max_size=700)), lim, touch_length)
    total = sum(len(s.data) for s in segments)
    cuts = sorted(set(draw(st.lists(st.integers(0, total), max_size=12))))
    return lim, touch_length, segments, cuts


def intact_spans(segments: list[Segment]) -> list[tuple[int, Segment]]:
    """(offset, segment) of every segment that is an intact packet, as it sits in the stream.

    A damage segment that happens to equal a packet is still damage: its bytes may
    legitimately be decoded, which `test_*` allows for any non-intact region.
    """
    spans, offset = [], 0
    for segment in segments:
        if segment.kind != "damage":
            spans.append((offset, segment))
        offset += len(segment.data)
    return spans


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
)
@given(streams())
def test_parser_keeps_every_intact_packet(case: tuple[Limits, int, list[Segment], list[int]]) -> None:
    lim, touch_length, segments, cuts = case
    stream = b"".join(s.data for s in segments)
    parser = PacketParser(limits=lim, touch_length=touch_length)
    found = []
    bounds = [0, *cuts, len(stream)]
    try:
        for start, end in zip(bounds, bounds[1:], strict=False):
            found.extend(parser.feed(stream[start:end]))
    except KitError:
        pass  # the kit's own errors are allowed; nothing else is
    by_offset = {p.offset: p for p in found}
    intact = intact_spans(segments)
    for offset, segment in intact:
        if segment.kind == "touch":
            assert offset not in by_offset
            continue
        got = by_offset.get(offset)
        assert got is not None, f"intact {segment.kind} packet at {offset} lost"
        assert got.kind == segment.kind and got.data == segment.data
        if segment.kind == "pen":
            assert got.pen == decode_pen_packet(segment.data)
    # Nothing decoded may overlap an intact packet it is not.
    owned = {offset: len(segment.data) for offset, segment in intact}
    for packet in found:
        if packet.offset in owned:
            continue
        end = packet.offset + len(packet.data)
        for offset, length in owned.items():
            assert end <= offset or packet.offset >= offset + length, (
                f"packet at {packet.offset} overlaps {offset}"
            )
    assert parser.counts.touch >= sum(1 for _, s in intact if s.kind == "touch")
