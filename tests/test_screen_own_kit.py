"""The touch screen when a capture's attempts run out (fingerprint.max_attempts), in a real
browser against kitd and the simulators: the screen stops coaching and says what is left to
do, and a retry with a firm press captures the finger. A kit of its own: the other screen
tests' kit has no attempt limit (their captures end by time or by the officer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hil.browser import (
    Screen,
    ScreenKit,
    expect,
    fill,
    need_browser,
    open_browser,
    screen_on,
    start_screen_kit,
)
from hil.sample_orders import sample_order
from tests.test_screen_visit import CAPTURE_S, ID, KIT_ZONE, action, identity, mark, open_visit, take

ATTEMPTS = 3  # presses before a gated capture gives up with its best (category lainnya: x1)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    kit = start_screen_kit(
        tmp_path_factory.mktemp("screen-attempts"),
        {
            "kit.timezone": KIT_ZONE,
            "fingerprint.max_attempts": ATTEMPTS,
            "fingerprint.capture_timeout_s": 60.0,
        },
    )
    try:
        kit.post_orders([sample_order("ATT-001", category="lainnya")])
        yield kit
    finally:
        kit.stop()


@pytest.fixture
def screen(kit: ScreenKit, rig_logs: Any) -> Iterator[Screen]:
    for name, source in kit.logs().items():
        rig_logs.add(name, source)
    with open_browser() as browser, screen_on(kit, browser, "800x480", "Asia/Jakarta") as screen:
        yield screen


def test_attempts_used_up_say_so_and_a_retry_captures(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    open_visit(page, kit, "ATT-001", ID)
    identity(page, ID)
    reader = kit.sims["fingerprint"]
    reader.control("condition light")  # every press too light: none passes
    try:
        action(page, ID, "action.start").click()
        feedback = page.get_by_test_id("feedback")
        expect(feedback).to_have_attribute("data-code", "attempts_out", timeout=CAPTURE_S)
        expect(feedback).to_have_text(
            fill(ID["capture.attempts_out"], retry=ID["action.retry"], accept=ID["action.accept"])
        )
        expect(mark(page, "finger:1")).not_to_have_attribute("data-status", "captured")
        screen.look("visit-attempts-out")
    finally:
        reader.control("condition good")
    take(page, "finger:1", ID, start="action.retry")
