"""Simulated Wacom ISDV4 signature pad behind a pty, with a control channel for faults.

A separate process holding the master side of a pseudo-terminal; the slave side
is exposed through a symlink, so kitd opens `serial:LINK` exactly as it opens
/dev/ttyUSB0 on a kit. Unplug closes the pty and removes the link; replug makes a
new pty and swaps the link to it (what a USB serial adapter does, seen from the
path).

    python -m hil.isdv4_sim [--link PATH] [--control-port 0] [--baud 38400]
                            [--max-x 9600] [--max-y 6000] [--max-pressure 1023]
                            [--firmware 4660] [--touch-sensor-id N] [--seed 1]
                            [--style steady|shaky|halting] [--strokes N] [--rate 130]
                            [--lead-in 0.2] [--loop]

When listening it prints one line to stdout, `READY serial=LINK control=127.0.0.1:PORT`;
logs go to stderr.

The pad answers `0` (stop), `1` (start), `*` (pen query: the maxima, firmware) and
`%` (touch query: only with --touch-sensor-id; a pen-only pad stays silent, as real
ones do). After `1` it plays one synthetic signature (hil.synthetic_signature, the
next seed each time) at --rate packets a second, starting --lead-in seconds later:
the pen comes into range, writes, hovers between strokes, and leaves (a last packet
out of proximity); then it is silent until the next `1` (with --loop it writes
another). `1` while sampling changes nothing. Unknown bytes are ignored and counted.
If nobody reads and the pty fills, packets are dropped, as a UART overruns.

Control channel: TCP on 127.0.0.1, one command per line, one reply line,
`ok [DETAIL]` or `err REASON`:

    unplug                   close the pty and remove the link (the port vanishes)
    replug                   a new pty behind the link (also when plugged: a swap)
    fault noise [MAX]        1..MAX random bytes (any value) between some packets (default 4;
                             a burst of 5 or more bytes may hold something shaped like a packet)
    fault corrupt [EVERY]    every EVERY-th pen packet is sent broken instead (default 5), in
                             turn: a data byte with 0x80 set, cut short, x beyond the pad's max
    fault touch [EVERY]      a touch packet (the touch sensor's length, else 5) before every
                             EVERY-th pen packet (default 3)
    fault wrong-baud [BAUD]  the pad runs at BAUD (default 19200) on a line the host reads at
                             --baud: it cannot understand commands and, as a pad left sampling,
                             streams signatures that arrive misframed (bit-level UART model)
    fault silence            no pen packets at all (queries are still answered)
    fault no-query           `*` and `%` are never answered
    fault clear              disarm every fault
    signature SEED [STYLE [STROKES]]   what the next `1` plays (STROKES 0: the style's choice)
    draw corners [INSET]     a technician's pen (hil.pen_strokes) for the guided pad test: a tap
                             near each corner, top left, top right, bottom right, bottom left,
                             INSET (default 0.03) of the pad's extent in from its edges
    draw line [WOBBLE]       one stroke from near the top left to near the bottom right (10% in);
                             WOBBLE (default 0) bends it sideways by that share of its length
                             (0.05: a line no ruler drew, beyond the test's 3%)
    draw path X,Y;X,Y;...    one pen-down stroke through those pad coordinates, in order
                             Each `draw` plays at --rate at once while the pad samples (instead
                             of what it was playing), else on the next `1` instead of a
                             signature; `ok playing N packets` or `ok N packets for the next start`
    loop on|off              keep writing signatures while sampling
    status                   ok {JSON: plugged, link, pty, sampling, session, seed, style,
                             loop, faults, commands, sent counts, script_left (packets of the
                             signature or drawing not yet played), written (the hand has
                             finished: its whole signature or drawing played and every packet
                             on the wire), drawing (packets kept for the next `1`), unread
                             (bytes on the line the host has not read yet; null unplugged)}
    sent [PATH]              ok {JSON} of what went out since the last `1`: "pen" is
                             [[x, y, pressure, tip, proximity], ...] of every intact pen packet
                             written, in order; "counts" per kind (pen, corrupt, touch, noise,
                             garbled, reply, dropped); "bytes" every byte written, hex. With
                             PATH, the JSON goes to that file and the reply says how many.
    reset                    faults cleared, plugged, stopped, counters zeroed, seed --seed
    help                     the command names
    quit                     reply `ok bye` and exit

Faults are instructions to the simulator: they survive unplug and replug.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import select
import struct
import sys
import tempfile
import termios
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil.control_channel import ControlChannel
from hil.pen_strokes import corner_taps, diagonal, parse_points, stroke
from hil.pty_device import IoThreadWork, close_pty, open_pty, run_until_stopped
from hil.synthetic_signature import STYLES, synthetic_signature
from kitd.drivers.isdv4 import (
    MAX_COORDINATE,
    PenPacket,
    PenQuery,
    TouchQuery,
    encode_pen_packet,
    encode_query_reply,
    encode_touch_packet,
    encode_touch_query_reply,
    touch_packet_length,
)

log = logging.getLogger("isdv4_sim")

MAX_OUTBOX = 64
LOOP_PAUSE_S = 0.5
COMMAND_NAMES = {ord("0"): "stop", ord("1"): "start", ord("*"): "query", ord("%"): "touch_query"}


# ---- the line ----------------------------------------------------------------------------


def uart_bits(data: bytes) -> list[int]:
    """Line levels of `data` sent back to back, 8N1, one entry per bit time (LSB first)."""
    bits: list[int] = []
    for byte in data:
        bits.append(0)
        bits.extend((byte >> i) & 1 for i in range(8))
        bits.append(1)
    return bits


def misframe(data: bytes, sent_baud: int, read_baud: int) -> bytes:
    """What a UART reading at `read_baud` makes of `data` sent at `sent_baud` (8N1, idle high).

    The receiver waits for the line to be low (a start bit), samples eight data bits at
    the middle of its own bit times, and delivers the byte whatever the stop bit was
    (framing errors pass through: INPCK is off, as pyserial sets it).
    """
    bits = uart_bits(data)
    sent_bit, read_bit = 1.0 / sent_baud, 1.0 / read_baud

    def level(t: float) -> int:
        index = int(t / sent_bit + 1e-9)
        return bits[index] if index < len(bits) else 1

    out = bytearray()
    t, end = 0.0, len(bits) * sent_bit
    while t < end:
        if level(t):
            index = int(t / sent_bit + 1e-9) + 1
            while index < len(bits) and bits[index]:
                index += 1
            if index >= len(bits):
                break
            t = index * sent_bit
        out.append(sum(level(t + (1.5 + k) * read_bit) << k for k in range(8)))
        t += 9.5 * read_bit
    return bytes(out)


def corrupt_packet(packet: bytes, variant: int, max_x: int, rng: np.random.Generator) -> bytes:
    """A pen packet broken in a way a reader can tell: 0 a data byte with 0x80 set,
    1 cut short by 1-4 bytes, 2 x beyond the pad's maximum."""
    if variant % 3 == 0:
        index = int(rng.integers(1, len(packet)))
        return packet[:index] + bytes((packet[index] | 0x80,)) + packet[index + 1 :]
    if variant % 3 == 1 or max_x >= MAX_COORDINATE:
        return packet[: len(packet) - int(rng.integers(1, 5))]
    x = int(rng.integers(max_x + 1, MAX_COORDINATE + 1))
    header = packet[0]
    pen = PenPacket(
        x=x,
        y=(packet[3] << 9) | (packet[4] << 2) | (packet[6] & 0x18) >> 3,
        pressure=packet[5] | (packet[6] & 0x07) << 7,
        tip=bool(header & 0x01),
        proximity=bool(header & 0x20),
    )
    return encode_pen_packet(pen)


# ---- the pad -----------------------------------------------------------------------------


@dataclass
class Outgoing:
    kind: str  # pen, corrupt, touch, noise, garbled, reply
    data: bytes
    state: PenPacket | None = None


@dataclass
class SessionRecord:
    """What went out on the line since the last `1`."""

    session: int = 0
    pen: list[list[Any]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    wire: bytearray = field(default_factory=bytearray)

    def as_json(self) -> dict[str, Any]:
        kinds = ("pen", "corrupt", "touch", "noise", "garbled", "reply", "dropped")
        return {
            "session": self.session,
            "pen": self.pen,
            "counts": {k: self.counts.get(k, 0) for k in kinds},
            "bytes": self.wire.hex(),
        }


@dataclass
class Faults:
    noise: int = 0
    corrupt: int = 0
    touch: int = 0
    wrong_baud: int = 0
    silence: bool = False
    no_query: bool = False

    def armed(self) -> list[str]:
        names = []
        for name, value in vars(self).items():
            if value:
                label = name.replace("_", "-")
                names.append(label if value is True else f"{label} {value}")
        return names


@dataclass
class PadSetup:
    link: Path
    baud: int
    query: PenQuery
    touch: TouchQuery | None
    seed: int
    style: str
    strokes: int | None
    rate_hz: float
    lead_in_s: float
    loop: bool


class PadSim:
    """The pad's state; every change happens on its I/O thread (`call` runs work there)."""

    def __init__(self, setup: PadSetup) -> None:
        self.setup = setup
        self.master: int | None = None
        self.slave: int | None = None
        self.pty_name = ""
        self.faults = Faults()
        self.rng = np.random.default_rng(setup.seed)
        self.io = IoThreadWork()
        self._reset_state()

    def _reset_state(self) -> None:
        self.seed = self.setup.seed
        self.style = self.setup.style
        self.strokes = self.setup.strokes
        self.loop = self.setup.loop
        self.sampling = False
        self.session = 0
        self.script: list[PenPacket] = []
        # A `draw` command's pen path waiting for the next `1` (None: a signature plays).
        self.drawing: list[PenPacket] | None = None
        self.tick = 0
        self.next_at = 0.0
        self.pen_count = 0
        self.corrupt_count = 0
        self.record = SessionRecord()
        self.commands: Counter = Counter()
        self.outbox: deque[Outgoing] = deque()
        self.partial = 0  # bytes of outbox[0] already written

    # -- running work on the I/O thread --
    def call(self, work: Callable[[], Any]) -> Any:
        return self.io.call(work)

    # -- plugging --
    def plug(self) -> str:
        self.unplug(quiet=True)
        self.master, self.slave, self.pty_name = open_pty(self.setup.link)
        log.info("plugged: %s -> %s", self.setup.link, self.pty_name)
        if self.faults.wrong_baud:
            self._start_session(0.0)  # powers up sampling, at a rate the host does not read
        return self.pty_name

    def unplug(self, quiet: bool = False) -> bool:
        if self.master is None:
            return False
        close_pty(self.setup.link, self.master, self.slave)
        self.master = self.slave = None
        self.sampling = False
        self.outbox.clear()
        self.partial = 0
        if not quiet:
            log.info("unplugged %s", self.pty_name)
        return True

    # -- the I/O loop --
    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            master = self.master
            readers = [self.io.wake_fd] + ([master] if master is not None else [])
            writers = [master] if master is not None and self.outbox else []
            timeout = 0.2 if not self.sampling else max(0.0, min(0.2, self.next_at - time.monotonic()))
            readable, _, _ = select.select(readers, writers, [], timeout)
            if self.io.wake_fd in readable:
                self.io.run_due()
            if master is not None and master == self.master and master in readable:
                try:
                    received = os.read(master, 4096)
                except (BlockingIOError, OSError):
                    received = b""
                self._on_host_bytes(received)
            self._play_due()
            self._flush()

    def _on_host_bytes(self, data: bytes) -> None:
        if self.faults.wrong_baud:
            heard = misframe(data, self.setup.baud, self.faults.wrong_baud)
            self.commands["misheard"] += len(heard)
            return  # the pad cannot make sense of a host at another rate
        for byte in data:
            name = COMMAND_NAMES.get(byte, "other")
            self.commands[name] += 1
            if name == "stop":
                self.sampling = False
                self._drop_unsent()
            elif name == "start" and not self.sampling:
                self._start_session()
            elif name == "query" and not self.faults.no_query:
                self._queue(Outgoing("reply", encode_query_reply(self.setup.query)))
            elif name == "touch_query" and self.setup.touch is not None and not self.faults.no_query:
                self._queue(Outgoing("reply", encode_touch_query_reply(self.setup.touch)))

    def _start_session(self, delay_s: float | None = None) -> None:
        self.session += 1
        self.record = SessionRecord(session=self.session)
        self.sampling = True
        delay = self.setup.lead_in_s if delay_s is None else delay_s
        if self.drawing is not None:
            self.script, self.drawing, self.tick = self.drawing, None, 0
            self.next_at = time.monotonic() + delay
        else:
            self._next_script(delay)

    def play(self, script: list[PenPacket]) -> bool:
        """Play `script` now if sampling (True), else keep it for the next `1` (False)."""
        if not self.sampling:
            self.drawing = script
            return False
        self.script, self.tick = script, 0
        self.next_at = time.monotonic()
        return True

    def _next_script(self, delay_s: float) -> None:
        query = self.setup.query
        self.script = synthetic_signature(
            self.seed,
            max_x=query.max_x,
            max_y=query.max_y,
            max_pressure=query.max_pressure,
            style=self.style,
            strokes=self.strokes,
            rate_hz=self.setup.rate_hz,
        )
        self.seed += 1
        self.tick = 0
        self.next_at = time.monotonic() + delay_s

    def _play_due(self) -> None:
        if not self.sampling:
            return
        period = 1.0 / self.setup.rate_hz
        now = time.monotonic()
        for _ in range(8):  # catch up after a stall, but never burst without bound
            if now < self.next_at:
                return
            if self.tick >= len(self.script):
                if not (self.loop or self.faults.wrong_baud):
                    return
                self._next_script(LOOP_PAUSE_S)
                return
            self._emit(self.script[self.tick])
            self.tick += 1
            self.next_at += period

    def _emit(self, state: PenPacket) -> None:
        faults, rng = self.faults, self.rng
        if faults.silence:
            return
        self.pen_count += 1
        if faults.touch and self.pen_count % faults.touch == 0:
            length = touch_packet_length(self.setup.touch.sensor_id if self.setup.touch else None)
            touch = encode_touch_packet(int(rng.integers(0, 4096)), int(rng.integers(0, 4096)), True, length)
            self._queue(Outgoing("touch", touch))
        if faults.noise and rng.random() < 0.5:
            burst = rng.integers(0, 256, int(rng.integers(1, faults.noise + 1)), dtype=np.uint8)
            self._queue(Outgoing("noise", burst.tobytes()))
        packet = encode_pen_packet(state)
        if faults.corrupt and self.pen_count % faults.corrupt == 0:
            broken = corrupt_packet(packet, self.corrupt_count, self.setup.query.max_x, rng)
            self.corrupt_count += 1
            self._queue(Outgoing("corrupt", broken))
        else:
            self._queue(Outgoing("pen", packet, state))

    def _queue(self, item: Outgoing) -> None:
        if self.master is None:
            return
        if self.faults.wrong_baud:
            item = Outgoing("garbled", misframe(item.data, self.faults.wrong_baud, self.setup.baud))
        if len(self.outbox) >= MAX_OUTBOX:
            self.record.counts["dropped"] += 1
            return
        self.outbox.append(item)

    def _drop_unsent(self) -> None:
        # What has started on the wire finishes; the rest was never sent.
        while len(self.outbox) > (1 if self.partial else 0):
            self.outbox.pop()

    def _flush(self) -> None:
        while self.outbox and self.master is not None:
            item = self.outbox[0]
            try:
                written = os.write(self.master, item.data[self.partial :])
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("write failed: %s", exc)
                return
            self.record.wire.extend(item.data[self.partial : self.partial + written])
            self.partial += written
            if self.partial < len(item.data):
                return
            self.outbox.popleft()
            self.partial = 0
            self.record.counts[item.kind] += 1
            if item.state is not None:
                s = item.state
                self.record.pen.append([s.x, s.y, s.pressure, s.tip, s.proximity])

    # -- what the control channel asks --
    def status(self) -> dict[str, Any]:
        return {
            "plugged": self.master is not None,
            "link": str(self.setup.link),
            "pty": self.pty_name if self.master is not None else None,
            "sampling": self.sampling,
            "session": self.session,
            "seed": self.seed,
            "style": self.style,
            "loop": self.loop,
            "faults": self.faults.armed(),
            "commands": dict(self.commands),
            "sent": self.record.as_json()["counts"],
            "script_left": max(0, len(self.script) - self.tick) if self.sampling else 0,
            "written": self.session > 0 and self.tick >= len(self.script) and not self.outbox,
            "drawing": 0 if self.drawing is None else len(self.drawing),
            "unread": self.unread(),
        }

    def unread(self) -> int | None:
        """Bytes waiting on the slave side for the host to read (FIONREAD); None unplugged."""
        if self.slave is None:
            return None
        return struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0" * 4))[0]

    def reset(self) -> None:
        self.faults = Faults()
        self.rng = np.random.default_rng(self.setup.seed)
        self._reset_state()
        self.plug()


class ControlServer(ControlChannel):
    """The line protocol on 127.0.0.1 that steers the simulated pad (see the module doc)."""

    def __init__(self, sim: PadSim, port: int, stop: threading.Event) -> None:
        super().__init__(port, stop)
        self.sim = sim

    def _cmd_unplug(self, args: list[str]) -> str:
        return "ok unplugged" if self.sim.call(self.sim.unplug) else "ok already unplugged"

    def _cmd_replug(self, args: list[str]) -> str:
        return f"ok plugged {self.sim.call(self.sim.plug)}"

    def _cmd_fault(self, args: list[str]) -> str:
        usage = (
            "usage: fault noise [MAX] | corrupt [EVERY] | touch [EVERY] | wrong-baud [BAUD] "
            "| silence | no-query | clear"
        )
        if not args or len(args) > 2:
            raise ValueError(usage)
        kind, value = args[0], (int(args[1]) if len(args) == 2 else None)
        defaults = {"noise": 4, "corrupt": 5, "touch": 3, "wrong-baud": 19200}
        if kind not in (*defaults, "silence", "no-query", "clear") or (
            value is not None and kind not in defaults
        ):
            raise ValueError(usage)
        if value is not None and value < 1:
            raise ValueError(f"{kind}: {value} must be 1 or more")

        def arm() -> list[str]:
            faults = self.sim.faults
            if kind == "clear":
                self.sim.faults = Faults()
            elif kind in defaults:
                setattr(faults, kind.replace("-", "_"), value or defaults[kind])
                if kind == "wrong-baud" and not self.sim.sampling:
                    self.sim._start_session(0.0)  # a pad left sampling at its own rate
            else:
                setattr(faults, kind.replace("-", "_"), True)
            return self.sim.faults.armed()

        return "ok faults: " + (", ".join(self.sim.call(arm)) or "none")

    def _cmd_signature(self, args: list[str]) -> str:
        if not 1 <= len(args) <= 3:
            raise ValueError("usage: signature SEED [STYLE [STROKES]]")
        style = args[1] if len(args) >= 2 else self.sim.style
        if style not in STYLES:
            raise ValueError(f"unknown style '{style}' (known: {', '.join(STYLES)})")
        strokes = int(args[2]) if len(args) == 3 else 0

        def choose() -> None:
            self.sim.seed, self.sim.style, self.sim.strokes = int(args[0]), style, strokes or None

        self.sim.call(choose)
        return "ok"

    def _cmd_draw(self, args: list[str]) -> str:
        usage = "usage: draw corners [INSET] | line [WOBBLE] | path X,Y;X,Y;..."
        if not args or len(args) > 2:
            raise ValueError(usage)
        query, rate = self.sim.setup.query, self.sim.setup.rate_hz
        if args[0] == "corners":
            inset = float(args[1]) if len(args) == 2 else 0.03
            if not 0 <= inset < 0.5:
                raise ValueError(f"INSET {inset} must be from 0 to below 0.5")
            script = corner_taps(query.max_x, query.max_y, inset, rate)
        elif args[0] == "line":
            wobble = float(args[1]) if len(args) == 2 else 0.0
            if not 0 <= wobble < 0.5:
                raise ValueError(f"WOBBLE {wobble} must be from 0 to below 0.5")
            script = diagonal(query.max_x, query.max_y, wobble, rate_hz=rate)
        elif args[0] == "path" and len(args) == 2:
            points = parse_points(args[1])
            beyond = [p for p in points if not (0 <= p[0] <= query.max_x and 0 <= p[1] <= query.max_y)]
            if beyond:
                raise ValueError(f"{beyond[0]} is beyond the pad (0..{query.max_x}, 0..{query.max_y})")
            script = stroke(points, rate)
        else:
            raise ValueError(usage)
        if self.sim.call(lambda: self.sim.play(script)):
            return f"ok playing {len(script)} packets"
        return f"ok {len(script)} packets for the next start"

    def _cmd_loop(self, args: list[str]) -> str:
        if args not in (["on"], ["off"]):
            raise ValueError("usage: loop on|off")
        self.sim.call(lambda: setattr(self.sim, "loop", args[0] == "on"))
        return f"ok loop {args[0]}"

    def _cmd_status(self, args: list[str]) -> str:
        return "ok " + json.dumps(self.sim.call(self.sim.status), separators=(",", ":"))

    def _cmd_sent(self, args: list[str]) -> str:
        if len(args) > 1:
            raise ValueError("usage: sent [PATH]")
        record = self.sim.call(lambda: json.loads(json.dumps(self.sim.record.as_json())))
        if args:
            Path(args[0]).write_text(json.dumps(record))
            return f"ok wrote {len(record['pen'])} pen packets to {args[0]}"
        return "ok " + json.dumps(record, separators=(",", ":"))

    def _cmd_reset(self, args: list[str]) -> str:
        self.sim.call(self.sim.reset)
        return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.isdv4_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--link", type=Path, help="symlink to the pty's slave (default: in a temp dir)")
    parser.add_argument("--control-port", type=int, default=0, help="control channel port (0: a free one)")
    parser.add_argument("--baud", type=int, default=38400, help="the host's line rate (for wrong-baud)")
    parser.add_argument("--max-x", type=int, default=9600)
    parser.add_argument("--max-y", type=int, default=6000)
    parser.add_argument("--max-pressure", type=int, default=1023)
    parser.add_argument("--firmware", type=int, default=4660)
    parser.add_argument("--touch-sensor-id", type=int, choices=range(8), help="answer %% with this sensor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", choices=sorted(STYLES), default="steady")
    parser.add_argument("--strokes", type=int, help="strokes per signature (default: the style's choice)")
    parser.add_argument("--rate", type=float, default=130.0, help="pen packets a second")
    parser.add_argument("--lead-in", type=float, default=0.2, help="seconds from `1` to the first packet")
    parser.add_argument("--loop", action="store_true", help="keep writing signatures while sampling")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="isdv4_sim: %(message)s")
    if not (
        0 < args.max_x <= MAX_COORDINATE and 0 < args.max_y <= MAX_COORDINATE and 0 < args.max_pressure < 1024
    ):
        parser.error("--max-x/--max-y must be 1..65535 and --max-pressure 1..1023")
    link = args.link or Path(tempfile.mkdtemp(prefix="isdv4-sim-")) / "pad"
    touch = None
    if args.touch_sensor_id is not None:
        touch = TouchQuery(sensor_id=args.touch_sensor_id, max_x=4095, max_y=4095, firmware=args.firmware)
    setup = PadSetup(
        link=link.absolute(),
        baud=args.baud,
        query=PenQuery(args.max_x, args.max_y, args.max_pressure, args.firmware),
        touch=touch,
        seed=args.seed,
        style=args.style,
        strokes=args.strokes,
        rate_hz=args.rate,
        lead_in_s=args.lead_in,
        loop=args.loop,
    )
    sim = PadSim(setup)
    stop = threading.Event()
    try:
        sim.plug()
        control = ControlServer(sim, args.control_port, stop)
    except OSError as exc:
        print(f"isdv4_sim: cannot start: {exc}", file=sys.stderr)
        return 1
    note = f"pad {setup.query}, touch {'none' if touch is None else f'sensor {touch.sensor_id}'}"
    run_until_stopped(sim.serve, control, setup.link, stop, log, note)
    sim.unplug()
    return 0


if __name__ == "__main__":
    sys.exit(main())
