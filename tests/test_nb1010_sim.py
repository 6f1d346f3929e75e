"""The simulated NB-1010's parts in-process: byte protocol, frames, the condition hook.

The end-to-end behaviour (a real subprocess reached through pyusb) is in
test_usbip_link.py; these pin the pieces without a process boundary.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import usb.core
import usb.util

from hil.finger_frames import as_frame, fixed_source, make_pattern
from hil.nb1010_sim import (
    CONFIG_DESCRIPTOR,
    DEVICE_DESCRIPTOR,
    ControlServer,
    NB1010Sim,
    bad_header_packet,
    classify,
    image_packets,
    reply,
)
from hil.usbip_device import UsbipServer
from kitd.drivers.usbip_backend import get_backend

CAPTURE = bytes.fromhex("8012040020000000020000000000000000000000000000000000000020000000")


def test_descriptors_are_the_recorded_sensors() -> None:
    # From ../shared/fixtures/nb1010/device, "descriptors=" (device then configuration).
    recorded = bytes.fromhex(
        "12010002000000408D29101001000102000109022700010100A032090400000300000000"
        "070581034000050705020240000007058302400000"
    )
    assert DEVICE_DESCRIPTOR + CONFIG_DESCRIPTOR == recorded


def test_replies_and_packets_have_the_recorded_layout() -> None:
    assert reply(0x37, 0x01, 0xF7) == bytes.fromhex("803701001000000000000000f7000000")
    assert reply(0x20, 0x04, 0x03) == bytes.fromhex("80200400100000000000000003000000")
    packets = image_packets(make_pattern("rows"))
    assert len(packets) == 90 and {len(p) for p in packets} == {540}
    assert packets[0][:25] == bytes.fromhex("802100001c0200000000000001000000010000000001000001")
    assert packets[89][:25] == bytes.fromhex("802100001c0200000000000000000000b30000000001000001")
    assert packets[1][25:537] == bytes([2]) * 256 + bytes([3]) * 256
    bad = bad_header_packet(make_pattern("rows"))
    assert len(bad) == 17 and bad[:2] == b"\x80\x2e"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("8038010008000000", 0x38),
        ("8038070008000000", 0x38),  # another tag is still check finger
        ("800d03000c00000000040000", 0x0D),
        (CAPTURE.hex(), 0x12),
        ("8038010009000000", None),  # length field disagrees
        ("0038010008000000", None),  # no 0x80 lead
        ("8099010008000000", None),  # unknown command
        ("80380100", None),  # too short
    ],
)
def test_classify(command: str, expected: int | None) -> None:
    assert classify(bytes.fromhex(command)) == expected


def test_frames_from_arrays_and_bytes() -> None:
    array = np.arange(180 * 256, dtype=np.uint32).astype(np.uint8).reshape(180, 256)
    assert as_frame(array) == array.tobytes() == as_frame(array.tobytes())
    with pytest.raises(ValueError):
        as_frame(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        as_frame(b"\0" * 100)
    with pytest.raises(ValueError, match="unknown pattern"):
        make_pattern("plaid")


def test_condition_command_swaps_the_current_finger() -> None:
    conditions = {"flat": lambda seed: fixed_source(np.full((180, 256), seed or 0, np.uint8))}
    sim = NB1010Sim(fixed_source(make_pattern("gradient")), "pattern gradient")
    control = ControlServer(sim, 0, threading.Event(), conditions)
    try:
        assert control.execute("condition flat 7") == "ok"
        assert sim.next_frame() == bytes([7]) * (180 * 256)
        assert sim.status()["current"] == "condition flat 7"
        assert control.execute("condition wet 1").startswith("err unknown condition 'wet'")
        assert control.execute("reset") == "ok"
        assert sim.next_frame() == make_pattern("gradient")
    finally:
        control.close()


@pytest.fixture
def broken_sim() -> Iterator[tuple[NB1010Sim, str]]:
    def source() -> bytes:
        raise RuntimeError("generator broke")

    sim = NB1010Sim(source, "broken")
    server = UsbipServer(sim, 0)
    server.start()
    yield sim, f"127.0.0.1:{server.port}"
    server.close()
    sim.unplug("test over")


def test_a_failing_frame_source_is_eio_and_the_device_stays(broken_sim) -> None:
    sim, address = broken_sim
    dev = usb.core.find(idVendor=0x298D, idProduct=0x1010, backend=get_backend(address))
    assert dev is not None
    try:
        with pytest.raises(usb.core.USBError) as excinfo:
            dev.write(0x02, CAPTURE, 500)
        assert excinfo.value.errno == errno.EIO
        dev.write(0x02, bytes.fromhex("8038010008000000"), 500)
        assert bytes(dev.read(0x83, 64, 500))[12] == 0xF7
    finally:
        usb.util.dispose_resources(dev)


def test_no_finger_serves_the_empty_glass_and_the_sensor_faults_mark_every_frame() -> None:
    from kitd.capture.blank_frame import blank_frame_report

    sim = NB1010Sim(fixed_source(make_pattern("gradient")), "pattern gradient")
    control = ControlServer(sim, 0, threading.Event(), {})

    def served() -> np.ndarray:
        return np.frombuffer(sim.next_frame(), np.uint8).reshape(180, 256)

    try:
        assert sim.next_frame() == make_pattern("gradient")  # a finger on the sensor: the current finger
        assert control.execute("finger off") == "ok finger off"
        glass = blank_frame_report(served())
        assert not (glass.damaged or glass.dirty or glass.uneven or glass.dim), glass
        assert control.execute("fault dirty") == "ok faults: dirty"
        assert control.execute("fault dead-rows 2") == "ok faults: dirty, dead-rows 2"
        assert control.execute("fault stuck-columns") == "ok faults: dirty, dead-rows 2, stuck-columns 1"
        report = blank_frame_report(served())
        assert report.dirty and report.dead_rows == (60, 120) and report.stuck_columns == (128,)
        assert sim.status()["faults"] == ["dirty", "dead-rows 2", "stuck-columns 1"]
        assert control.execute("finger on") == "ok finger on"
        assert (served()[60, :100] == 6).all()  # a dead row is dead under a finger too
        assert control.execute("fault dead-rows 17").startswith("err N must be 1..16")
        assert control.execute("fault clear") == "ok faults: none"
        assert sim.next_frame() == make_pattern("gradient")
        control.execute("fault dirty")
        assert control.execute("reset") == "ok" and sim.status()["faults"] == []
    finally:
        control.close()
