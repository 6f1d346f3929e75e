"""Bulk-transfer link to a USB device through pyusb, with the kit's own errors.

Moves bytes only: finding the device, claiming its interface and bulk I/O. The
pyusb backend is chosen by configuration (`usb_backend`): the system's libusb, or
a USB/IP server for the simulation rig. pyusb and libusb errors are mapped onto
DeviceGone / DeviceTimeout / ProtocolError here, so no driver sees them.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from typing import Any

import usb.core
import usb.util

from kitd.drivers.usbip_address import parse_backend_setting
from kitd.drivers.usbip_backend import UsbipBackend
from kitd.errors import ConfigError, DeviceGone, DeviceTimeout, ProtocolError

USB_BACKEND_ENV = "KITD_USB_BACKEND"


def resolve_backend(setting: str | None) -> Any:
    """The pyusb backend a `usb_backend` setting names (None: pyusb's default libusb1).

    The environment variable KITD_USB_BACKEND overrides an empty setting, so that
    kitctl can reach a simulator without a config file. ConfigError naming the setting
    when it is not empty or usbip://HOST:PORT.
    """
    setting = setting or os.environ.get(USB_BACKEND_ENV, "")
    try:
        address = parse_backend_setting(setting)
    except ValueError as exc:
        source = "usb_backend" if setting != os.environ.get(USB_BACKEND_ENV) else USB_BACKEND_ENV
        raise ConfigError(f"{source} {exc}") from None
    if address is None:
        return None
    return UsbipBackend(*address)


def map_usb_error(exc: BaseException, what: str) -> Exception:
    """The kit's error for a pyusb/libusb failure while doing `what`."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, usb.core.USBTimeoutError) or code == errno.ETIMEDOUT:
        return DeviceTimeout(f"{what}: no answer from the device in time")
    if code in (errno.ENODEV, errno.ENOENT, errno.ESHUTDOWN):
        return DeviceGone(f"{what}: device unplugged")
    if code == errno.EPIPE:
        return ProtocolError(f"{what}: endpoint stalled")
    if code == errno.EBUSY:
        return ProtocolError(f"{what}: interface claimed by another program")
    if code == errno.EACCES:
        return ProtocolError(f"{what}: permission denied on the USB device")
    return ProtocolError(f"{what}: transfer failed ({exc})")


@dataclass
class UsbFacts:
    """What the device says about itself; strings are optional on many sensors."""

    manufacturer: str | None
    product: str | None
    serial: str | None
    bcd_device: int
    bus: int | None
    address: int | None


def _optional_string(device: usb.core.Device, attribute: str) -> str | None:
    # The recorded NB-1010 has no string descriptors; pyusb raises ValueError
    # ("no langid") then, and a real sensor may fail the control transfer.
    try:
        value = getattr(device, attribute)
    except (ValueError, usb.core.USBError, NotImplementedError):
        return None
    return value or None


class UsbBulkLink:
    """One USB device reached by vendor/product id (and serial), interface and endpoints."""

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        *,
        serial: str | None = None,
        backend: Any = None,
        interface: int = 0,
        endpoint_out: int,
        endpoint_in: int,
        timeout_ms: int = 500,
    ) -> None:
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.serial = serial
        self.backend = backend
        self.interface = interface
        self.endpoint_out = endpoint_out
        self.endpoint_in = endpoint_in
        self.timeout_ms = timeout_ms
        self._device: usb.core.Device | None = None
        self._lock = threading.Lock()

    def _find(self, at: tuple[int, int] | None = None) -> usb.core.Device | None:
        """The device of this vendor, product (and serial); only the one at (bus, address) `at`."""
        match = None
        if self.serial is not None or at is not None:

            def match(dev: usb.core.Device) -> bool:
                if at is not None and (dev.bus, dev.address) != at:
                    return False
                return self.serial is None or _optional_string(dev, "serial_number") == self.serial

        try:
            return usb.core.find(
                idVendor=self.vendor_id,
                idProduct=self.product_id,
                custom_match=match,
                backend=self.backend,
            )
        except usb.core.NoBackendError:
            raise ProtocolError("no USB backend: libusb-1.0 is not installed") from None
        except (usb.core.USBError, OSError) as exc:
            raise map_usb_error(exc, "USB enumeration") from None

    def is_present(self) -> bool:
        """Whether the device is on the bus, by enumeration only (no transfer). Once opened, the
        one opened: unplugged and plugged back in between two looks (a loose connector), it
        comes back at a new address, and the handle open on the old one is dead."""
        opened = self._device
        if opened is None:
            return self._find() is not None
        return self._find(at=(opened.bus, opened.address)) is not None

    def open(self) -> UsbFacts:
        """Find the device, make sure it is configured, claim the interface."""
        with self._lock:
            self._close_locked()
            device = self._find()
            name = f"{self.vendor_id:04x}:{self.product_id:04x}"
            if device is None:
                raise DeviceGone(f"USB device {name} not found")
            try:
                try:
                    configured = device.get_active_configuration() is not None
                except usb.core.USBError as exc:
                    # libusb reports an unconfigured device as an error on some backends
                    if getattr(exc, "errno", None) in (errno.ENODEV,):
                        raise
                    configured = False
                if not configured:
                    device.set_configuration()
                usb.util.claim_interface(device, self.interface)
            except usb.core.USBError as exc:
                usb.util.dispose_resources(device)
                raise map_usb_error(exc, f"opening USB device {name}") from None
            self._device = device
            return UsbFacts(
                manufacturer=_optional_string(device, "manufacturer"),
                product=_optional_string(device, "product"),
                serial=_optional_string(device, "serial_number"),
                bcd_device=int(device.bcdDevice),
                bus=getattr(device, "bus", None),
                address=getattr(device, "address", None),
            )

    def _close_locked(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        try:
            usb.util.release_interface(device, self.interface)
        except (usb.core.USBError, OSError, ValueError):
            pass  # an unplugged device cannot release anything
        try:
            usb.util.dispose_resources(device)
        except (usb.core.USBError, OSError, ValueError):
            pass

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _require(self) -> usb.core.Device:
        if self._device is None:
            raise DeviceGone("USB device is not open")
        return self._device

    def _failed(self, device: usb.core.Device, endpoint: int, exc: BaseException, what: str) -> Exception:
        error = map_usb_error(exc, what)
        if getattr(exc, "errno", None) == errno.EPIPE:
            # A halted endpoint stays halted until the host clears it (USB 2.0 9.4.5).
            try:
                device.clear_halt(endpoint)
            except (usb.core.USBError, OSError):
                pass
        return error

    def write(self, data: bytes, what: str = "bulk write") -> None:
        device = self._require()
        try:
            written = device.write(self.endpoint_out, data, self.timeout_ms)
        except (usb.core.USBError, OSError) as exc:
            raise self._failed(device, self.endpoint_out, exc, what) from None
        if written != len(data):
            raise ProtocolError(f"{what}: short write ({written} of {len(data)} bytes)")

    def read(self, length: int, what: str = "bulk read", timeout_ms: int | None = None) -> bytes:
        device = self._require()
        try:
            return bytes(device.read(self.endpoint_in, length, timeout_ms or self.timeout_ms))
        except (usb.core.USBError, OSError) as exc:
            raise self._failed(device, self.endpoint_in, exc, what) from None
