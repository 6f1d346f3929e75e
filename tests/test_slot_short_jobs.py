"""A device slot's short jobs (a gauge read, a light switched) wait for one another briefly instead
of failing busy; a long job still makes them busy. Found in CI: the screen's battery read, every
half second in a test, made the diagnostics' own gauge read answer not_available."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kitd.drivers.facts import DeviceFacts
from kitd.errors import DeviceBusy
from kitd.services.slots import DeviceSlot


class SlowGauge:
    def open(self) -> DeviceFacts:
        return DeviceFacts(model="gauge", serial=None, firmware=None, detail={})

    def close(self) -> None:
        pass

    def is_present(self) -> bool:
        return True

    def read(self, seconds: float) -> str:
        time.sleep(seconds)
        return "read"


async def _ready_slot() -> tuple[DeviceSlot, asyncio.Task[None]]:
    slot = DeviceSlot("peripheral", "smp:fake", "peripheral", SlowGauge, claim_key="")
    supervisor = asyncio.create_task(slot.supervise())
    await asyncio.wait_for(slot.looked_at.wait(), 5)
    assert slot.current()[0] == "ready"
    return slot, supervisor


def test_two_short_jobs_at_once_both_run() -> None:
    async def scenario() -> list[Any]:
        slot, supervisor = await _ready_slot()
        try:
            first = asyncio.create_task(slot.run_when_free(lambda driver, _cancel: driver.read(0.3)))
            await asyncio.sleep(0.1)
            assert slot.holds_brief_job()  # what a firmware update's start waits out
            await first
            return await asyncio.gather(
                slot.run_when_free(lambda driver, _cancel: driver.read(0.2)),
                slot.run_when_free(lambda driver, _cancel: driver.read(0.2)),
                return_exceptions=True,
            )
        finally:
            supervisor.cancel()
            await slot.shutdown()

    assert asyncio.run(scenario()) == ["read", "read"]


def test_a_long_job_still_makes_a_short_one_busy() -> None:
    async def scenario() -> None:
        slot, supervisor = await _ready_slot()
        try:
            long_job = asyncio.create_task(slot.run_job(lambda driver, _cancel: driver.read(1.0)))
            await asyncio.sleep(0.1)
            assert not slot.holds_brief_job()
            with pytest.raises(DeviceBusy):
                await slot.run_when_free(lambda driver, _cancel: driver.read(0.0), wait_s=0.2)
            assert await long_job == "read"
        finally:
            supervisor.cancel()
            await slot.shutdown()

    asyncio.run(scenario())
