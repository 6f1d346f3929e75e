"""kitd.drivers.usbip_backend against a scripted in-test USB/IP server.

The simulator never produces these orders of replies, a real server may: a URB that
completes just before its unlink, an unlink answered late, URB statuses other than
STALL, an import refused after the device was listed. Each script reacts to what the
client sends (no sleeps), so the tests do not depend on timing.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
import usb.core
import usb.util
from usbip import core as usbip_core
from usbip import protocol as usbip_wire

from hil.nb1010_sim import CONFIG_DESCRIPTOR, DEVICE_DESCRIPTOR
from kitd.drivers.usbip_backend import get_backend

Script = Callable[["FakeServer", socket.socket, usbip_core.Urb], None]


class _View:
    vid, pid, bcdDevice = 0x298D, 0x1010, 0x0001
    device_class = device_subclass = device_protocol = 0
    speed = usbip_core.SPEED_FULL
    num_interfaces = 1
    busid, busnum, devnum = "1-1", 1, 2

    def interface_triples(self) -> list[tuple[int, int, int]]:
        return [(0, 0, 0)]

    def is_iso(self, ep: int, direction: int) -> bool:
        return False


class FakeServer:
    """Answers the handshake and control requests; bulk URBs and unlinks go to a script."""

    def __init__(self, script: Script, *, refuse_import: bool = False) -> None:
        self.script = script
        self.refuse_import = refuse_import
        self.held: list[usbip_core.Urb] = []  # URBs the script has not answered yet
        self.reads = 0  # bulk IN URBs seen
        self._connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # header, data: 2 sends
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            view = _View()
            self._connections += 1
            if self.refuse_import and self._connections > 1:
                view.busid = "9-9"  # listed as 1-1 first, so the import of 1-1 is refused
            view = usbip_wire.serve_handshake(conn, [view])
            if view is None:
                return
            while (urb := usbip_wire.read_cmd(conn, view)) is not None:
                if urb.command == usbip_wire.CMD_SUBMIT and urb.ep == 0:
                    self._control(conn, urb)
                else:
                    self.script(self, conn, urb)

    def _control(self, conn: socket.socket, urb: usbip_core.Urb) -> None:
        setup = usbip_core.Setup.parse(urb.setup)
        data = b""
        if setup.bRequest == 0x06:
            data = {1: DEVICE_DESCRIPTOR, 2: CONFIG_DESCRIPTOR}.get(setup.wValue >> 8, b"")
        elif setup.bRequest == 0x08:
            data = b"\x01"
        reply(conn, urb, data=data[: setup.wLength])

    def close(self) -> None:
        self.sock.close()


def reply(conn: socket.socket, urb: usbip_core.Urb, status: int = 0, data: bytes = b"") -> None:
    urb.status, urb.buffer = status, data
    urb.actual = len(data) if urb.direction == usbip_core.IN else urb.length
    usbip_wire.write_ret(conn, urb)


def reply_unlink(conn: socket.socket, unlink: usbip_core.Urb, status: int) -> None:
    conn.sendall(struct.pack(">IIIIIi24x", usbip_wire.RET_UNLINK, unlink.seqnum, 0, 0, 0, status))


@pytest.fixture
def serve() -> Iterator[Callable[..., usb.core.Device | None]]:
    servers: list[FakeServer] = []
    devices: list[usb.core.Device] = []

    def start(script: Script, **kwargs: bool) -> usb.core.Device | None:
        server = FakeServer(script, **kwargs)
        servers.append(server)
        dev = usb.core.find(idVendor=0x298D, idProduct=0x1010, backend=get_backend(server.address))
        if dev is not None:
            usb.util.claim_interface(dev, 0)
            devices.append(dev)
        return dev

    yield start
    for dev in devices:
        usb.util.dispose_resources(dev)
    for server in servers:
        server.close()


def test_a_urb_completed_before_its_unlink_returns_its_data(serve) -> None:
    def script(server: FakeServer, conn: socket.socket, urb: usbip_core.Urb) -> None:
        if urb.command == usbip_wire.CMD_SUBMIT and urb.direction == usbip_core.IN:
            server.reads += 1
            if server.reads == 1:
                server.held.append(urb)  # first read: held until the client unlinks it
            else:
                reply(conn, urb, data=b"second")
        elif urb.command == usbip_wire.CMD_UNLINK:
            reply(conn, server.held.pop(), data=b"late but complete")
            reply_unlink(conn, urb, 0)  # "already completed"
        else:
            reply(conn, urb)

    dev = serve(script)
    assert bytes(dev.read(0x83, 64, 20)) == b"late but complete"
    assert bytes(dev.read(0x83, 64, 500)) == b"second"  # the stray RET_UNLINK was skipped


def test_replies_to_an_unlink_answered_late_are_skipped(serve) -> None:
    pending: list[usbip_core.Urb] = []

    def script(server: FakeServer, conn: socket.socket, urb: usbip_core.Urb) -> None:
        if urb.command == usbip_wire.CMD_UNLINK:
            pending.append(urb)  # not answered within the client's grace period
        elif urb.direction == usbip_core.IN and not server.held:
            server.held.append(urb)
        else:
            # The next URB: first the late answers to the abandoned one, then its own.
            reply(conn, server.held.pop(), status=-errno.ECONNRESET)
            reply_unlink(conn, pending.pop(), -errno.ECONNRESET)
            reply(conn, urb)

    dev = serve(script)
    with pytest.raises(usb.core.USBTimeoutError) as excinfo:
        dev.read(0x83, 64, 20)
    assert excinfo.value.errno == errno.ETIMEDOUT
    assert dev.write(0x02, b"\x80\x38\x01\x00\x08\x00\x00\x00", 500) == 8


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (-errno.EPIPE, errno.EPIPE),
        (-errno.EOVERFLOW, errno.EOVERFLOW),
        (-errno.EPROTO, errno.EIO),
        (-errno.ESHUTDOWN, errno.ENODEV),
        (-errno.ENODEV, errno.ENODEV),
    ],
)
def test_urb_status_maps_to_the_libusb_errno(serve, status: int, expected: int) -> None:
    def script(server: FakeServer, conn: socket.socket, urb: usbip_core.Urb) -> None:
        reply(conn, urb, status=status)

    dev = serve(script)
    with pytest.raises(usb.core.USBError) as excinfo:
        dev.read(0x83, 64, 500)
    assert excinfo.value.errno == expected


def test_short_out_reports_what_the_device_took(serve) -> None:
    def script(server: FakeServer, conn: socket.socket, urb: usbip_core.Urb) -> None:
        urb.length = 3
        reply(conn, urb)

    dev = serve(script)
    assert dev.write(0x02, b"\x80\x38\x01\x00\x08\x00\x00\x00", 500) == 3


def test_a_connection_closed_mid_transfer_is_enodev(serve) -> None:
    def script(server: FakeServer, conn: socket.socket, urb: usbip_core.Urb) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    dev = serve(script)
    with pytest.raises(usb.core.USBError) as excinfo:
        dev.read(0x83, 64, 500)
    assert excinfo.value.errno == errno.ENODEV
    with pytest.raises(usb.core.USBError) as excinfo:
        dev.read(0x83, 64, 500)
    assert excinfo.value.errno == errno.ENODEV


def test_a_listed_device_that_cannot_be_imported_is_not_found(serve) -> None:
    assert serve(lambda *_: None, refuse_import=True) is None
