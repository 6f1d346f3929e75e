"""The panel on a terminal (hil/panel_view.py), run in a pseudo-terminal against the panel
simulator's process: what it shows, and keys 1-4 pressing the simulator's buttons."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

from hil.panel_view import key_command, panel_line
from hil.rig import REPO, wait_until


def test_a_line_says_in_words_what_is_lit_and_sounding() -> None:
    state = {
        "connected": True,
        "leds": {"ready": 1.0, "capturing": 0.0, "error": 0.0},
        "buzzer": 1320.0,
        "pressed": {"capture": False, "cancel": True},
    }
    line = panel_line(state)
    assert "[*] READY" in line and "[ ] CAPTURING" in line and "[ ] ERROR" in line
    assert "buzzer 1320 Hz" in line and "held: cancel" in line and "kitd connected" in line
    quiet = panel_line({**state, "connected": False, "buzzer": 0.0, "pressed": {}})
    assert "buzzer silent" in quiet and "held: none" in quiet and "kitd not connected" in quiet


def test_keys_tap_hold_and_release() -> None:
    assert key_command("1", None) == (["tap capture"], None)
    assert key_command("$", None) == (["press cancel"], "cancel")
    assert key_command("2", "cancel") == (["release cancel", "tap retry"], None)
    assert key_command("x", "cancel") == (["release cancel"], None)


def _read_until(fd: int, text: str, timeout_s: float = 20.0) -> str:
    seen = ""

    def found() -> bool:
        nonlocal seen
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 4096).decode(errors="replace")
        return text in seen

    wait_until(found, f"{text!r} on the terminal", timeout_s)
    return seen


def test_the_view_in_a_terminal_presses_the_simulators_buttons(start_simulator) -> None:  # noqa: ANN001
    sim = start_simulator("hil.panel_sim", ["--bounces", "0"])
    control = sim.addresses["control"]
    main_fd, child_fd = pty.openpty()
    view = subprocess.Popen(
        [sys.executable, "-m", "hil.panel_view", control],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        cwd=REPO,
        start_new_session=True,
    )
    os.close(child_fd)
    try:
        _read_until(main_fd, "kitd not connected")  # no kitd here: the simulator has no pin client
        os.write(main_fd, b"1")

        def tapped() -> bool:
            history = json.loads(sim.control("history").removeprefix("ok "))
            return [c["value"] for c in history["changes"] if c["part"] == "button:capture"] == [1, 0]

        wait_until(tapped, "Capture/Next pressed and released once")
        os.write(main_fd, b"$")
        wait_until(lambda: '"cancel":true' in sim.control("state"), "Cancel held")
        _read_until(main_fd, "held: cancel")
        os.write(main_fd, b"q")
        assert view.wait(timeout=20) == 0
        assert '"cancel":false' in sim.control("state"), "quitting lets go of a held button"
    finally:
        if view.poll() is None:
            view.kill()
        os.close(main_fd)
