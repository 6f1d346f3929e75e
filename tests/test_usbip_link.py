"""The USB/IP link end to end: the simulated NB-1010 runs as its own process and is
reached with plain pyusb through kitd.drivers.usbip_backend (no kitd driver involved).

Checks descriptors, the capture path byte for byte, the control channel, and that every
injected fault reaches pyusb as the errno libusb would give (110, 32, 19).
"""

from __future__ import annotations

import errno
import json
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import usb.core
import usb.util

from hil.finger_frames import make_pattern
from hil.nb1010_sim import (
    DEVICE_DESCRIPTOR,
    IMAGE_PACKETS,
    PACKET_HEADER_LEN,
    PACKET_LEN,
)
from kitd.drivers.usbip_address import parse_address
from kitd.drivers.usbip_backend import get_backend

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "nb1010"
REAL_FRAME = FIXTURES / "capture.png"

CHECK_FINGER = bytes.fromhex("8038010008000000")
PRE_CAPTURE = bytes.fromhex("800d03000c00000000040000")
CAPTURE = bytes.fromhex("8012040020000000020000000000000000000000000000000000000020000000")
TIMEOUT_MS = 500
SHORT_MS = 50


class Control:
    """A client of the simulator's line protocol."""

    def __init__(self, address: str) -> None:
        host, port = parse_address(address)
        self.sock = socket.create_connection((host, port), timeout=5)
        self.stream = self.sock.makefile("rwb")

    def __call__(self, line: str) -> str:
        self.stream.write(line.encode() + b"\n")
        self.stream.flush()
        return self.stream.readline().decode().rstrip("\n")

    def ok(self, line: str) -> str:
        answer = self(line)
        assert answer.startswith("ok"), f"{line!r} -> {answer!r}"
        return answer

    def status(self) -> dict:
        return json.loads(self.ok("status")[3:])

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


class Sim:
    def __init__(self, proc: subprocess.Popen, usbip: str, control: str, log: Path) -> None:
        self.proc, self.usbip, self.log = proc, usbip, log
        self.ctl = Control(control)
        self.backend = get_backend(usbip)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    log = tmp_path_factory.mktemp("sim") / "nb1010_sim.log"
    args = [sys.executable, "-m", "hil.nb1010_sim", "--usbip-port", "0", "--control-port", "0"]
    if REAL_FRAME.exists():
        args += ["--frame", str(REAL_FRAME)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, cwd=Path(__file__).resolve().parents[1]
        )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline().decode() if ready else ""
        words = line.split()
        assert len(words) == 3 and words[0] == "READY", f"no READY line: {line!r}\n{log.read_text()}"
        usbip = words[1].removeprefix("usbip=")
        control = words[2].removeprefix("control=")
        assert usbip.startswith("127.0.0.1:") and control.startswith("127.0.0.1:")
        s = Sim(proc, usbip, control, log)
        yield s
        assert s.ctl("quit") == "ok bye"
        s.ctl.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def ctl(sim: Sim) -> Control:
    sim.ctl.ok("reset")
    return sim.ctl


def find(sim: Sim) -> usb.core.Device | None:
    return usb.core.find(idVendor=0x298D, idProduct=0x1010, backend=sim.backend)


@pytest.fixture
def dev(sim: Sim, ctl: Control) -> Iterator[usb.core.Device]:
    device = find(sim)
    assert device is not None
    usb.util.claim_interface(device, 0)
    yield device
    usb.util.dispose_resources(device)


def exchange(dev: usb.core.Device, command: bytes, timeout: int = TIMEOUT_MS) -> bytes:
    assert dev.write(0x02, command, timeout) == len(command)
    return bytes(dev.read(0x83, 64, timeout))


def capture(dev: usb.core.Device) -> tuple[bytes, list[bytes]]:
    """The capture reply and the 90 image packets."""
    reply = exchange(dev, CAPTURE)
    packets = [bytes(dev.read(0x83, PACKET_LEN, TIMEOUT_MS)) for _ in range(IMAGE_PACKETS)]
    return reply, packets


def is_image_packet(packet: bytes) -> bool:
    """What a codec accepts: 540 bytes, 80 21, the length field 540."""
    return (
        len(packet) == PACKET_LEN
        and packet[:2] == b"\x80\x21"
        and int.from_bytes(packet[4:8], "little") == PACKET_LEN
    )


def frame_of(packets: list[bytes]) -> np.ndarray:
    assert all(is_image_packet(p) for p in packets)
    rows = b"".join(p[PACKET_HEADER_LEN : PACKET_HEADER_LEN + 512] for p in packets)
    return np.frombuffer(rows, np.uint8).reshape(180, 256)


def usb_errno(excinfo: pytest.ExceptionInfo) -> int:
    return excinfo.value.errno


# ---- descriptors and configuration ---------------------------------------------------
def test_find_sees_the_sensor_with_its_real_descriptors(sim: Sim, dev: usb.core.Device) -> None:
    assert (dev.idVendor, dev.idProduct, dev.bcdDevice) == (0x298D, 0x1010, 0x0001)
    assert dev.bNumConfigurations == 1 and dev.bMaxPacketSize0 == 64
    config = dev.get_active_configuration()
    assert config.bConfigurationValue == 1
    intf = config[(0, 0)]
    endpoints = {ep.bEndpointAddress: ep for ep in intf}
    assert set(endpoints) == {0x81, 0x02, 0x83}
    assert endpoints[0x02].wMaxPacketSize == endpoints[0x83].wMaxPacketSize == 64
    assert usb.util.endpoint_type(endpoints[0x83].bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
    # Control transfers: the raw device descriptor and GET_CONFIGURATION.
    assert bytes(dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18)) == DEVICE_DESCRIPTOR
    assert bytes(dev.ctrl_transfer(0x80, 0x08, 0, 0, 1)) == b"\x01"
    # Like the recorded sensor: no readable strings (pyusb: ValueError "no langid").
    with pytest.raises(ValueError, match="langid"):
        _ = dev.manufacturer


def test_unconfigured_device_is_configured_again(dev: usb.core.Device, ctl: Control) -> None:
    dev.set_configuration(0)
    usb.util.dispose_resources(dev)  # forget the cached configuration
    with pytest.raises(usb.core.USBError, match="Configuration not set"):
        dev.get_active_configuration()
    dev.set_configuration()
    assert dev.get_active_configuration().bConfigurationValue == 1
    assert exchange(dev, CHECK_FINGER)[12] == 0xF7


def test_find_gives_none_for_another_device(sim: Sim, ctl: Control) -> None:
    assert usb.core.find(idVendor=0x1234, idProduct=0x5678, backend=sim.backend) is None
    assert len(list(usb.core.find(find_all=True, backend=sim.backend))) == 1


def test_a_server_that_is_not_there_has_no_devices() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = get_backend(f"127.0.0.1:{port}")
    assert usb.core.find(idVendor=0x298D, idProduct=0x1010, backend=backend) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:", ":3240", "host:http", "h:70000"])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        get_backend(address)


# ---- the capture path ----------------------------------------------------------------
def test_check_finger_and_pre_capture_replies(dev: usb.core.Device, ctl: Control) -> None:
    assert exchange(dev, CHECK_FINGER) == bytes.fromhex("803701001000000000000000f7000000")
    assert exchange(dev, PRE_CAPTURE) == bytes.fromhex("80200300100000000000000000000000")
    ctl.ok("finger off")
    assert exchange(dev, CHECK_FINGER)[12] < 0x30
    ctl.ok("finger on")
    assert exchange(dev, CHECK_FINGER)[12] == 0xF7


@pytest.mark.skipif(not REAL_FRAME.exists(), reason=f"real NB-1010 fixture absent: {REAL_FRAME}")
def test_real_frame_comes_back_byte_for_byte(dev: usb.core.Device, ctl: Control) -> None:
    exchange(dev, CHECK_FINGER)
    exchange(dev, PRE_CAPTURE)
    reply, packets = capture(dev)
    assert reply == bytes.fromhex("80200400100000000000000003000000")
    expected = cv2.imread(str(REAL_FRAME), cv2.IMREAD_UNCHANGED)[:, :, 0]
    assert np.array_equal(frame_of(packets), expected)
    # The headers are the recorded ones: row counter 1, 3, ..., 179; "more" clear at the end.
    assert [int.from_bytes(p[16:20], "little") for p in packets] == list(range(1, 180, 2))
    assert [p[12] for p in packets] == [1] * 89 + [0]


def test_queued_frames_come_back_exactly_then_the_current_finger(
    dev: usb.core.Device, ctl: Control, tmp_path: Path
) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (180, 256), dtype=np.uint8)
    grey = tmp_path / "noise.png"
    assert cv2.imwrite(str(grey), noise)
    rgb = tmp_path / "noise-rgb.png"
    assert cv2.imwrite(str(rgb), np.dstack([noise] * 3))
    assert ctl.ok("queue-pattern checker") == "ok queued 1"
    ctl.ok(f"queue {grey}")
    ctl.ok(f"queue {rgb}")
    ctl.ok("queue-pattern rows")
    assert ctl.status()["queue"] == 4
    checker = np.frombuffer(make_pattern("checker"), np.uint8).reshape(180, 256)
    assert np.array_equal(frame_of(capture(dev)[1]), checker)
    assert np.array_equal(frame_of(capture(dev)[1]), noise)
    assert np.array_equal(frame_of(capture(dev)[1]), noise)
    rows = frame_of(capture(dev)[1])
    assert np.array_equal(rows[:, 0], np.arange(180))
    assert ctl.status()["queue"] == 0
    ctl.ok("current-pattern stripes")
    stripes = np.frombuffer(make_pattern("stripes"), np.uint8).reshape(180, 256)
    assert np.array_equal(frame_of(capture(dev)[1]), stripes)
    assert np.array_equal(frame_of(capture(dev)[1]), stripes)
    assert ctl.status()["served"] == 6


def test_patterns_are_deterministic_and_distinct() -> None:
    frames = {name: make_pattern(name) for name in ("gradient", "checker", "stripes")}
    assert all(len(f) == 256 * 180 for f in frames.values())
    assert len(set(frames.values())) == 3
    assert frames == {name: make_pattern(name) for name in frames}


def test_enumerating_in_one_thread_while_capturing_in_another(
    sim: Sim, dev: usb.core.Device, ctl: Control
) -> None:
    stop = threading.Event()
    seen: list[bool] = []
    failures: list[BaseException] = []

    def poll() -> None:
        try:
            while not stop.is_set():
                seen.append(find(sim) is not None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for _ in range(3):
            ctl.ok("queue-pattern gradient")
            expected = np.frombuffer(make_pattern("gradient"), np.uint8).reshape(180, 256)
            assert np.array_equal(frame_of(capture(dev)[1]), expected)
    finally:
        stop.set()
        poller.join()
    assert not failures and seen and all(seen)


# ---- faults --------------------------------------------------------------------------
def test_stall_is_a_timeout_with_errno_110_and_the_link_recovers(dev: usb.core.Device, ctl: Control) -> None:
    ctl.ok("fault stall")
    dev.write(0x02, CHECK_FINGER, TIMEOUT_MS)
    with pytest.raises(usb.core.USBTimeoutError) as excinfo:
        dev.read(0x83, 64, SHORT_MS)
    assert usb_errno(excinfo) == errno.ETIMEDOUT and excinfo.value.backend_error_code == -7
    # The URB was unlinked; the next exchange is answered normally.
    assert exchange(dev, CHECK_FINGER)[:2] == b"\x80\x37"


def test_reading_with_nothing_to_read_times_out(dev: usb.core.Device, ctl: Control) -> None:
    with pytest.raises(usb.core.USBTimeoutError) as excinfo:
        dev.read(0x83, 64, SHORT_MS)
    assert usb_errno(excinfo) == errno.ETIMEDOUT
    assert exchange(dev, PRE_CAPTURE)[:3] == b"\x80\x20\x03"


def test_ep_stall_is_epipe_until_the_halt_is_cleared(dev: usb.core.Device, ctl: Control) -> None:
    ctl.ok("fault ep-stall")
    dev.write(0x02, CHECK_FINGER, TIMEOUT_MS)
    for _ in range(2):  # a halt stays until the host clears it
        with pytest.raises(usb.core.USBError) as excinfo:
            dev.read(0x83, 64, TIMEOUT_MS)
        assert usb_errno(excinfo) == errno.EPIPE and excinfo.value.backend_error_code == -9
    assert ctl.status()["halted"] == ["0x83"]
    dev.clear_halt(0x83)
    assert bytes(dev.read(0x83, 64, TIMEOUT_MS))[:2] == b"\x80\x37"  # the reply waited
    assert exchange(dev, CHECK_FINGER)[12] == 0xF7


def test_unknown_command_stalls_the_out_endpoint(dev: usb.core.Device, ctl: Control) -> None:
    with pytest.raises(usb.core.USBError) as excinfo:
        dev.write(0x02, bytes.fromhex("8099010008000000"), TIMEOUT_MS)
    assert usb_errno(excinfo) == errno.EPIPE
    assert ctl.status()["commands"]["unknown"] == 1
    dev.clear_halt(0x02)
    assert exchange(dev, CHECK_FINGER)[:2] == b"\x80\x37"


def test_unplug_mid_frame_is_enodev_and_replug_brings_it_back(
    sim: Sim, dev: usb.core.Device, ctl: Control
) -> None:
    ctl.ok("fault unplug-mid-frame 3")
    assert exchange(dev, CAPTURE)[:3] == b"\x80\x20\x04"
    packets = [bytes(dev.read(0x83, PACKET_LEN, TIMEOUT_MS)) for _ in range(3)]
    assert all(is_image_packet(p) for p in packets)
    with pytest.raises(usb.core.USBError) as excinfo:
        dev.read(0x83, PACKET_LEN, TIMEOUT_MS)
    assert usb_errno(excinfo) == errno.ENODEV and excinfo.value.backend_error_code == -4
    with pytest.raises(usb.core.USBError) as excinfo:  # and it stays gone
        dev.write(0x02, CHECK_FINGER, TIMEOUT_MS)
    assert usb_errno(excinfo) == errno.ENODEV
    assert ctl.status()["plugged"] is False
    assert find(sim) is None
    assert ctl.ok("replug").startswith("ok plugged")
    again = find(sim)
    assert again is not None
    try:
        reply, packets = capture(again)
        assert reply[:3] == b"\x80\x20\x04" and frame_of(packets).shape == (180, 256)
    finally:
        usb.util.dispose_resources(again)


def test_unplug_and_replug(sim: Sim, dev: usb.core.Device, ctl: Control) -> None:
    address = dev.address
    assert ctl.ok("unplug") == "ok unplugged"
    assert find(sim) is None
    with pytest.raises(usb.core.USBError) as excinfo:
        exchange(dev, CHECK_FINGER)
    assert usb_errno(excinfo) == errno.ENODEV
    ctl.ok("replug")
    again = find(sim)
    assert again is not None and again.address != address
    # The Device found before the unplug is stale: opening it fails like libusb's.
    usb.util.dispose_resources(dev)
    with pytest.raises(usb.core.USBError) as excinfo:
        exchange(dev, CHECK_FINGER)
    assert usb_errno(excinfo) == errno.ENODEV
    try:
        usb.util.claim_interface(again, 0)
        assert exchange(again, CHECK_FINGER)[12] == 0xF7
    finally:
        usb.util.dispose_resources(again)


def test_bad_header_arrives_as_bytes_a_codec_rejects(dev: usb.core.Device, ctl: Control) -> None:
    ctl.ok("fault bad-header")
    assert exchange(dev, CAPTURE)[:3] == b"\x80\x20\x04"
    packets = [bytes(dev.read(0x83, PACKET_LEN, TIMEOUT_MS)) for _ in range(IMAGE_PACKETS)]
    assert len(packets[0]) < PACKET_HEADER_LEN and not is_image_packet(packets[0])
    assert all(is_image_packet(p) for p in packets[1:])  # the rest of the frame follows
    reply, packets = capture(dev)  # the fault fired once
    assert all(is_image_packet(p) for p in packets)


def test_never_finger_until_fault_clear(dev: usb.core.Device, ctl: Control) -> None:
    ctl.ok("fault never-finger")
    for _ in range(3):
        assert exchange(dev, CHECK_FINGER)[12] < 0x30
    assert "never-finger" in ctl.status()["faults"]
    assert ctl.ok("fault clear") == "ok faults: none"
    assert exchange(dev, CHECK_FINGER)[12] == 0xF7


# ---- the control channel -------------------------------------------------------------
def test_status_reports_state_and_counts(dev: usb.core.Device, ctl: Control) -> None:
    exchange(dev, CHECK_FINGER)
    exchange(dev, PRE_CAPTURE)
    capture(dev)
    ctl.ok("finger off")
    ctl.ok("fault stall")
    status = ctl.status()
    assert status["plugged"] is True and status["finger"] is False
    assert status["commands"] == {"check_finger": 1, "pre_capture": 1, "capture": 1, "unknown": 0}
    assert status["served"] == 1 and status["queue"] == 0 and status["faults"] == ["stall"]
    assert status["connections"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "bogus",
        "finger maybe",
        "queue-pattern nope",
        "queue /nonexistent.png",
        "fault nope",
        "fault unplug-mid-frame 90",
        "condition no-such-condition 3",
    ],
)
def test_bad_control_commands_get_one_err_line(ctl: Control, line: str) -> None:
    answer = ctl(line)
    assert answer.startswith("err ") and "\n" not in answer
    assert ctl.ok("status")  # the channel still works


def test_queue_rejects_frames_of_the_wrong_shape(ctl: Control, tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((10, 10), np.uint8))
    colour = tmp_path / "colour.png"
    cv2.imwrite(
        str(colour), np.dstack([np.zeros((180, 256), np.uint8)] * 2 + [np.full((180, 256), 9, np.uint8)])
    )
    assert ctl(f"queue {small}").startswith("err ")
    assert ctl(f"queue {colour}").startswith("err ")
    assert ctl.status()["queue"] == 0
