"""The officer's touch screen: how soon it is ready, how big it is, how soon it shows a device gone.

Its one job: measure the real app (kitd/screen/) in Debian's Chromium, headless through
Playwright, served by the real kitd on the three simulators with the kit's own device
timings (not the rig's shortened ones), each figure against a named reference measured in
the same run:

* the first screen ready: from the navigation's start to the sign-in screen shown
  (``main[data-screen="signin"]`` with its keypad), read in the page's own clock; a fresh
  browser context each round, so nothing is cached; reference: the same browser loading
  one static file from the same server and the same route (``/screen/i18n/en.json``: no
  script, nothing else to fetch), navigation start to its load event;
* the app's size: the bytes of kitd/screen/'s files, and the bytes the first screen
  transferred (Resource Timing, headers included, every request until ready: the page, its
  files, the catalogues and its first API calls); reference: the static file's transfer;
* a device's unplug (the fingerprint simulator's control channel) until the status bar
  shows it not connected; reference: the daemon's own ``GET /api/v1/devices`` noticing it,
  polled from the same moment; goal: a few seconds (3 s).

One round of each in the smoke pass; 10 loads and 5 unplugs otherwise.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hil.browser import (
    CHROMIUM,
    DEVICE_IDS,
    SCREEN_DIR,
    ScreenKit,
    browser_unavailable,
    catalogue,
    new_screen,
    open_browser,
    start_screen_kit,
)
from hil.rig import TEST_SETTINGS
from kitd.cli.daemon_client import DaemonClient
from kitd.config import defaults

GOAL_S = 3.0
REFERENCE_PATH = "/screen/i18n/en.json"
READY = """() => {
  const main = document.querySelector('main[data-screen="signin"]');
  return main && main.querySelector("button") ? performance.now() : 0;
}"""
TRANSFERRED = """(until) => {
  const entries = performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"));
  const before = entries.filter((e) => e.responseEnd <= until + 1);
  return {bytes: before.reduce((sum, e) => sum + (e.transferSize || 0), 0), requests: before.length};
}"""
REFERENCE_LOADED = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return {ms: nav.loadEventEnd, bytes: nav.transferSize};
}"""


def _median_ms(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"median {statistics.median(values):.1f} ms, min {low:.1f}, max {high:.1f}, n={len(values)}"


def _first_screen(kit: ScreenKit, browser: Any, rounds: int) -> None:
    ready_ms: list[float] = []
    transferred: list[int] = []
    requests = 0
    reference_ms: list[float] = []
    reference_bytes = 0
    # One round of each first, not counted: the browser's own first navigation is slower.
    for round_number in range(rounds + 1):
        screen = new_screen(browser, "800x480")
        try:
            screen.page.goto(kit.url + "/", wait_until="commit")
            ready = screen.page.wait_for_function(READY, polling=5, timeout=30_000).json_value()
            sent = screen.page.evaluate(TRANSFERRED, ready)
            if round_number:
                ready_ms.append(ready)
                transferred.append(sent["bytes"])
                requests = sent["requests"]
        finally:
            screen.close()
        screen = new_screen(browser, "800x480")
        try:
            screen.page.goto(kit.url + REFERENCE_PATH, wait_until="load")
            loaded = screen.page.evaluate(REFERENCE_LOADED)
            if round_number:
                reference_ms.append(loaded["ms"])
                reference_bytes = loaded["bytes"]
        finally:
            screen.close()
    files = [p for p in SCREEN_DIR.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    largest = max(files, key=lambda p: p.stat().st_size)
    print(f"  first screen (sign-in) ready after navigation, fresh context: {_median_ms(ready_ms)}")
    print(
        f"    reference, {REFERENCE_PATH} from the same server, to its load event: {_median_ms(reference_ms)}"
    )
    ratio = statistics.median(ready_ms) / statistics.median(reference_ms)
    print(f"    first screen / reference: {ratio:.1f}x")
    print(
        f"  app size: {size:,} bytes in {len(files)} files of kitd/screen/ "
        f"(largest {largest.relative_to(SCREEN_DIR)}: {largest.stat().st_size:,})"
    )
    print(
        f"    transferred for the first screen: {statistics.median(transferred):,.0f} bytes "
        f"in {requests} requests (headers included)"
    )
    print(
        f"    reference, {REFERENCE_PATH}: {reference_bytes:,} bytes; "
        f"first screen / reference: {statistics.median(transferred) / max(reference_bytes, 1):.0f}x"
    )


class DaemonWatch:
    """Polls the daemon's GET /api/v1/devices on a thread until ``device`` is not ready."""

    def __init__(self, kit: ScreenKit, device: str) -> None:
        self.client = DaemonClient(kit.url, kit.kitd.sign_in("technician"))
        self.device = device
        self.noticed: float | None = None
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.stop = threading.Event()

    def _poll(self) -> None:
        while not self.stop.is_set():
            reply = self.client.request("GET", "/api/v1/devices")
            devices = {d["id"]: d for d in reply.json()} if reply.status == 200 else {}
            if devices.get(self.device, {}).get("status") not in (None, "ready", "busy"):
                self.noticed = time.perf_counter()
                return
            time.sleep(0.005)


def _unplug_to_status_bar(kit: ScreenKit, browser: Any, rounds: int) -> None:
    words = catalogue("id")
    gone = words["device.disconnected"]
    chip = 'header[data-testid="status-bar"] [data-device="fingerprint"]'
    screen_s: list[float] = []
    daemon_s: list[float] = []
    reader = kit.sims["fingerprint"]
    screen = new_screen(browser, "800x480")
    try:
        kit.sign_in_browser(screen.page)
        for _ in range(rounds):
            screen.page.wait_for_function(
                f"() => document.querySelector('{chip}')?.textContent.includes({words['device.ready']!r})",
                timeout=30_000,
            )
            watch = DaemonWatch(kit, "fingerprint")
            watch.thread.start()
            page_start = screen.page.evaluate("performance.now()")
            started = time.perf_counter()
            reader.control("unplug")
            shown = (
                f"() => document.querySelector('{chip}')?.textContent.includes({gone!r}) && performance.now()"
            )
            seen = screen.page.wait_for_function(
                shown,
                polling=5,
                timeout=30_000,
            ).json_value()
            screen_s.append((seen - page_start) / 1000)
            watch.thread.join(30)
            watch.stop.set()
            if watch.noticed is not None:
                daemon_s.append(watch.noticed - started)
            reader.control("replug")
            kit.wait_ready("fingerprint")
    finally:
        screen.close()
        if kit.kitd.devices()["fingerprint"]["status"] != "ready":
            reader.control("replug")

    def figures(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s, n={len(values)}"

    print(f"  unplug (simulator's control channel) to the status bar showing it: {figures(screen_s)}")
    if daemon_s:
        print(f"    reference, the daemon's GET /api/v1/devices noticing it: {figures(daemon_s)}")
        extra = statistics.median(screen_s) - statistics.median(daemon_s)
        print(
            f"    status bar / daemon: {statistics.median(screen_s) / statistics.median(daemon_s):.2f}x "
            f"(the screen adds {extra * 1000:.0f} ms)"
        )
    met = "met" if max(screen_s) <= GOAL_S else "NOT met"
    print(f"    goal, a few seconds ({GOAL_S:.0f} s) for every unplug: {met}")


def run(smoke: bool) -> None:
    reason = browser_unavailable()
    if reason is not None:
        print(f"  skipped: {reason}")
        return
    # The kit's own device timings (the rig shortens them for tests): how soon the daemon
    # notices a device gone is part of what the officer waits for.
    kit_timings = {key: defaults()[key] for key in TEST_SETTINGS}
    with tempfile.TemporaryDirectory(prefix="kitd-bench-screen-") as workdir:
        kit = start_screen_kit(Path(workdir), kit_timings)
        try:
            assert set(DEVICE_IDS) <= set(kit.kitd.devices())
            with open_browser() as browser:
                print(
                    f"  {CHROMIUM} {browser.version}, headless; devices checked every "
                    f"{kit_timings['devices.health_interval_s']} s (the kit's default)"
                )
                _first_screen(kit, browser, 1 if smoke else 10)
                _unplug_to_status_bar(kit, browser, 1 if smoke else 5)
        finally:
            kit.stop()
