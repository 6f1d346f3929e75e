"""The outbox through a power cut at every point of a run, not only a killed process.

A kill -9 keeps the page cache; a power cut keeps only what was fsynced. hil/power_cut.py
records a run of the real outbox (start-up, four visits sealed, receipts, an offer, an
erasure, the database closed) in a child process under hil/sqlite_io_shim.c, an LD_PRELOAD
shim that records SQLite's own writes, truncates, fsyncs and unlinks (Python's sqlite3 uses
the system libsqlite3, which a test VFS such as apsw's, bundling its own SQLite, never
reaches), in one stream with the outbox's file operations (a recording FileOps) and a mark
each time an operation returned. For every record it rebuilds the disks a power cut there
could leave — durable names plus any subset of the others, fsynced bytes plus a subset,
prefix or torn part of the others — and starts the outbox on each (hil.outbox_invariants).
Broken write paths are run through the same harness to show it catches them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.io_trace import COMPILER, build_shim
from hil.power_cut import (
    DATABASE_SUFFIXES,
    Recording,
    check_power_cuts,
    disk_after,
    record_run,
    recording,
    scratch_place,
)

pytestmark = pytest.mark.skipif(COMPILER is None, reason="needs a C compiler (cc) for the LD_PRELOAD shim")

BROKEN = {
    # variant: what the harness must then find
    "no-directory-fsync": ("missing", "lacks", "no row", "without"),
    "no-file-fsync": ("damaged", "not the one registered", "refused at the office"),
    "database-sync-off": ("registered", "no row", "not saved finished", "reported", "integrity", "not open"),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the runs are recorded and their disks rebuilt (a RAM disk when there is one)."""
    with scratch_place(tmp_path_factory.mktemp("power-cut")) as place:
        yield place


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory, scratch: Path) -> dict[str, Recording]:
    """The kit's run and the broken ones, recorded side by side (each a child process)."""
    shim = build_shim(tmp_path_factory.mktemp("shim"))
    works = {variant: scratch / f"run-{variant}" for variant in ("kit", *BROKEN)}
    children = {variant: record_run(shim, work, variant) for variant, work in works.items()}
    return {variant: recording(child, works[variant]) for variant, child in children.items()}


def test_the_trace_holds_sqlites_writes_and_the_outboxs_in_one_stream(recordings) -> None:
    run = recordings["kit"]
    seen = {(r.op, os.path.basename(r.path).split(".", 1)[-1]) for r in run.records}
    # SQLite: WAL appends and their fsyncs, checkpoints into the database file, the WAL's unlink.
    for op, name in [("write", "sqlite3-wal"), ("fsync", "sqlite3-wal"), ("write", "sqlite3")]:
        assert (op, name) in seen, (op, name)
    assert ("fsync", "sqlite3") in seen and ("unlink", "sqlite3-wal") in seen
    # The outbox: its folder made, files written and fsynced, renamed, the folders fsynced, unlinked.
    ops = [r.op for r in run.records]
    for op in ("mkdir", "create", "write", "fsync", "rename", "dirsync", "unlink"):
        assert op in ops, op
    marks = [r for r in run.records if r.op.startswith("mark:")]
    assert [m.op for m in marks].count("mark:stored") == 4
    assert [m.op for m in marks].count("mark:erased") == 1
    # One ordered stream: a bundle's files are written between its registration's commit
    # (an fsync of the WAL) and the commit that makes it sealed.
    first_rename = ops.index("rename")
    assert any(r.op == "fsync" and r.path.endswith(".sqlite3-wal") for r in run.records[:first_rename])
    assert ops.index("mark:stored") > first_rename


def test_the_replay_rebuilds_the_disk_the_run_left(recordings) -> None:
    """With every write kept, the model's disk is the real one, byte for byte (the database
    file included): the replay of the trace is faithful."""
    run = recordings["kit"]
    rebuilt = disk_after(run)
    real = {
        str(p.relative_to(run.root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(run.root.rglob("*"))
        if not p.name.endswith("-shm")
    }
    assert sorted(rebuilt) == sorted(real)
    different = [name for name in real if rebuilt[name] != real[name]]
    assert different == []
    assert any(name.endswith(DATABASE_SUFFIXES) for name in real)


def test_a_power_cut_at_any_point_leaves_the_outbox_whole(recordings, scratch: Path) -> None:
    report = check_power_cuts(recordings["kit"], scratch / "disks-kit")
    print(
        f"power cut: {report.points} crash points, {report.states} disks checked "
        f"({report.names_lost} losing names, {report.database_cut} losing or tearing database "
        f"writes) in {report.seconds:.1f} s"
    )
    assert report.failures == []
    assert report.points > 200 and report.states > 400
    # The harness did cut where it matters: names (most disks losing one are the same as an
    # earlier point's, and checked once) and SQLite's unsynced writes.
    assert report.names_lost >= 5 and report.database_cut > 100


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_the_harness_catches_a_broken_write_path(recordings, scratch: Path, variant: str) -> None:
    """A FileOps that skips the folder's fsync or the file's, or a database not fsyncing its
    commits: some power cut loses a bundle the outbox had called stored, and it is found."""
    report = check_power_cuts(recordings[variant], scratch / f"disks-{variant}", stop_at_first=True)
    assert report.failures, f"{variant}: no power cut found anything wrong in {report.states} disks"
    assert any(word in report.failures[0] for word in BROKEN[variant]), report.failures[0]
