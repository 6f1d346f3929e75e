"""kitctl quality signature: read a signature recording from disk, checked field by field.

The input is the JSON `kitctl capture signature` writes (and the daemon returns):
`{"device": {"max_x", "max_y", "max_pressure", "firmware", "points_per_mm"},
"points": [{"t_ms", "x", "y", "pressure", "tip", "proximity"}, ...], "strokes"}`.
Anything else is refused with one line naming the first thing wrong (the file, the
JSON, a missing or mistyped field, a value beyond the pad's maxima, time running
backwards), so the technician can tell a truncated copy from a file of another kind.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kitd.capture.signature import Signature, signature_from_json, strokes
from kitd.cli.quality_inputs import InputUnreadable, read_input

DEVICE_FIELDS = ("max_x", "max_y", "max_pressure", "firmware", "points_per_mm")
POINT_FIELDS = ("t_ms", "x", "y", "pressure", "tip", "proximity")


def _not_a_recording(what: str) -> InputUnreadable:
    return InputUnreadable(f"not a signature recording: {what}")


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (what the file holds, not Python's word for it)."""
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "null")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def _check_device(device: Any) -> None:
    if not isinstance(device, dict):
        raise _not_a_recording(f"'device' is {_json_type(device)}, not an object")
    for key in DEVICE_FIELDS:
        if key not in device:
            raise _not_a_recording(f"device.{key} is missing")
        if not _is_int(device[key]):
            raise _not_a_recording(f"device.{key} is not an integer: {device[key]!r}")
    for key in ("max_x", "max_y", "points_per_mm"):
        if device[key] <= 0:
            raise _not_a_recording(f"device.{key} must be above 0, not {device[key]}")
    if device["max_pressure"] < 0:
        raise _not_a_recording("device.max_pressure is negative")


def _check_point(index: int, point: Any, device: dict[str, int], previous_t: float) -> float:
    where = f"points[{index}]"
    if not isinstance(point, dict):
        raise _not_a_recording(f"{where} is {_json_type(point)}, not an object")
    for key in POINT_FIELDS:
        if key not in point:
            raise _not_a_recording(f"{where}.{key} is missing")
    t = point["t_ms"]
    if not _is_number(t):
        raise _not_a_recording(f"{where}.t_ms is not a finite number: {t!r}")
    if t < previous_t:
        raise _not_a_recording(f"{where}.t_ms {t} runs backwards (before {previous_t})")
    for key, limit in (("x", "max_x"), ("y", "max_y"), ("pressure", "max_pressure")):
        value = point[key]
        if not _is_int(value):
            raise _not_a_recording(f"{where}.{key} is not an integer: {value!r}")
        if not 0 <= value <= device[limit]:
            raise _not_a_recording(f"{where}.{key} {value} is outside 0..device.{limit} {device[limit]}")
    for key in ("tip", "proximity"):
        if not isinstance(point[key], bool):
            raise _not_a_recording(f"{where}.{key} is not true/false: {point[key]!r}")
    return float(t)


def check_recording(doc: Any) -> None:
    """Raise InputUnreadable naming the first way `doc` is not a signature recording."""
    if not isinstance(doc, dict):
        raise _not_a_recording(f"the JSON is {_json_type(doc)}, not an object")
    for key in ("device", "points"):
        if key not in doc:
            raise _not_a_recording(f"no '{key}'")
    _check_device(doc["device"])
    points = doc["points"]
    if not isinstance(points, list):
        raise _not_a_recording(f"'points' is {_json_type(points)}, not an array")
    previous = -math.inf
    for index, point in enumerate(points):
        previous = _check_point(index, point, doc["device"], previous)
    if "strokes" in doc:
        counted = len(strokes([p["tip"] for p in points]))
        if not _is_int(doc["strokes"]) or doc["strokes"] != counted:
            raise _not_a_recording(f"'strokes' is {doc['strokes']!r} but the points hold {counted}")


def read_signature(path: Path) -> Signature:
    """A signature recording file as a Signature (InputUnreadable says what is wrong)."""
    data = read_input(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputUnreadable(f"not JSON: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputUnreadable(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputUnreadable("not JSON: nested too deeply") from None
    check_recording(doc)
    return signature_from_json(doc)
