"""The firmware flow's decisions (kitd.services.firmware) against an in-process peripheral with
MCUboot's test/confirm/revert: whatever goes wrong, the peripheral ends running the old image or
the new one confirmed, the operation says which, and nothing is sent for a refused image."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kitd.drivers.peripheral import PeripheralController, UploadForgotten
from kitd.errors import DeviceBusy, DeviceGone, ProtocolError
from kitd.services.firmware import (
    CONFIRMED,
    FAILED,
    REFUSED,
    REVERTED,
    ROLLBACK,
    ROLLED_BACK,
    UPLOAD,
    FirmwareFlow,
    FirmwareOperation,
    FlowTiming,
)
from kitd.services.firmware_desk import FirmwareDesk, ran_here_confirmed
from kitd.store.audit import append_entry
from kitd.store.database import database_path, open_database

CHUNK = 512


@dataclass
class Slot:
    slot: int
    version: str
    hash: str
    bootable: bool = True
    pending: bool = False
    confirmed: bool = False
    active: bool = False
    permanent: bool = False


@dataclass
class SelfTest:
    ok: bool
    detail: str


@dataclass
class Image:
    version: str
    hash: str


class FakePeripheral:
    """Two slots and MCUboot's swap: a reset boots a pending image for test, and reverts a test
    boot that was not confirmed. ``faults`` maps a point to what happens there once. Erasing
    slot 1 is refused while it is marked or holds the image to revert to, as Zephyr refuses it
    (``allow_erase_pending``: as built with CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING)."""

    def __init__(self, running: str = "1.0.0", previous: str | None = None) -> None:
        self.primary = Image(running, hashlib.sha256(running.encode()).hexdigest())
        self.secondary = (
            None if previous is None else Image(previous, hashlib.sha256(previous.encode()).hexdigest())
        )
        self.confirmed = True
        self.pending = False
        self.permanent = False
        self.received = b""
        self.receiving: str | None = None
        self.upload_offsets: list[int] = []
        self.failing_versions: set[str] = set()
        self.faults: dict[str, Callable[[], None]] = {}
        self.cut_at: list[int] = []  # upload offsets where the link is cut, once each
        self.calls: list[str] = []
        self.resets_take = True  # False: a reset is answered and nothing happens
        self.self_confirming: set[str] = set()  # versions that confirm themselves at boot
        self.allow_erase_pending = False

    # --- what the flow calls -------------------------------------------------------------------

    def image_slots(self) -> list[Slot]:
        slots = [Slot(0, self.primary.version, self.primary.hash, confirmed=self.confirmed, active=True)]
        if self.secondary is not None:
            slots.append(Slot(1, self.secondary.version, self.secondary.hash, pending=self.pending))
        return slots

    def running_version(self) -> str:
        return self.primary.version

    def upload(self, image: bytes, progress: Callable[[int, int], None] | None = None) -> None:
        self.calls.append("upload")
        digest = hashlib.sha256(image).hexdigest()
        if self.receiving != digest:
            self.receiving, self.received = digest, b""
        offset = len(self.received)
        self.upload_offsets.append(offset)
        if progress is not None:
            progress(offset, len(image))  # as the driver: where the device takes it up, first
        while offset < len(image):
            if self.cut_at and offset >= self.cut_at[0]:
                self.cut_at.pop(0)
                raise DeviceGone("the port went away")
            self.received += image[offset : offset + CHUNK]
            offset = len(self.received)
            if progress is not None:
                progress(offset, len(image))
        self.secondary, self.pending = Image(_version_of(image), digest), False
        self.receiving = None

    def mark_for_test(self, image_hash: bytes) -> None:
        self.calls.append("mark_for_test")
        assert self.secondary is not None and self.secondary.hash == image_hash.hex()
        self.pending = True
        self._fault("after_mark")

    def confirm(self, image_hash: bytes | None = None) -> None:
        """As img_mgmt's state write with confirm: the running image (no hash, or its hash), or
        slot 1's made permanent (MCUboot swaps it in for good at the next boot); else refused."""
        self.calls.append("confirm")
        self._fault("confirm")
        wanted = None if image_hash is None else image_hash.hex()
        if wanted is None or wanted == self.primary.hash:
            self.confirmed = True
        elif self.secondary is not None and wanted == self.secondary.hash:
            self.pending, self.permanent = True, True
        else:
            raise ProtocolError(f"confirm: hash {wanted[:12]} not found")

    def erase(self) -> None:
        self.calls.append("erase")
        if not self.confirmed or (self.pending and not self.allow_erase_pending):
            raise ProtocolError("erase slot 1: SMP group 1 error no_free_slot (16)")
        self.secondary, self.pending, self.permanent = None, False, False

    def reset(self) -> None:
        self.calls.append("reset")
        if self.resets_take:
            self.boot()
        self._fault("reset")

    def wait_until_back(self, timeout_s: float) -> list[Slot]:
        self.calls.append("wait")
        self._fault("wait")
        return self.image_slots()

    def self_test(self, timeout_s: float | None = None) -> SelfTest:
        self.calls.append("self_test")
        self._fault("self_test")
        if self.primary.version in self.failing_versions:
            return SelfTest(False, "illuminator current out of range")
        return SelfTest(True, "all good")

    # --- MCUboot --------------------------------------------------------------------------------

    def boot(self) -> None:
        if self.pending:
            self.primary, self.secondary = self.secondary, self.primary
            self.pending, self.confirmed = False, self.permanent
            self.permanent = False
            if self.primary.version in self.self_confirming:
                self.confirmed = True
        elif not self.confirmed and self.secondary is not None:
            self.primary, self.secondary = self.secondary, self.primary
            self.confirmed = True

    def _fault(self, point: str) -> None:
        fault = self.faults.pop(point, None)
        if fault is not None:
            fault()


def _version_of(image: bytes) -> str:
    return image.split(b"|", 1)[0].decode()


def make_image(version: str, size: int = 8192) -> bytes:
    head = f"{version}|".encode()
    return head + bytes(i % 251 for i in range(size - len(head)))


def power_loss(peripheral: FakePeripheral) -> Callable[[], None]:
    """The peripheral loses power: it boots again (MCUboot decides what), and the call fails."""

    def cut() -> None:
        peripheral.boot()
        raise DeviceGone("the peripheral lost power")

    return cut


def accept_all(running: str | None) -> list[dict[str, Any]]:
    return [{"check": check, "ok": True, "reason": "fine"} for check in ("format", "hash", "signature")]


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, action: str, details: dict[str, Any]) -> None:
        self.entries.append((action, details))

    @property
    def actions(self) -> list[str]:
        return [action for action, _ in self.entries]


def run_update(
    peripheral: FakePeripheral,
    image: bytes,
    verify: Callable[[str | None], list[dict[str, Any]]] = accept_all,
    cancel: threading.Event | None = None,
    attempts: int = 5,
) -> tuple[FirmwareOperation, Recorder]:
    operation = FirmwareOperation("op1", UPLOAD, "peripheral", "system", "2026-01-01T00:00:00Z")
    operation.version = _version_of(image)
    operation.image_hash = hashlib.sha256(image).hexdigest()
    audit = Recorder()
    flow = FirmwareFlow(
        peripheral, operation, FlowTiming(1.0, 1.0, attempts), lambda: "2026-01-01T00:00:01Z", audit, cancel
    )
    flow.update(image, hashlib.sha256(image).digest(), verify)
    return operation, audit


def run_rollback(
    peripheral: FakePeripheral, ran_before: Callable[[str], bool] = lambda _hash: True
) -> tuple[FirmwareOperation, Recorder]:
    operation = FirmwareOperation("op2", ROLLBACK, "peripheral", "system", "2026-01-01T00:00:00Z")
    audit = Recorder()
    FirmwareFlow(peripheral, operation, FlowTiming(1.0, 1.0), lambda: "t", audit).roll_back(ran_before)
    return operation, audit


def assert_safe(peripheral: FakePeripheral, operation: FirmwareOperation, old: str, new: str) -> None:
    """Old image running, or the new one confirmed; and the operation says which."""
    running = peripheral.primary.version
    assert (running == old) or (running == new and peripheral.confirmed), (running, peripheral.confirmed)
    # Whatever MCUboot does at the next reset, the same image runs: nothing is left under test.
    peripheral.boot()
    assert peripheral.primary.version == running
    if operation.state == CONFIRMED:
        assert running == new
    elif operation.state in (REVERTED, REFUSED, FAILED):
        assert running == old
    assert operation.outcome and "\n" not in operation.outcome
    assert operation.ended_at is not None


def test_a_good_image_is_uploaded_tested_and_confirmed() -> None:
    peripheral = FakePeripheral("1.0.0")
    image = make_image("1.1.0")
    operation, audit = run_update(peripheral, image)
    assert operation.state == CONFIRMED, operation.outcome
    assert peripheral.primary.version == "1.1.0" and peripheral.confirmed
    assert operation.bytes_done == operation.bytes_total == len(image)
    assert operation.old_version == "1.0.0" and operation.running_version == "1.1.0"
    assert audit.actions == [
        "firmware_verified",
        "firmware_upload_started",
        "firmware_uploaded",
        "firmware_marked_for_test",
        "firmware_reset",
        "firmware_back",
        "firmware_self_test",
        "firmware_confirmed",
    ]
    assert [s.action for s in operation.steps] == audit.actions
    for _action, details in audit.entries:
        assert details["version"] == "1.1.0" and details["hash"] == hashlib.sha256(image).hexdigest()
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_a_refused_image_sends_nothing() -> None:
    peripheral = FakePeripheral("1.2.0")

    def refuse_downgrade(running: str | None) -> list[dict[str, Any]]:
        assert running == "1.2.0"  # the device's own running version is what the check compares
        return [
            {"check": "signature", "ok": True, "reason": "Ed25519 by key a"},
            {"check": "version", "ok": False, "reason": "1.1.0 is older than the running 1.2.0"},
        ]

    operation, audit = run_update(peripheral, make_image("1.1.0"), refuse_downgrade)
    assert operation.state == REFUSED
    assert "version: 1.1.0 is older" in operation.outcome
    assert audit.actions == ["firmware_refused"]
    assert peripheral.calls == [] and peripheral.received == b""


def test_a_cut_link_resumes_from_where_the_device_has_it() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.cut_at = [4096]
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == CONFIRMED, operation.outcome
    starts = [d for a, d in audit.entries if a == "firmware_upload_started"]
    assert [(d["attempt"], d["offset"]) for d in starts] == [(1, 0), (2, 4096)]
    assert peripheral.upload_offsets == [0, 4096]
    assert "firmware_upload_interrupted" in audit.actions
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_an_upload_that_never_gets_through_marks_nothing() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.cut_at = [1024, 1024, 1024]
    operation, audit = run_update(peripheral, make_image("1.1.0"), attempts=3)
    assert operation.state == FAILED
    assert "failed 3 times" in operation.outcome and "old image runs" in operation.outcome
    assert "mark_for_test" not in peripheral.calls and "reset" not in peripheral.calls
    assert audit.actions.count("firmware_upload_interrupted") == 3
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_a_failed_self_test_is_reverted_and_the_old_image_runs() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.failing_versions.add("1.1.0")
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == REVERTED, operation.outcome
    assert "failed its self-test" in operation.outcome and "1.0.0 runs" in operation.outcome
    assert "confirm" not in peripheral.calls
    assert audit.actions[-3:] == ["firmware_reset", "firmware_back", "firmware_reverted"]
    assert peripheral.primary.version == "1.0.0" and peripheral.confirmed
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_a_new_image_that_does_not_come_back_is_reverted() -> None:
    peripheral = FakePeripheral("1.0.0")

    def hung() -> None:
        peripheral.boot()  # the watchdog resets it: MCUboot finds it unconfirmed
        raise DeviceGone("not back within 1 s")

    peripheral.faults["wait"] = hung
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == REVERTED, operation.outcome
    assert "did not come back" in operation.outcome
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


@pytest.mark.parametrize("point", ["after_mark", "reset", "self_test", "confirm"])
def test_a_power_loss_leaves_the_old_image_or_the_new_one_confirmed(point: str) -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.faults[point] = power_loss(peripheral)
    operation, _ = run_update(peripheral, make_image("1.1.0"))
    assert operation.state in (CONFIRMED, REVERTED), (point, operation.state, operation.outcome)
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_a_power_loss_during_the_upload_resumes() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.cut_at = [2048]
    operation, _ = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == CONFIRMED
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")


def test_protocol_errors_cost_an_attempt_each_and_then_go_through() -> None:
    peripheral = FakePeripheral("1.0.0")
    calls = {"n": 0}
    upload = peripheral.upload

    def flaky(image: bytes, progress: Callable[[int, int], None] | None = None) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ProtocolError("corrupted frame")
        upload(image, progress)

    peripheral.upload = flaky  # type: ignore[method-assign]
    operation, _ = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == CONFIRMED and calls["n"] == 2


def test_a_cancelled_upload_marks_nothing() -> None:
    peripheral = FakePeripheral("1.0.0")
    cancel = threading.Event()
    cancel.set()
    operation, _ = run_update(peripheral, make_image("1.1.0"), cancel=cancel)
    assert operation.state == FAILED and "stopping" in operation.outcome
    assert "mark_for_test" not in peripheral.calls


def test_rollback_of_a_test_boot_resets_it_away() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.secondary = Image("1.1.0", "ab" * 32)
    peripheral.pending = True
    peripheral.boot()  # 1.1.0 runs under test
    operation, audit = run_rollback(peripheral)
    assert operation.state == ROLLED_BACK, operation.outcome
    assert peripheral.primary.version == "1.0.0" and peripheral.confirmed
    assert audit.actions == [
        "firmware_rollback_started",
        "firmware_reset",
        "firmware_back",
        "firmware_reverted",
    ]


def test_rollback_of_a_confirmed_image_tests_and_confirms_the_previous_one() -> None:
    peripheral = FakePeripheral("1.1.0", previous="1.0.0")
    operation, audit = run_rollback(peripheral)
    assert operation.state == ROLLED_BACK, operation.outcome
    assert peripheral.primary.version == "1.0.0" and peripheral.confirmed
    assert operation.version == "1.0.0" and operation.running_version == "1.0.0"
    assert audit.actions[-1] == "firmware_confirmed"


def test_rollback_whose_previous_image_fails_its_self_test_keeps_the_current_one() -> None:
    peripheral = FakePeripheral("1.1.0", previous="1.0.0")
    peripheral.failing_versions.add("1.0.0")
    operation, _ = run_rollback(peripheral)
    assert operation.state == REVERTED
    assert peripheral.primary.version == "1.1.0" and peripheral.confirmed


def test_rollback_with_no_previous_image_is_refused() -> None:
    peripheral = FakePeripheral("1.0.0")
    operation, audit = run_rollback(peripheral)
    assert operation.state == REFUSED and "nothing to roll back to" in operation.outcome
    assert "reset" not in peripheral.calls and "mark_for_test" not in peripheral.calls


@pytest.mark.parametrize("how", ["fails its self-test", "its self-test does not answer"])
def test_an_image_that_confirms_itself_without_a_passing_self_test_ends_failed(how: str) -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.self_confirming.add("1.1.0")
    if how == "fails its self-test":
        peripheral.failing_versions.add("1.1.0")
    else:
        peripheral.faults["self_test"] = lambda: (_ for _ in ()).throw(DeviceGone("no answer"))
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    # No reset reverts a confirmed image, and its self-test never passed: no success, and said.
    assert operation.state == FAILED, operation.outcome
    assert "confirm" not in peripheral.calls
    assert peripheral.primary.version == "1.1.0" and peripheral.confirmed
    assert "1.1.0" in operation.outcome and "confirmed" in operation.outcome
    assert audit.actions[-1] == "firmware_failed"
    assert operation.running_version == "1.1.0"


def test_a_reset_that_never_takes_ends_failed_and_says_the_mark_stands() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.resets_take = False
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == FAILED, operation.outcome
    assert peripheral.calls.count("reset") == 2
    # Zephyr refuses to erase a slot marked for test: the mark stands, and the kit says so.
    assert peripheral.pending and "erase" in peripheral.calls
    assert "1.1.0 is still marked for test in slot 1" in operation.outcome
    assert "next reset boots it untested" in operation.outcome
    assert audit.actions[-2:] == ["firmware_failed", "firmware_still_marked"]
    marked = audit.entries[-1][1]
    assert marked["certain"] and marked["marked_version"] == "1.1.0" and "no_free_slot" in marked["reason"]
    assert operation.steps[-1].action == "firmware_still_marked"


def test_a_mark_left_standing_is_erased_when_the_device_allows_it() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.resets_take = False
    peripheral.allow_erase_pending = True
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == FAILED
    assert not peripheral.pending and peripheral.secondary is None
    assert audit.actions[-1] == "firmware_erased" and "was erased from slot 1" in operation.outcome
    peripheral.boot()  # the next reset: the old image, nothing untested
    assert peripheral.primary.version == "1.0.0"


def test_a_stop_between_the_mark_and_the_test_boot_says_the_mark_may_stand() -> None:
    peripheral = FakePeripheral("1.0.0")
    cancel = threading.Event()
    peripheral.faults["after_mark"] = cancel.set
    operation, audit = run_update(peripheral, make_image("1.1.0"), cancel=cancel)
    assert operation.state == FAILED and "stopping" in operation.outcome
    assert "reset" not in peripheral.calls and "erase" not in peripheral.calls  # stopping: hands off
    assert "may still be marked for test" in operation.outcome
    assert audit.actions[-1] == "firmware_still_marked" and audit.entries[-1][1]["certain"] is False


def test_a_refused_reset_before_the_test_boot_tries_to_erase_the_mark() -> None:
    peripheral = FakePeripheral("1.0.0")

    def refused() -> None:
        raise ProtocolError("reset refused: SMP error ebusy")

    peripheral.reset = refused  # type: ignore[method-assign]
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == FAILED and "reset refused" in operation.outcome
    assert "still marked for test" in operation.outcome and audit.actions[-1] == "firmware_still_marked"


def test_a_rollback_whose_reset_never_takes_ends_failed() -> None:
    peripheral = FakePeripheral("1.0.0")
    peripheral.secondary = Image("1.1.0", "ab" * 32)
    peripheral.pending = True
    peripheral.boot()  # 1.1.0 runs under test
    peripheral.resets_take = False
    operation, audit = run_rollback(peripheral)
    assert operation.state == FAILED, operation.outcome
    assert "still runs the unconfirmed image" in operation.outcome
    assert operation.running_version == "1.1.0"
    assert audit.actions[-1] == "firmware_failed"


def test_a_rollback_to_an_image_that_never_ran_here_is_refused() -> None:
    # After an update that failed past its upload, slot 1 holds the new image, never run.
    peripheral = FakePeripheral("1.0.0", previous="1.1.0")
    asked: list[str] = []
    operation, audit = run_rollback(peripheral, lambda image_hash: asked.append(image_hash) and False)
    assert operation.state == REFUSED, operation.outcome
    assert "never ran confirmed on this peripheral" in operation.outcome and "1.1.0" in operation.outcome
    assert asked == [peripheral.secondary.hash]
    assert "reset" not in peripheral.calls and "mark_for_test" not in peripheral.calls
    assert audit.actions == ["firmware_rollback_started", "firmware_refused"]


def test_a_rollback_with_no_running_image_reported_is_refused() -> None:
    peripheral = FakePeripheral("1.1.0", previous="1.0.0")
    peripheral.image_slots = lambda: [Slot(1, "1.0.0", "cd" * 32)]  # type: ignore[method-assign]
    operation, _ = run_rollback(peripheral)
    assert operation.state == REFUSED and "no running image" in operation.outcome


def test_the_entries_record_the_running_image_a_rollback_may_go_back_to(tmp_path: Path) -> None:
    peripheral = FakePeripheral("1.0.0")
    old_hash = peripheral.primary.hash
    _operation, audit = run_update(peripheral, make_image("1.1.0"))
    conn = open_database(database_path(tmp_path))
    for action, details in audit.entries:
        append_entry(conn, "system", action, details)
    append_entry(conn, "system", "firmware_verified", {"device": "other", "running_hash": "ee" * 32})
    ran = ran_here_confirmed(conn, "peripheral")
    assert old_hash in ran and hashlib.sha256(make_image("1.1.0")).hexdigest() in ran
    assert "ee" * 32 not in ran
    # The new image booted unconfirmed only: not yet a place to roll back to.
    peripheral = FakePeripheral("1.0.0")
    peripheral.failing_versions.add("1.2.0")
    _operation, audit = run_update(peripheral, make_image("1.2.0"))
    for action, details in audit.entries:
        append_entry(conn, "system", action, details)
    assert hashlib.sha256(make_image("1.2.0")).hexdigest() not in ran_here_confirmed(conn, "peripheral")


# --- the driver's upload: a completed upload that does not match its SHA-256 ------------------


class ChunkDevice:
    """img_mgmt's upload as far as the driver's loop sees it: chunks at the offset it expects,
    `match` on the last, the upload forgotten once complete; ``corrupt`` flips a byte written."""

    def __init__(self, corrupt: int = 0, held: int = 0, forget_at: int = 0) -> None:
        self.corrupt = corrupt  # uploads still to corrupt
        self.held = held  # bytes of an earlier, cut upload it holds
        self.forget_at = forget_at  # it restarts (forgetting the upload) when sent this offset
        self.flash = bytearray()
        self.sent: list[int] = []
        self.erased = 0

    def send_chunk(self, image: bytes, start: int, sha: bytes) -> tuple[bool | None, int, int]:
        self.sent.append(start)
        if self.forget_at and start == self.forget_at:
            self.forget_at, self.flash = 0, bytearray()
            return None, 0, start  # a chunk at an offset it does not expect: it says 0
        if start == 0 and self.held:
            # It holds the part of an earlier upload: it answers where it has got to.
            self.flash, self.held = bytearray(image[: self.held]), 0
            return None, len(self.flash), min(CHUNK, len(image))
        if start == 0:
            self.flash = bytearray()
        data = bytearray(image[start : start + CHUNK])
        if start == 0 and self.corrupt:
            self.corrupt -= 1
            data[0] ^= 0xFF
        self.flash += data
        sent_to = start + len(data)
        if len(self.flash) < len(image):
            return None, len(self.flash), sent_to
        return hashlib.sha256(self.flash).digest() == sha, len(self.flash), sent_to

    def erase(self) -> None:
        self.erased += 1
        self.flash = bytearray()


def driver_on(device: ChunkDevice) -> PeripheralController:
    driver = PeripheralController("/nonexistent/ttyACM9")
    driver._send_chunk = device.send_chunk  # type: ignore[method-assign]
    driver.erase = device.erase  # type: ignore[method-assign]
    return driver


def test_a_corrupted_upload_is_erased_and_sent_again_from_0() -> None:
    device = ChunkDevice(corrupt=1)
    image = make_image("1.1.0", 4 * CHUNK)
    progress: list[int] = []
    driver_on(device).upload(image, lambda done, total: progress.append(done))
    assert bytes(device.flash) == image
    assert device.erased == 1
    assert device.sent == [0, 512, 1024, 1536, 0, 512, 1024, 1536]
    # First where the device takes it up (0: a fresh upload), then each answer.
    assert progress == [0, 512, 1024, 1536, 2048, 0, 512, 1024, 1536, 2048]


def test_a_peripheral_that_restarted_mid_upload_ends_the_attempt_saying_so() -> None:
    # A power loss mid-upload: the board comes back having forgotten it. Not started over in
    # silence: the attempt ends, to be counted (one of the bounded attempts) and audited.
    device = ChunkDevice(forget_at=2 * CHUNK)
    image = make_image("1.1.0", 4 * CHUNK)
    with pytest.raises(UploadForgotten, match=f"forgot the upload at byte {2 * CHUNK} of {4 * CHUNK}"):
        driver_on(device).upload(image)
    assert device.sent == [0, CHUNK, 2 * CHUNK]
    driver_on(device).upload(image)  # the next attempt, from 0
    assert bytes(device.flash) == image


def test_an_upload_the_device_holds_part_of_says_where_it_takes_it_up() -> None:
    device = ChunkDevice(held=3 * CHUNK)
    image = make_image("1.1.0", 4 * CHUNK)
    progress: list[int] = []
    driver_on(device).upload(image, lambda done, total: progress.append(done))
    assert bytes(device.flash) == image and device.sent == [0, 1536]
    assert progress == [1536, 1536, 2048]


def test_an_upload_that_never_matches_fails_after_one_resend() -> None:
    device = ChunkDevice(corrupt=5)
    with pytest.raises(ProtocolError, match="does not match its SHA-256"):
        driver_on(device).upload(make_image("1.1.0", 2 * CHUNK))
    assert device.erased == 1 and device.sent == [0, 512, 0, 512]


def test_the_self_test_is_not_asked_again_past_its_timeout() -> None:
    driver = PeripheralController("/nonexistent/ttyACM9", tries=4)
    asked: list[float] = []

    def ensure_open() -> None:
        driver._client = SlowClient(asked)  # type: ignore[assignment]

    driver._ensure_open = ensure_open  # type: ignore[method-assign]
    driver._disconnect = lambda: None  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(DeviceGone, match="within 0.3 s"):
        driver.self_test(0.3)
    assert time.monotonic() - started < 0.6
    assert sum(asked) <= 0.3 + 1e-6 and len(asked) < 4


class SlowClient:
    """An SMP client whose request never gets an answer within the time it is given."""

    def __init__(self, asked: list[float]) -> None:
        self.asked = asked

    async def request(self, request: Any, timeout_s: float) -> Any:
        self.asked.append(timeout_s)
        await asyncio.sleep(timeout_s)
        raise TimeoutError("no answer")


def test_a_failed_start_of_the_job_is_audited() -> None:
    written: list[tuple[str, str, dict[str, Any]]] = []

    class Kit:
        clock = type("Clock", (), {"now": staticmethod(lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))})()
        database = None
        slots: dict[str, Any] = {}

        async def in_database(self, job: Callable[..., Any], *args: Any) -> Any:
            _conn, actor, action, details = args
            written.append((actor, action, details))

    class BusySlot:
        id = "peripheral"

        async def run_when_free(self, job: Any, **_waiting: Any) -> None:
            raise DeviceBusy("a capture holds it")

    desk = FirmwareDesk(Kit())  # type: ignore[arg-type]
    operation = FirmwareOperation("op3", UPLOAD, "peripheral", "tech", "2026-01-01T00:00:00Z")
    operation.version, operation.image_hash = "1.1.0", "ab" * 32
    asyncio.run(desk._run(operation, BusySlot(), lambda flow: None))
    assert operation.state == FAILED and "busy" in operation.outcome
    assert [(actor, action) for actor, action, _ in written] == [("tech", "firmware_failed")]
    details = written[0][2]
    assert details["operation_id"] == "op3" and details["hash"] == "ab" * 32 and "busy" in details["reason"]
    assert operation.steps[-1].action == "firmware_failed"


def test_a_restart_during_the_self_test_is_a_revert_and_makes_nothing_permanent() -> None:
    # The power blinks while the new image tests itself: MCUboot boots the old one (the new was
    # not confirmed), which answers the self-test. Confirming the new image by its hash now would
    # be MCUboot's "swap it in for good" — the new image permanent, its self-test never passed.
    peripheral = FakePeripheral("1.0.0")
    peripheral.faults["self_test"] = peripheral.boot
    operation, audit = run_update(peripheral, make_image("1.1.0"))
    assert operation.state == REVERTED, operation.outcome
    assert "no longer running after the self-test" in operation.outcome
    assert not peripheral.permanent and not peripheral.pending
    assert audit.actions[-2:] == ["firmware_self_test", "firmware_reverted"]
    assert_safe(peripheral, operation, "1.0.0", "1.1.0")
