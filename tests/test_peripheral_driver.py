"""kitd's peripheral controller driver against the simulated board in its own process, behind a pty:
slots, gauge, illuminator, self-test, an update by MCUboot's test and confirm, and the faults a
USB serial link has (a cut cable, dropped and garbled frames, power lost mid-upload)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from firmware_tools.mcuboot_image import parse_image
from hil.firmware_images import build_image, firmware_body
from hil.rig import SimulatorProcess
from kitd.drivers.peripheral import BatteryReading, PeripheralController, UploadForgotten, kit_version
from kitd.drivers.registry import DriverSettings, make_driver
from kitd.errors import DeviceBusy, DeviceGone, ProtocolError
from kitd.services.unit_checks import check_battery

SIM = "hil.smp_peripheral_sim"


@pytest.fixture
def board(start_simulator: Callable[..., SimulatorProcess], tmp_path: Path) -> SimulatorProcess:
    args = ["--link", str(tmp_path / "acm0"), "--state-dir", str(tmp_path / "flash")]
    return start_simulator(SIM, args + ["--reset-s", "0.3", "--baud", "0"])


@pytest.fixture
def controller(board: SimulatorProcess) -> Any:
    # Short timeouts: an unpaced line answers in milliseconds, so a lost frame costs 0.3 s.
    driver = PeripheralController(board.addresses["serial"], request_timeout_s=0.3, reconnect_s=2.0)
    yield driver
    driver.close()


def state(sim: SimulatorProcess) -> dict[str, Any]:
    return json.loads(sim.control("state"))


def new_image(version: str, size: int = 6000, seed: int = 3) -> tuple[bytes, bytes]:
    image = build_image(version, firmware_body(size, seed))
    return image, parse_image(image).image_hash


def test_open_reports_the_running_firmware_and_its_slots(board: SimulatorProcess, controller: Any) -> None:
    facts = controller.open()
    assert facts.firmware == "1.0.0"
    assert facts.detail["buf_size"] == 512
    (slot,) = facts.detail["image_slots"]
    assert (slot["slot"], slot["active"], slot["confirmed"]) == (0, True, True)
    assert controller.is_present()
    assert controller.battery() == BatteryReading(millivolts=3900, percent=80, charging=False)
    board.control("battery 3550 12 true")
    assert controller.battery() == BatteryReading(millivolts=3550, percent=12, charging=True)
    controller.set_illuminator(True, 70)
    assert state(board)["illuminator"] == {"on": True, "level": 70}
    controller.set_illuminator(False, 0)
    assert state(board)["illuminator"]["on"] is False
    with pytest.raises(ValueError):
        controller.set_illuminator(True, 150)
    assert controller.self_test().ok
    board.control("fail-self-test 1.0.0")
    test = controller.self_test()
    assert not test.ok and "1.0.0" in test.detail


def test_the_registry_builds_it_from_its_uri(board: SimulatorProcess) -> None:
    driver = make_driver(f"smp:{board.addresses['serial']}?baud=57600", DriverSettings())
    assert isinstance(driver, PeripheralController) and driver.baud == 57600
    try:
        assert driver.open().firmware == "1.0.0"
    finally:
        driver.close()


def test_upload_test_reset_and_confirm(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    image, image_hash = new_image("1.1.0")
    seen: list[tuple[int, int]] = []
    controller.upload(image, lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(image), len(image)) and len(seen) > 5
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    slots = controller.mark_for_test(image_hash)
    assert [(s.slot, s.version, s.pending) for s in slots] == [(0, "1.0.0", False), (1, "1.1.0", True)]
    controller.reset()
    back = controller.wait_until_back(5.0)
    running = next(s for s in back if s.active)
    assert (running.version, running.hash, running.confirmed) == ("1.1.0", image_hash.hex(), False)
    assert controller.self_test().ok
    confirmed = controller.confirm()
    assert next(s for s in confirmed if s.active).confirmed
    controller.reset()
    assert controller.wait_until_back(5.0)[0].version == "1.1.0"
    assert controller.running_version() == "1.1.0"


def test_left_unconfirmed_the_old_image_comes_back(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    image, image_hash = new_image("1.2.0")
    controller.upload(image)
    controller.mark_for_test(image_hash)
    controller.reset()
    assert controller.wait_until_back(5.0)[0].version == "1.2.0"
    board.control("fail-self-test 1.2.0")
    assert not controller.self_test().ok
    controller.reset()  # not confirmed: MCUboot swaps the old image back
    assert controller.wait_until_back(5.0)[0].version == "1.0.0"
    assert controller.running_version() == "1.0.0"
    with pytest.raises(ProtocolError, match="test"):
        controller.mark_for_test(bytes.fromhex(controller.image_slots()[0].hash))


def test_an_upload_cut_by_the_cable_resumes_where_it_stopped(board: SimulatorProcess, tmp_path: Path) -> None:
    driver = PeripheralController(board.addresses["serial"], request_timeout_s=0.3, reconnect_s=0.5, tries=2)
    try:
        driver.open()
        image, _ = new_image("1.3.0", size=12000)
        seen: list[int] = []

        def pull_at_half(done: int, total: int) -> None:
            seen.append(done)
            if done > total // 2 and state(board)["plugged"]:
                board.control("unplug")

        with pytest.raises(DeviceGone, match="acm0"):
            driver.upload(image, pull_at_half)
        reached = seen[-1]
        board.control("replug")
        again: list[int] = []
        driver.upload(image, lambda done, total: again.append(done))
        assert again[0] >= reached > len(image) // 2  # the device kept what it had: no restart
        assert again[-1] == len(image)
        assert state(board)["slots"][1]["version"] == "1.3.0"
    finally:
        driver.close()


def test_dropped_and_garbled_frames_are_survived(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    board.control("drop-every 4")
    board.control("corrupt-every 5")
    image, image_hash = new_image("1.4.0", size=8000)
    controller.upload(image)
    slots = controller.mark_for_test(image_hash)
    assert slots[1].hash == image_hash.hex() and slots[1].pending
    assert controller.battery().percent == 80
    counts = json.loads(board.control("counts"))
    assert counts["dropped"] >= 3 and counts["corrupted"] >= 3
    board.control("drop-every 0")
    board.control("corrupt-every 0")
    controller.reset()
    assert controller.wait_until_back(5.0)[0].version == "1.4.0"


def test_power_lost_mid_upload_leaves_the_old_image_running(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    image, _ = new_image("1.5.0", size=12000)
    seen: list[int] = []
    cut = threading.Event()

    def cut_power(done: int, total: int) -> None:
        seen.append(done)
        if done > total // 3 and not cut.is_set():
            cut.set()
            board.control("power-loss")

    # The board comes back within reconnect_s, having forgotten the upload (RAM): it answers
    # offset 0, and the attempt ends saying so (the firmware service counts and audits it);
    # the next one starts from the start.
    with pytest.raises(UploadForgotten, match=r"forgot the upload at byte \d+ of 12\d\d\d \(it answered 0"):
        controller.upload(image, cut_power)
    again: list[int] = []
    controller.upload(image, lambda done, total: again.append(done))
    assert again[0] == 0 and again[-1] == len(image)
    current = state(board)
    assert current["running"] == "1.0.0" and current["boot"]["confirmed"]
    assert json.loads(board.control("counts"))["resets"] == 1


def test_a_vanished_port_is_device_gone_naming_it(board: SimulatorProcess, tmp_path: Path) -> None:
    link = board.addresses["serial"]
    driver = PeripheralController(link, request_timeout_s=0.3, reconnect_s=0.3, tries=2)
    try:
        driver.open()
        board.control("unplug")
        with pytest.raises(DeviceGone, match="peripheral controller .*acm0") as gone:
            driver.is_present()
        assert "\n" not in str(gone.value)
        with pytest.raises(DeviceGone, match="peripheral controller .*acm0") as gone:
            driver.battery()
        assert "\n" not in str(gone.value)
    finally:
        driver.close()
    missing = PeripheralController(str(tmp_path / "ttyACM9"))
    with pytest.raises(DeviceGone, match="ttyACM9: port not found"):
        missing.open()


def test_zephyr_build_numbers_read_as_imgtool_writes_them() -> None:
    assert kit_version("1.2.3.4") == "1.2.3+4"
    assert kit_version("1.2.3") == "1.2.3"


class GaugeSlot:
    """A peripheral's device slot as check_battery uses it: jobs run the driver on the slot."""

    kind = "peripheral"
    id = "peripheral"

    def __init__(self, reading: BatteryReading | Exception) -> None:
        self.reading = reading

    async def run_when_free(self, job: Callable[[Any, threading.Event], Any]) -> Any:
        if isinstance(self.reading, Exception):
            raise self.reading
        return job(SimpleNamespace(battery=lambda: self.reading), threading.Event())


@pytest.mark.parametrize(
    ("reading", "status"),
    [
        (BatteryReading(3900, 80, False), "ok"),
        (BatteryReading(3600, 20, False), "warning"),
        (BatteryReading(3400, 5, False), "failed"),
        (BatteryReading(3400, 5, True), "ok"),
        (DeviceBusy("device peripheral is busy with another capture"), "not_available"),
    ],
)
def test_the_battery_check_reads_the_peripherals_gauge(reading: Any, status: str) -> None:
    kit = SimpleNamespace(slots={"peripheral": GaugeSlot(reading)})
    found = asyncio.run(check_battery(kit))
    assert found["status"] == status
    if isinstance(reading, BatteryReading):
        assert found["values"] == {
            "millivolts": reading.millivolts,
            "percent": reading.percent,
            "charging": reading.charging,
        }


def test_without_a_peripheral_the_battery_is_not_available() -> None:
    assert asyncio.run(check_battery(SimpleNamespace(slots={})))["status"] == "not_available"


def test_a_corrupted_upload_is_erased_and_sent_again(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    image, image_hash = new_image("1.6.0")
    board.control("corrupt-upload")  # the first chunk reaches flash with a byte flipped: match false
    seen: list[int] = []
    controller.upload(image, lambda done, total: seen.append(done))
    assert seen.count(len(image)) == 2 and seen[seen.index(len(image)) + 1] == 0
    counts = json.loads(board.control("counts"))["by_command"]
    assert counts["erase"] == 1
    (slot,) = [s for s in controller.image_slots() if s.slot == 1]
    assert slot.hash == image_hash.hex()
    assert state(board)["slots"][1]["hash"] == image_hash.hex()


def test_erase_of_a_marked_slot_is_refused_as_zephyr_does(board: SimulatorProcess, controller: Any) -> None:
    controller.open()
    image, image_hash = new_image("1.7.0")
    controller.upload(image)
    controller.mark_for_test(image_hash)
    with pytest.raises(ProtocolError, match="no_free_slot"):
        controller.erase()
    assert state(board)["boot"]["pending"] == "test"


def test_erase_takes_the_mark_with_it_when_the_board_allows_it(
    start_simulator: Callable[..., SimulatorProcess], tmp_path: Path
) -> None:
    args = ["--link", str(tmp_path / "acm1"), "--state-dir", str(tmp_path / "flash1")]
    board = start_simulator(SIM, args + ["--reset-s", "0.3", "--baud", "0", "--allow-erase-pending"])
    driver = PeripheralController(board.addresses["serial"], request_timeout_s=0.3, reconnect_s=2.0)
    try:
        driver.open()
        image, image_hash = new_image("1.7.0")
        driver.upload(image)
        driver.mark_for_test(image_hash)
        driver.erase()
        assert [s.slot for s in driver.image_slots()] == [0]
        assert state(board)["boot"]["pending"] is None
    finally:
        driver.close()
