"""Files written whole or not at all, and still there after a power cut.

Its one job: the kit's one small file I/O layer. :class:`FileOps` is every operation a
durable write is made of (create, write, fsync, rename, fsync of the folder, unlink, mkdir), so
that tests can record a run of them (to rebuild what a power cut at each point would
leave) or make one fail (EIO, ENOSPC); :func:`write_atomically` writes to a temporary name
in the same folder, fsyncs it, renames it over the final name and fsyncs the folder, so
that a reader (or the kit after the battery ran flat) finds either the old file or the
whole new one, never half. Temporary names end in :data:`TEMPORARY_SUFFIX`.
:func:`why_no_folder` says, before a long job, why a folder cannot be made where asked.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMPORARY_SUFFIX = ".part"


def why_no_folder(folder: Path) -> str | None:
    """Why no folder can be made at `folder`, said before anything is written: a file (or a
    link to nowhere) there or at one of its parents. None when nothing is in the way."""
    for place in (folder, *folder.parents):
        try:
            if place.is_symlink() and not place.exists():
                return f"{place} is a link to nowhere ({os.readlink(place)})"
            if place.exists():
                return None if place.is_dir() else f"{place} is a file, not a folder"
        except OSError:
            return None  # not ours to judge here: using the folder says why
    return None


class FileOps:
    """The operations of a durable write, on the real file system."""

    def create(self, path: Path, mode: int) -> int:
        """A new file (never an existing one), open for writing, with exactly ``mode``."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def mkdir(self, path: Path, mode: int) -> None:
        os.mkdir(path, mode)

    def fsync_directory(self, directory: Path) -> None:
        """Make the names created, renamed or removed in ``directory`` durable."""
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# The kit's file system; tests pass their own FileOps (recording, failing) instead.
DISK = FileOps()


def fsync_directory(directory: Path, ops: FileOps = DISK) -> None:
    """Make a rename in ``directory`` durable (the new name is in the directory's blocks)."""
    ops.fsync_directory(directory)


def make_directory(path: Path, mode: int = 0o700, ops: FileOps = DISK) -> None:
    """The folder ``path`` (and any missing parent), its name fsynced into its parent so that
    it survives a power cut; one already there is fsynced into its parent again (whoever made
    it may not have, and a folder lost takes every file in it along)."""
    if not path.parent.is_dir() and path.parent != path:
        make_directory(path.parent, mode, ops)
    try:
        ops.mkdir(path, mode)
    except FileExistsError:
        if not path.is_dir():
            raise
    ops.fsync_directory(path.parent)


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (a hidden name, same folder)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX)


def write_atomically(path: Path, data: bytes, mode: int | None = None, ops: FileOps = DISK) -> None:
    """Write ``data`` to ``path`` whole or not at all; ``mode`` (default 0o600) from the start.

    A failure at any step (the OSError is raised) leaves the old ``path`` as it was and no
    temporary file behind, as far as the file system lets it be removed."""
    directory = path.parent if str(path.parent) else Path(".")
    temporary = temporary_name(path)
    try:
        fd = ops.create(temporary, 0o600 if mode is None else mode)
    except OSError as exc:
        # Named by the file asked for: the temporary name means nothing to whoever asked.
        exc.filename = str(path)
        raise
    try:
        try:
            ops.write(fd, data)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        ops.rename(temporary, path)
    except BaseException as exc:
        try:
            ops.unlink(temporary)
        except OSError:
            pass  # gone already, or the disk refuses even this: start-up removes it
        if isinstance(exc, OSError):
            exc.filename = str(path)  # a full disk says which file it could not take
        raise
    ops.fsync_directory(directory)


def remove_durably(paths: list[Path], ops: FileOps = DISK) -> None:
    """Remove each of ``paths`` that exists (all in one folder), then fsync that folder."""
    directories = set()
    for path in paths:
        try:
            ops.unlink(path)
        except FileNotFoundError:
            continue
        directories.add(path.parent)
    for directory in directories:
        ops.fsync_directory(directory)


def write_exclusively(path: Path, data: bytes, mode: int = 0o600, ops: FileOps = DISK) -> bool:
    """Write ``data`` to ``path`` whole, fsynced, only if ``path`` does not exist yet (a key
    made once, never replaced by a second maker racing the first); whether it was written."""
    temporary = temporary_name(path)
    fd = ops.create(temporary, mode)
    try:
        try:
            ops.write(fd, data)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        try:
            os.link(temporary, path)  # fails if the name exists, unlike a rename
        except FileExistsError:
            return False
        ops.fsync_directory(path.parent)
        return True
    finally:
        try:
            ops.unlink(temporary)
        except OSError:
            pass  # start-up's temporary files are removed where the kit looks for them
