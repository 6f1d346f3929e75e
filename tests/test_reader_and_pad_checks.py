"""The fingerprint reader's and the signature pad's diagnostics against fake slots: what each
check answers for a healthy device, each fault, a device that is not ready or busy, and one
that goes away in the middle of a check. (tests/test_hil_diagnostics_devices.py runs them
against the simulators, through the API.)"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from hil.finger_frames import empty_glass, with_dead_rows, with_dirt, with_stuck_columns
from hil.synthetic_finger import render_finger
from kitd.drivers.isdv4 import PenPacket, PenQuery, encode_pen_packet
from kitd.errors import DeviceGone, DeviceTimeout, KitError
from kitd.services.diagnostics import FAILED, NOT_AVAILABLE, OK, WARNING, run_check
from kitd.services.fingerprint_checks import fingerprint_checks
from kitd.services.pad_checks import pad_checks


class FakeSlot:
    """A device slot's face to its checks: status, facts, and jobs run at once."""

    def __init__(self, kind: str, driver: Any, detail: dict[str, Any], status: str = "ready") -> None:
        self.id, self.kind, self.uri = kind, kind, f"fake:{kind}"
        self.model, self.serial, self.firmware = "fake model", None, "0.01"
        self.detail, self.status, self.driver = detail, status, driver
        self.jobs = 0

    def current(self) -> tuple[str, str, float]:
        return self.status, "because", 0.0

    async def run_job(self, job: Any) -> Any:
        self.jobs += 1
        return job(self.driver, threading.Event())


class FakeReader:
    def __init__(self, coverage: int, frame: np.ndarray | None = None, gone: bool = False) -> None:
        self.coverage, self.frame, self.gone = coverage, frame, gone

    def finger_coverage(self) -> int:
        return self.coverage

    def capture_frame(self) -> np.ndarray:
        if self.gone:
            raise DeviceGone("NB-1010 image packet 30: device unplugged")
        return empty_glass() if self.frame is None else self.frame


class FakeLink:
    def __init__(self, chunks: list[bytes], gone_after: int | None = None) -> None:
        self.chunks, self.gone_after, self.reads = chunks, gone_after, 0

    def read(self, timeout_s: float, what: str) -> bytes:
        self.reads += 1
        if self.gone_after is not None and self.reads > self.gone_after:
            raise DeviceGone(f"{what}: port unplugged")
        return self.chunks.pop(0) if self.chunks else b""


class FakePad:
    where = "signature pad /dev/fake"

    def __init__(self, link: FakeLink, answers: bool = True) -> None:
        self.link, self.answers = link, answers
        self.query = PenQuery(max_x=9600, max_y=6000, max_pressure=1023, firmware=4660)
        self.parser = type("Parser", (), {"touch_length": 5})()
        self.started = self.stopped = 0

    def answer_to_query(self) -> PenQuery:
        if not self.answers:
            raise DeviceTimeout(f"{self.where}: no answer to the pen query within 1 s")
        return self.query

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1
        if self.link.gone_after is not None:
            raise KitError("stop's echo of the unplug")


READER_DETAIL = {"usb_id": "298d:1010", "width": 256, "height": 180, "ppi": 385.0}
PAD_DETAIL = {"max_x": 9600, "max_y": 6000, "max_pressure": 1023, "baud": 38400, "touch": None}


def run(slot: FakeSlot, checks: list[Any]) -> dict[str, dict[str, Any]]:
    async def all_of() -> dict[str, dict[str, Any]]:
        return {c.id.split(".", 1)[1]: await run_check(c, None) for c in checks}

    return asyncio.run(all_of())


def reader_findings(reader: FakeReader, status: str = "ready") -> dict[str, dict[str, Any]]:
    slot = FakeSlot("fingerprint", reader, READER_DETAIL, status)
    return run(slot, fingerprint_checks(slot))


def test_a_healthy_reader() -> None:
    found = reader_findings(FakeReader(0))
    assert {k: f["status"] for k, f in found.items()} == {
        "identity": OK,
        "finger_baseline": OK,
        "blank_frame": OK,
    }
    assert found["identity"]["values"]["usb_id"] == "298d:1010"
    assert found["finger_baseline"]["values"]["readings"] == [0, 0, 0]
    assert found["blank_frame"]["values"]["blotch_px"] == 0


def test_a_finger_on_the_reader_asks_to_lift_it() -> None:
    found = reader_findings(FakeReader(0xF7, render_finger(1, "good")))
    for name in ("finger_baseline", "blank_frame"):
        assert found[name]["status"] == WARNING
        assert found[name]["message"]["en"].startswith("A finger is on the sensor: lift the finger")
        assert found[name]["message"]["id"].startswith("Ada jari di sensor")


def test_a_reader_that_feels_a_finger_where_none_is_fails() -> None:
    found = reader_findings(FakeReader(0xF7))
    assert found["finger_baseline"]["status"] == FAILED
    assert "reports a finger where its frame shows none" in found["finger_baseline"]["message"]["en"]


def test_a_sensor_that_reads_partly_covered_warns() -> None:
    found = reader_findings(FakeReader(0x22))
    assert found["finger_baseline"]["status"] == WARNING
    assert "soft cloth" in found["finger_baseline"]["message"]["en"]
    assert found["blank_frame"]["status"] == OK


def test_dirt_warns_and_broken_lines_fail() -> None:
    dirty = reader_findings(FakeReader(0, with_dirt(empty_glass())))["blank_frame"]
    assert dirty["status"] == WARNING
    assert dirty["message"]["en"].endswith("clean the sensor's surface with a soft cloth, then run again.")
    assert dirty["message"]["id"].endswith("bersihkan permukaan sensor dengan kain lembut, lalu ulangi.")
    assert dirty["values"]["blotch_mm2"] > 1
    area = dirty["values"]["blotch_mm2"]
    assert f"noda, {area:g} mm²".replace(".", ",") in dirty["message"]["id"]  # a decimal comma
    dead = reader_findings(FakeReader(0, with_dead_rows(empty_glass(), 2)))["blank_frame"]
    assert dead["status"] == FAILED and dead["values"]["dead_rows"] == [60, 120]
    assert dead["message"]["en"] == "The sensor is damaged (2 dead rows (60, 120)): replace the reader."
    stuck = reader_findings(FakeReader(0, with_stuck_columns(empty_glass(), 1)))["blank_frame"]
    assert stuck["status"] == FAILED and "1 kolom macet (128)" in stuck["message"]["id"]


def test_a_reader_gone_mid_check_fails_and_one_not_ready_is_not_available() -> None:
    gone = reader_findings(FakeReader(0, gone=True))["blank_frame"]
    assert gone["status"] == FAILED and "went away in the middle of the check" in gone["message"]["en"]
    slot = FakeSlot("fingerprint", FakeReader(0), READER_DETAIL, "disconnected")
    found = run(slot, fingerprint_checks(slot))
    assert {f["status"] for f in found.values()} == {NOT_AVAILABLE} and slot.jobs == 0
    assert "its presence check says why" in found["blank_frame"]["message"]["en"]
    busy = reader_findings(FakeReader(0), "busy")
    assert busy["blank_frame"]["status"] == NOT_AVAILABLE and "in use" in busy["blank_frame"]["message"]["en"]


def pen_bytes(count: int) -> list[bytes]:
    return [
        encode_pen_packet(PenPacket(x=100 + i, y=200, pressure=300, tip=True, proximity=True))
        for i in range(count)
    ]


def test_the_pad_is_started_listened_to_and_stopped() -> None:
    pad = FakePad(FakeLink([b"".join(pen_bytes(6)) for _ in range(10)]))
    slot = FakeSlot("signature", pad, PAD_DETAIL)
    found = run(slot, pad_checks(slot))
    assert found["identity"]["status"] == OK and found["identity"]["values"]["firmware"] == "0.01"
    assert found["line"]["status"] == OK, found["line"]
    assert found["line"]["values"]["pen_packets"] == 60 and pad.started == pad.stopped == 1


def test_a_hung_pad_fails_the_line_test_before_it_is_listened_to() -> None:
    """Port open, nothing answering (a hung or unpowered pad): not the silence of a pad with no
    pen near, which is ok."""
    pad = FakePad(FakeLink([]), answers=False)
    slot = FakeSlot("signature", pad, PAD_DETAIL)
    line = run(slot, pad_checks(slot))["line"]
    assert line["status"] == FAILED and "no answer to the pen query" in line["message"]["en"], line
    assert pad.started == 0
    quiet = FakePad(FakeLink([]))
    slot = FakeSlot("signature", quiet, PAD_DETAIL)
    assert run(slot, pad_checks(slot))["line"]["status"] == OK


def test_a_pad_unplugged_mid_test_fails_with_the_reads_error() -> None:
    pad = FakePad(FakeLink([b"".join(pen_bytes(6))] * 3, gone_after=3))
    slot = FakeSlot("signature", pad, PAD_DETAIL)
    line = run(slot, pad_checks(slot))["line"]
    assert line["status"] == FAILED and "port unplugged" in line["message"]["en"] and pad.stopped == 1
