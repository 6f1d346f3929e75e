"""The NB-1010 driver on the recording of a real sensor, replayed by umockdev-run.

The replay answers the driver's bytes with the real device's bytes, so these
tests prove the commands and the decoding; the order is the codec tests' job.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.rig import umockdev_prefix, venv_script

pytestmark = pytest.mark.skipif(shutil.which("umockdev-run") is None, reason="umockdev-run not installed")


def recorded_frame(fixture: Path) -> np.ndarray:
    image = cv2.imread(str(fixture / "capture.png"), cv2.IMREAD_UNCHANGED)
    assert image.ndim == 3 and (image[..., 0] == image[..., 2]).all()
    return image[..., 0]


def read_grey_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.ndim == 2
    return image


def test_kitctl_device_writes_the_real_frame(nb1010_fixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.jpg"  # the name does not change the format
    result = subprocess.run(
        [
            *umockdev_prefix(nb1010_fixture),
            venv_script("kitctl"),
            "capture",
            "fingerprint",
            "--device",
            "usb:298d:1010",
            "--out",
            str(out),
            "--raw",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"KITD_LOCK_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    frame = read_grey_png(out)
    assert frame.shape == (180, 256)
    assert np.array_equal(frame, recorded_frame(nb1010_fixture))


def test_kitd_under_replay_serves_the_real_frame(nb1010_fixture: Path, start_kitd, tmp_path: Path) -> None:
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], prefix=umockdev_prefix(nb1010_fixture))
    device = kitd.wait_for_status("fingerprint", "ready")
    assert device["model"] == "NEXT Biometrics NB-1010-U"
    assert device["serial"] is None  # the recorded sensor has no string descriptors
    assert device["firmware"] == "0.01"
    assert device["detail"]["width"] == 256 and device["detail"]["height"] == 180

    out = tmp_path / "daemon.png"
    result = kitd.kitctl("capture", "fingerprint", "--daemon", "--out", str(out), "--raw", "--api", kitd.url)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_grey_png(out), recorded_frame(nb1010_fixture))

    listed = kitd.kitctl(
        "devices", "--json", "--config", str(kitd.config_path), prefix=umockdev_prefix(nb1010_fixture)
    )
    assert listed.returncode == 0, listed.stderr
    assert '"held_by": "kitd"' in listed.stdout and '"status": "ready"' in listed.stdout

    # The daemon holds the reader: a direct capture says so instead of fighting for it.
    direct = kitd.kitctl(
        "capture",
        "fingerprint",
        "--device",
        "usb:298d:1010",
        "--out",
        str(tmp_path / "x.png"),
        prefix=umockdev_prefix(nb1010_fixture),
    )
    assert direct.returncode == 1
    (line,) = direct.stderr.strip().splitlines()
    assert "held by kitd" in line and kitd.url in line
    assert not (tmp_path / "x.png").exists()
