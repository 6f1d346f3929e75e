"""A gpiozero pin factory whose pins live in another process, reached over TCP.

gpiozero's MockFactory keeps its pins inside one process; the panel simulator
(hil/panel_sim.py) is another process, like every other simulator of the kit. This
factory is the transport to it, as the USB/IP backend is for the fingerprint reader:
the same gpiozero devices (Button, LED, TonalBuzzer) run on it as on the kit's lgpio
pins. It is a `PiFactory` pretending to be one board revision, so pins are named as on
a Pi (BCM numbers, "GPIO17", "BOARD11").

The line protocol (ASCII, one message a line, both ways, no replies):

    factory -> panel   hello kitd-pins 1
                       input PIN up|down|floating     the pin is an input with that pull
                       output PIN VALUE               the pin is an output at VALUE (0..1)
                       state PIN VALUE                an output's level or PWM duty cycle
                       freq PIN HZ|none               an output's PWM frequency (none: off)
    panel -> factory   hello panel-sim 1
                       edge PIN 0|1 [T]               an input's level changed, at T seconds of
                                                      the panel's monotonic clock

An input's level starts at its pull (a button at rest) until an edge says otherwise.
Edges come as the contacts make them, bounce and all, stamped with their moment (so that
the bounce is judged as it happened, not as the network delivered it): like gpiozero's native pins,
these pins debounce with `bounce` (gpiozero's `bounce_time`), and they also look again
once the bounce window has passed, so that a press shorter than the window is not
left "pressed". When the panel goes away the factory marks itself disconnected (with
the reason) and every later write is dropped; nothing raises into gpiozero's threads.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero.exc import PinInvalidFunction, PinInvalidPull, PinSetInput
from gpiozero.pins.pi import PiFactory, PiPin

from kitd.errors import DeviceGone

log = logging.getLogger("kitd.drivers.pin_link")

PROTOCOL = "1"
# The board the pins are named after: a Raspberry Pi 4B (the kit's board), 40-pin header.
BOARD_REVISION = 0xC03111
CONNECT_TIMEOUT_S = 2.0
# A write that cannot go out in this long means the panel is gone (a frozen peer).
SEND_TIMEOUT_S = 1.0


def parse_target(text: str) -> tuple[str, int]:
    """`socket:HOST:PORT` -> (host, port); ValueError saying what is wrong."""
    scheme, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if scheme != "socket" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{text}' is not socket:HOST:PORT")
    return host, int(port)


class LinkPin(PiPin):
    """One pin of the remote panel: inputs follow its edges, outputs send their state."""

    def __init__(self, factory: PinLinkFactory, info: Any) -> None:
        super().__init__(factory, info)
        self._link = factory
        self.gpio = int(info.name[4:])
        self._function = "input"
        self._pull = "floating"
        self._level = False  # the last level the panel reported
        self._reported = False  # the level gpiozero was last told (debounced)
        self._state: float = 0.0  # an output's value
        self._frequency: float | None = None
        self._bounce: float | None = None
        self._edges = "both"
        self._last_call: float | None = None
        self._settle: threading.Timer | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.when_changed = None
        if self._settle is not None:
            self._settle.cancel()
        if self._function == "output":
            self._frequency = None
            self._link.send(f"freq {self.gpio} none")
        self._set_function("input")

    # --- function, pull, state ----------------------------------------------------------

    def _get_function(self) -> str:
        return self._function

    def _set_function(self, value: str) -> None:
        if value not in ("input", "output"):
            raise PinInvalidFunction("function must be input or output")
        self._function = value
        if value == "input":
            self._set_pull(self._pull)
        else:
            self._link.send(f"output {self.gpio} {self._state:g}")

    def _get_state(self) -> Any:
        if self._function == "output":
            return self._state
        # Debounced like the kit's lgpio pins (the kernel debounces there): what gpiozero was told.
        return self._reported if self._bounce else self._level

    def _set_state(self, value: Any) -> None:
        if self._function == "input":
            raise PinSetInput(f"cannot set the state of input pin {self!r}")
        self._state = float(value)
        self._link.send(f"state {self.gpio} {self._state:g}")

    def _get_pull(self) -> str:
        return self._pull

    def _set_pull(self, value: str) -> None:
        if value not in ("floating", "up", "down"):
            raise PinInvalidPull("pull must be floating, up, or down")
        self._pull = value
        if self._function == "input":
            with self._lock:
                # A button at rest reads its pull until the panel says otherwise.
                self._level = self._reported = value == "up"
            self._link.send(f"input {self.gpio} {value}")

    def _get_frequency(self) -> float | None:
        return self._frequency

    def _set_frequency(self, value: float | None) -> None:
        self._frequency = None if value is None else float(value)
        self._link.send(f"freq {self.gpio} {'none' if value is None else f'{float(value):g}'}")
        if value is None:
            self._state = 0.0

    def _get_bounce(self) -> float | None:
        return self._bounce

    def _set_bounce(self, value: float | None) -> None:
        self._bounce = None if value is None else float(value)

    def _get_edges(self) -> str:
        return self._edges

    def _set_edges(self, value: str) -> None:
        self._edges = value

    def _enable_event_detect(self) -> None:
        pass  # the panel always sends edges; _edge() drops them while nobody listens

    def _disable_event_detect(self) -> None:
        pass

    # --- edges from the panel ------------------------------------------------------------

    def edge(self, level: bool, ticks: float) -> None:
        """The panel says the input is now at `level` (from the factory's reader thread)."""
        if self._function != "input":
            return
        with self._lock:
            self._level = level
            if self._bounce and self._last_call is not None and ticks - self._last_call < self._bounce:
                # Inside the bounce window: said nothing now, look again when it closes.
                if self._settle is None:
                    wait = self._bounce - (ticks - self._last_call)
                    self._settle = threading.Timer(wait, self._settled)
                    self._settle.daemon = True
                    self._settle.start()
                return
        self._report(level, ticks)

    def _settled(self) -> None:
        with self._lock:
            self._settle = None
            level = self._level
        if level != self._reported:
            self._report(level, self._factory.ticks())

    def _report(self, level: bool, ticks: float) -> None:
        with self._lock:
            if level == self._reported:
                return
            self._reported = level
            self._last_call = ticks
        wanted = {"both": True, "rising": level, "falling": not level, "none": False}[self._edges]
        if wanted and self._when_changed is not None:
            self._call_when_changed(ticks, level)


class PinLinkFactory(PiFactory):
    """Pins of a panel reached at host:port; DeviceGone if it cannot be reached at all."""

    def __init__(self, host: str, port: int, revision: int = BOARD_REVISION) -> None:
        super().__init__()
        self.pin_class = LinkPin
        self._revision = revision
        self.address = f"{host}:{port}"
        self._send_lock = threading.Lock()
        self._lost_lock = threading.Lock()
        self._offset = float("inf")  # our clock minus the panel's, as edges show it
        self.problem: str | None = None
        # Told once when the link drops (the device slot learns it from is_present too).
        self.on_lost: Callable[[str], None] | None = None
        try:
            self._sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise DeviceGone(f"no panel at {self.address}: {exc.strerror or exc}") from None
        self._sock.settimeout(SEND_TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a press is one short line
        self.send(f"hello kitd-pins {PROTOCOL}")
        self._buffer = self._greeted()
        self._reader = threading.Thread(target=self._read, name=f"pins-{self.address}", daemon=True)
        self._reader.start()

    def _greeted(self) -> bytes:
        """Wait for the panel's hello (a panel that takes the connection and drops it, or
        says something else, is no panel); what came after it is kept for the reader."""
        buffer = b""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while b"\n" not in buffer:
            try:
                chunk = self._sock.recv(4096) if time.monotonic() < deadline else b""
            except OSError as exc:
                chunk, why = b"", exc.strerror or str(exc)
            else:
                why = "it closed the connection" if time.monotonic() < deadline else "no greeting"
            if not chunk:
                self._sock.close()
                raise DeviceGone(f"no panel at {self.address}: {why}")
            buffer += chunk
        line, _, rest = buffer.partition(b"\n")
        if not line.startswith(b"hello panel-sim "):
            self._sock.close()
            raise DeviceGone(f"no panel at {self.address}: it said {line[:40]!r}")
        return rest

    @property
    def connected(self) -> bool:
        return self.problem is None

    def _get_revision(self) -> int:
        return self._revision

    @staticmethod
    def ticks() -> float:
        return time.monotonic()

    @staticmethod
    def ticks_diff(later: float, earlier: float) -> float:
        return later - earlier

    def send(self, line: str) -> None:
        """One line to the panel; once it is gone, nothing (gpiozero's threads must not fail)."""
        if self.problem is not None:
            return
        try:
            with self._send_lock:
                self._sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            self._lost(f"panel at {self.address} stopped taking output: {exc.strerror or exc}")

    def _read(self) -> None:
        buffer, self._buffer = self._buffer, b""
        chunk = b""  # lines that came with the greeting are taken first
        while self.problem is None:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._received(line.decode("ascii", "replace").split())
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                chunk = b""
                continue
            except OSError as exc:
                self._lost(f"panel at {self.address} went away: {exc.strerror or exc}")
                return
            if not chunk:
                self._lost(f"panel at {self.address} closed the connection")
                return

    def _received(self, words: list[str]) -> None:
        if len(words) in (3, 4) and words[0] == "edge" and words[1].isdigit() and words[2] in ("0", "1"):
            pin = self._pin_by_gpio(int(words[1]))
            if pin is not None:
                pin.edge(words[2] == "1", self._ticks_of(words[3] if len(words) == 4 else None))
        elif words and words[0] != "hello":
            log.debug("panel at %s sent an unknown line: %s", self.address, " ".join(words))

    def _ticks_of(self, stamp: str | None) -> float:
        """An edge's moment on our clock: the panel's stamp plus the smallest difference of the
        clocks seen so far (the quickest delivery); no stamp: now."""
        now = self.ticks()
        try:
            moment = float(stamp) if stamp is not None else None
        except ValueError:
            moment = None
        if moment is None:
            return now
        self._offset = min(self._offset, now - moment)
        return moment + self._offset

    def _pin_by_gpio(self, gpio: int) -> LinkPin | None:
        for pin in list(self.pins.values()):
            if isinstance(pin, LinkPin) and pin.gpio == gpio:
                return pin
        return None

    def _lost(self, reason: str) -> None:
        # The reader thread and a sender may find the link gone at once: one says so.
        with self._lost_lock:
            if self.problem is not None:
                return
            self.problem = reason
        log.info("%s", reason)
        try:
            self._sock.close()
        except OSError:
            pass
        if self.on_lost is not None:
            self.on_lost(reason)

    def close(self) -> None:
        super().close()  # each pin's close still reaches the panel if it is there
        if self.problem is None:
            self.problem = "closed"
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
