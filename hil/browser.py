"""The officer's touch screen in a real browser: Debian's Chromium, driven by Playwright,
against the real kitd on the kit's simulators.

Its one job: give the screen tests and the screen benchmark what they share.

* :func:`browser_unavailable` and :func:`need_browser`: the tests skip, with the reason,
  when ``/usr/bin/chromium`` or the Python package ``playwright`` is missing, except in CI
  (``CI=true``), where a missing browser fails them instead.
* :func:`open_browser`: Playwright and one headless Chromium (never a downloaded one: the
  Debian package's binary, with the switches that keep it off the network).
* :func:`start_screen_kit`: the three simulators and a kitd on them (the rig's
  ``SIMULATORS`` and ``KitdProcess``), every device ready; :class:`ScreenKit` posts orders
  as the supervisor and knows the kit's day.
* :func:`new_screen`: a fresh context (nothing kept from another test) at one of the
  kit's screen sizes, as a touch screen; its console errors (a Content-Security-Policy
  refusal is one), page errors, files not found, failed requests and requests to anywhere
  but the kit are collected in :class:`Screen`, whose :meth:`Screen.look` keeps
  screenshots and checks accessibility at both sizes.
* :func:`screen_on`: a new screen on the kit's app, failing its user on any fault left.
* :func:`save_screen`: a screenshot kept under ``artifacts/screens/<size>/<name>.png``.
* :func:`accessibility_problems`: axe-core (the copy bundled by axe-playwright-python) run
  on the page with ``target-size`` enabled at the contract's 48 px, plus direct checks
  that every visible control is at least 48x48 px, that every button's words fit in it,
  and that the frame needs no scrolling.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hil.kit_sim import SIMULATORS, SimulatedDevice, simulated_kitd, start_simulators, stop_simulators
from hil.rig import REPO, KitdProcess, SimulatorProcess, simulation_officer
from kitd.cli.daemon_client import DaemonClient
from kitd.clock import STATE_FILE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

try:  # Playwright's assertions, for the screen tests (need_browser says why when it is missing)
    from playwright.sync_api import expect
except ImportError:
    expect = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (CI runs as root), no GPU, and nothing that reaches out to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The kit's two touch screens, landscape.
SCREEN_SIZES: dict[str, tuple[int, int]] = {"800x480": (800, 480), "1024x600": (1024, 600)}
SCREENS_ARTIFACTS = REPO / "artifacts" / "screens"
DEVICE_IDS = ("fingerprint", "iris_camera", "signature")
# The contract's smallest touch target.
MIN_TARGET_PX = 48
# axe rules the contract names (contrast, target size, labels and ARIA names); any other
# violation tagged with a WCAG A/AA level fails too, best practices are only recorded.
NAMED_RULES = frozenset(
    {
        "color-contrast",
        "target-size",
        "label",
        "label-title-only",
        "button-name",
        "input-button-name",
        "link-name",
        "select-name",
        "image-alt",
        "aria-command-name",
        "aria-input-field-name",
        "aria-toggle-field-name",
        "aria-meter-name",
        "aria-progressbar-name",
        "aria-tooltip-name",
        "aria-dialog-name",
        "html-has-lang",
        "html-lang-valid",
        "valid-lang",
    }
)
WCAG_TAGS = frozenset({"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"})


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian package chromium)"
    for module, package in (("playwright", "playwright"), ("axe_playwright_python", "axe-playwright-python")):
        if importlib.util.find_spec(module) is None:
            return f"the Python package {package} is missing (pip install {package})"
    return None


def need_browser() -> None:
    """Skip the calling test (or fixture) when the browser is unavailable; fail in CI."""
    import pytest

    reason = browser_unavailable()
    if reason is None:
        return
    if ci():
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Playwright and one headless Debian Chromium, closed at the end. Playwright's
    ``expect`` waits 10 s (not 5): a sign-in's PIN check is slow on purpose."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------------------------------
# The kit: the simulators and the real daemon


@dataclass
class ScreenKit:
    """The three simulators and a kitd on them; what the screen's tests need of them."""

    kitd: KitdProcess
    simulated: list[SimulatedDevice]
    timezone: str
    # A token per role for :meth:`api`.
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.kitd.url

    @property
    def sims(self) -> dict[str, SimulatorProcess]:
        return {name: device.simulator for name, device in zip(SIMULATORS, self.simulated, strict=True)}

    def api(self, role: str, method: str, path: str, body: Any = None) -> Any:
        """One API call as the simulation's officer with ``role`` (a token kept for the next
        call, signed in again when it ended); the answer's JSON, AssertionError unless 2xx."""
        for _ in range(2):
            if role not in self.tokens:
                self.tokens[role] = self.kitd.sign_in(role)
            reply = DaemonClient(self.kitd.url, self.tokens[role]).request(method, path, body)
            if reply.status != 401:
                break
            del self.tokens[role]
        assert 200 <= reply.status < 300, (method, path, reply.status, reply.body[:500])
        return reply.json()

    def today(self) -> dt.date:
        """The kit's day (kit.timezone), on the machine's clock (not an offset kill_and_restart set)."""
        return dt.datetime.now(ZoneInfo(self.timezone)).date()

    def at(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """The instant on ``day`` at ``hour:minute`` on the kit's clock."""
        return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(self.timezone))

    def post_orders(self, orders: list[dict[str, Any]]) -> dict[str, Any]:
        """Import ``orders`` through the API, as the supervisor; the import report."""
        report = self.api("supervisor", "POST", "/api/v1/orders", orders)
        assert report["imported"] == len(orders) and not report.get("rejected"), report
        return report

    def unlock(self, role: str = "officer") -> None:
        """The supervisor unlocks the simulation officer with ``role`` (after a lock-out)."""
        nip = simulation_officer(role)["nip"]
        self.api("supervisor", "POST", f"/api/v1/officers/{nip}/unlock")

    def set_language(self, role: str, language: str) -> None:
        self.api(role, "POST", "/api/v1/auth/language", {"language": language})

    def end_visits(self, role: str = "officer") -> list[str]:
        """End every active visit (cancelled, then "not home") as the officer with ``role``."""
        ended = []
        for visit in self.api(role, "GET", "/api/v1/visits"):
            if visit["state"] != "ending":
                self.api(role, "POST", f"/api/v1/visits/{visit['id']}/cancel")
            body = {"code": "not_home", "note": "ended by the screen tests"}
            self.api(role, "POST", f"/api/v1/visits/{visit['id']}/outcome", body)
            ended.append(visit["id"])
        return ended

    def sign_in_browser(self, page: Page, role: str = "officer", url: str | None = None) -> None:
        """Sign ``page``'s browser in through the API (its cookie, as the app's own sign-in
        sets it) and load the app: for tests whose subject is not the sign-in screen.
        ``url``: the app loaded from there instead (the kit's own port behind a link; a
        cookie is the host's, whatever the port)."""
        officer = simulation_officer(role)
        reply = page.context.request.post(
            self.kitd.url + "/api/v1/auth/signin", data={"nip": officer["nip"], "pin": officer["pin"]}
        )
        assert reply.ok, (reply.status, reply.text())
        page.goto((url or self.kitd.url) + "/")

    def wait_ready(self, device_id: str | None = None) -> None:
        for each in [device_id] if device_id else DEVICE_IDS:
            self.kitd.wait_for_status(each, "ready")

    def kill_and_restart(self, clock_at: dt.datetime | None = None) -> None:
        """The power fails: kitd is killed (SIGKILL) and started again on the same port, so
        that a page already open finds it at its own origin; every device ready again.
        ``clock_at``: the kit's clock then reads this moment (its clock.json's offset, as a
        laptop's correction leaves it where the system's clock is not set)."""
        import signal

        assert self.kitd.process is not None
        port = self.kitd.url.rsplit(":", 1)[1]
        os.killpg(self.kitd.process.pid, signal.SIGKILL)
        self.kitd.process.wait(10)
        if clock_at is not None:
            offset = clock_at.timestamp() - dt.datetime.now(dt.UTC).timestamp()
            (self.kitd.data_dir / STATE_FILE).write_text(json.dumps({"offset_s": offset}))
        config = self.kitd.config_path.read_text()
        self.kitd.config_path.write_text(re.sub(r"(?m)^port = 0$", f"port = {port}", config, count=1))
        self.kitd.start()
        self.tokens.clear()  # they died with the daemon
        self.wait_ready()

    def logs(self) -> dict[str, Any]:
        """Log sources by name, for the rig's ``rig_logs``."""
        sources: dict[str, Any] = {"kitd": self.kitd.logs}
        sources.update({sim.name: sim.logs for sim in self.sims.values()})
        return sources

    def stop(self) -> None:
        try:
            self.kitd.stop()
        finally:
            for device in self.simulated:
                device.simulator.stop()


def start_screen_kit(workdir: Path, settings: dict[str, Any] | None = None) -> ScreenKit:
    """Every simulator, then kitd on them with ``settings`` added; every device ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    simulated = start_simulators(workdir)
    kitd: KitdProcess | None = None
    try:
        values: dict[str, Any] = {"kit.timezone": "Asia/Jakarta", **(settings or {})}
        kitd = simulated_kitd(workdir, simulated, values)
        kit = ScreenKit(kitd, simulated, str(values["kit.timezone"]))
        kitd.start()
        kit.wait_ready()
    except BaseException:
        stop_simulators(simulated)
        if kitd is not None and kitd.process is not None:
            kitd.stop()
        raise
    return kit


# ---------------------------------------------------------------------------------------
# A screen: one fresh browser context


@dataclass
class Screen:
    """One page in a fresh context, and what went wrong in it that the page did not show."""

    context: BrowserContext
    page: Page
    size: str
    problems: list[str] = field(default_factory=list)
    # What axe and the geometry found wrong, by "<size>/<name>" of the screen looked at.
    accessibility: dict[str, list[str]] = field(default_factory=dict)

    def look(self, name: str, sizes: tuple[str, ...] | None = None, check: bool = True) -> None:
        """Keep a screenshot of the screen as it is now and (``check``) check its
        accessibility, at each of ``sizes`` (both screens by default: the viewport is
        resized, then put back)."""
        page = self.page
        for size in sizes or tuple(SCREEN_SIZES):
            width, height = SCREEN_SIZES[size]
            if page.viewport_size != {"width": width, "height": height}:
                page.set_viewport_size({"width": width, "height": height})
            settle(page)
            save_screen(page, size, name)
            if check:
                report = accessibility_problems(page, SCREENS_ARTIFACTS / size / f"{name}.axe.json")
                if report.failures:
                    self.accessibility[f"{size}/{name}"] = report.failures
        width, height = SCREEN_SIZES[self.size]
        page.set_viewport_size({"width": width, "height": height})
        settle(page)

    def faults(self) -> list[str]:
        """Everything wrong that a test did not assert on: page problems, then accessibility."""
        found = list(self.problems)
        for where, failures in self.accessibility.items():
            found += [f"{where}: {failure}" for failure in failures]
        return found

    def close(self) -> None:
        self.context.close()


def settle(page: Page) -> None:
    """Two animation frames: the layout after a resize or a change is painted."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def new_screen(
    browser: Browser,
    size: str = "800x480",
    *,
    timezone_id: str = "UTC",
    locale: str = "en-US",
    timeout_ms: float = 10_000,
) -> Screen:
    """A fresh context (its own cookies and storage) at ``size``, as a touch screen.

    ``timezone_id`` and ``locale`` are the browser's own, on purpose not the kit's: the
    screen must show the kit's time and the officer's language whatever the browser says.
    """
    width, height = SCREEN_SIZES[size]
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        has_touch=True,
        timezone_id=timezone_id,
        locale=locale,
    )
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    screen = Screen(context, page, size)

    def on_console(message: Any) -> None:
        # An HTTP error status is logged as "Failed to load resource": the answers the app
        # expects (401 before sign-in, 423 locked) are the tests' business, others are below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            screen.problems.append(f"console error: {message.text} at {message.location.get('url')}")

    def on_response(response: Any) -> None:
        if response.status == 404 or response.status >= 500:
            if not response.url.endswith("/favicon.ico"):  # the browser's own, not the app's
                screen.problems.append(f"{response.request.method} {response.url}: {response.status}")

    origins: list[str] = []

    def on_request(request: Any) -> None:
        # The app loads nothing from anywhere but the kit (no CDN, no network).
        scheme, _, rest = request.url.partition("://")
        if scheme not in ("http", "https", "ws", "wss"):
            return
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        if not origins:
            origins.append(origin)
        elif origin != origins[0]:
            screen.problems.append(f"a request outside the kit ({origins[0]}): {request.url}")

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: screen.problems.append(f"page error: {error}"))

    def on_failed(request: Any) -> None:
        # Aborted: a stream (the events) or a fetch cut by a navigation or a closing page.
        if request.failure != "net::ERR_ABORTED":
            screen.problems.append(f"request failed: {request.url} {request.failure}")

    page.on("requestfailed", on_failed)
    return screen


@contextmanager
def screen_on(
    kit: ScreenKit, browser: Browser, size: str = "800x480", timezone_id: str = "UTC"
) -> Iterator[Screen]:
    """A fresh screen (:func:`new_screen`) showing the kit's app; once the caller is done,
    whatever went wrong unasserted (console errors, requests the page lost, accessibility
    faults of the screens it looked at) fails it."""
    screen = new_screen(browser, size, timezone_id=timezone_id)
    try:
        screen.page.goto(kit.url + "/")
        yield screen
    finally:
        screen.close()
    faults = screen.faults()
    assert not faults, "the screen had faults:\n" + "\n".join(faults)


def save_screen(page: Page, size: str, name: str) -> Path:
    """The screen as the officer sees it (the viewport), at ``artifacts/screens/<size>/<name>.png``."""
    path = SCREENS_ARTIFACTS / size / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


# ---------------------------------------------------------------------------------------
# Accessibility


def _axe_script() -> str:
    spec = importlib.util.find_spec("axe_playwright_python")
    assert spec is not None and spec.origin is not None, "axe-playwright-python is not installed"
    return (Path(spec.origin).parent / "axe.min.js").read_text(encoding="utf-8")


AXE_RUN = """async (minSize) => {
  axe.configure({checks: [
    {id: "target-size", options: {minSize}},
    {id: "target-offset", options: {minOffset: minSize}},
  ]});
  return await axe.run(document, {
    rules: {"target-size": {enabled: true}},
    resultTypes: ["violations"],
  });
}"""

# Visible controls smaller than the contract's targets, and the frame's size.
GEOMETRY = """(minSize) => {
  const controls = document.querySelectorAll([
    "button", "a[href]", "input:not([type=hidden])", "select", "textarea", "summary",
    "[role=button]", "[role=tab]", "[role=link]", "[role=checkbox]", "[role=radio]",
    "[role=switch]", "[role=menuitem]", "[tabindex]:not([tabindex='-1'])",
  ].join(", "));
  const small = [];
  const cramped = [];
  for (const el of controls) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
    const name = (el.getAttribute("aria-label") || el.textContent || el.id || "").trim().slice(0, 40);
    const what = `${el.tagName.toLowerCase()} "${name}"`;
    if (box.width < minSize - 0.5 || box.height < minSize - 0.5) {
      small.push(`${what} ${box.width.toFixed(0)}x${box.height.toFixed(0)} px`);
    }
    // A button's words wider or taller than the button: they run over its edge.
    const [needW, needH, hasW, hasH] = [el.scrollWidth, el.scrollHeight, el.clientWidth, el.clientHeight];
    if (el.tagName === "BUTTON" && (needW > hasW + 1 || needH > hasH + 1)) {
      cramped.push(`${what} needs ${needW}x${needH} px inside ${hasW}x${hasH}`);
    }
  }
  const root = document.scrollingElement || document.documentElement;
  return {
    small,
    cramped,
    frame: {width: root.scrollWidth, height: root.scrollHeight},
    screen: {width: window.innerWidth, height: window.innerHeight},
  };
}"""


@dataclass
class AccessibilityReport:
    failures: list[str]
    recorded: list[str]
    raw: dict[str, Any]


def _violation_text(violation: dict[str, Any]) -> str:
    nodes = []
    for node in violation["nodes"][:6]:
        target = " ".join(str(part) for part in node["target"])
        summary = (node.get("failureSummary") or "").strip().splitlines()
        nodes.append(f"{target} ({summary[-1].strip() if summary else ''})")
    return f"{violation['id']} ({violation['impact']}): {violation['help']} -- {'; '.join(nodes)}"


def accessibility_problems(page: Page, artifact: Path | None = None) -> AccessibilityReport:
    """axe-core on the page as it is now, and the contract's geometry.

    Failures: violations of :data:`NAMED_RULES` or of any WCAG A/AA rule (``target-size``
    enabled, at 48 px), controls smaller than 48x48 px, buttons whose words run over their
    edge, a frame wider or taller than the screen. Best-practice violations are only
    recorded. ``artifact``: the JSON kept there.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_script())
    result = page.evaluate(AXE_RUN, MIN_TARGET_PX)
    failures: list[str] = []
    recorded: list[str] = []
    for violation in result["violations"]:
        named = violation["id"] in NAMED_RULES or WCAG_TAGS & set(violation["tags"])
        (failures if named else recorded).append(_violation_text(violation))
    geometry = page.evaluate(GEOMETRY, MIN_TARGET_PX)
    failures += [f"target under {MIN_TARGET_PX}x{MIN_TARGET_PX} px: {small}" for small in geometry["small"]]
    failures += [f"text does not fit its button: {cramped}" for cramped in geometry["cramped"]]
    frame, screen = geometry["frame"], geometry["screen"]
    if frame["width"] > screen["width"] or frame["height"] > screen["height"]:
        failures.append(
            f"the frame scrolls: {frame['width']}x{frame['height']} px of content on a "
            f"{screen['width']}x{screen['height']} screen"
        )
    raw = {"url": page.url, "violations": result["violations"], "geometry": geometry}
    if artifact is not None:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_text(json.dumps(raw, indent=1, ensure_ascii=False))
    return AccessibilityReport(failures, recorded, raw)


# ---------------------------------------------------------------------------------------
# The app's catalogues


SCREEN_DIR = REPO / "kitd" / "screen"


def catalogue(language: str) -> dict[str, str]:
    """The app's message catalogue ``kitd/screen/i18n/<language>.json`` (flat key -> text)."""
    data = json.loads((SCREEN_DIR / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
    return flatten(data)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested catalogue objects as dotted keys (a flat catalogue stays as it is)."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def fill(template: str, **values: Any) -> str:
    """A catalogue string with its ``{name}`` placeholders filled."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(0)[1:-1], m.group(0))), template)


# ---------------------------------------------------------------------------------------
# The officer's hands


def page_language(page: Page) -> str:
    return page.evaluate("() => document.documentElement.lang") or "id"


def type_on_keypad(page: Page, field: str, digits: str) -> None:
    """Tap the field (``nip`` or ``pin``), clear it and tap ``digits`` on the on-screen keypad,
    finding every control by the words the officer reads (the page's catalogue)."""
    words = catalogue(page_language(page))
    page.get_by_label(words[f"signin.{field}"], exact=True).click()
    keypad = page.get_by_role("group", name=words["signin.keypad"])
    keypad.get_by_role("button", name=words["key.clear"]).click()
    for digit in digits:
        keypad.get_by_role("button", name=digit, exact=True).click()


def sign_in_on_screen(page: Page, nip: str, pin: str) -> None:
    """Type NIP and PIN on the keypad and tap the sign-in button (the answer is not awaited)."""
    type_on_keypad(page, "nip", nip)
    type_on_keypad(page, "pin", pin)
    words = catalogue(page_language(page))
    page.get_by_role("button", name=words["signin.submit"], exact=True).click()
