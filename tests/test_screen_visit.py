"""The whole visit on the officer's touch screen in a real browser (Debian's Chromium,
headless, through Playwright) against the real kitd on the three simulators.

After the set-up (orders imported through the API), everything is done on the screen:
identity and consent, every finger (light presses first), both irises, the signature or a
thumbprint in its place, exceptions through their dialog, review, finish; outcomes with
a new appointment; a device unplugged mid-capture; the daemon killed at the iris step and
the visit resumed. The assertions are about what the officer sees: the catalogue's and the
assessors' words, the marks on the diagrams, scores, enabled and disabled buttons. Every
screen reached is kept as artifacts/screens/<size>/visit-*.png at both sizes and checked
with axe-core (tests/test_screen.py's rules). One daemon for the module.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from hil.browser import (
    Screen,
    ScreenKit,
    catalogue,
    expect,
    fill,
    need_browser,
    open_browser,
    screen_on,
    start_screen_kit,
    type_on_keypad,
)
from hil.rig import simulation_officer, wait_until
from hil.sample_orders import sample_order
from kitd.capture.fingerprint_quality import FEEDBACK_MESSAGES
from kitd.capture.iris_quality import FEEDBACK_MESSAGES as IRIS_FEEDBACK
from kitd.services.visit_machine import MAX_OUTCOME_NOTE

KIT_ZONE = "Asia/Makassar"
ID = catalogue("id")
EN = catalogue("en")
OFFICER = simulation_officer("officer")
FINGERS = [f"finger:{n}" for n in range(1, 11)]
CAPTURE_S = 60_000  # generous: captures on the simulators take well under a second


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    kit = start_screen_kit(
        tmp_path_factory.mktemp("screen-visit"),
        {"kit.timezone": KIT_ZONE, "fingerprint.capture_timeout_s": 60.0},
    )
    try:
        day = kit.today().isoformat()
        window = {"start": f"{day}T13:00:00+08:00", "end": f"{day}T14:00:00+08:00"}
        kit.post_orders(
            [
                sample_order("VIS-LANSIA", appointment=window),
                sample_order("VIS-EXCEPT", name="Bambang Wijaya", nik="3576010511790004",
                             birth_date="1979-11-05", sex="L", category="disabilitas", appointment=window),
                sample_order("VIS-ODGJ", name="Karno", nik="3576011208550002", birth_date="1955-08-12",
                             sex="L", category="odgj", appointment=window,
                             companion={"name": "Sri Wahyuni", "relation": "kakak", "phone": "081398765432"}),
                sample_order("VIS-AWAY", name="Slamet", nik="3576010101400006", birth_date="1940-01-01",
                             sex="L", appointment=window),
                sample_order("VIS-KILL", name="Wulan Sari", nik="3576015402900005", birth_date="1990-02-14",
                             appointment=window),
                sample_order("VIS-PANEL", name="Sutrisno", nik="3576010707450003", birth_date="1945-07-07",
                             sex="L", appointment=window),
            ]
        )  # fmt: skip
        yield kit
    finally:
        kit.stop()


@pytest.fixture(scope="module")
def browser(kit: ScreenKit) -> Iterator[Any]:
    with open_browser() as browser:
        yield browser


@pytest.fixture
def screen(request: pytest.FixtureRequest, kit: ScreenKit, browser: Any, rig_logs: Any) -> Iterator[Screen]:
    for name, source in kit.logs().items():
        rig_logs.add(name, source)
    try:
        with screen_on(kit, browser, getattr(request, "param", "800x480"), "America/Sao_Paulo") as screen:
            yield screen
    finally:
        kit.end_visits()


# ---------------------------------------------------------------------------------------
# The officer's hands and eyes


def on(page: Any, name: str) -> Any:
    main = page.locator(f'main[data-screen="{name}"]')
    expect(main).to_be_visible()
    return main


def open_visit(page: Any, kit: ScreenKit, order_id: str, words: dict[str, str]) -> Any:
    """From the orders, the order, its visit started on the screen."""
    kit.sign_in_browser(page)
    on(page, "orders").locator(f'[data-order-id="{order_id}"]').click()
    on(page, "order").get_by_role("button", name=words["order.start"], exact=True).click()
    visit = on(page, "visit")
    expect(visit).to_have_attribute("data-state", "identity")
    # The pre-visit check's warnings on the visit's first screen, in the page's language: the
    # rig's clock, which no laptop confirmed, among them.
    warned = visit.get_by_test_id("precheck-warnings")
    expect(warned).to_contain_text(words["visit.precheck_warnings"])
    expect(warned.locator('[data-check="unit.clock"]')).to_be_visible()
    return visit


def mark(page: Any, item: str) -> Any:
    """The item's mark on the diagrams, or its row in the review."""
    return page.locator(f'main[data-screen="visit"] :is(.mark, .rrow)[data-item="{item}"]')


def action(page: Any, words: dict[str, str], key: str) -> Any:
    return page.locator("main.visit .actions").get_by_role("button", name=words[key], exact=True)


def identity(page: Any, words: dict[str, str]) -> None:
    visit = on(page, "visit")
    expect(visit.get_by_role("heading", name=words["identity.title"])).to_be_visible()
    # A wrong action is never offered: nothing to capture before the identity is recorded.
    expect(visit.locator("[data-action]")).to_have_count(0)
    visit.get_by_test_id("identity-submit").click()
    expect(visit).to_have_attribute("data-state", "capturing")


def take(page: Any, item: str, words: dict[str, str], start: str = "action.start") -> None:
    """Tap Start on the current item and wait for its mark to say it is done."""
    expect(page.get_by_test_id("item-title")).to_have_text(item_words(item, words))
    action(page, words, start).click()
    expect(mark(page, item)).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
    expect(mark(page, item)).to_contain_text("✓")


def item_words(item: str, words: dict[str, str]) -> str:
    kind, _, which = item.partition(":")
    if kind == "finger":
        return words[f"finger.{which}"]
    if kind == "iris":
        return words[f"eye.{which}"]
    return words["item.signature"]


def sign(page: Any, words: dict[str, str], screen: Screen | None = None) -> None:
    """The signature: the pad plays one; the ink shows on the screen; the officer accepts."""
    expect(page.get_by_test_id("item-title")).to_have_text(words["item.signature"])
    action(page, words, "action.start").click()
    accept = action(page, words, "action.accept_signature")
    expect(accept).to_be_enabled(timeout=CAPTURE_S)
    ink = page.locator("canvas#ink")
    expect(ink).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    expect(page.get_by_test_id("feedback")).to_have_text(words["capture.sign_ok"], timeout=CAPTURE_S)
    if screen is not None:
        screen.look("visit-signature")
    accept.click()
    expect(mark(page, "signature")).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)


def finish(page: Any, words: dict[str, str], screen: Screen, name: str) -> str:
    visit = on(page, "visit")
    expect(visit).to_have_attribute("data-state", "review", timeout=CAPTURE_S)
    screen.look(f"visit-review{name}")
    visit.get_by_test_id("finish").click()
    expect(visit.get_by_test_id("finished")).to_have_text(re.compile(re.escape(words["finished.text"])))
    bundle = visit.get_by_test_id("bundle")
    expect(bundle).to_contain_text(words["finished.bundle"])
    screen.look(f"visit-finished{name}")
    expect(visit.locator("[data-action]")).to_have_count(0)  # nothing left to do to it
    return bundle.locator("b").inner_text()


# ---------------------------------------------------------------------------------------


def test_a_complete_lansia_enrollment_with_light_presses_first(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    visit = open_visit(page, kit, "VIS-LANSIA", ID)
    screen.look("visit-identity")
    identity(page, ID)
    reader = kit.sims["fingerprint"]
    for n, item in enumerate(FINGERS):
        if n < 3:
            reader.control("condition light")
            expect(page.get_by_test_id("item-title")).to_have_text(item_words(item, ID))
            # Accept is not offered before there is a press to accept.
            expect(action(page, ID, "action.start")).to_be_enabled()
            action(page, ID, "action.start").click()
            feedback = page.get_by_test_id("feedback")
            expect(feedback).to_have_text(FEEDBACK_MESSAGES["press_harder"][0], timeout=CAPTURE_S)
            expect(page.locator("#press-img")).to_have_attribute("data-press", re.compile(r"^\d+$"))
            expect(page.get_by_test_id("score")).to_contain_text(re.compile(r"\d"))
            expect(mark(page, item)).to_have_attribute("data-status", "capturing")
            expect(mark(page, item)).to_contain_text("◉")
            if n == 0:
                screen.look("visit-finger-light")
            reader.control("condition good")
            expect(mark(page, item)).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
        else:
            take(page, item, ID)
    expect(mark(page, "finger:1")).to_contain_text("✓")
    screen.look("visit-fingers-done")
    # The iris: a half-closed eye first; the live preview shows frames and the assessor's
    # words (in the page's language), then the eye opens and is captured.
    eye = kit.sims["iris_camera"]
    expect(page.get_by_test_id("item-title")).to_have_text(ID["eye.right"])
    eye.control("set eyelid=0.6")
    try:
        action(page, ID, "action.start").click()
        expect(page.locator("#iris-img")).to_have_attribute("data-frames", re.compile(r"^([5-9]|\d\d+)$"))
        feedback = page.get_by_test_id("feedback")
        expect(feedback).to_have_attribute("data-code", re.compile(r"^[a-z_]+$"), timeout=CAPTURE_S)
        code = feedback.get_attribute("data-code")
        assert code in IRIS_FEEDBACK, code
        expect(feedback).to_have_text(IRIS_FEEDBACK[code][0])
        screen.look("visit-iris")
    finally:
        eye.control("set eyelid=1.0")
    expect(mark(page, "iris:right")).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
    take(page, "iris:left", ID)
    sign(page, ID, screen)
    review = visit.get_by_test_id("review-list")
    rows = review.locator("li")
    expect(rows).to_have_count(13)
    for i in range(13):
        expect(rows.nth(i)).to_have_attribute("data-status", "captured")
        expect(rows.nth(i).get_by_test_id("item-score")).to_have_text(re.compile(r"\d"))
    # Review offers each item again and the finish, and no capture action.
    redo = review.get_by_role("button", name=fill(ID["review.reopen_item"], item=ID["finger.1"]))
    expect(redo).to_be_visible()
    expect(visit.locator(".actions [data-action]")).to_have_count(0)
    # Redo asks first, since the capture it replaces goes at once; kept, nothing changed.
    redo.click()
    asked = page.get_by_test_id("redo-dialog")
    expect(asked).to_contain_text(fill(ID["redo.text"], item=ID["finger.1"]))
    screen.look("visit-review-redo")
    asked.get_by_test_id("redo-keep").click()
    expect(asked).to_be_hidden()
    expect(rows.first).to_have_attribute("data-status", "captured")
    vid = visit.get_attribute("data-visit-id")
    kept = kit.api("officer", "GET", f"/api/v1/visits/{vid}")
    assert kept["state"] == "review" and all(i["status"] == "captured" for i in kept["items"])
    redo.click()
    asked.get_by_test_id("redo-confirm").click()

    def taken_again() -> bool:
        now = kit.api("officer", "GET", f"/api/v1/visits/{vid}")
        first = next(i for i in now["items"] if i["item"] == "finger:1")
        return now["state"] == "review" and first["status"] == "captured" and first["attempts"] == 2

    wait_until(taken_again, "finger:1 taken again", CAPTURE_S / 1000)
    expect(rows).to_have_count(13)
    bundle = finish(page, ID, screen, "")
    (done,) = [
        v for v in [kit.api("officer", "GET", f"/api/v1/visits/{visit.get_attribute('data-visit-id')}")]
    ]
    assert done["state"] == "finished" and done["bundle"]["id"] == bundle


@pytest.mark.parametrize("screen", ["1024x600"], indirect=True)
def test_amputated_fingers_a_blind_eye_and_a_thumbprint_in_english(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    kit.set_language("officer", "en")
    try:
        visit = open_visit(page, kit, "VIS-EXCEPT", EN)
        identity(page, EN)
        for item in ("finger:1", "finger:2"):
            action(page, EN, "action.except").click()
            dialog = page.get_by_test_id("except-dialog")
            expect(dialog).to_contain_text(fill(EN["except.title"], item=item_words(item, EN)))
            next_step = dialog.get_by_test_id("except-next")
            expect(next_step).to_be_disabled()  # no reason picked: nothing to confirm
            dialog.get_by_role("radio", name=EN["reason.amputated"]).click()
            if item == "finger:1":
                screen.look("visit-except-reasons")
            next_step.click()
            expect(dialog).to_contain_text(
                fill(EN["except.confirm_text"], item=item_words(item, EN), reason=EN["reason.amputated"])
            )
            if item == "finger:1":
                screen.look("visit-except-confirm")
            dialog.get_by_test_id("except-confirm").click()
            expect(mark(page, item)).to_have_attribute("data-status", "excepted")
            expect(mark(page, item)).to_contain_text("✕")
        # A finger that never presses hard enough: Accept asks first, then keeps it flagged.
        reader = kit.sims["fingerprint"]
        reader.control("condition light")
        try:
            action(page, EN, "action.start").click()
            expect(page.get_by_test_id("feedback")).to_have_attribute(
                "data-code", "press_harder", timeout=CAPTURE_S
            )
            action(page, EN, "action.accept").click()
            dialog = page.get_by_test_id("force-dialog")
            expect(dialog).to_contain_text(fill(EN["force.title"], item=item_words("finger:3", EN)))
            screen.look("visit-force-confirm")
            dialog.get_by_test_id("force-confirm").click()
            expect(mark(page, "finger:3")).to_have_attribute("data-status", "forced")
            expect(mark(page, "finger:3")).to_contain_text("!")
        finally:
            reader.control("condition good")
        for item in FINGERS[3:]:
            take(page, item, EN)
        # An eye that stays shut until the time limit: the screen stops coaching and says
        # what is left to do; opened, a retry captures it.
        eye = kit.sims["iris_camera"]
        eye.control("set eyelid=0")
        try:
            expect(page.get_by_test_id("item-title")).to_have_text(item_words("iris:right", EN))
            action(page, EN, "action.start").click()
            feedback = page.get_by_test_id("feedback")
            expect(feedback).to_have_attribute("data-code", "timed_out", timeout=CAPTURE_S)
            expect(feedback).to_have_text(
                fill(EN["capture.timed_out"], retry=EN["action.retry"], accept=EN["action.accept"])
            )
            screen.look("visit-iris-timed-out")
            # Accept of a best that did not pass is asked first; kept trying, nothing changed.
            action(page, EN, "action.accept").click()
            dialog = page.get_by_test_id("force-dialog")
            expect(dialog).to_contain_text(fill(EN["force.title"], item=item_words("iris:right", EN)))
            dialog.get_by_test_id("force-keep").click()
            expect(dialog).to_be_hidden()
            expect(mark(page, "iris:right")).to_have_attribute("data-status", "capturing")
        finally:
            eye.control("set eyelid=1")
        take(page, "iris:right", EN, start="action.retry")
        action(page, EN, "action.except").click()
        dialog = page.get_by_test_id("except-dialog")
        # An eye's reasons, not a finger's.
        expect(dialog.get_by_role("radio", name=EN["reason.amputated"])).to_have_count(0)
        dialog.get_by_role("radio", name=EN["reason.blind_or_diseased"]).click()
        dialog.get_by_test_id("except-next").click()
        dialog.get_by_test_id("except-confirm").click()
        expect(mark(page, "iris:left")).to_have_attribute("data-status", "excepted")
        action(page, EN, "action.cannot_sign").click()
        dialog = page.get_by_test_id("except-dialog")
        dialog.get_by_role("radio", name=EN["reason.cannot_sign"]).click()
        dialog.get_by_test_id("except-next").click()
        dialog.get_by_test_id("except-confirm").click()
        thumb = fill(EN["item.thumbprint"], finger=EN["finger.6"])
        expect(page.get_by_test_id("item-title")).to_have_text(thumb)
        screen.look("visit-thumbprint")
        action(page, EN, "action.start").click()
        expect(mark(page, "thumbprint")).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
        review = visit.get_by_test_id("review-list")
        expect(review.locator('[data-item="finger:1"]')).to_contain_text(EN["reason.amputated"])
        expect(review.locator('[data-item="iris:left"]')).to_contain_text(EN["reason.blind_or_diseased"])
        expect(review.locator('[data-item="signature"]')).to_contain_text(EN["status.excepted"])
        expect(review.locator('[data-item="thumbprint"]')).to_contain_text(EN["status.captured"])
        finish(page, EN, screen, "-en")
    finally:
        kit.set_language("officer", "id")


def test_not_at_home_then_a_guardian_visit_rescheduled(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    visit = open_visit(page, kit, "VIS-AWAY", ID)
    visit.get_by_test_id("end-visit").click()
    dialog = page.get_by_test_id("outcome-dialog")
    submit = dialog.get_by_test_id("outcome-submit")
    expect(submit).to_be_disabled()
    # A note the kit refuses (a control character pasted in): the dialog stays, the note and
    # the choice with it, and says why, in Bahasa Indonesia and then the kit's own words.
    dialog.get_by_role("radio", name=ID["outcome.unable"]).click()
    note = dialog.get_by_label(ID["outcome.note_needed"])
    assert note.get_attribute("maxlength") == str(MAX_OUTCOME_NOTE)
    note.fill("Pemohon sakit\u0007")
    submit.click()
    refusal = dialog.get_by_test_id("outcome-error")
    expect(refusal).to_contain_text(ID["error.bad_request"])
    expect(refusal.locator("[lang=en]")).to_contain_text("note")
    expect(note).to_have_value("Pemohon sakit\u0007")
    expect(dialog.get_by_role("radio", name=ID["outcome.unable"])).to_have_attribute("aria-checked", "true")
    screen.look("visit-outcome-refused")
    dialog.get_by_label(ID["outcome.note_needed"]).fill("")
    dialog.get_by_role("radio", name=ID["outcome.not_home"]).click()
    screen.look("visit-outcome")
    submit.click()
    expect(visit).to_have_attribute("data-state", "ended")
    expect(visit.get_by_test_id("ended")).to_have_text(fill(ID["ended.text"], outcome=ID["outcome.not_home"]))
    screen.look("visit-ended")
    # An ODGJ applicant: a guardian consents; then the kit's buttons cancel (ending), and the
    # screen opens the outcome: rescheduled for tomorrow, 10.00-11.00 kit time (WITA).
    visit.get_by_test_id("back").click()
    on(page, "orders").locator('[data-order-id="VIS-ODGJ"]').click()
    on(page, "order").get_by_role("button", name=ID["order.start"], exact=True).click()
    visit = on(page, "visit")
    expect(visit.get_by_text(ID["identity.guardian_needed"])).to_be_visible()
    expect(visit.locator('[data-consent="applicant"]')).to_be_disabled()
    expect(page.get_by_label(ID["identity.guardian_name"])).to_have_value("Sri Wahyuni")
    expect(page.get_by_label(ID["identity.guardian_relation"])).to_have_value("kakak")
    screen.look("visit-identity-guardian")
    # The button follows what is typed: no guardian's name, no consent; typed again, it goes.
    go = visit.get_by_test_id("identity-submit")
    expect(go).to_be_enabled()
    page.get_by_label(ID["identity.guardian_name"]).fill("")
    expect(go).to_be_disabled()
    page.get_by_label(ID["identity.guardian_name"]).fill("Sri Wahyuni")
    expect(go).to_be_enabled()
    identity(page, ID)
    (active,) = kit.api("officer", "GET", "/api/v1/visits")
    kit.api("officer", "POST", f"/api/v1/visits/{active['id']}/cancel")  # the panel's Cancel
    dialog = page.get_by_test_id("outcome-dialog")
    expect(dialog).to_be_visible(timeout=10_000)
    expect(visit).to_have_attribute("data-state", "ending")
    # Held by mistake: back to the visit, at its first item; then the Cancel meant.
    dialog.get_by_test_id("outcome-carry-on").click()
    expect(visit).to_have_attribute("data-state", "capturing")
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("item-title")).to_have_text(ID["finger.1"])
    kit.api("officer", "POST", f"/api/v1/visits/{active['id']}/cancel")
    expect(dialog).to_be_visible(timeout=10_000)
    expect(visit).to_have_attribute("data-state", "ending")
    dialog.get_by_role("radio", name=ID["outcome.rescheduled"]).click()
    # Tomorrow (the kit's day), 09.00-10.00 to begin with; an hour later on the steppers.
    day = kit.today() + dt.timedelta(days=1)
    expect(dialog.get_by_test_id("resched-date")).to_contain_text(str(day.day))
    expect(dialog.get_by_test_id("resched-from")).to_have_text("09.00")
    later = fill(ID["outcome.later_step"], what=ID["outcome.from"])
    dialog.get_by_role("button", name=later).click()
    dialog.get_by_role("button", name=later).click()
    expect(dialog.get_by_test_id("resched-from")).to_have_text("10.00")
    expect(dialog.get_by_test_id("resched-to")).to_have_text("11.00")  # kept an hour after
    # The end never steps to or before the start: Simpan stays available.
    sooner = fill(ID["outcome.earlier"], what=ID["outcome.to"])
    for _ in range(3):
        dialog.get_by_role("button", name=sooner).click()
    expect(dialog.get_by_test_id("resched-to")).to_have_text("10.30")
    expect(dialog.get_by_test_id("outcome-submit")).to_be_enabled()
    dialog.get_by_role("button", name=fill(ID["outcome.later_step"], what=ID["outcome.to"])).click()
    expect(dialog.get_by_test_id("resched-to")).to_have_text("11.00")
    expect(dialog).to_contain_text(fill(ID["outcome.when"], zone=KIT_ZONE))
    screen.look("visit-outcome-rescheduled")
    dialog.get_by_test_id("outcome-submit").click()
    expect(visit).to_have_attribute("data-state", "ended")
    expect(visit.get_by_test_id("rescheduled")).to_contain_text("10.00–11.00")
    ended = kit.api("officer", "GET", f"/api/v1/visits/{active['id']}")
    assert ended["outcome"]["reschedule"] == {
        "start": f"{day.isoformat()}T10:00:00+08:00",
        "end": f"{day.isoformat()}T11:00:00+08:00",
    }


def test_an_unplugged_reader_mid_capture_and_a_killed_daemon_at_the_iris(
    screen: Screen, kit: ScreenKit
) -> None:
    page = screen.page
    visit = open_visit(page, kit, "VIS-KILL", ID)
    identity(page, ID)
    reader = kit.sims["fingerprint"]
    reader.control("condition light")
    action(page, ID, "action.start").click()
    expect(mark(page, "finger:1")).to_have_attribute("data-status", "capturing")
    try:
        reader.control("unplug")
        trouble = page.get_by_test_id("device-trouble")
        expect(trouble).to_contain_text(
            fill(ID["capture.device_gone"], device=ID["dev.fingerprint"], action=ID["action.retry"]),
            timeout=20_000,
        )
        expect(action(page, ID, "action.retry")).to_be_disabled()
        screen.look("visit-reader-unplugged")
    finally:
        reader.control("condition good")
        reader.control("replug")
        kit.wait_ready("fingerprint")
    expect(action(page, ID, "action.retry")).to_be_enabled(timeout=20_000)
    action(page, ID, "action.retry").click()
    expect(mark(page, "finger:1")).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
    expect(page.get_by_test_id("device-trouble")).to_have_count(0)
    # The kit hangs a moment as Start is tapped: the screen says it waits for the kit's answer
    # (it showed nothing for 30 s), and carries on when the answer comes.
    assert kit.kitd.process is not None
    expect(page.get_by_test_id("item-title")).to_have_text(ID["finger.2"])
    os.kill(kit.kitd.process.pid, signal.SIGSTOP)
    try:
        action(page, ID, "action.start").click()
        waiting = page.get_by_test_id("visit-waiting")
        expect(waiting).to_have_text(ID["visit.waiting"], timeout=10_000)
    finally:
        os.kill(kit.kitd.process.pid, signal.SIGCONT)
    expect(waiting).to_have_count(0, timeout=20_000)
    expect(mark(page, "finger:2")).to_have_attribute("data-status", "captured", timeout=CAPTURE_S)
    for item in FINGERS[2:]:
        take(page, item, ID)
    expect(page.get_by_test_id("item-title")).to_have_text(ID["eye.right"])
    action(page, ID, "action.start").click()
    frames = page.locator("#iris-img")
    expect(frames).to_have_attribute("data-frames", re.compile(r"^([3-9]|\d\d+)$"), timeout=20_000)
    # The power fails at the iris step.
    old_url = kit.url
    kit.kill_and_restart()
    assert kit.url == old_url
    signin = page.locator('main[data-screen="signin"]')
    expect(signin.get_by_role("alert")).to_have_text(ID["signin.idle"], timeout=30_000)
    # The page lost its requests while the daemon was away: expected here, not a fault.
    screen.problems[:] = [p for p in screen.problems if not p.startswith(f"request failed: {old_url}/")]
    type_on_keypad(page, "pin", OFFICER["pin"])
    page.get_by_role("button", name=ID["signin.submit"], exact=True).click()
    visit = on(page, "visit")  # straight back to the visit: no tap needed
    resumed = visit.get_by_test_id("resumed")
    expect(resumed).to_contain_text(ID["finger.1"])
    expect(resumed).to_contain_text(fill(ID["visit.resumed"], n=10, items="").split(":")[0])
    for item in FINGERS:
        expect(mark(page, item)).to_have_attribute("data-status", "to_retake")
        expect(mark(page, item)).to_contain_text("↻")
    expect(page.get_by_test_id("item-title")).to_have_text(ID["eye.right"])
    screen.look("visit-resumed")
    take(page, "iris:right", ID, start="action.retake")  # it was being captured: to retake
    take(page, "iris:left", ID)
    sign(page, ID)
    for item in FINGERS:
        take(page, item, ID, start="action.retake")
    finish(page, ID, screen, "-resumed")


def test_what_a_panel_button_did_shows_on_the_screen(screen: Screen, kit: ScreenKit) -> None:
    """The physical panel drives the same visit: the screen says what each press did (the
    officer pressed without looking), follows the visit, and opens the exception's reasons
    for Skip, which a reason and its confirmation need."""
    page = screen.page
    panel = kit.sims["panel"]
    open_visit(page, kit, "VIS-PANEL", ID)
    note = page.get_by_test_id("panel-note")
    # Nothing to capture before the identity is recorded: said, and nothing changes.
    panel.control("tap capture")
    expect(note).to_have_text(fill(ID["panel.did.meaningless"], button=ID["panel.button.capture"]))
    expect(on(page, "visit")).to_have_attribute("data-state", "identity")
    identity(page, ID)
    # Capture/Next between items starts the current one; the screen follows it to the end.
    first = page.get_by_test_id("item-title").inner_text()
    panel.control("tap capture")
    expect(note).to_have_text(fill(ID["panel.did.start"], button=ID["panel.button.capture"]))
    captured = page.locator('main[data-screen="visit"] .mark[data-status="captured"]')
    expect(captured).to_have_count(1, timeout=CAPTURE_S)
    expect(page.get_by_test_id("item-title")).not_to_have_text(first)
    screen.look("visit-panel-note")
    # Skip: the exception dialog opens on the screen for the item now current.
    panel.control("tap skip")
    expect(note).to_have_text(fill(ID["panel.did.exception_reasons"], button=ID["panel.button.skip"]))
    expect(page.get_by_role("dialog")).to_be_visible()
    screen.look("visit-panel-skip")
