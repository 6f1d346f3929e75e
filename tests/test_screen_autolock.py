"""The touch screen's auto-lock in a real browser (Debian's Chromium through Playwright)
against the real kitd on the simulators, started with auth.idle_lock_s = 5 s.

An officer signs in on the keypad and starts a visit; left alone, the screen goes back
to sign-in with the auto-lock message (the status bar's polling is no use, so it does not
keep the sign-in alive); the officer signs in again and the visit started before is
still there. Its own daemon: a short idle lock would end every other test's sign-in.
Between the officer's steps the test takes no longer than the idle time (no accessibility
run there: the sign-in would end under it; the orders screen with the open visit is
checked by tests/test_screen.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hil.browser import (
    Screen,
    ScreenKit,
    catalogue,
    expect,
    need_browser,
    open_browser,
    screen_on,
    sign_in_on_screen,
    start_screen_kit,
    type_on_keypad,
)
from hil.rig import simulation_officer
from hil.sample_orders import sample_order

IDLE_LOCK_S = 5
OFFICER = simulation_officer("officer")
ID = catalogue("id")


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    kit = start_screen_kit(tmp_path_factory.mktemp("screen-autolock"), {"auth.idle_lock_s": IDLE_LOCK_S})
    try:
        day = kit.today().isoformat()
        appointment = {"start": f"{day}T10:00:00+07:00", "end": f"{day}T11:00:00+07:00"}
        kit.post_orders([sample_order("LOCK-001", appointment=appointment)])
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
    with screen_on(kit, browser) as screen:
        yield screen


def test_the_screen_locks_when_idle_and_the_visit_is_kept(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    sign_in_on_screen(page, OFFICER["nip"], OFFICER["pin"])
    listing = page.locator('main[data-screen="orders"]')
    listing.locator('[data-order-id="LOCK-001"]').click()
    detail = page.locator('main[data-screen="order"]')
    detail.get_by_role("button", name=ID["order.start"], exact=True).click()
    visit_screen = page.locator('main[data-screen="visit"]')
    expect(visit_screen).to_be_visible()
    (visit,) = kit.api("technician", "GET", "/api/v1/visits")
    expect(visit_screen).to_contain_text(visit["id"])
    # Hands off: the summary is polled every 2 s and must not keep the sign-in alive.
    signin = page.locator('main[data-screen="signin"]')
    expect(signin).to_be_visible(timeout=(IDLE_LOCK_S + 20) * 1000)
    expect(signin.get_by_role("alert")).to_have_text(ID["signin.idle"])
    # The NIP is kept for the one who was signed in; nothing of the visit shows any more.
    expect(page.get_by_label(ID["signin.nip"], exact=True)).to_have_value(OFFICER["nip"])
    expect(page.get_by_label(ID["signin.pin"], exact=True)).to_have_value("")
    expect(page.get_by_test_id("status-bar")).not_to_contain_text(OFFICER["name"])
    expect(page.get_by_text(visit["id"])).to_have_count(0)
    screen.look("signin-auto-locked")
    # The kit agrees: that sign-in has ended.
    me = page.context.request.get(kit.url + "/api/v1/auth/me")
    assert me.status == 401, me.status
    # Signing in again goes straight back to the visit started before.
    type_on_keypad(page, "pin", OFFICER["pin"])
    page.get_by_role("button", name=ID["signin.submit"], exact=True).click()
    expect(page.locator('main[data-screen="visit"]')).to_contain_text(visit["id"])
    screen.look("visit-after-auto-lock", sizes=("800x480",), check=False)
    assert [v["id"] for v in kit.api("technician", "GET", "/api/v1/visits")] == [visit["id"]]
    # So does loading the page again (the kiosk browser restarted) while the sign-in holds.
    page.goto(kit.url + "/")
    expect(page.locator('main[data-screen="visit"]')).to_contain_text(visit["id"])
