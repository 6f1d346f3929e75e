"""kitctl quality iris: the fingerprint command's shape, errors and exit codes, with the circles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np

from hil.rig import venv_script
from hil.synthetic_eye import EyeParams, render

CIRCLE_KEYS = {"pupil_x", "pupil_y", "pupil_r", "iris_x", "iris_y", "iris_r"}


def kitctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_script("kitctl"), *args], capture_output=True, text=True, timeout=60)


def write_eyes(tmp_path: Path) -> dict[str, str]:
    eye, truth = render(EyeParams(seed=11))
    small, _ = render(EyeParams(seed=11, iris_r=80.0, pupil_r=30.0))
    skin, _ = render(EyeParams(seed=11, eye=False))
    files = {
        "eye.png": eye,
        "eye.bmp": eye,
        "eye.tif": eye,
        "colour.jpg": cv2.cvtColor(eye, cv2.COLOR_GRAY2BGR),
        "small.png": small,
        "skin.png": skin,
    }
    paths = {}
    for name, image in files.items():
        assert cv2.imwrite(str(tmp_path / name), image)
        paths[name] = str(tmp_path / name)
    return paths


def test_one_report_per_input_in_order_with_circles(tmp_path: Path) -> None:
    paths = write_eyes(tmp_path)
    result = kitctl("quality", "iris", *paths.values(), "--json")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in reports] == list(paths.values())
    by_name = dict(zip(paths, reports, strict=True))
    for name in ("eye.png", "eye.bmp", "eye.tif", "colour.jpg"):
        report = by_name[name]
        assert set(report) == {"file", "score", "passed", "metrics", "feedback"}
        assert report["passed"] and report["feedback"] == [], name
        assert CIRCLE_KEYS <= set(report["metrics"])
        assert abs(report["metrics"]["pupil_r"] - 45) < 2 and abs(report["metrics"]["iris_r"] - 115) < 3
    assert by_name["small.png"]["feedback"][0] == "move_closer"
    skin = by_name["skin.png"]
    assert skin["feedback"] == ["no_eye"] and not CIRCLE_KEYS & set(skin["metrics"])


def test_unreadable_inputs_are_reported_and_exit_1(tmp_path: Path) -> None:
    paths = write_eyes(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    assert cv2.imwrite(str(tmp_path / "crumb.png"), np.zeros((3, 5), np.uint8))
    inputs = [paths["eye.png"], str(tmp_path / "missing.png"), str(tmp_path / "notes.png"), str(tmp_path)]
    inputs.append(str(tmp_path / "crumb.png"))
    result = kitctl("quality", "iris", *inputs, "--json")
    assert result.returncode == 1
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert reports[0]["passed"]
    assert [r.get("error") for r in reports[1:]] == [
        "no such file",
        "not a readable image (PNG, TIFF, BMP or JPEG)",
        "is a directory",
        "5 x 3 px is too small for an eye image (at least 16 x 16)",
    ]
    assert result.stderr.strip() == "kitctl: 4 of 5 inputs could not be read"


def test_config_thresholds_apply_and_a_wrong_name_is_exit_2(tmp_path: Path) -> None:
    paths = write_eyes(tmp_path)
    strict = tmp_path / "strict.toml"
    strict.write_text("[quality.iris]\nmin_iris_diameter = 300\n")
    result = kitctl("quality", "iris", paths["eye.png"], "--config", str(strict), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["passed"] and report["feedback"][0] == "move_closer"
    typo = tmp_path / "typo.toml"
    typo.write_text("[quality.iris]\nmin_iris_diametre = 300\n")
    result = kitctl("quality", "iris", paths["eye.png"], "--config", str(typo))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "min_iris_diametre" in result.stderr
    assert "Traceback" not in result.stderr


def test_human_lines_and_argument_errors(tmp_path: Path) -> None:
    paths = write_eyes(tmp_path)
    result = kitctl("quality", "iris", paths["eye.png"], paths["skin.png"])
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].endswith("pass; feedback: -") and lines[1].endswith("FAIL; feedback: no_eye")
    assert kitctl("quality", "iris").returncode == 2
    assert kitctl("quality", "iris", paths["eye.png"], "--ppi", "500").returncode == 2
