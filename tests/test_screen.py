"""The officer's touch screen in a real browser (Debian's Chromium, headless, through
Playwright) against the real kitd on the three simulators.

One daemon and one browser for the module, a fresh browser context (nothing kept) for
each test. What the officer sees is asserted with the words of the app's catalogues
(kitd/screen/i18n/*.json) and the API's own messages; every screen a test reaches is
kept as artifacts/screens/<size>/<name>.png at both screen sizes and checked with
axe-core (contrast, 48 px targets, labels and names) and for a frame that scrolls:
any such fault fails the test at its teardown. The kit runs in Asia/Makassar (WITA)
and the browser in America/Sao_Paulo, so that a time shown in the browser's zone, or
copied out of an order's ISO text, is caught. The auto-lock has its own daemon
(tests/test_screen_autolock.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hil.browser import (
    SCREEN_DIR,
    SCREEN_SIZES,
    Screen,
    ScreenKit,
    catalogue,
    expect,
    fill,
    need_browser,
    new_screen,
    open_browser,
    screen_on,
    sign_in_on_screen,
    start_screen_kit,
    type_on_keypad,
)
from hil.rig import simulation_officer
from hil.sample_orders import sample_order
from kitd.api.visits import VISIT_ERRORS

KIT_ZONE = "Asia/Makassar"  # WITA, +08:00: neither the orders' +07:00 nor the browser's
BROWSER_ZONE = "America/Sao_Paulo"
# A visit's finger waits this long for a press (the kit's default is 20 s).
NO_FINGER_S = 6.0
MAX_PIN_FAILURES = 3
OFFICER = simulation_officer("officer")
ID = catalogue("id")
EN = catalogue("en")
# The order ids in the order the list must show them (see the `orders` fixture).
LISTED = ["SCR-DISAB", "SCR-ODGJ", "SCR-LANSIA", "SCR-VISIT", "SCR-LAIN", "SCR-NONE"]
TODAY = {"SCR-DISAB", "SCR-ODGJ", "SCR-LANSIA", "SCR-VISIT"}


def make_orders(kit: ScreenKit) -> dict[str, dict[str, Any]]:
    """One order of each category, appointments today (the kit's day) in three spellings of
    their time zone, one tomorrow and one without appointment; each with what the card must
    show: ``window`` (hour, minute, hour, minute) in the kit's time."""
    today = kit.today()
    tomorrow = today + dt.timedelta(days=1)

    def window(day: dt.date, start: tuple[int, int], end: tuple[int, int], zone: str | None = None) -> dict:
        # Wall times in the kit's zone, written in ``zone`` ("UTC" as Z) as an office might.
        first, last = kit.at(day, *start), kit.at(day, *end)
        if zone == "UTC":
            text = [t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") for t in (first, last)]
        elif zone:
            text = [t.astimezone(dt.timezone(dt.timedelta(hours=7))).isoformat() for t in (first, last)]
        else:
            text = [first.isoformat(), last.isoformat()]
        return {"start": text[0], "end": text[1]}

    orders = [
        sample_order(
            "SCR-LANSIA",
            needs="terbaring di tempat tidur; tuli",
            appointment=window(today, (13, 0), (14, 0)),
        ),
        sample_order(
            "SCR-DISAB",
            name="Bambang Wijaya",
            nik="3576010511790004",
            birth_date="1979-11-05",
            sex="L",
            category="disabilitas",
            needs="kursi roda; tidak bisa berdiri",
            companion={"name": "Agus Salim", "relation": "adik", "phone": "085712340001"},
            appointment=window(today, (9, 30), (10, 15), "UTC"),
        ),
        sample_order(
            "SCR-ODGJ",
            name="Karno",
            nik="3576011208550002",
            birth_date="1955-08-12",
            sex="L",
            category="odgj",
            needs="didampingi wali; hindari keramaian",
            companion={"name": "Sri Wahyuni", "relation": "kakak", "phone": "081398765432"},
            appointment=window(today, (11, 0), (11, 45), "+07:00"),
        ),
        sample_order(
            "SCR-VISIT",
            name="Ani Suryani",
            nik="3576016106850007",
            birth_date="1985-06-21",
            category="lainnya",
            needs="tidak bisa keluar rumah",
            companion={"name": "Joko", "relation": "suami", "phone": "081200000007"},
            appointment=window(today, (15, 0), (16, 0)),
        ),
        sample_order(
            "SCR-LAIN",
            name="Wulan Sari",
            nik="3576015402900005",
            birth_date="1990-02-14",
            category="lainnya",
            needs="hamil tua",
            companion={"name": "Dedi", "relation": "suami", "phone": "082112345678"},
            appointment=window(tomorrow, (8, 0), (9, 0)),
        ),
        sample_order(
            "SCR-NONE",
            name="Slamet",
            nik="3576010101400006",
            birth_date="1940-01-01",
            sex="L",
            needs="pikun",
            companion={"name": "Tini", "relation": "cucu", "phone": "087800000006"},
        ),
    ]
    orders[-1].pop("appointment")
    kit.post_orders(orders)
    windows = {
        "SCR-LANSIA": (13, 0, 14, 0),
        "SCR-DISAB": (9, 30, 10, 15),
        "SCR-ODGJ": (11, 0, 11, 45),
        "SCR-VISIT": (15, 0, 16, 0),
        "SCR-LAIN": (8, 0, 9, 0),
    }
    return {o["order_id"]: {**o, "window": windows.get(o["order_id"])} for o in orders}


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    settings = {
        "kit.timezone": KIT_ZONE,
        "auth.max_pin_failures": MAX_PIN_FAILURES,
        "fingerprint.capture_timeout_s": NO_FINGER_S,
    }
    kit = start_screen_kit(tmp_path_factory.mktemp("screen"), settings)
    try:
        yield kit
    finally:
        kit.stop()


@pytest.fixture(scope="module")
def orders(kit: ScreenKit) -> dict[str, dict[str, Any]]:
    return make_orders(kit)


@pytest.fixture(scope="module")
def browser(kit: ScreenKit) -> Iterator[Any]:
    with open_browser() as browser:
        yield browser


@pytest.fixture
def screen(request: pytest.FixtureRequest, kit: ScreenKit, browser: Any, rig_logs: Any) -> Iterator[Screen]:
    """A fresh browser context on the app (800x480 unless the test is parametrized with
    ``size``); at the end, whatever went wrong unasserted (console errors, requests the page
    lost, accessibility faults of the screens it looked at) fails the test."""
    for name, source in kit.logs().items():
        rig_logs.add(name, source)
    with screen_on(kit, browser, getattr(request, "param", "800x480"), timezone_id=BROWSER_ZONE) as screen:
        yield screen


def on(page: Any, name: str) -> Any:
    """The screen ``name`` (its <main data-screen>), once shown."""
    main = page.locator(f'main[data-screen="{name}"]')
    expect(main).to_be_visible()
    return main


def status_bar(page: Any) -> Any:
    return page.get_by_test_id("status-bar")


def sign_in(page: Any, role: str = "officer") -> None:
    officer = simulation_officer(role)
    on(page, "signin")
    sign_in_on_screen(page, officer["nip"], officer["pin"])
    on(page, "orders")


def hm(hour: int, minute: int, language: str) -> str:
    """A time as the app writes it: id-ID 09.30, en-GB 09:30."""
    return f"{hour:02d}{'.' if language == 'id' else ':'}{minute:02d}"


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---------------------------------------------------------------------------------------


def test_the_catalogues_have_the_same_keys_and_no_empty_string() -> None:
    """Not a browser test: it runs wherever the app's files are."""
    files = sorted(p.stem for p in (SCREEN_DIR / "i18n").glob("*.json"))
    assert files == ["en", "id"], files
    assert set(ID) == set(EN), {"only in id": set(ID) - set(EN), "only in en": set(EN) - set(ID)}
    for language, words in (("id", ID), ("en", EN)):
        empty = [key for key, text in words.items() if not isinstance(text, str) or not text.strip()]
        assert not empty, (language, empty)
        # A placeholder the other language lacks would show as "{name}" on the screen.
    for key in ID:
        assert set(re.findall(r"\{\w+\}", ID[key])) == set(re.findall(r"\{\w+\}", EN[key])), key
    # Both languages say something different for most of the app (a copied catalogue).
    assert sum(ID[key] != EN[key] for key in ID) > len(ID) // 2


def test_every_refusal_of_a_visit_action_has_words_in_both_languages() -> None:
    """A code the catalogues lack shows as "Gagal (kode: ...)": the officer learns nothing."""
    # The visit's own, the routes' malformed body and busy database (any route), the state's.
    shared = {"bad_request", "appointment_past", "wrong_state", "database_busy"}
    codes = {code for _, _, code in VISIT_ERRORS} | shared
    for language, words in (("id", ID), ("en", EN)):
        missing = sorted(code for code in codes if f"error.{code}" not in words)
        assert not missing, (language, missing)


@pytest.mark.parametrize("screen", list(SCREEN_SIZES), indirect=True)
def test_sign_in_on_the_keypad_shows_the_days_orders(screen: Screen, orders: dict) -> None:
    page = screen.page
    form = on(page, "signin")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(form.get_by_role("heading", name=ID["signin.title"])).to_be_visible()
    if screen.size == "800x480":
        screen.look("signin")
    type_on_keypad(page, "nip", OFFICER["nip"])
    nip = page.get_by_label(ID["signin.nip"], exact=True)
    expect(nip).to_have_value(OFFICER["nip"])
    # Erase takes the last digit back, and the count says how many there are.
    nip.click()
    keypad = page.get_by_role("group", name=ID["signin.keypad"])
    keypad.get_by_role("button", name=ID["key.erase"]).click()
    expect(nip).to_have_value(OFFICER["nip"][:-1])
    expect(form).to_contain_text(fill(ID["signin.count"], n=17, max=18))
    keypad.get_by_role("button", name=OFFICER["nip"][-1], exact=True).click()
    type_on_keypad(page, "pin", OFFICER["pin"])
    expect(page.get_by_label(ID["signin.pin"], exact=True)).to_have_value(OFFICER["pin"])
    screen.look("signin-filled", sizes=(screen.size,))
    page.get_by_role("button", name=ID["signin.submit"], exact=True).click()
    listing = on(page, "orders")
    expect(listing.get_by_role("heading", name=ID["orders.title"])).to_be_visible()
    bar = status_bar(page)
    expect(bar).to_contain_text(fill(ID["bar.officer"], name=OFFICER["name"]))
    for device in ("fingerprint", "iris_camera", "signature"):
        expect(bar.locator(f'[data-device="{device}"]')).to_contain_text(ID["device.ready"])
    expect(listing.get_by_test_id("order-card").first).to_be_visible()
    screen.look("orders-signed-in", sizes=(screen.size,))


def test_a_wrong_pin_is_refused_and_an_incomplete_one_never_sent(screen: Screen) -> None:
    page = screen.page
    form = on(page, "signin")
    type_on_keypad(page, "nip", OFFICER["nip"])
    type_on_keypad(page, "pin", "22")
    submit = page.get_by_role("button", name=ID["signin.submit"], exact=True)
    submit.click()
    expect(form.get_by_role("alert")).to_have_text(ID["signin.incomplete"])
    type_on_keypad(page, "pin", "999999")
    with page.expect_response("**/api/v1/auth/signin") as answer:
        submit.click()
    assert answer.value.status == 401
    expect(form.get_by_role("alert")).to_contain_text(ID["signin.wrong"])
    tries = fill(ID["signin.tries"], max=MAX_PIN_FAILURES)
    expect(form.get_by_test_id("signin-tries")).to_have_text(tries)
    expect(page.get_by_label(ID["signin.pin"], exact=True)).to_have_value("")
    expect(page.get_by_label(ID["signin.nip"], exact=True)).to_have_value(OFFICER["nip"])
    screen.look("signin-wrong-pin")
    type_on_keypad(page, "pin", OFFICER["pin"])
    submit.click()
    on(page, "orders")


def test_too_many_wrong_pins_lock_the_officer_out(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    form = on(page, "signin")
    submit = page.get_by_role("button", name=ID["signin.submit"], exact=True)
    try:
        type_on_keypad(page, "nip", OFFICER["nip"])
        statuses = []
        for attempt in range(1, MAX_PIN_FAILURES + 1):
            type_on_keypad(page, "pin", "999999")
            with page.expect_response("**/api/v1/auth/signin") as answer:
                submit.click()
            statuses.append(answer.value.status)
            # The wrong PINs before the last are "wrong", each saying how many so far and how
            # many lock; the last one locks (423).
            if attempt == MAX_PIN_FAILURES:
                expect(form.get_by_role("alert")).to_have_text(ID["signin.locked"])
            else:
                tries = fill(ID["signin.tries"], max=MAX_PIN_FAILURES)
                expect(form.get_by_role("alert")).to_have_text(ID["signin.wrong"] + tries)
        assert statuses == [401] * (MAX_PIN_FAILURES - 1) + [423], statuses
        # The right PIN no longer opens it.
        type_on_keypad(page, "pin", OFFICER["pin"])
        with page.expect_response("**/api/v1/auth/signin") as answer:
            submit.click()
        assert answer.value.status == 423
        expect(form.get_by_role("alert")).to_have_text(ID["signin.locked"])
        screen.look("signin-locked")
    finally:
        kit.unlock("officer")


def test_the_order_list_as_the_officer_sees_it(screen: Screen, kit: ScreenKit, orders: dict) -> None:
    page = screen.page
    kit.sign_in_browser(page)
    listing = on(page, "orders")
    cards = listing.get_by_test_id("order-card")
    expect(cards.first).to_be_visible()
    shown = [cards.nth(i).get_attribute("data-order-id") for i in range(cards.count())]
    # SCR-VISIT is gone once the visit test ended its visit; the rest are all there, in order.
    assert set(LISTED) - {"SCR-VISIT"} <= set(shown) <= set(LISTED), shown
    assert shown == [order_id for order_id in LISTED if order_id in shown], shown
    expect(listing.get_by_test_id("orders-count")).to_have_text(fill(ID["orders.count"], n=len(shown)))
    for order_id in shown:
        order = orders[order_id]
        card = listing.locator(f'[data-order-id="{order_id}"]')
        text = card.inner_text()
        assert order["name"] in text, (order_id, text)
        expect(card.get_by_text(ID[f"cat.{order['category']}"], exact=True)).to_be_visible()
        assert order["needs"] in text, (order_id, text)
        assert order["companion"]["name"] in text, (order_id, text)
        assert order["companion"]["phone"] in squeeze(text), (order_id, text)
        window = order["window"]
        if window is None:
            assert ID["orders.group_none"] in text, (order_id, text)
        else:
            span = f"{hm(*window[:2], 'id')}–{hm(*window[2:], 'id')}"
            assert span in text, (order_id, span, text)
    # Today's appointments under their heading, before the other days and those without one.
    headings = listing.get_by_role("heading", level=2)
    groups = [ID["orders.group_today"], ID["orders.group_other"], ID["orders.group_none"]]
    expect(headings).to_have_text(groups)
    today_count = sum(order_id in TODAY for order_id in shown)
    assert all(order_id in TODAY for order_id in shown[:today_count]), shown
    tomorrow = kit.today() + dt.timedelta(days=1)
    other_day = listing.locator('[data-order-id="SCR-LAIN"]').inner_text()
    assert re.search(rf"\b{tomorrow.day}\b[^,\n]*, 08\.00–09\.00", other_day), other_day  # its day too
    screen.look("orders")
    # The list scrolls inside the frame (the frame itself never does: checked by look()).
    cards.last.scroll_into_view_if_needed()
    expect(cards.last).to_be_in_viewport()
    screen.look("orders-scrolled", sizes=("800x480",))


def test_an_order_starts_a_visit_and_the_visit_is_kept(screen: Screen, kit: ScreenKit, orders: dict) -> None:
    page = screen.page
    order = orders["SCR-VISIT"]
    kit.sign_in_browser(page)
    try:
        on(page, "orders").locator('[data-order-id="SCR-VISIT"]').click()
        detail = on(page, "order")
        expect(detail.get_by_role("heading", level=1)).to_have_text(order["name"])
        facts = detail.get_by_test_id("order-facts")
        for text in (
            order["nik"],
            order["needs"],
            order["companion"]["name"],
            "15.00–16.00",
        ):
            expect(facts).to_contain_text(text)
        expect(facts).to_contain_text(fill(ID["addr.kel"], v=order["address"]["kelurahan"]))
        expect(detail.get_by_text(ID["cat.lainnya"], exact=True).first).to_be_visible()
        assert order["companion"]["phone"] in squeeze(facts.inner_text())
        start = detail.get_by_role("button", name=ID["order.start"], exact=True)
        expect(start).to_be_enabled()
        expect(detail.get_by_test_id("start-reasons")).to_contain_text(ID["order.ready"])
        screen.look("order")
        start.click()
        visit_screen = on(page, "visit")
        (visit,) = [v for v in kit.api("officer", "GET", "/api/v1/visits") if v["order_id"] == "SCR-VISIT"]
        expect(visit_screen).to_contain_text(visit["id"])
        expect(visit_screen).to_contain_text(ID[f"state.{visit['state']}"])
        expect(visit_screen).to_contain_text(order["name"])
        screen.look("visit")
        visit_screen.get_by_role("button", name=ID["visit.back"]).click()
        listing = on(page, "orders")
        banner = listing.get_by_test_id("active-visit")
        expect(banner).to_contain_text(fill(ID["orders.active"], name=order["name"]))
        screen.look("orders-visit-open")
        # Another order cannot start while this visit is open: the screen says which is open.
        listing.locator('[data-order-id="SCR-LANSIA"]').click()
        other = on(page, "order")
        expect(other.get_by_role("button", name=ID["order.start"], exact=True)).to_have_count(0)
        expect(other).to_contain_text(fill(ID["order.other_visit"], id="SCR-VISIT"))
        screen.look("order-other-visit-open")
        other.get_by_role("button", name=ID["order.continue"]).click()
        expect(on(page, "visit")).to_contain_text(visit["id"])
    finally:
        kit.end_visits()


def test_switching_language_is_remembered_for_the_officer(
    screen: Screen, kit: ScreenKit, browser: Any
) -> None:
    page = screen.page
    kit.sign_in_browser(page)
    listing = on(page, "orders")
    expect(listing.get_by_role("heading", level=1)).to_have_text(ID["orders.title"])
    try:
        status_bar(page).get_by_role("button", name=EN["lang.en"], exact=True).click()
        expect(listing.get_by_role("heading", level=1)).to_have_text(EN["orders.title"])
        expect(page.locator("html")).to_have_attribute("lang", "en")
        listing = on(page, "orders")
        expect(listing.get_by_text(EN["cat.odgj"], exact=True).first).to_be_visible()
        expect(listing.get_by_text(ID["cat.odgj"], exact=True)).to_have_count(0)
        bar = status_bar(page)
        expect(bar).to_contain_text(fill(EN["bar.officer"], name=OFFICER["name"]))
        expect(bar.locator('[data-device="fingerprint"]')).to_contain_text(EN["device.ready"])
        expect(bar.get_by_role("button", name=EN["bar.signout"])).to_be_visible()
        card = listing.locator('[data-order-id="SCR-DISAB"]')
        expect(card).to_contain_text("09:30–10:15")
        expect(card).to_contain_text(f"{EN['order.needs']}:")
        screen.look("orders-en")
        card.click()
        detail = on(page, "order")
        expect(detail.get_by_role("button", name=EN["order.start"], exact=True)).to_be_visible()
        expect(detail.get_by_test_id("order-facts")).to_contain_text(EN["sex.L"])
        screen.look("order-en")
        # Remembered by the kit for this officer: a fresh browser (no storage, nothing kept)
        # shows the sign-in in Indonesian, and English once this officer has signed in.
        status_bar(page).get_by_role("button", name=EN["bar.signout"]).click()
        expect(on(page, "signin").get_by_role("alert")).to_have_text(EN["signin.signed_out"])
        screen.look("signin-signed-out-en")
        fresh = new_screen(browser, "800x480", timezone_id=BROWSER_ZONE)
        try:
            fresh.page.goto(kit.url + "/")
            on(fresh.page, "signin")
            expect(fresh.page.locator("html")).to_have_attribute("lang", "id")
            sign_in(fresh.page)
            expect(on(fresh.page, "orders").get_by_role("heading", level=1)).to_have_text(EN["orders.title"])
            expect(fresh.page.locator("html")).to_have_attribute("lang", "en")
            assert fresh.faults() == []
        finally:
            fresh.close()
        assert kit.api("officer", "GET", "/api/v1/auth/me")["officer"]["language"] == "en"
        # Another officer still has Indonesian.
        assert kit.api("supervisor", "GET", "/api/v1/auth/me")["officer"]["language"] == "id"
    finally:
        kit.set_language("officer", "id")


def test_a_language_tapped_at_sign_in_is_the_officers_choice(screen: Screen, kit: ScreenKit) -> None:
    """English tapped on the sign-in screen stays once the officer (saved: Indonesian) signs
    in, and is kept for them; the next officer, tapping nothing, gets their own language, and
    one who taps the language already shown gets that one."""
    page = screen.page
    page.goto(kit.url + "/")
    on(page, "signin")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    assert kit.api("supervisor", "GET", "/api/v1/auth/me")["officer"]["language"] == "id"
    try:
        page.get_by_role("button", name=ID["lang.en"], exact=True).click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        sign_in(page, "supervisor")
        expect(on(page, "orders").get_by_role("heading", level=1)).to_have_text(EN["orders.title"])
        expect(page.locator("html")).to_have_attribute("lang", "en")
        assert kit.api("supervisor", "GET", "/api/v1/auth/me")["officer"]["language"] == "en"
        # Signed out, the next officer (saved: Indonesian) taps nothing: their own language.
        status_bar(page).get_by_role("button", name=EN["bar.signout"]).click()
        signin = on(page, "signin")
        expect(signin.get_by_role("alert")).to_have_text(EN["signin.signed_out"])
        sign_in(page, "officer")
        expect(on(page, "orders").get_by_role("heading", level=1)).to_have_text(ID["orders.title"])
        assert kit.api("officer", "GET", "/api/v1/auth/me")["officer"]["language"] == "id"
        # Signed out again in Indonesian: the supervisor (saved: English now) taps ID, already shown.
        status_bar(page).get_by_role("button", name=ID["bar.signout"]).click()
        on(page, "signin")
        page.get_by_role("button", name=ID["lang.id"], exact=True).click()
        sign_in(page, "supervisor")
        expect(on(page, "orders").get_by_role("heading", level=1)).to_have_text(ID["orders.title"])
        assert kit.api("supervisor", "GET", "/api/v1/auth/me")["officer"]["language"] == "id"
    finally:
        kit.set_language("supervisor", "id")


def test_an_unplugged_reader_shows_in_the_status_bar_and_stops_a_visit_start(
    screen: Screen, kit: ScreenKit, orders: dict
) -> None:
    page = screen.page
    kit.sign_in_browser(page)
    # Every device the kit has is named in both languages on its chip, not by its id.
    kinds = {d["kind"] for d in kit.api("officer", "GET", "/api/v1/summary")["devices"]}
    assert {"fingerprint", "iris_camera", "signature", "peripheral", "panel"} <= kinds
    assert [k for k in sorted(kinds) if f"dev.{k}" not in ID or f"dev.{k}" not in EN] == []
    on(page, "orders").locator('[data-order-id="SCR-DISAB"]').click()
    detail = on(page, "order")
    start = detail.get_by_role("button", name=ID["order.start"], exact=True)
    expect(start).to_be_enabled()
    chip = status_bar(page).locator('[data-device="fingerprint"]')
    expect(chip).to_contain_text(ID["device.ready"])
    reader = kit.sims["fingerprint"]
    try:
        reader.control("unplug")
        # Generous: within a few seconds on a kit; never asserted on the clock here.
        expect(chip).to_contain_text(ID["device.disconnected"], timeout=20_000)
        expect(chip).to_contain_text(ID["dev.fingerprint"])
        expect(start).to_be_disabled(timeout=20_000)
        summary = kit.api("officer", "GET", "/api/v1/summary")
        assert summary["visit_start"]["possible"] is False, summary
        (reason,) = [r for r in summary["visit_start"]["reasons"] if r.get("device") == "fingerprint"]
        why = detail.get_by_test_id("start-reasons")
        expect(why).to_contain_text(ID["order.cannot_start"])
        expect(why).to_contain_text(reason["message"]["id"])
        # Said to a screen reader too: the reason describes the disabled button.
        expect(start).to_have_accessible_description(re.compile(re.escape(reason["message"]["id"])))
        # The other devices stay ready.
        expect(status_bar(page).locator('[data-device="iris_camera"]')).to_contain_text(ID["device.ready"])
        screen.look("order-reader-unplugged")
        # In English: the API's own English words.
        status_bar(page).get_by_role("button", name=EN["lang.en"], exact=True).click()
        expect(why).to_contain_text(reason["message"]["en"])
        expect(chip).to_contain_text(EN["device.disconnected"])
        screen.look("order-reader-unplugged-en")
    finally:
        kit.set_language("officer", "id")
        reader.control("replug")
        kit.wait_ready("fingerprint")
    expect(chip).to_contain_text(EN["device.ready"], timeout=20_000)
    expect(detail.get_by_role("button", name=EN["order.start"], exact=True)).to_be_enabled(timeout=20_000)


def test_another_officers_open_visit_is_named_and_can_be_ended(
    screen: Screen, kit: ScreenKit, orders: dict
) -> None:
    page = screen.page
    kit.post_orders([sample_order("SCR-OTHER", name="Sukarti")])
    opened = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "SCR-OTHER"})
    try:
        kit.sign_in_browser(page, "supervisor")
        listing = on(page, "orders")
        banner = listing.get_by_test_id("others-visit")
        officer = simulation_officer("officer")["name"]
        expect(banner).to_contain_text(fill(ID["orders.others_visit"], name="Sukarti", officer=officer))
        screen.look("orders-others-visit")
        # An order opened meanwhile says why no visit starts, and offers the same way out.
        listing.locator('[data-order-id="SCR-LANSIA"]').click()
        detail = on(page, "order")
        expect(detail.get_by_role("button", name=ID["order.start"], exact=True)).to_be_disabled()
        summary = kit.api("supervisor", "GET", "/api/v1/summary")
        (reason,) = [r for r in summary["visit_start"]["reasons"] if r["code"] == "visit_of_another"]
        expect(detail.get_by_test_id("start-reasons")).to_contain_text(reason["message"]["id"])
        assert summary["others_visit"]["officer"] == {"nip": opened["officer"], "name": officer}
        assert summary["visit"] is None
        detail.get_by_test_id("end-others-visit").click()
        dialog = page.get_by_test_id("outcome-dialog")
        expect(dialog.get_by_test_id("outcome-others")).to_have_text(ID["outcome.others_text"])
        dialog.get_by_test_id("outcome-close").click()  # not now: back to the list, nothing changed
        banner = on(page, "orders").get_by_test_id("others-visit")
        banner.get_by_test_id("end-others-visit").click()
        dialog.get_by_role("radio", name=ID["outcome.cancelled"]).click()
        dialog.get_by_label(ID["outcome.note_needed"]).fill("Petugas pulang sakit; dijadwalkan petugas lain")
        dialog.get_by_test_id("outcome-submit").click()
        expect(on(page, "visit")).to_have_attribute("data-state", "ended")
        ended = kit.api("supervisor", "GET", f"/api/v1/visits/{opened['id']}")
        assert (ended["state"], ended["outcome"]["code"]) == ("ended", "cancelled")
        page.get_by_test_id("back").click()
        expect(on(page, "orders").get_by_test_id("others-visit")).to_have_count(0)
        expect(page.get_by_test_id("ended-by-other")).to_have_count(0)  # the supervisor's own doing
        # The officer signs in again and finds the visit gone: the list says who ended it, when
        # and how (the supervisor's name, the outcome, the note).
        summary = kit.api("officer", "GET", "/api/v1/summary")
        (told,) = [e for e in summary["ended_by_others"] if e["id"] == opened["id"]]
        supervisor = simulation_officer("supervisor")
        assert told["by"] == {"nip": supervisor["nip"], "name": supervisor["name"]}
        assert (told["order_id"], told["code"], told["reschedule"]) == ("SCR-OTHER", "cancelled", None)
        assert told["note"] == "Petugas pulang sakit; dijadwalkan petugas lain"
        assert opened["id"] not in [
            e["id"] for e in kit.api("supervisor", "GET", "/api/v1/summary")["ended_by_others"]
        ]
        ended = dt.datetime.fromisoformat(told["ended_at"]).astimezone(ZoneInfo(KIT_ZONE))
        kit.sign_in_browser(page, "officer")
        notice = on(page, "orders").locator(f'[data-testid="ended-by-other"][data-visit-id="{opened["id"]}"]')
        expect(notice).to_contain_text(
            fill(
                ID["orders.ended_by_other"],
                name=fill(ID["orders.order_ref"], id="SCR-OTHER"),
                by=supervisor["name"],
                time=hm(ended.hour, ended.minute, "id"),
                outcome=ID["outcome.cancelled"],
            )
        )
        expect(notice).to_contain_text("Petugas pulang sakit; dijadwalkan petugas lain")
        screen.look("orders-ended-by-other")
    finally:
        kit.end_visits()


def test_no_finger_until_the_time_limit_is_not_called_a_device_fault(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    kit.post_orders([sample_order("SCR-NOFINGER", name="Sumarni")])
    visit = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "SCR-NOFINGER"})
    identity = {"present": ["Sumarni"], "consent_by": "applicant"}
    kit.api("officer", "POST", f"/api/v1/visits/{visit['id']}/identity", identity)
    reader = kit.sims["fingerprint"]
    reader.control("finger off")
    try:
        kit.sign_in_browser(page)  # back at the open visit, its first finger
        on(page, "visit")
        page.locator("main.visit .actions").get_by_role("button", name=ID["action.start"], exact=True).click()
        feedback = page.get_by_test_id("feedback")
        # Nobody pressed: the session ends failed by its time limit, which is no device fault.
        expect(feedback).to_have_attribute("data-code", "nothing_in_time", timeout=(NO_FINGER_S + 20) * 1000)
        expect(feedback).to_have_text(fill(ID["capture.nothing_in_time"], retry=ID["action.retry"]))
        expect(page.get_by_test_id("device-trouble")).to_have_count(0)
        screen.look("visit-nothing-in-time")
    finally:
        reader.control("finger on")
        kit.end_visits()


def test_nobody_at_home_is_said_with_the_reader_unplugged(
    screen: Screen, kit: ScreenKit, orders: dict
) -> None:
    page = screen.page
    kit.post_orders(
        [sample_order("SCR-DOOR", name="Suparno", nik="3576010101450008", birth_date="1945-01-01", sex="L")]
    )
    kit.sign_in_browser(page)
    reader = kit.sims["fingerprint"]
    try:
        reader.control("unplug")
        on(page, "orders").locator('[data-order-id="SCR-DOOR"]').click()
        detail = on(page, "order")
        start = detail.get_by_role("button", name=ID["order.start"], exact=True)
        expect(start).to_be_disabled(timeout=20_000)
        # No visit can start, yet the officer at a closed door can still say so.
        detail.get_by_test_id("door-outcome").click()
        dialog = page.get_by_test_id("outcome-dialog")
        expect(dialog).to_contain_text(ID["outcome.door_title"])
        dialog.get_by_test_id("outcome-close").click()  # changed mind: back to the order
        expect(dialog).to_be_hidden()
        expect(start).to_be_disabled()
        detail.get_by_test_id("door-outcome").click()
        submit = dialog.get_by_test_id("outcome-submit")
        expect(submit).to_be_disabled()
        dialog.get_by_role("radio", name=ID["outcome.not_home"]).click()
        dialog.get_by_label(ID["outcome.note"]).fill("Rumah kosong, tetangga bilang ke pasar")
        screen.look("order-door-outcome")
        # The kit hangs a moment as Simpan is tapped: the dialog says it waits for the answer.
        assert kit.kitd.process is not None
        os.kill(kit.kitd.process.pid, signal.SIGSTOP)
        try:
            submit.click()
            expect(dialog.get_by_test_id("visit-waiting")).to_have_text(ID["visit.waiting"], timeout=10_000)
            expect(dialog.get_by_test_id("outcome-close")).to_be_disabled()
        finally:
            os.kill(kit.kitd.process.pid, signal.SIGCONT)
        visit = on(page, "visit")
        expect(visit).to_have_attribute("data-state", "ended")
        expect(visit.get_by_test_id("ended")).to_have_text(
            fill(ID["ended.text"], outcome=ID["outcome.not_home"])
        )
        ended = kit.api("officer", "GET", f"/api/v1/visits/{visit.get_attribute('data-visit-id')}")
        assert ended["order_id"] == "SCR-DOOR" and ended["outcome"] == {
            "code": "not_home",
            "note": "Rumah kosong, tetangga bilang ke pasar",
            "reschedule": None,
            "by": simulation_officer("officer")["nip"],
        }
        visit.get_by_test_id("back").click()
        expect(on(page, "orders").locator('[data-order-id="SCR-DOOR"]')).to_have_count(0)
    finally:
        reader.control("replug")
        kit.wait_ready("fingerprint")


def test_the_status_bar_clock_shows_the_kits_time_not_the_pages(screen: Screen, kit: ScreenKit) -> None:
    """The chip shows the kit's clock (the summary's clock.now, which a laptop may have
    corrected), in the kit's zone: the page's own clock moved two hours on changes nothing."""
    page = screen.page
    page.clock.install()  # the page's own clock, moved on below without waiting
    kit.sign_in_browser(page)
    on(page, "orders")
    clock = page.get_by_test_id("clock")

    def kit_time(later: dt.timedelta = dt.timedelta()) -> re.Pattern[str]:
        # The minute now in the kit's zone (or the next one, if it turns while we look).
        now = dt.datetime.now(ZoneInfo(KIT_ZONE)) + later
        minutes = {now.replace(second=0), now.replace(second=0) + dt.timedelta(minutes=1)}
        return re.compile("|".join(re.escape(hm(t.hour, t.minute, "id")) for t in minutes))

    expect(clock).to_contain_text(kit_time())
    expect(clock).to_contain_text(fill(ID["bar.clock_unconfirmed"], time="").strip(" ·"))
    page.clock.fast_forward("02:00:00")  # the page's clock two hours on; the kit's is not
    expect(clock).to_contain_text(kit_time())
