"""HIL: 20 consecutive raw captures through the real daemon, cycling the simulated finger's
condition, each PNG showing the condition asked for.

Each capture is compared with the same finger captured `good` (same seed), by the
assessor's measurements: ridge contrast, ridge continuity (orientation certainty),
foreground area and position, darkness and noise.
"""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import cv2
import numpy as np

from hil.synthetic_finger import CONDITIONS, render_finger
from kitd.capture.fingerprint_quality import assess_fingerprint

PPI = 385.0


def measure(path: Path) -> dict[str, float]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (180, 256) and image.dtype == np.uint8
    return assess_fingerprint(image, PPI).metrics


def shows(condition: str, got: dict[str, float], good: dict[str, float]) -> bool:
    """Whether a capture's measurements show `condition`, against the same finger pressed well."""
    area, contrast = got["foreground_area_mm2"], got["ridge_contrast"]
    certainty = got["orientation_certainty"]
    checks = {
        "good": area > 60 and certainty > 0.5,
        "light": contrast < 0.7 * good["ridge_contrast"],
        "wet": got["mean_grey"] < good["mean_grey"] - 15,
        "dry": contrast < 0.8 * good["ridge_contrast"] or certainty < good["orientation_certainty"] - 0.1,
        "partial": area < 0.65 * good["foreground_area_mm2"],
        "off_center": got["centroid_offset"] > good["centroid_offset"] + 0.1,
        "smudged": certainty < good["orientation_certainty"] - 0.1,
        "dirty_sensor": got["noise"] > 1.5 * good["noise"],
        "no_finger": area < 10,
    }
    return checks[condition]


def test_twenty_captures_cycling_conditions(start_simulator, start_kitd, tmp_path: Path) -> None:
    sim = start_simulator("hil.nb1010_sim")
    kitd = start_kitd(
        devices=[{"uri": "usb:298d:1010"}], settings={"usb_backend": sim.usbip_uri}
    )
    kitd.wait_for_status("fingerprint", "ready")
    plan = [(c, seed) for seed in (1, 2, 3) for c in CONDITIONS][:20]
    good: dict[int, dict[str, float]] = {}
    for index, (condition, seed) in zip(range(20), cycle(plan), strict=False):
        sim.control(f"condition {condition} {seed}")
        out = tmp_path / f"{index:02d}_{condition}_{seed}.png"
        result = kitd.kitctl(
            "capture", "fingerprint", "--daemon", "--raw", "--out", str(out), "--api", kitd.url
        )
        assert result.returncode == 0, result.stderr
        captured = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        # Exactly the finger the simulator was told to present...
        assert np.array_equal(captured, render_finger(seed, condition, width=256, height=180, ppi=PPI))
        # ...and it looks like the condition asked for.
        got = measure(out)
        if condition == "good":
            good[seed] = got
        assert shows(condition, got, good[seed]), (condition, seed, got, good[seed])
