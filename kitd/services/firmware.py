"""The peripheral's firmware update, step by step on its device thread: verify, upload, test, confirm.

Its one job: :class:`FirmwareFlow` drives a peripheral driver (kitd.drivers.peripheral) through
MCUboot's test-and-confirm so that the peripheral always has an image that boots. Nothing is
sent before the image passed its checks; an upload cut by the link is taken up again where the
device has it (the driver resumes) a bounded number of times; the new image is only ever marked
for *test*, so MCUboot boots it once and reverts to the old one at the next reset unless it is
confirmed; and it is confirmed only once it runs and its self-test passes. When it does not come
back, or fails its self-test, it is left unconfirmed and the peripheral reset again: the old image
runs, and the operation says so. An operation that ends without confirming while the image
is still marked for test (a reset that never took, a failure or a stop between the mark and the
test boot) erases the secondary slot when the device lets it, else says that the next reset
boots the image untested. A rollback is the same path backwards: a test boot not yet confirmed
is reset away; a confirmed image is replaced by the previous one still in the secondary slot,
tested and confirmed like a new one, but only when that image has run on this peripheral,
confirmed, before (the audit log's word): after a failed update the secondary slot may hold a
new image that never ran.

Every step goes into the operation's steps (what ``GET /api/v1/firmware/operations/{id}``
answers) and, through ``audit``, into the kit's audit log. Running one operation at a time,
the device slot and the audit log's database are kitd.services.firmware_desk's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from firmware_tools.mcuboot_image import ImageFormatError, ImageVersion, parse_version
from kitd.errors import DeviceError, DeviceGone, DeviceTimeout, KitError

UPLOAD, ROLLBACK = "upload", "rollback"
# An operation's state: running, then how it ended. confirmed: the new image runs, confirmed;
# rolled_back: the previous image runs again; reverted: the image from before the operation runs
# (MCUboot reverted the new one); refused: nothing was sent; failed: the flow could not finish,
# the outcome says what runs.
RUNNING, CONFIRMED, ROLLED_BACK, REVERTED, REFUSED, FAILED = (
    "running",
    "confirmed",
    "rolled_back",
    "reverted",
    "refused",
    "failed",
)
STATES = (RUNNING, CONFIRMED, ROLLED_BACK, REVERTED, REFUSED, FAILED)
# The audit log's actions of a firmware operation, in the order a good update writes them.
ACTIONS = (
    "firmware_verified",
    "firmware_refused",
    "firmware_rollback_started",
    "firmware_upload_started",
    "firmware_upload_interrupted",
    "firmware_uploaded",
    "firmware_marked_for_test",
    "firmware_reset",
    "firmware_back",
    "firmware_self_test",
    "firmware_confirmed",
    "firmware_reverted",
    "firmware_failed",
    # After an operation that ended unconfirmed with the image still marked for test: the slot
    # erased (no reset boots it), or the mark left standing because the device refused the erase.
    "firmware_erased",
    "firmware_still_marked",
)
# The ends that leave the image the operation wanted running, confirmed.
SUCCEEDED = (CONFIRMED, ROLLED_BACK)


def parse_kit_version(text: str | None) -> ImageVersion | None:
    """A version as the kit shows it ("1.2.3+4": firmware_tools.mcuboot_image.version_text) as an
    ImageVersion; None when there is none or it is something else."""
    if not text:
        return None
    try:
        return parse_version(text)
    except ImageFormatError:
        return None


class Cancelled(KitError):
    """The daemon is stopping: the operation ends where it is (MCUboot keeps the old image safe)."""


class ImageSlotView(Protocol):
    """One of MCUboot's image slots as the driver reports it (kitd.drivers.peripheral.ImageSlot)."""

    slot: int
    version: str
    hash: str
    bootable: bool
    pending: bool
    confirmed: bool
    active: bool
    permanent: bool


class PeripheralDriver(Protocol):
    """What the flow asks of the peripheral's driver (kitd.drivers.peripheral.PeripheralController)."""

    def image_slots(self) -> list[Any]: ...

    def running_version(self) -> str: ...

    def upload(self, image: bytes, progress: Callable[[int, int], None] | None = None) -> None: ...

    def mark_for_test(self, image_hash: bytes) -> None: ...

    def erase(self) -> None: ...

    def confirm(self, image_hash: bytes | None = None) -> None: ...

    def reset(self) -> None: ...

    def wait_until_back(self, timeout_s: float) -> list[Any]: ...

    def self_test(self, timeout_s: float | None = None) -> Any: ...


@dataclass(frozen=True)
class FlowTiming:
    """How long the flow waits, and how often it tries again (firmware.* in the configuration)."""

    reset_timeout_s: float = 30.0
    self_test_timeout_s: float = 10.0
    # Upload attempts before giving up: a cut link, a reset or a power loss mid-upload each cost one.
    upload_attempts: int = 5


@dataclass
class FirmwareStep:
    """One step of an operation: its audit action, when (the kit's clock) and what it found."""

    action: str
    at: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "at": self.at, "details": dict(self.details)}


@dataclass
class FirmwareOperation:
    """One firmware operation on the peripheral, as the API answers it."""

    id: str
    kind: str
    device: str
    actor: str
    started_at: str
    state: str = RUNNING
    version: str | None = None
    image_hash: str | None = None
    image_size: int = 0
    allow_downgrade: bool = False
    bytes_done: int = 0
    bytes_total: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    steps: list[FirmwareStep] = field(default_factory=list)
    # What ran before the operation and what runs after it (the device's own word).
    old_version: str | None = None
    running_version: str | None = None
    running_hash: str | None = None
    outcome: str | None = None
    ended_at: str | None = None

    @property
    def ended(self) -> bool:
        return self.state != RUNNING

    def to_json(self) -> dict[str, Any]:
        return {
            "operation_id": self.id,
            "kind": self.kind,
            "device": self.device,
            "state": self.state,
            "version": self.version,
            "image_hash": self.image_hash,
            "image_size": self.image_size,
            "allow_downgrade": self.allow_downgrade,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "findings": [dict(f) for f in self.findings],
            "steps": [s.to_json() for s in self.steps],
            "old_version": self.old_version,
            "running_version": self.running_version,
            "running_hash": self.running_hash,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


def slot_json(slot: Any) -> dict[str, Any]:
    """An image slot in the API's FirmwareSlot shape."""
    return {
        "slot": int(slot.slot),
        "version": str(slot.version),
        "hash": str(slot.hash),
        "bootable": bool(slot.bootable),
        "pending": bool(slot.pending),
        "confirmed": bool(slot.confirmed),
        "active": bool(slot.active),
        "permanent": bool(slot.permanent),
    }


def running_slot(slots: list[Any]) -> Any | None:
    """The slot whose image runs now (MCUmgr's `active`)."""
    return next((s for s in slots if s.active), None)


def other_slot(slots: list[Any], running: Any | None) -> Any | None:
    """The slot that does not run: where an upload goes, and the previous image lives."""
    return next((s for s in slots if running is None or s.slot != running.slot), None)


class FlowEnded(Exception):
    """Raised inside the flow once the operation has its final state."""


Verify = Callable[[str | None], list[dict[str, Any]]]
Audit = Callable[[str, dict[str, Any]], None]


class FirmwareFlow:
    """One operation's steps on the peripheral; runs on the device's thread (blocking I/O)."""

    def __init__(
        self,
        driver: PeripheralDriver,
        operation: FirmwareOperation,
        timing: FlowTiming,
        now: Callable[[], str],
        audit: Audit,
        cancel: threading.Event | None = None,
        on_slots: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self.driver = driver
        self.op = operation
        self.timing = timing
        self._now = now
        self._audit = audit
        self._cancel = cancel or threading.Event()
        # Told of every fresh reading of the slots (GET /api/v1/firmware shows them while busy).
        self._on_slots = on_slots
        # Whether this operation marked an image for test (asked to: the power may have gone
        # with the mark written), and the last reading of the slots since then (None: none yet):
        # an operation that ends without confirming must not leave that mark unsaid.
        self._marked = False
        self._since_mark: list[Any] | None = None

    # --- the two operations ----------------------------------------------------------------------

    def update(self, image: bytes, image_hash: bytes, verify: Verify) -> None:
        """Verify, upload, mark for test, reset, check, self-test, confirm (or revert)."""
        try:
            self._update(image, image_hash, verify)
        except FlowEnded:
            pass
        except Exception as exc:  # noqa: BLE001 - any failure still ends with what runs said
            self._fail_with_what_runs(exc)
        self._settle_the_mark()

    def roll_back(self, ran_before: Callable[[str], bool]) -> None:
        """Back to the image before: a test boot reset away, or the secondary slot's image tested
        when ``ran_before(its hash)`` says it ran on this peripheral, confirmed (the audit log)."""
        try:
            self._roll_back(ran_before)
        except FlowEnded:
            pass
        except Exception as exc:  # noqa: BLE001
            self._fail_with_what_runs(exc)
        self._settle_the_mark()

    def _update(self, image: bytes, image_hash: bytes, verify: Verify) -> None:
        op = self.op
        # The running image's hash goes into the first entry: the audit log's record that it ran
        # here, confirmed, which a later rollback to it relies on.
        before = running_slot(self._slots())
        running = before.version if before is not None else None
        was = {
            "running_version": running,
            "running_hash": before.hash if before is not None else None,
            "running_confirmed": bool(before is not None and before.confirmed),
        }
        op.old_version = running
        op.findings = verify(running)
        refused = [f for f in op.findings if not f.get("ok")]
        if refused:
            reasons = [f"{f.get('check')}: {f.get('reason')}" for f in refused]
            self._step("firmware_refused", **was, reasons=reasons)
            self._end(REFUSED, "refused, nothing was sent: " + "; ".join(reasons))
        self._step("firmware_verified", **was, checks=[f.get("check") for f in op.findings])
        self._upload(image)
        slots = self._slots()
        target = image_hash.hex()
        landed = other_slot(slots, running_slot(slots))
        if landed is None or landed.hash.lower() != target:
            found = landed.hash if landed is not None else "no image"
            self._step(
                "firmware_failed", reason="uploaded image not found in the secondary slot", found=found
            )
            self._end(FAILED, f"the secondary slot holds {found}, not the image sent; nothing was marked")
        self._step("firmware_uploaded", slot=landed.slot, size=len(image))
        self._test_and_confirm(image_hash, op.version or landed.version, landed.slot, success=CONFIRMED)

    def _roll_back(self, ran_before: Callable[[str], bool]) -> None:
        slots = self._slots()
        running = running_slot(slots)
        previous = other_slot(slots, running)
        self.op.old_version = running.version if running is not None else None
        if running is None:
            self._step("firmware_refused", reason="the peripheral reports no running image")
            self._end(REFUSED, "the peripheral reports no running image: nothing was changed")
        self._step(
            "firmware_rollback_started",
            running_version=self.op.old_version,
            running_hash=running.hash if running is not None else None,
            running_confirmed=bool(running is not None and running.confirmed),
        )
        if running is not None and not running.confirmed:
            # A test boot: MCUboot puts the confirmed image back at the next reset.
            self._reset("to let MCUboot revert the unconfirmed image")
            slots = self._wait_back()
            now_running = running_slot(slots)
            if now_running is not None and now_running.hash != running.hash and now_running.confirmed:
                self._step(
                    "firmware_reverted", running_version=now_running.version, running_hash=now_running.hash
                )
                self._end(ROLLED_BACK, f"rolled back: {now_running.version} runs again, confirmed")
            self._step("firmware_failed", reason="still the unconfirmed image after the rollback's reset")
            self._end_with(slots, FAILED, "the peripheral still runs the unconfirmed image after its reset")
        if previous is None or not previous.version or not previous.bootable or previous.hash == running.hash:
            self._step("firmware_refused", reason="no previous image to roll back to")
            self._end(REFUSED, "no previous bootable image in the secondary slot: nothing to roll back to")
        if not ran_before(previous.hash.lower()):
            # After an update that failed past its upload the secondary slot holds an image that
            # never ran: "rolling back" to it would boot untried firmware.
            why = never_ran(previous.version, previous.hash)
            self._step("firmware_refused", reason=why, slot=previous.slot)
            self._end(REFUSED, f"{why}: nothing to roll back to, nothing was changed")
        self.op.version, self.op.image_hash = previous.version, previous.hash
        self._test_and_confirm(
            bytes.fromhex(previous.hash), previous.version, previous.slot, success=ROLLED_BACK
        )

    # --- the steps ----------------------------------------------------------------------------

    def _upload(self, image: bytes) -> None:
        """The whole image in the secondary slot; the driver takes up a cut upload where the device
        has it, and each cut costs one of the bounded attempts."""
        op = self.op
        op.bytes_total, op.bytes_done = len(image), 0
        last_reason = ""
        for attempt in range(1, self.timing.upload_attempts + 1):
            started: list[int] = []

            def progress(done: int, total: int, attempt: int = attempt, started: list[int] = started) -> None:
                if self._cancel.is_set():
                    raise Cancelled("the daemon is stopping")
                if not started:
                    # The first answer says where the device takes it up: 0, or what it already has.
                    started.append(done)
                    self._step("firmware_upload_started", attempt=attempt, offset=done, size=total)
                op.bytes_done, op.bytes_total = done, total

            try:
                self.driver.upload(image, progress)
            except DeviceError as exc:
                last_reason = f"{type(exc).__name__}: {exc}"
                if not started:
                    self._step("firmware_upload_started", attempt=attempt, offset=None, size=len(image))
                self._step(
                    "firmware_upload_interrupted", attempt=attempt, offset=op.bytes_done, reason=last_reason
                )
                self._check_cancel()
                if attempt < self.timing.upload_attempts:
                    self._come_back_after(exc)
                continue
            op.bytes_done = op.bytes_total
            return
        self._step("firmware_failed", reason=f"upload failed {self.timing.upload_attempts} times")
        self._end(
            FAILED,
            f"the upload failed {self.timing.upload_attempts} times (last: {last_reason}); nothing was "
            "marked, so the old image runs",
            read_slots=True,
        )

    def _come_back_after(self, exc: DeviceError) -> None:
        """After a cut link, a reset or a power loss: wait for the peripheral before trying again."""
        if not isinstance(exc, DeviceGone | DeviceTimeout):
            return  # it answered, wrongly: try again at once
        try:
            self._wait_back()
        except DeviceError:
            pass  # the next attempt fails the same way, and counts

    def _test_and_confirm(self, target_hash: bytes, version: str, slot: int, success: str) -> None:
        """Mark the image for test, boot it, check it runs, self-test it and confirm it; else revert."""
        target = target_hash.hex()
        if self._mark_for_test(target_hash, slot):
            self._reset("to boot the image under test")
            try:
                slots = self._wait_back()
            except DeviceError as exc:
                # The image under test never showed up: a watchdog (or the technician's power
                # switch) resets it, and MCUboot, finding it unconfirmed, boots the old one.
                self._step("firmware_back", ok=False, reason=f"{type(exc).__name__}: {exc}")
                self._settle(target, version, success, f"the new image did not come back ({exc})")
        else:
            slots = self._slots()
        running = running_slot(slots)
        if running is None or running.hash.lower() != target:
            if self._pending(slots, target):
                # The reset did not take (the port went before the command): once more.
                self._reset("the image under test did not boot: once more")
                slots = self._wait_back()
                running = running_slot(slots)
            if self._pending(slots, target):
                # Two resets did not take: the mark stands (what is done about it, and said, is
                # _settle_the_mark's). Not a revert.
                self._step("firmware_failed", reason="still marked for test after two resets")
                self._end_with(slots, FAILED, f"{version} did not boot after two resets")
            if running is None or running.hash.lower() != target:
                self._end_reverted(slots, f"{version} did not boot")
        self._check_cancel()
        try:
            result = self._self_test()
        except DeviceError as exc:
            self._step("firmware_self_test", ok=False, detail=f"{type(exc).__name__}: {exc}")
            self._settle(target, version, success, f"its self-test did not answer ({exc})")
        ok, detail = bool(getattr(result, "ok", False)), str(getattr(result, "detail", ""))
        self._step("firmware_self_test", ok=ok, detail=detail)
        if not ok:
            self._revert(target, f"{version} failed its self-test ({detail})")
        try:
            slots = self._slots()
        except DeviceError as exc:
            self._settle(target, version, success, f"the peripheral went away after its self-test ({exc})")
        running = running_slot(slots)
        if running is None or running.hash.lower() != target:
            # The board restarted between its boot and the answer (a power cut): MCUboot went back
            # to the old image, and the self-test that passed may have been the old image's.
            self._end_reverted(slots, f"{version} was no longer running after the self-test (a restart)")
        try:
            # The running image, just seen to be the new one. Never with its hash: a confirm
            # naming slot 1's image is MCUboot's "swap it in for good", which, had the board
            # gone back to the old image meanwhile, would make the new one permanent untested.
            self.driver.confirm(None)
            slots = self._slots()
        except DeviceError as exc:
            self._settle(target, version, success, f"confirming it failed ({exc})", self_test_passed=True)
        running = running_slot(slots)
        if running is not None and running.hash.lower() == target and running.confirmed:
            self._confirmed(slots, running, success)
        self._revert(target, f"{version} did not stay confirmed")

    def _mark_for_test(self, target_hash: bytes, slot: int) -> bool:
        """Mark the image for test; False when the device already boots it (the power went just
        after the mark was written, and MCUboot took it up at power-on)."""
        # Set before asking: the mark may be written even when its answer is lost.
        self._marked, self._since_mark = True, None
        try:
            self.driver.mark_for_test(target_hash)
        except DeviceError as exc:
            self._step("firmware_marked_for_test", ok=False, slot=slot, reason=f"{type(exc).__name__}: {exc}")
            slots = self._wait_back()
            running = running_slot(slots)
            if running is not None and running.hash.lower() == target_hash.hex():
                return False
            if self._pending(slots, target_hash.hex()):
                return True
            self.driver.mark_for_test(target_hash)
        self._step("firmware_marked_for_test", ok=True, slot=slot)
        return True

    def _settle(
        self, target: str, version: str, success: str, why: str, self_test_passed: bool = False
    ) -> None:
        """After the device went away in the middle: what runs once it is back decides. The new
        image confirmed is a success; unconfirmed, it is reset away (its test was not passed, or
        its confirmation not taken); the old image is a revert."""
        slots = self._wait_back()
        running = running_slot(slots)
        if running is not None and running.hash.lower() == target:
            if running.confirmed and not self_test_passed:
                # Confirmed without the kit's confirm (an image that confirms itself at boot): a
                # reset no longer reverts it, and its self-test never passed, so no success.
                self._step("firmware_failed", reason="confirmed without passing its self-test")
                self._end_with(
                    slots, FAILED, f"{why}; {running.version} runs, confirmed without passing its self-test"
                )
            if running.confirmed:
                self._confirmed(slots, running, success)
            if self_test_passed:
                self.driver.confirm(None)  # the running image, the new one (see _test_and_confirm)
                slots = self._slots()
                running = running_slot(slots)
                if running is not None and running.confirmed and running.hash.lower() == target:
                    self._confirmed(slots, running, success)
            self._revert(target, why)
        self._end_reverted(slots, why)

    def _revert(self, target: str, why: str) -> None:
        """Leave the image under test unconfirmed and reset: MCUboot boots the old one."""
        self._reset("to revert to the confirmed image")
        slots = self._wait_back()
        running = running_slot(slots)
        if running is not None and not running.confirmed:
            self._step("firmware_failed", reason="still the unconfirmed image after the revert's reset")
            self._end_with(slots, FAILED, f"{why}; the unconfirmed image still runs after a reset")
        if running is not None and running.hash.lower() == target:
            # It confirmed itself before the kit could leave it unconfirmed: no reset reverts it.
            self._step(
                "firmware_failed", reason="the image under test still runs, confirmed, after the reset"
            )
            self._end_with(slots, FAILED, f"{why}; {running.version} still runs, confirmed (kitfw rollback)")
        self._end_reverted(slots, why)

    def _confirmed(self, slots: list[Any], running: Any, success: str) -> None:
        self._step(
            "firmware_confirmed",
            running_version=running.version,
            running_hash=running.hash,
            running_confirmed=True,
        )
        self._end_with(slots, success, f"{running.version} runs, confirmed")

    def _end_reverted(self, slots: list[Any], why: str) -> None:
        running = running_slot(slots)
        version = running.version if running is not None else None
        self._step(
            "firmware_reverted",
            running_version=version,
            running_hash=running.hash if running is not None else None,
            running_confirmed=bool(running is not None and running.confirmed),
        )
        self._end_with(slots, REVERTED, f"{why}: reverted, {version} runs")

    def _self_test(self) -> Any:
        # The driver keeps to the timeout (it asks again only within it) and its answer is the
        # verdict: an answer that came in time is not judged late afterwards.
        return self.driver.self_test(self.timing.self_test_timeout_s)

    def _reset(self, why: str) -> None:
        self._check_cancel()
        try:
            self.driver.reset()
        except DeviceGone:
            pass  # a reset makes the port vanish; the wait that follows says whether it took
        self._step("firmware_reset", reason=why)

    def _wait_back(self) -> list[Any]:
        slots = list(self.driver.wait_until_back(self.timing.reset_timeout_s))
        self._seen(slots)
        running = running_slot(slots)
        self._step(
            "firmware_back",
            ok=True,
            running_version=running.version if running is not None else None,
            running_hash=running.hash if running is not None else None,
            confirmed=bool(running is not None and running.confirmed),
        )
        return slots

    def _pending(self, slots: list[Any], target: str) -> bool:
        return any(s.hash.lower() == target and s.pending and not s.active for s in slots)

    def _slots(self) -> list[Any]:
        slots = list(self.driver.image_slots())
        self._seen(slots)
        return slots

    def _seen(self, slots: list[Any]) -> None:
        if self._marked:
            self._since_mark = slots
        if self._on_slots is not None:
            self._on_slots(slots)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("the daemon is stopping")

    # --- recording and ending -----------------------------------------------------------------

    def _step(self, action: str, **details: Any) -> None:
        details = {
            "operation_id": self.op.id,
            "device": self.op.device,
            "version": self.op.version,
            "hash": self.op.image_hash,
            **details,
        }
        self.op.steps.append(FirmwareStep(action, self._now(), details))
        self._audit(action, details)

    def _end_with(self, slots: list[Any], state: str, outcome: str) -> None:
        running = running_slot(slots)
        if running is not None:
            self.op.running_version, self.op.running_hash = running.version, running.hash
        self._end(state, outcome)

    def _end(self, state: str, outcome: str, read_slots: bool = False) -> None:
        if read_slots:
            try:
                slots = self._slots()
            except DeviceError:
                slots = []
            running = running_slot(slots)
            if running is not None:
                self.op.running_version, self.op.running_hash = running.version, running.hash
        self.op.state, self.op.outcome, self.op.ended_at = state, outcome, self._now()
        raise FlowEnded

    def _fail_with_what_runs(self, exc: BaseException) -> None:
        """An unforeseen failure: say it, and what the peripheral runs if it can be asked."""
        why = f"{type(exc).__name__}: {exc}"
        try:
            self._step("firmware_failed", reason=why)
            self._end(FAILED, f"the operation stopped ({why})", read_slots=not isinstance(exc, Cancelled))
        except FlowEnded:
            pass
        if self.op.running_version is not None:
            self.op.outcome = f"{self.op.outcome}; {self.op.running_version} runs"

    def _settle_the_mark(self) -> None:
        """After an operation that ended without confirming: an image this operation marked for
        test and still marked (a reset that never took; a failure or a stop between the mark and
        the test boot) would boot untested at the next reset, in a visit perhaps. Erase slot 1
        when the device lets it (Zephyr refuses unless built to allow it); either way the audit
        log and the outcome say what became of the mark."""
        op = self.op
        if not self._marked or op.state in SUCCEEDED:
            return
        stopping = self._cancel.is_set()
        slots = self._since_mark
        if not stopping:
            try:
                slots = self._slots()
            except DeviceError:
                pass  # the last reading since the mark, if any, is what is known
        if slots is None:
            self._step(
                "firmware_still_marked", certain=False, reason="no reading of the slots since the mark"
            )
            op.outcome = (
                f"{op.outcome}; slot 1 may still be marked for test (the slots could not be read "
                "since the mark): check with kitfw list before the next reset"
            )
            return
        marked = next((s for s in slots if s.pending and not s.active), None)
        if marked is None:
            return
        refusal = "the daemon is stopping" if stopping else self._erase_the_mark()
        if refusal is None:
            self._step(
                "firmware_erased", slot=marked.slot, erased_version=marked.version, erased_hash=marked.hash
            )
            op.outcome = f"{op.outcome}; {marked.version}, left marked for test, was erased from slot 1"
            return
        self._step(
            "firmware_still_marked",
            certain=True,
            slot=marked.slot,
            marked_version=marked.version,
            marked_hash=marked.hash,
            reason=f"not erased: {refusal}",
        )
        op.outcome = (
            f"{op.outcome}; {marked.version} is still marked for test in slot 1 (not erased: "
            f"{refusal}): the next reset boots it untested, the reset after reverts it"
        )

    def _erase_the_mark(self) -> str | None:
        """Erase slot 1 and check that the mark went with it; None when it did, else why not."""
        try:
            self.driver.erase()
            slots = self._slots()
        except DeviceError as exc:
            return f"{type(exc).__name__}: {exc}"
        if any(s.pending and not s.active for s in slots):
            return "the device still reports slot 1 marked after the erase"
        return None


def never_ran(version: str, image_hash: str) -> str:
    """Why a rollback to the secondary slot's image is refused, in one line."""
    return f"slot 1 holds {version} ({image_hash[:12]}), which never ran confirmed on this peripheral"
