"""kitd's pin link (kitd/drivers/pin_link.py) against the panel simulator in its own process:
bouncing contacts debounced to one press, LEDs and tones recorded by the simulator, and the
simulator going away (unplugged, killed) without anything failing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hil.rig import wait_until
from kitd.drivers.panel import PanelDriver, PanelWiring
from kitd.errors import DeviceGone


def history(sim: Any, since: int = 0) -> list[dict[str, Any]]:
    return json.loads(sim.control(f"history {since}"))["changes"]


@pytest.fixture
def panel(start_simulator):  # noqa: ANN001, ANN201
    sim = start_simulator("hil.panel_sim", ["--bounces", "4"])
    driver = PanelDriver.at(f"socket:{sim.addresses['pins']}", PanelWiring(hold_time_s=0.5))
    told: list[tuple[str, str]] = []
    driver.on_button = lambda name, what: told.append((name, what))
    driver.open()
    yield sim, driver, told
    driver.close()


def test_a_bouncing_press_is_one_press(panel) -> None:  # noqa: ANN001
    sim, driver, told = panel
    sim.control("tap capture")
    sim.control("tap retry 0.01")  # shorter than the bounce window: still pressed, then released
    wait_until(lambda: len(told) >= 4, "two presses and releases", 10)
    time.sleep(0.3)  # any stray edge would have come by now
    assert told == [
        ("capture", "pressed"),
        ("capture", "released"),
        ("retry", "pressed"),
        ("retry", "released"),
    ]
    sim.control("hold cancel 0.8")
    wait_until(lambda: ("cancel", "released") in told, "cancel released", 10)
    assert told[4:] == [("cancel", "pressed"), ("cancel", "held"), ("cancel", "released")]


def test_leds_and_tones_are_recorded_with_their_times(panel) -> None:  # noqa: ANN001
    sim, driver, _ = panel
    driver.show({"ready": "on", "error": "on"})
    driver.play([(880.0, 0.1), (None, 0.1), (1320.0, 0.1)])
    changes = wait_until(lambda: (h := history(sim)) and len(h) >= 6 and h, "six changes", 10)
    assert [(c["part"], c["value"]) for c in changes if c["part"] != "buzzer"] == [("ready", 1), ("error", 1)]
    assert [c["value"] for c in changes if c["part"] == "buzzer"] == [880.0, 0.0, 1320.0, 0.0]
    times = [c["t"] for c in changes]
    assert times == sorted(times)
    assert json.loads(sim.control("state"))["leds"] == {"ready": 1.0, "capturing": 0.0, "error": 1.0}


def test_the_simulator_vanishing_disconnects_and_nothing_fails(panel) -> None:  # noqa: ANN001
    sim, driver, _ = panel
    assert driver.is_present()
    sim.control("unplug")
    with pytest.raises(DeviceGone, match="closed the connection|stopped taking output|went away"):
        wait_until(lambda: not driver.is_present(), "gone", 10)
    driver.show({"ready": "on"})  # dropped, not raised
    driver.play([(880.0, 0.05)])
    time.sleep(0.2)
    driver.close()
    with pytest.raises(DeviceGone):
        driver.open()  # refused while unplugged
    sim.control("replug")
    driver.open()
    assert driver.is_present()
    sim.stop()  # killed outright
    with pytest.raises(DeviceGone):
        wait_until(lambda: not driver.is_present(), "gone", 10)
