"""kitctl quality signature: one JSON report per recording, in order; unreadable inputs say what is wrong."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hil.rig import venv_script

DATA = Path(__file__).parent / "data" / "signatures"
NAME = str(DATA / "name_budi.json")
CROSS = str(DATA / "cross.json")


def kitctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_script("kitctl"), *args], capture_output=True, text=True, timeout=60)


def recording() -> dict[str, Any]:
    return json.loads(Path(NAME).read_text())


def test_reports_in_input_order_with_the_documented_shape() -> None:
    paths = [str(p) for p in sorted(DATA.glob("*.json"))]
    result = kitctl("quality", "signature", *paths, "--json")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in reports] == paths
    for report in reports:
        assert list(report) == ["file", "score", "passed", "metrics", "feedback"]
        assert 0 <= report["score"] <= 100
        assert all(isinstance(v, float) for v in report["metrics"].values())
    by_name = {Path(r["file"]).stem: r for r in reports}
    assert by_name["name_budi"]["passed"] and by_name["elderly_siti_shaky"]["passed"]
    assert not by_name["cross"]["passed"] and by_name["cross"]["feedback"][0] == "dot_or_line"


def test_without_json_one_line_each() -> None:
    result = kitctl("quality", "signature", NAME, CROSS)
    assert result.returncode == 0
    name, cross = result.stdout.splitlines()
    assert name.startswith(f"{NAME}: score ") and "pass; feedback: -" in name
    assert "FAIL; feedback: dot_or_line" in cross


def _broken(doc: dict[str, Any], change: str) -> Any:
    """A copy of a good recording broken in one way."""
    bad = json.loads(json.dumps(doc))
    if change == "list":
        return [bad]
    if change == "no device":
        del bad["device"]
    elif change == "points_per_mm zero":
        bad["device"]["points_per_mm"] = 0
    elif change == "max_x a string":
        bad["device"]["max_x"] = "9600"
    elif change == "points an object":
        bad["points"] = {"0": bad["points"][0]}
    elif change == "no tip":
        del bad["points"][5]["tip"]
    elif change == "x a float":
        bad["points"][5]["x"] = 1234.5
    elif change == "x beyond the pad":
        bad["points"][5]["x"] = 9601
    elif change == "tip a number":
        bad["points"][5]["tip"] = 1
    elif change == "time backwards":
        bad["points"][5]["t_ms"] = bad["points"][4]["t_ms"] - 1.0
    elif change == "strokes wrong":
        bad["strokes"] += 1
    elif change == "points_per_mm past a float":
        bad["device"]["points_per_mm"] = 10**400
    elif change == "time past the longest recording":
        bad["points"][5]["t_ms"] = 1e300
    elif change == "time before the first packet":
        bad["points"][0]["t_ms"] = -5.0
    return bad


BROKEN = {
    "list": "not a signature recording: the JSON is an array, not an object",
    "no device": "not a signature recording: no 'device'",
    "points_per_mm zero": "not a signature recording: device.points_per_mm must be above 0, not 0",
    "max_x a string": "not a signature recording: device.max_x is not an integer: '9600'",
    "points an object": "not a signature recording: 'points' is an object, not an array",
    "no tip": "not a signature recording: points[5].tip is missing",
    "x a float": "not a signature recording: points[5].x is not an integer: 1234.5",
    "x beyond the pad": "not a signature recording: points[5].x 9601 is outside 0..device.max_x 9600",
    "tip a number": "not a signature recording: points[5].tip is not true/false: 1",
    "time backwards": "not a signature recording: points[5].t_ms",
    "strokes wrong": "not a signature recording: 'strokes' is 6 but the points hold 5",
    "points_per_mm past a float": (
        "not a signature recording: device.points_per_mm must be 1000 or less, "
        "not 100000000000000000000000000000... (401 characters)"
    ),
    "time past the longest recording": (
        "not a signature recording: points[5].t_ms must be 305000 or less, not 1e+300"
    ),
    "time before the first packet": "not a signature recording: points[0].t_ms must be 0 or more, not -5.0",
}


def test_unreadable_inputs_are_reported_and_the_rest_assessed(tmp_path: Path) -> None:
    good = recording()
    files: list[str] = [str(tmp_path / "missing.json"), str(tmp_path)]
    expected: list[str] = ["no such file", "is a directory"]
    (tmp_path / "notes.json").write_text("signed by Budi\n")
    (tmp_path / "cut.json").write_text(json.dumps(good)[:5000])
    (tmp_path / "latin1.json").write_bytes(b'{"device": "\xe9"}')
    (tmp_path / "nan.json").write_text(json.dumps(good).replace('"t_ms": 0.0', '"t_ms": NaN', 1))
    files += [str(tmp_path / n) for n in ("notes.json", "cut.json", "latin1.json", "nan.json")]
    expected += [
        "not JSON: Expecting value at line 1 column 1",
        "not JSON: ",
        "not JSON: not UTF-8 text (byte 12)",
        "not a signature recording: points[0].t_ms is not a finite number: nan",
    ]
    for change, message in BROKEN.items():
        path = tmp_path / f"{change.replace(' ', '_')}.json"
        path.write_text(json.dumps(_broken(good, change)))
        files.append(str(path))
        expected.append(message)
    result = kitctl("quality", "signature", NAME, *files, CROSS, "--json")
    assert result.returncode == 1
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in reports] == [NAME, *files, CROSS]
    assert reports[0]["passed"] is True and reports[-1]["passed"] is False
    for report, message in zip(reports[1:-1], expected, strict=True):
        assert list(report) == ["file", "error"], report
        assert report["error"].startswith(message), (report, message)
    assert f"{len(files)} of {len(files) + 2} inputs could not be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_empty_recording_is_assessed_empty(tmp_path: Path) -> None:
    empty = recording() | {"points": [], "strokes": 0}
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(empty))
    report = json.loads(kitctl("quality", "signature", str(path), "--json").stdout)
    assert report["feedback"] == ["empty"] and report["score"] == 0 and report["passed"] is False


def test_failing_gate_is_not_an_error_and_config_thresholds_apply(tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text("[quality.signature]\nmin_ink_size_mm = 80.0\n")
    result = kitctl("quality", "signature", NAME, "--json", "--config", str(strict))
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["feedback"] == ["too_small"]


@pytest.mark.parametrize(
    "args",
    [
        ["quality", "signature", "--json"],
        ["quality", "signature", NAME, "--ppi", "500"],
        ["quality", "signature", NAME, "--config", "TYPO"],
        ["quality", "signature", NAME, "--config", "NONE"],
    ],
    ids=["no-input", "unknown-option", "threshold-typo", "missing-config"],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("[quality.signature]\nmin_pen_down = 1\n")
    args = [str(typo) if a == "TYPO" else str(tmp_path / "none.toml") if a == "NONE" else a for a in args]
    result = kitctl(*args)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if "typo.toml" in " ".join(args):
        assert "quality.signature.min_pen_down" in result.stderr
