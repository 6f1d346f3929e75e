"""Peripheral firmware upload: a signed image through the kit's SMP driver at 115200 baud, against
the line's own limit.

The image (256 KiB; 16 KiB with --smoke) is made by the real imgtool and uploaded with
kitd.drivers.peripheral.PeripheralController to the SMP peripheral simulator, which paces its pty
at the baud rate as a USB serial line would. The named reference is the line itself: bytes x 10
bits / baud, the time the raw image would take with no framing, no base64, no acknowledgements.
The ratio says what SMP's console framing (base64, CBOR, CRC, one answer per chunk) costs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from hil.rig import SimulatorProcess
from hil.signed_images import sign_image
from kitd.drivers.peripheral import PeripheralController

BAUD = 115_200
FULL_BYTES = 256 * 1024
SMOKE_BYTES = 16 * 1024
# imgtool's header (0x200) and TLV area (hash, key hash, Ed25519 signature: about 150 bytes).
OVERHEAD = 0x200 + 160
SLOT_SIZE = 0x60000


def run(smoke: bool) -> None:
    target = SMOKE_BYTES if smoke else FULL_BYTES
    workdir = Path(tempfile.mkdtemp(prefix="kitd-bench-firmware-"))
    try:
        image = sign_image(
            workdir, "ed25519", "2.0.0", target - OVERHEAD, extra_args=("--slot-size", hex(SLOT_SIZE))
        ).read_bytes()
        sim = SimulatorProcess(
            "hil.smp_peripheral_sim",
            [
                *("--link", str(workdir / "ttyACM0"), "--state-dir", str(workdir / "flash")),
                *("--baud", str(BAUD), "--reset-s", "0.3", "--slot-size", str(SLOT_SIZE)),
            ],
            workdir / "sim",
        ).start()
        try:
            driver = PeripheralController(sim.addresses["serial"], BAUD)
            driver.open()
            try:
                started = time.perf_counter()
                driver.upload(image)
                elapsed = time.perf_counter() - started
                landed = next(s for s in driver.image_slots() if not s.active)
            finally:
                driver.close()
        finally:
            sim.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    limit = len(image) * 10 / BAUD
    print(f"   image            {len(image)} bytes, signed (Ed25519), version {landed.version} in slot 1")
    print(f"   upload           {elapsed:.2f} s at {BAUD} baud ({len(image) / elapsed / 1024:.1f} KiB/s)")
    print(f"   line's limit     {limit:.2f} s (bytes x 10 / baud)")
    print(f"   ratio            {elapsed / limit:.2f} x the line's limit")
