"""The touch screen on a kit of its own, in a real browser against kitd and the simulators:
a capture's attempts running out (fingerprint.max_attempts, which the other screen tests' kit
does not set: their captures end by time or by the officer), and the kit's clock set apart
from the machine's (a laptop's correction), which the page schedules by."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from hil.browser import (
    Screen,
    ScreenKit,
    expect,
    fill,
    need_browser,
    new_screen,
    open_browser,
    screen_on,
    start_screen_kit,
)
from hil.link_cut import CuttableLink
from hil.rig import wait_until
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from tests.test_hil_visits import items
from tests.test_hil_visits import take as take_by_api
from tests.test_screen import hm
from tests.test_screen_visit import CAPTURE_S, ID, KIT_ZONE, action, identity, mark, on, open_visit, take

ATTEMPTS = 6  # presses before a gated capture gives up with its best (category lainnya: x1)
REPLAY_EVENTS = 2


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    kit = start_screen_kit(
        tmp_path_factory.mktemp("screen-attempts"),
        {
            "kit.timezone": KIT_ZONE,
            "fingerprint.max_attempts": ATTEMPTS,
            "fingerprint.capture_timeout_s": 60.0,
            # Few events kept for a reconnecting page: a capture's few presses are more.
            "api.replay_events": REPLAY_EVENTS,
        },
    )
    try:
        kit.post_orders([sample_order("ATT-001", category="lainnya")])
        yield kit
    finally:
        kit.stop()


@pytest.fixture(scope="module")
def browser(kit: ScreenKit) -> Iterator[Any]:
    with open_browser() as browser:
        yield browser


@pytest.fixture
def screen(kit: ScreenKit, browser: Any, rig_logs: Any) -> Iterator[Screen]:
    for name, source in kit.logs().items():
        rig_logs.add(name, source)
    try:
        with screen_on(kit, browser, "800x480", "Asia/Jakarta") as screen:
            yield screen
    finally:
        kit.end_visits()


def reschedule_dialog(page: Any, order_id: str) -> Any:
    """The order's outcome dialog, opened at the door, with Rescheduled chosen."""
    on(page, "orders").locator(f'[data-order-id="{order_id}"]').click()
    on(page, "order").get_by_test_id("door-outcome").click()
    dialog = page.get_by_test_id("outcome-dialog")
    dialog.get_by_role("radio", name=ID["outcome.rescheduled"]).click()
    return dialog


def saved_as(page: Any, kit: ScreenKit, dialog: Any, start: str, end: str) -> None:
    """Save the dialog's outcome; the visit ended, rescheduled from `start` to `end`."""
    dialog.get_by_test_id("outcome-submit").click()
    visit = on(page, "visit")
    expect(visit).to_have_attribute("data-state", "ended")
    ended = kit.api("officer", "GET", f"/api/v1/visits/{visit.get_attribute('data-visit-id')}")
    assert ended["outcome"]["reschedule"] == {"start": start, "end": end}
    visit.get_by_test_id("back").click()


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


def test_a_session_over_before_the_page_followed_it_is_said(screen: Screen, kit: ScreenKit) -> None:
    """The item's session used its attempts up while no page followed it (the page closed, or
    a few quick presses over before the visit naming the session reached it): its end event
    is gone by. The page opened after says the attempts are used up, not "Menunggu..." until
    the officer taps again."""
    page = screen.page
    page.goto("about:blank")
    kit.post_orders(
        [
            sample_order(
                "ATT-GONE",
                category="lainnya",
                name="Tukinah",
                nik="3576014101400008",
                birth_date="1940-01-01",
            )
        ]
    )
    visit = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "ATT-GONE"})
    kit.api(
        "officer",
        "POST",
        f"/api/v1/visits/{visit['id']}/identity",
        {"present": ["Tukinah"], "consent_by": "applicant"},
    )
    reader = kit.sims["fingerprint"]
    reader.control("condition light")  # every press too light: none passes
    try:
        visit = kit.api("officer", "POST", f"/api/v1/visits/{visit['id']}/items/finger:1/start")
        (running,) = [i for i in visit["items"] if i["item"] == "finger:1"]
        session = f"/api/v1/sessions/{running['session_id']}"
        ended = wait_until(
            lambda: (s := kit.api("officer", "GET", session))["state"] != "running" and s,
            "finger:1's session ends",
            CAPTURE_S / 1000,
        )
    finally:
        reader.control("condition good")
    assert (ended["state"], ended["ended_by"]) == ("forced", "attempt_limit"), ended
    kit.sign_in_browser(page)  # back at the open visit, its first finger
    feedback = on(page, "visit").get_by_test_id("feedback")
    expect(feedback).to_have_attribute("data-code", "attempts_out")
    expect(mark(page, "finger:1")).not_to_have_attribute("data-status", "captured")
    take(page, "finger:1", ID, start="action.retry")


def test_a_page_back_too_late_for_a_capture_s_end_is_told_it(
    kit: ScreenKit, browser: Any, rig_logs: Any
) -> None:
    """The link between the page and the kit goes down while a capture waits for a finger, and
    comes back only after the finger's presses used the attempts up: more events than the kit
    keeps for a page that reconnects (api.replay_events). Its stream says `gap`; the page asks
    the kit and says the attempts are used up, not "Menunggu..." until the officer taps."""
    for name, source in kit.logs().items():
        rig_logs.add(name, source)
    kit.post_orders(
        [
            sample_order(
                "ATT-GAP", category="lainnya", name="Sumini", nik="3576014101400016", birth_date="1940-01-01"
            )
        ]
    )
    visit = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "ATT-GAP"})
    body = {"present": ["Sumini"], "consent_by": "applicant"}
    kit.api("officer", "POST", f"/api/v1/visits/{visit['id']}/identity", body)
    reader = kit.sims["fingerprint"]
    link = CuttableLink(("127.0.0.1", int(kit.url.rsplit(":", 1)[1])))
    screen = new_screen(browser, "800x480", timezone_id="Asia/Jakarta")
    page = screen.page
    try:
        kit.sign_in_browser(page, url=link.url)  # the page's every request goes through the link
        reader.control("condition light")  # every press too light: none passes
        reader.control("finger off")
        action(page, ID, "action.start").click()
        feedback = on(page, "visit").get_by_test_id("feedback")
        expect(feedback).to_have_text(ID["capture.waiting"])  # the page follows the session
        logged_before = len(kit.kitd.logs())  # the module's kit: only what this test makes counts
        link.cut()
        reader.control("finger on")
        running = items(kit.api("officer", "GET", f"/api/v1/visits/{visit['id']}"))["finger:1"]
        session = f"/api/v1/sessions/{running['session_id']}"
        ended = wait_until(
            lambda: (s := kit.api("officer", "GET", session))["state"] != "running" and s,
            "finger:1's session ends",
            CAPTURE_S / 1000,
        )
        assert (ended["state"], ended["ended_by"]) == ("forced", "attempt_limit"), ended
        # Meanwhile the reader is unplugged and plugged in again: its events come after the
        # session's end, which the kit no longer keeps when the page is back.
        reader.control("unplug")
        kit.kitd.wait_for_status("fingerprint", "disconnected")
        reader.control("replug")
        kit.wait_ready("fingerprint")
        link.mend()
        # The page's stream comes back on its own (EventSource tries again every few seconds).
        expect(feedback).to_have_attribute("data-code", "attempts_out", timeout=30_000)
        assert "event stream: a client came back after event" in kit.kitd.logs()[logged_before:]
        reader.control("condition good")
        take(page, "finger:1", ID, start="action.retry")
    finally:
        reader.control("condition good")
        screen.close()
        link.close()
        kit.end_visits()
    # What the cut did to the page's requests is this test's doing; nothing else may go wrong.
    cut = f"request failed: {link.url}/api/v1/"
    faults = [fault for fault in screen.faults() if not fault.startswith(cut)]
    assert not faults, "the screen had faults:\n" + "\n".join(faults)


def test_the_restart_note_names_only_what_the_restart_took(screen: Screen, kit: ScreenKit) -> None:
    """The power fails with finger 1 captured: after the restart finger 1 is to retake and the
    visit says the restart took it. Once it is taken again, finger 2's capture is interrupted by
    a Cancel the officer then carries on from: finger 2 is to retake for that, and the visit
    does not say the restart took it."""
    page = screen.page
    page.goto("about:blank")
    kit.post_orders(
        [sample_order("ATT-POWER", name="Sarni", nik="3576014101400010", birth_date="1940-01-01")]
    )
    visit = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "ATT-POWER"})
    path = f"/api/v1/visits/{visit['id']}"
    kit.api("officer", "POST", f"{path}/identity", {"present": ["Sarni"], "consent_by": "applicant"})

    take_by_api(DaemonClient(kit.kitd.url, kit.kitd.sign_in("officer")), visit, "finger:1")
    kit.kill_and_restart()
    kit.sign_in_browser(page)
    expect(on(page, "visit").get_by_test_id("resumed")).to_contain_text(ID["finger.1"])
    page.goto("about:blank")
    officer = DaemonClient(kit.kitd.url, kit.kitd.sign_in("officer"))  # the restart signed all out
    take_by_api(officer, visit, "finger:1")
    reader = kit.sims["fingerprint"]
    reader.control("condition light")  # finger 2 never passes: its session runs on
    try:
        kit.api("officer", "POST", f"{path}/items/finger:2/start")
        wait_until(
            lambda: items(officer.checked("GET", path).json())["finger:2"]["attempts"],
            "finger:2 pressed",
            CAPTURE_S / 1000,
        )
        kit.api("officer", "POST", f"{path}/cancel")
        kit.api("officer", "POST", f"{path}/carry-on")
    finally:
        reader.control("condition good")
    kit.sign_in_browser(page)
    expect(mark(page, "finger:2")).to_have_attribute("data-status", "to_retake")
    expect(mark(page, "finger:1")).to_have_attribute("data-status", "captured")
    expect(on(page, "visit").get_by_test_id("resumed")).to_have_count(0)


def test_a_visit_may_be_rescheduled_for_later_the_same_day(screen: Screen, kit: ScreenKit) -> None:
    """The family asks the officer to come back this afternoon: today is offered from the next
    half hour on the kit's clock; the end steps in half hours up to 23.59 and back to 23.30;
    late in the evening today is no longer offered."""
    page = screen.page
    day = kit.today()
    # The kit's clock (a laptop's correction) reads 14.10; the page's own clock, the machine's
    # time, does not matter: the page counts on the kit's.
    page.goto("about:blank")  # nothing of the page's left to fail while kitd restarts
    kit.kill_and_restart(clock_at=kit.at(day, 14, 10))
    kit.post_orders(
        [
            sample_order("SCR-SOON", name="Painem", nik="3576014101400002", birth_date="1940-01-01", sex="P"),
            sample_order("SCR-LATE", name="Karto", nik="3576010101410003", birth_date="1941-01-01", sex="L"),
        ]
    )
    kit.sign_in_browser(page)
    clock = page.get_by_test_id("clock")
    expect(clock).to_contain_text(re.compile(f"{hm(14, 10, 'id')}|{hm(14, 11, 'id')}"))

    def press(dialog: Any, step: str, what: str, times: int = 1) -> None:
        button = dialog.get_by_role("button", name=fill(ID[step], what=ID[what]))
        for _ in range(times):
            button.click()

    dialog = reschedule_dialog(page, "SCR-SOON")
    shown = {key: dialog.get_by_test_id(f"resched-{key}") for key in ("date", "from", "to")}
    expect(shown["from"]).to_have_text(hm(9, 0, "id"))  # tomorrow, to begin with
    tomorrow = shown["date"].inner_text()
    press(dialog, "outcome.earlier", "outcome.date")
    expect(shown["date"]).not_to_have_text(tomorrow)
    expect(shown["from"]).to_have_text(hm(14, 30, "id"))  # not 09.00: that is past
    expect(shown["to"]).to_have_text(hm(15, 30, "id"))
    today = shown["date"].inner_text()
    press(dialog, "outcome.earlier", "outcome.from")
    press(dialog, "outcome.earlier", "outcome.date")  # yesterday is never offered
    expect(shown["from"]).to_have_text(hm(14, 30, "id"))
    expect(shown["date"]).to_have_text(today)
    press(dialog, "outcome.later_step", "outcome.to", times=20)
    expect(shown["to"]).to_have_text(hm(23, 59, "id"))
    press(dialog, "outcome.earlier", "outcome.to")
    expect(shown["to"]).to_have_text(hm(23, 30, "id"))
    press(dialog, "outcome.later_step", "outcome.to")
    saved_as(page, kit, dialog, f"{day.isoformat()}T14:30:00+08:00", f"{day.isoformat()}T23:59:00+08:00")

    page.goto("about:blank")
    kit.kill_and_restart(clock_at=kit.at(day, 23, 40))  # no half hour left to start in today
    kit.sign_in_browser(page)
    dialog = reschedule_dialog(page, "SCR-LATE")
    shown = {key: dialog.get_by_test_id(f"resched-{key}") for key in ("date", "from")}
    expect(shown["from"]).to_have_text(hm(9, 0, "id"))
    tomorrow = shown["date"].inner_text()
    press(dialog, "outcome.earlier", "outcome.date")
    expect(shown["date"]).to_have_text(tomorrow)
    expect(shown["from"]).to_have_text(hm(9, 0, "id"))
    dialog.get_by_test_id("outcome-close").click()


def test_a_reschedule_dialog_left_open_past_its_time_moves_on(screen: Screen, kit: ScreenKit) -> None:
    """The officer picks today's first half hour, 14.30, and is called away; back after it has
    begun, they tap Save: the kit refuses a start already past, the dialog says so and moves on
    to 15.00 (the steppers offer nothing earlier), and a second tap saves that."""
    page = screen.page
    day = kit.today()
    page.goto("about:blank")
    # 30 s before 14.30 on the kit's clock: time to sign in and open the dialog before it.
    kit.kill_and_restart(clock_at=kit.at(day, 14, 29) + dt.timedelta(seconds=30))
    kit.post_orders(
        [sample_order("SCR-PAST", name="Tumini", nik="3576014101400009", birth_date="1940-01-01", sex="P")]
    )
    kit.sign_in_browser(page)
    dialog = reschedule_dialog(page, "SCR-PAST")
    dialog.get_by_role("button", name=fill(ID["outcome.earlier"], what=ID["outcome.date"])).click()
    shown = {key: dialog.get_by_test_id(f"resched-{key}") for key in ("from", "to")}
    expect(shown["from"]).to_have_text(hm(14, 30, "id"))
    expect(page.get_by_test_id("clock")).to_contain_text(hm(14, 30, "id"), timeout=90_000)
    dialog.get_by_test_id("outcome-submit").click()
    expect(dialog.get_by_test_id("outcome-error")).to_contain_text(ID["error.appointment_past"])
    expect(shown["from"]).to_have_text(hm(15, 0, "id"))
    expect(shown["to"]).to_have_text(hm(16, 0, "id"))
    screen.look("outcome-appointment-past")
    saved_as(page, kit, dialog, f"{day.isoformat()}T15:00:00+08:00", f"{day.isoformat()}T16:00:00+08:00")


def test_a_visit_ended_on_the_kits_socket_is_said_to_be_a_technicians(screen: Screen, kit: ScreenKit) -> None:
    """An outcome given with no sign-in (kitctl on the kit's socket) is said to be a technician's
    on the kit, not "system"."""
    page = screen.page
    kit.post_orders(
        [sample_order("ATT-SOCKET", name="Tukiyem", nik="3576014101400007", birth_date="1940-01-01")]
    )
    opened = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "ATT-SOCKET"})
    on_the_kit = DaemonClient(f"unix:{kit.kitd.socket_path}", None)
    on_the_kit.checked("POST", f"/api/v1/visits/{opened['id']}/cancel")
    on_the_kit.checked("POST", f"/api/v1/visits/{opened['id']}/outcome", {"code": "not_home"})
    kit.sign_in_browser(page, "officer")
    notice = on(page, "orders").locator(f'[data-testid="ended-by-other"][data-visit-id="{opened["id"]}"]')
    expect(notice).to_contain_text(ID["orders.by_system"])
    expect(notice).to_contain_text(ID["outcome.not_home"])
