"""The technician's page on the touch screen in a real browser (Debian's Chromium, headless,
through Playwright) against the real kitd on the simulators.

A technician signs in and lands on their page: runs the checks (a simulator's device
unplugged, so that its ``<device>.present`` fails) and reads the failed check first with the
daemon's Indonesian words, then its English ones; opens the history, a stored run and one
check's trend. Officers and supervisors never get the page. The guided tests are driven end
to end on the screen: the simulated panel's buttons tapped through its control channel and
its LEDs confirmed with Ya / Tidak; the simulated pad's scripted pen (its `draw` commands)
at the four corners and along a line, drawn live on the page's canvas; one cancelled. The
assertions are about what the technician sees: the catalogue's and the daemon's words, marks,
the order of the findings. Every screen reached is kept as artifacts/screens/<size>/tech-*.png
at both sizes and checked with axe-core (tests/test_screen.py's rules). One daemon for the
module.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

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
    sign_in_on_screen,
    start_screen_kit,
)
from hil.rig import simulation_officer, wait_until
from hil.sample_orders import sample_order

KIT_ZONE = "Asia/Makassar"
ID = catalogue("id")
EN = catalogue("en")
TECHNICIAN = simulation_officer("technician")
# The findings' groups, in the order the page shows them.
GROUPS = ["failed", "warning", "not_available", "ok"]
RUN_S = 60_000  # generous: a full run takes about 6 s on the simulators


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScreenKit]:
    need_browser()
    kit = start_screen_kit(tmp_path_factory.mktemp("screen-tech"), {"kit.timezone": KIT_ZONE})
    try:
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
    started: list[str] = []

    def note_start(response: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/api/v1/diagnostics/guided"):
            if response.status == 201:
                started.append(response.json()["guided_id"])

    try:
        with screen_on(kit, browser, getattr(request, "param", "800x480"), "America/Sao_Paulo") as screen:
            screen.page.on("response", note_start)
            yield screen
    finally:
        kit.set_language("technician", "id")
        # A test that failed half-way leaves no guided test running for the next one.
        for guided_id in started:
            if kit.api("technician", "GET", f"/api/v1/diagnostics/guided/{guided_id}")["state"] == "running":
                kit.api("technician", "DELETE", f"/api/v1/diagnostics/guided/{guided_id}")


def on(page: Any, name: str) -> Any:
    main = page.locator(f'main[data-screen="{name}"]')
    expect(main).to_be_visible()
    return main


def tab(page: Any, words: dict[str, str], name: str) -> Any:
    return page.get_by_role("tab", name=words[f"tech.tab.{name}"], exact=True)


def check_row(page: Any, check: str) -> Any:
    return page.locator(f'[data-testid="diag-checks"] [data-check="{check}"]')


def unplugged_reader(kit: ScreenKit) -> Any:
    """The fingerprint reader's simulator unplugged (kitd sees it gone); replug() undoes it."""
    reader = kit.sims["fingerprint"]
    reader.control("unplug")
    kit.kitd.wait_for_status("fingerprint", "disconnected")
    return reader


def replug_reader(kit: ScreenKit) -> None:
    kit.sims["fingerprint"].control("replug")
    kit.wait_ready("fingerprint")


# ---------------------------------------------------------------------------------------


def test_a_technician_runs_the_checks_and_reads_the_failed_one_first(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    unplugged_reader(kit)
    try:
        on(page, "signin")
        sign_in_on_screen(page, TECHNICIAN["nip"], TECHNICIAN["pin"])
        # A technician's sign-in opens their page, on the checks.
        tech = on(page, "tech")
        expect(tab(page, ID, "checks")).to_have_attribute("aria-selected", "true")
        expect(tech.get_by_test_id("diag-none")).to_have_text(ID["diag.none"])
        screen.look("tech-start")

        full = tech.get_by_role("button", name=ID["diag.run_full"], exact=True)
        quick = tech.get_by_role("button", name=ID["diag.run_quick"], exact=True)
        with page.expect_response(re.compile(r"/api/v1/diagnostics$")) as answer:
            full.click()
            # While it runs (about 6 s): a busy indicator that says so, and no second run.
            busy = tech.get_by_test_id("diag-busy")
            expect(busy).to_be_visible()
            expect(busy).to_contain_text(ID["diag.running_full"])
            expect(full).to_be_disabled()
            expect(quick).to_be_disabled()
            expect(tech.locator("#tech-body")).to_have_attribute("aria-busy", "true")
            expect(page.get_by_test_id("tech-live")).to_have_text(ID["diag.running_full"])
            screen.look("tech-running", sizes=(screen.size,))
        run = answer.value.json()
        assert answer.value.status == 200 and not run["quick"], run
        summary = tech.get_by_test_id("diag-summary")
        expect(summary).to_have_attribute("data-run-id", run["run_id"], timeout=RUN_S)
        expect(busy).to_be_hidden()
        expect(full).to_be_enabled()
        expect(summary).to_have_attribute("data-status", "failed")
        expect(summary).to_contain_text(ID["diag.kind_full"])
        expect(page.get_by_test_id("tech-live")).to_have_text(
            fill(ID["diag.done"], status=ID["diag.status.failed"])
        )

        # Worst first: the groups in order, each with its count; the failed reader on top.
        present = next(c for c in run["checks"] if c["id"] == "fingerprint.present")
        assert present["status"] == "failed" and present["message"], present
        groups = tech.locator("[data-group]")
        shown = [g for g in GROUPS if any(c["status"] == g for c in run["checks"])]
        expect(groups).to_have_count(len(shown))
        assert [groups.nth(i).get_attribute("data-group") for i in range(len(shown))] == shown
        failed = [c for c in run["checks"] if c["status"] == "failed"]
        expect(groups.first.get_by_role("heading")).to_have_text(
            f"✕{ID['diag.status.failed']} ({len(failed)})"
        )
        rows = tech.locator("[data-check]")
        expect(rows).to_have_count(len(run["checks"]))
        statuses = [rows.nth(i).get_attribute("data-status") for i in range(len(run["checks"]))]
        assert statuses == sorted(statuses, key=GROUPS.index), statuses
        row = check_row(page, "fingerprint.present")
        expect(row).to_have_attribute("data-status", "failed")
        expect(row.get_by_test_id("diag-message")).to_have_text(present["message"]["id"])
        assert rows.first.get_attribute("data-status") == "failed"
        # Its values, compact, and its trend one tap away.
        for key in present["values"]:
            expect(row.get_by_test_id("diag-values")).to_contain_text(key)
        expect(
            row.get_by_role("button", name=fill(ID["diag.trend_of"], check="fingerprint.present"))
        ).to_be_visible()
        # An ok check has no message, and is said to be ok.
        ok = next(c for c in run["checks"] if c["status"] == "ok")
        expect(check_row(page, ok["id"]).get_by_test_id("diag-message")).to_have_count(0)
        expect(check_row(page, ok["id"])).to_contain_text(ID["diag.status.ok"])
        screen.look("tech-checks-failed")

        # In English: the daemon's own English words, the page's words in English.
        page.get_by_test_id("status-bar").get_by_role("button", name=EN["lang.en"], exact=True).click()
        expect(row.get_by_test_id("diag-message")).to_have_text(present["message"]["en"])
        expect(tab(page, EN, "checks")).to_have_attribute("aria-selected", "true")
        expect(groups.first.get_by_role("heading")).to_have_text(
            f"✕{EN['diag.status.failed']} ({len(failed)})"
        )
        expect(summary).to_contain_text(EN["diag.kind_full"])
        screen.look("tech-checks-failed-en")

        # The quick run: only the quick checks, shown in place of the full one.
        with page.expect_response(re.compile(r"/api/v1/diagnostics\?quick=1$")) as answer:
            tech.get_by_role("button", name=EN["diag.run_quick"], exact=True).click()
        quick_run = answer.value.json()
        expect(summary).to_have_attribute("data-run-id", quick_run["run_id"], timeout=RUN_S)
        expect(summary).to_have_attribute("data-quick", "true")
        expect(rows).to_have_count(len(quick_run["checks"]))
        assert len(quick_run["checks"]) < len(run["checks"])
    finally:
        replug_reader(kit)


def test_the_history_and_one_checks_trend(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    # Two runs to read: the reader away, then back.
    unplugged_reader(kit)
    try:
        away = kit.api("technician", "GET", "/api/v1/diagnostics?quick=1")
    finally:
        replug_reader(kit)
    back = kit.api("technician", "GET", "/api/v1/diagnostics?quick=1")
    assert away["status"] == "failed" and back["status"] != "failed", (away["status"], back["status"])
    kit.sign_in_browser(page, "technician")
    tech = on(page, "tech")
    tab(page, ID, "history").click()
    expect(tab(page, ID, "history")).to_have_attribute("aria-selected", "true")
    runs = tech.get_by_test_id("diag-runs").locator("li[data-run-id]")
    expect(runs.first).to_have_attribute("data-run-id", back["run_id"])
    expect(runs.nth(1)).to_have_attribute("data-run-id", away["run_id"])
    expect(runs.nth(1)).to_have_attribute("data-status", "failed")
    expect(runs.nth(1)).to_contain_text(ID["diag.status.failed"])
    expect(runs.nth(1)).to_contain_text(ID["diag.kind_quick"])
    # The run's time, to the second, in the kit's zone (WITA) as id-ID writes it.
    when = dt.datetime.fromisoformat(away["started_at"]).astimezone(ZoneInfo(KIT_ZONE)).strftime("%H.%M.%S")
    expect(runs.nth(1)).to_contain_text(when)
    failed = away["counts"]["failed"]
    expect(runs.nth(1).get_by_test_id("diag-counts")).to_contain_text(f"✕{failed}")
    screen.look("tech-history")

    # A stored run opens on the checks tab, its failed reader first.
    runs.nth(1).get_by_role("button").click()
    expect(tab(page, ID, "checks")).to_have_attribute("aria-selected", "true")
    expect(tech.get_by_test_id("diag-summary")).to_have_attribute("data-run-id", away["run_id"])
    expect(tech.locator("[data-check]").first).to_have_attribute("data-check", "fingerprint.present")

    # The check's trend: its status run after run, newest first in the list.
    check_row(page, "fingerprint.present").get_by_role(
        "button", name=fill(ID["diag.trend_of"], check="fingerprint.present")
    ).click()
    expect(tab(page, ID, "history")).to_have_attribute("aria-selected", "true")
    expect(tech.get_by_test_id("trend-title")).to_have_text(
        fill(ID["trend.title"], check="fingerprint.present")
    )
    history = kit.api("technician", "GET", "/api/v1/diagnostics/history?limit=20&check=fingerprint.present")
    findings = history["findings"]
    items = tech.get_by_test_id("trend-list").locator("li")
    expect(items).to_have_count(len(findings))
    expect(items.first).to_have_attribute("data-run-id", back["run_id"])
    expect(items.nth(1)).to_have_attribute("data-run-id", away["run_id"])
    expect(items.nth(1)).to_have_attribute("data-status", "failed")
    strip = tech.get_by_test_id("trend-strip").locator("li")
    expect(strip).to_have_count(len(findings))
    assert [strip.nth(i).get_attribute("data-status") for i in range(len(findings))] == [
        f["status"] for f in findings
    ]
    screen.look("tech-trend")

    # A check with numbers: a line of each over the runs.
    tech.get_by_test_id("trend-back").click()
    expect(runs.first).to_be_visible()
    runs.first.get_by_role("button").click()
    check_row(page, "unit.disk").get_by_role(
        "button", name=fill(ID["diag.trend_of"], check="unit.disk")
    ).click()
    spark = tech.locator('figure.spark[data-key="free_bytes"]')
    expect(spark).to_be_visible()
    expect(spark.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^free_bytes: "))
    screen.look("tech-trend-numbers")


@pytest.mark.parametrize("role", ["officer", "supervisor"])
def test_officers_and_supervisors_do_not_get_the_page(screen: Screen, kit: ScreenKit, role: str) -> None:
    page = screen.page
    officer = simulation_officer(role)
    on(page, "signin")
    sign_in_on_screen(page, officer["nip"], officer["pin"])
    orders = on(page, "orders")
    expect(orders.get_by_role("heading", name=ID["orders.title"])).to_be_visible()
    expect(page.get_by_test_id("tech-open")).to_have_count(0)
    expect(page.get_by_role("button", name=ID["tech.open"])).to_have_count(0)
    # Nor the checks behind it.
    reply = page.context.request.get(kit.url + "/api/v1/diagnostics/history")
    assert reply.status == 403, reply.status


def test_a_technician_goes_to_the_orders_and_back(screen: Screen, kit: ScreenKit) -> None:
    page = screen.page
    kit.sign_in_browser(page, "technician")
    tech = on(page, "tech")
    tech.get_by_role("button", name=ID["tech.orders"], exact=True).click()
    orders = on(page, "orders")
    orders.get_by_role("button", name=ID["tech.open"]).click()
    on(page, "tech")
    expect(tab(page, ID, "checks")).to_have_attribute("aria-selected", "true")


# ---------------------------------------------------------------------------------------
# The guided tests, on the screen, with the simulated panel and pad


def leds_lit(kit: ScreenKit) -> set[str]:
    state = json.loads(kit.sims["panel"].control("state"))
    return {name for name, value in state["leds"].items() if value}


def step(page: Any, step_id: str) -> Any:
    return page.get_by_test_id("guided-steps").locator(f'li[data-step="{step_id}"]')


def start_guided(page: Any, kit: ScreenKit, test: str) -> dict[str, Any]:
    """On the technician's page, the guided test ``test`` started by its button; its state."""
    kit.sign_in_browser(page, "technician")
    on(page, "tech")
    tab(page, ID, "guided").click()
    expect(page.locator(".gintro")).to_have_text(ID["guided.intro"])
    assert "null" not in page.locator("#tech-body").inner_text()  # no piece left out shown as text
    started = re.compile(r"/api/v1/diagnostics/guided$")
    with page.expect_response(lambda r: bool(started.search(r.url)) and r.request.method == "POST") as answer:
        page.get_by_role("button", name=ID[f"guided.test.{test}"], exact=True).click()
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()


def test_the_panel_guided_on_the_screen(screen: Screen, kit: ScreenKit) -> None:
    """Each button pressed on the simulated panel is ticked as it is read; each LED lit alone
    is confirmed with Ya, the buzzer with "Ya, terdengar": passed. Then again, the error LED
    answered Tidak: failed, with the daemon's words for what to do."""
    page = screen.page
    panel = kit.sims["panel"]
    kit.wait_ready("panel")
    test = start_guided(page, kit, "panel")
    prompt = page.get_by_test_id("guided-prompt")
    first = test["steps"][0]
    expect(prompt).to_have_text(first["prompt"]["id"])
    expect(prompt).to_have_attribute("data-step", "press_capture")
    expect(page.get_by_test_id("tech-live")).to_have_text(first["prompt"]["id"])
    expect(step(page, "press_capture")).to_have_attribute("aria-current", "step")
    screen.look("tech-guided-panel-press")
    panel.control("tap skip")  # not the one asked for: said under the prompt, nothing ticked
    expect(page.get_by_test_id("guided-seen")).to_contain_text("other_presses skip")
    expect(step(page, "press_capture")).to_have_attribute("data-status", "waiting")
    for button in ("capture", "retry", "skip", "cancel"):
        panel.control(f"tap {button}")
        expect(step(page, f"press_{button}")).to_have_attribute("data-status", "done")
        expect(step(page, f"press_{button}")).to_contain_text("✓")
    prompts = {s["id"]: s["prompt"] for s in test["steps"]}
    for led in ("ready", "capturing", "error"):
        expect(prompt).to_have_attribute("data-step", f"led_{led}")
        expect(prompt).to_have_text(prompts[f"led_{led}"]["id"])
        # The LED asked about is lit alone (the kit's panel thread writes it a moment after
        # the step is announced: the page may be first).
        wait_until(
            lambda led=led: leds_lit(kit) == {led},
            lambda led=led: f"asked about the {led} LED, the panel lit {leds_lit(kit)}",
            10.0,
        )
        if led == "ready":
            screen.look("tech-guided-panel-led")
        page.get_by_role("button", name=ID["guided.yes_lit"], exact=True).click()
        expect(step(page, f"led_{led}")).to_have_attribute("data-status", "done")
    expect(prompt).to_have_attribute("data-step", "buzzer")
    expect(prompt).to_have_text(prompts["buzzer"]["id"])
    heard = page.get_by_role("button", name=ID["guided.yes_heard"], exact=True)
    expect(heard).to_be_visible()
    expect(page.get_by_role("button", name=ID["guided.no"], exact=True)).to_be_visible()
    history = json.loads(panel.control("history"))["changes"]
    assert any(c["part"] == "buzzer" and c["value"] > 0 for c in history), "the buzzer never sounded"
    heard.click()
    result = page.get_by_test_id("guided-result")
    expect(result).to_have_attribute("data-state", "passed")
    expect(result).to_contain_text(ID["guided.state.passed"])
    expect(page.get_by_test_id("guided-cancel")).to_have_count(0)
    expect(page.get_by_test_id("tech-live")).to_have_text(ID["guided.state.passed"])
    screen.look("tech-guided-panel-passed")

    # Again, the error LED seen dark.
    page.get_by_role("button", name=ID["guided.done"], exact=True).click()
    with page.expect_response(re.compile(r"/api/v1/diagnostics/guided$")):
        page.get_by_role("button", name=ID["guided.test.panel"], exact=True).click()
    for button in ("capture", "retry", "skip", "cancel"):
        panel.control(f"tap {button}")
        expect(step(page, f"press_{button}")).to_have_attribute("data-status", "done")
    for led in ("ready", "capturing"):
        expect(prompt).to_have_attribute("data-step", f"led_{led}")
        page.get_by_role("button", name=ID["guided.yes_lit"], exact=True).click()
    expect(prompt).to_have_attribute("data-step", "led_error")
    with page.expect_response(re.compile(r"/confirm$")) as answer:
        page.get_by_role("button", name=ID["guided.no"], exact=True).click()
    ended = answer.value.json()
    assert ended["state"] == "failed", ended
    expect(result).to_have_attribute("data-state", "failed")
    expect(result).to_contain_text(ID["guided.state.failed"])
    expect(page.get_by_test_id("guided-message")).to_have_text(ended["finding"]["message"]["id"])
    expect(step(page, "led_error")).to_have_attribute("data-status", "failed")
    expect(step(page, "buzzer")).to_have_attribute("data-status", "skipped")
    screen.look("tech-guided-panel-failed")
    page.get_by_test_id("status-bar").get_by_role("button", name=EN["lang.en"], exact=True).click()
    expect(page.get_by_test_id("guided-message")).to_have_text(ended["finding"]["message"]["en"])
    expect(result).to_contain_text(EN["guided.state.failed"])
    # Its finding is in the history, as a guided test's run.
    tab(page, EN, "history").click()
    latest = page.get_by_test_id("diag-runs").locator("li[data-run-id]").first
    expect(latest).to_have_attribute("data-run-id", ended["run_id"])
    expect(latest).to_contain_text(EN["diag.kind_guided"])
    expect(latest).to_have_attribute("data-status", "failed")


def test_a_press_read_before_the_start_is_answered_is_ticked(screen: Screen, kit: ScreenKit) -> None:
    """The technician presses Rekam/Lanjut the moment the test starts: the kit reads it before
    the screen has the start's answer. Its event, come early, is ticked once the answer
    comes (the screen's own re-reading refused here, so only the event can tick it). A CI
    run lost such a press under load."""
    page = screen.page
    panel = kit.sims["panel"]
    kit.wait_ready("panel")
    kit.sign_in_browser(page, "technician")
    on(page, "tech")
    tab(page, ID, "guided").click()
    page.route(
        re.compile(r"/api/v1/diagnostics/guided/[0-9a-f]+$"),
        lambda route: route.abort("aborted") if route.request.method == "GET" else route.fallback(),
    )

    def answered_late(route: Any) -> None:
        if route.request.method != "POST":  # the tab's own look for a test running
            return route.fallback()
        answer = route.fetch()
        guided_id = answer.json()["guided_id"]
        panel.control("tap capture")
        wait_until(
            lambda: (
                kit.api("technician", "GET", f"/api/v1/diagnostics/guided/{guided_id}")["current"]
                == "press_retry"
            ),
            "the kit read the press",
        )
        time.sleep(1.0)  # the event's way to the browser, which has no answer yet
        route.fulfill(response=answer)

    page.route(re.compile(r"/api/v1/diagnostics/guided$"), answered_late)
    page.get_by_role("button", name=ID["guided.test.panel"], exact=True).click()
    expect(step(page, "press_capture")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("guided-prompt")).to_have_attribute("data-step", "press_retry")


def test_a_test_left_running_is_found_again_after_a_reload(screen: Screen, kit: ScreenKit) -> None:
    """The kiosk's browser reloads mid-test: the guided tab finds the test still running (it
    holds the panel, and no visit can start), to carry on or cancel it."""
    page = screen.page
    kit.wait_ready("panel")
    test = start_guided(page, kit, "panel")
    page.reload()
    on(page, "tech")
    tab(page, ID, "guided").click()
    prompt = page.get_by_test_id("guided-prompt")
    expect(prompt).to_have_attribute("data-step", test["steps"][0]["id"])
    page.get_by_test_id("guided-cancel").click()
    page.get_by_test_id("guided-done").click()
    expect(page.get_by_test_id("guided-start-panel")).to_be_visible()
    ended = kit.api("technician", "GET", f"/api/v1/diagnostics/guided/{test['guided_id']}")
    assert ended["state"] == "cancelled", ended
    assert kit.api("technician", "GET", "/api/v1/diagnostics/guided") == {"running": None}


def test_a_lost_event_is_made_good_by_the_screens_own_reading(screen: Screen, kit: ScreenKit) -> None:
    """With no event stream at all (refused here), a press is still ticked: while a test runs
    the screen reads its state with the status bar's poll."""
    page = screen.page
    page.route(re.compile(r"/api/v1/events"), lambda route: route.abort("aborted"))
    panel = kit.sims["panel"]
    kit.wait_ready("panel")
    start_guided(page, kit, "panel")
    panel.control("tap capture")
    expect(step(page, "press_capture")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("guided-prompt")).to_have_attribute("data-step", "press_retry")


def test_the_pad_guided_on_the_screen_with_the_pen_drawn_live(screen: Screen, kit: ScreenKit) -> None:
    """The simulated pen taps the four corners (each target ticked as it is touched, the
    points drawn as they come), then draws a ruler line: passed. Another start is cancelled
    on the screen: the pad is free again."""
    page = screen.page
    pad = kit.sims["signature"]
    kit.wait_ready("signature")
    assert pad.control("draw corners").endswith("packets for the next start")
    test = start_guided(page, kit, "pad")
    prompt = page.get_by_test_id("guided-prompt")
    canvas = page.locator("canvas#gpad")
    expect(canvas).to_be_visible()
    corners = [s["id"] for s in test["steps"] if s["kind"] == "touch"]
    assert corners == ["corner_top_left", "corner_top_right", "corner_bottom_right", "corner_bottom_left"]
    for corner in corners:
        expect(step(page, corner)).to_have_attribute("data-status", "done")
    expect(prompt).to_have_attribute("data-step", "line")
    expect(prompt).to_have_text(test["steps"][-1]["prompt"]["id"])
    expect(canvas).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    after_corners = int(canvas.get_attribute("data-points") or 0)
    screen.look("tech-guided-pad-line")
    assert pad.control("draw line").startswith("playing")
    result = page.get_by_test_id("guided-result")
    expect(result).to_have_attribute("data-state", "passed", timeout=RUN_S)
    expect(result).to_contain_text(ID["guided.state.passed"])
    drawn = int(canvas.get_attribute("data-points") or 0)
    assert drawn > after_corners + 100, (after_corners, drawn)  # the line's points came live
    expect(page.get_by_test_id("guided-values")).to_contain_text("coverage")
    screen.look("tech-guided-pad-passed")

    # Cancelled on the screen: the pad is the kit's again.
    page.get_by_role("button", name=ID["guided.done"], exact=True).click()
    pad.control("draw path 4800,3000;5200,3200")  # the pen resting mid-pad: no corner
    with page.expect_response(re.compile(r"/api/v1/diagnostics/guided$")):
        page.get_by_role("button", name=ID["guided.test.pad"], exact=True).click()
    expect(prompt).to_have_attribute("data-step", "corner_top_left")
    page.get_by_role("button", name=ID["guided.cancel"], exact=True).click()
    expect(result).to_have_attribute("data-state", "cancelled")
    expect(result).to_contain_text(ID["guided.state.cancelled"])
    assert kit.kitd.devices()["signature"]["status"] == "ready"
    screen.look("tech-guided-pad-cancelled", sizes=(screen.size,))


def test_a_guided_test_refused_for_an_open_visit_is_said_to_the_technician(
    screen: Screen, kit: ScreenKit
) -> None:
    """An officer's visit is open (it holds the panel and the pad): the pad's guided test is
    refused (visit_active), and the technician reads the catalogue's words for it (the visit
    holds the devices until it ends), not the officer's reason a new visit cannot start."""
    page = screen.page
    kit.post_orders([sample_order("TECH-BUSY", name="Sukinah")])
    visit = kit.api("officer", "POST", "/api/v1/visits", {"order_id": "TECH-BUSY"})
    try:
        kit.sign_in_browser(page, "technician")
        on(page, "tech")
        tab(page, ID, "guided").click()
        page.get_by_role("button", name=ID["guided.test.pad"], exact=True).click()
        expect(page.get_by_test_id("guided-error")).to_have_text(ID["error.visit_active"])
    finally:
        kit.end_visits()
    assert kit.api("officer", "GET", f"/api/v1/visits/{visit['id']}")["state"] == "ended"
