"""The NB-1010 codec on hand-made replies, and the driver's command order over a fake link."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from kitd.capture.fingerprint import capture_raw_fingerprint
from kitd.drivers import nb1010
from kitd.errors import DeviceTimeout, NoFinger, ProtocolError


def reply(code: int, tag: int, coverage: int = 0) -> bytes:
    body = bytearray(16)
    body[0], body[1], body[2], body[4] = 0x80, code, tag, 0x10
    body[12] = coverage
    return bytes(body)


def image_packet(index: int, rows: bytes, *, last: bool = False) -> bytes:
    header = bytearray(25)
    header[0], header[1] = 0x80, 0x21
    struct.pack_into("<I", header, 4, 540)
    header[12] = 0 if last else 1
    struct.pack_into("<I", header, 16, index * 2 + 1)
    header[21], header[24] = 0x01, 0x01
    return bytes(header) + rows + bytes(3)


def frame_packets(frame: np.ndarray) -> list[bytes]:
    return [image_packet(i, frame[2 * i : 2 * i + 2].tobytes(), last=i == 89) for i in range(90)]


class FakeLink:
    """In-process stand-in for the USB link: records writes, serves scripted reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = list(reads)
        self.writes: list[bytes] = []

    def write(self, data: bytes, what: str = "") -> None:
        self.writes.append(bytes(data))

    def read(self, length: int, what: str = "", timeout_ms: int | None = None) -> bytes:
        if not self.reads:
            raise DeviceTimeout(f"{what}: nothing to read")  # as a device with nothing to send
        data = self.reads.pop(0)
        assert len(data) <= length
        return data


def test_commands_are_the_real_sensors_bytes() -> None:
    assert nb1010.CHECK_FINGER_COMMAND.hex() == "8038010008000000"
    assert nb1010.PRE_CAPTURE_COMMAND.hex() == "800d03000c00000000040000"
    assert len(nb1010.CAPTURE_COMMAND) == 32
    assert nb1010.CAPTURE_COMMAND[:9].hex() == "801204002000000002"
    assert nb1010.CAPTURE_COMMAND[28] == 0x20
    assert nb1010.CAPTURE_COMMAND[9:28] == bytes(19)


def test_finger_coverage_threshold() -> None:
    assert nb1010.finger_coverage(reply(0x37, 0x01, 0xF7)) == 0xF7
    assert nb1010.is_finger_present(0x31)
    assert not nb1010.is_finger_present(0x30)


def test_frame_assembly_puts_rows_top_to_bottom() -> None:
    frame = (np.arange(180 * 256) % 251).astype(np.uint8).reshape(180, 256)
    assert np.array_equal(nb1010.assemble_frame(frame_packets(frame)), frame)


def test_capture_sends_commands_in_order_after_a_finger_arrives() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (180, 256), dtype=np.uint8)
    link = FakeLink(
        [reply(0x37, 1, 0x00), reply(0x37, 1, 0x10), reply(0x37, 1, 0xF7), reply(0x20, 3), reply(0x20, 4)]
        + frame_packets(frame)
    )
    got = capture_raw_fingerprint(nb1010.NB1010Reader(link), timeout_s=5, poll_interval_s=0)
    assert np.array_equal(got, frame)
    assert link.writes == [nb1010.CHECK_FINGER_COMMAND] * 3 + [
        nb1010.PRE_CAPTURE_COMMAND,
        nb1010.CAPTURE_COMMAND,
    ]
    assert link.reads == []


def test_no_finger_within_timeout() -> None:
    link = FakeLink([reply(0x37, 1, 0)] * 1000)
    with pytest.raises(NoFinger):
        capture_raw_fingerprint(nb1010.NB1010Reader(link), timeout_s=0.05, poll_interval_s=0.01)
    assert set(link.writes) == {nb1010.CHECK_FINGER_COMMAND}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (reply(0x37, 1, 0xF7)[:15], "15 bytes"),
        (reply(0x37, 1, 0xF7) + b"\0", "17 bytes"),
        (b"\x81" + reply(0x37, 1, 0xF7)[1:], "starts 0x81"),
        (reply(0x20, 1, 0xF7), "reply code 0x20"),
        (reply(0x37, 2, 0xF7), "tag 0x02"),
    ],
)
def test_malformed_finger_reply(bad: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        nb1010.finger_coverage(bad)


@pytest.mark.parametrize("command", [nb1010.PRE_CAPTURE_COMMAND, nb1010.CAPTURE_COMMAND])
def test_malformed_ack(command: bytes) -> None:
    nb1010.parse_reply(command, reply(0x20, command[2]))
    with pytest.raises(ProtocolError, match="reply code"):
        nb1010.parse_reply(command, reply(0x37, command[2]))
    with pytest.raises(ProtocolError, match="bytes"):
        nb1010.parse_reply(command, b"")


def test_malformed_image_packets() -> None:
    frame = np.zeros((180, 256), np.uint8)
    good = frame_packets(frame)
    cases = {
        "short image packet": (good[:5] + [good[5][:300]] + good[6:], "300 bytes"),
        "wrong lead byte": (good[:3] + [b"\x00" + good[3][1:]] + good[4:], "header starts"),
        "wrong packet code": (good[:3] + [good[3][:1] + b"\x20" + good[3][2:]] + good[4:], "header starts"),
        "wrong length field": (
            [good[0][:4] + struct.pack("<I", 512) + good[0][8:]] + good[1:],
            "declares 512",
        ),
        "out of order": ([good[1], good[0]] + good[2:], "names row 3"),
        "missing packet": (good[:-1], "89 image packets"),
    }
    for packets, message in cases.values():
        with pytest.raises(ProtocolError, match=message):
            nb1010.assemble_frame(packets)


def test_capture_with_short_image_packet_raises_protocol_error() -> None:
    frame = np.zeros((180, 256), np.uint8)
    packets = frame_packets(frame)
    packets[40] = packets[40][:100]
    link = FakeLink([reply(0x20, 3), reply(0x20, 4), *packets, b"stale"])
    with pytest.raises(ProtocolError, match="image packet 40: 100 bytes"):
        nb1010.NB1010Reader(link).capture_frame()
    assert link.reads == []  # what was left of the broken frame was drained


def test_capture_that_stops_mid_frame_times_out_and_drains() -> None:
    packets = frame_packets(np.zeros((180, 256), np.uint8))
    link = FakeLink([reply(0x20, 3), reply(0x20, 4), *packets[:30]])
    with pytest.raises(DeviceTimeout, match="image packet 30"):
        nb1010.NB1010Reader(link).capture_frame()
