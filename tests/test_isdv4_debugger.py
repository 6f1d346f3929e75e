"""The independent check: Debian's isdv4-serial-debugger (xserver-xorg-input-wacom), a reader
of the ISDV4 protocol written by others, against the simulated pad.

It needs TIOCGSERIAL, which a pty lacks; hil/tiocgserial_shim.c, built here and
LD_PRELOADed, answers it. What it prints (the query reply's maxima and firmware, the
touch query, every pen packet) must be what the simulator says it sent, so the
simulator's bytes, against which kitd is tested, are the protocol and not merely
what kitd's own codec expects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hil.rig import REPO

DEBUGGER = shutil.which("isdv4-serial-debugger")
COMPILER = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(
    DEBUGGER is None or COMPILER is None,
    reason="needs isdv4-serial-debugger (Debian xserver-xorg-input-wacom) and a C compiler",
)

PEN_LINE = re.compile(r"^PEN\t\d+:\s*(\d+)/\s*(\d+) \| pressure:\s*(\d+) \|\s*(\d+)/\s*(\d+) \|(.{7}) \|$")


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shim") / "tiocgserial_shim.so"
    subprocess.run(
        [
            COMPILER,
            "-shared",
            "-fPIC",
            "-O2",
            "-o",
            str(out),
            str(REPO / "hil" / "tiocgserial_shim.c"),
            "-ldl",
        ],
        check=True,
        capture_output=True,
    )
    return out


def read_pen_lines(stdout: str) -> list[list]:
    pens = []
    for line in stdout.splitlines():
        match = PEN_LINE.match(line)
        if match:
            x, y, pressure, _tilt_x, _tilt_y, flags = match.groups()
            # flags: "%1s %1s %1s %1s" of proximity p, tip t, side s, eraser e
            pens.append([int(x), int(y), int(pressure), flags[2] == "t", flags[0] == "p"])
    return pens


@pytest.mark.parametrize("touch", [None, "1"])
def test_debian_reader_sees_what_the_simulator_sent(
    start_simulator, tmp_path: Path, shim: Path, touch
) -> None:
    args = ["--link", str(tmp_path / "pad"), "--strokes", "2"] + (
        ["--touch-sensor-id", touch] if touch else []
    )
    sim = start_simulator("hil.isdv4_sim", args)
    env = dict(os.environ, LD_PRELOAD=str(shim))
    reader = subprocess.Popen(
        [DEBUGGER, sim.addresses["serial"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = json.loads(sim.control("status"))
            if status["session"] == 1 and status["script_left"] == 0:
                break
            assert reader.poll() is None, reader.communicate()
            time.sleep(0.1)
        else:
            raise AssertionError(f"the signature was not played within 60 s: {status}")
        sim.control("unplug")  # the reader stops on the read error and flushes what it printed
        stdout, stderr = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert "Error during read" in stderr, stderr
    assert "TABLET: version: 4660" in stdout
    assert "TABLET: x max: 9600 y max 6000" in stdout
    assert "TABLET: pressure max: 1023" in stdout
    if touch:
        assert "TOUCH: x max: 4095 y max 4095" in stdout and "TOUCH: sensor id: 1" in stdout
    else:
        assert "ignoring touch query timeout" in stderr  # a pen-only pad stays silent
    pens = read_pen_lines(stdout)
    went_out = json.loads(sim.control("sent"))["pen"]
    assert len(went_out) > 100
    # Everything the reader printed is what went out, in order, nothing skipped. Its event loop
    # parses one packet per read(), so packets that arrived together wait for later reads; the
    # last of them are still in its 256-byte buffer (at most 28 pen packets of 9 bytes) when
    # the unplug ends it.
    held = len(went_out) - len(pens)
    assert pens == went_out[: len(pens)] and 0 <= held <= 256 // 9, (held, pens[-3:], went_out[-3:])
