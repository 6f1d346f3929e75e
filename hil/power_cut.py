"""What a power cut at each point of a run would leave on the disk, rebuilt and checked.

Its one job: a kill -9 keeps the page cache; a power cut keeps only what was made durable.
:func:`record_run` runs the outbox (sealing, receipts, erasure, start-up) in a child process
with hil/sqlite_io_shim.so preloaded, so that one trace holds every write, truncate, fsync
and unlink SQLite made to its files, every file operation the outbox made through its
FileOps (hil.io_trace.RecordingFileOps), every mkdir and every fsync of a directory, and a
mark each time an operation returned. :func:`crash_states` replays the trace: for every
crash point (every record) it yields the disks a power cut there could leave — the names a
directory fsync made durable plus any subset of the later ones (create, rename, unlink,
mkdir), and each file's content as last fsynced plus a subset or a prefix of its later
writes, the last one possibly torn (SQLite's -shm is dropped: it is rebuilt from the WAL).
:func:`check_power_cuts` builds each disk and checks it with hil.outbox_invariants.

The model is stricter than ext4's (which orders what it commits): anything not fsynced may or
may not be there, in any combination; a rename across two directories is kept whole or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.io_trace import IoTrace, Record, RecordingFileOps, read_trace, shim_environment
from hil.outbox_invariants import Expected, OfficeCheck, check_outbox
from hil.outbox_rig import central_signer, laptop_signer, open_rig, receipt, sample_captures, seal_injected
from hil.rig import install_simulation_credentials
from kitd.store import outbox as rows

DATABASE_SUFFIXES = (".sqlite3", ".sqlite3-wal", ".sqlite3-journal")
# A low autocheckpoint, so that the run's few transactions include checkpoints (the
# database file written from the WAL, the WAL restarted) and not only appends to the WAL.
AUTOCHECKPOINT_PAGES = 8
VARIANTS = ("kit", "no-directory-fsync", "no-file-fsync", "database-sync-off")


# --- the recorded run (in the child) ---------------------------------------------------


class SkipDirectoryFsync(RecordingFileOps):
    """A broken write path: renames and unlinks are never made durable."""

    def fsync_directory(self, directory: Path) -> None:
        pass


class SkipFileFsync(RecordingFileOps):
    """A broken write path: a file's bytes are not made durable before its rename."""

    def fsync(self, fd: int) -> None:
        pass


def _run(work: Path, variant: str) -> None:
    """The child: the kit's outbox through a few weeks' life, recorded into work/trace."""
    trace = IoTrace()
    ops = {"no-directory-fsync": SkipDirectoryFsync, "no-file-fsync": SkipFileFsync}.get(
        variant, RecordingFileOps
    )(trace.file_op)
    data_dir = work / "data"
    rig = open_rig(data_dir, work / "office", ops=ops)
    rig.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    if variant == "database-sync-off":
        rig.conn.execute("PRAGMA synchronous=OFF")  # a broken database: commits not fsynced
    laptop = laptop_signer(rig, "laptop-1")
    central = central_signer(rig)
    sample = sample_captures()
    # The run starts on a disk where everything is durable (as after a clean boot).
    os.sync()
    shutil.copytree(data_dir, work / "baseline", ignore=shutil.ignore_patterns("*-shm"), symlinks=True)
    trace.start(work / "trace")
    rig.outbox.reconcile(rig.conn)  # the kit's start-up: the outbox directory is made
    now = dt.datetime.now(dt.UTC)
    stored = []
    for number in range(4):
        if number == 3:
            # Receipts for the first bundles, the rest offered, the delivered one erased
            # (the retention is 7 days), then one more visit.
            taken = [
                receipt(laptop, "laptop_receipt", stored[0], "laptop-1", now),
                receipt(central, "central_receipt", stored[0], "central", now),
                receipt(laptop, "laptop_receipt", stored[1], "laptop-1", now),
            ]
            for result in rig.outbox.take_receipts(rig.conn, taken, now):
                if result["result"] != "refused":
                    trace.mark("reached", result["bundle_id"], result["state"])
            for offered in rig.outbox.offer(rig.conn, "laptop-1", now):
                trace.mark("reached", offered["bundle_id"], offered["state"])
            for bundle_id in rig.outbox.erase_expired(rig.conn, now + dt.timedelta(days=8)):
                trace.mark("erased", bundle_id)
        record = seal_injected(rig, sample, f"power-cut-{number}", now)
        trace.mark("stored", record["bundle"]["id"], record["id"])
        stored.append(rows.bundle_row(rig.conn, record["bundle"]["id"]))
    rig.close()  # SQLite's last checkpoint and the WAL's unlink are in the trace too
    trace.stop()


# --- the recording (in the parent) -----------------------------------------------------


@dataclass
class Recording:
    """A recorded run: its trace, the disk it started from, its office."""

    root: Path  # the data_dir the run wrote (the trace's paths are under it)
    baseline: Path
    office_dir: Path
    records: list[Record]


def record_run(shim: Path, work: Path, variant: str = "kit") -> subprocess.Popen:
    """Start the recorded run of ``variant`` in ``work`` (a child process); finish it with
    :func:`recording`."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # The credentials are made once in this process, not in every child (RSA keys are slow).
    install_simulation_credentials(work / "data", work / "office")
    env = shim_environment(shim, work / "data")
    return subprocess.Popen(
        [sys.executable, "-m", "hil.power_cut", str(work), variant],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def recording(child: subprocess.Popen, work: Path, timeout_s: float = 120.0) -> Recording:
    """The recording of the run ``child`` made in ``work``, once it has ended."""
    out, err = child.communicate(timeout=timeout_s)
    if child.returncode != 0:
        raise RuntimeError(f"the recorded run failed ({child.returncode}):\n{out}\n{err}")
    work = Path(work).resolve()
    return Recording(work / "data", work / "baseline", work / "office", read_trace(work / "trace"))


# --- the model of the disk -------------------------------------------------------------


@dataclass
class Node:
    """A file's content: as last fsynced, and the writes and truncates since."""

    durable: bytes
    pending: list[tuple[int, int, bytes]] = field(default_factory=list)  # (offset, size, data)

    def content(self, chosen: tuple[int, ...] = (), torn: int | None = None) -> bytes:
        """The durable content with the ``chosen`` pending operations applied in order; a
        write whose index is ``torn`` lands only in part."""
        data = bytearray(self.durable)
        for index in chosen:
            offset, size, written = self.pending[index]
            if size >= 0:  # a truncate to ``size``
                del data[size:]
                data.extend(bytes(size - len(data)))
                continue
            if index == torn:
                written = written[: _tear(len(written), offset)]
            if len(data) < offset:
                data.extend(bytes(offset - len(data)))
            data[offset : offset + len(written)] = written
        return bytes(data)

    def sync(self) -> None:
        self.durable = self.content(tuple(range(len(self.pending))))
        self.pending = []


def _tear(length: int, offset: int) -> int:
    """Where a write torn by the power cut stops: at its middle 512-byte sector boundary, or
    half way when it spans none (fixed, so that a state is rebuilt the same twice)."""
    boundaries = range((offset // 512 + 1) * 512 - offset, length, 512)
    return boundaries[len(boundaries) // 2] if boundaries else max(1, length // 2)


@dataclass
class EntryOp:
    """A change of names: a link (create, mkdir, rename's target), an unlink, or a rename."""

    kind: str  # "link", "unlink" or "rename"
    path: str
    node: int | None = None
    source: str = ""
    unsynced: set[str] = field(default_factory=set)  # directories whose fsync it still waits for

    def apply(self, names: dict[str, int]) -> None:
        if self.kind == "unlink":
            names.pop(self.path, None)
            return
        if self.kind == "rename":
            names.pop(self.source, None)
        names[self.path] = self.node  # type: ignore[assignment]


def _parent(path: str) -> str:
    return os.path.dirname(path)


@dataclass
class Disk:
    """The model, replayed record by record: what is durable and what is not yet."""

    names: dict[str, int]  # the baseline's names (relative paths) -> node
    nodes: dict[int, Node | None]  # None: a directory
    live: dict[str, int] = field(default_factory=dict)  # the names as the running kit saw them
    ops: list[EntryOp] = field(default_factory=list)

    @classmethod
    def of(cls, baseline: Path) -> Disk:
        disk = cls({}, {})
        for path in sorted(baseline.rglob("*")):
            name = str(path.relative_to(baseline))
            disk.names[name] = disk._node(None if path.is_dir() else Node(path.read_bytes()))
        disk.live = dict(disk.names)
        return disk

    def _node(self, node: Node | None) -> int:
        number = len(self.nodes)
        self.nodes[number] = node
        return number

    def _entry(self, op: EntryOp, *directories: str) -> None:
        op.unsynced = set(directories)
        self.ops.append(op)
        op.apply(self.live)

    def apply(self, record: Record, root: str) -> None:
        """One record of the trace (its paths under ``root``)."""

        def relative(path: str) -> str:
            return os.path.relpath(path, root) if path.startswith(root) else path

        path = relative(record.path)
        if record.op in ("create", "mkdir"):
            node = self._node(None if record.op == "mkdir" else Node(b""))
            self._entry(EntryOp("link", path, node), _parent(path))
        elif record.op == "write":
            self.nodes[self.live[path]].pending.append((record.offset, -1, record.data))  # type: ignore[union-attr]
        elif record.op == "truncate":
            self.nodes[self.live[path]].pending.append((0, record.arg, b""))  # type: ignore[union-attr]
        elif record.op == "fsync":
            self.nodes[self.live[path]].sync()  # type: ignore[union-attr]
        elif record.op == "rename":
            target = relative(record.path2)
            self._entry(EntryOp("rename", target, self.live[path], path), _parent(path), _parent(target))
        elif record.op == "unlink":
            self._entry(EntryOp("unlink", path), _parent(path))
        elif record.op == "dirsync":
            directory = "" if path == "." else path
            for op in self.ops:
                op.unsynced.discard(directory)
            if all(not op.unsynced for op in self.ops):
                # Everything durable: fold the ops into the names (keeps the replay short).
                for op in self.ops:
                    op.apply(self.names)
                self.ops = []
        # close, marks and faults change nothing on the disk

    def loose(self) -> tuple[list[int], list[int]]:
        """The entry ops not yet durable, and the files with writes not yet durable."""
        ops = [i for i, op in enumerate(self.ops) if op.unsynced]
        files = [n for n, node in self.nodes.items() if node is not None and node.pending]
        return ops, files


@dataclass(frozen=True)
class CrashState:
    """One disk a power cut at ``point`` (before record ``point``) could leave."""

    point: int
    what: str
    files: dict[str, bytes | None]  # relative path -> content, None for a directory
    expected: Expected
    names_lost: int = 0  # changes of names not kept
    database_cut: bool = False  # a database file lost unsynced writes, or holds one torn

    def key(self) -> tuple[Any, ...]:
        digest = hashlib.sha256()
        for name in sorted(self.files):
            content = self.files[name]
            digest.update(
                name.encode() + b"\0" + (b"/" if content is None else hashlib.sha256(content).digest())
            )
        return digest.digest(), self.expected.key()


def _content_choices(node: Node, rng: random.Random) -> list[tuple[str, tuple[int, ...], int | None]]:
    """What a file with unsynced writes may hold: none of them, all, all with the last torn,
    a prefix, and a random subset with its last torn (named, for the report)."""
    count = len(node.pending)
    every = tuple(range(count))
    choices = [("synced", (), None), ("all", every, None), ("torn", every, count - 1)]
    if count > 1:
        cut = rng.randrange(1, count)
        choices.append((f"first {cut}", every[:cut], None))
        subset = tuple(i for i in every if rng.random() < 0.5)
        choices.append((f"subset {subset}", subset, subset[-1] if subset and rng.random() < 0.5 else None))
    return choices


def _state(
    disk: Disk,
    point: int,
    expected: Expected,
    applied: set[int],
    contents: dict[int, tuple[str, tuple[int, ...], int | None]],
) -> CrashState:
    names = dict(disk.names)
    for index, op in enumerate(disk.ops):
        if not op.unsynced or index in applied:
            op.apply(names)
    files: dict[str, bytes | None] = {}
    for name in sorted(names, key=lambda n: n.count("/")):
        if _parent(name) and files.get(_parent(name), b"") is not None:
            continue  # its directory's name did not survive
        node = disk.nodes[names[name]]
        if node is None:
            files[name] = None
        elif name.endswith("-shm"):
            continue
        elif names[name] in contents:
            _, chosen, torn = contents[names[name]]
            files[name] = node.content(chosen, torn)
        else:
            files[name] = node.durable
    lost = [f"{op.kind} {op.path}" for i, op in enumerate(disk.ops) if op.unsynced and i not in applied]
    where = {node: name for name, node in names.items()}
    cut = {where.get(n, f"unlinked file {n}"): c[0] for n, c in contents.items() if c[0] != "all"}
    what = "; ".join(
        [f"names not kept: {lost}" if lost else "every name kept"]
        + [f"{name}: {choice} of its unsynced writes" for name, choice in sorted(cut.items())]
    )
    database_cut = any(name.endswith(DATABASE_SUFFIXES) for name in cut)
    return CrashState(point, what, files, expected.copy(), len(lost), database_cut)


def disk_after(recording: Recording, keep_unsynced: bool = True) -> dict[str, bytes | None]:
    """The disk the whole run leaves: with every write kept, it must be the disk the run
    really left (the replay's own check); without the unsynced ones, it is what a power cut
    right at the end leaves (after a failed fsync, say)."""
    disk = Disk.of(recording.baseline)
    for record in recording.records:
        disk.apply(record, str(recording.root))
    if not keep_unsynced:
        return _state(disk, len(recording.records), Expected(), set(), {}).files
    ops, files = disk.loose()
    every = {n: ("all", tuple(range(len(disk.nodes[n].pending))), None) for n in files}  # type: ignore[union-attr]
    return _state(disk, len(recording.records), Expected(), set(ops), every).files


def crash_states(recording: Recording, per_point: int = 8, seed: int = 24) -> Iterator[CrashState]:
    """Every crash point's disks: all combinations when there are at most ``per_point``,
    else the two extremes (nothing unsynced kept; everything kept, as kill -9 leaves it) and
    a seeded sample. A disk already yielded (same files, same expectations) is not again."""
    rng = random.Random(seed)
    disk = Disk.of(recording.baseline)
    root = str(recording.root)
    expected = Expected()
    seen: set[tuple[Any, ...]] = set()
    for point in range(len(recording.records) + 1):
        ops, files = disk.loose()
        choices = {n: _content_choices(disk.nodes[n], rng) for n in files}  # type: ignore[arg-type]
        size = 2 ** len(ops)
        for options in choices.values():
            size *= len(options)
        if size <= per_point:
            combos = [
                ({ops[i] for i, keep in enumerate(kept) if keep}, dict(zip(choices, picked, strict=True)))
                for kept in itertools.product((False, True), repeat=len(ops))
                for picked in itertools.product(*choices.values())
            ]
        else:
            combos = [
                (set(), {n: c[0] for n, c in choices.items()}),
                (set(ops), {n: c[1] for n, c in choices.items()}),
            ]
            for _ in range(per_point - 2):
                combos.append(
                    ({i for i in ops if rng.random() < 0.5}, {n: rng.choice(c) for n, c in choices.items()})
                )
        for applied, contents in combos:
            state = _state(disk, point, expected, applied, contents)
            if state.key() not in seen:
                seen.add(state.key())
                yield state
        if point < len(recording.records):
            record = recording.records[point]
            if record.op == "mark:stored":
                expected.stored[record.path] = record.path2
                expected.reach(record.path, "sealed")
            elif record.op == "mark:reached":
                expected.reach(record.path, record.path2)
            elif record.op == "mark:erased":
                expected.erased.add(record.path)
                expected.reach(record.path, "erased")
            else:
                disk.apply(record, root)


# --- building and checking -------------------------------------------------------------

RAM_DISK = Path("/dev/shm")
RAM_DISK_NEEDED = 512 * 2**20


@contextmanager
def scratch_place(fallback: Path) -> Iterator[Path]:
    """Where the harnesses' kits run and their rebuilt disks are checked: a new folder on the
    RAM disk when it has room, else ``fallback``. No power is really cut here, durability is
    the model's (from the trace), so the disk's own fsyncs prove nothing and only cost time.
    A folder on the RAM disk is removed at the end; ``fallback`` is the caller's to remove."""
    place = fallback
    try:
        if os.access(RAM_DISK, os.W_OK) and shutil.disk_usage(RAM_DISK).free >= RAM_DISK_NEEDED:
            place = Path(tempfile.mkdtemp(prefix="kitd-outbox-harness-", dir=RAM_DISK))
    except OSError:
        pass  # no RAM disk here
    place.mkdir(parents=True, exist_ok=True)
    try:
        yield place
    finally:
        if place != fallback:
            shutil.rmtree(place, ignore_errors=True)


def write_disk(files: dict[str, bytes | None], target: Path, contents: Path) -> Path:
    """Write a rebuilt disk into the new directory ``target``: the outbox's and the keys'
    files as hard links to one copy of each content in ``contents`` (start-up only renames
    and unlinks them), the database's anew (start-up writes to them)."""
    contents.mkdir(parents=True, exist_ok=True)
    target.mkdir(mode=0o700)
    for name, content in files.items():
        path = target / name
        if content is None:
            path.mkdir(mode=0o700, exist_ok=True)
        elif name.endswith(DATABASE_SUFFIXES):
            path.write_bytes(content)
        else:
            stored = contents / hashlib.sha256(content).hexdigest()
            if not stored.exists():
                stored.write_bytes(content)
                stored.chmod(0o600)
            os.link(stored, path)
    return target


def copy_disk(source: Path, target: Path) -> Path:
    """A copy of a kit's data_dir as a crash would leave it: the database's files copied
    (SQLite writes into them), the others hard links (the kit only creates, renames and
    unlinks them, never writes one in place), SQLite's -shm left out."""

    def copy(one: str, other: str) -> None:
        if not one.endswith(DATABASE_SUFFIXES):
            try:
                os.link(one, other)
                return
            except OSError:
                pass  # another file system: a copy
        shutil.copyfile(one, other)

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*-shm"), copy_function=copy)
    return target


class Builder:
    """Writes crash states into numbered directories under ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = Path(work)
        self.count = 0

    def build(self, state: CrashState) -> Path:
        self.count += 1
        return write_disk(state.files, self.work / f"state-{self.count}", self.work / "contents")


@dataclass
class PowerCutReport:
    points: int = 0
    states: int = 0
    names_lost: int = 0  # states in which some change of names was not kept
    database_cut: int = 0  # states in which a database file lost or tore unsynced writes
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def check_power_cuts(
    recording: Recording,
    work: Path,
    per_point: int = 8,
    stop_at_first: bool = False,
    max_failures: int = 20,
) -> PowerCutReport:
    """Build every crash state of ``recording`` under ``work`` and check the outbox in each."""
    started = time.monotonic()
    report = PowerCutReport(points=len(recording.records) + 1)
    builder = Builder(work)
    office = OfficeCheck(recording.office_dir, recording.baseline / "keys" / "ca.crt")
    for state in crash_states(recording, per_point):
        report.states += 1
        report.names_lost += state.names_lost > 0
        report.database_cut += state.database_cut
        directory = builder.build(state)
        problems = check_outbox(directory, recording.office_dir, state.expected, office)
        if problems:
            at = recording.records[state.point] if state.point < len(recording.records) else None
            before = f"before {at.op} {os.path.basename(at.path)}" if at else "at the end"
            report.failures.append(f"crash point {state.point} ({before}), {state.what}: {problems}")
            if stop_at_first or len(report.failures) >= max_failures:
                break
        else:
            shutil.rmtree(directory)
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="the power-cut harness's recorded run (run under the shim)")
    parser.add_argument("work", type=Path)
    parser.add_argument("variant", choices=VARIANTS)
    args = parser.parse_args()
    _run(args.work, args.variant)


if __name__ == "__main__":
    main()
