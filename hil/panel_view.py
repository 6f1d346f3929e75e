"""The simulated panel on a terminal: its LEDs and the buzzer's tone, and keys 1-4 press its buttons.

    python -m hil.panel_view [HOST:]PORT

PORT is the panel simulator's control channel (kit-sim prints it as `panel ... control=`).
One line, redrawn five times a second, shows each LED lit or not (in words, not only colour),
the buzzer's tone and which buttons are held; keys 1, 2, 3, 4 tap Capture/Next, Retry, Skip
and Cancel, a capital (!, @, #, $ with shift, or C for Cancel) holds the button until the next
key (Cancel must be held 2 s); q quits. Needs a terminal: it reads keys one by one.
"""

from __future__ import annotations

import json
import select
import sys
import termios
import threading
import tty
from typing import Any, TextIO

from hil.control import ControlUnreachable, parse_address, send_command

REFRESH_S = 0.2
KEYS = {"1": "capture", "2": "retry", "3": "skip", "4": "cancel"}
HOLD_KEYS = {"!": "capture", "@": "retry", "#": "skip", "$": "cancel", "C": "cancel"}
LED_NAMES = (("ready", "READY"), ("capturing", "CAPTURING"), ("error", "ERROR"))


def panel_line(state: dict[str, Any]) -> str:
    """One line for the terminal from the simulator's `state` reply."""
    link = "kitd connected" if state.get("connected") else "kitd not connected"
    leds = "  ".join(f"[{'*' if state['leds'].get(name) else ' '}] {label}" for name, label in LED_NAMES)
    tone = state.get("buzzer") or 0
    buzzer = f"buzzer {tone:.0f} Hz" if tone else "buzzer silent"
    held = [name for name, down in state.get("pressed", {}).items() if down]
    keys = "held: " + (", ".join(held) if held else "none")
    return f"{leds}  | {buzzer} | {keys} | {link} | 1-4 tap, shift holds, q quits"


def key_command(key: str, holding: str | None) -> tuple[list[str], str | None]:
    """The control commands a key sends, and the button held after it."""
    commands = [f"release {holding}"] if holding else []
    if key in KEYS:
        return [*commands, f"tap {KEYS[key]}"], None
    if key in HOLD_KEYS:
        return [*commands, f"press {HOLD_KEYS[key]}"], HOLD_KEYS[key]
    return commands, None


def run(host: str, port: int, keys_in: TextIO, out: TextIO) -> int:
    stop = threading.Event()
    holding: str | None = None

    def draw() -> None:
        while not stop.is_set():
            try:
                reply = send_command(host, port, "state")
                line = panel_line(json.loads(reply.removeprefix("ok ")))
            except (ControlUnreachable, ValueError) as exc:
                line = f"panel simulator unreachable at {host}:{port}: {exc}"
            out.write("\r\x1b[K" + line)
            out.flush()
            stop.wait(REFRESH_S)

    drawer = threading.Thread(target=draw, daemon=True)
    drawer.start()
    try:
        while True:
            ready, _, _ = select.select([keys_in], [], [], REFRESH_S)
            if not ready:
                continue
            key = keys_in.read(1)
            if key in ("", "q"):
                break
            commands, holding = key_command(key, holding)
            for command in commands:
                try:
                    send_command(host, port, command)
                except ControlUnreachable as exc:
                    out.write(f"\r\x1b[K{command}: {exc}\n")
    finally:
        if holding:
            try:
                send_command(host, port, f"release {holding}")
            except ControlUnreachable:
                pass
        stop.set()
        drawer.join(timeout=2)
        out.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        host, port = parse_address(args[0])
    except ValueError as exc:
        print(f"panel_view: {args[0]!r} is not PORT or HOST:PORT ({exc})", file=sys.stderr)
        return 2
    if not sys.stdin.isatty():
        print("panel_view: needs a terminal (it reads keys one at a time)", file=sys.stderr)
        return 2
    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setcbreak(sys.stdin)
        return run(host, port, sys.stdin, sys.stdout)
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main())
