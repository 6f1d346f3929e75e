"""Simulated peripheral controller: MCUmgr SMP over a pty, MCUboot's two slots, faults on command.

A separate process holding the master side of a pseudo-terminal; the slave side is exposed
through a symlink, so kitd opens `smp:LINK` exactly as it opens /dev/ttyACM0 on a kit.

    python -m hil.smp_peripheral_sim --link PATH --state-dir DIR [--control-port 0]
                                     [--baud 115200] [--reset-s 1.5] [--initial-version 1.0.0]
                                     [--buf-size 512] [--slot-size 393216]
                                     [--allow-erase-pending]

When listening it prints one line to stdout, `READY serial=LINK control=127.0.0.1:PORT`;
logs go to stderr.

The wire (agreed with kitd.drivers.peripheral): SMP v2 messages in the serial "console"
framing smpclient's SMPSerialTransport speaks: a frame is base64 of length + message +
CRC16 (XMODEM), cut into lines of at most 127 bytes, the first starting 0x06 0x09 and the
others 0x04 0x14, each ending in a newline. Bytes outside frames are console noise and
ignored; a frame with a bad CRC is dropped, as Zephyr drops it. The line is paced at --baud
in both directions (10 bits a byte: the master side is read and written no faster than the
line would carry, which a pty does not do by itself); --baud 0 does not pace.

What it answers (the `smp` package's classes decode requests and encode answers; group 64's
are kitd.drivers.peripheral's):

    OS (0)         echo; reset (answers, then resets); MCUmgr parameters (--buf-size, 4 buffers)
    image (1)      state read/write, upload, erase (slot 1, as Zephyr's img_mgmt: refused with
                   NO_FREE_SLOT while slot 1 holds the image to revert to, or is marked for
                   test or permanent, unless --allow-erase-pending, Zephyr's
                   CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING, lets a mark be erased with it)
    kit (64)       0 read battery {mv, percent, charging}; 1 write illuminator {on, level} ->
                   the same back; 2 read self_test {ok, detail}
    anything else  {"rc": 8} (ENOTSUP); a request that does not parse {"rc": 3} (EINVAL)

Uploads go to slot 1 (the secondary). The first chunk (off 0) carries len and the whole
file's SHA-256 `sha`; an off-0 chunk with the sha of the unfinished upload answers with the
offset already written (the client resumes from there); a chunk at another offset than the
device expects is dropped and answered with the expected offset, as Zephyr's img_mgmt does
(so 0 after a reset, which forgets the upload: it lives in RAM). The last chunk's answer has
`match` (the written bytes against sha), and the upload is then over: as Zephyr resets its
upload state on completion, the same sha at off 0 again starts a new upload (slot 1 erased),
not a resume.

MCUboot, two slots in swap mode: slot 0 runs. State write with confirm false and slot 1's
image hash marks it for test (pending); with confirm true and slot 1's hash, permanent; with
confirm true and slot 0's hash or none, confirms the running image. At every boot: a test
image left unconfirmed is swapped back out (revert: the old image runs, confirmed); else a
pending image in slot 1 is checked (magic, TLVs, SHA-256 against the hash TLV: signatures
are not checked here, kitfw verify does that) and swapped in if good, else erased and the
old image keeps running; a test swap runs unconfirmed until confirmed. A reset answered
while the new image runs unconfirmed therefore reverts it. Slot 1 keeps the old image after
a swap (state read lists it), so it can be tested back in. Versions read "1.2.3" (".4" with
a build number), as Zephyr's img_mgmt writes them; hashes are the images' SHA256 TLV value.

Flash is files in --state-dir (`slot-a.bin`, `slot-b.bin`, `boot.json`, which names the file
in each slot and holds MCUboot's trailer flags: pending, confirmed, trial); a chunk is
written when its request has fully arrived and before it is answered, and the swap is one
atomic rename of boot.json (MCUboot's swap resumes after a power cut, so the outcome is the
same). Killing the process is a power cut: started again on the same --state-dir, it boots
from what flash kept. The first start writes an unsigned image of --initial-version to
slot 0, confirmed.

Reset: the board is a USB CDC-ACM device, so a reset drops it off the bus: the pty closes,
the link is removed and, --reset-s later, MCUboot has booted and a new pty appears behind
the link (a new device, perhaps with the old number, as ttyACM0 comes back as ttyACM0). A
commanded reset happens 250 ms after its answer (Zephyr's default
CONFIG_MCUMGR_GRP_OS_RESET_MS), once the host has read it. Volatile state goes with it: the
unfinished upload, the illuminator (off), unread bytes.

Control channel: TCP on 127.0.0.1, one command per line, one reply line, `ok [DETAIL]` or
`err REASON`:

    drop-every N             drop every Nth request frame (never answered; 0: off)
    corrupt-every N          flip a byte in every Nth answer frame (its CRC fails; 0: off)
    reset-at-offset N        reset by itself once an upload has written past byte N (once)
    unplug-at-offset N       the cable pulled once an upload has written past byte N (once),
                             that chunk unanswered; the board keeps running (`replug`)
    corrupt-upload           the next upload chunk reaches flash with one byte flipped (once):
                             the upload completes with match false
    power-loss               the port vanishes at once, the unanswered and unwritten are
                             lost, back after --reset-s (a boot, like any reset)
    reset                    a reset as if commanded over SMP (no answer to anyone)
    fail-self-test VERSION   an image of VERSION ("1.2.3") reports self_test ok=false
                             (`fail-self-test none` clears)
    battery MV PERCENT CHARGING   what the gauge reads (CHARGING: true/false)
    unplug                   the cable is pulled: the port vanishes, the board keeps running
    replug                   a new pty behind the link
    state                    ok {JSON}: running version, slots, boot flags, the upload,
                             illuminator, battery, plugged/up, faults
    counts                   ok {JSON}: requests, answers, dropped, corrupted, bad frames,
                             resets, boots, illuminator switched on/off, requests per command
    help, quit
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import json
import logging
import os
import select
import struct
import sys
import termios
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from pydantic import ValidationError
from smp import header as smpheader
from smp import image_management as smpimg
from smp import os_management as smpos
from smp import packet as smppacket
from smp.error import MGMT_ERR
from smp.exceptions import SMPException

from firmware_tools.mcuboot_image import ImageFormatError, ImageVersion, parse_image
from hil.control_channel import ControlChannel
from hil.firmware_images import build_image, firmware_body
from hil.pty_device import IoThreadWork, close_pty, open_pty, run_until_stopped
from kitd.drivers.peripheral import (
    KIT_GROUP,
    BatteryReadRequest,
    BatteryReadResponse,
    IlluminatorWriteRequest,
    IlluminatorWriteResponse,
    KitCommand,
    SelfTestReadRequest,
    SelfTestReadResponse,
)

log = logging.getLogger("smp_peripheral_sim")

LINE_LENGTH = 127
# Bytes read or written at once on a paced line: 5.6 ms at 115200, fine enough to time a frame.
PACE_CHUNK = 64
MAX_LINE = 4096
# A commanded reset happens this long after its answer (Zephyr's CONFIG_MCUMGR_GRP_OS_RESET_MS
# default), once the host has read the answer, or ANSWER_READ_WAIT_S later still if it does not.
RESET_DELAY_S = 0.25
ANSWER_READ_WAIT_S = 1.0
BUF_COUNT = 4
IMAGE_GROUP = smpheader.GroupId.IMAGE_MANAGEMENT
OS_GROUP = smpheader.GroupId.OS_MANAGEMENT


def img_mgmt_version(version: ImageVersion) -> str:
    """As Zephyr's img_mgmt writes a version: 1.2.3, with .4 when there is a build number."""
    text = f"{version.major}.{version.minor}.{version.revision}"
    return f"{text}.{version.build}" if version.build else text


@dataclass(frozen=True)
class SlotImage:
    """What MCUboot and img_mgmt see of a slot's content."""

    version: str
    hash: bytes
    valid: bool  # the SHA-256 over header and body matches the hash TLV
    bootable: bool


def read_slot_image(data: bytes) -> SlotImage | None:
    """The image in a slot, or None when the slot holds none (erased, partial, bad magic)."""
    if not data:
        return None
    try:
        image = parse_image(data)
    except ImageFormatError:
        return None
    if image.image_hash is None:
        return None
    return SlotImage(
        version=img_mgmt_version(image.version),
        hash=image.image_hash,
        valid=image.computed_hash() == image.image_hash,
        bootable=not image.header.flags & 0x10,
    )


# ---- flash ----------------------------------------------------------------------------------


class Flash:
    """The two slots and MCUboot's flags, as files in the state directory."""

    def __init__(self, folder: Path, slot_size: int) -> None:
        self.folder = folder
        self.slot_size = slot_size
        self.boot: dict[str, Any] = {}

    def load(self, initial_version: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "boot.json"
        if path.exists():
            self.boot = json.loads(path.read_text())
            return
        image = build_image(initial_version, firmware_body(4096, seed=1))
        (self.folder / "slot-a.bin").write_bytes(image)
        (self.folder / "slot-b.bin").write_bytes(b"")
        self.boot = {
            "primary": "slot-a.bin",
            "secondary": "slot-b.bin",
            "pending": None,
            "confirmed": True,
            "trial": False,
        }
        self.save()
        log.info("new flash in %s: %s in slot 0", self.folder, initial_version)

    def save(self) -> None:
        path = self.folder / "boot.json"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.boot, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def slot_path(self, slot: int) -> Path:
        return self.folder / self.boot["primary" if slot == 0 else "secondary"]

    def read(self, slot: int) -> bytes:
        try:
            return self.slot_path(slot).read_bytes()
        except FileNotFoundError:
            return b""

    def image(self, slot: int) -> SlotImage | None:
        return read_slot_image(self.read(slot))

    def erase_secondary(self) -> None:
        with open(self.slot_path(1), "wb"):
            pass

    def write_secondary(self, offset: int, data: bytes) -> None:
        with open(self.slot_path(1), "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def swap(self) -> None:
        boot = self.boot
        boot["primary"], boot["secondary"] = boot["secondary"], boot["primary"]

    def boot_up(self) -> str:
        """What MCUboot does at power-on or reset; says what it did."""
        boot = self.boot
        if boot["trial"] and not boot["confirmed"]:
            self.swap()
            boot.update(pending=None, confirmed=True, trial=False)
            self.save()
            return "reverted: the test image was not confirmed"
        if boot["pending"]:
            kind = boot["pending"]
            candidate = self.image(1)
            if candidate is None or not candidate.valid or not candidate.bootable:
                why = "no image" if candidate is None else "bad hash" if not candidate.valid else "no boot"
                self.erase_secondary()
                boot["pending"] = None
                self.save()
                return f"secondary slot refused ({why}), erased; the old image runs"
            self.swap()
            boot.update(pending=None, confirmed=kind == "permanent", trial=kind == "test")
            self.save()
            return f"swapped in {candidate.version} ({kind})"
        return "booted the primary image"


# ---- the device --------------------------------------------------------------------------


@dataclass
class Upload:
    """The unfinished upload (RAM: a reset forgets it)."""

    length: int
    sha: bytes | None
    off: int = 0


@dataclass
class Faults:
    drop_every: int = 0
    corrupt_every: int = 0
    reset_at_offset: int | None = None
    unplug_at_offset: int | None = None
    corrupt_upload: bool = False
    fail_self_test: set[str] = field(default_factory=set)


@dataclass
class Setup:
    link: Path
    baud: int
    reset_s: float
    buf_size: int
    allow_erase_pending: bool = False


class PeripheralSim:
    """The board; every change happens on its I/O thread (`call` runs work there)."""

    def __init__(self, setup: Setup, flash: Flash) -> None:
        self.setup = setup
        self.flash = flash
        self.faults = Faults()
        self.master: int | None = None
        self.slave: int | None = None
        self.pty_name = ""
        self.powered = True
        self.plugged = True  # the cable; the port exists while powered, up and plugged
        self.up_at: float | None = None  # resetting: MCUboot has booted at this time
        self.reset_after_answer = False
        self.reset_earliest = self.reset_deadline = 0.0
        self.battery = {"mv": 3900, "percent": 80, "charging": False}
        self.counts: Counter = Counter()
        self.by_command: Counter = Counter()
        self.io = IoThreadWork()
        self._volatile()

    def _volatile(self) -> None:
        """RAM: what a reset or power cut forgets."""
        self.upload: Upload | None = None
        self.illuminator = {"on": False, "level": 0}
        self.rx: deque[tuple[float, bytes]] = deque()  # bytes read, with when their last bit arrived
        self.line = bytearray()
        self.decoder: Any = None
        self.tx = bytearray()
        self.rx_free_at = 0.0
        self.tx_free_at = 0.0

    # -- running work on the I/O thread --
    def call(self, work: Callable[[], Any]) -> Any:
        return self.io.call(work)

    # -- the port --
    def plug(self) -> str:
        self.close_port()
        self.master, self.slave, self.pty_name = open_pty(self.setup.link)
        log.info("port up: %s -> %s", self.setup.link, self.pty_name)
        return self.pty_name

    def unplug(self) -> bool:
        """The cable pulled: the port goes and stays gone until replugged; the board runs on.
        False when it was unplugged already."""
        self.plugged = False
        return self.close_port()

    def close_port(self) -> bool:
        if self.master is None:
            return False
        close_pty(self.setup.link, self.master, self.slave)
        self.master = self.slave = None
        self.rx.clear()
        self.line.clear()
        self.decoder = None
        self.tx.clear()
        log.info("port gone: %s", self.pty_name)
        return True

    def unread(self) -> int:
        if self.slave is None:
            return 0
        return struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0" * 4))[0]

    def port_should_exist(self) -> bool:
        return self.powered and self.up_at is None and self.plugged

    # -- resets --
    def go_down(self, why: str) -> None:
        """The board resets now: the port vanishes, RAM is lost, MCUboot runs --reset-s later."""
        self.counts["resets"] += 1
        log.info("reset (%s)", why)
        self.close_port()
        self._volatile()
        self.reset_after_answer = False
        self.up_at = time.monotonic() + self.setup.reset_s

    def boot(self) -> None:
        self.counts["boots"] += 1
        outcome = self.flash.boot_up()
        running = self.flash.image(0)
        log.info("boot: %s; running %s", outcome, running.version if running else "nothing")
        self.up_at = None
        if self.port_should_exist():
            self.plug()

    # -- the I/O loop --
    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            now = time.monotonic()
            timeout = 0.2
            if self.up_at is not None:
                if now >= self.up_at:
                    self.boot()
                    continue
                timeout = min(timeout, self.up_at - now)
            master = self.master
            readers = [self.io.wake_fd]
            writers = []
            if master is not None:
                if now >= self.rx_free_at:
                    readers.append(master)
                else:
                    timeout = min(timeout, self.rx_free_at - now)
                if self.tx:
                    if now >= self.tx_free_at:
                        writers.append(master)
                    else:
                        timeout = min(timeout, self.tx_free_at - now)
                if self.rx:
                    timeout = min(timeout, max(0.0, self.rx[0][0] - now))
                if self.reset_after_answer:
                    timeout = min(timeout, 0.01)
            readable, writable, _ = select.select(readers, writers, [], max(0.0, timeout))
            if self.io.wake_fd in readable:
                self.io.run_due()
            if master is not None and master == self.master:
                if master in readable:
                    self._read(master)
                self._deliver()
                if self.master == master and master in writable:
                    self._write(master)
                if self.reset_after_answer and self.master == master:
                    self._maybe_reset_after_answer()

    def _byte_time(self, count: int) -> float:
        return count * 10 / self.setup.baud if self.setup.baud else 0.0

    def _read(self, master: int) -> None:
        try:
            data = os.read(master, PACE_CHUNK if self.setup.baud else 65536)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        # The bytes were just written by the host: their last bit arrives a line time later.
        self.rx_free_at = max(self.rx_free_at, time.monotonic()) + self._byte_time(len(data))
        self.rx.append((self.rx_free_at, data))

    def _write(self, master: int) -> None:
        size = PACE_CHUNK if self.setup.baud else len(self.tx)
        try:
            written = os.write(master, bytes(self.tx[:size]))
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("write failed: %s", exc)
            return
        del self.tx[:written]
        if self.tx:
            self._schedule_tx()

    def _schedule_tx(self) -> None:
        # A chunk goes to the host when its last bit would have arrived on the line.
        size = min(PACE_CHUNK, len(self.tx))
        self.tx_free_at = max(self.tx_free_at, time.monotonic()) + self._byte_time(size)

    def _deliver(self) -> None:
        """Hand the bytes whose line time has passed to the framer."""
        now = time.monotonic()
        while self.rx and self.rx[0][0] <= now and self.master is not None:
            _, data = self.rx.popleft()
            self.line.extend(data)
            while self.master is not None:
                end = self.line.find(b"\n")
                if end < 0:
                    if len(self.line) > MAX_LINE:
                        self.line.clear()
                    break
                packet = bytes(self.line[: end + 1])
                del self.line[: end + 1]
                self._on_line(packet)

    def _on_line(self, packet: bytes) -> None:
        if packet.startswith(smppacket.START_DELIMITER):
            self.decoder = smppacket.decode()
            next(self.decoder)
        elif not packet.startswith(smppacket.CONTINUE_DELIMITER) or self.decoder is None:
            return  # console noise
        try:
            self.decoder.send(packet)
        except StopIteration as done:
            self.decoder = None
            self._on_frame(done.value)
        except (SMPException, ValueError, struct.error):
            self.decoder = None
            self.counts["bad_frames"] += 1

    def _maybe_reset_after_answer(self) -> None:
        now = time.monotonic()
        if now < self.reset_earliest:
            return
        if (self.tx or self.unread()) and now < self.reset_deadline:
            return
        self.go_down("commanded")

    # -- requests --
    def _on_frame(self, frame: bytes) -> None:
        self.counts["requests"] += 1
        if self.faults.drop_every and self.counts["requests"] % self.faults.drop_every == 0:
            self.counts["dropped"] += 1
            return
        try:
            head = smpheader.Header.loads(frame[: smpheader.Header.SIZE])
        except (ValueError, AssertionError, struct.error):
            self.counts["bad_frames"] += 1
            return
        name = COMMAND_NAMES.get((int(head.group_id), int(head.command_id), int(head.op)), "unknown")
        self.by_command[name] += 1
        handler = getattr(self, f"_smp_{name}", None)
        if handler is None:
            self._answer(self._rc(head, MGMT_ERR.ENOTSUP))
            return
        request_class = REQUESTS[name]
        try:
            request = request_class.loads(frame)
        except (ValidationError, ValueError, cbor2.CBORDecodeError):
            self._answer(self._rc(head, MGMT_ERR.EINVAL))
            return
        answer = handler(request)
        if answer is not None and self.master is not None:
            self._answer(answer)

    def _answer(self, frame: bytes) -> None:
        self.counts["answers"] += 1
        lines = list(smppacket.encode(frame, line_length=LINE_LENGTH))
        if self.faults.corrupt_every and self.counts["answers"] % self.faults.corrupt_every == 0:
            self.counts["corrupted"] += 1
            lines[0] = flip_base64(lines[0])
        idle = not self.tx
        for line in lines:
            self.tx.extend(line)
        if idle:
            self._schedule_tx()

    @staticmethod
    def _rc(head: smpheader.Header, rc: int) -> bytes:
        """A general error ({"rc": N}, as SMP v2 still answers MGMT_ERR codes)."""
        return _frame(head, {"rc": int(rc)})

    @staticmethod
    def _group_error(head: smpheader.Header, rc: int) -> bytes:
        """A group's own error: SMP v2's {"err": {group, rc}} (v1: {"rc": N})."""
        if head.version == smpheader.Version.V1:
            return _frame(head, {"rc": int(rc)})
        return _frame(head, {"err": {"group": int(head.group_id), "rc": int(rc)}})

    def _reply(self, cls: type, request: Any, **fields: Any) -> bytes:
        return cls(sequence=request.header.sequence, version=request.header.version, **fields).BYTES

    # OS group
    def _smp_echo(self, request: smpos.EchoWriteRequest) -> bytes:
        return self._reply(smpos.EchoWriteResponse, request, r=request.d)

    def _smp_reset(self, request: smpos.ResetWriteRequest) -> bytes:
        self.reset_after_answer = True
        now = time.monotonic()
        self.reset_earliest = now + RESET_DELAY_S
        self.reset_deadline = now + RESET_DELAY_S + ANSWER_READ_WAIT_S + self._byte_time(256)
        return self._reply(smpos.ResetWriteResponse, request)

    def _smp_params(self, request: smpos.MCUMgrParametersReadRequest) -> bytes:
        return self._reply(
            smpos.MCUMgrParametersReadResponse, request, buf_size=self.setup.buf_size, buf_count=BUF_COUNT
        )

    # image group
    def slot_states(self) -> list[dict[str, Any]]:
        boot = self.flash.boot
        states = []
        for slot in (0, 1):
            image = self.flash.image(slot)
            if image is None:
                continue
            states.append(
                {
                    "slot": slot,
                    "version": image.version,
                    "hash": image.hash,
                    "bootable": image.bootable,
                    "pending": slot == 1 and boot["pending"] is not None,
                    "confirmed": (slot == 0 and boot["confirmed"]) or (slot == 1 and boot["trial"]),
                    "active": slot == 0,
                    "permanent": slot == 1 and boot["pending"] == "permanent",
                }
            )
        return states

    def _smp_state_read(self, request: smpimg.ImageStatesReadRequest) -> bytes:
        return self._reply(smpimg.ImageStatesReadResponse, request, images=self.slot_states())

    def _smp_state_write(self, request: smpimg.ImageStatesWriteRequest) -> bytes:
        head, boot = request.header, self.flash.boot
        primary, secondary = self.flash.image(0), self.flash.image(1)
        wanted = request.hash
        if request.confirm and (wanted is None or (primary is not None and wanted == primary.hash)):
            boot.update(confirmed=True, trial=False)
        elif wanted is None:
            return self._rc(head, MGMT_ERR.EINVAL)
        elif primary is not None and wanted == primary.hash:
            return self._group_error(head, smpimg.IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED)
        elif secondary is not None and wanted == secondary.hash:
            if self.upload is not None and self.upload.off < self.upload.length:
                return self._group_error(head, smpimg.IMG_MGMT_ERR.HASH_NOT_FOUND)
            boot["pending"] = "permanent" if request.confirm else "test"
        else:
            return self._group_error(head, smpimg.IMG_MGMT_ERR.HASH_NOT_FOUND)
        self.flash.save()
        return self._reply(smpimg.ImageStatesWriteResponse, request, images=self.slot_states())

    def _smp_upload(self, request: smpimg.ImageUploadWriteRequest) -> bytes | None:
        head, upload = request.header, self.upload
        if request.off == 0:
            if request.len is None:
                return self._group_error(head, smpimg.IMG_MGMT_ERR.INVALID_LENGTH)
            resumable = upload is not None and upload.sha is not None
            if resumable and upload.sha == request.sha and upload.length == request.len and upload.off > 0:
                log.info("upload resumed at %d of %d", upload.off, upload.length)
                return self._reply(smpimg.ImageUploadWriteResponse, request, off=upload.off)
            if self.flash.boot["trial"]:
                # Slot 1 holds the image to revert to: confirm or revert first.
                return self._group_error(head, smpimg.IMG_MGMT_ERR.NO_FREE_SLOT)
            if request.len > self.flash.slot_size:
                return self._group_error(head, smpimg.IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE)
            self.flash.erase_secondary()
            self.flash.boot["pending"] = None
            self.flash.save()
            upload = self.upload = Upload(length=request.len, sha=request.sha)
            log.info("upload started: %d bytes", request.len)
        elif upload is None or request.off != upload.off:
            expected = upload.off if upload is not None else 0
            return self._reply(smpimg.ImageUploadWriteResponse, request, off=expected)
        if upload.off + len(request.data) > upload.length:
            return self._group_error(head, smpimg.IMG_MGMT_ERR.INVALID_IMAGE_DATA_OVERRUN)
        data = request.data
        if self.faults.corrupt_upload and data:
            self.faults.corrupt_upload = False
            data = bytes((data[0] ^ 0xFF,)) + data[1:]
        self.flash.write_secondary(upload.off, data)
        upload.off += len(request.data)
        limit = self.faults.reset_at_offset
        if limit is not None and upload.off > limit:
            self.faults.reset_at_offset = None
            self.go_down(f"by itself at upload offset {upload.off}")
            return None
        limit = self.faults.unplug_at_offset
        if limit is not None and upload.off > limit:
            self.faults.unplug_at_offset = None
            self.unplug()
            log.info("unplugged at upload offset %d", upload.off)
            return None
        fields: dict[str, Any] = {"off": upload.off}
        if upload.off == upload.length:
            if upload.sha is not None:
                fields["match"] = hashlib.sha256(self.flash.read(1)).digest() == upload.sha
            log.info("upload complete: match=%s", fields.get("match"))
            self.upload = None  # Zephyr's img_mgmt_reset_upload: a finished upload is not resumed
        return self._reply(smpimg.ImageUploadWriteResponse, request, **fields)

    def _smp_erase(self, request: smpimg.ImageEraseRequest) -> bytes:
        if request.slot not in (None, 1):
            return self._group_error(request.header, smpimg.IMG_MGMT_ERR.INVALID_SLOT)
        boot = self.flash.boot
        # Zephyr's img_mgmt_erase: a slot whose image info reads is checked by
        # img_mgmt_slot_in_use: the image to revert to is never erased; a slot marked for test or
        # permanent only when built with CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING (the mark
        # lives in the slot's trailer and goes with it).
        in_use = boot["trial"] or (boot["pending"] and not self.setup.allow_erase_pending)
        if in_use and self.flash.image(1) is not None:
            return self._group_error(request.header, smpimg.IMG_MGMT_ERR.NO_FREE_SLOT)
        self.flash.erase_secondary()
        self.flash.boot["pending"] = None
        self.flash.save()
        self.upload = None
        return self._reply(smpimg.ImageEraseResponse, request)

    # kit group
    def _smp_battery(self, request: BatteryReadRequest) -> bytes:
        return self._reply(BatteryReadResponse, request, **self.battery)

    def _smp_illuminator(self, request: IlluminatorWriteRequest) -> bytes:
        if not 0 <= request.level <= 100:
            return self._rc(request.header, MGMT_ERR.EINVAL)
        self.illuminator = {"on": request.on, "level": request.level}
        self.counts["illuminator_on" if request.on else "illuminator_off"] += 1
        return self._reply(IlluminatorWriteResponse, request, **self.illuminator)

    def _smp_self_test(self, request: SelfTestReadRequest) -> bytes:
        running = self.flash.image(0)
        version = running.version if running else "none"
        if version in self.faults.fail_self_test:
            detail = f"{version}: illuminator driver did not answer"
            return self._reply(SelfTestReadResponse, request, ok=False, detail=detail)
        return self._reply(SelfTestReadResponse, request, ok=True, detail=f"{version}: all checks passed")

    # -- what the control channel asks --
    def state(self) -> dict[str, Any]:
        running = self.flash.image(0)
        return {
            "running": running.version if running else None,
            "slots": [{**s, "hash": s["hash"].hex()} for s in self.slot_states()],
            "boot": {k: self.flash.boot[k] for k in ("pending", "confirmed", "trial")},
            "upload": None if self.upload is None else {"off": self.upload.off, "len": self.upload.length},
            "illuminator": self.illuminator,
            "battery": self.battery,
            "powered": self.powered,
            "up": self.up_at is None,
            "plugged": self.plugged,
            "port": self.master is not None,
            "link": str(self.setup.link),
            "faults": {
                "drop_every": self.faults.drop_every,
                "corrupt_every": self.faults.corrupt_every,
                "reset_at_offset": self.faults.reset_at_offset,
                "unplug_at_offset": self.faults.unplug_at_offset,
                "corrupt_upload": self.faults.corrupt_upload,
                "fail_self_test": sorted(self.faults.fail_self_test),
            },
        }

    def count_report(self) -> dict[str, Any]:
        names = (
            "requests",
            "answers",
            "dropped",
            "corrupted",
            "bad_frames",
            "resets",
            "boots",
            "illuminator_on",
            "illuminator_off",
        )
        return {**{n: self.counts.get(n, 0) for n in names}, "by_command": dict(self.by_command)}


def _frame(head: smpheader.Header, body: dict[str, Any]) -> bytes:
    """An answer to `head` with a CBOR body (for errors, which have no class of their own to build)."""
    data = cbor2.dumps(body, canonical=True)
    answer = smpheader.Header(
        op=RESPONSE_OP[head.op],
        version=head.version,
        flags=smpheader.Flag(0),
        length=len(data),
        group_id=head.group_id,
        sequence=head.sequence,
        command_id=head.command_id,
    )
    return bytes(answer) + data


_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def flip_base64(line: bytes) -> bytes:
    """The line with one base64 character past the frame's length changed to another: the
    frame still decodes, and its CRC fails."""
    payload = line[2:-1]
    index = max(4, len(payload) // 2)  # past the length, before any padding
    char = payload[index]
    # The character's top bit of six: a bit that is always decoded, never padding.
    other = _BASE64[(_BASE64.index(char) + 32) % 64]
    changed = payload[:index] + bytes((other,)) + payload[index + 1 :]
    base64.b64decode(changed)  # still base64
    return line[:2] + changed + line[-1:]


RESPONSE_OP = {smpheader.OP.READ: smpheader.OP.READ_RSP, smpheader.OP.WRITE: smpheader.OP.WRITE_RSP}
_R, _W = int(smpheader.OP.READ), int(smpheader.OP.WRITE)
_IMG = smpheader.CommandId.ImageManagement
_OS = smpheader.CommandId.OSManagement
# (group, command, op) -> the handler's name; REQUESTS: the name -> the request's class.
COMMAND_NAMES: dict[tuple[int, int, int], str] = {
    (OS_GROUP, _OS.ECHO, _W): "echo",
    (OS_GROUP, _OS.RESET, _W): "reset",
    (OS_GROUP, _OS.MCUMGR_PARAMETERS, _R): "params",
    (IMAGE_GROUP, _IMG.STATE, _R): "state_read",
    (IMAGE_GROUP, _IMG.STATE, _W): "state_write",
    (IMAGE_GROUP, _IMG.UPLOAD, _W): "upload",
    (IMAGE_GROUP, _IMG.ERASE, _W): "erase",
    (KIT_GROUP, KitCommand.BATTERY, _R): "battery",
    (KIT_GROUP, KitCommand.ILLUMINATOR, _W): "illuminator",
    (KIT_GROUP, KitCommand.SELF_TEST, _R): "self_test",
}
REQUESTS: dict[str, type] = {
    "echo": smpos.EchoWriteRequest,
    "reset": smpos.ResetWriteRequest,
    "params": smpos.MCUMgrParametersReadRequest,
    "state_read": smpimg.ImageStatesReadRequest,
    "state_write": smpimg.ImageStatesWriteRequest,
    "upload": smpimg.ImageUploadWriteRequest,
    "erase": smpimg.ImageEraseRequest,
    "battery": BatteryReadRequest,
    "illuminator": IlluminatorWriteRequest,
    "self_test": SelfTestReadRequest,
}


class ControlServer(ControlChannel):
    """The line protocol on 127.0.0.1 that steers the simulated peripheral (see the module doc)."""

    def __init__(self, sim: PeripheralSim, port: int, stop: threading.Event) -> None:
        super().__init__(port, stop)
        self.sim = sim

    def _every(self, args: list[str], name: str) -> str:
        if len(args) != 1 or not args[0].isdigit():
            raise ValueError(f"usage: {name.replace('_', '-')} N (0: off)")
        self.sim.call(lambda: setattr(self.sim.faults, name, int(args[0])))
        return f"ok {name.replace('_', '-')} {args[0]}"

    def _cmd_drop_every(self, args: list[str]) -> str:
        return self._every(args, "drop_every")

    def _cmd_corrupt_every(self, args: list[str]) -> str:
        return self._every(args, "corrupt_every")

    def _at_offset(self, args: list[str], name: str, what: str) -> str:
        if len(args) != 1 or not args[0].isdigit():
            raise ValueError(f"usage: {name.replace('_', '-')} N")
        self.sim.call(lambda: setattr(self.sim.faults, name, int(args[0])))
        return f"ok {what} once an upload passes byte {args[0]}"

    def _cmd_reset_at_offset(self, args: list[str]) -> str:
        return self._at_offset(args, "reset_at_offset", "reset")

    def _cmd_unplug_at_offset(self, args: list[str]) -> str:
        return self._at_offset(args, "unplug_at_offset", "unplugged")

    def _cmd_corrupt_upload(self, args: list[str]) -> str:
        self.sim.call(lambda: setattr(self.sim.faults, "corrupt_upload", True))
        return "ok the next upload chunk reaches flash with a byte flipped"

    def _cmd_power_loss(self, args: list[str]) -> str:
        self.sim.call(lambda: self.sim.go_down("power loss"))
        return f"ok power lost; back in {self.sim.setup.reset_s:g} s"

    def _cmd_reset(self, args: list[str]) -> str:
        self.sim.call(lambda: self.sim.go_down("control channel"))
        return f"ok resetting; back in {self.sim.setup.reset_s:g} s"

    def _cmd_fail_self_test(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError("usage: fail-self-test VERSION | none")

        def arm() -> list[str]:
            failing = self.sim.faults.fail_self_test
            failing.clear() if args[0] == "none" else failing.add(args[0])
            return sorted(failing)

        return "ok failing self-test: " + (", ".join(self.sim.call(arm)) or "none")

    def _cmd_battery(self, args: list[str]) -> str:
        if len(args) != 3 or args[2] not in ("true", "false"):
            raise ValueError("usage: battery MV PERCENT true|false")
        mv, percent = int(args[0]), int(args[1])
        if not 0 <= percent <= 100:
            raise ValueError(f"PERCENT {percent} must be 0..100")
        reading = {"mv": mv, "percent": percent, "charging": args[2] == "true"}
        self.sim.call(lambda: setattr(self.sim, "battery", reading))
        return "ok " + json.dumps(reading, separators=(",", ":"))

    def _cmd_unplug(self, args: list[str]) -> str:
        return "ok unplugged" if self.sim.call(self.sim.unplug) else "ok already unplugged"

    def _cmd_replug(self, args: list[str]) -> str:
        def push() -> str:
            self.sim.plugged = True
            if self.sim.port_should_exist():
                return f"plugged {self.sim.plug()}"
            return "plugged (the board is resetting: the port comes when it has booted)"

        return "ok " + self.sim.call(push)

    def _cmd_state(self, args: list[str]) -> str:
        return "ok " + json.dumps(self.sim.call(self.sim.state), separators=(",", ":"))

    def _cmd_counts(self, args: list[str]) -> str:
        return "ok " + json.dumps(self.sim.call(self.sim.count_report), separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.smp_peripheral_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--link", type=Path, required=True, help="symlink to the pty's slave")
    parser.add_argument("--state-dir", type=Path, required=True, help="the board's flash (kept across runs)")
    parser.add_argument("--control-port", type=int, default=0, help="control channel port (0: a free one)")
    parser.add_argument("--baud", type=int, default=115200, help="the line rate it paces at (0: unpaced)")
    parser.add_argument("--reset-s", type=float, default=1.5, help="seconds from reset to the port's return")
    parser.add_argument("--initial-version", default="1.0.0", help="slot 0's image on a new --state-dir")
    parser.add_argument("--buf-size", type=int, default=512, help="the SMP buffer it advertises")
    parser.add_argument("--slot-size", type=int, default=0x60000, help="bytes a slot holds")
    parser.add_argument(
        "--allow-erase-pending",
        action="store_true",
        help="erase slot 1 even when marked (Zephyr's CONFIG_MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="smp_peripheral_sim: %(message)s")
    if args.baud < 0 or args.reset_s < 0 or args.buf_size < 64:
        parser.error("--baud and --reset-s must not be negative, --buf-size at least 64")
    flash = Flash(args.state_dir.absolute(), args.slot_size)
    try:
        flash.load(args.initial_version)
    except (ImageFormatError, ValueError, OSError) as exc:
        print(f"smp_peripheral_sim: cannot start: {exc}", file=sys.stderr)
        return 1
    link = args.link.absolute()
    link.parent.mkdir(parents=True, exist_ok=True)
    setup = Setup(
        link=link,
        baud=args.baud,
        reset_s=args.reset_s,
        buf_size=args.buf_size,
        allow_erase_pending=args.allow_erase_pending,
    )
    sim = PeripheralSim(setup, flash)
    stop = threading.Event()
    try:
        sim.boot()  # power-on: MCUboot runs first, as after any reset
        control = ControlServer(sim, args.control_port, stop)
    except OSError as exc:
        print(f"smp_peripheral_sim: cannot start: {exc}", file=sys.stderr)
        return 1
    run_until_stopped(sim.serve, control, link, stop, log)
    sim.close_port()
    return 0


if __name__ == "__main__":
    sys.exit(main())
