"""Progress bars for transfers on a terminal, and nothing where output goes to a file.

Its one job: :func:`transfer_progress` gives the pull a bar per bundle (bytes, speed, time
left) and one for the whole pull, drawn by rich on stderr when stderr is a terminal; off a
terminal (a script, a log) every call does nothing and only the summary line is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class TransferProgress(Protocol):
    def bundle(self, name: str, size: int) -> None:
        """A new bundle begins."""
        ...

    def update(self, done: int) -> None:
        """Bytes of the current bundle on disk so far."""
        ...

    def finished(self) -> None:
        """The current bundle is done (stored or failed)."""
        ...

    def note(self, line: str) -> None:
        """A line to show above the bars (a bundle failed, say)."""
        ...


class Quiet:
    """No bars: what runs without a terminal."""

    def bundle(self, name: str, size: int) -> None:
        pass

    def update(self, done: int) -> None:
        pass

    def finished(self) -> None:
        pass

    def note(self, line: str) -> None:
        print(line, file=sys.stderr)


class Bars:
    """rich's bars: the current bundle and the whole pull."""

    def __init__(self, progress: Progress, count: int, total: int) -> None:
        self.progress = progress
        self.overall = progress.add_task(f"{count} bundles", total=total)
        self.current: TaskID | None = None
        self.size = 0
        self.before = 0  # bytes of the bundles finished, for the overall bar

    def bundle(self, name: str, size: int) -> None:
        self.current = self.progress.add_task(name[:8], total=size)
        self.size = size

    def update(self, done: int) -> None:
        if self.current is not None:
            self.progress.update(self.current, completed=done)
            self.progress.update(self.overall, completed=self.before + done)

    def finished(self) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
        # A bundle acknowledged without a download, or failed, counts as done for the whole.
        self.before += self.size
        self.progress.update(self.overall, completed=self.before)
        self.current, self.size = None, 0

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
