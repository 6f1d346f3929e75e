"""The daemon's device slots: keep each configured device connected, and use it one job at a time.

A slot owns one driver. Its supervisor opens the device, retries with backoff
while it is absent, and checks a ready device's presence by bus enumeration; a
job (a capture) takes the slot exclusively and runs the driver's blocking I/O on
the slot's own thread, off the event loop. A device that vanishes mid-job makes
the slot `disconnected`; the daemon itself never stops because of a device.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kitd.drivers.backoff import Backoff
from kitd.drivers.base import Driver, FrameStream
from kitd.drivers.facts import DeviceFacts
from kitd.errors import DeviceBusy, DeviceError, DeviceGone, KitError
from kitd.services.claims import ClaimHeld, DeviceClaim, describe_holder

log = logging.getLogger("kitd.devices")

T = TypeVar("T")

STATUSES = ("ready", "busy", "disconnected", "error")
NOT_OPENED = "not opened yet"


def not_ready_text(device_id: str, status: str, reason: str) -> str:
    """A device that is not ready, in one line: 'device signature is disconnected: ...'."""
    state = "in error" if status == "error" else status
    return f"device {device_id} is {state}: {reason}"


# What a busy device is doing (its busy status's reason): a capture, unless its job says else.
CAPTURING = "capturing"
GUIDED_TEST = "guided test"
FIRMWARE_UPDATE = "firmware update"


class DeviceSlot:
    """One configured device as the daemon sees it."""

    def __init__(
        self,
        device_id: str,
        uri: str,
        kind: str,
        driver_factory: Callable[[], Driver],
        *,
        claim_key: str = "",
        holder: dict | None = None,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 1.0,
        health_interval_s: float = 1.0,
    ) -> None:
        self.id = device_id
        self.uri = uri
        self.kind = kind
        self.model: str | None = None
        self.serial: str | None = None
        self.firmware: str | None = None
        self.detail: dict[str, Any] = {}
        self.status = "disconnected"
        self.reason = NOT_OPENED
        self.since = time.time()
        self.cancel = threading.Event()
        self._driver_factory = driver_factory
        self._driver: Driver | None = None
        self._claim_key = claim_key
        self._holder = dict(holder or {})
        self._claim: DeviceClaim | None = None
        self._job_lock = asyncio.Lock()
        self._brief_job = False  # the job holding the device is a brief one (run_when_free)
        self._job_cancel: threading.Event | None = None
        self._wake = asyncio.Event()
        # Told of every status change (the daemon's event stream): on_status(slot, status, reason).
        self.on_status: Callable[[DeviceSlot, str, str], None] | None = None
        self.looked_at = asyncio.Event()  # set after the first attempt to open
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dev-{device_id}")
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._health_interval_s = health_interval_s

    @property
    def driver(self) -> Driver | None:
        """The slot's driver once made (None before the first open), for services that read a stream."""
        return self._driver

    def set_api_url(self, url: str) -> None:
        """Say in the device's claim where the daemon's API is (known once it listens), so that
        kitctl, refused the device, can name it."""
        self._holder["api"] = url

    def _live_stream(self) -> FrameStream | None:
        # A ready driver that keeps its own stream alive (a camera that reopens itself).
        driver = self._driver
        return driver if self.status == "ready" and isinstance(driver, FrameStream) else None

    def current(self) -> tuple[str, str, float]:
        """(status, reason, since); a streaming driver's own live status while it is open."""
        live = self._live_stream()
        return live.live_status() if live is not None else (self.status, self.reason, self.since)

    def describe(self) -> dict[str, Any]:
        """The slot in the API's device shape."""
        status, reason, since = self.current()
        detail = dict(self.detail)
        live = self._live_stream()
        if live is not None:
            detail.update(live.live_detail())
        detail["status_reason"] = reason
        detail["status_since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
        return {
            "id": self.id,
            "uri": self.uri,
            "kind": self.kind,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "status": status,
            "detail": detail,
        }

    def _set_status(self, status: str, reason: str) -> None:
        if status != self.status or reason != self.reason:
            self.since = time.time()
            if self.on_status is not None and status != self.status:
                self.on_status(self, status, reason)
            level = logging.INFO if status in ("ready", "busy") else logging.WARNING
            if not (status == "busy" or self.status == "busy"):
                log.log(
                    level,
                    "device %s is %s: %s",
                    self.id,
                    status,
                    reason,
                    extra={"device": self.id, "status": status, "reason": reason},
                )
        self.status = status
        self.reason = reason

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _open_blocking(self) -> DeviceFacts:
        if self._claim is None:
            try:
                self._claim = DeviceClaim(self.uri, self._claim_key, self._holder)
            except ClaimHeld as held:
                raise DeviceBusy(f"held by {describe_holder(held.holder)}") from None
        if self._driver is None:
            self._driver = self._driver_factory()
        facts = self._driver.open()
        return facts

    def _close_blocking(self) -> None:
        if self._driver is not None:
            try:
                self._driver.close()
            except Exception:  # noqa: BLE001 - closing a vanished device may fail any way
                log.debug("closing %s failed", self.id, exc_info=True)

    async def supervise(self) -> None:
        """Open the device, keep it open, reopen it after it vanishes; runs until cancelled."""
        backoff = Backoff(self._reconnect_min_s, self._reconnect_max_s)
        while True:
            if self.status in ("disconnected", "error"):
                try:
                    facts = await self._in_thread(self._open_blocking)
                except DeviceBusy as exc:
                    self._set_status("error", str(exc))
                except DeviceGone as exc:
                    # Keep why it went away (e.g. unplugged mid-capture) while retrying.
                    if self.status != "disconnected" or self.reason == NOT_OPENED:
                        self._set_status("disconnected", str(exc))
                except KitError as exc:
                    self._set_status("error", str(exc))
                except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the daemon
                    log.exception("opening %s failed unexpectedly", self.id)
                    self._set_status("error", f"unexpected error: {exc}")
                else:
                    self.model, self.serial, self.firmware = facts.model, facts.serial, facts.firmware
                    self.detail = dict(facts.detail)
                    self._set_status("ready", "opened")
                    self.looked_at.set()
                    backoff.reset()
                    continue
                self.looked_at.set()
                await self._sleep(backoff.next_delay())
            else:
                await self._sleep(self._health_interval_s)
                if self.status == "ready" and not self._job_lock.locked():
                    await self._check_presence()

    async def _check_presence(self) -> None:
        try:
            present = await self._in_thread(self._driver.is_present)
        except DeviceError as exc:
            present, why = False, str(exc)
        else:
            why = "device no longer on the bus"
        if not present and not self._job_lock.locked():
            await self._lost(why)

    async def _lost(self, reason: str) -> None:
        await self._in_thread(self._close_blocking)
        self._set_status("disconnected", reason)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def run_job(
        self, job: Callable[[Any, threading.Event], T], brief: bool = False, doing: str = CAPTURING
    ) -> T:
        """Run `job(driver, cancel)` on the device's thread, exclusively; DeviceBusy if taken,
        DeviceGone if the device is not ready (for a camera: its stream is not flowing).

        `cancel` is set when the caller goes away (its coroutine is cancelled: the HTTP client
        disconnected) or the daemon stops; the job should then end soon. The device stays the
        job's until it has, so that no second job talks to it meanwhile. ``doing`` is the busy
        status's reason (what the device is doing: a capture, a firmware update).
        """
        if self._job_lock.locked():
            doing = self.reason if self.status == "busy" else "another job"
            raise DeviceBusy(f"device {self.id} is busy ({doing}): try again when it is done")
        async with self._job_lock:
            status, reason, _ = self.current()
            if status != "ready":
                raise DeviceGone(not_ready_text(self.id, status, reason))
            cancel = self._job_cancel = threading.Event()
            self._brief_job = brief
            if self.cancel.is_set():
                cancel.set()
            self._set_status("busy", doing)
            future = asyncio.get_running_loop().run_in_executor(self._executor, job, self._driver, cancel)
            try:
                result = await asyncio.shield(future)
            except asyncio.CancelledError:
                cancel.set()
                await asyncio.wait([future])
                if not future.cancelled():
                    # The job's own end (a cancelled capture raises) is read here, or asyncio
                    # logs it with a traceback as never retrieved.
                    future.exception()
                if self.status == "busy":
                    self._set_status("ready", "capture abandoned by its client")
                log.warning(
                    "capture on %s abandoned by its client",
                    self.id,
                    extra={"device": self.id, "reason": "client went away"},
                )
                raise
            except DeviceGone as exc:
                await self._lost(str(exc))
                self._wake.set()
                raise
            except BaseException:
                if self.status == "busy":
                    self._set_status("ready", "last capture failed")
                raise
            finally:
                self._job_cancel = None
                self._brief_job = False
            self._set_status("ready", "last capture succeeded")
            return result

    async def run_when_free(
        self,
        job: Callable[[Any, threading.Event], T],
        wait_s: float = 2.0,
        brief: bool = True,
        doing: str = CAPTURING,
    ) -> T:
        """`run_job` after waiting up to `wait_s` for the job holding the device to end, for jobs
        that may meet a brief one (a gauge read, a light switched) instead of failing DeviceBusy at
        once; a long job (a capture, a firmware update) still makes it DeviceBusy. ``brief``: this
        job is one of those brief ones (`holds_brief_job`)."""
        deadline = time.monotonic() + wait_s
        while self._job_lock.locked() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return await self.run_job(job, brief, doing)

    def holds_brief_job(self) -> bool:
        """Busy only with a brief job, which a job started with `run_when_free` waits out."""
        return self._job_lock.locked() and self._brief_job

    async def shutdown(self) -> None:
        self.cancel.set()
        if self._job_cancel is not None:
            self._job_cancel.set()
        await self._in_thread(self._close_blocking)
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._claim is not None:
            self._claim.release()
            self._claim = None


# The device kind of the kit's peripheral controller (kitd.drivers.peripheral).
PERIPHERAL = "peripheral"


def peripheral_slot(kit: Any) -> DeviceSlot | None:
    """The kit's peripheral controller's slot (the first one configured), or None: the one place
    that knows how the firmware desk, the battery check and the illuminator find it."""
    return next((s for s in getattr(kit, "slots", {}).values() if s.kind == PERIPHERAL), None)
