"""kitd cold start to systemd READY=1, and its resident memory once ready.

Reference: a bare `python -c pass` started the same way, in the same run. Measured
with no devices and with one configured reader that is absent (the kit in a bag).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hil.rig import KitdProcess


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(smoke: bool) -> None:
    repeat = 2 if smoke else 10
    bare = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    reference = statistics.median(bare)
    print(f"   python -c pass (reference): median {reference * 1e3:.0f} ms")
    for label, devices in (("no devices", []), ("one absent reader", [{"uri": "usb:298d:1010"}])):
        starts, memory = [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as workdir:
                kitd = KitdProcess(Path(workdir), devices=devices, settings={"log.level": "warning"})
                started = time.perf_counter()
                kitd.start()
                starts.append(time.perf_counter() - started)
                assert kitd.process is not None
                memory.append(rss_kib(kitd.process.pid))
                kitd.stop()
        median = statistics.median(starts)
        print(
            f"   kitd to READY, {label}: median {median * 1e3:.0f} ms "
            f"({median / reference:.1f}x python start), RSS {statistics.median(memory) / 1024:.1f} MiB"
        )
