"""A pyusb backend that reaches USB devices through a USB/IP server instead of libusb.

Its one job: make a device exported by a USB/IP server (in the simulation rig, the
simulated NB-1010 on 127.0.0.1) look to pyusb exactly like a device on a local bus,
errors included, so a driver written against pyusb's libusb1 backend runs unchanged.
It is a transport like trezorlib's UDP link to its emulator; the configuration picks it
(`usb_backend = "usbip://HOST:PORT"`, see kitd/drivers/usb_link.py), never a driver.

How pyusb's calls map onto USB/IP (Linux Documentation/usb/usbip_protocol.rst):

- enumeration: one OP_REQ_DEVLIST on a fresh TCP connection per call, so a device the
  server no longer exports ("unplugged") is simply not found. The descriptors of a
  newly listed device (busid and devnum are its identity; a replug gets a new devnum)
  are read once through a short-lived import and cached, as libusb reads them from
  sysfs without opening the device.
- open: OP_REQ_IMPORT on its own TCP connection; every transfer of that handle goes
  over it as USBIP_CMD_SUBMIT / USBIP_RET_SUBMIT, one at a time under a lock.
- timeout: the URB is cancelled with USBIP_CMD_UNLINK and USBTimeoutError (errno 110)
  is raised, as libusb does; if the server completed the URB before the unlink, its
  data is returned instead (the race libusb has too).
- errors are raised as pyusb's libusb1 backend raises them,
  `USBError(libusb_strerror, libusb_code, errno)`: URB status -EPIPE -> EPIPE (32,
  STALL); -ENODEV/-ESHUTDOWN, a closed or reset connection, a refused import -> ENODEV
  (19); -EOVERFLOW -> EOVERFLOW (75); any other failure -> EIO (5).

Thread safety: enumeration uses its own sockets and may run while another thread
transfers on an open handle; each imported connection has its own lock. Waiting is
done with socket timeouts, never by polling. Isochronous transfers and reset_device are
not supported (NotImplementedError, as libusb's LIBUSB_ERROR_NOT_SUPPORTED).
This module depends on pyusb only: the client side of USB/IP is written here with
struct (the PyPI `usbip` package is a test/rig dependency, not a kitd one).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import usb.backend
from usb.core import USBError, USBTimeoutError

from kitd.drivers.usbip_address import parse_address

__all__ = ["UsbipBackend", "get_backend"]

log = logging.getLogger(__name__)

# ---- USB/IP wire format (all header fields big-endian) ------------------------------
USBIP_VERSION = 0x0111
OP_REQ_DEVLIST, OP_REP_DEVLIST = 0x8005, 0x0005
OP_REQ_IMPORT, OP_REP_IMPORT = 0x8003, 0x0003
CMD_SUBMIT, CMD_UNLINK, RET_SUBMIT, RET_UNLINK = 1, 2, 3, 4
DIR_OUT, DIR_IN = 0, 1

_OP_HEADER = struct.Struct(">HHI")  # version, code, status
_USB_DEVICE = struct.Struct(">256s32sIIIHHHBBBBBB")  # struct usbip_usb_device, 312 bytes
_USB_INTERFACE = struct.Struct(">BBBx")  # class, subclass, protocol, padding
_BASIC = struct.Struct(">IIIII")  # command, seqnum, devid, direction, ep
_CMD_SUBMIT = struct.Struct(">Iiiii8s")  # flags, length, start_frame, n_packets, interval, setup
_RET_SUBMIT = struct.Struct(">iiiii8x")  # status, actual_length, start_frame, n_packets, errors
_CMD_UNLINK = struct.Struct(">I24x")  # seqnum of the URB to unlink
_RET_UNLINK = struct.Struct(">i24x")  # status
_HEADER_LEN = 48
_NOT_ISO = -1  # number_of_packets of a non-isochronous CMD_SUBMIT (0xffffffff on the wire)

# Linux errno values as the server reports URB status (negative on the wire).
_ECONNRESET = 104
_ESHUTDOWN = 108

# errno -> (libusb error code, libusb_strerror text), as pyusb's libusb1 backend raises.
_LIBUSB_ERRORS: dict[int, tuple[int, str]] = {
    errno.EIO: (-1, "Input/Output Error"),
    errno.ENODEV: (-4, "No such device (it may have been disconnected)"),
    errno.ENOENT: (-5, "Entity not found"),
    errno.ETIMEDOUT: (-7, "Operation timed out"),
    errno.EOVERFLOW: (-8, "Overflow"),
    errno.EPIPE: (-9, "Pipe error"),
}

# libusb_speed for the kernel's enum usb_device_speed carried in OP_REP_DEVLIST.
_SPEEDS = {1: 1, 2: 2, 3: 3, 5: 4, 6: 5}

CONNECT_TIMEOUT_S = 2.0  # connecting, listing, importing
PROBE_TIMEOUT_MS = 1000  # each descriptor read of a newly listed device
UNLINK_GRACE_S = 0.25  # how long a timed-out transfer waits for its unlink to be answered
_ABANDONED_MAX = 64


def _usb_error(code: int) -> USBError:
    """The exception pyusb's libusb1 backend raises for this errno."""
    libusb_code, text = _LIBUSB_ERRORS.get(code, _LIBUSB_ERRORS[errno.EIO])
    if code == errno.ETIMEDOUT:
        return USBTimeoutError(text, libusb_code, code)
    return USBError(text, libusb_code, code if code in _LIBUSB_ERRORS else errno.EIO)


def _status_errno(status: int) -> int:
    """The errno libusb gives for a failed URB's (negative) status."""
    code = -status
    if code == errno.EPIPE:
        return errno.EPIPE
    if code in (errno.ENODEV, _ESHUTDOWN):
        return errno.ENODEV
    if code == errno.EOVERFLOW:
        return errno.EOVERFLOW
    return errno.EIO


# ---- descriptors as pyusb wants them -------------------------------------------------
class _Descriptor:
    """A bag of descriptor fields; pyusb reads them as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__dict__}>"


@dataclass(frozen=True)
class _Exported:
    """One device as OP_REP_DEVLIST describes it."""

    busid: str
    busnum: int
    devnum: int
    speed: int
    id_vendor: int
    id_product: int
    bcd_device: int

    @property
    def devid(self) -> int:
        return (self.busnum << 16) | self.devnum


def _unpack_usb_device(raw: bytes) -> _Exported:
    (_path, busid, busnum, devnum, speed, vid, pid, bcd, *_rest) = _USB_DEVICE.unpack(raw)
    return _Exported(
        busid=busid.split(b"\0", 1)[0].decode("ascii", "replace"),
        busnum=busnum,
        devnum=devnum,
        speed=speed,
        id_vendor=vid,
        id_product=pid,
        bcd_device=bcd,
    )


def _parse_device_descriptor(raw: bytes, exported: _Exported) -> _Descriptor:
    if len(raw) < 18 or raw[1] != 0x01:
        raise ValueError("malformed device descriptor")
    (
        b_length,
        b_type,
        bcd_usb,
        d_class,
        d_sub,
        d_proto,
        mps0,
        vid,
        pid,
        bcd_dev,
        i_man,
        i_prod,
        i_serial,
        n_cfg,
    ) = struct.unpack("<BBHBBBBHHHBBBB", raw[:18])
    ports = tuple(int(p) for p in exported.busid.partition("-")[2].split(".") if p.isdigit())
    return _Descriptor(
        bLength=b_length,
        bDescriptorType=b_type,
        bcdUSB=bcd_usb,
        bDeviceClass=d_class,
        bDeviceSubClass=d_sub,
        bDeviceProtocol=d_proto,
        bMaxPacketSize0=mps0,
        idVendor=vid,
        idProduct=pid,
        bcdDevice=bcd_dev,
        iManufacturer=i_man,
        iProduct=i_prod,
        iSerialNumber=i_serial,
        bNumConfigurations=n_cfg,
        bus=exported.busnum,
        address=exported.devnum,
        port_number=ports[-1] if ports else None,
        port_numbers=ports or None,
        speed=_SPEEDS.get(exported.speed),
    )


class _Configuration:
    """A configuration descriptor split the way libusb splits it."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) < 9 or raw[1] != 0x02:
            raise ValueError("malformed configuration descriptor")
        (b_length, b_type, total, n_if, value, i_cfg, attrs, power) = struct.unpack("<BBHBBBBB", raw[:9])
        self.raw = bytes(raw)
        self.desc = _Descriptor(
            bLength=b_length,
            bDescriptorType=b_type,
            wTotalLength=total,
            bNumInterfaces=n_if,
            bConfigurationValue=value,
            iConfiguration=i_cfg,
            bmAttributes=attrs,
            bMaxPower=power,
            extra_descriptors=[],
        )
        # interfaces[i] = the alternate settings of the i-th interface number, in order;
        # each alternate setting is (interface descriptor, [endpoint descriptors]).
        self.interfaces: list[list[tuple[_Descriptor, list[_Descriptor]]]] = []
        numbers: dict[int, int] = {}
        extra_owner: _Descriptor = self.desc
        pos = b_length
        while pos + 2 <= len(raw):
            length, kind = raw[pos], raw[pos + 1]
            if length < 2 or pos + length > len(raw):
                break
            chunk = raw[pos : pos + length]
            if kind == 0x04 and length >= 9:
                intf = _Descriptor(
                    bLength=chunk[0],
                    bDescriptorType=chunk[1],
                    bInterfaceNumber=chunk[2],
                    bAlternateSetting=chunk[3],
                    bNumEndpoints=chunk[4],
                    bInterfaceClass=chunk[5],
                    bInterfaceSubClass=chunk[6],
                    bInterfaceProtocol=chunk[7],
                    iInterface=chunk[8],
                    extra_descriptors=[],
                )
                index = numbers.setdefault(chunk[2], len(numbers))
                if index == len(self.interfaces):
                    self.interfaces.append([])
                self.interfaces[index].append((intf, []))
                extra_owner = intf
            elif kind == 0x05 and length >= 7 and self.interfaces:
                endpoint = _Descriptor(
                    bLength=chunk[0],
                    bDescriptorType=chunk[1],
                    bEndpointAddress=chunk[2],
                    bmAttributes=chunk[3],
                    wMaxPacketSize=chunk[4] | chunk[5] << 8,
                    bInterval=chunk[6],
                    bRefresh=chunk[7] if length > 7 else 0,
                    bSynchAddress=chunk[8] if length > 8 else 0,
                    extra_descriptors=[],
                )
                self.interfaces[-1][-1][1].append(endpoint)
                extra_owner = endpoint
            else:
                extra_owner.extra_descriptors.extend(chunk)
            pos += length

    def alternate(self, intf: int, alt: int) -> tuple[_Descriptor, list[_Descriptor]]:
        if intf >= len(self.interfaces):
            raise IndexError(f"Invalid interface index {intf}")
        if alt >= len(self.interfaces[intf]):
            raise IndexError(f"Invalid alternate setting index {alt}")
        return self.interfaces[intf][alt]

    def has_interface(self, number: int) -> bool:
        return any(alts[0][0].bInterfaceNumber == number for alts in self.interfaces)


class UsbipDevice:
    """pyusb's device identification object: one exported device and its descriptors."""

    def __init__(
        self, host: str, port: int, exported: _Exported, device: bytes, configurations: list[bytes]
    ) -> None:
        self.host = host
        self.port = port
        self.exported = exported
        self.descriptor = _parse_device_descriptor(device, exported)
        self.configurations = [_Configuration(raw) for raw in configurations]

    def __repr__(self) -> str:
        e = self.exported
        return (
            f"<UsbipDevice {e.id_vendor:04x}:{e.id_product:04x} busid {e.busid} "
            f"devnum {e.devnum} at {self.host}:{self.port}>"
        )


# ---- one TCP connection to the server ------------------------------------------------
def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """n bytes within the socket's timeout, or ConnectionError when the peer closes."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the USB/IP server")
        buf += chunk
    return bytes(buf)


def _op_request(sock: socket.socket, code: int, reply: int, payload: bytes = b"") -> int:
    sock.sendall(_OP_HEADER.pack(USBIP_VERSION, code, 0) + payload)
    _version, got, status = _OP_HEADER.unpack(_recv_exact(sock, _OP_HEADER.size))
    if got != reply:
        raise ConnectionError(f"USB/IP reply code {got:#06x}, expected {reply:#06x}")
    return status


class _Connection:
    """An imported device: URBs go out one at a time, under this connection's lock."""

    def __init__(self, host: str, port: int, exported: _Exported) -> None:
        self.name = f"{exported.busid}@{host}:{port}"
        self.devid = exported.devid
        self.lock = threading.Lock()
        self.alive = True
        self._seqnum = 0
        self._rx = bytearray()
        # URBs given up on (seqnum -> direction) and unlinks not yet answered: their
        # replies may still arrive and are skipped by whichever transfer comes next.
        self._abandoned: OrderedDict[int, int] = OrderedDict()
        self._unlinks: set[int] = set()
        try:
            sock = _connect(host, port)
        except OSError as exc:
            raise _usb_error(errno.ENODEV) from exc
        try:
            busid = exported.busid.encode("ascii").ljust(32, b"\0")[:32]
            if _op_request(sock, OP_REQ_IMPORT, OP_REP_IMPORT, busid) != 0:
                raise ConnectionError(f"import of {exported.busid} refused")
            got = _unpack_usb_device(_recv_exact(sock, _USB_DEVICE.size))
        except (OSError, ValueError, struct.error) as exc:
            sock.close()
            raise _usb_error(errno.ENODEV) from exc
        if (got.id_vendor, got.id_product, got.devnum) != (
            exported.id_vendor,
            exported.id_product,
            exported.devnum,
        ):
            sock.close()  # replugged since it was listed: this device object is stale
            raise _usb_error(errno.ENODEV)
        self.sock = sock

    # -- plumbing --
    def _next_seqnum(self) -> int:
        self._seqnum = self._seqnum % 0xFFFFFFFF + 1
        return self._seqnum

    def _dead(self, exc: BaseException | None = None) -> USBError:
        if self.alive:
            log.debug("USB/IP connection %s lost: %s", self.name, exc)
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return _usb_error(errno.ENODEV)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(CONNECT_TIMEOUT_S)
            self.sock.sendall(data)
        except OSError as exc:
            raise self._dead(exc) from None

    def _fill(self, n: int, deadline: float | None) -> None:
        """Buffer at least n bytes; TimeoutError at the deadline (partial data is kept)."""
        while len(self._rx) < n:
            if deadline is None:
                self.sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._rx)))
            except TimeoutError:
                raise
            except OSError as exc:
                raise self._dead(exc) from None
            if not chunk:
                raise self._dead(ConnectionError("closed by the server"))
            self._rx += chunk

    def _read_message(
        self, deadline: float | None, pending: dict[int, int]
    ) -> tuple[int, int, int, int, bytes]:
        """The next whole RET_SUBMIT or RET_UNLINK: (command, seqnum, status, actual, data).

        `pending` maps the seqnums whose replies may carry IN data to their direction.
        """
        self._fill(_HEADER_LEN, deadline)
        command, seqnum, _devid, _direction, _ep = _BASIC.unpack_from(self._rx)
        if command == RET_SUBMIT:
            status, actual, _start, _npk, _err = _RET_SUBMIT.unpack_from(self._rx, 20)
            direction = pending.get(seqnum, self._abandoned.get(seqnum))
            if direction is None:
                raise self._dead(ConnectionError(f"RET_SUBMIT for unknown seqnum {seqnum}"))
            size = actual if direction == DIR_IN and actual > 0 else 0
            self._fill(_HEADER_LEN + size, deadline)
            data = bytes(self._rx[_HEADER_LEN : _HEADER_LEN + size])
            del self._rx[: _HEADER_LEN + size]
            return command, seqnum, status, actual, data
        if command == RET_UNLINK:
            (status,) = _RET_UNLINK.unpack_from(self._rx, 20)
            del self._rx[:_HEADER_LEN]
            return command, seqnum, status, 0, b""
        raise self._dead(ConnectionError(f"unexpected USB/IP command {command}"))

    def _forget(self, seqnum: int, direction: int) -> None:
        self._abandoned[seqnum] = direction
        while len(self._abandoned) > _ABANDONED_MAX:
            self._abandoned.popitem(last=False)

    def _wait(self, seqnum: int, direction: int, deadline: float | None) -> tuple[int, int, bytes]:
        """Status, actual length and data of our URB, skipping late replies to others."""
        while True:
            command, got, status, actual, data = self._read_message(deadline, {seqnum: direction})
            if command == RET_SUBMIT and got == seqnum:
                return status, actual, data
            if command == RET_SUBMIT and got in self._abandoned:
                del self._abandoned[got]
            elif command == RET_UNLINK and got in self._unlinks:
                self._unlinks.discard(got)
            else:
                raise self._dead(ConnectionError(f"unexpected reply {command}/{got}"))

    def _cancel(self, seqnum: int, direction: int) -> tuple[int, int, bytes]:
        """Unlink a timed-out URB; its result if it completed first, else timeout."""
        unlink = self._next_seqnum()
        self._send(_BASIC.pack(CMD_UNLINK, unlink, self.devid, DIR_OUT, 0) + _CMD_UNLINK.pack(seqnum))
        self._unlinks.add(unlink)
        self._forget(seqnum, direction)
        deadline = time.monotonic() + UNLINK_GRACE_S
        try:
            while True:
                command, got, status, actual, data = self._read_message(deadline, {})
                if command == RET_SUBMIT and got == seqnum:
                    self._abandoned.pop(seqnum, None)
                    if -status in (_ECONNRESET, errno.ENOENT):
                        raise _usb_error(errno.ETIMEDOUT)
                    return status, actual, data  # completed before the unlink reached it
                if command == RET_UNLINK and got == unlink:
                    self._unlinks.discard(unlink)
                    if status != 0:  # unlinked: no RET_SUBMIT will follow
                        self._abandoned.pop(seqnum, None)
                    raise _usb_error(errno.ETIMEDOUT)
                if command == RET_SUBMIT and got in self._abandoned:
                    del self._abandoned[got]
                elif command == RET_UNLINK and got in self._unlinks:
                    self._unlinks.discard(got)
                else:
                    raise self._dead(ConnectionError(f"unexpected reply {command}/{got}"))
        except TimeoutError:
            # The server has not answered the unlink yet; the next transfer skips
            # whatever it sends for these seqnums.
            raise _usb_error(errno.ETIMEDOUT) from None

    # -- the one entry point --
    def submit(
        self, direction: int, ep: int, payload: bytes, length: int, timeout_ms: int, setup: bytes = b"\0" * 8
    ) -> tuple[int, bytes]:
        """Run one URB; (actual length, IN data). Raises USBError as libusb would."""
        with self.lock:
            if not self.alive:
                raise _usb_error(errno.ENODEV)
            seqnum = self._next_seqnum()
            header = _BASIC.pack(CMD_SUBMIT, seqnum, self.devid, direction, ep)
            header += _CMD_SUBMIT.pack(0, length, 0, _NOT_ISO, 0, setup)
            self._send(header + (payload if direction == DIR_OUT else b""))
            deadline = None if timeout_ms <= 0 else time.monotonic() + timeout_ms / 1000.0
            try:
                status, actual, data = self._wait(seqnum, direction, deadline)
            except TimeoutError:
                status, actual, data = self._cancel(seqnum, direction)
            if status != 0:
                raise _usb_error(_status_errno(status))
            if direction == DIR_IN:
                if len(data) > length:
                    raise _usb_error(errno.EOVERFLOW)
                return len(data), data
            return max(0, min(actual, length)), b""  # OUT: what the device took

    def close(self) -> None:
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self.lock:
            self.sock.close()


class _Handle:
    """What open_device returns: the connection plus pyusb-side bookkeeping."""

    def __init__(self, device: UsbipDevice) -> None:
        self.device = device
        self.conn = _Connection(device.host, device.port, device.exported)
        self.claimed: set[int] = set()


# ---- the backend ---------------------------------------------------------------------
class UsbipBackend(usb.backend.IBackend):
    """pyusb backend for the devices one USB/IP server exports."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self._cache: dict[tuple[Any, ...], UsbipDevice] = {}
        self._cache_lock = threading.Lock()
        self._reachable: bool | None = None

    def __repr__(self) -> str:
        return f"<UsbipBackend {self.host}:{self.port}>"

    # -- enumeration --
    def _devlist(self) -> list[_Exported] | None:
        try:
            with _connect(self.host, self.port) as sock:
                sock.settimeout(CONNECT_TIMEOUT_S)
                if _op_request(sock, OP_REQ_DEVLIST, OP_REP_DEVLIST) != 0:
                    raise ConnectionError("device list refused")
                (count,) = struct.unpack(">I", _recv_exact(sock, 4))
                found = []
                for _ in range(count):
                    raw = _recv_exact(sock, _USB_DEVICE.size)
                    n_interfaces = raw[-1]
                    _recv_exact(sock, _USB_INTERFACE.size * n_interfaces)
                    found.append(_unpack_usb_device(raw))
        except (OSError, struct.error) as exc:
            if self._reachable is not False:
                log.warning("USB/IP server %s:%d unreachable: %s", self.host, self.port, exc)
            self._reachable = False
            return None
        if self._reachable is False:
            log.info("USB/IP server %s:%d reachable again", self.host, self.port)
        self._reachable = True
        return found

    def _probe(self, exported: _Exported) -> UsbipDevice | None:
        """Read the descriptors of a newly listed device through a short import."""
        try:
            conn = _Connection(self.host, self.port, exported)
        except USBError as exc:
            log.debug("USB/IP probe of %s failed: %s", exported.busid, exc)
            return None
        try:

            def get(kind: int, index: int, length: int) -> bytes:
                setup = struct.pack("<BBHHH", 0x80, 0x06, kind << 8 | index, 0, length)
                return conn.submit(DIR_IN, 0, b"", length, PROBE_TIMEOUT_MS, setup)[1]

            device = get(0x01, 0, 18)
            configurations = []
            for index in range(device[17] if len(device) >= 18 else 0):
                head = get(0x02, index, 9)
                total = struct.unpack_from("<H", head, 2)[0] if len(head) >= 4 else 9
                configurations.append(get(0x02, index, total))
            return UsbipDevice(self.host, self.port, exported, device, configurations)
        except (USBError, ValueError, struct.error) as exc:
            log.debug("USB/IP probe of %s failed: %s", exported.busid, exc)
            return None
        finally:
            conn.close()

    def enumerate_devices(self) -> list[UsbipDevice]:
        exported = self._devlist() or []
        keys = {(e.busid, e.devnum, e.id_vendor, e.id_product, e.bcd_device): e for e in exported}
        with self._cache_lock:
            for key in set(self._cache) - set(keys):
                del self._cache[key]
            known = dict(self._cache)
        devices = []
        for key, entry in keys.items():
            device = known.get(key)
            if device is None:
                device = self._probe(entry)
                if device is None:
                    continue
                with self._cache_lock:
                    self._cache[key] = device
            devices.append(device)
        return devices

    def get_parent(self, dev: UsbipDevice) -> None:
        return None

    # -- descriptors --
    def get_device_descriptor(self, dev: UsbipDevice) -> _Descriptor:
        return dev.descriptor

    def _configuration(self, dev: UsbipDevice, config: int) -> _Configuration:
        if not 0 <= config < len(dev.configurations):
            raise IndexError(f"Invalid configuration index {config}")
        return dev.configurations[config]

    def get_configuration_descriptor(self, dev: UsbipDevice, config: int) -> _Descriptor:
        return self._configuration(dev, config).desc

    def get_interface_descriptor(self, dev: UsbipDevice, intf: int, alt: int, config: int) -> _Descriptor:
        return self._configuration(dev, config).alternate(intf, alt)[0]

    def get_endpoint_descriptor(
        self, dev: UsbipDevice, ep: int, intf: int, alt: int, config: int
    ) -> _Descriptor:
        endpoints = self._configuration(dev, config).alternate(intf, alt)[1]
        if ep >= len(endpoints):
            raise IndexError(f"Invalid endpoint index {ep}")
        return endpoints[ep]

    # -- handles --
    def open_device(self, dev: UsbipDevice) -> _Handle:
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.conn.close()

    def _control(
        self,
        handle: _Handle,
        request_type: int,
        request: int,
        value: int,
        index: int,
        data: bytes | int,
        timeout: int,
    ) -> tuple[int, bytes]:
        if request_type & 0x80:
            length = int(data)  # type: ignore[arg-type]
            setup = struct.pack("<BBHHH", request_type, request, value, index, length)
            return handle.conn.submit(DIR_IN, 0, b"", length, timeout, setup)
        payload = bytes(data)  # type: ignore[arg-type]
        setup = struct.pack("<BBHHH", request_type, request, value, index, len(payload))
        return handle.conn.submit(DIR_OUT, 0, payload, len(payload), timeout, setup)

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._control(dev_handle, 0x00, 0x09, config_value, 0, b"", 0)
        dev_handle.claimed.clear()

    def get_configuration(self, dev_handle: _Handle) -> int:
        _n, data = self._control(dev_handle, 0x80, 0x08, 0, 0, 1, PROBE_TIMEOUT_MS)
        if len(data) != 1:
            raise _usb_error(errno.EIO)
        return data[0]

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._control(dev_handle, 0x01, 0x0B, altsetting, intf, b"", 0)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        if not dev_handle.conn.alive:
            raise _usb_error(errno.ENODEV)
        if not any(c.has_interface(intf) for c in dev_handle.device.configurations):
            raise _usb_error(errno.ENOENT)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    # -- transfers --
    def _write(self, dev_handle: _Handle, ep: int, data: array, timeout: int) -> int:
        payload = data.tobytes()
        return dev_handle.conn.submit(DIR_OUT, ep & 0x0F, payload, len(payload), timeout)[0]

    def _read(self, dev_handle: _Handle, ep: int, buff: array, timeout: int) -> int:
        view = memoryview(buff).cast("B")
        n, data = dev_handle.conn.submit(DIR_IN, ep & 0x0F, b"", len(view), timeout)
        view[:n] = data
        return n

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: array, timeout: int) -> int:
        return self._write(dev_handle, ep, data, timeout)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array, timeout: int) -> int:
        return self._read(dev_handle, ep, buff, timeout)

    def intr_write(self, dev_handle: _Handle, ep: int, intf: int, data: array, timeout: int) -> int:
        return self._write(dev_handle, ep, data, timeout)

    def intr_read(self, dev_handle: _Handle, ep: int, intf: int, buff: array, timeout: int) -> int:
        return self._read(dev_handle, ep, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array,
        timeout: int,
    ) -> int:
        if bmRequestType & 0x80:
            view = memoryview(data).cast("B")
            n, got = self._control(dev_handle, bmRequestType, bRequest, wValue, wIndex, len(view), timeout)
            view[:n] = got
            return n
        return self._control(dev_handle, bmRequestType, bRequest, wValue, wIndex, data.tobytes(), timeout)[0]

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        # CLEAR_FEATURE(ENDPOINT_HALT) to the endpoint, as libusb_clear_halt sends it.
        self._control(dev_handle, 0x02, 0x01, 0x0000, ep, b"", PROBE_TIMEOUT_MS)

    def reset_device(self, dev_handle: _Handle) -> None:
        raise NotImplementedError("reset_device over USB/IP")

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        raise _usb_error(errno.ENOENT)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        raise _usb_error(errno.ENOENT)


def get_backend(address: str) -> usb.backend.IBackend:
    """A backend for the USB/IP server at "HOST:PORT"; ValueError if the address is malformed.

    Each driver makes its own (its device cache is its own); nothing is contacted until
    pyusb enumerates.
    """
    return UsbipBackend(*parse_address(address))
