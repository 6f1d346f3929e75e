"""NEXT Biometrics NB-1010-U fingerprint sensor (USB 298d:1010): codec and driver.

The codec is pure functions over bytes, facts taken from the real sensor's
traffic: every command starts 0x80, byte 1 is the command, byte 2 a tag the
device echoes (fixed per command in the recording: 01, 03, 04); replies to
commands are 16 bytes; an image arrives as 90 bulk packets of 540 bytes, each a
25-byte header, two 256-pixel rows and 3 padding bytes. The driver
(`NB1010Reader`) runs the codec over a `UsbBulkLink`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from kitd.drivers.facts import DeviceFacts
from kitd.drivers.usb_link import UsbBulkLink, UsbFacts
from kitd.errors import DeviceError, DeviceTimeout, ProtocolError

VENDOR_ID = 0x298D
PRODUCT_ID = 0x1010
MODEL = "NEXT Biometrics NB-1010-U"
ENDPOINT_OUT = 0x02
ENDPOINT_IN = 0x83
INTERFACE = 0
TRANSFER_TIMEOUT_MS = 500

WIDTH = 256
HEIGHT = 180
REPLY_LENGTH = 16
PACKET_LENGTH = 540
PACKET_HEADER = 25
ROWS_PER_PACKET = 2
PACKET_COUNT = HEIGHT // ROWS_PER_PACKET
FINGER_PRESENT_ABOVE = 0x30
DRAIN_TIMEOUT_MS = 50

LEAD = 0x80
CHECK_FINGER = 0x38
PRE_CAPTURE = 0x0D
CAPTURE = 0x12
REPLY_FINGER = 0x37
REPLY_ACK = 0x20
IMAGE_PACKET = 0x21

# The exact bytes the real sensor was sent. The tags are the recording's (a
# counter would break a strict replay of it).
CHECK_FINGER_COMMAND = bytes([LEAD, CHECK_FINGER, 0x01, 0x00, 0x08, 0, 0, 0])
PRE_CAPTURE_COMMAND = bytes([LEAD, PRE_CAPTURE, 0x03, 0x00, 0x0C, 0, 0, 0, 0, 0x04, 0, 0])
CAPTURE_COMMAND = bytes([LEAD, CAPTURE, 0x04, 0x00, 0x20, 0, 0, 0, 0x02] + [0] * 19 + [0x20, 0, 0, 0])

EXPECTED_REPLY = {CHECK_FINGER: REPLY_FINGER, PRE_CAPTURE: REPLY_ACK, CAPTURE: REPLY_ACK}


def parse_reply(command: bytes, reply: bytes) -> bytes:
    """Check a 16-byte reply against the command it answers; return it or raise."""
    name = f"command 0x{command[1]:02x}"
    if len(reply) != REPLY_LENGTH:
        raise ProtocolError(f"NB-1010 {name}: reply of {len(reply)} bytes, expected {REPLY_LENGTH}")
    if reply[0] != LEAD:
        raise ProtocolError(f"NB-1010 {name}: reply starts 0x{reply[0]:02x}, expected 0x80")
    expected = EXPECTED_REPLY.get(command[1])
    if expected is not None and reply[1] != expected:
        raise ProtocolError(f"NB-1010 {name}: reply code 0x{reply[1]:02x}, expected 0x{expected:02x}")
    if reply[2] != command[2]:
        raise ProtocolError(f"NB-1010 {name}: reply tag 0x{reply[2]:02x}, expected 0x{command[2]:02x}")
    return reply


def finger_coverage(reply: bytes) -> int:
    """Finger coverage from a check-finger reply (byte 12)."""
    return parse_reply(CHECK_FINGER_COMMAND, reply)[12]


def is_finger_present(coverage: int) -> bool:
    return coverage > FINGER_PRESENT_ABOVE


def parse_image_packet(index: int, packet: bytes) -> bytes:
    """The two pixel rows carried by image packet `index` (0-based), or ProtocolError."""
    where = f"NB-1010 image packet {index}"
    if len(packet) != PACKET_LENGTH:
        raise ProtocolError(f"{where}: {len(packet)} bytes, expected {PACKET_LENGTH}")
    if packet[0] != LEAD or packet[1] != IMAGE_PACKET:
        raise ProtocolError(f"{where}: header starts {packet[:2].hex()}, expected 8021")
    (declared,) = struct.unpack_from("<I", packet, 4)
    if declared != PACKET_LENGTH:
        raise ProtocolError(f"{where}: header declares {declared} bytes, expected {PACKET_LENGTH}")
    (last_row,) = struct.unpack_from("<I", packet, 16)
    if last_row != index * ROWS_PER_PACKET + 1:
        raise ProtocolError(f"{where}: header names row {last_row}, expected {index * 2 + 1}")
    return packet[PACKET_HEADER : PACKET_HEADER + ROWS_PER_PACKET * WIDTH]


def assemble_frame(packets: Sequence[bytes]) -> np.ndarray:
    """The 180 x 256 8-bit frame from the 90 image packets, top row first."""
    if len(packets) != PACKET_COUNT:
        raise ProtocolError(f"NB-1010 frame: {len(packets)} image packets, expected {PACKET_COUNT}")
    return frame_from_rows([parse_image_packet(i, p) for i, p in enumerate(packets)])


def frame_from_rows(row_pairs: Sequence[bytes]) -> np.ndarray:
    """The frame from the validated row pairs of the 90 packets, in order."""
    return np.frombuffer(b"".join(row_pairs), dtype=np.uint8).reshape(HEIGHT, WIDTH).copy()


class BulkLink(Protocol):
    """What the driver needs from a transport (UsbBulkLink on a kit)."""

    def open(self) -> UsbFacts: ...

    def close(self) -> None: ...

    def is_present(self) -> bool: ...

    def write(self, data: bytes, what: str = ...) -> None: ...

    def read(self, length: int, what: str = ..., timeout_ms: int | None = ...) -> bytes: ...


class NB1010Reader:
    """Drives one NB-1010 over a bulk link: finger polling and frame capture."""

    kind = "fingerprint"
    model = MODEL

    def __init__(self, link: BulkLink, ppi: float = 385.0) -> None:
        self.link = link
        self.ppi = ppi

    @classmethod
    def over_usb(cls, *, serial: str | None, backend: Any, ppi: float) -> NB1010Reader:
        link = UsbBulkLink(
            VENDOR_ID,
            PRODUCT_ID,
            serial=serial,
            backend=backend,
            interface=INTERFACE,
            endpoint_out=ENDPOINT_OUT,
            endpoint_in=ENDPOINT_IN,
            timeout_ms=TRANSFER_TIMEOUT_MS,
        )
        return cls(link, ppi)

    def open(self) -> DeviceFacts:
        usb = self.link.open()
        return DeviceFacts(
            model=MODEL,
            serial=usb.serial,
            firmware=f"{usb.bcd_device >> 8:x}.{usb.bcd_device & 0xFF:02x}",
            detail={
                "usb_id": f"{VENDOR_ID:04x}:{PRODUCT_ID:04x}",
                "usb_bus": usb.bus,
                "usb_address": usb.address,
                "width": WIDTH,
                "height": HEIGHT,
                "ppi": self.ppi,
            },
        )

    def close(self) -> None:
        self.link.close()

    def is_present(self) -> bool:
        return self.link.is_present()

    def command(self, command: bytes) -> bytes:
        self.link.write(command, f"NB-1010 command 0x{command[1]:02x}")
        reply = self.link.read(REPLY_LENGTH, f"NB-1010 reply to 0x{command[1]:02x}")
        return parse_reply(command, reply)

    def finger_coverage(self) -> int:
        return finger_coverage(self.command(CHECK_FINGER_COMMAND))

    def finger_present(self) -> bool:
        return is_finger_present(self.finger_coverage())

    def capture_frame(self) -> np.ndarray:
        """Pre-capture, capture, then read and assemble the 90 image packets."""
        self.command(PRE_CAPTURE_COMMAND)
        self.command(CAPTURE_COMMAND)
        try:
            # Each packet is checked as it arrives: a broken frame fails at once,
            # not after 89 more transfer timeouts.
            row_pairs = [
                parse_image_packet(i, self.link.read(PACKET_LENGTH, f"NB-1010 image packet {i}"))
                for i in range(PACKET_COUNT)
            ]
        except (ProtocolError, DeviceTimeout):
            self.drain()
            raise
        return frame_from_rows(row_pairs)

    def drain(self) -> int:
        """Read and drop what is left of a broken frame, so that it cannot leak into the next one."""
        dropped = 0
        for _ in range(PACKET_COUNT + 1):
            try:
                self.link.read(PACKET_LENGTH, "NB-1010 drain", timeout_ms=DRAIN_TIMEOUT_MS)
            except DeviceError:
                break
            dropped += 1
        return dropped
