"""kit-sim: one command gives a working kit with no hardware, and Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import cv2

from hil.mjpeg_viewer import decode_code, read_parts
from hil.rig import venv_script
from kitd.cli.daemon_client import DaemonClient


def test_kit_sim_serves_a_ready_reader_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [venv_script("kit-sim"), "--port", "0", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "".join(lines)
        url = re.search(r"kitd serving on (http://\S+)", "".join(lines)).group(1)
        assert re.search(r"nb1010_sim: usbip=127\.0\.0\.1:\d+ +control=127\.0\.0\.1:\d+", "".join(lines))
        client = DaemonClient(url)
        devices = {d["id"]: d for d in client.devices()}
        assert devices["fingerprint"]["status"] == "ready"
        out = tmp_path / "finger.png"
        result = subprocess.run(
            [
                venv_script("kitctl"),
                "capture",
                "fingerprint",
                "--daemon",
                "--raw",
                "--api",
                url,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (180, 256)
        # The iris camera is the simulated eye, and the preview shows it.
        assert devices["iris_camera"]["status"] == "ready"
        assert re.search(r"eye_sim: http=127\.0\.0\.1:\d+ +control=127\.0\.0\.1:\d+", "".join(lines))
        _, part = next(read_parts(url + "/api/v1/stream/iris.mjpg"))
        assert part.seq is not None and decode_code(part.body) is not None
        pids = [int(p) for p in re.findall(r"pid (\d+)", "".join(lines))]
        assert len(pids) >= 2  # kitd and the reader's simulator
    finally:
        os.killpg(process.pid, signal.SIGINT) if process.poll() is None else None
        process.wait(30)
        reader.join(5)
    assert process.returncode == 0, "".join(lines)
    assert "kit-sim: stopped" in "".join(lines)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


def test_kit_sim_leaves_no_temporary_directory_behind(tmp_path: Path) -> None:
    """Issue 17, defect 10d: without --workdir, kit-sim's /tmp/kit-sim-* went on piling up."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [venv_script("kit-sim"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=dict(os.environ, TMPDIR=str(tmp)),
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "".join(lines)
        (workdir,) = tmp.glob("kit-sim-*")
        assert f"config {workdir}" in "".join(lines)
    finally:
        os.killpg(process.pid, signal.SIGINT) if process.poll() is None else None
        process.wait(30)
        reader.join(5)
    assert process.returncode == 0, "".join(lines)
    assert list(tmp.iterdir()) == [], "".join(lines)
