"""python -m hil.control: one command to a simulator's control channel, the reply, an exit status.

It replaces the README's `printf ... | nc 127.0.0.1 PORT` (issue 17, defect 10a), which
hangs with Debian's netcat and needs a package the kit does not install.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable

from hil.rig import REPO, SimulatorProcess


def control(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hil.control", *args], capture_output=True, text=True, timeout=30, cwd=REPO
    )


def test_sends_one_command_and_exits_by_the_reply(start_simulator: Callable[..., SimulatorProcess]) -> None:
    sim = start_simulator("hil.nb1010_sim", ["--condition", "good"])
    port = sim.addresses["control"].rpartition(":")[2]

    result = control(port, "condition light")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok") and len(result.stdout.splitlines()) == 1
    assert "condition light" in sim.control("status")  # the simulator took it

    # HOST:PORT as kit-sim prints it works too; an unknown command is `err`, exit 1.
    result = control(sim.addresses["control"], "no-such-command")
    assert result.returncode == 1
    assert result.stdout.startswith("err unknown command")
    result = control(port, "condition no-such-condition")
    assert result.returncode == 1 and result.stdout.startswith("err unknown condition")


def test_an_unreachable_channel_is_exit_2_with_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: refused
        result = control(str(port), "help")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot reach" in result.stderr
