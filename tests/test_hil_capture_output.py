"""kitctl capture fingerprint / iris tell the technician what they wrote (issue 17, defect 10b),
and a device held by kitd is refused with the command to use instead, naming its API (10c).

One line on stdout on success, through the daemon and directly: the file, its size in pixels,
the score, and whether the gate passed, was forced or skipped (--raw).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2

from hil.rig import KitdProcess


def the_line(result, out: Path, modality: str) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{modality}: {out}, "), line
    height, width = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape
    assert f"{width} x {height} px" in line
    return line


def refused_with_the_api(kitd: KitdProcess, modality: str, uri: str, out: Path) -> None:
    refused = kitd.kitctl("capture", modality, "--device", uri, "--out", str(out))
    assert refused.returncode == 1 and not out.exists()
    (line,) = refused.stderr.strip().splitlines()
    assert "held by kitd" in line
    assert f"kitctl capture {modality} --daemon --api {kitd.url}" in line, line


def test_fingerprint_says_what_it_wrote(start_simulator, start_kitd, tmp_path: Path) -> None:
    sim = start_simulator("hil.nb1010_sim", ["--condition", "good"])
    kitd = start_kitd(devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri})
    kitd.wait_for_status("fingerprint", "ready")
    kitd.env["KITD_USB_BACKEND"] = sim.usbip_uri

    out = tmp_path / "daemon.png"
    line = the_line(
        kitd.kitctl("capture", "fingerprint", "--daemon", "--api", kitd.url, "--out", str(out)),
        out,
        "fingerprint",
    )
    assert re.search(r", score \d+, passed the quality gate$", line), line

    refused_with_the_api(kitd, "fingerprint", "usb:298d:1010", tmp_path / "refused.png")

    sim.control("condition light 4")
    forced = tmp_path / "forced.png"
    result = kitd.kitctl(
        "capture",
        "fingerprint",
        "--daemon",
        "--api",
        kitd.url,
        "--timeout",
        "1",
        "--force",
        "--out",
        str(forced),
    )
    line = the_line(result, forced, "fingerprint")
    assert re.search(r", score \d+, forced \(did not pass the quality gate\)$", line), line
    assert "forced" in result.stderr  # the warning stays on stderr
    # Why, as the daemon says it (X-Kit-Forced-Because): the checks a light press fails.
    assert re.search(r"\(score [\d.]+; failing: [a-z_, ]+; feedback: ", result.stderr), result.stderr

    assert kitd.stop() == 0
    sim.control("condition good")
    direct = tmp_path / "direct.png"
    result = kitd.kitctl("capture", "fingerprint", "--device", "usb:298d:1010", "--out", str(direct))
    line = the_line(result, direct, "fingerprint")
    assert line == f"fingerprint: {direct}, 256 x 180 px, " + line.split(" px, ", 1)[1]
    assert re.search(r", score \d+, passed the quality gate$", line), line


def test_iris_says_what_it_wrote(start_simulator, start_kitd, tmp_path: Path) -> None:
    sim = start_simulator("hil.eye_sim", [])
    uri = f"camera:{sim.addresses['url']}"
    kitd = start_kitd(devices=[{"id": "iris", "uri": uri}], settings={"iris.capture_timeout_s": 5.0})
    kitd.wait_for_status("iris", "ready")

    out = tmp_path / "daemon.png"
    line = the_line(
        kitd.kitctl("capture", "iris", "--daemon", "--api", kitd.url, "--out", str(out)), out, "iris"
    )
    assert re.search(r", 640 x 480 px, score \d+, passed the quality gate$", line), line
    raw = tmp_path / "raw.png"
    line = the_line(
        kitd.kitctl("capture", "iris", "--daemon", "--api", kitd.url, "--raw", "--out", str(raw)), raw, "iris"
    )
    assert line.endswith(", 640 x 480 px, raw (no quality gate)"), line

    refused_with_the_api(kitd, "iris", uri, tmp_path / "refused.png")

    # The camera named to another kind's command: refused, nothing written under its name.
    other = tmp_path / "other.png"
    commands = (("fingerprint", "fingerprint reader"), ("signature", "--seconds", "1", "signature pad"))
    for *modality, noun in commands:
        wrong = kitd.kitctl("capture", *modality, "--daemon", "iris", "--api", kitd.url, "--out", str(other))
        assert wrong.returncode == 1 and not other.exists(), wrong.stdout
        assert wrong.stderr.strip().splitlines()[-1] == (
            f"kitctl: the daemon's device 'iris' is not a {noun} (its kind: iris_camera)"
        )

    assert kitd.stop() == 0
    direct = tmp_path / "direct.png"
    line = the_line(
        kitd.kitctl("capture", "iris", "--device", uri, "--timeout", "5", "--out", str(direct)),
        direct,
        "iris",
    )
    assert re.search(r", 640 x 480 px, score \d+, passed the quality gate$", line), line
