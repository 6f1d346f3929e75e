"""The visit on the officer's touch screen: how soon a press, the eye and the pen show on it.

Its one job: measure the real app (kitd/screen/) in Debian's Chromium, headless through
Playwright, served by the real kitd on the three simulators, during a visit started on
the screen, each figure against a named reference measured in the same run:

* a press to its feedback: the fingerprint simulator's ``finger on`` (control channel)
  until the page has painted the feedback of that press (the message's ``data-frame``
  changes, then one animation frame); reference: the daemon's own ``assessment`` event
  received by a Python client of the event stream; goal: median <= 150 ms;
* iris preview frames shown per second: images the page decoded and showed
  (``#iris-img`` load events) over a few seconds; reference: MJPEG parts a Python client
  read from the same stream at the same time; goal: >= 10;
* pen point to ink on the screen: for each ``ink`` event, from the moment the kit read its
  first point (``read_at``) to the page painting those points; reference: the same event
  reaching a Python client of the stream.

Clocks: the page's ``Date.now()`` and Python's ``time.time()`` are the same host clock.
Three presses and a short iris window in the smoke pass; 20 presses otherwise.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from hil.browser import browser_unavailable, catalogue, new_screen, open_browser, start_screen_kit
from hil.events import EventRecorder
from hil.sample_orders import sample_order

GOAL_PRESS_MS = 150.0
GOAL_FPS = 10.0
# Records, in the page, when the feedback message (or the ink) changed and was painted.
WATCH = """(attribute) => {
  // The whole page is watched: the screen rebuilds its parts when the visit changes.
  window.__seen = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const value = change.target.getAttribute(attribute);
      requestAnimationFrame(() => window.__seen.push([value, Date.now()]));
    }
  }).observe(document.body, {attributes: true, subtree: true, attributeFilter: [attribute]});
  return true;
}"""


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.0f} ms, min {min(values):.0f}, max {max(values):.0f}, "
        f"n={len(values)}"
    )


def _wall(recorder_time: float) -> float:
    """A perf_counter stamp of the event recorder on the wall clock (seconds)."""
    return time.time() - (time.perf_counter() - recorder_time)


def _press_to_feedback(kit: Any, page: Any, events: EventRecorder, rounds: int) -> None:
    words = catalogue("id")
    reader = kit.sims["fingerprint"]
    reader.control("condition light")  # never passes: the session runs on, press after press
    page.locator("main.visit .actions").get_by_role("button", name=words["action.start"], exact=True).click()
    page.wait_for_function("() => document.querySelector('#live-msg')?.dataset.frame", timeout=30_000)
    screen_ms: list[float] = []
    event_ms: list[float] = []
    for _ in range(rounds):
        reader.control("finger off")
        time.sleep(0.4)
        page.evaluate(WATCH, "data-frame")
        already = len(events.events)
        pressed = time.time()
        reader.control("finger on")
        seen = page.wait_for_function(
            "() => window.__seen.length && window.__seen[0]", timeout=30_000
        ).json_value()
        screen_ms.append(seen[1] - pressed * 1000)
        assessed = next((e for e in list(events.events)[already:] if e["type"] == "assessment"), None)
        if assessed is not None:
            event_ms.append((_wall(assessed["received"]) - pressed) * 1000)
    reader.control("finger on")
    print(f"  a press (finger on) to its feedback painted on the screen: {_ms(screen_ms)}")
    if event_ms:
        print(f"    reference, the daemon's assessment event reaching a Python client: {_ms(event_ms)}")
        extra = statistics.median(screen_ms) - statistics.median(event_ms)
        print(f"    the screen adds {extra:.0f} ms (the press image is fetched after the words)")
    met = "met" if statistics.median(screen_ms) <= GOAL_PRESS_MS else "NOT met"
    print(f"    goal, median <= {GOAL_PRESS_MS:.0f} ms: {met}")


def _stream_parts(url: str, token: str, seconds: float, counted: list[int]) -> None:
    request = urllib.request.Request(url, headers={"Cookie": f"kitd_token={token}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = reply.readline()
            if line.startswith(b"--kitframe"):
                counted[0] += 1


def _iris_fps(kit: Any, page: Any, seconds: float) -> None:
    words = catalogue("id")
    eye = kit.sims["iris_camera"]
    eye.control("set eyelid=0.6")  # the session runs on: the preview is what is measured
    try:
        page.locator("main.visit .actions").get_by_role(
            "button", name=words["action.start"], exact=True
        ).click()
        page.wait_for_function(
            "() => +document.querySelector('#iris-img')?.dataset.shown > 3", timeout=30_000
        )
        counted = [0]
        token = kit.kitd.sign_in("technician")
        reader = threading.Thread(
            target=_stream_parts, args=(kit.url + "/api/v1/stream/iris.mjpg", token, seconds, counted)
        )
        first = page.evaluate("() => [+document.querySelector('#iris-img').dataset.shown, Date.now()]")
        reader.start()
        time.sleep(seconds)
        last = page.evaluate("() => [+document.querySelector('#iris-img').dataset.shown, Date.now()]")
        reader.join(seconds + 10)
    finally:
        eye.control("set eyelid=1.0")
    fps = (last[0] - first[0]) / ((last[1] - first[1]) / 1000)
    print(f"  iris preview frames shown by the page: {fps:.1f} per second over {seconds:.0f} s")
    print(f"    reference, MJPEG parts a Python client read meanwhile: {counted[0] / seconds:.1f} per second")
    print(f"    goal, >= {GOAL_FPS:.0f} per second: {'met' if fps >= GOAL_FPS else 'NOT met'}")


def _pen_to_ink(kit: Any, page: Any, events: EventRecorder) -> None:
    words = catalogue("id")
    page.locator("main.visit .actions").get_by_role("button", name=words["action.start"], exact=True).click()
    page.wait_for_selector("canvas#ink", timeout=30_000)
    page.evaluate(WATCH, "data-points")
    accept = page.locator("main.visit .actions").get_by_role(
        "button", name=words["action.accept_signature"], exact=True
    )
    accept.wait_for(state="visible")
    page.wait_for_function(
        "() => !document.querySelector('#act-accept')?.disabled && window.__seen.length > 5", timeout=60_000
    )
    time.sleep(1.0)
    drawn = page.evaluate("() => window.__seen")
    inks = [e for e in list(events.events) if e["type"] == "ink"]
    total: list[float] = []
    delivery: list[float] = []
    for ink in inks:
        upto = ink["data"]["from"] + len(ink["data"]["points"])
        painted = next((at for points, at in drawn if points and int(points) >= upto), None)
        if painted is None:
            continue
        read_at = ink["data"]["read_at"] * 1000
        total.append(painted - read_at)
        delivery.append(_wall(ink["received"]) * 1000 - read_at)
    if not total:
        print("  pen point to ink: no ink event was matched to a paint")
        return
    print(f"  pen point (as the kit read it) to its ink painted on the screen: {_ms(total)}")
    print(f"    reference, the same ink event reaching a Python client: {_ms(delivery)}")
    print(f"    ({len(inks)} ink events, at most one every 50 ms while the pen writes)")
    accept.click()


def run(smoke: bool) -> None:
    reason = browser_unavailable()
    if reason is not None:
        print(f"  skipped: {reason}")
        return
    words = catalogue("id")
    with tempfile.TemporaryDirectory(prefix="kitd-bench-visit-screen-") as workdir:
        kit = start_screen_kit(Path(workdir), {"fingerprint.capture_timeout_s": 300.0})
        events = None
        try:
            kit.post_orders([sample_order("BENCH-001")])
            with open_browser() as browser:
                screen = new_screen(browser, "800x480")
                try:
                    page = screen.page
                    kit.sign_in_browser(page)
                    page.locator('[data-order-id="BENCH-001"]').click()
                    page.get_by_role("button", name=words["order.start"], exact=True).click()
                    page.get_by_test_id("identity-submit").click()
                    page.wait_for_selector('main[data-state="capturing"]')
                    events = EventRecorder(kit.url, kit.kitd.sign_in("technician"))
                    _press_to_feedback(kit, page, events, 3 if smoke else 20)
                    # The rest of the fingers excepted on the screen's API: the irises next.
                    (visit,) = kit.api("officer", "GET", "/api/v1/visits")
                    kit.sims["fingerprint"].control("condition good")
                    for n in range(1, 11):
                        body = {"reason": "amputated", "confirm": True}
                        kit.api(
                            "officer", "POST", f"/api/v1/visits/{visit['id']}/items/finger:{n}/except", body
                        )
                    page.wait_for_selector('main.visit [data-item="iris:right"][aria-current="step"]')
                    _iris_fps(kit, page, 3.0 if smoke else 8.0)
                    kit.api(
                        "officer",
                        "POST",
                        f"/api/v1/visits/{visit['id']}/items/iris:right/except",
                        {"reason": "missing", "confirm": True},
                    )
                    kit.api(
                        "officer",
                        "POST",
                        f"/api/v1/visits/{visit['id']}/items/iris:left/except",
                        {"reason": "missing", "confirm": True},
                    )
                    page.wait_for_selector('main.visit [data-item="signature"][aria-current="step"]')
                    _pen_to_ink(kit, page, events)
                finally:
                    screen.close()
        finally:
            if events is not None:
                events.close()
            kit.end_visits()
            kit.stop()
