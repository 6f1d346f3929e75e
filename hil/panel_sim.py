"""Simulated kit panel (four buttons, three LEDs, a buzzer) behind kitd's pin link, with a
control channel.

A separate process, as for every other device: kitd's pin factory
(kitd/drivers/pin_link.py) connects to its pin port and speaks that module's line
protocol; the buttons' contacts bounce as real ones do, and every LED and buzzer change
kitd makes is recorded with its time.

    python -m hil.panel_sim [--pin-port 0] [--control-port 0] [--bounces 3] [--seed 1]
                            [--pins capture=5,retry=6,skip=13,cancel=19,ready=17,
                                    capturing=27,error=22,buzzer=18]

When listening it prints one line to stdout, `READY pins=127.0.0.1:PORT control=127.0.0.1:PORT`;
logs go to stderr. A button is pressed by pulling its pin to the rail opposite its pull
(a pull-up pin reads 0 while pressed); each change of a contact comes with BOUNCES extra
flips 0.3-2 ms apart before it settles, each edge stamped with its moment (`edge PIN LEVEL T`).
One pin client at a time: a new one replaces the old.

Control channel: TCP on 127.0.0.1, one command per line, one reply line, `ok [DETAIL]` or
`err REASON` (python -m hil.control PORT 'tap capture'):

    press NAME [BOUNCES]   close the button's contact (capture, retry, skip, cancel)
    release NAME [BOUNCES] open it again
    tap NAME [SECONDS]     press, keep it pressed SECONDS (default 0.15), release; replies after
    hold NAME SECONDS      the same, for a long press (Cancel's 2 s)
    bounces N              contact bounce of later presses and releases (0: clean contacts)
    history [SINCE]        the LED and buzzer changes after number SINCE (default 0), as JSON
                           {"next": N, "changes": [{"n", "t", "part", "value"}, ...]}: t in
                           seconds since the simulator started; an LED's value 0 or 1, the
                           buzzer's its tone in Hz or 0 for silence; the presses and releases
                           too, as part button:NAME, 1 or 0 (when the contact first moved)
    state                  JSON: connected, each LED, the buzzer's tone, each button pressed
    unplug                 drop kitd's connection and refuse new ones (the panel is gone)
    replug                 take connections again
    help, quit
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hil.control_channel import ControlChannel
from hil.loopback import LoopbackServer

log = logging.getLogger("panel_sim")

DEFAULT_PINS = {
    "capture": 5,
    "retry": 6,
    "skip": 13,
    "cancel": 19,
    "ready": 17,
    "capturing": 27,
    "error": 22,
    "buzzer": 18,
}
BUTTONS = ("capture", "retry", "skip", "cancel")
LEDS = ("ready", "capturing", "error")
TAP_S = 0.15
KEEP_CHANGES = 100_000


@dataclass
class Change:
    n: int
    t: float
    part: str
    value: float


@dataclass
class PanelState:
    """What the panel's pins are doing, and every LED and buzzer change so far."""

    pins: dict[str, int]
    started: float = field(default_factory=time.monotonic)
    pulls: dict[int, str] = field(default_factory=dict)
    outputs: dict[int, float] = field(default_factory=dict)
    frequencies: dict[int, float | None] = field(default_factory=dict)
    pressed: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(BUTTONS, False))
    shown: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    next_n: int = 1

    def part_of(self, gpio: int) -> str | None:
        return next((name for name, pin in self.pins.items() if pin == gpio), None)

    def level_of(self, button: str, pressed: bool) -> int:
        """A pressed contact pulls the pin to the rail opposite its pull."""
        pull = self.pulls.get(self.pins[button], "up")
        active = 1 if pull == "down" else 0
        return active if pressed else 1 - active

    def value_of(self, part: str) -> float:
        gpio = self.pins[part]
        level = self.outputs.get(gpio, 0.0)
        if part == "buzzer":
            frequency = self.frequencies.get(gpio)
            return float(frequency) if frequency and level > 0 else 0.0
        return 1.0 if level >= 0.5 else 0.0

    def record(self, part: str) -> None:
        value = self.value_of(part)
        if self.shown.get(part, 0.0) == value:
            return
        self.shown[part] = value
        self.note(part, value)

    def note(self, part: str, value: float) -> None:
        self.changes.append(Change(self.next_n, round(time.monotonic() - self.started, 4), part, value))
        self.next_n += 1
        del self.changes[:-KEEP_CHANGES]


class PanelSim:
    """The panel: its pins as kitd sets them, its buttons as the control channel presses them."""

    def __init__(self, pins: dict[str, int], bounces: int = 3, seed: int = 1) -> None:
        self.state = PanelState(dict(pins))
        self.bounces = bounces
        self._random = random.Random(seed)
        self.lock = threading.Lock()
        self.client: socket.socket | None = None
        self.plugged = True
        self._send_lock = threading.Lock()

    # --- kitd's side --------------------------------------------------------------------

    def serve_client(self, sock: socket.socket, lines: Any) -> None:
        """One pin client, until it goes or is dropped."""
        with self.lock:
            if not self.plugged:
                sock.close()
                return
            old, self.client = self.client, sock
        if old is not None:
            _drop(old)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send(sock, "hello panel-sim 1")
        log.info("pin client connected")
        try:
            for raw in lines:
                self.apply(raw.decode("ascii", "replace").split())
        except OSError:
            pass
        with self.lock:
            if self.client is sock:
                self.client = None
        log.info("pin client gone")

    def apply(self, words: list[str]) -> None:
        if len(words) < 3 or not words[1].isdigit():
            return
        command, gpio, value = words[0], int(words[1]), words[2]
        if command in ("output", "state", "freq") and value != "none":
            try:
                float(value)
            except ValueError:
                log.warning("pin line with a bad value ignored: %s", " ".join(words))
                return
        with self.lock:
            state = self.state
            if command == "input":
                state.pulls[gpio] = value
                state.outputs.pop(gpio, None)
            elif command in ("output", "state"):
                state.outputs[gpio] = float(value)
            elif command == "freq":
                state.frequencies[gpio] = None if value == "none" else float(value)
            part = state.part_of(gpio)
            if part is not None and part not in BUTTONS:
                state.record(part)

    def _send(self, sock: socket.socket, line: str) -> None:
        with self._send_lock:
            try:
                sock.sendall(line.encode() + b"\n")
            except OSError:
                pass

    # --- the officer's side -------------------------------------------------------------

    def contact(self, button: str, pressed: bool, bounces: int | None = None) -> None:
        """Close or open a button's contact, bouncing on the way."""
        if button not in BUTTONS:
            raise ValueError(f"no button '{button}' (buttons: {', '.join(BUTTONS)})")
        flips = self.bounces if bounces is None else bounces
        with self.lock:
            self.state.pressed[button] = pressed
            final = self.state.level_of(button, pressed)
            gpio = self.state.pins[button]
            self.state.note(f"button:{button}", 1.0 if pressed else 0.0)
        # The contact reaches its new level, chatters `flips` times, and settles there. Each
        # flip is stamped with when it happens, and the burst goes out at once: the bounce the
        # pins see is the one made here, however busy the machine is.
        levels = [final] + [final ^ ((k + 1) % 2) for k in range(flips * 2)] if flips else [final]
        moment = time.monotonic()
        lines = []
        for n, level in enumerate(levels):
            if n:
                moment += self._random.uniform(0.0003, 0.002)
            lines.append(f"edge {gpio} {level} {moment:.6f}")
        client = self.client
        if client is not None:
            self._send(client, "\n".join(lines))
        time.sleep(max(0.0, moment - time.monotonic()))  # the contact has settled when this returns

    def press_for(self, button: str, seconds: float) -> None:
        self.contact(button, True)
        time.sleep(seconds)
        self.contact(button, False)

    def unplug(self) -> None:
        with self.lock:
            self.plugged = False
            client, self.client = self.client, None
        if client is not None:
            _drop(client)

    def replug(self) -> None:
        with self.lock:
            self.plugged = True


def _drop(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class PinServer(LoopbackServer):
    """kitd's pin link: one client at a time."""

    def __init__(self, sim: PanelSim, port: int) -> None:
        self.sim = sim
        super().__init__(port, _PinHandler)


class _PinHandler(socketserver.StreamRequestHandler):
    server: PinServer

    def handle(self) -> None:
        self.server.sim.serve_client(self.request, self.rfile)


class PanelControl(ControlChannel):
    """The control channel of one panel simulator."""

    def __init__(self, sim: PanelSim, port: int, stop: threading.Event) -> None:
        self.sim = sim
        super().__init__(port, stop)

    def _cmd_press(self, args: list[str]) -> str:
        self.sim.contact(args[0], True, int(args[1]) if len(args) > 1 else None)
        return f"ok {args[0]} pressed"

    def _cmd_release(self, args: list[str]) -> str:
        self.sim.contact(args[0], False, int(args[1]) if len(args) > 1 else None)
        return f"ok {args[0]} released"

    def _cmd_tap(self, args: list[str]) -> str:
        seconds = float(args[1]) if len(args) > 1 else TAP_S
        self.sim.press_for(args[0], seconds)
        return f"ok {args[0]} tapped"

    def _cmd_hold(self, args: list[str]) -> str:
        if len(args) != 2:
            return "err usage: hold NAME SECONDS"
        self.sim.press_for(args[0], float(args[1]))
        return f"ok {args[0]} held {float(args[1]):g} s"

    def _cmd_bounces(self, args: list[str]) -> str:
        self.sim.bounces = max(0, int(args[0]))
        return f"ok bounces {self.sim.bounces}"

    def _cmd_history(self, args: list[str]) -> str:
        since = int(args[0]) if args else 0
        with self.sim.lock:
            state = self.sim.state
            changes = [c.__dict__ for c in state.changes if c.n > since]
            next_n = state.next_n
        return "ok " + json.dumps({"next": next_n, "changes": changes}, separators=(",", ":"))

    def _cmd_state(self, args: list[str]) -> str:
        with self.sim.lock:
            state = self.sim.state
            report = {
                "connected": self.sim.client is not None,
                "plugged": self.sim.plugged,
                "leds": {name: state.value_of(name) for name in LEDS},
                "buzzer": state.value_of("buzzer"),
                "pressed": dict(state.pressed),
            }
        return "ok " + json.dumps(report, separators=(",", ":"))

    def _cmd_unplug(self, args: list[str]) -> str:
        self.sim.unplug()
        return "ok unplugged"

    def _cmd_replug(self, args: list[str]) -> str:
        self.sim.replug()
        return "ok replugged"


def parse_pins(text: str) -> dict[str, int]:
    pins = dict(DEFAULT_PINS)
    for item in filter(None, text.split(",")):
        name, _, number = item.partition("=")
        if name not in pins or not number.isdigit():
            raise ValueError(f"'{item}' is not NAME=BCM (names: {', '.join(pins)})")
        pins[name] = int(number)
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.panel_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pin-port", type=int, default=0, help="kitd's pin link port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="control channel port (0: a free one)")
    parser.add_argument("--bounces", type=int, default=3, help="contact bounce flips per change")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pins", default="", help="NAME=BCM,... (default: kitd's [panel] defaults)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="panel_sim: %(message)s")
    try:
        pins = parse_pins(args.pins)
    except ValueError as exc:
        parser.error(str(exc))
    sim = PanelSim(pins, args.bounces, args.seed)
    stop = threading.Event()
    try:
        server = PinServer(sim, args.pin_port)
        control = PanelControl(sim, args.control_port, stop)
    except OSError as exc:
        print(f"panel_sim: cannot start: {exc}", file=sys.stderr)
        return 1
    server.start()
    control.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"READY pins=127.0.0.1:{server.port} control=127.0.0.1:{control.port}", flush=True)
    stop.wait()
    log.info("stopping")
    control.close()
    sim.unplug()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
