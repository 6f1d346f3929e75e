"""Advisory claims on devices, so that kitctl does not fight a running daemon for one.

A claim is an flock on a file named after the device's URI and USB backend in the
lock directory (`KITD_LOCK_DIR`, else /run/kitd, else the temp dir). The file
says who holds it, so the loser can tell the technician in one line.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from pathlib import Path

from kitd.config import KitConfig
from kitd.drivers.usb_link import USB_BACKEND_ENV

LOCK_DIR_ENV = "KITD_LOCK_DIR"
# The daemon's runtime directory (dist/kitd.service: RuntimeDirectory=kitd).
RUN_LOCK_DIR = Path("/run/kitd")


def lock_dir() -> Path:
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured)
    run = RUN_LOCK_DIR
    try:
        run.mkdir(parents=True, exist_ok=True)
        if os.access(run, os.W_OK):
            return run
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"kitd-locks-{os.getuid()}"


def claim_scope(uri: str, config: KitConfig) -> str:
    """What names a device besides its URI: for usb: URIs the USB backend (two simulators
    can both be usb:298d:1010), nothing for a path such as a serial port or a camera."""
    if not uri.startswith("usb:"):
        return ""
    return config["usb_backend"] or os.environ.get(USB_BACKEND_ENV, "")


def _claim_path(uri: str, backend: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{backend or 'local'}__{uri}")
    return lock_dir() / f"{name}.lock"


class ClaimHeld(Exception):
    """Another process holds the device; `holder` is what it wrote about itself."""

    def __init__(self, holder: dict) -> None:
        super().__init__(holder)
        self.holder = holder


class DeviceClaim:
    """An exclusive claim on one device for the life of this object."""

    def __init__(self, uri: str, backend: str, holder: dict) -> None:
        self.path = _claim_path(uri, backend)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                held = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                held = {}
            os.close(fd)
            raise ClaimHeld(held) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), **holder}).encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def describe_holder(holder: dict) -> str:
    who = holder.get("program", "another program")
    pid = holder.get("pid")
    api = holder.get("api")
    parts = [f"pid {pid}" if pid else None, api]
    extra = ", ".join(p for p in parts if p)
    return f"{who} ({extra})" if extra else who
