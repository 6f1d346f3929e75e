"""ISDV4 streaming parser throughput, in pen packets a second, against the pad's ~130.

Streams: clean pen packets; and the same with line faults (noise bursts, broken
packets, touch packets) as the simulator makes them. Reference measured in the same
run: decoding the clean stream already cut into 9-byte packets (`decode_pen_packet`
on each, no search for packet starts), the floor of any parser in this codec. The
pad's rate is the budget: the share of one core parsing takes at 130 packets/s.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from hil.isdv4_sim import corrupt_packet
from kitd.drivers.isdv4 import (
    Limits,
    PacketParser,
    PenPacket,
    decode_pen_packet,
    encode_pen_packet,
    encode_touch_packet,
)

PAD_RATE = 130.0
CHUNK = 64  # bytes per read: what a serial read returns at 38400 baud, roughly


def pen_stream(count: int, rng: np.random.Generator) -> list[bytes]:
    xs, ys, ps = rng.integers(0, 9600, count), rng.integers(0, 6000, count), rng.integers(0, 1024, count)
    return [
        encode_pen_packet(PenPacket(int(x), int(y), int(p), tip=bool(p > 100), proximity=True))
        for x, y, p in zip(xs, ys, ps, strict=True)
    ]


def faulty_stream(packets: list[bytes], rng: np.random.Generator) -> bytes:
    out = bytearray()
    for index, packet in enumerate(packets):
        if index % 3 == 0:
            out += encode_touch_packet(100, 100, True, 7)
        if rng.random() < 0.5:
            out += rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
        out += corrupt_packet(packet, index, 9600, rng) if index % 5 == 0 else packet
    return bytes(out)


def parse_rate(stream: bytes, packets_in: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        parser = PacketParser(limits=Limits(9600, 6000, 1023), touch_length=7)
        started = time.perf_counter()
        for offset in range(0, len(stream), CHUNK):
            parser.feed(stream[offset : offset + CHUNK])
        rates.append(packets_in / (time.perf_counter() - started))
    return statistics.median(rates)


def run(smoke: bool) -> None:
    count = 5_000 if smoke else 100_000
    repeat = 3 if smoke else 7
    rng = np.random.default_rng(1)
    packets = pen_stream(count, rng)
    clean = b"".join(packets)
    faulty = faulty_stream(packets, rng)

    floor = []
    for _ in range(repeat):
        started = time.perf_counter()
        for packet in packets:
            decode_pen_packet(packet)
        floor.append(count / (time.perf_counter() - started))
    reference = statistics.median(floor)
    clean_rate = parse_rate(clean, count, repeat)
    faulty_rate = parse_rate(faulty, count, repeat)
    print(f"   decode pre-cut packets (reference): {reference:,.0f} packets/s")
    print(
        f"   parser, clean stream in {CHUNK}-byte reads: {clean_rate:,.0f} packets/s "
        f"({clean_rate / reference:.2f}x reference, {clean_rate / PAD_RATE:,.0f}x the pad's "
        f"{PAD_RATE:.0f}/s; {PAD_RATE / clean_rate * 100:.3f}% of a core at the pad's rate)"
    )
    print(
        f"   parser, with noise, broken and touch packets: {faulty_rate:,.0f} packets/s "
        f"({faulty_rate / reference:.2f}x reference, {faulty_rate / PAD_RATE:,.0f}x the pad's rate)"
    )
