"""One ordered record of a run's disk writes: SQLite's (through an LD_PRELOAD shim) and the
outbox's (through a recording FileOps), and the shim's faults for the database.

Its one job: the Python face of hil/sqlite_io_shim.c — :func:`build_shim` compiles it,
:class:`IoTrace` talks to it in the process it is preloaded in (start the trace, add a record
or a mark, arm a fault, count calls), :class:`RecordingFileOps` does each outbox file
operation for real and records it with its bytes (into the same stream, through
:meth:`IoTrace.file_op`, or to any other sink: the crash harness announces them), and
:func:`read_trace` reads a trace back. For the power-cut harness (hil/power_cut.py), the
database's I/O-fault tests (hil/sqlite_faults.py) and the crash harness (hil/outbox_crash.py).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kitd.durable_files import FileOps

SHIM_SOURCE = Path(__file__).with_name("sqlite_io_shim.c")
COMPILER = shutil.which("cc") or shutil.which("gcc")
_HEADER = struct.Struct("<IHHHHqqII")
T = TypeVar("T")


def build_shim(out_dir: Path) -> Path:
    """Compile the shim into ``out_dir``; its path (CalledProcessError says why not)."""
    if COMPILER is None:
        raise RuntimeError("no C compiler (cc or gcc) to build hil/sqlite_io_shim.c")
    out = Path(out_dir) / "sqlite_io_shim.so"
    subprocess.run(
        [COMPILER, "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM_SOURCE), "-ldl", "-lpthread"],
        check=True,
        capture_output=True,
    )
    return out


def shim_environment(shim: Path, root: Path) -> dict[str, str]:
    """The environment of a child process whose writes under ``root`` the shim watches."""
    return dict(os.environ, LD_PRELOAD=str(shim), KITD_IO_ROOT=str(Path(root).resolve()))


@dataclass(frozen=True)
class Record:
    """One operation, as the shim or the recording FileOps saw it (or a mark of the run)."""

    op: str
    path: str
    path2: str = ""
    offset: int = 0
    arg: int = 0
    data: bytes = b""


def read_trace(path: Path) -> list[Record]:
    """The records of the trace file at ``path``, in the order they happened."""
    blob = Path(path).read_bytes()
    records, at = [], 0
    while at < len(blob):
        total, op_len, path_len, path2_len, _, offset, arg, data_len, _ = _HEADER.unpack_from(blob, at)
        body = at + _HEADER.size
        op = blob[body : body + op_len].decode()
        body += op_len
        name = blob[body : body + path_len].decode()
        body += path_len
        name2 = blob[body : body + path2_len].decode()
        body += path2_len
        records.append(Record(op, name, name2, offset, arg, bytes(blob[body : body + data_len])))
        at += total
    return records


class IoTrace:
    """The shim, in this process (which must have been started with it in LD_PRELOAD)."""

    def __init__(self) -> None:
        library = ctypes.CDLL(None)
        try:
            self._record = library.kitd_trace_record
        except AttributeError:
            raise RuntimeError("hil/sqlite_io_shim.so is not preloaded in this process") from None
        self._record.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_char_p,
            ctypes.c_uint32,
        ]
        self._record.restype = None
        self._start = library.kitd_trace_start
        self._start.argtypes = [ctypes.c_char_p]
        self._stop = library.kitd_trace_stop
        self._arm = library.kitd_fault_arm
        self._arm.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_int]
        self._arm.restype = None
        self._count = library.kitd_fault_count
        self._count.argtypes = [ctypes.c_char_p]
        self._count.restype = ctypes.c_long

    def start(self, trace: Path) -> None:
        if self._start(str(trace).encode()) != 0:
            raise OSError(f"the trace {trace} cannot be opened")

    def stop(self) -> None:
        self._stop()

    def record(
        self, op: str, path: str, path2: str = "", offset: int = 0, arg: int = 0, data: bytes = b""
    ) -> None:
        """Add one record to the trace (nothing while no trace is started)."""
        self._record(op.encode(), path.encode(), path2.encode(), offset, arg, data, len(data))

    def mark(self, what: str, name: str, detail: str = "") -> None:
        """Something the run's code returned from, e.g. ("stored", bundle id, visit id)."""
        self.record("mark:" + what, name, detail)

    def arm(self, op: str, nth: int, error: int) -> None:
        """The ``nth`` ``op`` ("pwrite", "fsync", "ftruncate") on a database file from now
        fails with ``error``; 0 only counts them."""
        self._arm(op.encode(), nth, error)

    def disarm(self) -> None:
        self._arm(b"", 0, 0)

    def count(self, op: str) -> int:
        """How many ``op`` calls on database files since the last arm."""
        return int(self._count(op.encode()))

    def file_op(self, record: Record) -> None:
        """A :class:`RecordingFileOps` sink: the outbox's file operation into the trace, its
        paths made absolute. A mkdir and a directory's fsync are left out: the shim records
        those itself, at the system call (as SQLite's)."""
        if record.op in ("mkdir", "fsync_directory"):
            return
        path2 = os.path.abspath(record.path2) if record.path2 else ""
        self.record(record.op, os.path.abspath(record.path), path2, record.offset, record.arg, record.data)


class RecordingFileOps(FileOps):
    """The real file operations (kitd.durable_files.FileOps), each handed to ``sink`` as a
    :class:`Record` (a list has it appended, a callable is called with it): once it has
    succeeded, or with ``before`` as it starts (what a kill in the middle of it must still
    say). Every operation is recorded — its op is the method's name (create, write, fsync,
    close, rename, unlink, mkdir, fsync_directory) — with the paths as the caller gave them
    (a descriptor's: its file's, or the descriptor's number if it was not created here), a
    create's mode in ``arg``, a write's offset in its file and its bytes, a rename's target
    in ``path2``. :meth:`IoTrace.file_op` is the sink of the shim's trace."""

    def __init__(self, sink: Callable[[Record], object] | list[Record], before: bool = False) -> None:
        self.sink: Callable[[Record], object] = sink.append if isinstance(sink, list) else sink
        self.before = before
        self._open: dict[int, tuple[str, int]] = {}  # fd -> path and how much is written

    def name_of(self, fd: int) -> str:
        """The path ``fd`` was created with."""
        return self._open.get(fd, (str(fd), 0))[0]

    def _do(self, record: Record, operation: Callable[..., T], *args: Any) -> T:
        """``operation(*args)``, with ``record`` handed to the sink before or after it."""
        if self.before:
            self.sink(record)
        result = operation(*args)
        if not self.before:
            self.sink(record)
        return result

    def create(self, path: Path, mode: int) -> int:
        record = Record("create", os.fspath(path), arg=mode)
        fd = self._do(record, super().create, path, mode)
        self._open[fd] = (record.path, 0)
        return fd

    def write(self, fd: int, data: bytes) -> None:
        name, written = self._open.get(fd, (str(fd), 0))
        self._do(Record("write", name, offset=written, data=bytes(data)), super().write, fd, data)
        self._open[fd] = (name, written + len(data))

    def fsync(self, fd: int) -> None:
        self._do(Record("fsync", self.name_of(fd)), super().fsync, fd)

    def close(self, fd: int) -> None:
        self._do(Record("close", self._open.pop(fd, (str(fd), 0))[0]), super().close, fd)

    def rename(self, source: Path, target: Path) -> None:
        self._do(Record("rename", os.fspath(source), os.fspath(target)), super().rename, source, target)

    def unlink(self, path: Path) -> None:
        self._do(Record("unlink", os.fspath(path)), super().unlink, path)

    def mkdir(self, path: Path, mode: int) -> None:
        self._do(Record("mkdir", os.fspath(path), arg=mode), super().mkdir, path, mode)

    def fsync_directory(self, directory: Path) -> None:
        self._do(Record("fsync_directory", os.fspath(directory)), super().fsync_directory, directory)
