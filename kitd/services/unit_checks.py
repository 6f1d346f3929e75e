"""Diagnostics of the unit itself: free space, the SD card's wear, the CPU's temperature and
throttling, the clock, the battery.

Its one job: small pure readers of what Linux and the Raspberry Pi firmware report under
``/sys`` (each takes the root, so that tests give a folder of their own), and the checks built
on them. Where a machine does not report a fact (an SD card with no wear estimate, a PC with no
firmware throttling flags, no peripheral controller with its battery gauge) the check is
``not_available``, never a guess.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kitd.clock import EARLIEST, iso
from kitd.errors import KitError
from kitd.services.diagnostics import FAILED, NOT_AVAILABLE, OK, WARNING, Check, Words, finding
from kitd.services.slots import peripheral_slot
from kitd.store.audit import latest_entry_time

SYS = Path("/sys")
# The Pi starts capping the ARM's frequency at 80 °C (soft limit 60-70 °C on some boards):
# above WARM_C the kit is in a hot room or its case is closed over the fan.
WARM_C = 70.0
HOT_C = 80.0
# eMMC 5.0 life-time estimates count used life in 10% steps (0x01: 0-10%, 0x0A: 90-100%,
# 0x0B: beyond); pre-EOL: 0x01 normal, 0x02 warning (80% of reserved blocks used), 0x03 urgent.
WORN_STEP = 0x08
WORN_OUT_STEP = 0x0A
# A visit of an hour or two takes about a fifth of the battery: below this, charge before the next
# one; below BATTERY_EMPTY_PERCENT the kit may stop in the middle of a visit.
BATTERY_LOW_PERCENT = 25
BATTERY_EMPTY_PERCENT = 10
# The Pi firmware's get_throttled bits: now (0-3) and since boot (16-19).
THROTTLE_BITS = {
    0: "under_voltage",
    1: "frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_since_boot",
    17: "frequency_capped_since_boot",
    18: "throttled_since_boot",
    19: "soft_temperature_limit_since_boot",
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


# --- pure readers ------------------------------------------------------------------------------


def cpu_temperature_c(root: Path = SYS) -> float | None:
    """The hottest thermal zone's temperature (°C), preferring the CPU's; None where none."""
    readings: list[tuple[bool, float]] = []
    for zone in sorted((root / "class" / "thermal").glob("thermal_zone*")):
        text = _read(zone / "temp")
        try:
            value = int(text or "") / 1000.0
        except ValueError:
            continue
        kind = (_read(zone / "type") or "").lower()
        readings.append(("cpu" in kind or "soc" in kind, value))
    if not readings:
        return None
    cpu = [value for is_cpu, value in readings if is_cpu]
    return max(cpu or [value for _, value in readings])


def throttling_flags(root: Path = SYS) -> list[str] | None:
    """The Pi firmware's throttling flags set now or since boot; None where not reported."""
    text = _read(root / "devices" / "platform" / "soc" / "soc:firmware" / "get_throttled")
    if text is None:
        return None
    try:
        bits = int(text, 16)
    except ValueError:
        return None
    return [name for bit, name in THROTTLE_BITS.items() if bits >> bit & 1]


def card_wear(root: Path = SYS) -> dict[str, Any] | None:
    """The first MMC card's life-time estimates and pre-EOL state, where it reports them."""
    for device in sorted((root / "block").glob("mmcblk[0-9]")):
        life = _read(device / "device" / "life_time")
        eol = _read(device / "device" / "pre_eol_info")
        if life is None and eol is None:
            continue
        try:
            steps = [int(part, 16) for part in (life or "").split()]
            pre_eol = int(eol, 16) if eol else None
        except ValueError:
            continue
        return {"card": device.name, "life_time_steps": steps, "pre_eol": pre_eol}
    return None


# --- checks ------------------------------------------------------------------------------------


async def check_disk(kit: Any) -> dict[str, Any]:
    summary = await kit.in_database(kit.outbox.summary, kit.database)
    free, reserve = summary["free_bytes"], summary["reserve_bytes"]
    values = {"free_bytes": free, "reserve_bytes": reserve}
    if free is None:
        return finding(
            FAILED,
            values,
            Words(
                "Ruang penyimpanan tidak dapat dibaca: periksa kartu SD.",
                "The free space cannot be read: check the SD card.",
            ),
        )
    if free < reserve:
        return finding(
            FAILED,
            values,
            Words(
                "Ruang penyimpanan kurang dari cadangan satu kunjungan: sinkronkan dengan laptop lalu hapus "
                "bundel yang sudah terkirim.",
                "Less free space than one visit needs: sync with a laptop, then erase delivered bundles.",
            ),
        )
    if free < 3 * reserve:
        return finding(
            WARNING,
            values,
            Words(
                "Ruang penyimpanan hampir habis (kurang dari tiga kunjungan): sinkronkan dengan laptop.",
                "Free space for fewer than three visits: sync with a laptop soon.",
            ),
        )
    return finding(OK, values)


async def check_card_wear(kit: Any) -> dict[str, Any]:
    wear = card_wear(SYS)
    if wear is None:
        return finding(
            NOT_AVAILABLE,
            {},
            Words("Kartu SD ini tidak melaporkan keausannya.", "This SD card does not report its wear."),
        )
    worst = max(wear["life_time_steps"] or [0])
    if wear["pre_eol"] == 0x03 or worst >= WORN_OUT_STEP:
        return finding(
            FAILED,
            wear,
            Words(
                "Kartu SD hampir aus: ganti kartu SD segera setelah semua bundel terkirim.",
                "The SD card is nearly worn out: replace it as soon as every bundle is delivered.",
            ),
        )
    if wear["pre_eol"] == 0x02 or worst >= WORN_STEP:
        return finding(
            WARNING,
            wear,
            Words(
                "Kartu SD mulai aus: siapkan penggantinya.",
                "The SD card is wearing out: have a replacement ready.",
            ),
        )
    return finding(OK, wear)


async def check_cpu_temperature(kit: Any) -> dict[str, Any]:
    temperature = cpu_temperature_c(SYS)
    if temperature is None:
        return finding(
            NOT_AVAILABLE,
            {},
            Words(
                "Suhu CPU tidak dilaporkan mesin ini.", "This machine does not report its CPU temperature."
            ),
        )
    values = {"celsius": round(temperature, 1), "warm_c": WARM_C, "hot_c": HOT_C}
    if temperature >= HOT_C:
        return finding(
            FAILED,
            values,
            Words(
                "CPU terlalu panas: matikan kit, biarkan dingin di tempat teduh, periksa kipas.",
                "The CPU is too hot: switch the kit off, let it cool in the shade, check its fan.",
            ),
        )
    if temperature >= WARM_C:
        return finding(
            WARNING,
            values,
            Words(
                "CPU panas: jauhkan kit dari sinar matahari dan jangan tutup lubang udaranya.",
                "The CPU is warm: keep the kit out of the sun and its vents uncovered.",
            ),
        )
    return finding(OK, values)


async def check_throttling(kit: Any) -> dict[str, Any]:
    flags = throttling_flags(SYS)
    if flags is None:
        return finding(
            NOT_AVAILABLE,
            {},
            Words(
                "Mesin ini tidak melaporkan pembatasan daya atau suhu.",
                "This machine does not report power or temperature throttling.",
            ),
        )
    values = {"flags": flags}
    now = [f for f in flags if not f.endswith("_since_boot")]
    if "under_voltage" in now or "under_voltage_since_boot" in flags:
        return finding(
            FAILED if now else WARNING,
            values,
            Words(
                "Tegangan listrik kurang: gunakan adaptor dan kabel daya bawaan kit, atau isi baterai.",
                "Under-voltage: use the kit's own power adapter and cable, or charge its battery.",
            ),
        )
    if flags:
        return finding(
            WARNING,
            values,
            Words(
                "CPU diperlambat karena panas: jauhkan kit dari sinar matahari.",
                "The CPU was slowed down by heat: keep the kit out of the sun.",
            ),
        )
    return finding(OK, values)


async def check_clock(kit: Any) -> dict[str, Any]:
    now = kit.clock.now()
    latest = await kit.in_database(latest_entry_time, kit.database)
    described = kit.clock.describe()
    values: dict[str, Any] = {
        "now": iso(now),
        "confirmed": described["confirmed"],
        "last_audit_entry": None if latest is None else iso(latest),
        "went_back": described["went_back"],
    }
    # The audit log's last entry may be this run's own start entry, written a moment ago.
    behind = latest is not None and now < latest - dt.timedelta(seconds=5)
    if now < EARLIEST or behind or described["went_back"]:
        return finding(
            FAILED,
            values,
            Words(
                "Jam kit salah (lebih awal dari catatan terakhirnya): "
                "sinkronkan dengan laptop sebelum kunjungan.",
                "The kit's clock is wrong (behind its own last record): sync with a laptop before a visit.",
            ),
        )
    if not described["confirmed"]:
        return finding(
            WARNING,
            values,
            Words(
                "Jam kit belum dikonfirmasi laptop sejak dinyalakan: sinkronkan bila sempat.",
                "No laptop has confirmed the kit's clock since it started: sync when you can.",
            ),
        )
    return finding(OK, values)


async def check_battery(kit: Any) -> dict[str, Any]:
    """The gauge on the peripheral controller, read as a job of its device slot (the slot's thread
    owns the port); not_available on a kit without one, or while it is away or busy."""
    slot = peripheral_slot(kit)
    if slot is None:
        return finding(
            NOT_AVAILABLE,
            {},
            Words("Kit ini tidak punya pengukur baterai.", "This kit has no battery gauge."),
        )
    try:
        reading = await slot.run_when_free(lambda driver, _cancel: driver.battery())
    except KitError as exc:
        return finding(
            NOT_AVAILABLE,
            {"device": slot.id, "reason": str(exc)},
            Words(
                f"Pengukur baterai tidak dapat dibaca sekarang ({exc}).",
                f"The battery gauge cannot be read now ({exc}).",
            ),
        )
    values = {"millivolts": reading.millivolts, "percent": reading.percent, "charging": reading.charging}
    if reading.charging or reading.percent > BATTERY_LOW_PERCENT:
        return finding(OK, values)
    if reading.percent > BATTERY_EMPTY_PERCENT:
        return finding(
            WARNING,
            values,
            Words(
                f"Baterai tinggal {reading.percent}%: isi daya sebelum kunjungan berikutnya.",
                f"The battery is down to {reading.percent}%: charge it before the next visit.",
            ),
        )
    return finding(
        FAILED,
        values,
        Words(
            f"Baterai hampir habis ({reading.percent}%): isi daya sekarang, kit bisa mati saat kunjungan.",
            f"The battery is nearly empty ({reading.percent}%): charge it now, the kit may stop mid-visit.",
        ),
    )


UNIT_CHECKS = (
    Check("unit.disk", None, check_disk, quick=True, time_limit_s=2.0, visit_critical=True),
    Check("unit.sd_wear", None, check_card_wear, time_limit_s=2.0),
    Check("unit.cpu_temperature", None, check_cpu_temperature, quick=True, time_limit_s=2.0),
    Check("unit.throttling", None, check_throttling, time_limit_s=2.0),
    Check("unit.clock", None, check_clock, quick=True, time_limit_s=2.0),
    Check("unit.battery", None, check_battery, time_limit_s=2.0),
)
