"""Diagnostics' core (kitd.services.diagnostics) and the unit's readers (kitd.services.unit_checks):
a check that hangs is failed with timed_out, one that raises is failed naming why, the run
always completes; what /sys says (a Pi's thermal zone, its firmware's throttling flags, an eMMC
card's wear) read from a folder of the test's own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kitd.cli.diag import history_lines, run_lines
from kitd.clock import KitClock
from kitd.services import unit_checks
from kitd.services.diagnostics import Check, Words, finding, run_checks
from kitd.services.unit_checks import card_wear, cpu_temperature_c, throttling_flags
from kitd.store.diagnostics import history_limit

KIT = SimpleNamespace(config=SimpleNamespace(kit_id="K-1"), clock=KitClock(None))
FIX = Words("Perbaiki.", "Fix it.")


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def fine(_kit: Any) -> dict[str, Any]:
    return finding("ok", {"n": 1})


async def hangs(_kit: Any) -> dict[str, Any]:
    await asyncio.sleep(60)
    return finding("ok")


async def raises(_kit: Any) -> dict[str, Any]:
    raise OSError(5, "Input/output error")


async def warns(_kit: Any) -> dict[str, Any]:
    return finding("warning", {"celsius": 72.5}, FIX)


def test_a_device_lost_during_the_run_fails_it() -> None:
    answers = {"cam": ["ok", "failed"], "pad": ["ok", "ok"]}

    def presence(device: str):  # noqa: ANN202
        async def run(_kit: Any) -> dict[str, Any]:
            status = answers[device].pop(0)
            return finding(status, {"asked": True}, None if status == "ok" else FIX)

        return Check(f"{device}.present", device, run, quick=True)

    async def gone(_kit: Any) -> dict[str, Any]:
        return finding("not_available", {"status": "disconnected"}, FIX)

    checks = [
        presence("cam"),
        Check("cam.frame_rate", "cam", gone),
        presence("pad"),
        Check("pad.line", "pad", gone),
    ]
    run = asyncio.run(run_checks(KIT, checks, quick=False))
    by_id = {f["id"]: f for f in run["checks"]}
    # The camera is gone when asked again: its presence fails the run, saying when it went.
    assert by_id["cam.present"]["status"] == "failed" and by_id["cam.present"]["values"]["lost_during_run"]
    assert run["status"] == "failed" and [f["id"] for f in run["checks"]][0] == "cam.present"
    # The pad, asked again, answers: its first finding stands (and nothing is added).
    assert by_id["pad.present"]["status"] == "ok" and "lost_during_run" not in by_id["pad.present"]["values"]
    assert answers == {"cam": [], "pad": []} and len(run["checks"]) == 4


def test_a_run_completes_whatever_its_checks_do() -> None:
    checks = [
        Check("a.fine", "a", fine, quick=True),
        Check("a.hangs", "a", hangs, time_limit_s=0.2),
        Check("b.raises", "b", raises, quick=True),
        Check("unit.warm", None, warns),
    ]
    run = asyncio.run(run_checks(KIT, checks, quick=False))
    by_id = {f["id"]: f for f in run["checks"]}
    assert [f["id"] for f in run["checks"]] == ["a.fine", "a.hangs", "b.raises", "unit.warm"]
    assert by_id["a.fine"]["status"] == "ok" and by_id["a.fine"]["message"] is None
    hung = by_id["a.hangs"]
    assert hung["status"] == "failed" and hung["values"] == {"timed_out": True, "time_limit_s": 0.2}
    assert hung["message"]["en"].startswith("This check did not finish in time")
    assert hung["message"]["id"].startswith("Pemeriksaan ini tidak selesai")
    broken = by_id["b.raises"]
    assert broken["status"] == "failed" and "Input/output error" in broken["values"]["error"]
    assert run["status"] == "failed" and run["counts"] == {
        "ok": 1,
        "warning": 1,
        "failed": 2,
        "not_available": 0,
    }
    assert run["kit"]["id"] == "K-1" and not run["quick"]
    quick = asyncio.run(run_checks(KIT, checks, quick=True))
    assert [f["id"] for f in quick["checks"]] == ["a.fine", "b.raises"]


def test_a_finding_not_ok_must_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="needs a message"):
        finding("warning", {})
    with pytest.raises(ValueError, match="unknown check status"):
        finding("fine")
    assert finding("not_available", {}, FIX)["message"] == {"id": "Perbaiki.", "en": "Fix it."}


def test_the_technicians_lines_put_failures_first_with_what_to_do() -> None:
    checks = [Check("a.fine", "a", fine), Check("b.raises", "b", raises), Check("unit.warm", None, warns)]
    run = asyncio.run(run_checks(KIT, checks, quick=False))
    lines = run_lines(run)
    assert lines[0].startswith(f"diagnostics {run['run_id']} (full) on kit K-1") and "FAILED" in lines[0]
    assert lines[1].startswith("  FAILED  b.raises") and "run it again" in lines[1]
    assert lines[2].startswith("  warning unit.warm  [celsius=72.5]") and "Fix it." in lines[2]
    assert lines[3] == "  ok      a.fine  [n=1]"
    trend = {
        "check": "unit.warm",
        "findings": [{"started_at": "T1", "status": "warning", "values": {"celsius": 72.5}}],
    }
    assert history_lines(trend) == ["check unit.warm, oldest first:", "  T1  warning        celsius=72.5"]
    # A failed run says why (its message) and its short lists (dead rows); a long one is in --json.
    dead = {
        "started_at": "T2",
        "status": "failed",
        "values": {"background": 229.6, "dead_rows": [35], "profile": list(range(100))},
        "message": {"id": "Sensor rusak.", "en": "The sensor is damaged: replace the reader."},
    }
    assert history_lines({"check": "fp.blank_frame", "findings": [dead]})[1:] == [
        "  T2  failed         background=229.6, dead_rows=[35]",
        "      The sensor is damaged: replace the reader.",
    ]
    assert history_lines({"runs": []}) == ["no diagnostics run is stored yet: kitctl diag"]


def test_the_hottest_cpu_zone_is_read_and_a_pc_without_zones_says_none(tmp_path: Path) -> None:
    assert cpu_temperature_c(tmp_path) is None
    write(tmp_path, "class/thermal/thermal_zone0/type", "cpu-thermal\n")
    write(tmp_path, "class/thermal/thermal_zone0/temp", "61234\n")
    write(tmp_path, "class/thermal/thermal_zone1/type", "battery\n")
    write(tmp_path, "class/thermal/thermal_zone1/temp", "75000\n")
    write(tmp_path, "class/thermal/thermal_zone2/type", "x86_pkg_temp\n")
    write(tmp_path, "class/thermal/thermal_zone2/temp", "not a number\n")
    assert cpu_temperature_c(tmp_path) == pytest.approx(61.234)  # the CPU's, not the battery's


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("0x0", []),
        ("0x50005", ["under_voltage", "throttled", "under_voltage_since_boot", "throttled_since_boot"]),
        ("0x80000", ["soft_temperature_limit_since_boot"]),
        ("garbage", None),
    ],
)
def test_the_pi_firmwares_throttling_flags(tmp_path: Path, text: str, flags: list[str] | None) -> None:
    write(tmp_path, "devices/platform/soc/soc:firmware/get_throttled", text)
    assert throttling_flags(tmp_path) == flags


def test_an_emmc_cards_wear_and_a_card_that_reports_none(tmp_path: Path) -> None:
    write(tmp_path, "block/mmcblk0/device/name", "SD32G")
    assert card_wear(tmp_path) is None  # an SD card: no wear estimate
    write(tmp_path, "block/mmcblk1/device/life_time", "0x02 0x09\n")
    write(tmp_path, "block/mmcblk1/device/pre_eol_info", "0x01\n")
    assert card_wear(tmp_path) == {"card": "mmcblk1", "life_time_steps": [2, 9], "pre_eol": 1}


@pytest.mark.parametrize(
    ("life", "eol", "status"),
    [("0x01 0x01", "0x01", "ok"), ("0x02 0x08", "0x01", "warning"), ("0x01 0x01", "0x02", "warning"),
     ("0x0a 0x01", "0x01", "failed"), ("0x01 0x01", "0x03", "failed")],
)  # fmt: skip
def test_card_wear_statuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, life: str, eol: str, status: str
) -> None:
    write(tmp_path, "block/mmcblk0/device/life_time", life)
    write(tmp_path, "block/mmcblk0/device/pre_eol_info", eol)
    monkeypatch.setattr(unit_checks, "SYS", tmp_path)
    found = asyncio.run(unit_checks.check_card_wear(KIT))
    assert found["status"] == status and (status == "ok") == (found["message"] is None)


@pytest.mark.parametrize(
    ("millidegrees", "status"), [("55000", "ok"), ("72000", "warning"), ("83500", "failed")]
)
def test_cpu_temperature_statuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, millidegrees: str, status: str
) -> None:
    write(tmp_path, "class/thermal/thermal_zone0/type", "cpu-thermal")
    write(tmp_path, "class/thermal/thermal_zone0/temp", millidegrees)
    monkeypatch.setattr(unit_checks, "SYS", tmp_path)
    assert asyncio.run(unit_checks.check_cpu_temperature(KIT))["status"] == status


def test_what_a_machine_does_not_report_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unit_checks, "SYS", tmp_path)
    for check in (
        unit_checks.check_cpu_temperature,
        unit_checks.check_throttling,
        unit_checks.check_card_wear,
    ):
        found = asyncio.run(check(KIT))
        assert found["status"] == "not_available" and found["message"]["en"], check


def test_a_check_whose_device_holds_on_does_not_hold_the_run() -> None:
    """A device job cancelled mid-read holds its device until the read ends (DeviceSlot.run_job
    waits for it): the run reports the check timed out without waiting for that."""
    released: list[bool] = []

    async def holds_on(_kit: Any) -> dict[str, Any]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(1.0)  # the stuck read, ending in its own time
            released.append(True)
            raise
        return finding("ok")

    async def scenario() -> tuple[dict[str, Any], bool]:
        run = await run_checks(KIT, [Check("a.stuck", "a", holds_on, time_limit_s=0.1)], quick=False)
        still_held = not released
        await asyncio.sleep(1.5)
        return run, still_held

    run, still_held = asyncio.run(scenario())
    assert run["checks"][0]["values"]["timed_out"] is True and still_held and released == [True]


@pytest.mark.parametrize(
    ("text", "runs"),
    [("20", 20), ("0000005", 5), ("500", 500), ("501", None), ("0", None), ("1" + "0" * 1000, None),
     ("-1", None), ("", None), ("٣", None), ("5 ", None)],
)  # fmt: skip
def test_the_history_limit_is_a_whole_number_from_1_to_500(text: str, runs: int | None) -> None:
    assert history_limit(text) == runs


def test_a_peripheral_held_by_its_firmware_update_is_not_said_present() -> None:
    # Unplugged mid-update, the update holds the device and waits for it: the slot says busy.
    from kitd.services.device_checks import presence_check

    slot = SimpleNamespace(id="peripheral", kind="peripheral", uri="serial:/dev/ttyACM0")
    slot.current = lambda: ("busy", "firmware update", 0.0)
    held = {"device": "peripheral", "values": {"operation_id": "op1", "kind": "upload"}}
    kit = SimpleNamespace(firmware=SimpleNamespace(holding=lambda: held))
    found = asyncio.run(presence_check(slot).run(kit))
    assert found["status"] == "warning" and found["values"]["operation_id"] == "op1", found
    assert "firmware is being updated" in found["message"]["en"]
    # Busy with anything else (a capture), or with no update running: present.
    kit.firmware.holding = lambda: None
    assert asyncio.run(presence_check(slot).run(kit))["status"] == "ok"
    assert asyncio.run(presence_check(slot).run(SimpleNamespace()))["status"] == "ok"


def test_a_device_busy_with_a_guided_test_or_an_update_is_said_so_not_a_capture() -> None:
    from kitd.services.check_jobs import on_device

    name = Words("bantalan tanda tangan", "signature pad")
    for reason, said in (
        ("guided test", "in use by a guided test"),
        ("firmware update", "in use by a firmware update"),
        ("capturing", "in use by a capture"),
    ):
        slot = SimpleNamespace(current=lambda reason=reason: ("busy", reason, 0.0))
        result, found = asyncio.run(on_device(slot, lambda driver, cancel: None, name))
        assert result is None and found is not None and found["status"] == "not_available"
        assert said in found["message"]["en"], (reason, found)
