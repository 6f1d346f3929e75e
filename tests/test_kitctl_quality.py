"""kitctl quality fingerprint: one JSON report per input, in order; unreadable inputs reported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from hil.rig import FIXTURES, venv_script
from hil.synthetic_finger import render_finger
from kitd.capture.fingerprint_quality import assess_fingerprint
from kitd.grey_image import to_grey8


def kitctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_script("kitctl"), *args], capture_output=True, text=True, timeout=60)


def write_fingers(tmp_path: Path) -> list[str]:
    good = render_finger(3, "good", width=300, height=300, ppi=500)
    light = render_finger(3, "light", width=300, height=300, ppi=500)
    paths = []
    for name, image in [
        ("good.png", good),
        ("good.tif", good),
        ("good.bmp", good),
        ("colour.jpg", cv2.cvtColor(good, cv2.COLOR_GRAY2BGR)),
        ("light.png", light),
    ]:
        assert cv2.imwrite(str(tmp_path / name), image)
        paths.append(str(tmp_path / name))
    return paths


def test_reports_in_input_order_with_the_documented_shape(tmp_path: Path) -> None:
    paths = write_fingers(tmp_path)
    result = kitctl("quality", "fingerprint", *paths, "--ppi", "500", "--json")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in reports] == paths
    for report in reports:
        assert list(report) == ["file", "score", "passed", "metrics", "feedback", "ppi"]
        assert report["ppi"] == 500
        assert 0 <= report["score"] <= 100
        assert all(isinstance(v, int | float) for v in report["metrics"].values())
    png, tif, bmp, jpg, light = reports
    assert png["score"] == tif["score"] == bmp["score"]  # lossless formats read the same pixels
    assert png["passed"] and jpg["passed"]
    assert not light["passed"] and light["feedback"][0] == "press_harder"


def test_unreadable_inputs_are_reported_and_the_rest_assessed(tmp_path: Path) -> None:
    good = write_fingers(tmp_path)[0]
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    missing = tmp_path / "missing.png"
    result = kitctl("quality", "fingerprint", str(missing), good, str(text), "--json")
    assert result.returncode == 1
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert reports[0] == {"file": str(missing), "error": "no such file"}
    assert reports[1]["passed"] is True
    assert reports[2]["file"] == str(text) and "not a readable image" in reports[2]["error"]
    assert "2 of 3 inputs could not be read" in result.stderr


def test_failing_gate_is_not_an_error_and_config_thresholds_apply(tmp_path: Path) -> None:
    good = write_fingers(tmp_path)[0]
    strict = tmp_path / "strict.toml"
    strict.write_text("[quality.fingerprint]\nmin_score = 99.5\n")
    result = kitctl("quality", "fingerprint", good, "--json", "--config", str(strict))
    assert result.returncode == 0
    assert json.loads(result.stdout)["passed"] is False


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    good = write_fingers(tmp_path)[0]
    typo = tmp_path / "typo.toml"
    typo.write_text("[quality.fingerprint]\nmin_scor = 50\n")
    for args in (
        ["quality", "fingerprint", "--json"],
        ["quality", "fingerprint", good, "--ppi", "abc"],
        ["quality", "fingerprint", good, "--ppi", "5"],
        ["quality", "fingerprint", good, "--config", str(typo)],
        ["quality", "fingerprint", good, "--config", str(tmp_path / "none.toml")],
    ):
        result = kitctl(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert (
        "quality.fingerprint.min_scor" in kitctl("quality", "fingerprint", good, "--config", str(typo)).stderr
    )


def test_real_nb1010_frame_at_its_resolution(nb1010_fixture: Path) -> None:
    result = kitctl("quality", "fingerprint", str(nb1010_fixture / "capture.png"), "--ppi", "385", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["score"] > 0 and np.isfinite(report["score"])


def test_the_resolution_comes_from_the_config_as_in_the_daemon(tmp_path: Path) -> None:
    """Issue 17, defect 5: the CLI scored 45 at an assumed 500 ppi where the daemon scored 63.4."""
    path = FIXTURES / "nb1010" / "capture.png"
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/fixtures)")
    image = to_grey8(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    daemon = assess_fingerprint(image, 385)
    config = tmp_path / "kitd.toml"
    config.write_text("[fingerprint]\nppi = 385\n")
    result = kitctl("quality", "fingerprint", str(path), "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ppi"] == 385
    assert report["score"] == pytest.approx(daemon.score)
    assert report["metrics"] == pytest.approx(daemon.to_json()["metrics"])
    human = kitctl("quality", "fingerprint", str(path), "--config", str(config))
    assert "385 ppi" in human.stdout
    # --ppi still overrides the config.
    overridden = json.loads(
        kitctl("quality", "fingerprint", str(path), "--config", str(config), "--ppi", "500", "--json").stdout
    )
    assert overridden["ppi"] == 500
    assert overridden["score"] == pytest.approx(assess_fingerprint(image, 500).score)
