"""The durable outbox: what sealing into it, taking receipts and start-up reconciliation cost.

Its one job: time the real outbox code (kitd.services.outbox) on real files and the kit's
real database (hil.outbox_rig), each figure against a named reference measured in the same
run:

* bundles sealed and registered per second (the seal in memory, then Outbox.store: the row,
  the statement and the sealed file written and fsynced, the one transaction that seals it,
  saves the visit and closes its order); reference: the seal in memory alone, so the ratio
  is what the outbox's durable writes add to a finish;
* receipts taken per second (a laptop's, each checked and committed); reference: verifying
  the receipts' signatures alone;
* start-up reconciliation of an outbox of 10,000 bundles (rows and files); reference:
  listing the outbox's folder alone;
* one real bundle's size against FULL_VISIT_BYTES, the size per visit the disk reserve
  assumes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from kitformats.statements import verify_statement

from hil.outbox_rig import (
    OutboxRig,
    finished_record,
    injected_visit,
    laptop_signer,
    open_rig,
    receipt,
    sample_captures,
    seal_visit,
)
from hil.sample_visit import SampleVisit
from kitd.crypto.bundle import SealedBundle, bundle_paths, statement_bytes
from kitd.durable_files import FileOps
from kitd.services.outbox import FULL_VISIT_BYTES
from kitd.store import outbox as rows

LAPTOP = "bench-laptop"
RECEIPT_BATCH = 50  # receipts per request, as a laptop back from the field posts them


class CountingOps(FileOps):
    """The kit's file operations, counting the fsyncs (what makes a write durable, and slow)."""

    def __init__(self) -> None:
        self.file_fsyncs = 0
        self.folder_fsyncs = 0

    def fsync(self, fd: int) -> None:
        self.file_fsyncs += 1
        super().fsync(fd)

    def fsync_directory(self, directory: Path) -> None:
        self.folder_fsyncs += 1
        super().fsync_directory(directory)


def _per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.1f}/s"


def _database_bytes(rig: OutboxRig) -> int:
    """The database's size with its write-ahead log folded in."""
    rig.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = rig.conn.execute("PRAGMA page_count").fetchone()[0]
    return int(pages) * int(rig.conn.execute("PRAGMA page_size").fetchone()[0])


def _sealing(rig: OutboxRig, ops: CountingOps, sample: SampleVisit, count: int) -> SealedBundle:
    """Seal and store ``count`` visits; prints both rates. Returns the last bundle."""
    sealing, storing = [], []
    database_before = _database_bytes(rig)
    fsyncs_before = (ops.file_fsyncs, ops.folder_fsyncs)
    bundle = None
    for n in range(count):
        record, order = injected_visit(rig.conn, sample, f"bench-visit-{n}")
        started = time.perf_counter()
        bundle = seal_visit(rig, record, order, sample)
        sealed = time.perf_counter()
        rig.outbox.store(rig.conn, bundle, finished_record(record, bundle), dt.datetime.now(dt.UTC))
        stored = time.perf_counter()
        sealing.append(sealed - started)
        storing.append(stored - sealed)
    assert bundle is not None
    whole = [a + b for a, b in zip(sealing, storing, strict=True)]
    files = (ops.file_fsyncs - fsyncs_before[0]) / count
    folders = (ops.folder_fsyncs - fsyncs_before[1]) / count
    growth = (_database_bytes(rig) - database_before) / count
    print(f"  sealed and registered (seal + Outbox.store), {count} visits:")
    print(f"    reference, the seal alone in memory: {_per_second(count, sum(sealing))}")
    print(
        f"    seal + store: {_per_second(count, sum(whole))}; "
        f"the store alone: median {statistics.median(storing) * 1e3:.1f} ms, "
        f"max {max(storing) * 1e3:.1f} ms"
    )
    print(
        f"    seal + store / seal alone: {sum(whole) / sum(sealing):.3f}x "
        f"(durable writes: {files:.0f} file and {folders:.0f} folder fsyncs per bundle, "
        f"plus SQLite's commits; the database grows {growth / 1024:.1f} KiB a visit)"
    )
    return bundle


def _receipts(rig: OutboxRig, bundle: SealedBundle, count: int) -> None:
    """Take ``count`` laptop receipts for as many bundles' rows (all of one real bundle's
    hash and size: a receipt is checked against the row, not the file)."""
    sha256, size = hashlib.sha256(bundle.sealed).hexdigest(), len(bundle.sealed)
    created = bundle.statement["statement"]["created_at"]
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with rows.transaction(rig.conn):
        for bundle_id in ids:
            rows.register_found(rig.conn, bundle_id, None, sha256, size, created)
    laptop = laptop_signer(rig, LAPTOP)
    documents = [
        receipt(laptop, "laptop_receipt", {"bundle_id": i, "sha256": sha256, "size": size}, LAPTOP)
        for i in ids
    ]
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    for document in documents:
        verify_statement(document, [], at=now, pinned=laptop.certificate)
    verifying = time.perf_counter() - started

    def take_all() -> tuple[float, list[str]]:
        results: list[str] = []
        started = time.perf_counter()
        for first in range(0, count, RECEIPT_BATCH):
            batch = documents[first : first + RECEIPT_BATCH]
            results += [r["result"] for r in rig.outbox.take_receipts(rig.conn, batch, now)]
        return time.perf_counter() - started, results

    taking, results = take_all()
    assert results == ["accepted"] * count, sorted(set(results))
    replaying, results = take_all()
    assert results == ["duplicate"] * count, sorted(set(results))
    print(f"  receipts, {count} laptop receipts for as many bundles, {RECEIPT_BATCH} a request:")
    print(f"    reference, verifying their signatures alone: {_per_second(count, verifying)}")
    print(f"    taken (checked, each bundle acknowledged and committed): {_per_second(count, taking)}")
    print(f"    the same again (all duplicates): {_per_second(count, replaying)}")
    print(f"    taken / signatures alone: {taking / verifying:.2f}x the time")


def _fill(rig: OutboxRig, bundle: SealedBundle, count: int) -> str:
    """``count`` registered bundles in the outbox: rows through the store's own functions,
    files as hard links of one real sealed bundle and its statement (sparse files of its size
    where the file system has no hard links). Says which."""
    source = rig.data_dir / "bench-source"
    source.mkdir()
    sealed_source, statement_source = source / "bundle.p7m", source / "bundle.statement.json"
    sealed_source.write_bytes(bundle.sealed)
    statement_source.write_bytes(statement_bytes(bundle.statement))
    sha256, size = hashlib.sha256(bundle.sealed).hexdigest(), len(bundle.sealed)
    created = bundle.statement["statement"]["created_at"]
    rig.outbox.directory.mkdir(parents=True, exist_ok=True)
    how = f"hard links of one real {size / 1024:.0f} KiB sealed bundle and its statement"
    with rows.transaction(rig.conn):
        for n in range(count):
            bundle_id = str(uuid.uuid4())
            rows.register_found(rig.conn, bundle_id, f"bench-visit-{n}", sha256, size, created)
            sealed, statement = bundle_paths(rig.outbox.directory, bundle_id)
            try:
                os.link(sealed_source, sealed)
                os.link(statement_source, statement)
            except OSError:
                how = f"sparse files of one real bundle's size ({size / 1024:.0f} KiB) and real statements"
                with sealed.open("wb") as sparse:
                    sparse.truncate(size)
                statement.write_bytes(statement_source.read_bytes())
    return how


def _reconcile(rig: OutboxRig, bundle: SealedBundle, count: int, repeat: int) -> None:
    started = time.perf_counter()
    how = _fill(rig, bundle, count)
    built = time.perf_counter() - started
    reconciling = []
    for _ in range(repeat):
        started = time.perf_counter()
        report = rig.outbox.reconcile(rig.conn)
        reconciling.append(time.perf_counter() - started)
        changed = [name for name, found in report.to_json().items() if found]
        assert not changed, f"the filled outbox was not in step: {changed}"
    listing = []
    for _ in range(repeat):
        started = time.perf_counter()
        names = list(rig.outbox.directory.iterdir())
        listing.append(time.perf_counter() - started)
    assert len(names) == 2 * count
    median = statistics.median
    print(
        f"  start-up reconciliation, {count:,} sealed bundles "
        f"({2 * count:,} files: {how}; built in {built:.1f} s):"
    )
    print(f"    reference, listing the outbox's folder alone: median {median(listing) * 1e3:.1f} ms")
    print(
        f"    reconcile (nothing to mend): median {median(reconciling) * 1e3:.1f} ms, "
        f"{median(reconciling) / count * 1e6:.0f} us a bundle, n={repeat}"
    )
    print(f"    reconcile / listing: {median(reconciling) / median(listing):.1f}x")


def run(smoke: bool) -> None:
    seals = 3 if smoke else 20
    receipts = 100 if smoke else 1000
    bundles = 500 if smoke else 10_000
    import cv2

    cv2.setNumThreads(1)  # as in kitd: no OpenCV worker threads
    sample = sample_captures()
    with tempfile.TemporaryDirectory(prefix="kitd-bench-outbox-") as folder:
        root = Path(folder)
        ops = CountingOps()
        with open_rig(root / "sealing", root / "office", ops=ops) as rig:
            bundle = _sealing(rig, ops, sample, seals)
            _receipts(rig, bundle, receipts)
        with open_rig(root / "full", root / "office") as rig:
            _reconcile(rig, bundle, bundles, 3)
    statement = len(statement_bytes(bundle.statement))
    whole = len(bundle.sealed) + statement
    print(
        f"  one real bundle: {len(bundle.sealed) / 1024:.0f} KiB sealed + {statement / 1024:.1f} KiB "
        f"statement = {whole / 1024:.0f} KiB; the disk reserve assumes FULL_VISIT_BYTES = "
        f"{FULL_VISIT_BYTES / 1024:.0f} KiB a visit ({FULL_VISIT_BYTES / whole:.2f}x the bundle's files)"
    )
