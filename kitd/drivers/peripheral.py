"""The kit's peripheral controller (illuminator, battery gauge, MCUboot firmware) over MCUmgr SMP.

The peripheral is a small microcontroller running Zephyr-style firmware under MCUboot; it
answers MCUmgr's Simple Management Protocol on a USB serial port (CDC-ACM), framed as SMP's
"console" transport (lines of base64 starting 0x06 0x09, continued by 0x04 0x14). PyPI
`smpclient` is the client; the `smp` package's message classes are the codec. What the kit
uses:

    OS (0)        echo, reset, MCUmgr parameters (the device's buffer size)
    image (1)     state read/write (test: confirm false with a hash; confirm true), upload
                  (off/len/sha/data; the first chunk carries len and the whole file's SHA-256,
                  and the same sha again after a cut answers with the offset the device has;
                  a completed upload whose bytes do not match the sha (`match: false`) is
                  erased and sent again from 0, once), erase of slot 1 (Zephyr refuses it
                  while slot 1 is marked for test or holds the image to revert to, unless
                  built with CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING: a refusal is a
                  ProtocolError)
    kit (64)      0 read `battery` -> {mv, percent, charging}
                  1 write `illuminator` {on, level 0..100} -> the same back
                  2 read `self_test` -> {ok, detail}

The group-64 messages are defined here, the way the `smp` package defines its groups, so
that the simulator (hil.smp_peripheral_sim) answers with the very classes this driver reads.

smpclient is asyncio; kitd's drivers are blocking and run on their device slot's thread. The
controller owns one private event loop for its whole life and runs each call to completion
on the calling thread (`run_until_complete`), one at a time under a lock. One loop, not
`asyncio.run` per call: the transport's queues and the port stay with the loop that opened
them; and no thread of its own, so the port is only ever touched from the caller's thread.
Call it off any running event loop, as every kitd driver.

A request that gets no answer, a garbled one (CRC, base64) or an answer to an earlier request
(a late reply after a timeout) is retried a bounded number of times on a freshly opened port
(which also discards half-received lines); a port that stays gone becomes DeviceGone, an SMP
error code a ProtocolError. The self-test is the exception: it is asked again only within its
own timeout (a slow self-test must not run four times over). On reset a USB CDC-ACM board
drops off the bus and enumerates again: the port vanishes and returns, so `wait_until_back`
waits for exactly that.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import IntEnum, unique
from typing import Any

from smp import error as smperror
from smp import message as smpmessage
from smp.exceptions import SMPException
from smpclient import SMPClient
from smpclient.exceptions import SMPClientException
from smpclient.generics import error, error_v1, success
from smpclient.requests.image_management import (
    ImageErase,
    ImageStatesRead,
    ImageStatesWrite,
    ImageUploadWrite,
)
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, ResetWrite
from smpclient.transport import SMPTransportDisconnected
from smpclient.transport.serial import SMPSerialTransport

from firmware_tools.mcuboot_image import ImageFormatError, parse_version, version_text
from kitd.drivers.facts import DeviceFacts
from kitd.errors import DeviceGone, ProtocolError

MODEL = "kit peripheral controller (MCUboot, MCUmgr SMP)"
DEFAULT_BAUD = 115200

# The kit's own SMP group (user groups start at 64).
KIT_GROUP = 64


@unique
class KitCommand(IntEnum):
    BATTERY = 0
    ILLUMINATOR = 1
    SELF_TEST = 2


@unique
class KIT_MGMT_ERR(IntEnum):  # noqa: N801 - named as the smp package names its groups' codes
    """The kit group's own error codes (an `err` map's rc)."""

    OK = 0
    UNKNOWN = 1
    GAUGE_NOT_READY = 2
    ILLUMINATOR_FAULT = 3


# --- the kit group's messages, as the `smp` package defines a group ----------------------------


class BatteryReadRequest(smpmessage.ReadRequest):
    """Read the battery gauge."""

    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.BATTERY


class BatteryReadResponse(smpmessage.ReadResponse):
    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.BATTERY

    mv: int
    percent: int
    charging: bool


class IlluminatorWriteRequest(smpmessage.WriteRequest):
    """Switch the iris illuminator (infrared LEDs) on or off, at a level 0..100."""

    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.ILLUMINATOR

    on: bool
    level: int


class IlluminatorWriteResponse(smpmessage.WriteResponse):
    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.ILLUMINATOR

    on: bool
    level: int


class SelfTestReadRequest(smpmessage.ReadRequest):
    """Run the running image's self-test."""

    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.SELF_TEST


class SelfTestReadResponse(smpmessage.ReadResponse):
    _GROUP_ID = KIT_GROUP
    _COMMAND_ID = KitCommand.SELF_TEST

    ok: bool
    detail: str


class KitErrorV1(smperror.ErrorV1):
    _GROUP_ID = KIT_GROUP


class KitErrorV2(smperror.ErrorV2[KIT_MGMT_ERR]):
    _GROUP_ID = KIT_GROUP


class _KitGroup:
    _ErrorV1 = KitErrorV1
    _ErrorV2 = KitErrorV2


class BatteryRead(BatteryReadRequest, _KitGroup):
    _Response = BatteryReadResponse


class IlluminatorWrite(IlluminatorWriteRequest, _KitGroup):
    _Response = IlluminatorWriteResponse


class SelfTestRead(SelfTestReadRequest, _KitGroup):
    _Response = SelfTestReadResponse


# --- what the controller answers ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageSlot:
    """One MCUboot slot as the device reports it (0 runs, 1 receives uploads); hash in hex."""

    slot: int
    version: str
    hash: str
    bootable: bool
    pending: bool
    confirmed: bool
    active: bool
    permanent: bool


@dataclass(frozen=True)
class BatteryReading:
    millivolts: int
    percent: int
    charging: bool


@dataclass(frozen=True)
class SelfTest:
    ok: bool
    detail: str


def kit_version(text: str) -> str:
    """The device's version in the kit's form (firmware_tools.mcuboot_image.version_text, imgtool's
    "1.2.3+4"): Zephyr's img_mgmt reports a build number as a fourth part ("1.2.3.4"). The one
    place the device's form is read; anything else it reports is passed on as it is."""
    parts = text.split(".")
    if 3 <= len(parts) <= 4 and all(p.isdigit() for p in parts):
        try:
            return version_text(parse_version(".".join(parts[:3]) + (f"+{parts[3]}" if parts[3:] else "")))
        except ImageFormatError:
            return text  # too large for an image header: not a version MCUboot wrote
    return text


def slots_from_states(images: list[Any]) -> list[ImageSlot]:
    """ImageSlots from an image state response's `images` (absent flags are false)."""
    return [
        ImageSlot(
            slot=state.slot,
            version=kit_version(state.version),
            hash=bytes(state.hash or b"").hex(),
            bootable=bool(state.bootable),
            pending=bool(state.pending),
            confirmed=bool(state.confirmed),
            active=bool(state.active),
            permanent=bool(state.permanent),
        )
        for state in images
        if (state.image or 0) == 0
    ]


def describe_error(response: Any) -> str:
    """An SMP error response in one line: the code's name and the group's reason."""
    if error_v1(response):
        reason = f" ({response.rsn})" if response.rsn else ""
        return f"SMP error {response.rc.name.lower()} ({int(response.rc)}){reason}"
    err = response.err
    rc = err.rc
    name = rc.name.lower() if isinstance(rc, IntEnum) else str(rc)
    return f"SMP group {int(err.group)} error {name} ({int(rc)})"


# Anything that says "no good answer to this request" rather than "the device refused it".
_NO_ANSWER = (TimeoutError, SMPException, SMPClientException, binascii.Error, ValueError, OSError)
# A frame of the device's buffer size, base64 and framed, is about this much larger on the wire.
WIRE_EXPANSION = 1.4
# Attempts of one request before the device is taken as gone.
TRIES = 4
# The first chunk of an upload may wait this many request timeouts (the device erases the slot).
FIRST_CHUNK_FACTOR = 2
# Times a completed upload whose bytes did not match its SHA-256 is erased and sent again.
MISMATCH_RESENDS = 1


class UploadForgotten(ProtocolError):
    """The peripheral answered an earlier offset than the chunk it was sent: it restarted (a
    power loss, a reset) and forgot the upload. The attempt ends here, so that it is counted
    and audited as cut; the next one starts from 0."""


# After a commanded reset the old port should vanish within this long (Zephyr answers, then
# reboots after CONFIG_MCUMGR_GRP_OS_RESET_MS, 250 ms by default).
VANISH_WAIT_S = 2.0
POLL_S = 0.05


class PeripheralController:
    """The peripheral controller over SMP on one serial port (blocking; see the module doc)."""

    kind = "peripheral"
    model = MODEL

    def __init__(
        self,
        path: str,
        baud: int = DEFAULT_BAUD,
        *,
        request_timeout_s: float | None = None,
        reconnect_s: float = 5.0,
        tries: int = TRIES,
    ) -> None:
        """`request_timeout_s`: one request's answer (default: 1 s plus both ways of a full
        frame at `baud`); `reconnect_s`: how long a vanished port may take to return before a
        request gives up (longer than the device's reset)."""
        self.path = path
        self.baud = baud
        self.reconnect_s = reconnect_s
        self.tries = max(1, tries)
        self._timeout_override = request_timeout_s
        self._buf_size: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: SMPClient | None = None
        self._transport: SMPSerialTransport | None = None
        self._rdev: int | None = None
        self._reset_rdev: int | None = None
        self._lock = threading.RLock()

    @classmethod
    def over_serial(cls, path: str, baud: int = DEFAULT_BAUD) -> PeripheralController:
        return cls(path, baud)

    @property
    def where(self) -> str:
        return f"peripheral controller {self.path}"

    @property
    def request_timeout_s(self) -> float:
        if self._timeout_override is not None:
            return self._timeout_override
        frame = (self._buf_size or 512) * WIRE_EXPANSION + 64
        return 1.0 + 2 * frame * 10 / self.baud

    # --- the Driver protocol ---

    def open(self) -> DeviceFacts:
        """Open the port, learn the device's buffer size and read its image slots."""
        with self._lock:
            self._buf_size = None  # another image may have another buffer
            self._connect(self.reconnect_s if self._reset_rdev is not None else 0.0)
            return self.facts(self.image_slots())

    def facts(self, slots: list[ImageSlot]) -> DeviceFacts:
        running = next((s for s in slots if s.active), None)
        return DeviceFacts(
            model=MODEL,
            serial=None,
            firmware=running.version if running is not None else None,
            detail={
                "path": self.path,
                "baud": self.baud,
                "buf_size": self._buf_size,
                "image_slots": [asdict(s) for s in slots],
            },
        )

    def close(self) -> None:
        with self._lock:
            self._disconnect()
            loop, self._loop = self._loop, None
            if loop is not None and not loop.is_running():
                loop.close()

    def is_present(self) -> bool:
        """Whether the path still names the port that was opened (no I/O to the device). A board
        that reset and came back under the same device number passes; its dead port is found by
        the next request, which reopens it."""
        try:
            rdev = os.stat(self.path).st_rdev
        except OSError:
            raise DeviceGone(f"{self.where}: port unplugged (path gone)") from None
        if self._rdev is not None and rdev != self._rdev:
            raise DeviceGone(f"{self.where}: port replaced (the device re-enumerated)")
        return True

    # --- what the kit asks of it ---

    def image_slots(self) -> list[ImageSlot]:
        response = self._call(ImageStatesRead, "image state read")
        return slots_from_states(response.images)

    def running_version(self) -> str:
        running = next((s for s in self.image_slots() if s.active), None)
        if running is None:
            raise ProtocolError(f"{self.where}: no active image in the slot list")
        return running.version

    def upload(self, image: bytes, progress: Callable[[int, int], None] | None = None) -> None:
        """Write `image` to the secondary slot; an upload the device holds part of resumes there.

        Every chunk is retried on its own; when the device answers a later offset than the one
        sent (it has more), the next chunk starts there; an earlier one (it forgot the upload in
        a reset) ends the attempt with UploadForgotten, the caller's to count and start over. A completed
        upload the device finds not matching its SHA-256 (`match: false`: a byte changed on the
        way or in flash) is erased and sent again from 0, :data:`MISMATCH_RESENDS` times; then
        a ProtocolError. Zephyr forgets a completed upload, so the same sha at 0 starts afresh.
        """
        total = len(image)
        if total == 0:
            raise ValueError("an empty image cannot be uploaded")
        sha = hashlib.sha256(image).digest()
        with self._lock:
            off, resends, first = 0, 0, True
            while True:
                start = off
                match, off, sent_to = self._send_chunk(image, off, sha)
                if 0 < start and off < start:
                    raise UploadForgotten(
                        f"{self.where}: the peripheral forgot the upload at byte {start} of {total} "
                        f"(it answered {off}: it restarted)"
                    )
                if progress is not None:
                    if first:
                        # Where the device takes it up: 0, or the part of an earlier upload it
                        # holds (it answers past the first chunk sent).
                        progress(off if off > sent_to else 0, total)
                    progress(off, total)
                first = False
                if off < total:
                    continue
                if match is not False:
                    return
                if resends >= MISMATCH_RESENDS:
                    raise ProtocolError(
                        f"{self.where}: the uploaded image does not match its SHA-256 ({resends + 1} times)"
                    )
                resends += 1
                self.erase()
                off = 0
                if progress is not None:
                    progress(0, total)

    def _send_chunk(self, image: bytes, start: int, sha: bytes) -> tuple[bool | None, int, int]:
        """One upload request at `start`: the device's `match` (None until it has it all, or
        when it does not check), the offset it has, and where the chunk sent ended."""
        sent: list[int] = []

        def chunk() -> ImageUploadWrite:
            request = self._chunk(image, start, sha)
            sent[:] = [start + len(request.data)]
            return request

        total = len(image)
        # The first chunk may wait for the device to erase the slot.
        timeout = FIRST_CHUNK_FACTOR * self.request_timeout_s if start == 0 else None
        response = self._call(chunk, f"upload at offset {start}", timeout)
        if response.off is None or not 0 <= response.off <= total:
            raise ProtocolError(f"{self.where}: upload answered offset {response.off} of {total}")
        return response.match, response.off, sent[0] if sent else start

    def erase(self) -> None:
        """Erase slot 1: its image, and with MCUboot's flags in its trailer a mark for test too.
        A device that refuses (see the module doc) raises ProtocolError."""
        self._call(lambda: ImageErase(slot=1), "erase slot 1")

    def mark_for_test(self, image_hash: bytes) -> list[ImageSlot]:
        """Boot the image with this hash once at the next reset (MCUboot reverts unless confirmed)."""
        test = bytes(image_hash)
        response = self._call(lambda: ImageStatesWrite(hash=test, confirm=False), "mark for test")
        return slots_from_states(response.images)

    def confirm(self, image_hash: bytes | None = None) -> list[ImageSlot]:
        """Make an image permanent; None: the running one."""

        def request() -> ImageStatesWrite:
            if image_hash is None:
                return ImageStatesWrite(confirm=True)
            return ImageStatesWrite(hash=bytes(image_hash), confirm=True)

        return slots_from_states(self._call(request, "confirm").images)

    def reset(self) -> None:
        """Ask the device to reset; it answers, then drops off the bus (see wait_until_back)."""
        with self._lock:
            before = self._rdev
            last: Exception | None = None
            for _ in range(self.tries):
                try:
                    self._ensure_open()
                    response = self._run(self._client.request(ResetWrite(), self.request_timeout_s))
                except SMPException:
                    break  # an answer arrived, garbled: the device took the command
                except (*_NO_ANSWER, SMPTransportDisconnected, DeviceGone) as exc:
                    last = exc
                    if self._port_changed(before):
                        break  # it is already resetting
                    self._disconnect()
                    continue
                if error(response):
                    raise ProtocolError(f"{self.where}: reset refused: {describe_error(response)}")
                break
            else:
                raise DeviceGone(f"{self.where}: no answer to reset after {self.tries} tries ({_line(last)})")
            self._reset_rdev = before if before is not None else -1
            self._disconnect()

    def wait_until_back(self, timeout_s: float) -> list[ImageSlot]:
        """After a reset: wait for the port to vanish and return, reopen it, echo, read the slots."""
        with self._lock:
            deadline = time.monotonic() + timeout_s
            self._disconnect()
            if self._reset_rdev is not None:
                vanish_by = min(deadline, time.monotonic() + VANISH_WAIT_S)
                while time.monotonic() < vanish_by and not self._port_changed(self._reset_rdev):
                    time.sleep(POLL_S)
            self._reset_rdev = None
            last: Exception | None = None
            while time.monotonic() < deadline:
                if os.path.exists(self.path):
                    try:
                        self._connect(0.0)
                        self._call(lambda: EchoWrite(d="kitd"), "echo")
                        return self.image_slots()
                    except (DeviceGone, ProtocolError) as exc:
                        last = exc
                        self._disconnect()
                time.sleep(POLL_S)
            why = f" (last: {_line(last)})" if last is not None else ""
            raise DeviceGone(f"{self.where}: did not come back within {timeout_s:g} s of its reset{why}")

    def self_test(self, timeout_s: float | None = None) -> SelfTest:
        """Run the running image's self-test; `timeout_s`: how long it may take in all (default:
        one request's timeout, which is sized for the line, not for the tests the board runs).
        It is asked again on no answer only while `timeout_s` lasts, and an answer that came
        in that time is the verdict."""
        response = self._call(SelfTestRead, "self-test", timeout_s, within=timeout_s)
        return SelfTest(ok=response.ok, detail=response.detail)

    def battery(self) -> BatteryReading:
        response = self._call(BatteryRead, "battery read")
        return BatteryReading(millivolts=response.mv, percent=response.percent, charging=response.charging)

    def set_illuminator(self, on: bool, level: int = 100) -> None:
        if not 0 <= level <= 100:
            raise ValueError(f"illuminator level {level} is not 0..100")
        response = self._call(lambda: IlluminatorWrite(on=bool(on), level=int(level)), "illuminator")
        if response.on != bool(on):
            raise ProtocolError(f"{self.where}: illuminator answered on={response.on}, asked on={on}")

    def echo(self, text: str = "kitd") -> str:
        return self._call(lambda: EchoWrite(d=text), "echo").r

    # --- the port and the requests ---

    def _run(self, coro: Any) -> Any:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _ensure_open(self) -> None:
        if self._client is None:
            self._connect(self.reconnect_s)

    def _connect(self, wait_s: float) -> None:
        """Open the port (waiting up to `wait_s` for it to appear) and read the buffer size."""
        self._disconnect()
        deadline = time.monotonic() + wait_s
        while not os.path.exists(self.path):
            if time.monotonic() >= deadline:
                raise DeviceGone(f"{self.where}: port not found")
            time.sleep(POLL_S)
        transport = SMPSerialTransport(baudrate=self.baud, exclusive=True)
        client = SMPClient(transport, self.path, timeout_s=self.request_timeout_s)
        try:
            self._run(transport.connect(self.path, max(0.5, deadline - time.monotonic())))
            rdev = os.stat(self.path).st_rdev
        except (TimeoutError, OSError) as exc:
            self._run(transport.disconnect())
            raise DeviceGone(f"{self.where}: cannot open the port ({_line(exc)})") from None
        self._client, self._transport, self._rdev = client, transport, rdev
        if self._buf_size is None:
            params = self._call(MCUMgrParametersRead, "MCUmgr parameters")
            self._buf_size = params.buf_size
        transport.initialize(self._buf_size)

    def _disconnect(self) -> None:
        client, self._client, self._transport = self._client, None, None
        if client is not None:
            try:
                self._run(client.disconnect())
            except Exception:  # noqa: BLE001 - a vanished port cannot be closed cleanly
                pass

    def _port_changed(self, rdev: int | None) -> bool:
        try:
            return os.stat(self.path).st_rdev != rdev
        except OSError:
            return True

    def _call(
        self, make: Callable[[], Any], what: str, timeout_s: float | None = None, within: float | None = None
    ) -> Any:
        """One request, retried on no answer; a fresh request (sequence number) each try.
        `within`: all the tries together end by then (each waits only for what is left)."""
        with self._lock:
            last: Exception | None = None
            deadline = None if within is None else time.monotonic() + within
            tried = 0
            for _ in range(self.tries):
                wait = timeout_s or self.request_timeout_s
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                tried += 1
                try:
                    self._ensure_open()
                    response = self._run(self._client.request(make(), wait))
                except DeviceGone as exc:
                    last = exc
                    break
                except (*_NO_ANSWER, SMPTransportDisconnected) as exc:
                    last = exc
                    # A fresh port: half-received lines and a late answer are discarded with it.
                    self._disconnect()
                    continue
                if success(response):
                    return response
                raise ProtocolError(f"{self.where}: {what}: {describe_error(response)}")
            within_text = f" within {within:g} s" if within is not None else ""
            raise DeviceGone(
                f"{self.where}: no answer to {what}{within_text} after {tried} tries ({_line(last)})"
            )

    def _chunk(self, image: bytes, off: int, sha: bytes) -> ImageUploadWrite:
        """The upload request at `off`, as much data as the device's buffer takes."""
        first = {"len": len(image), "sha": sha, "image": 0} if off == 0 else {}
        empty = ImageUploadWrite(off=off, data=b"", **first)
        _, room = self._client.get_max_cbor_and_data_size(empty)
        room = max(1, room)
        limit = self._transport.max_unencoded_size
        while True:
            request = ImageUploadWrite(off=off, data=image[off : off + room], **first)
            if len(bytes(request)) <= limit or room <= 1:
                return request
            room -= 1


def _line(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
