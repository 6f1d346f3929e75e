"""kit-sim cold start until `/api/v1/status` reports every device ready, and where the time goes.

Reference: kitd alone to systemd READY=1 with no devices (bench/daemon_start.py), measured
in the same run. The headline runs the real `kit-sim --port 0` console script and polls the
API every 10 ms from the moment it is spawned. The breakdown replays kit-sim's own start
(hil.kit_sim.SIMULATORS in order, then kitd) in this process with a timestamp at each
simulator's READY line, kitd's READY=1 and each device's first `ready` in the API; what
kit-sim's total has beyond that is its own interpreter start and imports. With the full
run, each simulator's module import alone is timed too (`python -c "import MODULE"`), and
the rendering the simulated eye's scripted applicant does before its READY line.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hil.kit_sim import SIMULATORS, SimulatedDevice, simulated_kitd
from hil.rig import REPO, KitdProcess, venv_script
from kitd.cli.daemon_client import DaemonClient

POLL_S = 0.01


def all_ready(address: str) -> bool:
    """Whether every device is ready, asked at ``address`` (the daemon's socket: no sign-in)."""
    try:
        counts = DaemonClient(address).checked("GET", "/api/v1/status").json()["devices"]
    except Exception:
        return False
    total = sum(counts.values())
    return total > 0 and counts.get("ready", 0) == total


def kit_sim_cold_start(timeout_s: float = 60.0) -> tuple[float, float]:
    """(seconds to kit-sim's URL line, seconds until every device is ready), from spawning it."""
    with tempfile.TemporaryDirectory(prefix="bench-kit-sim-") as workdir:
        started = time.perf_counter()
        process = subprocess.Popen(
            [venv_script("kit-sim"), "--port", "0", "--workdir", workdir, "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        url: list[str] = []
        url_at: list[float] = []
        seen = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                found = re.search(r"kitd serving on (http://\S+)", line)
                if found and not url:
                    url_at.append(time.perf_counter() - started)
                    url.append(found.group(1))
                    seen.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not seen.wait(timeout_s):
                raise RuntimeError("kit-sim printed no URL")
            deadline = time.perf_counter() + timeout_s
            # kit-sim's kitd keeps its data (and its socket) in WORKDIR/kitd/data.
            while not all_ready(f"unix:{Path(workdir) / 'kitd' / 'data' / 'kitd.sock'}"):
                if time.perf_counter() > deadline:
                    raise RuntimeError("kit-sim's devices not all ready")
                time.sleep(POLL_S)
            ready_at = time.perf_counter() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            process.wait(30)
            reader.join(5)
    return url_at[0], ready_at


def kitd_alone(timeout_s: float = 60.0) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-kitd-") as workdir:
        kitd = KitdProcess(Path(workdir), settings={"log.level": "warning"})
        started = time.perf_counter()
        kitd.start(timeout_s)
        elapsed = time.perf_counter() - started
        kitd.stop()
    return elapsed


def breakdown() -> list[tuple[str, float]]:
    """(phase, seconds) of kit-sim's start, replayed in this process: each simulator to its
    READY line, kitd to READY=1, then each device to its first `ready` in the API."""
    phases: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kit-sim-") as workdir:
        root = Path(workdir)
        started: list[SimulatedDevice] = []
        try:
            for name, start in SIMULATORS.items():
                t0 = time.perf_counter()
                started.append(start(root))
                phases.append((f"simulator {name} to READY", time.perf_counter() - t0))
            t0 = time.perf_counter()
            kitd = _start_kitd(root, started)
            phases.append(("kitd to READY=1", time.perf_counter() - t0))
            try:
                t0 = time.perf_counter()
                waiting = {d["id"] for device in started for d in device.devices}
                while waiting:
                    states = {d["id"]: d["status"] for d in kitd.client.devices()}
                    for device_id in sorted(waiting):
                        if states.get(device_id) == "ready":
                            phases.append((f"  then {device_id} ready in the API", time.perf_counter() - t0))
                            waiting.discard(device_id)
                    time.sleep(POLL_S)
            finally:
                kitd.stop()
        finally:
            for device in started:
                device.simulator.stop()
    return phases


def _start_kitd(root: Path, started: list[SimulatedDevice]) -> KitdProcess:
    """kitd as hil.kit_sim.start_kit starts it, its config made from the simulators."""
    return simulated_kitd(root, started, {"log.level": "warning"}, for_tests=False).start()


def applicant_render() -> tuple[int, float]:
    """(distinct states, seconds) eye_sim --applicant renders before it prints READY."""
    from hil.eye_sim import EyeCamera, EyeParams, applicant_frames

    camera = EyeCamera(EyeParams(), 30.0, 85)
    states = len(dict.fromkeys(applicant_frames(camera.initial, camera.fps)))
    t0 = time.perf_counter()
    camera.start_applicant()
    return states, time.perf_counter() - t0


def import_seconds(module: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=REPO)
    return time.perf_counter() - t0


def run(smoke: bool) -> None:
    repeat = 1 if smoke else 5
    reference = statistics.median(kitd_alone() for _ in range(repeat))
    print(f"   kitd alone to READY, no devices (reference): median {reference:.2f} s")
    cold = [kit_sim_cold_start() for _ in range(repeat)]
    url_s = statistics.median(c[0] for c in cold)
    ready_s = statistics.median(c[1] for c in cold)
    print(
        f"   kit-sim cold start to all devices ready: median {ready_s:.2f} s "
        f"({ready_s / reference:.1f}x kitd alone); its URL line at {url_s:.2f} s"
    )
    phases = breakdown()
    print("   where the time goes (kit-sim's start replayed, one run, in order):")
    for phase, seconds in phases:
        print(f"     {phase:<42} {seconds:5.2f} s")
    sequential = sum(s for p, s in phases if not p.startswith("  "))
    print(
        f"     {'sum of the sequential phases':<42} {sequential:5.2f} s; kit-sim's own start "
        f"and imports about {max(url_s - sequential, 0.0):.2f} s"
    )
    if not smoke:
        modules = ["hil.nb1010_sim", "hil.eye_sim", "hil.isdv4_sim", "kitd.daemon", "hil.kit_sim"]
        print("   importing each module alone (python -c 'import M', one run):")
        for module in modules:
            print(f"     {module:<42} {import_seconds(module):5.2f} s")
        states, seconds = applicant_render()
        print(f"   eye_sim --applicant renders its {states} distinct eyes before READY: {seconds:.2f} s")
