"""kitctl quality signature: read a signature recording from disk, checked field by field.

The input is the JSON `kitctl capture signature` writes (and the daemon returns):
`{"device": {"max_x", "max_y", "max_pressure", "firmware", "points_per_mm"},
"points": [{"t_ms", "x", "y", "pressure", "tip", "proximity"}, ...], "strokes"}`.
Anything else is refused with one line naming the first thing wrong (the file, the
JSON, a missing or mistyped field, a value beyond the pad's maxima, time running
backwards), so the technician can tell a truncated copy from a file of another kind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kitd.capture.signature import Signature, signature_from_json, strokes
from kitd.cli.inputs import InputUnreadable, json_document, read_input
from kitd.schemas import ShapeError, check


def _not_a_recording(what: str) -> InputUnreadable:
    return InputUnreadable(f"not a signature recording: {what}")


def check_recording(doc: Any) -> None:
    """Raise InputUnreadable naming the first way `doc` is not a signature recording: its shape
    by the Signature schema (kitd.schemas), then what a schema cannot say."""
    try:
        check("Signature", doc)
    except ShapeError as exc:
        raise _not_a_recording(str(exc)) from None
    device = doc["device"]
    previous = -math.inf
    for index, point in enumerate(doc["points"]):
        where = f"points[{index}]"
        t = point["t_ms"]
        if not math.isfinite(t):
            raise _not_a_recording(f"{where}.t_ms is not a finite number: {t!r}")
        if t < previous:
            raise _not_a_recording(f"{where}.t_ms {t} runs backwards (before {previous})")
        previous = t
        for key, limit in (("x", "max_x"), ("y", "max_y"), ("pressure", "max_pressure")):
            if not 0 <= point[key] <= device[limit]:
                raise _not_a_recording(
                    f"{where}.{key} {point[key]} is outside 0..device.{limit} {device[limit]}"
                )
    if "strokes" in doc:
        counted = len(strokes([p["tip"] for p in doc["points"]]))
        if doc["strokes"] != counted:
            raise _not_a_recording(f"'strokes' is {doc['strokes']!r} but the points hold {counted}")


def read_signature(path: Path) -> Signature:
    """A signature recording file as a Signature (InputUnreadable says what is wrong)."""
    doc = json_document(read_input(path))
    check_recording(doc)
    return signature_from_json(doc)
