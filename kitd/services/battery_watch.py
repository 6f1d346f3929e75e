"""The kit's battery as the touch screen shows it: the peripheral's gauge, read every so often.

The gauge sits on the peripheral controller, whose port only its device slot's thread may
touch; so the reading is a short job of that slot, through the firmware desk (which lets an
update starting meanwhile wait for it rather than refuse). While an update runs, or the
peripheral is away, the last reading stands until it is three intervals old: the screen then
shows no battery rather than a figure that may be hours stale.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from kitd.clock import KitClock, iso
from kitd.errors import DeviceError

log = logging.getLogger("kitd.devices")

# A reading older than this many intervals is not shown.
STALE_AFTER_INTERVALS = 3
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BatteryState:
    """One reading of the gauge and when (the kit's clock) it was taken."""

    percent: int
    charging: bool
    millivolts: int
    read_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "charging": self.charging,
            "millivolts": self.millivolts,
            "read_at": iso(self.read_at),
        }


def _read_battery(driver: Any, _cancel: Any) -> Any:
    return driver.battery()


class BatteryWatch:
    """Reads the gauge every ``interval_s`` while the kit has a peripheral and it is free."""

    def __init__(self, desk: Any, clock: KitClock, interval_s: float) -> None:
        self.desk = desk
        self.clock = clock
        self.interval_s = interval_s
        self.latest: BatteryState | None = None

    async def read_now(self) -> BatteryState | None:
        """One reading, kept as the latest; None (the last one kept) when it cannot be had now."""
        slot = self.desk.peripheral()
        if slot is None or self.desk.running() is not None or slot.current()[0] != "ready":
            return None
        try:
            reading = await asyncio.wait_for(self.desk.read(slot, _read_battery), READ_TIMEOUT_S)
        except (DeviceError, TimeoutError) as exc:
            log.debug("battery gauge not read: %s", exc, extra={"device": slot.id})
            return None
        self.latest = BatteryState(reading.percent, reading.charging, reading.millivolts, self.clock.now())
        return self.latest

    async def run(self) -> None:
        """Read at once (the screen's first summary should have it), then every interval."""
        while True:
            await self.read_now()
            await asyncio.sleep(self.interval_s)

    def describe(self) -> dict[str, Any] | None:
        """The latest reading for the screen, or None when there is none fresh enough."""
        latest = self.latest
        if latest is None:
            return None
        age_s = (self.clock.now() - latest.read_at).total_seconds()
        if not -self.interval_s <= age_s <= STALE_AFTER_INTERVALS * self.interval_s:
            return None
        return latest.to_json()
