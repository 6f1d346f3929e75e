"""kit-sim: one command gives a working kit with no hardware, and Ctrl-C stops all of it."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import cv2

from hil.mjpeg_viewer import decode_code, read_parts
from hil.rig import venv_script
from kitd.cli.daemon_client import DaemonClient


class KitSim:
    """kit-sim started as a technician would, its output collected line by line on a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [venv_script("kit-sim"), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=env,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "Ctrl-C" in line:
                self.started.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def interrupt(self) -> int:
        """Ctrl-C, as the technician would; the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(30)
        self.reader.join(5)
        return self.process.returncode


def test_kit_sim_serves_a_ready_reader_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    kit = KitSim(["--workdir", str(tmp_path)])
    try:
        assert kit.started.wait(60), kit.output
        url = re.search(r"kitd serving on (http://\S+)", kit.output).group(1)
        assert re.search(r"nb1010_sim: usbip=127\.0\.0\.1:\d+ +control=127\.0\.0\.1:\d+", kit.output)
        # The simulation's technician, as printed, signs in; so does kitctl with the token.
        nip, pin = re.search(r"technician +NIP (\d{18}) +PIN (\d{6})", kit.output).groups()
        signed_in = DaemonClient(url).checked("POST", "/api/v1/auth/signin", {"nip": nip, "pin": pin})
        token = signed_in.json()["token"]
        assert "for this simulation only" in kit.output
        client = DaemonClient(url, token)
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
                "--token",
                token,
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
        assert re.search(r"eye_sim: http=127\.0\.0\.1:\d+ +control=127\.0\.0\.1:\d+", kit.output)
        # The block code in the frame's corner names the simulator's frame; the overlay's
        # message to the officer covers that corner while the scripted applicant needs one.
        codes = []
        for _, part in itertools.islice(read_parts(url + "/api/v1/stream/iris.mjpg", token=token), 300):
            assert part.seq is not None
            codes.append(decode_code(part.body))
            if codes[-1] is not None:
                break
        assert codes[-1] is not None, f"no frame code read in {len(codes)} preview frames"
        pids = [int(p) for p in re.findall(r"pid (\d+)", kit.output)]
        assert len(pids) >= 2  # kitd and the reader's simulator
    finally:
        status = kit.interrupt()
    assert status == 0, kit.output
    assert "kit-sim: stopped" in kit.output
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


def test_kit_sim_leaves_no_temporary_directory_behind() -> None:
    """Issue 17, defect 10d: without --workdir, kit-sim's /tmp/kit-sim-* went on piling up."""
    # A short temporary folder of its own: kitd's socket (data_dir/kitd.sock) must fit in a Unix
    # socket's 108 bytes, and a pytest-xdist worker's tmp_path is longer.
    tmp = Path(tempfile.mkdtemp(prefix="ks-"))
    kit = KitSim(["--network"], env=dict(os.environ, TMPDIR=str(tmp)))
    try:
        assert kit.started.wait(60), kit.output
        (workdir,) = tmp.glob("kit-sim-*")
        assert f"config {workdir}" in kit.output
        # --network: the network API for field laptops listens where it says (TLS: a bare
        # connection is enough to show it is there; its tests are the laptop link's).
        port = int(
            re.search(r"network API for paired laptops on https://127\.0\.0\.1:(\d+)", kit.output).group(1)
        )
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    finally:
        status = kit.interrupt()
    assert status == 0, kit.output
    left = list(tmp.iterdir())
    shutil.rmtree(tmp)
    assert left == [], kit.output


def test_kit_sim_refuses_a_port_or_workdir_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    """Before any simulator starts: a port out of range (kitd's own refusal was cut to its first
    line, "kitd exited with 2:", with the reason lost), a file for --workdir (a traceback)."""
    afile = tmp_path / "kit.toml"
    afile.write_text("")
    for args, says in (
        (("--port", "99999"), "argument --port: 99999 is not a port (0-65535; 0: any free port)"),
        (("--workdir", str(afile)), f"kit-sim: --workdir {afile}: not a folder"),
        (("--workdir", str(afile / "sub")), f"kit-sim: --workdir {afile / 'sub'}: Not a directory"),
    ):
        done = subprocess.run([venv_script("kit-sim"), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert says in done.stderr.strip().splitlines()[-1], done.stderr
