"""Device URIs and the registry that maps a URI to the driver that serves it.

URIs are taken literally (no percent-decoding): `usb:VID:PID[?serial=S]`; later
families add `serial:`, `camera:` and `smp:` (the peripheral controller). Nothing here knows
about simulators: the same URI reaches a real sensor, a replayed trace or a USB/IP simulator, depending
only on the configured USB backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kitd.drivers.base import Driver
from kitd.drivers.isdv4 import ISDV4Pad
from kitd.drivers.nb1010 import NB1010Reader
from kitd.drivers.peripheral import DEFAULT_BAUD as PERIPHERAL_BAUD
from kitd.drivers.peripheral import PeripheralController
from kitd.drivers.usb_link import resolve_backend
from kitd.drivers.uvc_camera import make_camera, parse_camera_target
from kitd.errors import ConfigError

# USB devices the kit has a driver for: (vendor, product) -> kind.
USB_DRIVERS: dict[tuple[int, int], str] = {(0x298D, 0x1010): "fingerprint"}
# Line rates a serial device may be given (URI ?baud= or signature.baud).
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class DriverSettings:
    """What building a driver needs besides its URI: values, taken from the configuration by
    its owner (kitd.config.KitConfig.driver_settings); the defaults are the config's."""

    usb_backend: str = ""
    fingerprint_ppi: float = 385.0
    camera_size: tuple[int, int] = (640, 480)
    camera_fps: float = 30.0
    camera_open_timeout_s: float = 2.0
    camera_read_timeout_s: float = 1.0
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 1.0
    signature_baud: int = 38400


@dataclass(frozen=True)
class DeviceUri:
    """A parsed device URI: scheme, the target (after the scheme) and its parameters."""

    text: str
    scheme: str
    target: str
    params: dict[str, str] = field(default_factory=dict)


def parse_uri(uri: str) -> DeviceUri:
    scheme, sep, rest = uri.partition(":")
    if not sep or not scheme:
        raise ConfigError(f"device URI '{uri}': expected SCHEME:TARGET, e.g. usb:298d:1010")
    if scheme not in FAMILIES:
        raise ConfigError(f"device URI '{uri}': unknown scheme '{scheme}' (known: {', '.join(FAMILIES)})")
    target, _, query = rest.partition("?")
    params: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"device URI '{uri}': parameter '{item}' is not KEY=VALUE")
        params[key] = value
    return DeviceUri(text=uri, scheme=scheme, target=target, params=params)


def check_params(uri: DeviceUri, allowed: set[str]) -> None:
    unknown = set(uri.params) - allowed
    if unknown:
        raise ConfigError(f"device URI '{uri.text}': unknown parameter '{sorted(unknown)[0]}'")


def usb_kind(uri: DeviceUri) -> str:
    parts = uri.target.split(":")
    try:
        if len(parts) != 2 or not all(len(p) == 4 for p in parts):
            raise ValueError
        vendor, product = (int(p, 16) for p in parts)
    except ValueError:
        raise ConfigError(f"device URI '{uri.text}': expected usb:VVVV:PPPP (hex ids)") from None
    check_params(uri, {"serial"})
    kind = USB_DRIVERS.get((vendor, product))
    if kind is None:
        raise ConfigError(f"device URI '{uri.text}': no driver for USB device {vendor:04x}:{product:04x}")
    return kind


def make_usb_driver(uri: DeviceUri, settings: DriverSettings) -> Driver:
    return NB1010Reader.over_usb(
        serial=uri.params.get("serial"),
        backend=resolve_backend(settings.usb_backend),
        ppi=settings.fingerprint_ppi,
    )


def camera_kind(uri: DeviceUri) -> str:
    parse_camera_target(uri.text, uri.target, uri.params)
    return "iris_camera"


def make_camera_driver(uri: DeviceUri, settings: DriverSettings) -> Driver:
    return make_camera(
        parse_camera_target(uri.text, uri.target, uri.params),
        size=settings.camera_size,
        fps=settings.camera_fps,
        open_timeout_s=settings.camera_open_timeout_s,
        read_timeout_s=settings.camera_read_timeout_s,
        reconnect_min_s=settings.reconnect_min_s,
        reconnect_max_s=settings.reconnect_max_s,
    )


def serial_baud(uri: DeviceUri, default: int) -> int:
    """The line rate a serial URI names (`?baud=`), else `default`."""
    text = uri.params.get("baud")
    if text is None:
        return default
    if not text.isdigit() or int(text) not in BAUD_RATES:
        rates = ", ".join(map(str, BAUD_RATES))
        raise ConfigError(f"device URI '{uri.text}': baud '{text}' is not one of {rates}")
    return int(text)


def serial_kind(uri: DeviceUri) -> str:
    # The kit's one serial device is the signature pad (Wacom ISDV4).
    if not uri.target.startswith("/"):
        raise ConfigError(f"device URI '{uri.text}': expected serial:/dev/PATH[?baud=38400]")
    check_params(uri, {"baud"})
    serial_baud(uri, 0)
    return "signature"


def make_serial_driver(uri: DeviceUri, settings: DriverSettings) -> Driver:
    return ISDV4Pad.over_serial(uri.target, serial_baud(uri, settings.signature_baud))


def smp_kind(uri: DeviceUri) -> str:
    # The kit's peripheral controller: MCUmgr SMP on a USB serial port (CDC-ACM).
    if not uri.target.startswith("/"):
        raise ConfigError(f"device URI '{uri.text}': expected smp:/dev/PATH[?baud=115200]")
    check_params(uri, {"baud"})
    serial_baud(uri, 0)
    return "peripheral"


def make_smp_driver(uri: DeviceUri, settings: DriverSettings) -> Driver:
    return PeripheralController.over_serial(uri.target, serial_baud(uri, PERIPHERAL_BAUD))


@dataclass(frozen=True)
class DriverFamily:
    """A URI scheme: how to tell the kind of device it names, and how to build its driver."""

    kind_of: Callable[[DeviceUri], str]
    make: Callable[[DeviceUri, DriverSettings], Driver]


# One entry per URI scheme; a new device family adds its own.
FAMILIES: dict[str, DriverFamily] = {
    "usb": DriverFamily(kind_of=usb_kind, make=make_usb_driver),
    "camera": DriverFamily(kind_of=camera_kind, make=make_camera_driver),
    "serial": DriverFamily(kind_of=serial_kind, make=make_serial_driver),
    "smp": DriverFamily(kind_of=smp_kind, make=make_smp_driver),
}


def device_kind(uri: str) -> str:
    """The kind of device a URI names, or ConfigError naming the URI."""
    parsed = parse_uri(uri)
    return FAMILIES[parsed.scheme].kind_of(parsed)


def make_driver(uri: str, settings: DriverSettings) -> Driver:
    """A driver (not yet opened) for `uri`, built with `settings`."""
    parsed = parse_uri(uri)
    family = FAMILIES[parsed.scheme]
    family.kind_of(parsed)
    return family.make(parsed, settings)
