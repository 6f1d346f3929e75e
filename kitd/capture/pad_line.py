"""A signature pad's line over a short test: what arrived, how fast, and how much was garbage.

Its one job: :func:`line_report` turns the bytes a pad sent during a test (each read with the
host's time of arrival) and the pad's own query answer into a :class:`LineReport`: bytes and
pen packets received, the packet rate while the pen was in range, the line's garbage (bytes
that belong to no packet, packets rejected as impossible) and pen packets whose coordinates lie
beyond what the pad said its size is. Pure: no I/O, no clock of its own.

The packets are found by the driver's own parser, told the largest coordinates the protocol can
carry rather than the pad's: a packet beyond the pad's maxima is then counted as such instead of
being dropped as noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kitd.drivers.isdv4 import MAX_COORDINATE, MAX_PRESSURE, Limits, PacketParser, PenQuery

# ISDV4 pads send about 130 pen packets a second while the pen is in range (the kernel's
# w8001 and the simulator's --rate; kitd.capture.signature_quality counts on it too).
NOMINAL_RATE_HZ = 130.0


@dataclass(frozen=True)
class LineLimits:
    """Where a pad's line stops being healthy."""

    # Garbage: bytes of no packet. A sound cable at the right baud rate gives none in a test;
    # a few stray bytes warn; one in twenty of all bytes fails: a signature cannot cross such a
    # line intact (the simulator's `fault noise`: ~12%).
    noisy_bytes: int = 3
    garbled_share: float = 0.05
    # The rate is measured only over enough pen packets; below this share of the nominal rate
    # packets are being lost.
    rate_min_packets: int = 30
    rate_min_span_s: float = 0.5
    slow_ratio: float = 0.6


@dataclass(frozen=True)
class LineReport:
    """What a line test heard."""

    seconds: float
    bytes: int
    pen_packets: int
    out_of_range: int
    noise_bytes: int
    rejected: int
    touch_packets: int
    rate_hz: float | None
    nominal_rate_hz: float = NOMINAL_RATE_HZ

    @property
    def noise_share(self) -> float:
        return self.noise_bytes / self.bytes if self.bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["noise_share"] = round(self.noise_share, 4)
        values["rate_hz"] = None if self.rate_hz is None else round(self.rate_hz, 1)
        return values


def packet_rate(arrivals: Sequence[tuple[float, int]], limits: LineLimits = LineLimits()) -> float | None:
    """Pen packets a second from (arrival time, packets in that read) of the reads that held
    any; None when too few packets or too short a span to tell. A read holds the packets that
    arrived since the last one, so the first read's are left out: the span starts with it."""
    held = [(t, n) for t, n in arrivals if n > 0]
    total = sum(n for _, n in held)
    if total < limits.rate_min_packets or len(held) < 2:
        return None
    span = held[-1][0] - held[0][0]
    if span < limits.rate_min_span_s:
        return None
    return (total - held[0][1]) / span


def line_report(
    reads: Sequence[tuple[float, bytes]],
    query: PenQuery,
    touch_length: int,
    seconds: float,
    limits: LineLimits = LineLimits(),
) -> LineReport:
    """The line test's report from its reads (arrival time, bytes), in order."""
    parser = PacketParser(
        limits=Limits(MAX_COORDINATE, MAX_COORDINATE, MAX_PRESSURE), touch_length=touch_length
    )
    arrivals: list[tuple[float, int]] = []
    pen = beyond = received = 0
    for t, chunk in reads:
        received += len(chunk)
        count = 0
        for parsed in parser.feed(chunk):
            if parsed.pen is None:
                continue
            p = parsed.pen
            if p.x > query.max_x or p.y > query.max_y or p.pressure > query.max_pressure:
                beyond += 1
            else:
                count += 1
        pen += count
        arrivals.append((t, count))
    counts = parser.counts
    return LineReport(
        seconds=seconds,
        bytes=received,
        pen_packets=pen,
        out_of_range=beyond,
        noise_bytes=counts.noise_bytes,
        rejected=counts.rejected,
        touch_packets=counts.touch,
        rate_hz=packet_rate(arrivals, limits),
    )
