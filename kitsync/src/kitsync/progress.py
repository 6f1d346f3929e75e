"""Progress bars for transfers on a terminal, and nothing where output goes to a file.

Its one job: :func:`transfer_progress` gives the pull a bar per bundle on its way (bytes, speed,
time left) and one for the whole pull, drawn by rich on stderr when stderr is a terminal; off a
terminal (a script, a log) every call does nothing and only the summary line is printed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class TransferProgress(Protocol):
    """What a pull tells of its bundles; bundles may be downloaded several at a time, each named
    by its id, and the calls may come from the threads that download them."""

    def bundle(self, name: str, size: int) -> None:
        """A bundle begins."""
        ...

    def update(self, name: str, done: int) -> None:
        """Bytes of the bundle ``name`` on disk so far."""
        ...

    def finished(self, name: str) -> None:
        """The bundle ``name`` is done (stored or failed)."""
        ...

    def note(self, line: str) -> None:
        """A line to show above the bars (a bundle failed, say)."""
        ...


class Quiet:
    """No bars: what runs without a terminal."""

    def bundle(self, name: str, size: int) -> None:
        pass

    def update(self, name: str, done: int) -> None:
        pass

    def finished(self, name: str) -> None:
        pass

    def note(self, line: str) -> None:
        print(line, file=sys.stderr)


@dataclass
class _Bar:
    """A bundle on its way: its bar, its size, its bytes on disk so far."""

    task: TaskID
    size: int
    done: int = 0


class Bars:
    """rich's bars: one for each bundle on its way and one for the whole pull."""

    def __init__(self, progress: Progress, count: int, total: int) -> None:
        self.progress = progress
        self.overall = progress.add_task(f"{count} bundles", total=total)
        # The downloading threads and the pull's own share these: one lock over them.
        self.lock = threading.Lock()
        self.on_way: dict[str, _Bar] = {}
        self.before = 0  # bytes of the bundles finished, for the overall bar

    def _overall(self) -> None:
        self.progress.update(self.overall, completed=self.before + sum(b.done for b in self.on_way.values()))

    def bundle(self, name: str, size: int) -> None:
        with self.lock:
            self.on_way[name] = _Bar(self.progress.add_task(name[:8], total=size), size)

    def update(self, name: str, done: int) -> None:
        with self.lock:
            bar = self.on_way.get(name)
            if bar is None:
                return
            bar.done = done
            self.progress.update(bar.task, completed=done)
            self._overall()

    def finished(self, name: str) -> None:
        with self.lock:
            bar = self.on_way.pop(name, None)
            if bar is None:
                return
            self.progress.remove_task(bar.task)
            # A bundle acknowledged without a download, or failed, counts as done for the whole.
            self.before += bar.size
            self._overall()

    def note(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)


@contextmanager
def transfer_progress(count: int, total: int, enabled: bool | None = None) -> Iterator[TransferProgress]:
    """Bars for ``count`` bundles of ``total`` bytes on a terminal (``enabled`` overrides)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or count == 0:
        yield Quiet()
        return
    # Imported only to draw: rich is an eighth of kit-sync's start, and a script needs none of it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield Bars(progress, count, total)
