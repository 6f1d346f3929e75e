"""Simulated NEXT Biometrics NB-1010-U fingerprint sensor, served over USB/IP on loopback.

A separate process that looks, over USB/IP, like the real sensor: its recorded
descriptors (VID 298d, PID 1010, bcdDevice 0001, full speed, configuration 1,
interface 0 with interrupt IN 0x81 and bulk OUT 0x02 / bulk IN 0x83 of 64-byte
packets, no readable string descriptors) and its protocol, byte for byte as recorded
in ../shared/fixtures/nb1010/capture.ioctl. kitd reaches it through
kitd.drivers.usbip_backend (`usb_backend = "usbip://127.0.0.1:PORT"`).

    python -m hil.nb1010_sim [--usbip-port 0] [--control-port 0] [--frame PATH ...]
                             [--pattern NAME] [--condition NAME [--seed N]]

Both ports bind 127.0.0.1 (0 = a free port). When both listen, exactly one line goes
to stdout, `READY usbip=127.0.0.1:PORT control=127.0.0.1:PORT`; logs go to stderr.

Protocol (bulk OUT 0x02 commands, bulk IN 0x83 replies; the tag, byte 2, is echoed):

    check finger  80 38 TT 00 08 00 00 00         -> 80 37 TT 00 10 00 .. byte 12 = coverage
                  (0xF7 with a finger on the sensor, 0x00 without)
    pre-capture   80 0d TT 00 0c 00 00 00 00 04 00 00  -> 80 20 TT 00 10 00 .. (zeros)
    capture       80 12 TT 00 20 00 .. (32 bytes)  -> 80 20 TT 00 10 00 .. byte 12 = 0x03,
                  then 90 IN transfers of 540 bytes: a 25-byte header
                  (80 21 00 00 1c 02 00 00 | 00 00 00 00 | MORE 00 00 00 | ROW u32le |
                  00 01 00 00 01; MORE = 1 except 0 in the last packet, ROW = 2*i+1),
                  rows 2i and 2i+1 of the 256x180 frame, 3 zero bytes.

A command whose bytes are not one of these three (first byte 0x80, the length field in
bytes 4-7 equal to the transfer's length, the command's own length) STALLs: the OUT
transfer fails with EPIPE and endpoint 0x02 stays halted until the host clears it
(CLEAR_FEATURE(ENDPOINT_HALT), pyusb's `clear_halt`), as a USB halt does. Known
commands whose other bytes differ from the recording are answered, with a warning in
the log. A new command discards unread reply data of the previous one. An IN transfer
with nothing to read waits (NAK) until the host's timeout unlinks it. An IN transfer
shorter than the pending message gets the first part when its length is a multiple of
64 (the rest stays for the next read), otherwise it fails with EOVERFLOW. The
interrupt endpoint 0x81 never has data. Control requests: GET_DESCRIPTOR (device,
configuration; strings and others STALL, as the recorded sensor gives none),
GET/SET_CONFIGURATION (1 is active from the start; setting it resets the exchange
and clears halts), GET_STATUS, CLEAR/SET_FEATURE(ENDPOINT_HALT), GET/SET_INTERFACE
(0/0 only); vendor and class requests STALL.

Frames: a capture serves the next queued 256x180 8-bit frame (a frame served once
is dequeued); with the queue empty it serves the "current finger", a swappable frame
source (a callable returning 46080 bytes, see hil.finger_frames): the `--frame`
image (several `--frame`s: one after the other, in turn), else `--pattern` (default
`gradient`). That is with a finger on the sensor; with none (`finger off`, the queue
empty) a capture serves the empty glass, as the real sensor does: a light, near-uniform
frame with a mild vignette, pixel noise and a few dark specks (hil.finger_frames.empty_glass,
after the real frame's background). The sensor's defects (`fault dirty`, `dead-rows`,
`stuck-columns`) mark every frame it serves, queued, finger or glass.

Control channel: TCP on 127.0.0.1, one command per line (UTF-8), one reply line per
command, `ok [DETAIL]` or `err REASON`:

    queue PATH                 queue a PNG (256x180, grey, or 3 equal channels)
    queue-pattern NAME         queue a test pattern (gradient, checker, stripes, rows, blank)
    current PATH               the current finger becomes this PNG
    current-pattern NAME       the current finger becomes this pattern
    condition NAME [SEED]      the current finger becomes factory(SEED) of a condition
                               in the table it was given: the synthetic fingers of
                               hil.synthetic_finger (good, light, wet, dry, partial,
                               off_center, smudged, dirty_sensor, no_finger), SEED
                               picks the finger (default 1)
    finger on|off              a finger is on the sensor, or not
    unplug                     the device vanishes: open connections drop, it is
                               no longer listed or importable
    replug                     it comes back (a new device number, a fresh device)
    fault unplug-mid-frame [N] next capture: the device vanishes after N image
                               packets (default 45) and stays unplugged until replug
    fault stall                the next command gets no reply at all
    fault ep-stall             the next IN transfer on 0x83 STALLs (EPIPE); the
                               endpoint stays halted until the host clears it
    fault bad-header           next capture: the first image packet is cut to 17 bytes
                               and its header corrupted (80 2e ...); the other 89
                               follow as usual
    fault never-finger         check finger answers "no finger" until fault clear
    fault dirty                the glass is dirty: a few dark blotches of residue and a
                               faint latent print on every frame, until fault clear
    fault dead-rows [N]        N rows (default 1, up to 16, spread evenly) read black
    fault stuck-columns [N]    N columns (default 1, up to 16, spread evenly) hold one
                               grey value whatever lies on them
    fault clear                disarm every fault and clear endpoint halts
    status                     ok {JSON: plugged, devnum, finger, queue, served,
                               commands {check_finger, pre_capture, capture, unknown},
                               commands_total, faults, halted, connections, current}
    reset                      back to the start state (queue emptied, faults cleared,
                               counters zeroed, finger on, plugged, the initial
                               current finger)
    help                       the command names
    quit                       reply `ok bye` and exit

Faults are instructions to the simulator, not device state: they survive unplug and
replug. "served" counts captures answered with a frame (the frame is dequeued when the
capture command arrives, even if a fault then cuts it short).

The USB/IP side (device lists, imports, descriptors, URBs, unlinks) is
hil.usbip_device's UsbipServer; NB1010Sim is the device it exports.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import struct
import sys
import threading
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from usbip import core as usbip_core

from hil.control_channel import ControlChannel
from hil.finger_frames import (
    DEFAULT_FINGER_SEED,
    FRAME_BYTES,
    HEIGHT,
    PATTERNS,
    WIDTH,
    Condition,
    FrameSource,
    as_frame,
    empty_glass,
    fixed_source,
    load_frame,
    make_pattern,
    rotating_source,
    synthetic_fingers,
    with_dead_rows,
    with_dirt,
    with_stuck_columns,
)
from hil.usbip_device import Connection, UsbipServer, fail

log = logging.getLogger("nb1010_sim")

# ---- the real sensor, transcribed from ../shared/fixtures/nb1010/device --------------
VENDOR_ID = 0x298D
PRODUCT_ID = 0x1010
DEVICE_DESCRIPTOR = bytes.fromhex("12010002000000408d291010010001020001")
CONFIG_DESCRIPTOR = bytes.fromhex(
    "09022700010100a032"  # configuration 1, 39 bytes, remote wakeup, 100 mA
    "090400000300000000"  # interface 0, 3 endpoints, class 00/00/00
    "07058103400005"  # interrupt IN 0x81, 64 bytes, interval 5
    "07050202400000"  # bulk OUT 0x02, 64 bytes
    "07058302400000"  # bulk IN 0x83, 64 bytes
)
CONFIGURATION_VALUE = 1
EP_OUT, EP_IN, EP_INTERRUPT = 0x02, 0x83, 0x81
MAX_PACKET = 64

ROWS_PER_PACKET = 2
IMAGE_PACKETS = HEIGHT // ROWS_PER_PACKET  # 90
PACKET_HEADER_LEN = 25
PACKET_LEN = PACKET_HEADER_LEN + ROWS_PER_PACKET * WIDTH + 3  # 540
REPLY_LEN = 16

CMD_CHECK_FINGER, CMD_PRE_CAPTURE, CMD_CAPTURE = 0x38, 0x0D, 0x12
REPLY_FINGER, REPLY_OK, IMAGE_DATA = 0x37, 0x20, 0x21
COVERAGE_PRESENT, COVERAGE_ABSENT = 0xF7, 0x00
CAPTURE_REPLY_BYTE12 = 0x03
# The commands as recorded; the tag (byte 2) is echoed whatever it is.
RECORDED_COMMANDS = {
    CMD_CHECK_FINGER: bytes.fromhex("8038010008000000"),
    CMD_PRE_CAPTURE: bytes.fromhex("800d03000c00000000040000"),
    CMD_CAPTURE: bytes.fromhex("8012040020000000020000000000000000000000000000000000000020000000"),
}
COMMAND_NAMES = {CMD_CHECK_FINGER: "check_finger", CMD_PRE_CAPTURE: "pre_capture", CMD_CAPTURE: "capture"}
DEFAULT_UNPLUG_AFTER = 45
MAX_BROKEN_LINES = 16  # dead rows or stuck columns a fault may break

_EPIPE, _EOVERFLOW = -errno.EPIPE, -errno.EOVERFLOW


# ---- the byte protocol ----------------------------------------------------------------
def reply(code: int, tag: int, byte12: int = 0) -> bytes:
    """A 16-byte reply: 80 CODE TAG 00, length 16 (u32le), zeros, byte 12 = byte12."""
    out = bytearray(REPLY_LEN)
    out[0:4] = bytes((0x80, code, tag, 0))
    out[4:8] = struct.pack("<I", REPLY_LEN)
    out[12] = byte12
    return bytes(out)


def image_packets(frame: bytes) -> list[bytes]:
    """The 90 IN transfers that carry a frame, headers exactly as the real sensor's."""
    if len(frame) != FRAME_BYTES:
        raise ValueError(f"a frame is {FRAME_BYTES} bytes, got {len(frame)}")
    packets = []
    row_bytes = ROWS_PER_PACKET * WIDTH
    for i in range(IMAGE_PACKETS):
        more = 1 if i < IMAGE_PACKETS - 1 else 0
        header = (
            bytes((0x80, IMAGE_DATA, 0, 0))
            + struct.pack("<III", PACKET_LEN, 0, more)
            + struct.pack("<I", ROWS_PER_PACKET * i + 1)
            + bytes((0, 1, 0, 0, 1))
        )
        packets.append(header + frame[i * row_bytes : (i + 1) * row_bytes] + b"\0\0\0")
    return packets


def bad_header_packet(frame: bytes) -> bytes:
    """The first image packet with its type byte corrupted, cut to 17 bytes."""
    first = image_packets(frame)[0]
    return bytes((0x80, 0x2E)) + first[2:17]


def classify(data: bytes) -> int | None:
    """The command byte of a well-formed known command, else None."""
    if len(data) < 8 or data[0] != 0x80:
        return None
    if struct.unpack_from("<I", data, 4)[0] != len(data):
        return None
    recorded = RECORDED_COMMANDS.get(data[1])
    if recorded is None or len(recorded) != len(data):
        return None
    return data[1]


# ---- the simulated device -------------------------------------------------------------
_UNPLUG = object()  # in the IN queue: the device vanishes when a transfer reaches it


class NB1010Sim:
    """The sensor's state, the world around it (finger, frames) and the armed faults.

    It is the hil.usbip_device.UsbDevice that UsbipServer exports.
    """

    busid = "1-1"
    speed = usbip_core.SPEED_FULL
    device_descriptor = DEVICE_DESCRIPTOR
    config_descriptor = CONFIG_DESCRIPTOR

    def __init__(self, current: FrameSource, current_name: str) -> None:
        self.lock = threading.RLock()
        self._initial = (current, current_name)
        self.current, self.current_name = current, current_name
        self.glass = as_frame(empty_glass())  # what a capture serves with no finger on it
        self.queue: deque[bytes] = deque()
        self.finger = True
        self.plugged = True
        self.devnum = 2
        self.frames_served = 0
        self.commands: Counter[str] = Counter()
        self.connections: set[Connection] = set()
        self._reset_faults()
        self._reset_device()

    # -- state --
    def _reset_faults(self) -> None:
        self.fault_stall = False
        self.fault_ep_stall = False
        self.fault_bad_header = False
        self.fault_never_finger = False
        self.unplug_after: int | None = None
        # The sensor's own defects: every frame served shows them.
        self.fault_dirty = False
        self.dead_rows = 0
        self.stuck_columns = 0

    def _reset_device(self) -> None:
        self.configuration = CONFIGURATION_VALUE
        self.halted: set[int] = set()
        self.in_data: deque[Any] = deque()
        self.parked: list[tuple[Connection, usbip_core.Urb]] = []

    def set_current(self, source: FrameSource, name: str) -> None:
        """Swap the current finger's frame source (used when the queue is empty)."""
        with self.lock:
            self.current, self.current_name = source, name

    def queue_frame(self, frame: Any) -> int:
        frame = as_frame(frame)
        with self.lock:
            self.queue.append(frame)
            return len(self.queue)

    def next_frame(self) -> bytes:
        with self.lock:
            if self.queue:
                frame = self.queue.popleft()
            else:
                frame = as_frame(self.current()) if self.finger else self.glass
            self.frames_served += 1
            return self._with_defects(frame)

    def _with_defects(self, frame: bytes) -> bytes:
        if not (self.fault_dirty or self.dead_rows or self.stuck_columns):
            return frame
        image = np.frombuffer(frame, np.uint8).reshape(HEIGHT, WIDTH)
        if self.fault_dirty:
            image = with_dirt(image)
        if self.dead_rows:
            image = with_dead_rows(image, self.dead_rows)
        if self.stuck_columns:
            image = with_stuck_columns(image, self.stuck_columns)
        return as_frame(image)

    def faults(self) -> list[str]:
        armed = []
        if self.unplug_after is not None:
            armed.append(f"unplug-mid-frame {self.unplug_after}")
        for flag, name in (
            (self.fault_stall, "stall"),
            (self.fault_ep_stall, "ep-stall"),
            (self.fault_bad_header, "bad-header"),
            (self.fault_never_finger, "never-finger"),
            (self.fault_dirty, "dirty"),
        ):
            if flag:
                armed.append(name)
        if self.dead_rows:
            armed.append(f"dead-rows {self.dead_rows}")
        if self.stuck_columns:
            armed.append(f"stuck-columns {self.stuck_columns}")
        return armed

    def status(self) -> dict[str, Any]:
        with self.lock:
            commands = {
                name: self.commands[name] for name in ("check_finger", "pre_capture", "capture", "unknown")
            }
            return {
                "plugged": self.plugged,
                "devnum": self.devnum,
                "finger": self.finger,
                "queue": len(self.queue),
                "served": self.frames_served,
                "commands": commands,
                "commands_total": sum(commands.values()),
                "faults": self.faults(),
                "halted": [f"0x{ep:02x}" for ep in sorted(self.halted)],
                "connections": len(self.connections),
                "current": self.current_name,
            }

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.finger = True
            self.frames_served = 0
            self.commands.clear()
            self.current, self.current_name = self._initial
            self._reset_faults()
            if self.plugged:
                self._reset_device()
            else:
                self.replug()

    # -- plugging --
    def address(self) -> int | None:
        with self.lock:
            return self.devnum if self.plugged else None

    def attach(self, conn: Connection, devnum: int) -> bool:
        """Register an imported connection; False if the device went away meanwhile."""
        with self.lock:
            if not self.plugged or devnum != self.devnum:
                return False
            self.connections.add(conn)
            return True

    def detach(self, conn: Connection) -> None:
        with self.lock:
            self.connections.discard(conn)
            self.parked = [(c, u) for c, u in self.parked if c is not conn]

    def unplug(self, why: str = "unplug") -> bool:
        with self.lock:
            if not self.plugged:
                return False
            self.plugged = False
            connections, self.connections = self.connections, set()
            self._reset_device()
        log.info("unplugged (%s); dropping %d connection(s)", why, len(connections))
        for conn in connections:
            conn.drop()
        return True

    def replug(self) -> int:
        with self.lock:
            if not self.plugged:
                self.plugged = True
                self.devnum = self.devnum % 126 + 2  # a new address, 2..127
                self._reset_device()
                log.info("replugged as devnum %d", self.devnum)
            return self.devnum

    # -- URBs --
    def transfer(self, conn: Connection, urb: usbip_core.Urb) -> usbip_core.Urb | None:
        """Answer one bulk or interrupt URB now (the URB), or later / never (None)."""
        completions: list[tuple[Connection, usbip_core.Urb]] = []
        with self.lock:
            if urb.ep == EP_OUT & 0x0F and urb.direction == usbip_core.OUT:
                result = self._command(urb, completions)
            elif urb.ep == EP_IN & 0x0F and urb.direction == usbip_core.IN:
                result = self._bulk_in(conn, urb)
            elif urb.ep == EP_INTERRUPT & 0x0F and urb.direction == usbip_core.IN:
                self.parked.append((conn, urb))  # never any data: NAK until unlinked
                result = None
            else:
                result = fail(urb, _EPIPE)
        for other, done in completions:
            other.send(done)
        return result

    def unlink(self, conn: Connection, seqnum: int) -> bool:
        with self.lock:
            for i, (c, u) in enumerate(self.parked):
                if c is conn and u.seqnum == seqnum:
                    del self.parked[i]
                    return True
        return False

    def control(self, setup: usbip_core.Setup) -> bytes | None:
        """The standard requests the recorded sensor answers; vendor and class requests STALL."""
        recipient, request = setup.recipient, setup.bRequest
        if setup.type != usbip_core.STANDARD:
            return None
        with self.lock:
            if request == 0x08 and setup.direction == usbip_core.IN:  # GET_CONFIGURATION
                return bytes((self.configuration,))
            if request == 0x09 and recipient == 0:  # SET_CONFIGURATION
                if setup.wValue not in (0, CONFIGURATION_VALUE):
                    return None
                self._reset_device()
                self.configuration = setup.wValue
                return b""
            if request == 0x00 and setup.direction == usbip_core.IN:  # GET_STATUS
                halted = recipient == 2 and (setup.wIndex & 0xFF) in self.halted
                return b"\x01\x00" if halted else b"\x00\x00"
            if request in (0x01, 0x03):  # CLEAR_FEATURE / SET_FEATURE
                if recipient == 2 and setup.wValue == 0:  # ENDPOINT_HALT
                    ep = setup.wIndex & 0xFF
                    if ep not in (EP_OUT, EP_IN, EP_INTERRUPT):
                        return None
                    (self.halted.discard if request == 0x01 else self.halted.add)(ep)
                    log.info("%s halt on 0x%02x", "cleared" if request == 0x01 else "set", ep)
                    return b""
                return b"" if recipient == 0 else None  # DEVICE_REMOTE_WAKEUP
            if request == 0x0A and setup.direction == usbip_core.IN:  # GET_INTERFACE
                return b"\x00" if setup.wIndex == 0 else None
            if request == 0x0B and setup.wIndex == 0 and setup.wValue == 0:  # SET_INTERFACE
                self.halted.clear()
                return b""
        return None

    def _command(
        self, urb: usbip_core.Urb, completions: list[tuple[Connection, usbip_core.Urb]]
    ) -> usbip_core.Urb:
        if self.configuration == 0 or EP_OUT in self.halted:
            return fail(urb, _EPIPE)
        data = bytes(urb.buffer[: urb.length])
        command = classify(data)
        self.commands[COMMAND_NAMES.get(command or -1, "unknown")] += 1
        if command is None:
            log.warning("unknown command %s: STALL, 0x02 halted", data.hex())
            self.halted.add(EP_OUT)
            return fail(urb, _EPIPE)
        recorded = RECORDED_COMMANDS[command]
        if data[:2] + data[3:] != recorded[:2] + recorded[3:]:
            log.warning("%s differs from the recorded command: %s", COMMAND_NAMES[command], data.hex())
        self.in_data.clear()  # a new exchange: unread replies of the last one are gone
        tag = data[2]
        if self.fault_stall:
            self.fault_stall = False
            log.info("fault stall: no reply to %s", COMMAND_NAMES[command])
        elif command == CMD_CHECK_FINGER:
            present = self.finger and not self.fault_never_finger
            coverage = COVERAGE_PRESENT if present else COVERAGE_ABSENT
            self.in_data.append(reply(REPLY_FINGER, tag, coverage))
        elif command == CMD_PRE_CAPTURE:
            self.in_data.append(reply(REPLY_OK, tag))
        else:
            frame = self.next_frame()
            self.in_data.append(reply(REPLY_OK, tag, CAPTURE_REPLY_BYTE12))
            if self.fault_bad_header:
                self.fault_bad_header = False
                self.in_data.append(bad_header_packet(frame))
                self.in_data.extend(image_packets(frame)[1:])
                log.info("fault bad-header: image packet 0 corrupted and short")
            elif self.unplug_after is not None:
                n, self.unplug_after = self.unplug_after, None
                self.in_data.extend(image_packets(frame)[:n])
                self.in_data.append(_UNPLUG)
                log.info("fault unplug-mid-frame: vanishing after %d image packets", n)
            else:
                self.in_data.extend(image_packets(frame))
        urb.buffer, urb.actual, urb.status = b"", len(data), 0
        # Hand new data to IN transfers that were already waiting for it.
        still = []
        for conn, waiting in self.parked:
            if waiting.ep == EP_IN & 0x0F and self.in_data and self.in_data[0] is not _UNPLUG:
                self._deliver(waiting)
                completions.append((conn, waiting))
            else:
                still.append((conn, waiting))
        self.parked = still
        return urb

    def _bulk_in(self, conn: Connection, urb: usbip_core.Urb) -> usbip_core.Urb | None:
        if self.configuration == 0 or EP_IN in self.halted:
            return fail(urb, _EPIPE)
        if self.fault_ep_stall:
            self.fault_ep_stall = False
            self.halted.add(EP_IN)
            log.info("fault ep-stall: 0x83 STALLs and stays halted until cleared")
            return fail(urb, _EPIPE)
        if not self.in_data:
            self.parked.append((conn, urb))
            return None
        if self.in_data[0] is _UNPLUG:
            self.unplug("fault unplug-mid-frame")  # drops this connection too: no reply
            return None
        return self._deliver(urb)

    def _deliver(self, urb: usbip_core.Urb) -> usbip_core.Urb:
        message = self.in_data[0]
        want = urb.length
        if want >= len(message):
            self.in_data.popleft()
            chunk = message
        elif want > 0 and want % MAX_PACKET == 0:
            chunk, self.in_data[0] = message[:want], message[want:]
        else:
            self.in_data.popleft()
            return fail(urb, _EOVERFLOW)
        urb.buffer, urb.actual, urb.status = chunk, len(chunk), 0
        return urb


# ---- the control channel ------------------------------------------------------------
class ControlServer(ControlChannel):
    """The line protocol on 127.0.0.1 that steers the simulator (see the module doc)."""

    def __init__(
        self, sim: NB1010Sim, port: int, stop: threading.Event, conditions: Mapping[str, Condition]
    ) -> None:
        super().__init__(port, stop)
        self.sim = sim
        self.conditions = conditions  # what `condition NAME` can name

    def _cmd_queue(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError("usage: queue PATH")
        return f"ok queued {self.sim.queue_frame(load_frame(args[0]))}"

    def _cmd_queue_pattern(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError("usage: queue-pattern NAME")
        return f"ok queued {self.sim.queue_frame(make_pattern(args[0]))}"

    def _cmd_current(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError("usage: current PATH")
        self.sim.set_current(fixed_source(load_frame(args[0])), f"file {args[0]}")
        return "ok"

    def _cmd_current_pattern(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError("usage: current-pattern NAME")
        self.sim.set_current(fixed_source(make_pattern(args[0])), f"pattern {args[0]}")
        return "ok"

    def _cmd_condition(self, args: list[str]) -> str:
        if len(args) not in (1, 2):
            raise ValueError("usage: condition NAME [SEED]")
        factory = self.conditions.get(args[0])
        if factory is None:
            known = ", ".join(sorted(self.conditions)) or "none registered"
            return f"err unknown condition '{args[0]}' ({known})"
        seed = int(args[1]) if len(args) == 2 else None
        self.sim.set_current(factory(seed), f"condition {' '.join(args)}")
        return "ok"

    def _cmd_finger(self, args: list[str]) -> str:
        if args not in (["on"], ["off"]):
            raise ValueError("usage: finger on|off")
        with self.sim.lock:
            self.sim.finger = args[0] == "on"
        return f"ok finger {args[0]}"

    def _cmd_unplug(self, args: list[str]) -> str:
        return "ok unplugged" if self.sim.unplug("control channel") else "ok already unplugged"

    def _cmd_replug(self, args: list[str]) -> str:
        return f"ok plugged devnum={self.sim.replug()}"

    def _cmd_fault(self, args: list[str]) -> str:
        usage = (
            "usage: fault unplug-mid-frame [N] | stall | ep-stall | bad-header | never-finger | dirty"
            " | dead-rows [N] | stuck-columns [N] | clear"
        )
        if not args:
            raise ValueError(usage)
        kind, rest = args[0], args[1:]
        sim = self.sim
        with sim.lock:
            if kind == "unplug-mid-frame" and len(rest) <= 1:
                n = int(rest[0]) if rest else DEFAULT_UNPLUG_AFTER
                if not 0 <= n < IMAGE_PACKETS:
                    raise ValueError(f"N must be 0..{IMAGE_PACKETS - 1}")
                sim.unplug_after = n
            elif kind in ("dead-rows", "stuck-columns") and len(rest) <= 1:
                n = int(rest[0]) if rest else 1
                if not 1 <= n <= MAX_BROKEN_LINES:
                    raise ValueError(f"N must be 1..{MAX_BROKEN_LINES}")
                if kind == "dead-rows":
                    sim.dead_rows = n
                else:
                    sim.stuck_columns = n
            elif rest:
                raise ValueError(usage)
            elif kind == "stall":
                sim.fault_stall = True
            elif kind == "ep-stall":
                sim.fault_ep_stall = True
            elif kind == "bad-header":
                sim.fault_bad_header = True
            elif kind == "never-finger":
                sim.fault_never_finger = True
            elif kind == "dirty":
                sim.fault_dirty = True
            elif kind == "clear":
                sim._reset_faults()
                sim.halted.clear()
            else:
                raise ValueError(usage)
            armed = sim.faults()
        return "ok faults: " + (", ".join(armed) or "none")

    def _cmd_status(self, args: list[str]) -> str:
        return "ok " + json.dumps(self.sim.status(), separators=(",", ":"))

    def _cmd_reset(self, args: list[str]) -> str:
        self.sim.reset()
        return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.nb1010_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--usbip-port", type=int, default=0, help="USB/IP port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="control channel port (0: a free one)")
    parser.add_argument(
        "--frame",
        action="append",
        default=[],
        metavar="PATH",
        help="PNG of the current finger (repeat: served in turn)",
    )
    parser.add_argument(
        "--pattern",
        default="gradient",
        choices=PATTERNS,
        help="current finger when no --frame is given (default gradient)",
    )
    parser.add_argument(
        "--condition",
        metavar="NAME",
        help="current finger: a synthetic finger in this condition (e.g. good, light)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_FINGER_SEED, help="which synthetic finger")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every control STALL")
    args = parser.parse_args(argv)
    conditions = synthetic_fingers()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="nb1010_sim: %(message)s",
    )
    try:
        if args.condition:
            if args.condition not in conditions:
                raise ValueError(f"unknown condition '{args.condition}' ({', '.join(conditions)})")
            source = conditions[args.condition](args.seed)
            name = f"condition {args.condition} {args.seed}"
        elif args.frame:
            frames = [load_frame(path) for path in args.frame]
            source = fixed_source(frames[0]) if len(frames) == 1 else rotating_source(frames)
            name = "file " + " ".join(args.frame)
        else:
            source, name = fixed_source(make_pattern(args.pattern)), f"pattern {args.pattern}"
    except ValueError as exc:
        parser.error(str(exc))
    sim = NB1010Sim(source, name)
    stop = threading.Event()
    try:
        usbip_server = UsbipServer(sim, args.usbip_port)
        control = ControlServer(sim, args.control_port, stop, conditions)
    except OSError as exc:
        print(f"nb1010_sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    usbip_server.start()
    control.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"READY usbip=127.0.0.1:{usbip_server.port} control=127.0.0.1:{control.port}", flush=True)
    log.info("serving %04x:%04x, current finger: %s", VENDOR_ID, PRODUCT_ID, name)
    stop.wait()
    log.info("stopping")
    usbip_server.close()  # unplugs the sensor: every import drops
    control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
