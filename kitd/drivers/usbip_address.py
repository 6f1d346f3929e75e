"""USB/IP server addresses: the one parser of "HOST:PORT" and of the `usbip://HOST:PORT`
setting that names one (config key `usb_backend`)."""

from __future__ import annotations

USBIP_SCHEME = "usbip://"


def parse_address(address: str) -> tuple[str, int]:
    """("HOST", PORT) from "HOST:PORT" (an IPv6 host in brackets: "[::1]:3240"); ValueError
    saying HOST:PORT when it is not one, the port included (1-65535)."""
    host, sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"USB/IP address '{address}': expected HOST:PORT")
    return host, int(port)


def parse_backend_setting(setting: str) -> tuple[str, int] | None:
    """The USB/IP server a `usb_backend` setting names, None for the system's libusb (empty);
    ValueError saying what is expected otherwise."""
    if not setting:
        return None
    if not setting.startswith(USBIP_SCHEME):
        raise ValueError(f"'{setting}': unknown backend (expected usbip://HOST:PORT)")
    try:
        return parse_address(setting.removeprefix(USBIP_SCHEME).rstrip("/"))
    except ValueError:
        raise ValueError(f"'{setting}': expected usbip://HOST:PORT with a port 1-65535") from None
