"""Diagnostics of a fingerprint reader (NB-1010-U): what it is, whether it feels a finger that
is not there, and what its sensor shows with nothing on it.

Its one job: the deep checks of one fingerprint slot, after its presence check:

* ``<slot>.identity``: model, serial, firmware and frame geometry as the reader reported them
  when it was opened (the kit keeps no list of firmware it expects: this reports, it does not
  judge).
* ``<slot>.finger_baseline``: the reader's finger coverage with no finger on it, read a few
  times: near 0 on a clean sensor; a sensor that reads as partly covered is dirty or damaged,
  and one that reports a finger where its frame shows none is broken.
* ``<slot>.blank_frame``: one frame taken with no finger, judged by kitd.capture.blank_frame:
  dead or stuck lines (replace the reader), dirt, shading or a dim sensor (clean it).

Each runs as the slot's job (kitd.services.check_jobs); a reader that is not ready answers
``not_available`` at once.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kitd.capture.blank_frame import BlankFrameReport, blank_frame_report, dark_share
from kitd.drivers.nb1010 import FINGER_PRESENT_ABOVE
from kitd.services.check_jobs import not_ready, on_device
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, OK, WARNING, Check, Words, decimal_id, finding

READER = DEVICE_NAMES["fingerprint"]
MM_PER_INCH = 25.4

# Coverage readings with no finger: a clean sensor reads 0 (the simulator) or close to it. The
# driver calls a finger present above 0x30; a third of that is already a sensor that "feels"
# something on its glass.
BASELINE_READS = 3
BASELINE_PAUSE_S = 0.05
CLEAR_AT_MOST = 0x10
# A frame with less than this share of dark pixels shows no finger: the lightest or smallest
# press darkens 7% or more (the synthetic fingers), a dirty empty glass ~4%, a clean one <1%.
NO_FINGER_DARK_SHARE = 0.055
# With coverage low, a frame this dark still holds a finger the reader did not feel (a firm
# press darkens 30-80%); below it, what darkens the frame is judged as dirt.
FINGER_DARK_SHARE = 0.2

LIFT_FINGER = Words(
    "Ada jari di sensor: angkat jari, lalu ulangi pemeriksaan.",
    "A finger is on the sensor: lift the finger, then run the check again.",
)
CLEAN = (
    "bersihkan permukaan sensor dengan kain lembut, lalu ulangi.",
    "clean the sensor's surface with a soft cloth, then run again.",
)


def _coverages(reader: Any, cancel: threading.Event) -> list[int]:
    readings = []
    for index in range(BASELINE_READS):
        if index and cancel.wait(BASELINE_PAUSE_S):
            break
        readings.append(int(reader.finger_coverage()))
    return readings


def identity_check(slot: Any) -> Check:
    async def run(_kit: Any) -> dict[str, Any]:
        status, _reason, _since = slot.current()
        detail = slot.detail
        values = {
            "model": slot.model,
            "serial": slot.serial,
            "firmware": slot.firmware,
            **{key: detail.get(key) for key in ("usb_id", "width", "height", "ppi")},
        }
        if status not in ("ready", "busy") or slot.model is None:
            return not_ready(READER, status, values)
        return finding(OK, values)

    return Check(f"{slot.id}.identity", slot.id, run, time_limit_s=2.0)


def finger_baseline_check(slot: Any) -> Check:
    def job(reader: Any, cancel: threading.Event) -> tuple[list[int], float | None]:
        readings = _coverages(reader, cancel)
        if readings and float(np.median(readings)) > FINGER_PRESENT_ABOVE:
            # A finger, or a sensor that feels one where none is: its frame tells which.
            return readings, dark_share(reader.capture_frame())
        return readings, None

    async def run(_kit: Any) -> dict[str, Any]:
        outcome, failed = await on_device(slot, job, READER)
        if failed is not None:
            return failed
        assert outcome is not None
        readings, frame_dark = outcome
        coverage = int(np.median(readings))
        values: dict[str, Any] = {
            "coverage": coverage,
            "readings": readings,
            "clear_at_most": CLEAR_AT_MOST,
            "finger_above": FINGER_PRESENT_ABOVE,
        }
        if frame_dark is not None:
            values["frame_dark_share"] = round(frame_dark, 4)
            if frame_dark >= NO_FINGER_DARK_SHARE:
                return finding(WARNING, values, LIFT_FINGER)
            return finding(
                FAILED,
                values,
                Words(
                    f"Sensor melaporkan jari padahal gambarnya kosong (cakupan {coverage}): "
                    f"{CLEAN[0]} Jika tetap, ganti pembaca sidik jari.",
                    f"The sensor reports a finger where its frame shows none (coverage {coverage}): "
                    f"{CLEAN[1]} If it stays, replace the reader.",
                ),
            )
        if coverage > CLEAR_AT_MOST:
            return finding(
                WARNING,
                values,
                Words(
                    f"Tanpa jari, sensor terbaca sebagian tertutup (cakupan {coverage}): {CLEAN[0]} "
                    "Jika tetap, sensor rusak: ganti pembaca sidik jari.",
                    f"With no finger, the sensor reads as partly covered (coverage {coverage}): "
                    f"{CLEAN[1]} If it stays, the sensor is damaged: replace the reader.",
                ),
            )
        return finding(OK, values)

    return Check(f"{slot.id}.finger_baseline", slot.id, run, time_limit_s=4.0)


def _lines(report: BlankFrameReport) -> tuple[str, str]:
    """What is broken, in both languages: '2 baris mati (60, 120)' / '2 dead rows (60, 120)'."""
    parts_id, parts_en = [], []
    for lines, word_id, word_en in (
        (report.dead_rows, "baris mati", "dead rows"),
        (report.dead_columns, "kolom mati", "dead columns"),
        (report.stuck_rows, "baris macet", "stuck rows"),
        (report.stuck_columns, "kolom macet", "stuck columns"),
    ):
        if lines:
            where = ", ".join(str(i) for i in lines[:6]) + (", ..." if len(lines) > 6 else "")
            parts_id.append(f"{len(lines)} {word_id} ({where})")
            parts_en.append(f"{len(lines)} {word_en} ({where})")
    return "; ".join(parts_id), "; ".join(parts_en)


def judge_blank_frame(report: BlankFrameReport, ppi: float) -> dict[str, Any]:
    """A blank frame's finding: broken lines fail (no cloth mends them), dirt, shading or a dim
    sensor warn (a cloth may), else ok."""
    values = report.to_json()
    px_per_mm = ppi / MM_PER_INCH
    values["blotch_mm2"] = round(values["blotch_px"] / (px_per_mm * px_per_mm), 2)
    if report.damaged:
        what_id, what_en = _lines(report)
        return finding(
            FAILED,
            values,
            Words(
                f"Sensor rusak ({what_id}): ganti pembaca sidik jari.",
                f"The sensor is damaged ({what_en}): replace the reader.",
            ),
        )
    if report.dark_share > FINGER_DARK_SHARE:
        return finding(WARNING, values, LIFT_FINGER)
    found_id, found_en = [], []
    if report.dirty:
        found_id.append(f"{len(report.blotches)} noda, {decimal_id(values['blotch_mm2'])} mm²")
        found_en.append(f"{len(report.blotches)} blotches, {values['blotch_mm2']} mm²")
    if report.uneven:
        found_id.append(f"kecerahan tidak rata {report.unevenness:.0%}")
        found_en.append(f"uneven brightness {report.unevenness:.0%}")
    if report.dim:
        found_id.append(f"terlalu gelap ({report.background:.0f})")
        found_en.append(f"too dark ({report.background:.0f})")
    if found_id:
        return finding(
            WARNING,
            values,
            Words(
                f"Sensor kotor ({'; '.join(found_id)}): {CLEAN[0]}",
                f"The sensor is dirty ({'; '.join(found_en)}): {CLEAN[1]}",
            ),
        )
    return finding(OK, values)


def blank_frame_check(slot: Any) -> Check:
    def job(reader: Any, cancel: threading.Event) -> tuple[int, BlankFrameReport | None]:
        coverage = int(reader.finger_coverage())
        if coverage > FINGER_PRESENT_ABOVE:
            return coverage, None
        # Judged here, on the device's thread: the event loop stays free meanwhile.
        return coverage, blank_frame_report(reader.capture_frame())

    async def run(_kit: Any) -> dict[str, Any]:
        outcome, failed = await on_device(slot, job, READER)
        if failed is not None:
            return failed
        assert outcome is not None
        coverage, report = outcome
        if report is None:
            return finding(WARNING, {"coverage": coverage}, LIFT_FINGER)
        found = judge_blank_frame(report, float(slot.detail.get("ppi") or 385.0))
        found["values"]["coverage"] = coverage
        return found

    return Check(f"{slot.id}.blank_frame", slot.id, run, time_limit_s=5.0)


def fingerprint_checks(slot: Any) -> list[Check]:
    """The fingerprint slot's deep checks, in the order a technician reads them."""
    return [identity_check(slot), finger_baseline_check(slot), blank_frame_check(slot)]
