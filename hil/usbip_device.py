"""Serve one simulated USB device over USB/IP on 127.0.0.1, whatever the device is.

`UsbipServer(device, port)` answers device lists and imports for a device that
implements `UsbDevice`, serves its device and configuration descriptors, and hands it
every other control request and every bulk or interrupt URB its importers submit.
kitd reaches it through kitd.drivers.usbip_backend, as it would a real usbipd.

The wire is the PyPI `usbip` package's codec (usbip.protocol: serve_handshake,
read_cmd, write_ret), not its USBDevice/transport layer: that layer cannot drop live
imports on unplug, resets the device on every new import, and has no per-transfer
hook for a simulator's faults.
"""

from __future__ import annotations

import errno
import logging
import socket
import socketserver
import struct
import threading
from typing import Protocol

from usbip import core as usbip_core
from usbip import protocol as usbip_wire

from hil.loopback import LoopbackServer

log = logging.getLogger("usbip_device")

GET_DESCRIPTOR = 0x06
DEVICE_DESCRIPTOR_TYPE, CONFIG_DESCRIPTOR_TYPE = 0x01, 0x02
INTERFACE_DESCRIPTOR_TYPE, ENDPOINT_DESCRIPTOR_TYPE = 0x04, 0x05
ISOCHRONOUS = 0x01  # bmAttributes transfer type of an endpoint descriptor


class Connection:
    """One host that imported the device; replies to it are written under its lock."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.lock = threading.Lock()

    def send(self, urb: usbip_core.Urb) -> None:
        """Complete a URB: now, or later from another thread for one that was left pending."""
        with self.lock:
            try:
                usbip_wire.write_ret(self.sock, urb)
            except OSError:
                pass  # the host is gone; its reader thread ends on its own

    def send_unlink(self, urb: usbip_core.Urb, status: int) -> None:
        header = struct.pack(">IIIIIi24x", usbip_wire.RET_UNLINK, urb.seqnum, 0, 0, 0, status)
        with self.lock:
            try:
                self.sock.sendall(header)
            except OSError:
                pass

    def drop(self) -> None:
        """Cut the host off, as pulling the cable does; its reader thread then ends."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class UsbDevice(Protocol):
    """What UsbipServer needs of a simulated device.

    Calls come from every connection's own thread at once: the device locks its own
    state. Unplugging is the device's doing: `address()` turns None and it drops its
    connections (Connection.drop); replugged, it answers to a new address.
    """

    busid: str  # the USB/IP bus id a host imports, e.g. "1-1"
    speed: int  # usbip.core.SPEED_*
    device_descriptor: bytes
    config_descriptor: bytes  # its only configuration, with interfaces and endpoints

    def address(self) -> int | None:
        """Its device number while plugged in; None while unplugged (not listed, not importable)."""
        ...

    def attach(self, conn: Connection, devnum: int) -> bool:
        """A host imported device number `devnum`; False if that device is gone meanwhile."""
        ...

    def detach(self, conn: Connection) -> None:
        """The host's connection ended: forget it and its pending URBs."""
        ...

    def control(self, setup: usbip_core.Setup) -> bytes | None:
        """A control request other than GET_DESCRIPTOR: the data (IN), b"" (OUT), or None to STALL."""
        ...

    def transfer(self, conn: Connection, urb: usbip_core.Urb) -> usbip_core.Urb | None:
        """A bulk or interrupt URB, completed now; or None: completed later with conn.send(), or
        never (it waits until the host unlinks it)."""
        ...

    def unlink(self, conn: Connection, seqnum: int) -> bool:
        """The host gives up on a URB: True if it was still pending (it is forgotten)."""
        ...

    def unplug(self, why: str) -> bool:
        """The device vanishes: its connections drop. False if it was already unplugged."""
        ...


def fail(urb: usbip_core.Urb, status: int) -> usbip_core.Urb:
    """The URB completed with an error: status is a negative errno (-EPIPE is a STALL)."""
    urb.buffer, urb.actual, urb.status = b"", 0, status
    return urb


class _Listing:
    """The device as usbip.protocol's handshake describes it (OP_REP_DEVLIST/IMPORT)."""

    busnum = 1

    def __init__(self, device: UsbDevice, devnum: int) -> None:
        descriptor = device.device_descriptor
        self.vid, self.pid, self.bcdDevice = struct.unpack_from("<HHH", descriptor, 8)
        self.device_class, self.device_subclass, self.device_protocol = descriptor[4:7]
        self.speed = device.speed
        self.busid = device.busid
        self.devnum = devnum
        config = device.config_descriptor
        self.num_interfaces = config[4]
        self._interfaces: list[tuple[int, int, int]] = []
        self._iso: set[tuple[int, int]] = set()
        at = 0
        while at + 1 < len(config) and config[at] > 0:
            length, kind = config[at], config[at + 1]
            if kind == INTERFACE_DESCRIPTOR_TYPE and config[at + 3] == 0:  # alternate setting 0
                self._interfaces.append((config[at + 5], config[at + 6], config[at + 7]))
            elif kind == ENDPOINT_DESCRIPTOR_TYPE and config[at + 3] & 0x03 == ISOCHRONOUS:
                address = config[at + 2]
                direction = usbip_core.IN if address & 0x80 else usbip_core.OUT
                self._iso.add((address & 0x0F, direction))
            at += length

    def interface_triples(self) -> list[tuple[int, int, int]]:
        return self._interfaces

    def is_iso(self, ep: int, direction: int) -> bool:
        return (ep, direction) in self._iso


class _ImportHandler(socketserver.BaseRequestHandler):
    """One host's connection: a device list, or an import and then its URBs until it goes."""

    server: UsbipServer

    def handle(self) -> None:
        sock, device = self.request, self.server.device
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = self.client_address[:2]
        conn = Connection(sock, f"{host}:{port}")
        try:
            sock.settimeout(5.0)  # a host that never finishes its handshake is let go
            devnum = device.address()
            listing = [] if devnum is None else [_Listing(device, devnum)]
            view = usbip_wire.serve_handshake(sock, listing)
            if view is None or not device.attach(conn, view.devnum):
                return  # a device list, a refused import, or unplugged meanwhile
            sock.settimeout(None)
            log.info("imported by %s", conn.peer)
            while True:
                urb = usbip_wire.read_cmd(sock, view)
                if urb is None:
                    break
                if urb.command == usbip_wire.CMD_UNLINK:
                    pending = device.unlink(conn, urb.flags)
                    conn.send_unlink(urb, -errno.ECONNRESET if pending else 0)
                elif urb.command == usbip_wire.CMD_SUBMIT:
                    try:
                        result = self._submit(conn, urb)
                    except Exception:  # e.g. a frame source that failed: EIO, keep serving
                        log.exception("URB on ep %d failed", urb.ep)
                        result = fail(urb, -errno.EIO)
                    if result is not None:
                        conn.send(result)
                else:
                    log.warning("unknown USB/IP command %d from %s", urb.command, conn.peer)
                    break
        except OSError:
            pass
        finally:
            device.detach(conn)

    def _submit(self, conn: Connection, urb: usbip_core.Urb) -> usbip_core.Urb | None:
        if urb.ep != 0:
            return self.server.device.transfer(conn, urb)
        setup = usbip_core.Setup.parse(urb.setup)
        if setup.type == usbip_core.STANDARD and setup.bRequest == GET_DESCRIPTOR:
            data = self._descriptor(setup)
        else:
            data = self.server.device.control(setup)
        if data is None:
            request = (setup.bmRequestType, setup.bRequest, setup.wValue, setup.wIndex)
            log.debug("control %02x %02x %04x %04x: STALL", *request)
            return fail(urb, -errno.EPIPE)
        if setup.direction == usbip_core.IN:
            data = data[: setup.wLength]
            urb.buffer, urb.actual = data, len(data)
        else:
            urb.buffer, urb.actual = b"", setup.wLength
        urb.status = 0
        return urb

    def _descriptor(self, setup: usbip_core.Setup) -> bytes | None:
        """The device or configuration descriptor; any other (strings included) STALLs."""
        if setup.direction != usbip_core.IN:
            return None
        kind, index = setup.wValue >> 8, setup.wValue & 0xFF
        if kind == DEVICE_DESCRIPTOR_TYPE:
            return self.server.device.device_descriptor
        if kind == CONFIG_DESCRIPTOR_TYPE and index == 0:
            return self.server.device.config_descriptor
        return None


class UsbipServer(LoopbackServer):
    """Exports one simulated device on 127.0.0.1: a thread for each host's connection."""

    def __init__(self, device: UsbDevice, port: int) -> None:
        self.device = device
        super().__init__(port, _ImportHandler)

    def close(self) -> None:
        """Stop listening and pull the device out, so that no host stays attached to a closed server."""
        super().close()
        self.device.unplug("server closed")
