"""HIL: the fingerprint quality gate through the real daemon and kitctl, on simulated fingers.

For each condition that presents a finger, a raw capture assessed by
`kitctl quality fingerprint` carries the matching feedback code; a light finger
fails the gate (exit 1 naming the failing checks, no file) and `--force` keeps
the best press and says it was forced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.synthetic_finger import CONDITIONS

# The simulated finger's condition -> the feedback code an officer should see.
EXPECTED_CODE = {c: c for c in CONDITIONS if c not in ("good", "no_finger")} | {
    "light": "press_harder",
    "wet": "too_wet",
    "dry": "too_dry",
}


@pytest.fixture
def rig(start_simulator, start_kitd):
    sim = start_simulator("hil.nb1010_sim", ["--condition", "good"])
    kitd = start_kitd(
        devices=[{"uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "fingerprint.capture_timeout_s": 2.0},
    )
    kitd.wait_for_status("fingerprint", "ready")
    return sim, kitd


def test_raw_captures_carry_the_matching_feedback(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    files = []
    for condition in ("good", *EXPECTED_CODE):
        sim.control(f"condition {condition} 4")
        out = tmp_path / f"{condition}.png"
        result = kitd.kitctl(
            "capture", "fingerprint", "--daemon", "--raw", "--out", str(out), "--api", kitd.url
        )
        assert result.returncode == 0, result.stderr
        files.append(str(out))
    assessed = kitd.kitctl("quality", "fingerprint", *files, "--ppi", "385", "--json")
    assert assessed.returncode == 0, assessed.stderr
    reports = [json.loads(line) for line in assessed.stdout.splitlines()]
    assert [r["file"] for r in reports] == files
    by_condition = {Path(r["file"]).stem: r for r in reports}
    assert by_condition["good"]["passed"], by_condition["good"]
    for condition, code in EXPECTED_CODE.items():
        assert code in by_condition[condition]["feedback"], (condition, by_condition[condition])
        assert not by_condition[condition]["passed"], (condition, by_condition[condition])


def test_gate_passes_a_good_finger(rig, tmp_path: Path) -> None:
    _, kitd = rig
    reply = kitd.client.request("POST", "/api/v1/devices/fingerprint/capture", {"timeout_s": 5})
    assert reply.status == 200, reply.body
    assert "X-Kit-Forced" not in reply.headers
    assert float(reply.headers["X-Kit-Quality"]) > 0
    assert reply.headers["X-Kit-Feedback"] == ""


def test_light_finger_fails_the_gate_and_force_says_so(rig, tmp_path: Path) -> None:
    sim, kitd = rig
    sim.control("condition light 4")
    out = tmp_path / "light.png"
    result = kitd.kitctl("capture", "fingerprint", "--daemon", "--out", str(out), "--api", kitd.url)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "quality gate" in line and "422" in line
    assert not out.exists()

    reply = kitd.client.request("POST", "/api/v1/devices/fingerprint/capture", {"timeout_s": 2})
    assert reply.status == 422
    body = reply.json()
    assert body["error"] == "quality_gate" and body["failed_checks"] and "press_harder" in body["feedback"]

    forced = kitd.kitctl(
        "capture", "fingerprint", "--daemon", "--force", "--out", str(out), "--api", kitd.url
    )
    assert forced.returncode == 0, forced.stderr
    assert "forced" in forced.stderr and "press_harder" in forced.stderr
    assert out.exists()


def test_direct_capture_gate_and_force(start_simulator, tmp_path: Path) -> None:
    import os
    import subprocess

    from hil.rig import venv_script

    sim = start_simulator("hil.nb1010_sim", ["--condition", "light", "--seed", "4"])
    env = dict(
        os.environ,
        KITD_USB_BACKEND=sim.usbip_uri,
        KITD_LOCK_DIR=str(tmp_path / "locks"),
    )
    out = tmp_path / "direct.png"
    args = [venv_script("kitctl"), "capture", "fingerprint", "--device", "usb:298d:1010", "--out", str(out)]
    refused = subprocess.run([*args, "--timeout", "1"], capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1
    assert "no press passed the quality gate" in refused.stderr and not out.exists()
    forced = subprocess.run(
        [*args, "--timeout", "1", "--force"], capture_output=True, text=True, env=env, timeout=60
    )
    assert forced.returncode == 0 and "forced" in forced.stderr and out.exists()
