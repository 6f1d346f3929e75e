"""The kit's firmware operations on its peripheral: one at a time, never during a visit, each audited.

Its one job: :class:`FirmwareDesk` checks an image against the office's pinned keys and
allow-list (firmware_tools.image_checks), starts an update or a rollback as a job on the
peripheral's device slot (exclusive, on the slot's thread: kitd.services.firmware's flow), writes
each of its steps to the audit log in order, and keeps the running and the last
:data:`KEEP_ENDED` operations for the API to read (state, bytes done of the total, steps, outcome).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from firmware_tools.image_checks import (
    AllowListError,
    KeyFileError,
    read_allow_list,
    read_public_keys,
    verify_image,
)
from firmware_tools.mcuboot_image import ImageFormatError, parse_image, version_text
from kitd.clock import KitClock, iso
from kitd.errors import DeviceBusy, DeviceError, KitError
from kitd.services.diagnostics import FAILED, Words, finding
from kitd.services.firmware import (
    FAILED as OPERATION_FAILED,
)
from kitd.services.firmware import (
    ROLLBACK,
    RUNNING,
    UPLOAD,
    FirmwareFlow,
    FirmwareOperation,
    FirmwareStep,
    FlowTiming,
    never_ran,
    other_slot,
    parse_kit_version,
    running_slot,
    slot_json,
)
from kitd.services.slots import FIRMWARE_UPDATE, not_ready_text, peripheral_slot
from kitd.services.visits import VisitDesk
from kitd.store.audit import append_entry, find_entries

T = TypeVar("T")
log = logging.getLogger("kitd.firmware")

KEEP_ENDED = 20
# How long a step's audit entry may wait for the database before the flow goes on without it.
AUDIT_WAIT_S = 30.0
# How long a reading of the slots (GET /api/v1/firmware) may take.
READ_TIMEOUT_S = 10.0
# What an audit entry's write may fail with and the operation go on (a full disk, a closed
# database, the loop stopping): the steps still say it.
AUDIT_ERRORS = (OSError, sqlite3.Error, KitError, TimeoutError, RuntimeError)
# The entries that record the image running on the peripheral (running_hash), and whether it ran
# confirmed (running_confirmed; firmware_back's own word for it is `confirmed`).
RAN_ACTIONS = (
    "firmware_verified",
    "firmware_refused",
    "firmware_rollback_started",
    "firmware_back",
    "firmware_confirmed",
    "firmware_reverted",
)


class FirmwareRefused(KitError):
    """A firmware request that cannot be taken now: the HTTP status and the error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class FirmwareContext(Protocol):
    """What the desk needs of its kit (kitd.kit.Kit)."""

    config: Any
    slots: dict[str, Any]
    visits: VisitDesk
    clock: KitClock
    database: Any

    async def in_database(self, job: Callable[..., T], *args: Any) -> T: ...


def finding_json(finding: Any) -> dict[str, Any]:
    """An image check's finding in the API's FirmwareFinding shape."""
    return {"check": finding.check, "ok": bool(finding.ok), "reason": finding.reason}


class FirmwareDesk:
    """One kit's firmware operations on its peripheral."""

    def __init__(self, kit: FirmwareContext) -> None:
        self.kit = kit
        self._operations: dict[str, FirmwareOperation] = {}
        self._running: FirmwareOperation | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # The slots as last read (an operation holds the device meanwhile: this is what it saw).
        self._slots: list[dict[str, Any]] = []
        # Set when the daemon stops: the running flow ends at its next step.
        self._stopping = threading.Event()

    # --- asking ---------------------------------------------------------------------------------

    def peripheral(self) -> Any | None:
        """The peripheral's device slot (the first one configured), or None."""
        return peripheral_slot(self.kit)

    def get(self, operation_id: str) -> FirmwareOperation:
        operation = self._operations.get(operation_id)
        if operation is None:
            raise FirmwareRefused(
                404, "unknown_operation", f"no firmware operation {operation_id!r} on this kit"
            )
        return operation

    def running(self) -> FirmwareOperation | None:
        return self._running

    def last(self) -> FirmwareOperation | None:
        return self._running or next(reversed(self._operations.values()), None)

    async def describe(self) -> dict[str, Any]:
        """The peripheral's slots and running version (read now when it is free), and the last
        or current operation."""
        slot = self.peripheral()
        read_now, problem = False, None
        if slot is not None and self._running is None:
            try:
                slots = await self.read(slot, _read_slots)
            except (DeviceError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                self._slots, read_now = [slot_json(s) for s in slots], True
        running = next((s for s in self._slots if s["active"]), None)
        last = self.last()
        return {
            "device": None if slot is None else slot.id,
            "status": None if slot is None else slot.current()[0],
            "running_version": running["version"] if running else None,
            "slots": list(self._slots),
            "read_now": read_now,
            "problem": problem,
            "operation": None if last is None else last.to_json(),
        }

    # --- verifying --------------------------------------------------------------------------------

    def _pinned(self) -> tuple[list[Any], frozenset[bytes] | None]:
        config = self.kit.config
        try:
            keys = read_public_keys(config["firmware.public_keys"])
            path = str(config["firmware.allow_list"])
            allow_list = read_allow_list(path) if path else None
        except (KeyFileError, AllowListError) as exc:
            raise FirmwareRefused(
                409, "firmware_config", f"the kit's firmware configuration: {exc}"
            ) from None
        return keys, allow_list

    def checks(self, data: bytes, allow_downgrade: bool) -> Callable[[str | None], list[dict[str, Any]]]:
        """The image's checks given the running version (what the flow calls first)."""
        keys, allow_list = self._pinned()

        def verify(running: str | None) -> list[dict[str, Any]]:
            version = parse_kit_version(running)
            return [finding_json(f) for f in verify_image(data, keys, allow_list, version, allow_downgrade)]

        return verify

    async def verify(self, data: bytes, allow_downgrade: bool) -> dict[str, Any]:
        """The image's findings, against the running version when the peripheral can say it."""
        verify = self.checks(data, allow_downgrade)
        running = await self._running_version()
        findings = await asyncio.get_running_loop().run_in_executor(None, verify, running)
        facts = _image_facts(data)
        return {
            "ok": all(f["ok"] for f in findings),
            "findings": findings,
            "running_version": running,
            **facts,
        }

    async def _running_version(self) -> str | None:
        slot = self.peripheral()
        if slot is None:
            return None
        if self._running is None:
            try:
                return await self.read(slot, _read_running_version)
            except (DeviceError, TimeoutError):
                pass
        running = next((s for s in self._slots if s["active"]), None)
        return running["version"] if running else slot.firmware

    async def read(self, slot: Any, job: Callable[[Any, threading.Event], T]) -> T:
        """A short read of the peripheral as a job of its slot; an operation starting meanwhile
        waits for it instead of being refused as busy."""
        return await asyncio.wait_for(slot.run_when_free(job), READ_TIMEOUT_S)

    # --- starting ---------------------------------------------------------------------------------

    def start_upload(self, data: bytes, allow_downgrade: bool, actor: str) -> FirmwareOperation:
        """Start an update with ``data`` (an MCUboot image); FirmwareRefused when it cannot start."""
        slot = self._free_peripheral()
        try:
            image = parse_image(data)
        except ImageFormatError as exc:
            raise FirmwareRefused(
                422, "image_refused", f"not an MCUboot image this kit takes: {exc}"
            ) from None
        if image.image_hash is None:
            raise FirmwareRefused(422, "image_refused", "the image has no hash TLV (SHA256)")
        verify = self.checks(data, allow_downgrade)
        operation = self._new(UPLOAD, slot, actor)
        operation.version, operation.image_hash = version_text(image.version), image.image_hash.hex()
        operation.image_size, operation.allow_downgrade = len(data), allow_downgrade
        image_hash = image.image_hash

        def run(flow: FirmwareFlow) -> None:
            flow.update(data, image_hash, verify)

        self._launch(operation, slot, run)
        return operation

    async def start_rollback(self, actor: str) -> FirmwareOperation:
        """Start a rollback to the image before; FirmwareRefused when it cannot start, and 409
        `never_ran_here` when the secondary slot's image never ran on this peripheral, confirmed
        (after an update that failed past its upload it holds a new image, never run)."""
        slot = self._free_peripheral()
        ran = await self.kit.in_database(ran_here_confirmed, self.kit.database, slot.id)
        try:
            slots = await self.read(slot, _read_slots)
        except (DeviceError, TimeoutError) as exc:
            raise FirmwareRefused(
                503, "device_not_ready", f"device {slot.id}: its slots could not be read ({exc})"
            ) from None
        self._saw(slots)
        running = running_slot(slots)
        previous = other_slot(slots, running)
        # A test boot is reset away (MCUboot's own revert), whatever slot 1 holds.
        testing = running is not None and not running.confirmed
        if not testing and previous is not None and previous.hash and previous.hash.lower() not in ran:
            raise FirmwareRefused(409, "never_ran_here", never_ran(previous.version, previous.hash))
        slot = self._free_peripheral()  # the reads took a while: still free?
        operation = self._new(ROLLBACK, slot, actor)
        self._launch(operation, slot, lambda flow: flow.roll_back(lambda h: h in ran))
        return operation

    def _free_peripheral(self) -> Any:
        slot = self.peripheral()
        if slot is None:
            raise FirmwareRefused(409, "no_device", "this kit has no peripheral configured (smp: device)")
        running = self._running
        if running is not None:
            raise FirmwareRefused(
                409,
                "firmware_operation_running",
                f"firmware operation {running.id} ({running.kind}) is running: let it end first",
            )
        active = self.kit.visits.active()
        if active:
            raise FirmwareRefused(
                409,
                "visit_active",
                f"visit {active[0].id} is active: update the peripheral once it has ended",
            )
        status, reason, _since = slot.current()
        if status == "busy" and not slot.holds_brief_job():
            raise FirmwareRefused(
                409, "device_busy", f"device {slot.id} is busy ({reason}): try again once it is free"
            )
        if status not in ("ready", "busy"):
            raise FirmwareRefused(503, "device_not_ready", not_ready_text(slot.id, status, reason))
        return slot

    def _new(self, kind: str, slot: Any, actor: str) -> FirmwareOperation:
        return FirmwareOperation(
            id=uuid.uuid4().hex[:12],
            kind=kind,
            device=slot.id,
            actor=actor,
            started_at=iso(self.kit.clock.now()),
        )

    def _launch(self, operation: FirmwareOperation, slot: Any, run: Callable[[FirmwareFlow], None]) -> None:
        self._running = operation
        self._remember(operation)
        self._tasks[operation.id] = asyncio.create_task(
            self._run(operation, slot, run), name=f"firmware-{operation.id}"
        )
        log.info("firmware %s %s on %s started by %s", operation.kind, operation.id, slot.id, operation.actor)

    # --- running ----------------------------------------------------------------------------------

    def _timing(self) -> FlowTiming:
        config = self.kit.config
        return FlowTiming(
            reset_timeout_s=float(config["firmware.reset_timeout_s"]),
            self_test_timeout_s=float(config["firmware.self_test_timeout_s"]),
        )

    async def _run(
        self, operation: FirmwareOperation, slot: Any, run: Callable[[FirmwareFlow], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        audit = self._audit_from_thread(loop, operation.actor)

        def job(driver: Any, cancel: threading.Event) -> None:
            flow = FirmwareFlow(
                driver,
                operation,
                self._timing(),
                lambda: iso(self.kit.clock.now()),
                audit,
                _Either(cancel, self._stopping),
                on_slots=self._saw,
            )
            run(flow)

        try:
            await slot.run_when_free(job, wait_s=READ_TIMEOUT_S, brief=False, doing=FIRMWARE_UPDATE)
        except DeviceBusy as exc:
            await self._ended_early(operation, f"the peripheral is busy: {exc}")
        except DeviceError as exc:
            await self._ended_early(operation, f"the peripheral went away: {exc}")
        except Exception as exc:  # noqa: BLE001 - an operation's failure must not go unsaid
            log.exception("firmware operation %s failed unexpectedly", operation.id)
            await self._ended_early(operation, f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self._running = None
        if operation.running_version is not None:
            slot.firmware = operation.running_version  # what /api/v1/devices says it runs
        log.log(
            logging.INFO if operation.state in ("confirmed", "rolled_back") else logging.WARNING,
            "firmware %s %s ended %s: %s",
            operation.kind,
            operation.id,
            operation.state,
            operation.outcome,
            extra={
                "operation_id": operation.id,
                "state": operation.state,
                "running": operation.running_version,
            },
        )

    async def _ended_early(self, operation: FirmwareOperation, why: str) -> None:
        """The job did not run, or did not end its flow: the operation fails, and the audit log
        says why in a firmware_failed entry like the flow's own."""
        if operation.state != RUNNING:
            return
        at = iso(self.kit.clock.now())
        details = {
            "operation_id": operation.id,
            "device": operation.device,
            "version": operation.version,
            "hash": operation.image_hash,
            "reason": why,
        }
        operation.steps.append(FirmwareStep("firmware_failed", at, details))
        operation.state, operation.outcome, operation.ended_at = OPERATION_FAILED, why, at
        try:
            await self.kit.in_database(
                append_entry, self.kit.database, operation.actor, "firmware_failed", details
            )
        except AUDIT_ERRORS as exc:
            log.error("firmware step firmware_failed could not be audited: %s", exc)

    def _saw(self, slots: list[Any]) -> None:
        # Called on the device's thread; the list is replaced whole, never changed in place.
        self._slots = [slot_json(s) for s in slots]

    def _audit_from_thread(self, loop: asyncio.AbstractEventLoop, actor: str) -> Callable[[str, dict], None]:
        """An audit writer for the device's thread: each step's entry is written, in order, on the
        database's own thread before the flow goes on."""

        def audit(action: str, details: dict[str, Any]) -> None:
            future = asyncio.run_coroutine_threadsafe(
                self.kit.in_database(append_entry, self.kit.database, actor, action, details), loop
            )
            try:
                future.result(AUDIT_WAIT_S)
            except AUDIT_ERRORS as exc:
                # A full disk is no reason to stop an update halfway: the steps still say it.
                log.error("firmware step %s could not be audited: %s", action, exc)

        return audit

    def holding(self) -> dict[str, Any] | None:
        """While an operation runs, the failed finding the pre-visit check refuses a visit with:
        the peripheral (the iris illuminator, the battery gauge) is the operation's."""
        operation = self._running
        if operation is None:
            return None
        found = finding(
            FAILED,
            {"operation_id": operation.id, "kind": operation.kind},
            Words(
                "Firmware periferal sedang diperbarui: tunggu sampai selesai, lalu mulai kunjungan.",
                "The peripheral's firmware is being updated: wait for it to end, then start the visit.",
            ),
        )
        return {"id": f"{operation.device}.firmware", "device": operation.device, **found, "duration_s": 0.0}

    async def shutdown(self) -> None:
        """The daemon is stopping: a running operation is asked to stop and waited for (the
        device's job ends at its next step; MCUboot keeps what it has safe)."""
        self._stopping.set()
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=AUDIT_WAIT_S)

    def _remember(self, operation: FirmwareOperation) -> None:
        self._operations[operation.id] = operation
        ended = [o for o in self._operations.values() if o.ended]
        for old in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._operations[old.id]
            self._tasks.pop(old.id, None)


class _Either:
    """Set when either event is: the job's own cancel, or the desk's stop."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def ran_here_confirmed(conn: sqlite3.Connection, device: str) -> frozenset[str]:
    """The image hashes the audit log records as having run on ``device``, confirmed: what a
    rollback may go back to."""
    hashes = set()
    for action in RAN_ACTIONS:
        for entry in find_entries(conn, action=action):
            details = entry["details"]
            running = details.get("running_hash")
            if details.get("device") != device or not running:
                continue
            confirmed = details.get("running_confirmed", details.get("confirmed"))
            if confirmed or action == "firmware_confirmed":
                hashes.add(str(running).lower())
    return frozenset(hashes)


def _read_slots(driver: Any, cancel: threading.Event) -> list[Any]:
    return list(driver.image_slots())


def _read_running_version(driver: Any, cancel: threading.Event) -> str:
    return str(driver.running_version())


def _image_facts(data: bytes) -> dict[str, Any]:
    """The image's version, hash and size, as far as it parses."""
    try:
        image = parse_image(data)
    except ImageFormatError:
        return {"version": None, "image_hash": None, "image_size": len(data)}
    image_hash = image.image_hash
    return {
        "version": version_text(image.version),
        "image_hash": image_hash.hex() if image_hash is not None else None,
        "image_size": len(data),
    }
