"""A finished visit made of simulated captures, as the daemon would hold it before sealing.

Its one job: :func:`finished_visit` drives the visit machine through identity, ten
fingers (synthetic prints at the NB-1010's 385 ppi), two irises (the simulated eye) and a
signature (a synthetic pen recording), each judged by the kit's own assessors, and returns
the visit's record, its order and the in-memory captures, for the sealing tests and the
sealing benchmark. Items listed in ``excepted`` are excepted instead (a finger amputated,
the signature ``cannot_sign`` with a thumbprint in its place).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hil.sample_orders import sample_order
from hil.synthetic_eye import EyeParams, render
from hil.synthetic_finger import render_finger
from hil.synthetic_signature import synthetic_signature
from kitd.capture.fingerprint_quality import assess_fingerprint
from kitd.capture.iris_quality import assess_iris
from kitd.capture.signature import PadInfo, PenPoint, Signature
from kitd.capture.signature_quality import assess_signature
from kitd.grey_image import encode_png
from kitd.services.captures import Capture, quality_headers
from kitd.services.visit_machine import Visit, item_kind

PPI = 385.0
PAD = PadInfo(max_x=9600, max_y=6000, max_pressure=1023, firmware=7, points_per_mm=100)
PACKET_MS = 1000 / 130


@dataclass(frozen=True)
class SampleVisit:
    visit: dict[str, Any]
    order: dict[str, Any]
    captures: dict[str, Capture]


def finger_capture(seed: int) -> Capture:
    image = render_finger(seed, "good", ppi=PPI)
    report = assess_fingerprint(image, PPI)
    return Capture(encode_png(image), "image/png", quality_headers(report), report)


def iris_capture(seed: int) -> Capture:
    image, _truth = render(dataclasses.replace(EyeParams(), seed=seed, noise=0.0))
    report = assess_iris(image)
    return Capture(encode_png(image), "image/png", quality_headers(report), report)


def signature_capture(seed: int = 5) -> Capture:
    states = synthetic_signature(
        seed, max_x=PAD.max_x, max_y=PAD.max_y, max_pressure=PAD.max_pressure, strokes=3
    )
    points = tuple(
        PenPoint(round(i * PACKET_MS, 3), s.x, s.y, s.pressure, s.tip, s.proximity)
        for i, s in enumerate(states)
    )
    signature = Signature(PAD, points)
    report = assess_signature(signature)
    return Capture(
        json.dumps(signature.to_json()).encode(), "application/json", quality_headers(report), report
    )


def finished_visit(
    officer: str,
    order_id: str = "MJK-001",
    excepted: Mapping[str, str] | None = None,
    seed: int = 1,
    guardian: Mapping[str, str] | None = None,
) -> SampleVisit:
    """A finished visit (every item captured or excepted), ready to seal; with ``guardian``
    an ``odgj`` applicant whose guardian consents."""
    excepted = dict(excepted or {})
    order = sample_order(order_id, **({"category": "odgj"} if guardian else {}))
    visit = Visit.start(f"visit-{order_id}", order_id, officer, order["category"])
    if guardian:
        visit.record_identity(["Sumiati", guardian["name"]], "guardian", dict(guardian))
    else:
        visit.record_identity(["Sumiati", "Rina"], "applicant")
    captures: dict[str, Capture] = {}
    while visit.current is not None:
        item = visit.current
        if item in excepted:
            visit.except_item(item, excepted[item], True, officer)
            continue
        kind = item_kind(item)
        if kind in ("finger", "thumbprint"):
            position = visit.item(item).finger if kind == "thumbprint" else int(item.split(":")[1])
            capture = finger_capture(seed * 100 + int(position or 1))
        elif kind == "iris":
            capture = iris_capture(seed * 10 + (1 if item.endswith("right") else 2))
        else:
            capture = signature_capture(seed)
        report = capture.report
        visit.start_item(item, f"session-{item}")
        visit.session_best(
            item, f"session-{item}", report.score, report.passed, report.feedback, report.failed_checks
        )
        if visit.item(item).status == "capturing":  # a session_best that did not pass: kept as forced
            visit.accept_item(item)
        captures[item] = capture
    visit.finish()
    return SampleVisit(visit.to_json(), order, captures)
