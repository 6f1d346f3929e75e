"""Diagnostics of a signature pad (Wacom ISDV4): what it said it is, and how its line sounds.

Its one job: the deep checks of one signature slot, after its presence check:

* ``<slot>.identity``: the pad's answer to the pen query when it was opened (maxima of x, y and
  pressure, tilt, firmware), its size in mm, the line's baud rate and touch sensor. Reported,
  not judged: the kit keeps no list of pads it expects.
* ``<slot>.line``: the pad asked its pen query again (a hung pad, its port open, fails here),
  then started for two seconds and every byte kept (kitd.capture.pad_line):
  garbage on the line (a bad cable, a wrong baud rate) warns or fails, a pen packet beyond the
  pad's own maxima fails, a packet rate well below the nominal one warns. A pad with no pen
  near sends nothing, and that is fine: silence is not a fault unless a guided test asked for
  the pen.

Each runs as the slot's job (kitd.services.check_jobs); a pad that is not ready answers
``not_available`` at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from kitd.capture.pad_line import LineLimits, LineReport, line_report
from kitd.errors import KitError, ProtocolError
from kitd.services.check_jobs import not_ready, on_device
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, OK, WARNING, Check, Words, decimal_id, finding

PAD = DEVICE_NAMES["signature"]
LINE_TEST_S = 2.0
READ_SLICE_S = 0.05
IDENTITY_KEYS = (
    "max_x",
    "max_y",
    "max_pressure",
    "max_tilt_x",
    "max_tilt_y",
    "width_mm",
    "height_mm",
    "points_per_mm",
    "baud",
    "path",
    "touch",
)


def identity_check(slot: Any) -> Check:
    async def run(_kit: Any) -> dict[str, Any]:
        status, _reason, _since = slot.current()
        detail = slot.detail
        values = {"model": slot.model, "firmware": slot.firmware, **{k: detail.get(k) for k in IDENTITY_KEYS}}
        if status not in ("ready", "busy") or slot.model is None:
            return not_ready(PAD, status, values)
        return finding(OK, values)

    return Check(f"{slot.id}.identity", slot.id, run, time_limit_s=2.0)


def listen(pad: Any, cancel: threading.Event, seconds: float = LINE_TEST_S) -> LineReport:
    """Start the pad, keep every byte it sends for `seconds` (with its time of arrival), stop
    it, and report. Runs on the pad's thread."""
    if pad.query is None:
        raise ProtocolError(f"{pad.where}: not opened")
    # Silence is fine only from a pad that is there: it must answer its pen query first.
    pad.answer_to_query()
    reads: list[tuple[float, bytes]] = []
    pad.start()
    started = time.monotonic()
    try:
        while (left := started + seconds - time.monotonic()) > 0 and not cancel.is_set():
            chunk = pad.link.read(min(READ_SLICE_S, left), f"{pad.where}: line test")
            if chunk:
                reads.append((time.monotonic(), chunk))
    except BaseException:
        # The read's error (the pad unplugged) is the one to report, not stop's echo of it.
        with contextlib.suppress(KitError):
            pad.stop()
        raise
    pad.stop()
    return line_report(reads, pad.query, pad.parser.touch_length, seconds)


def judge_line(report: LineReport, baud: Any, limits: LineLimits | None = None) -> dict[str, Any]:
    """The line test's finding: garbage warns or fails, coordinates beyond the pad fail, a slow
    pad warns; silence (no pen near) is ok."""
    limits = limits or LineLimits()
    values = report.to_json()
    share = report.noise_share
    noisy = Words(
        f"Jalur data bantalan berisik ({decimal_id(100 * share, 1)}% sampah, {report.noise_bytes} bita): "
        f"periksa kabel dan kecepatan baud (diatur {baud}).",
        f"The pad's line is noisy ({share:.1%} garbage, {report.noise_bytes} bytes): check the cable "
        f"and the baud rate (set to {baud}).",
    )
    if report.noise_bytes >= limits.noisy_bytes and share >= limits.garbled_share:
        return finding(FAILED, values, noisy)
    if report.out_of_range:
        return finding(
            FAILED,
            values,
            Words(
                f"Bantalan mengirim {report.out_of_range} titik di luar ukurannya sendiri: periksa "
                "kabelnya; jika tetap, ganti bantalan tanda tangan.",
                f"The pad sent {report.out_of_range} points beyond its own size: check its cable; "
                "if it stays, replace the signature pad.",
            ),
        )
    if report.noise_bytes >= limits.noisy_bytes:
        return finding(WARNING, values, noisy)
    if report.rate_hz is not None and report.rate_hz < limits.slow_ratio * report.nominal_rate_hz:
        return finding(
            WARNING,
            values,
            Words(
                f"Bantalan mengirim {report.rate_hz:.0f} paket/detik, kurang dari "
                f"{report.nominal_rate_hz:.0f} yang semestinya: periksa kabel dan kecepatan baud "
                f"(diatur {baud}).",
                f"The pad sends {report.rate_hz:.0f} packets a second, short of its "
                f"{report.nominal_rate_hz:.0f}: check the cable and the baud rate (set to {baud}).",
            ),
        )
    return finding(OK, values)


def line_check(slot: Any) -> Check:
    async def run(_kit: Any) -> dict[str, Any]:
        report, failed = await on_device(slot, listen, PAD)
        if failed is not None:
            return failed
        assert report is not None
        return judge_line(report, slot.detail.get("baud"))

    return Check(f"{slot.id}.line", slot.id, run, time_limit_s=LINE_TEST_S + 4.0)


def pad_checks(slot: Any) -> list[Check]:
    """The signature slot's deep checks, in the order a technician reads them."""
    return [identity_check(slot), line_check(slot)]
