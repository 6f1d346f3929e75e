"""Files written whole or not at all, and still there after the laptop loses power.

Its one job: :func:`write_atomically` (a temporary name in the same folder, fsync, rename
over the final name, fsync of the folder) and :func:`fsync_directory`, which makes a rename
durable where the platform can (Windows cannot open a folder to fsync it; NTFS journals the
rename itself). kitd.durable_files does the same on the kit; kit-sync imports nothing of kitd
(an import contract), and how a file is written is no format for kitformats to hold.
"""

from __future__ import annotations

import glob
import os
import secrets
from pathlib import Path

PART_SUFFIX = ".part"


def fsync_directory(directory: Path) -> None:
    """Make the names created or renamed in ``directory`` durable."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int = 0o600, sync_directory: bool = True) -> None:
    """``data`` at ``path``, whole or not at all: a reader finds the old file or the new one.
    Without ``sync_directory`` the new name is durable only once the caller fsyncs the folder
    (:func:`fsync_directory`): one fsync for several files written into it."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass  # gone already; a leftover hidden .part harms nothing
        raise
    if sync_directory:
        fsync_directory(path.parent)


def drop_unfinished_writes(path: Path) -> None:
    """Remove what :func:`write_atomically` left of earlier writes of ``path`` that were cut
    (the process killed, the power lost): its hidden temporary files. Only for a path no one
    else writes at the same time."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{PART_SUFFIX}"):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


def make_directory(path: Path, mode: int = 0o700) -> None:
    """``path`` and its missing parents, each new name fsynced into its parent."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            pass
        fsync_directory(directory.parent)
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: not a folder")
