"""HIL: signatures recorded through the real driver from the simulated pad, judged by kitctl quality.

The recording carries the host's arrival stamps (packets read together share one), not
the pad's even 130 Hz: the verdict and the time-based metrics must not depend on that.
Each recording is compared with the same packets stamped as the simulator sent them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hil.hand_drawn import recording
from hil.rig import venv_script
from kitd.capture.signature import PadInfo
from kitd.capture.signature_quality import assess_signature
from kitd.drivers.isdv4 import PenPacket


def kitctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_script("kitctl"), *args], capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize(("style", "seed"), [("steady", 21), ("shaky", 22), ("halting", 23)])
def test_recorded_signature_passes_as_sent(start_simulator, tmp_path: Path, style: str, seed: int) -> None:
    sim = start_simulator("hil.isdv4_sim", ["--link", str(tmp_path / "pad"), "--lead-in", "0.1"])
    sim.control(f"signature {seed} {style}")  # raises on `err`
    out = tmp_path / f"{style}.json"
    uri = f"serial:{sim.addresses['serial']}"
    captured = kitctl("capture", "signature", "--device", uri, "--seconds", "30", "--out", str(out))
    assert captured.returncode == 0, captured.stderr

    result = kitctl("quality", "signature", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"], report

    doc = json.loads(out.read_text())
    pad = PadInfo(**doc["device"])
    pen = json.loads(sim.control("sent"))["pen"]
    as_sent = assess_signature(
        recording(pad, [PenPacket(x, y, p, tip=t, proximity=r) for x, y, p, t, r in pen])
    )
    got, sent = report["metrics"], as_sent.metrics
    print(f"\n{style}: recorded {report['score']} {got}\n as sent {as_sent.score} {sent}")
    assert abs(report["score"] - as_sent.score) <= 1.0
    for key in ("point_count", "stroke_count", "path_length_mm", "ink_size_mm", "pressure_range"):
        assert got[key] == pytest.approx(sent[key], abs=1e-3), key
    for key in ("pen_down_s", "speed_mean_mm_s", "speed_median_mm_s"):
        assert got[key] == pytest.approx(sent[key], rel=0.1), key
