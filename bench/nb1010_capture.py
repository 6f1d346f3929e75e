"""NB-1010 capture under the umockdev replay of the real sensor: driver vs raw reads.

Reference: the same USB transfers done with bare pyusb, bytes kept, nothing
parsed. The driver's figure adds reply checking, packet validation and frame
assembly; the ratio is the cost of decoding. Also the pure decode time of the
90 packets in memory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from hil.rig import NB1010_FIXTURE, umockdev_prefix

CHILD = r"""
import json, sys, time
import usb.core
from kitd.drivers import nb1010
from kitd.capture.fingerprint import capture_raw_fingerprint

repeat = int(sys.argv[1])
reader = nb1010.NB1010Reader.over_usb(serial=None, backend=None, ppi=385)
reader.open()
device = reader.link._device

def raw_capture():
    packets = []
    for command in (nb1010.CHECK_FINGER_COMMAND, nb1010.PRE_CAPTURE_COMMAND, nb1010.CAPTURE_COMMAND):
        device.write(nb1010.ENDPOINT_OUT, command, 500)
        packets.append(bytes(device.read(nb1010.ENDPOINT_IN, 16, 500)))
    for _ in range(nb1010.PACKET_COUNT):
        packets.append(bytes(device.read(nb1010.ENDPOINT_IN, nb1010.PACKET_LENGTH, 500)))
    return packets

def timed(fn):
    out = []
    for _ in range(repeat):
        t = time.perf_counter(); result = fn(); out.append(time.perf_counter() - t)
    return out, result

raw_times, packets = timed(raw_capture)
driver_times, frame = timed(lambda: capture_raw_fingerprint(reader, 5, 0))
decode_times, _ = timed(lambda: nb1010.assemble_frame(packets[3:]))
reader.close()
figures = {"raw": raw_times, "driver": driver_times, "decode": decode_times}
print(json.dumps({**figures, "shape": list(frame.shape)}))
"""


def replay_figures(repeat: int) -> dict[str, list[float]] | None:
    """Seconds per raw capture, driver capture and decode under the replay; None when unavailable."""
    if shutil.which("umockdev-run") is None or not (NB1010_FIXTURE / "capture.ioctl").exists():
        print("   skipped: needs umockdev-run and ../shared/fixtures/nb1010")
        return None
    result = subprocess.run(
        [*umockdev_prefix(), sys.executable, "-c", CHILD, str(repeat)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        print(f"   replay failed: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(result.stdout)


def run(smoke: bool) -> None:
    from bench.stats import summary_ms

    figures = replay_figures(5 if smoke else 50)
    if figures is None:
        return
    median = {k: sorted(v)[len(v) // 2] for k, v in figures.items() if k != "shape"}
    print(f"   raw pyusb transfers (reference): {summary_ms(figures['raw'])}")
    print(f"   driver capture (poll+capture+decode): {summary_ms(figures['driver'])}")
    print(f"   decode only (90 packets -> 256x180): {summary_ms(figures['decode'])}")
    print(
        f"   ratio driver/raw: {median['driver'] / median['raw']:.2f}x; "
        f"decode share of a capture: {median['decode'] / median['driver'] * 100:.1f}%"
    )
