"""Wacom ISDV4 serial pen digitizer (the kit's signature pad): codec and driver.

The codec is pure functions over bytes, after the layout the Linux kernel's
`wacom_w8001` and Wacom's X driver read (facts in ../shared/DESIGN.md):

    commands     single ASCII bytes: `0` stop, `1` start, `*` pen query, `%` touch query
    pen packet   9 bytes; byte 0 = 0x80 | 0x20 in proximity | 0x04, 0x02 side buttons | 0x01 tip
                 x = b1<<9 | b2<<2 | (b6 & 0x60)>>5    y = b3<<9 | b4<<2 | (b6 & 0x18)>>3
                 pressure = b5 | (b6 & 0x07)<<7       tilt x = b7, tilt y = b8
    query reply  11 bytes, byte 0 = 0xC0; max x, max y, max pressure and max tilt in the
                 pen-packet layout; firmware = b9<<7 | b10
    touch query  11 bytes, byte 0 = 0xC0 | data id; b1 panel resolution, b2 sensor id (low 3
                 bits) and the low bits of max x/y, b3-b6 max x/y, b7 capacity resolution
    touch packet byte 0 has 0x90 set; 5, 7 or 13 bytes long by the touch sensor's id

Every byte after the first of a packet is 7-bit. The streaming parser
(`PacketParser`) finds packets in whatever bytes arrive: it skips noise (a byte
without 0x80 where a packet should start), skips touch packets by their length,
rejects impossible packets (a byte with 0x80 inside one, coordinates beyond the
pad's maxima, the tip down out of proximity) and resynchronises on the next byte
with 0x80. It does no I/O, so it never blocks; `ISDV4Pad` runs it over a
`SerialLink` on the caller's thread (in the daemon, the device slot's thread).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from kitd.drivers.facts import DeviceFacts
from kitd.drivers.serial_link import SerialLink
from kitd.errors import DeviceGone, DeviceTimeout, ProtocolError

MODEL = "Wacom ISDV4 pen digitizer"
POINTS_PER_MM = 100

STOP, START, QUERY, TOUCH_QUERY = b"0", b"1", b"*", b"%"

HEADER = 0x80
CONTROL = 0x40
PROXIMITY = 0x20
TOUCH = 0x10
TIP = 0x01
BUTTONS = 0x06  # 0x02 and 0x04: the pen's two side switches

PEN_PACKET_LENGTH = 9
CONTROL_PACKET_LENGTH = 11
QUERY_REPLY_HEADER = 0xC0  # control packet, data id 0
# Touch packet length by the sensor id in the touch query reply (as the kernel's w8001).
TOUCH_PACKET_LENGTHS = {0: 5, 1: 7, 2: 5, 3: 7, 4: 7, 5: 13}
DEFAULT_TOUCH_LENGTH = 5

MAX_COORDINATE = (1 << 16) - 1
MAX_PRESSURE = (1 << 10) - 1

QUERY_TIMEOUT_S = 1.0
# A pen-only pad does not answer `%`; waiting longer only delays the pad being ready.
TOUCH_QUERY_TIMEOUT_S = 0.5
# After `0`, the line is taken as stopped once nothing has arrived for this long.
QUIET_AFTER_STOP_S = 0.05
STOP_DRAIN_LIMIT_S = 0.5
READ_SLICE_S = 0.05

_HIGH_BIT = re.compile(rb"[\x80-\xff]")


# ---- packets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PenPacket:
    """One pen report in device units."""

    x: int
    y: int
    pressure: int
    tip: bool
    proximity: bool
    buttons: int = 0  # bit 0: side switch 1 (0x02 in byte 0), bit 1: side switch 2 (0x04)
    tilt_x: int = 0
    tilt_y: int = 0


@dataclass(frozen=True)
class PenQuery:
    """The pad's answer to `*`."""

    max_x: int
    max_y: int
    max_pressure: int
    firmware: int
    max_tilt_x: int = 0
    max_tilt_y: int = 0


@dataclass(frozen=True)
class TouchQuery:
    """The answer to `%` of a pad that also has a touch sensor."""

    sensor_id: int
    max_x: int
    max_y: int
    firmware: int
    panel_resolution: int = 0
    capacity_resolution: int = 0

    @property
    def packet_length(self) -> int:
        return touch_packet_length(self.sensor_id)


def touch_packet_length(sensor_id: int | None) -> int:
    """How long this pad's touch packets are (5 when unknown: the rest is skipped as noise)."""
    if sensor_id is None:
        return DEFAULT_TOUCH_LENGTH
    return TOUCH_PACKET_LENGTHS.get(sensor_id, DEFAULT_TOUCH_LENGTH)


def packet_length(header: int, touch_length: int = DEFAULT_TOUCH_LENGTH) -> int:
    """The length of the packet a header byte starts (0 when the byte cannot start one)."""
    if not header & HEADER:
        return 0
    if header & (HEADER | TOUCH) == HEADER | TOUCH:
        return touch_length
    if header & CONTROL:
        return CONTROL_PACKET_LENGTH
    return PEN_PACKET_LENGTH


def _check_packet(packet: bytes, length: int, what: str) -> None:
    if len(packet) != length:
        raise ProtocolError(f"ISDV4 {what}: {len(packet)} bytes, expected {length}")
    if not packet[0] & HEADER:
        raise ProtocolError(f"ISDV4 {what}: first byte 0x{packet[0]:02x} lacks 0x80")
    for index in range(1, length):
        if packet[index] & HEADER:
            raise ProtocolError(f"ISDV4 {what}: byte {index} is 0x{packet[index]:02x}, data bytes are 7-bit")


def _xyp(packet: bytes) -> tuple[int, int, int]:
    """x, y and pressure in the pen-packet layout (also the query reply's maxima)."""
    b6 = packet[6]
    x = packet[1] << 9 | packet[2] << 2 | (b6 & 0x60) >> 5
    y = packet[3] << 9 | packet[4] << 2 | (b6 & 0x18) >> 3
    pressure = packet[5] | (b6 & 0x07) << 7
    return x, y, pressure


def _xyp_bytes(x: int, y: int, pressure: int) -> bytes:
    """Bytes 1-6 of the pen-packet layout."""
    if not (0 <= x <= MAX_COORDINATE and 0 <= y <= MAX_COORDINATE and 0 <= pressure <= MAX_PRESSURE):
        raise ValueError(f"x={x}, y={y}, pressure={pressure} do not fit the ISDV4 pen layout")
    b6 = (x & 0x03) << 5 | (y & 0x03) << 3 | (pressure >> 7) & 0x07
    return bytes(((x >> 9) & 0x7F, (x >> 2) & 0x7F, (y >> 9) & 0x7F, (y >> 2) & 0x7F, pressure & 0x7F, b6))


def decode_pen_packet(packet: bytes) -> PenPacket:
    """A 9-byte pen packet, or ProtocolError naming what is wrong with it."""
    _check_packet(packet, PEN_PACKET_LENGTH, "pen packet")
    header = packet[0]
    if header & (CONTROL | TOUCH):
        raise ProtocolError(f"ISDV4 pen packet: header 0x{header:02x} is a control or touch packet")
    x, y, pressure = _xyp(packet)
    return PenPacket(
        x=x,
        y=y,
        pressure=pressure,
        tip=bool(header & TIP),
        proximity=bool(header & PROXIMITY),
        buttons=(header & BUTTONS) >> 1,
        tilt_x=packet[7],
        tilt_y=packet[8],
    )


def encode_pen_packet(pen: PenPacket) -> bytes:
    """The 9 bytes a pad sends for `pen` (ValueError when a value does not fit)."""
    if not (0 <= pen.buttons <= 3 and 0 <= pen.tilt_x <= 0x7F and 0 <= pen.tilt_y <= 0x7F):
        raise ValueError(f"buttons={pen.buttons}, tilt={pen.tilt_x}/{pen.tilt_y} do not fit")
    header = HEADER | (PROXIMITY if pen.proximity else 0) | (TIP if pen.tip else 0) | pen.buttons << 1
    return bytes((header,)) + _xyp_bytes(pen.x, pen.y, pen.pressure) + bytes((pen.tilt_x, pen.tilt_y))


def decode_query_reply(packet: bytes) -> PenQuery:
    """The 11-byte answer to `*`: maxima in the pen layout, firmware in bytes 9-10."""
    _check_packet(packet, CONTROL_PACKET_LENGTH, "query reply")
    # Wacom's isdv4.h: the query reply's data id is always 0.
    if packet[0] != QUERY_REPLY_HEADER:
        raise ProtocolError(f"ISDV4 query reply: header 0x{packet[0]:02x}, expected 0xc0")
    max_x, max_y, max_pressure = _xyp(packet)
    if not (max_x and max_y and max_pressure):
        raise ProtocolError(
            f"ISDV4 query reply: max x {max_x}, max y {max_y}, max pressure {max_pressure} (0 is impossible)"
        )
    return PenQuery(
        max_x=max_x,
        max_y=max_y,
        max_pressure=max_pressure,
        firmware=packet[9] << 7 | packet[10],
        max_tilt_x=packet[7],
        max_tilt_y=packet[8],
    )


def encode_query_reply(query: PenQuery) -> bytes:
    if not 0 <= query.firmware < 1 << 14:
        raise ValueError(f"firmware {query.firmware} does not fit 14 bits")
    return (
        bytes((QUERY_REPLY_HEADER,))
        + _xyp_bytes(query.max_x, query.max_y, query.max_pressure)
        + bytes(
            (query.max_tilt_x & 0x7F, query.max_tilt_y & 0x7F, query.firmware >> 7, query.firmware & 0x7F)
        )
    )


def decode_touch_query_reply(packet: bytes) -> TouchQuery:
    """The 11-byte answer to `%` (only pads with a touch sensor give one)."""
    _check_packet(packet, CONTROL_PACKET_LENGTH, "touch query reply")
    if packet[0] & (CONTROL | TOUCH) != CONTROL:
        raise ProtocolError(f"ISDV4 touch query reply: header 0x{packet[0]:02x} is not a control packet")
    b2 = packet[2]
    return TouchQuery(
        sensor_id=b2 & 0x07,
        max_x=packet[3] << 9 | packet[4] << 2 | (b2 >> 5) & 0x03,
        max_y=packet[5] << 9 | packet[6] << 2 | (b2 >> 3) & 0x03,
        firmware=packet[9] << 7 | packet[10],
        panel_resolution=packet[1],
        capacity_resolution=packet[7],
    )


def encode_touch_query_reply(touch: TouchQuery, data_id: int = 1) -> bytes:
    x, y = touch.max_x, touch.max_y
    b2 = (x & 0x03) << 5 | (y & 0x03) << 3 | touch.sensor_id & 0x07
    return bytes(
        (
            HEADER | CONTROL | data_id & 0x0F,
            touch.panel_resolution & 0x7F,
            b2,
            (x >> 9) & 0x7F,
            (x >> 2) & 0x7F,
            (y >> 9) & 0x7F,
            (y >> 2) & 0x7F,
            touch.capacity_resolution & 0x7F,
            0,
            touch.firmware >> 7 & 0x7F,
            touch.firmware & 0x7F,
        )
    )


def encode_touch_packet(x: int, y: int, down: bool, length: int) -> bytes:
    """A touch packet of `length` bytes (what a pad with a touch sensor interleaves)."""
    head = bytes((HEADER | TOUCH | (1 if down else 0), (x >> 7) & 0x7F, x & 0x7F, (y >> 7) & 0x7F, y & 0x7F))
    return (head + bytes(max(0, length - len(head))))[:length]


# ---- the streaming parser ----------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A packet found in the stream: its kind (`pen` or `control`), where it began, its bytes."""

    kind: str
    offset: int
    data: bytes
    pen: PenPacket | None = None


@dataclass
class Limits:
    """The pad's maxima from its query reply; a pen packet beyond them is impossible."""

    max_x: int = MAX_COORDINATE
    max_y: int = MAX_COORDINATE
    max_pressure: int = MAX_PRESSURE


@dataclass
class LineCounts:
    """What the parser threw away: noise bytes, rejected packets, skipped touch packets."""

    noise_bytes: int = 0
    rejected: int = 0
    touch: int = 0


@dataclass
class PacketParser:
    """Finds packets in a byte stream fed in arbitrary pieces; see the module doc."""

    limits: Limits = field(default_factory=Limits)
    touch_length: int = DEFAULT_TOUCH_LENGTH
    counts: LineCounts = field(default_factory=LineCounts)
    _pending: bytes = b""
    _consumed: int = 0  # stream offset of _pending[0]

    def feed(self, data: bytes) -> list[Parsed]:
        buf = self._pending + data if self._pending else bytes(data)
        found: list[Parsed] = []
        end = len(buf)
        i = 0
        counts = self.counts
        while i < end:
            header = buf[i]
            if not header & HEADER:
                match = _HIGH_BIT.search(buf, i)
                nxt = match.start() if match else end
                counts.noise_bytes += nxt - i
                i = nxt
                continue
            length = packet_length(header, self.touch_length)
            stop = min(i + length, end)
            inner = _HIGH_BIT.search(buf, i + 1, stop)
            if inner is not None:
                # A header inside: this one was noise that looked like a header; resync there.
                counts.rejected += 1
                counts.noise_bytes += inner.start() - i
                i = inner.start()
                continue
            if stop < i + length:
                break  # the rest has not arrived yet
            packet = buf[i : i + length]
            if header & TOUCH:
                counts.touch += 1
            elif header & CONTROL:
                found.append(Parsed("control", self._consumed + i, packet))
            else:
                pen = self._possible_pen(packet)
                if pen is None:
                    counts.rejected += 1
                    counts.noise_bytes += 1
                    i += 1
                    continue
                found.append(Parsed("pen", self._consumed + i, packet, pen))
            i += length
        self._pending = buf[i:]
        self._consumed += i
        return found

    def _possible_pen(self, packet: bytes) -> PenPacket | None:
        header = packet[0]
        # The pad reports the tip only while the pen is in range: anything else is line noise.
        if header & TIP and not header & PROXIMITY:
            return None
        x, y, pressure = _xyp(packet)
        limits = self.limits
        if x > limits.max_x or y > limits.max_y or pressure > limits.max_pressure:
            return None
        return PenPacket(
            x=x,
            y=y,
            pressure=pressure,
            tip=bool(header & TIP),
            proximity=bool(header & PROXIMITY),
            buttons=(header & BUTTONS) >> 1,
            tilt_x=packet[7],
            tilt_y=packet[8],
        )

    def reset(self) -> None:
        """Forget a half-received packet (after the input was flushed)."""
        self.counts.noise_bytes += len(self._pending)
        self._consumed += len(self._pending)
        self._pending = b""


# ---- the driver -------------------------------------------------------------------------


@dataclass(frozen=True)
class PenSample:
    """A pen packet as received: host monotonic time (s) and the packet."""

    t: float
    pen: PenPacket


class ISDV4Pad:
    """Drives one ISDV4 pad over a serial link: open (stop, flush, query), then stream."""

    kind = "signature"
    model = MODEL

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.query: PenQuery | None = None
        self.touch: TouchQuery | None = None
        self.parser = PacketParser()

    @classmethod
    def over_serial(cls, path: str, baud: int) -> ISDV4Pad:
        return cls(SerialLink(path, baud))

    @property
    def where(self) -> str:
        return f"signature pad {self.link.path}"

    def open(self) -> DeviceFacts:
        """Open the port, stop the pad, flush, and ask what it is (pen query, then touch query)."""
        self.link.open()
        self.query = None
        self.touch = None
        self.query = self.answer_to_query()
        # A pen-only pad does not answer `%`: that is not an error.
        touch_reply, _ = self._ask(TOUCH_QUERY, TOUCH_QUERY_TIMEOUT_S, _is_touch_reply)
        self.touch = decode_touch_query_reply(touch_reply) if touch_reply is not None else None
        self.parser = PacketParser(
            limits=Limits(self.query.max_x, self.query.max_y, self.query.max_pressure),
            touch_length=touch_packet_length(self.touch.sensor_id if self.touch else None),
        )
        return self.facts()

    def answer_to_query(self) -> PenQuery:
        """The pad's answer to the pen query, asked now: a pad whose port is open but
        which answers nothing (hung, unpowered) says so here, not only at its next open. The pad
        is stopped and the line drained first: a pad that restarted sampling by itself (it lost
        power) would otherwise bury the reply in pen packets."""
        self.link.write(STOP, f"{self.where}: stop")
        self._drain_until_quiet()
        self.link.discard_input(f"{self.where}: flush")
        reply, heard = self._ask(QUERY, QUERY_TIMEOUT_S, _is_query_reply)
        if reply is None:
            if heard:
                raise ProtocolError(
                    f"{self.where}: {heard} bytes but no reply to the pen query within {QUERY_TIMEOUT_S:g} s "
                    f"(wrong baud rate? configured {self.link.baud})"
                )
            raise DeviceTimeout(f"{self.where}: no answer to the pen query within {QUERY_TIMEOUT_S:g} s")
        return decode_query_reply(reply)

    def facts(self) -> DeviceFacts:
        query = self.query
        if query is None:
            raise ProtocolError(f"{self.where}: not opened")
        touch = self.touch
        return DeviceFacts(
            model=MODEL,
            serial=None,  # ISDV4 has no serial number
            firmware=str(query.firmware),
            detail={
                "path": self.link.path,
                "baud": self.link.baud,
                "max_x": query.max_x,
                "max_y": query.max_y,
                "max_pressure": query.max_pressure,
                "max_tilt_x": query.max_tilt_x,
                "max_tilt_y": query.max_tilt_y,
                "points_per_mm": POINTS_PER_MM,
                "width_mm": round(query.max_x / POINTS_PER_MM, 2),
                "height_mm": round(query.max_y / POINTS_PER_MM, 2),
                "touch": None
                if touch is None
                else {"sensor_id": touch.sensor_id, "packet_length": touch.packet_length},
            },
        )

    def _drain_until_quiet(self) -> int:
        drained = 0
        started = time.monotonic()
        while time.monotonic() - started < STOP_DRAIN_LIMIT_S:
            chunk = self.link.read(QUIET_AFTER_STOP_S, f"{self.where}: flush after stop")
            if not chunk:
                break
            drained += len(chunk)
        return drained

    def _ask(self, command: bytes, timeout_s: float, accept: Any) -> tuple[bytes | None, int]:
        """Send a query; its reply (the first control packet `accept` takes) and the bytes heard."""
        parser = PacketParser()
        what = f"{self.where}: query '{command.decode()}'"
        self.link.write(command, what)
        heard = 0
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            chunk = self.link.read(min(READ_SLICE_S, remaining), what)
            heard += len(chunk)
            for parsed in parser.feed(chunk):
                if parsed.kind == "control" and accept(parsed.data):
                    return parsed.data, heard
        return None, heard

    def close(self) -> None:
        self.link.close()

    def is_present(self) -> bool:
        """Whether the port is still there (no I/O to the pad); DeviceGone says why not."""
        if not self.link.is_present():
            raise DeviceGone(f"{self.where}: port unplugged (path gone or hung up)")
        return True

    def start(self) -> None:
        """Flush what came before and start sampling; packets before `1` are not the signature."""
        self.link.discard_input(f"{self.where}: start")
        self.parser.reset()
        self.link.write(START, f"{self.where}: start")

    def stop(self) -> None:
        self.link.write(STOP, f"{self.where}: stop")

    def read_samples(self, timeout_s: float = READ_SLICE_S) -> list[PenSample]:
        """The pen packets that arrive within `timeout_s` (often none), stamped on arrival."""
        chunk = self.link.read(timeout_s, f"{self.where}: read")
        if not chunk:
            return []
        now = time.monotonic()
        return [PenSample(now, p.pen) for p in self.parser.feed(chunk) if p.pen is not None]

    @property
    def counts(self) -> LineCounts:
        return self.parser.counts


def _is_query_reply(packet: bytes) -> bool:
    return packet[0] == QUERY_REPLY_HEADER


def _is_touch_reply(packet: bytes) -> bool:
    # A control packet with a data id other than the pen query's 0 (isdv4.h: always 1).
    return packet[0] & (CONTROL | TOUCH) == CONTROL and packet[0] & 0x3F != 0
