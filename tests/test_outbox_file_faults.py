"""The outbox on a failing disk: every file operation of a store, an erasure and a start-up
reconciliation (create, write, fsync, close, rename, fsync of the folder, unlink, mkdir)
made to fail with EIO and with ENOSPC, one call at a time (hil.file_faults). Each failure is
reported, the operation is refused cleanly or retried, and the outbox's invariants hold:
no partial file, no row that start-up would not resolve, nothing sealed that is not whole,
nothing the office does not have erased. SQLite's faults are test_outbox_sqlite_faults.py's.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.file_faults import ERRORS, OPERATIONS, FailingFileOps
from hil.outbox_rig import (
    OutboxRig,
    central_signer,
    laptop_signer,
    open_rig,
    receipt,
    sample_captures,
    seal_injected,
    seal_new_visit,
)
from hil.sample_visit import SampleVisit
from kitd.crypto.bundle import bundle_paths, statement_bytes, write_bundle
from kitd.durable_files import write_atomically
from kitd.services.outbox import OutboxError, Reconciled
from kitd.store import outbox as rows
from kitd.store.visits import load_visit

# The simulation CA's credentials are made at the run, valid from a day before: a fixed
# date would fall outside them one day.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# Past outbox.retention_days (7) after NOW: what was delivered at NOW may be erased.
LATER = NOW + dt.timedelta(days=8)


@pytest.fixture(scope="module")
def sample() -> SampleVisit:
    return sample_captures()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[OutboxRig]:
    with open_rig(tmp_path / "data", tmp_path / "office") as opened:
        yield opened


def files_of(rig: OutboxRig, bundle_id: str) -> list[str]:
    """Every file of the outbox (temporary or not, quarantined or not) that is the bundle's."""
    return sorted(p.name for p in rig.outbox.directory.rglob("*") if bundle_id in p.name)


def order_status(conn: sqlite3.Connection, order_id: str) -> str:
    return conn.execute("SELECT status FROM work_orders WHERE order_id = ?", (order_id,)).fetchone()[0]


def visit_rows(conn: sqlite3.Connection, visit_id: str) -> list[dict[str, Any]]:
    found = conn.execute("SELECT * FROM outbox WHERE visit_id = ?", (visit_id,)).fetchall()
    return [dict(r) for r in found]


def assert_whole(rig: OutboxRig, row: dict[str, Any]) -> None:
    sealed, statement = bundle_paths(rig.outbox.directory, row["bundle_id"])
    data = sealed.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (row["size"], row["sha256"])
    assert json.loads(statement.read_bytes())["statement"]["sha256"] == row["sha256"]


def assert_one_bundle(rig: OutboxRig, visit_id: str) -> dict[str, Any]:
    """The visit has exactly one bundle, sealed and whole, and its order is closed."""
    kept = [r for r in visit_rows(rig.conn, visit_id) if r["state"] != "erased"]
    assert [r["state"] for r in kept] == ["sealed"], kept
    assert_whole(rig, kept[0])
    statements = [
        json.loads(p.read_bytes())["statement"] for p in rig.outbox.directory.glob("*.statement.json")
    ]
    assert [s["bundle_id"] for s in statements if s.get("visit_id") == visit_id] == [kept[0]["bundle_id"]]
    assert order_status(rig.conn, visit_id) == "done"
    assert load_visit(rig.conn, visit_id)["bundle"]["id"] == kept[0]["bundle_id"]
    return kept[0]


def assert_nothing_to_reconcile(rig: OutboxRig, missing: tuple[str, ...] = ()) -> None:
    """A reconciliation now finds nothing to do (but report the ``missing`` bundles again)."""
    assert rig.outbox.reconcile(rig.conn, NOW) == Reconciled(missing=list(missing))


def healthy_calls(rig: OutboxRig, sample: SampleVisit) -> dict[str, int]:
    """The file operations of one store on a healthy disk, by kind (after start-up's
    reconciliation has made the outbox's folder, as the daemon's does)."""
    rig.outbox.reconcile(rig.conn, NOW)
    counting = FailingFileOps()
    rig.outbox.ops = counting
    bundle, record = seal_new_visit(rig, sample, "HEALTHY", NOW)
    rig.outbox.store(rig.conn, bundle, record, NOW)
    assert_one_bundle(rig, "HEALTHY")
    # Statement then sealed file: each at least created, written, fsynced, closed, renamed
    # and its folder fsynced.
    assert {"create", "write", "fsync", "close", "rename", "fsync_directory"} <= set(counting.calls)
    return dict(counting.calls)


# --- a store --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
def test_a_store_that_fails_at_any_file_step_is_refused_and_a_retry_seals_once(
    rig: OutboxRig, sample: SampleVisit, error: int
) -> None:
    calls = healthy_calls(rig, sample)
    for operation, count in calls.items():
        for nth in range(1, count + 1):
            name = f"F-{operation}-{nth}"
            bundle, record = seal_new_visit(rig, sample, name, NOW)
            failing = FailingFileOps(operation, nth, error)
            rig.outbox.ops = failing
            with pytest.raises(OutboxError) as refused:
                rig.outbox.store(rig.conn, bundle, record, NOW)
            message = str(refused.value)
            assert failing.failures and failing.failures[0][0] == operation
            assert "\n" not in message and bundle.bundle_id in message and os.strerror(error) in message
            # Refused cleanly: no file of it (not even a temporary one), no row, nothing
            # sealed; the visit is not saved and its order waits for a finish again.
            assert files_of(rig, bundle.bundle_id) == [], (operation, nth)
            assert visit_rows(rig.conn, name) == []
            assert order_status(rig.conn, name) == "pending" and load_visit(rig.conn, name) is None
            # The officer finishes again (sealed anew) on a healthy disk: one bundle.
            rig.outbox.ops = FailingFileOps()
            again, record = seal_new_visit(rig, sample, name, NOW)
            saved = rig.outbox.store(rig.conn, again, record, NOW)
            assert saved["bundle"]["id"] == again.bundle_id
            assert assert_one_bundle(rig, name)["bundle_id"] == again.bundle_id
    assert_nothing_to_reconcile(rig)


@pytest.mark.parametrize("first", ["reconcile", "finish again"])
def test_a_store_whose_clean_up_fails_too_is_resolved_by_start_up_or_a_finish_again(
    rig: OutboxRig, sample: SampleVisit, first: str
) -> None:
    """The disk breaks at a step and then refuses even the clean-up (unlink, fsync of the
    folder): what is left is a temporary file or the bundle's own files under a row still
    'sealing', never a whole file without a row."""
    calls = healthy_calls(rig, sample)
    error = errno.EIO if first == "reconcile" else errno.ENOSPC
    for operation, count in calls.items():
        for nth in range(1, count + 1):
            name = f"D-{operation}-{nth}"
            bundle, record = seal_new_visit(rig, sample, name, NOW)
            rig.outbox.ops = FailingFileOps(operation, nth, error, then_failing=("unlink", "fsync_directory"))
            with pytest.raises(OutboxError) as refused:
                rig.outbox.store(rig.conn, bundle, record, NOW)
            assert "\n" not in str(refused.value) and os.strerror(error) in str(refused.value)
            left = files_of(rig, bundle.bundle_id)
            finals = [n for n in left if not n.startswith(".")]
            states = [r["state"] for r in visit_rows(rig.conn, name)]
            # With files left the row stays; with none, it goes only once their removal is
            # durable (the folder's fsync, refused here, keeps it 'sealing' for start-up).
            assert states == ["sealing"] if finals else states in ([], ["sealing"]), states
            kept = bool(states)
            assert order_status(rig.conn, name) == "pending" and load_visit(rig.conn, name) is None
            rig.outbox.ops = FailingFileOps()
            if first == "reconcile":
                report = rig.outbox.reconcile(rig.conn, NOW)
                assert report.registered == report.quarantined == report.missing == report.damaged == []
                whole = f"{bundle.bundle_id}.p7m" in finals
                # A whole bundle is registered (its visit saved, its order closed); else forgotten.
                assert (report.completed, report.forgotten) == (
                    ([bundle.bundle_id], []) if whole else ([], [bundle.bundle_id] if kept else [])
                )
                assert files_of(rig, bundle.bundle_id) == (
                    [f"{bundle.bundle_id}.p7m", f"{bundle.bundle_id}.statement.json"] if whole else []
                )
                if whole:
                    assert assert_one_bundle(rig, name)["bundle_id"] == bundle.bundle_id
                    continue
            again, record = seal_new_visit(rig, sample, name, NOW)
            if first == "finish again" and finals and f"{bundle.bundle_id}.p7m" not in finals:
                # The earlier statement must go first: on a disk that still refuses, the
                # finish again is refused too, saying so, and nothing changes.
                rig.outbox.ops = FailingFileOps("unlink", 1, error, then_failing=("unlink",))
                with pytest.raises(
                    OutboxError, match=f"could not remove an unfinished bundle of visit {name}"
                ):
                    rig.outbox.store(rig.conn, again, record, NOW)
                assert [r["bundle_id"] for r in visit_rows(rig.conn, name)] == [bundle.bundle_id]
                assert files_of(rig, again.bundle_id) == [] and order_status(rig.conn, name) == "pending"
                rig.outbox.ops = FailingFileOps()
            saved = rig.outbox.store(rig.conn, again, record, NOW)
            # A whole earlier bundle is the visit's; the new one is dropped, never both.
            expected = bundle if f"{bundle.bundle_id}.p7m" in finals else again
            assert saved["bundle"]["id"] == expected.bundle_id, (operation, nth)
            assert assert_one_bundle(rig, name)["bundle_id"] == expected.bundle_id
            # Start-up then removes the temporary files the disk would not let go, and
            # nothing else: of the failed bundle, only what became the visit's is left.
            report = rig.outbox.reconcile(rig.conn, NOW)
            assert report.registered == report.quarantined == report.forgotten == report.completed == []
            kept = [f"{bundle.bundle_id}.p7m", f"{bundle.bundle_id}.statement.json"]
            assert files_of(rig, bundle.bundle_id) == (kept if expected is bundle else [])
    assert_nothing_to_reconcile(rig)


# --- an erasure -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def delivered_outbox(tmp_path_factory: pytest.TempPathFactory, sample: SampleVisit) -> Path:
    """A kit whose outbox holds two bundles delivered at NOW, one a laptop acknowledged and
    one only sealed (a snapshot: each test copies it)."""
    root = tmp_path_factory.mktemp("delivered")
    rig = open_rig(root / "data", root / "office")
    central, laptop = central_signer(rig), laptop_signer(rig, "laptop-1")
    for name in ("DELIVERED-1", "DELIVERED-2", "ACKNOWLEDGED", "SEALED"):
        seal_injected(rig, sample, name, NOW)
    for row in rig.outbox.bundles(rig.conn):
        if row["visit_id"].startswith("DELIVERED"):
            document = receipt(central, "central_receipt", row, "central", NOW)
        elif row["visit_id"] == "ACKNOWLEDGED":
            document = receipt(laptop, "laptop_receipt", row, "laptop-1", NOW)
        else:
            continue
        assert rig.outbox.take_receipts(rig.conn, [document], NOW)[0]["result"] == "accepted"
    rig.close()
    return root


def copy_of(snapshot: Path, tmp_path: Path, ops: FailingFileOps, name: str = "kit") -> OutboxRig:
    shutil.copytree(snapshot, tmp_path / name)
    return open_rig(tmp_path / name / "data", tmp_path / name / "office", ops=ops)


def by_visit(rig: OutboxRig) -> dict[str, dict[str, Any]]:
    return {r["visit_id"]: r for r in rows.bundle_rows(rig.conn)}


@pytest.fixture(scope="module")
def erasure_calls(delivered_outbox: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """The file operations of the erasure on a healthy disk: only the delivered bundles go."""
    counting = FailingFileOps()
    rig = copy_of(delivered_outbox, tmp_path_factory.mktemp("healthy"), counting)
    try:
        before = by_visit(rig)
        erased = rig.outbox.erase_expired(rig.conn, LATER)
        calls = dict(counting.calls)
        assert sorted(erased) == sorted(before[v]["bundle_id"] for v in ("DELIVERED-1", "DELIVERED-2"))
        for visit in ("ACKNOWLEDGED", "SEALED"):
            assert by_visit(rig)[visit] == before[visit]
            assert_whole(rig, before[visit])
        assert_nothing_to_reconcile(rig)
        return calls
    finally:
        rig.close()


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
def test_an_erasure_whose_file_step_fails_is_reported_and_finished_by_start_up(
    delivered_outbox: Path,
    erasure_calls: dict[str, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    error: int,
) -> None:
    assert {"unlink", "fsync_directory"} <= set(erasure_calls)
    cases = [(op, nth) for op in OPERATIONS for nth in range(1, erasure_calls.get(op, 0) + 1)]
    for operation, nth in cases:
        failing = FailingFileOps(operation, nth, error)
        rig = copy_of(delivered_outbox, tmp_path, failing, f"kit-{operation}-{nth}")
        caplog.clear()
        try:
            before = by_visit(rig)
            delivered = sorted(before[v]["bundle_id"] for v in ("DELIVERED-1", "DELIVERED-2"))
            with caplog.at_level(logging.WARNING, logger="kitd.outbox"):
                erased = rig.outbox.erase_expired(rig.conn, LATER)
            assert sorted(erased) == delivered
            assert failing.fired
            # Reported: the bundle whose files would not go, and why.
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and os.strerror(error) in warnings[0], warnings
            assert any(bundle_id in warnings[0] for bundle_id in delivered)
            # The rows say erased; what the office does not have is untouched, rows and files.
            after = by_visit(rig)
            assert [after[v]["state"] for v in ("DELIVERED-1", "DELIVERED-2")] == ["erased", "erased"]
            for visit in ("ACKNOWLEDGED", "SEALED"):
                assert after[visit] == before[visit]
                assert_whole(rig, after[visit])
            # Start-up removes what the erasure left.
            rig.outbox.ops = FailingFileOps()
            report = rig.outbox.reconcile(rig.conn, LATER)
            assert report.missing == report.damaged == report.quarantined == report.registered == []
            for bundle_id in delivered:
                assert files_of(rig, bundle_id) == []
            for visit in ("ACKNOWLEDGED", "SEALED"):
                assert by_visit(rig)[visit] == before[visit]
                assert_whole(rig, before[visit])
            assert_nothing_to_reconcile(rig)
        finally:
            rig.close()


# --- start-up ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untidy_outbox(tmp_path_factory: pytest.TempPathFactory, sample: SampleVisit) -> Path:
    """A kit stopped in the middle of everything: a temporary file; a sealing interrupted
    after its files were whole and one after its statement only; an erasure interrupted
    before its files went; a whole bundle without its row; a file that is not a bundle of
    this kit; a lone statement; a sealed bundle whose file is gone; and a sealed bundle
    that is fine. A snapshot: each test copies it."""
    root = tmp_path_factory.mktemp("untidy")
    rig = open_rig(root / "data", root / "office")
    outbox = rig.outbox.directory
    central = central_signer(rig)
    for name in ("FINE", "GONE", "ERASED"):
        seal_injected(rig, sample, name, NOW)
    kept = by_visit(rig)
    rig.outbox.take_receipts(
        rig.conn, [receipt(central, "central_receipt", kept["ERASED"], "central", NOW)], NOW
    )
    rows.mark_erased(rig.conn, LATER, LATER)  # its files not yet removed
    bundle_paths(outbox, kept["GONE"]["bundle_id"])[0].unlink()
    whole, record = seal_new_visit(rig, sample, "INTERRUPTED-WHOLE", NOW)
    rows.register_sealing(
        rig.conn,
        whole.bundle_id,
        record,
        hashlib.sha256(whole.sealed).hexdigest(),
        len(whole.sealed),
        record["bundle"]["sealed_at"],
    )
    write_bundle(outbox, whole)
    half, record = seal_new_visit(rig, sample, "INTERRUPTED-HALF", NOW)
    rows.register_sealing(
        rig.conn,
        half.bundle_id,
        record,
        hashlib.sha256(half.sealed).hexdigest(),
        len(half.sealed),
        record["bundle"]["sealed_at"],
    )
    write_atomically(bundle_paths(outbox, half.bundle_id)[1], statement_bytes(half.statement))
    stray, _record = seal_new_visit(rig, sample, "STRAY", NOW)
    write_bundle(outbox, stray)
    (outbox / ".lost.p7m.0badf00d.part").write_bytes(b"half a bundle")
    (outbox / "foreign.p7m").write_bytes(b"not a bundle")
    (outbox / "foreign.statement.json").write_text("{}")
    lone, _record = seal_new_visit(rig, sample, "LONE", NOW)
    write_atomically(bundle_paths(outbox, lone.bundle_id)[1], statement_bytes(lone.statement))
    rig.close()
    return root


def end_state(rig: OutboxRig) -> dict[str, Any]:
    """What a reconciliation leaves: the outbox's files, each bundle's row and each order."""
    return {
        "files": sorted(
            str(p.relative_to(rig.outbox.directory)) for p in rig.outbox.directory.rglob("*") if p.is_file()
        ),
        "rows": {r["bundle_id"]: (r["state"], r["problem"]) for r in rows.bundle_rows(rig.conn)},
        "orders": dict(rig.conn.execute("SELECT order_id, status FROM work_orders").fetchall()),
    }


@pytest.fixture(scope="module")
def reconciled(
    untidy_outbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, int], dict[str, Any]]:
    """The file operations of a reconciliation of the untidy outbox on a healthy disk, and
    the state it leaves."""
    counting = FailingFileOps()
    rig = copy_of(untidy_outbox, tmp_path_factory.mktemp("healthy"), counting)
    try:
        report = rig.outbox.reconcile(rig.conn, LATER)
        calls = dict(counting.calls)
        assert len(report.completed) == len(report.forgotten) == len(report.registered) == 1
        assert len(report.missing) == len(report.temporary_removed) == 1
        assert report.quarantined == ["foreign"] and len(report.leftovers_removed) == 3
        state = end_state(rig)
        assert_nothing_to_reconcile(rig, missing=tuple(report.missing))
        return calls, state
    finally:
        rig.close()


@pytest.mark.parametrize("error", ERRORS, ids=errno.errorcode.get)
def test_a_reconciliation_whose_file_step_fails_is_reported_and_a_later_one_completes(
    untidy_outbox: Path,
    reconciled: tuple[dict[str, int], dict[str, Any]],
    tmp_path: Path,
    error: int,
) -> None:
    calls, healthy_end = reconciled
    # Temporary files, interrupted sealings and erasures removed, strays moved aside.
    assert {"unlink", "rename", "fsync_directory"} <= set(calls)
    cases = [(op, nth) for op in OPERATIONS for nth in range(1, calls.get(op, 0) + 1)]
    for operation, nth in cases:
        failing = FailingFileOps(operation, nth, error)
        rig = copy_of(untidy_outbox, tmp_path, failing, f"kit-{operation}-{nth}")
        try:
            with pytest.raises(OSError) as failed:
                rig.outbox.reconcile(rig.conn, LATER)
            # Reported: the error, and the file or folder it struck.
            assert failed.value.errno == error and failed.value.filename, failed.value
            assert failing.failures == [(operation, failed.value.filename)]
            rig.outbox.ops = FailingFileOps()
            report = rig.outbox.reconcile(rig.conn, LATER)
            assert end_state(rig) == healthy_end, (operation, nth)
            assert_nothing_to_reconcile(rig, missing=tuple(report.missing))
        finally:
            rig.close()
