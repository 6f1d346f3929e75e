"""A disk that fails on cue, for the outbox's I/O-fault tests.

Its one job: :class:`FailingFileOps` is the kit's file I/O layer (kitd.durable_files.FileOps)
on the real file system, except that the Nth call of one chosen operation raises
``OSError(EIO)`` or ``OSError(ENOSPC)``; with ``then_failing`` the disk stays broken for
those operations after the first fault (it refuses even the clean-up). Every call is
counted, so a healthy run (``nth=0``: it never fails) says which calls there are to fail.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from kitd.durable_files import FileOps

OPERATIONS: tuple[str, ...] = (
    "create",
    "write",
    "fsync",
    "close",
    "rename",
    "fsync_directory",
    "unlink",
    "mkdir",
)
ERRORS: tuple[int, ...] = (errno.EIO, errno.ENOSPC)


class FailingFileOps(FileOps):
    """The real file operations; the ``nth`` call of ``operation`` raises ``error`` instead."""

    def __init__(
        self,
        operation: str = "write",
        nth: int = 0,
        error: int = errno.EIO,
        then_failing: Iterable[str] = (),
    ) -> None:
        unknown = {operation, *then_failing} - set(OPERATIONS)
        if unknown:
            raise ValueError(f"no file operation {sorted(unknown)}; one of {', '.join(OPERATIONS)}")
        self.operation = operation
        self.nth = nth
        self.error = error
        self.then_failing = frozenset(then_failing)
        self.calls: Counter[str] = Counter()
        # What failed, in order: (operation, the file it was given).
        self.failures: list[tuple[str, str]] = []

    @property
    def fired(self) -> bool:
        return bool(self.failures)

    def _due(self, operation: str) -> bool:
        """Count a call of ``operation``: whether it is the one to fail."""
        self.calls[operation] += 1
        if operation == self.operation and self.calls[operation] == self.nth:
            return True
        return self.fired and operation in self.then_failing

    def _refuse(self, operation: str, target: object) -> None:
        self.failures.append((operation, str(target)))
        raise OSError(self.error, os.strerror(self.error), str(target))

    def create(self, path: Path, mode: int) -> int:
        if self._due("create"):
            self._refuse("create", path)
        return super().create(path, mode)

    def write(self, fd: int, data: bytes) -> None:
        if self._due("write"):
            self._refuse("write", fd)
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self._due("fsync"):
            self._refuse("fsync", fd)
        super().fsync(fd)

    def close(self, fd: int) -> None:
        # A close that fails has still released the descriptor (close(2)): Linux reports a
        # write-back error there, so the descriptor is closed and then the error raised.
        due = self._due("close")
        super().close(fd)
        if due:
            self._refuse("close", fd)

    def rename(self, source: Path, target: Path) -> None:
        if self._due("rename"):
            self._refuse("rename", source)
        super().rename(source, target)

    def unlink(self, path: Path) -> None:
        if self._due("unlink"):
            self._refuse("unlink", path)
        super().unlink(path)

    def mkdir(self, path: Path, mode: int) -> None:
        if self._due("mkdir"):
            self._refuse("mkdir", path)
        super().mkdir(path, mode)

    def fsync_directory(self, directory: Path) -> None:
        if self._due("fsync_directory"):
            self._refuse("fsync_directory", directory)
        super().fsync_directory(directory)
