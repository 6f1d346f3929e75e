"""Byte link to a serial device through pyserial, with the kit's own errors.

Moves bytes only: open the port (8N1, exclusive), write, read what arrives within
a timeout, flush input. pyserial, OSError and termios failures are mapped onto
DeviceGone / DeviceBusy / ProtocolError here, so no driver sees them. Presence is
told without I/O to the device: the path must still name the character device
that was opened, and that device must not be hung up (a USB serial adapter
pulled out, or a simulator's pty closed).
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading

import serial

from kitd.errors import DeviceBusy, DeviceGone, KitError, ProtocolError

SERIAL_ERRORS = (serial.SerialException, OSError, termios.error)


def map_serial_error(exc: BaseException, what: str) -> KitError:
    """The kit's error for a pyserial / OS / termios failure while doing `what`."""
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc, termios.error) and exc.args:
        code = exc.args[0]
    if code in (errno.EAGAIN, errno.EWOULDBLOCK) and "lock" in str(exc):
        return DeviceBusy(f"{what}: port held by another program")
    if code == errno.EBUSY:
        return DeviceBusy(f"{what}: port busy")
    if code in (errno.EACCES, errno.EPERM):
        return ProtocolError(f"{what}: permission denied on the serial port")
    if code == errno.ENOENT:
        return DeviceGone(f"{what}: port not found")
    return DeviceGone(f"{what}: port unplugged ({_reason(exc)})")


def _reason(exc: BaseException) -> str:
    # termios says (5, 'Input/output error'), OSError [Errno 5] ...: the words alone.
    if isinstance(exc, termios.error) and len(exc.args) == 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SerialLink:
    """One serial port by path (a symlink is followed at open), 8N1 at `baud`."""

    def __init__(self, path: str, baud: int) -> None:
        self.path = path
        self.baud = baud
        self._port: serial.Serial | None = None
        self._rdev: int | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        with self._lock:
            self._close_locked()
            if not os.path.exists(self.path):
                raise DeviceGone(f"serial port {self.path} not found")
            try:
                port = serial.Serial(
                    self.path, self.baud, bytesize=8, parity="N", stopbits=1, timeout=0, exclusive=True
                )
            except SERIAL_ERRORS as exc:
                raise map_serial_error(exc, f"opening {self.path}") from None
            self._port = port
            self._rdev = os.fstat(port.fileno()).st_rdev

    def _close_locked(self) -> None:
        port, self._port = self._port, None
        self._rdev = None
        if port is not None:
            try:
                port.close()
            except SERIAL_ERRORS:
                pass  # an unplugged port cannot be closed cleanly

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def is_present(self) -> bool:
        """Whether the path still names the opened device and it is not hung up (no I/O)."""
        port, rdev = self._port, self._rdev
        try:
            now = os.stat(self.path).st_rdev
        except OSError:
            return False
        if port is None or rdev is None:
            return True
        if now != rdev:
            return False
        try:
            poller = select.poll()
            poller.register(port.fileno(), select.POLLHUP | select.POLLERR)
            events = poller.poll(0)
        except (OSError, ValueError, serial.SerialException):
            return False
        return not any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in events)

    def _require(self, what: str) -> serial.Serial:
        if self._port is None:
            raise DeviceGone(f"{what}: serial port {self.path} is not open")
        return self._port

    def write(self, data: bytes, what: str = "serial write") -> None:
        port = self._require(what)
        try:
            port.write(data)
            port.flush()
        except SERIAL_ERRORS as exc:
            raise map_serial_error(exc, what) from None

    def read(self, timeout_s: float, what: str = "serial read") -> bytes:
        """What arrives within `timeout_s`: returns as soon as anything is there, b'' if nothing."""
        port = self._require(what)
        try:
            ready, _, _ = select.select([port.fileno()], [], [], max(0.0, timeout_s))
            if not ready:
                return b""
            data = port.read(max(1, port.in_waiting))
        except SERIAL_ERRORS as exc:
            raise map_serial_error(exc, what) from None
        if not data:
            # Readable but nothing to read: the other end hung up.
            raise DeviceGone(f"{what}: port unplugged (hung up)")
        return data

    def discard_input(self, what: str = "serial flush") -> None:
        port = self._require(what)
        try:
            port.reset_input_buffer()
        except SERIAL_ERRORS as exc:
            raise map_serial_error(exc, what) from None
