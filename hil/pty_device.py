"""What the simulated serial devices (hil.isdv4_sim, hil.smp_peripheral_sim) share: a raw pty
whose slave a symlink names, as a USB serial port's path names it, and work handed to the
simulator's one I/O thread from its control channel.

A simulator keeps all its state on its I/O thread: :class:`IoThreadWork` carries a function
there and brings its result (or exception) back; the thread's select loop waits on
``IoThreadWork.wake_fd`` too and calls ``run_due()`` when it is readable.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

# How long a control channel command waits for the I/O thread to run it.
CALL_TIMEOUT_S = 10.0


class IoThreadWork:
    """Functions to run on the I/O thread, and the pipe that wakes its select loop for them."""

    def __init__(self, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._tasks: queue.Queue[tuple[Callable[[], Any], queue.Queue]] = queue.Queue()
        self.wake_fd, self._wake_w = os.pipe()

    def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on the I/O thread and return what it returns (or raise what it raised)."""
        answer: queue.Queue = queue.Queue(maxsize=1)
        self._tasks.put((work, answer))
        os.write(self._wake_w, b"x")
        ok, value = answer.get(timeout=self.timeout_s)
        if not ok:
            raise value
        return value

    def run_due(self) -> None:
        """On the I/O thread, once ``wake_fd`` is readable: run every function handed over."""
        os.read(self.wake_fd, 4096)
        while True:
            try:
                work, answer = self._tasks.get_nowait()
            except queue.Empty:
                return
            try:
                answer.put((True, work()))
            except Exception as exc:  # noqa: BLE001 - the control channel reports it as `err`
                answer.put((False, exc))


def open_pty(link: Path) -> tuple[int, int, str]:
    """A new raw pty (no echo, no line editing before the host sets the port up), its master
    non-blocking, and ``link`` swapped to its slave in one rename: (master, slave, slave's name)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    name = os.ttyname(slave)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(name, tmp)
    os.replace(tmp, link)
    return master, slave, name


def close_pty(link: Path, master: int, slave: int | None) -> None:
    """The port vanishes: ``link`` removed, both ends closed (a host holding the slave sees it go)."""
    link.unlink(missing_ok=True)
    for fd in (master, slave):
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass


def run_until_stopped(
    serve: Callable[[threading.Event], None],
    control: Any,
    link: Path,
    stop: threading.Event,
    log: logging.Logger,
    note: str | None = None,
) -> None:
    """A simulator's life once built: its I/O thread (``serve``) and control channel run, the
    READY line out (what the rigs wait for), until SIGTERM, SIGINT or ``stop`` (the `quit`
    command); then the channel closes and the I/O thread is given a moment to end. The caller
    takes its port away after."""
    io_thread = threading.Thread(target=serve, args=(stop,), name="pty", daemon=True)
    io_thread.start()
    control.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"READY serial={link} control=127.0.0.1:{control.port}", flush=True)
    if note:
        log.info("%s", note)
    stop.wait()
    log.info("stopping")
    control.close()
    io_thread.join(2.0)
