"""The panel's guided test: each button pressed, each LED lit alone, the buzzer heard.

Its one job: the steps of the ``panel`` guided test and how each is met. While it runs the
panel is the test's (kitd.services.panel: ``divert``), not the visit's:

1. ``press_capture``, ``press_retry``, ``press_skip``, ``press_cancel``: the technician presses
   each button in turn; the press is read through the panel's driver like any other (bounce
   filtered). The right one gives the short beep; another gives the low tone and is noted in
   the step's values (``other_presses``: a button wired to another's pin is read as that one).
2. ``led_ready``, ``led_capturing``, ``led_error``: each LED lit alone; the technician says
   whether it is (``confirm``). "No" fails the step: the LED or its wiring.
3. ``buzzer``: a beep every two seconds until the technician says whether it was heard.

The time limit ending a press step fails the button (never read); ending a confirm step only
warns (nobody answered). The panel vanishing mid-test fails the step it was at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kitd.drivers.panel import BUTTONS, LEDS
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, OK, WARNING, Words
from kitd.services.guided import DONE, Guide, Step
from kitd.services.panel import Panel
from kitd.services.panel_rules import BEEP_HZ, TONES

PANEL = DEVICE_NAMES["panel"]
BUTTON_NAMES = {
    "capture": Words("Rekam/Lanjut", "Capture/Next"),
    "retry": Words("Ulangi", "Retry"),
    "skip": Words("Lewati", "Skip"),
    "cancel": Words("Batal", "Cancel"),
}
LED_NAMES = {
    "ready": Words("Siap (hijau)", "ready (green)"),
    "capturing": Words("Merekam (kuning)", "capturing (amber)"),
    "error": Words("Galat (merah)", "error (red)"),
}
# The buzzer step's beep, again every BUZZ_EVERY_S until answered: one beep is easily missed.
BUZZ = ((BEEP_HZ, 0.3), (None, 0.15), (BEEP_HZ, 0.3))
BUZZ_EVERY_S = 2.0
UNANSWERED = "unanswered"


def _unanswered(what: Words) -> tuple[str, Words]:
    return (
        WARNING,
        Words(
            f"Tidak ada jawaban tentang {what.id} sebelum waktu habis: ulangi uji panel.",
            f"Nobody answered about the {what.en} in time: run the panel test again.",
        ),
    )


def press_step(button: str) -> Step:
    name = BUTTON_NAMES[button]
    return Step(
        f"press_{button}",
        "press",
        Words(f"Tekan tombol {name.id}.", f"Press the {name.en} button."),
        late=(
            FAILED,
            Words(
                f"Tombol {name.id} tidak terbaca: periksa kabelnya; jika tetap, ganti tombol itu.",
                f"The {name.en} button was never read: check its wiring; if it stays, replace the button.",
            ),
        ),
    )


def led_step(led: str) -> Step:
    name = LED_NAMES[led]
    return Step(
        f"led_{led}",
        "confirm",
        Words(
            f"Apakah lampu {name.id} menyala, dan hanya lampu itu?",
            f"Is the {name.en} LED lit, and only that one?",
        ),
        late=_unanswered(Words(f"lampu {name.id}", f"{name.en} LED")),
    )


def led_dark(led: str) -> Words:
    name = LED_NAMES[led]
    return Words(
        f"Lampu {name.id} tidak menyala: periksa kabelnya; jika tetap padam, ganti lampu panel itu.",
        f"The {name.en} LED does not light: check its wiring; if it stays dark, replace the panel's LED.",
    )


BUZZER_SILENT = Words(
    "Buzzer tidak berbunyi: periksa kabelnya; jika tetap diam, ganti buzzer panel.",
    "The buzzer does not sound: check its wiring; if it stays silent, replace the panel's buzzer.",
)


def panel_gone(reason: str) -> Words:
    return Words(
        f"{PANEL.id.capitalize()} terputus di tengah uji ({reason}): periksa kabelnya, lalu ulangi uji.",
        f"The {PANEL.en} went away in the middle of the test ({reason}): check its cable, then run "
        "the test again.",
    )


class PanelTest:
    """The ``panel`` guided test on the kit's panel (its service and its slot)."""

    test = "panel"

    def __init__(self, panel: Panel, slot: Any) -> None:
        self.panel = panel
        self.slot = slot
        self.device = slot.id
        self.check_id = f"{slot.id}.guided"
        self._steps: list[Step] = []
        self._presses: asyncio.Queue[str] = asyncio.Queue()

    def steps(self) -> list[Step]:
        self._steps = [
            *(press_step(b) for b in BUTTONS),
            *(led_step(led) for led in LEDS),
            Step(
                "buzzer",
                "confirm",
                Words("Apakah buzzer berbunyi?", "Do you hear the buzzer?"),
                late=_unanswered(Words("buzzer", "buzzer")),
            ),
        ]
        return self._steps

    def _watch(self, guide: Guide, step: Step) -> Callable[[], None]:
        """Fails ``step`` when the panel is no longer there (its slot's own status)."""

        def watch() -> None:
            status, reason, _since = self.slot.current()
            if status not in ("ready", "busy"):
                guide.fail(step, panel_gone(reason), {"device_status": status})

        return watch

    def take(self) -> None:
        """From now on the buttons are the test's: a press goes to it, never to a visit."""

        def told(button: str, what: str) -> None:
            if what == "pressed":  # released and held mean nothing to the test
                self._presses.put_nowait(button)

        self.panel.divert(told)
        driver = self.panel.driver
        driver.show(dict.fromkeys(LEDS, "off"))
        driver.play(())

    async def release(self) -> None:
        self.panel.restore()

    async def run(self, guide: Guide) -> None:
        driver = self.panel.driver
        for button in BUTTONS:
            step = guide.step(f"press_{button}")
            guide.begin(step)
            watch = self._watch(guide, step)
            while True:
                try:
                    pressed = await asyncio.wait_for(self._presses.get(), 0.5)
                except TimeoutError:
                    watch()
                    continue
                if pressed == button:
                    break
                driver.play(TONES["meaningless"])
                step.values.setdefault("other_presses", []).append(pressed)
                guide.changed()
            driver.play(TONES["good"])
            guide.done(step, {"pressed": True})
        for led in LEDS:
            step = guide.step(f"led_{led}")
            driver.show({name: "on" if name == led else "off" for name in LEDS})
            guide.begin(step)
            if not await guide.answer(step, self._watch(guide, step)):
                guide.fail(step, led_dark(led), {"seen": False})
            guide.done(step, {"seen": True})
        driver.show(dict.fromkeys(LEDS, "off"))
        step = guide.step("buzzer")
        guide.begin(step)
        beeping = asyncio.create_task(self._beep())
        try:
            heard = await guide.answer(step, self._watch(guide, step))
        finally:
            beeping.cancel()
            driver.play(())
        if not heard:
            guide.fail(step, BUZZER_SILENT, {"heard": False})
        guide.done(step, {"heard": True})

    async def _beep(self) -> None:
        while True:
            self.panel.driver.play(BUZZ)
            await asyncio.sleep(BUZZ_EVERY_S)

    def summary(self) -> dict[str, Any]:
        steps = {s.id: s for s in self._steps}
        other = {b: steps[f"press_{b}"].values.get("other_presses", []) for b in BUTTONS}
        return {
            "buttons": {b: steps[f"press_{b}"].status == DONE for b in BUTTONS},
            "leds": {led: steps[f"led_{led}"].values.get("seen") for led in LEDS},
            "buzzer": steps["buzzer"].values.get("heard"),
            "other_presses": {b: pressed for b, pressed in other.items() if pressed},
        }

    def judge(self) -> tuple[str, Words | None]:
        # Every step done: each button read, each LED and the buzzer confirmed.
        return OK, None
