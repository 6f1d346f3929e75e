"""The kit's physical panel: four buttons, three LEDs and a buzzer on GPIO, through gpiozero.

`PanelDriver` is a device like the others (open, close, is_present) for a device slot. It
builds gpiozero's `Button` (with `bounce_time`, and `hold_time` for Cancel), `LED` and
`TonalBuzzer` on a pin factory made for it alone and passed to every device
(`pin_factory=`), never gpiozero's process-global default, so that two kits in one process
stay apart. The factory is chosen by a target string (`make_pin_factory`): `lgpio` for the
kit's own header, `socket:HOST:PORT` for the panel simulator (kitd/drivers/pin_link.py);
tests pass a factory maker of their own (gpiozero's MockFactory).

Buttons are reported to `on_button(name, what)` with `what` one of pressed, released, held,
from gpiozero's threads. Output never blocks its caller: `show()` and `play()` hand LED modes
and tone sequences to the driver's own output thread, which drives the gpiozero devices.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kitd.drivers.facts import DeviceFacts
from kitd.drivers.pin_link import PinLinkFactory, parse_target
from kitd.errors import DeviceGone

log = logging.getLogger("kitd.drivers.panel")

BUTTONS = ("capture", "retry", "skip", "cancel")
LEDS = ("ready", "capturing", "error")
LED_MODES = ("off", "on", "blink")
# A blinking LED's half period (on, then off), seconds.
BLINK_S = 0.2
# The silence between a tone and another that cuts it short, seconds.
GAP_S = 0.03
# One note: a frequency in Hz (None: silence) for so many seconds.
Note = tuple[float | None, float]
MODEL = "kit panel (4 buttons, 3 LEDs, buzzer)"


def check_target(text: str) -> None:
    """ValueError unless `text` names a pin factory: lgpio, or socket:HOST:PORT."""
    if text != "lgpio":
        parse_target(text)


def make_pin_factory(target: str) -> Any:
    """The gpiozero pin factory `target` names; DeviceGone when its pins cannot be had."""
    if target == "lgpio":
        try:
            from gpiozero.pins.lgpio import LGPIOFactory
        except ImportError:
            raise DeviceGone("the lgpio pin factory needs lgpio (pip install 'kitd[kit]')") from None
        try:
            return LGPIOFactory()
        except Exception as exc:  # noqa: BLE001 - lgpio.error, PinUnknownPi, OSError: no GPIO here
            raise DeviceGone(f"no GPIO chip: {exc}") from None
    host, port = parse_target(target)
    return PinLinkFactory(host, port)


@dataclass(frozen=True)
class PanelWiring:
    """Where each part of the panel is (BCM numbers) and how it is wired."""

    buttons: dict[str, int] = field(
        default_factory=lambda: {"capture": 5, "retry": 6, "skip": 13, "cancel": 19}
    )
    leds: dict[str, int] = field(default_factory=lambda: {"ready": 17, "capturing": 27, "error": 22})
    buzzer: int = 18
    # Buttons close to ground with the pin's pull-up (pressed reads 0) unless active high.
    button_active_high: bool = False
    led_active_high: bool = True
    bounce_time_s: float = 0.05
    hold_time_s: float = 2.0

    def describe(self) -> dict[str, Any]:
        return {
            "buttons": dict(self.buttons),
            "leds": dict(self.leds),
            "buzzer": self.buzzer,
            "button_active_high": self.button_active_high,
            "led_active_high": self.led_active_high,
            "bounce_time_s": self.bounce_time_s,
        }


PANEL_ID = "panel"  # the panel's device id (in /api/v1/devices and kitctl devices, kind `panel`)


def panel_uri(target: str) -> str:
    """The URI the panel on the pins `target` names is listed and claimed by."""
    return f"gpio:{target}"


class PanelDriver:
    """The panel as a device: its gpiozero devices on a factory of its own, made at open()."""

    def __init__(self, wiring: PanelWiring, make_factory: Callable[[], Any], target: str = "") -> None:
        self.wiring = wiring
        self.target = target
        self._make_factory = make_factory
        self._factory: Any = None
        self._buttons: dict[str, Any] = {}
        self._leds: dict[str, Any] = {}
        self._buzzer: Any = None
        # Told of every button change, from gpiozero's threads: on_button(name, what).
        self.on_button: Callable[[str, str], None] | None = None
        self._wanted_leds: dict[str, str] = dict.fromkeys(LEDS, "off")
        self._shown_leds: dict[str, str] = {}
        self._notes: list[Note] = []
        self._note_ends = 0.0
        self._changed = threading.Condition()
        self._output: threading.Thread | None = None
        self._stop = False
        self._sounding = False

    @classmethod
    def at(cls, target: str, wiring: PanelWiring) -> PanelDriver:
        """The panel on the pins `target` names (see make_pin_factory)."""
        return cls(wiring, lambda: make_pin_factory(target), target)

    # --- the Driver protocol ----------------------------------------------------------------

    def open(self) -> DeviceFacts:
        from gpiozero import LED, Button, TonalBuzzer
        from gpiozero.tones import Tone

        self.close()
        self._factory = factory = self._make_factory()
        wiring = self.wiring
        try:
            for name, pin in wiring.buttons.items():
                button = Button(
                    pin,
                    pull_up=not wiring.button_active_high,
                    bounce_time=wiring.bounce_time_s or None,
                    hold_time=wiring.hold_time_s,
                    pin_factory=factory,
                )
                button.when_pressed = lambda _b, name=name: self._told(name, "pressed")
                button.when_released = lambda _b, name=name: self._told(name, "released")
                button.when_held = lambda _b, name=name: self._told(name, "held")
                self._buttons[name] = button
            for name, pin in wiring.leds.items():
                self._leds[name] = LED(pin, active_high=wiring.led_active_high, pin_factory=factory)
            # A passive piezo: 110-1760 Hz around A4, enough for a low tone and a high beep.
            self._buzzer = TonalBuzzer(wiring.buzzer, mid_tone=Tone(440.0), octaves=2, pin_factory=factory)
        except Exception as exc:  # noqa: BLE001 - a pin in use or missing: say so, keep running
            self.close()
            if isinstance(exc, DeviceGone):
                raise
            raise DeviceGone(f"the panel's pins could not be set up: {exc}") from None
        self._shown_leds = {}
        self._stop = False
        self._output = threading.Thread(target=self._drive, name="panel-output", daemon=True)
        self._output.start()
        detail = {"pin_factory": self.target or type(factory).__name__, **wiring.describe()}
        return DeviceFacts(model=MODEL, serial=None, firmware=None, detail=detail)

    def close(self) -> None:
        output, self._output = self._output, None
        if output is not None:
            with self._changed:
                self._stop = True
                self._changed.notify_all()
            output.join(timeout=2.0)
        for device in [*self._buttons.values(), *self._leds.values(), self._buzzer]:
            if device is not None:
                try:
                    device.close()
                except Exception:  # noqa: BLE001 - closing pins of a vanished panel may fail any way
                    log.debug("closing %r failed", device, exc_info=True)
        self._buttons, self._leds, self._buzzer = {}, {}, None
        factory, self._factory = self._factory, None
        if factory is not None:
            try:
                factory.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the pin factory failed", exc_info=True)

    def is_present(self) -> bool:
        """Whether the pins are still there; DeviceGone saying why when the link dropped."""
        factory = self._factory
        problem = getattr(factory, "problem", None)
        if problem is not None:
            raise DeviceGone(problem)
        return factory is not None

    # --- input --------------------------------------------------------------------------------

    def _told(self, name: str, what: str) -> None:
        callback = self.on_button
        if callback is not None:
            callback(name, what)

    def is_pressed(self, name: str) -> bool:
        button = self._buttons.get(name)
        return bool(button is not None and button.is_pressed)

    # --- output: never blocks the caller -----------------------------------------------------

    def show(self, leds: dict[str, str]) -> None:
        """Set LED modes (`off`, `on`, `blink`) by name; the others keep theirs."""
        with self._changed:
            self._wanted_leds.update(leds)
            self._changed.notify_all()

    def play(self, notes: Sequence[Note]) -> None:
        """Play `notes` now, instead of whatever was playing (an empty sequence: silence)."""
        with self._changed:
            # A tone cut short by another gets a moment of silence first, so that the new one
            # is heard as new (the same pitch again would otherwise just go on).
            gap = [(None, GAP_S)] if self._sounding and notes else []
            self._notes = [*gap, *notes] or [(None, 0.0)]
            self._note_ends = 0.0
            self._changed.notify_all()

    def _drive(self) -> None:
        """The output thread: apply LED modes as they change, step through the notes."""
        while True:
            with self._changed:
                while not self._stop and self._wanted_leds == self._shown_leds and not self._due():
                    self._changed.wait(self._wait_s())
                if self._stop:
                    return
                leds = {k: v for k, v in self._wanted_leds.items() if self._shown_leds.get(k) != v}
                self._shown_leds.update(leds)
                note = None
                if self._due():
                    note = self._notes.pop(0)
                    self._sounding = note[0] is not None
                    self._note_ends = time.monotonic() + note[1]
                    if not self._notes:
                        self._notes = [(None, 0.0)] if note[0] is not None else []
            try:
                for name, mode in leds.items():
                    led = self._leds.get(name)
                    if led is None:
                        continue
                    if mode == "blink":
                        led.blink(on_time=BLINK_S, off_time=BLINK_S)
                    elif mode == "on":
                        led.on()
                    else:
                        led.off()
                if note is not None and self._buzzer is not None:
                    if note[0] is None:
                        self._buzzer.stop()
                    else:
                        self._buzzer.play(note[0])
            except Exception:  # noqa: BLE001 - a vanished panel: the slot notices, output goes on
                log.debug("panel output failed", exc_info=True)

    def _due(self) -> bool:
        return bool(self._notes) and time.monotonic() >= self._note_ends

    def _wait_s(self) -> float | None:
        if not self._notes:
            return None
        return max(0.0, self._note_ends - time.monotonic())
