"""The kit's database failing under the outbox: EIO and ENOSPC at every pwrite and fsync.

hil/sqlite_faults.py runs, in a child process with hil/sqlite_io_shim.c preloaded (SQLite's
own calls, which no FileOps sees), a store() and a take_receipts() once to count their
pwrites and fsyncs of the database's files (checkpoints included: the autocheckpoint is
low), then each again on a fresh copy of the same kit with the Nth such call failing with
EIO, then ENOSPC, for every N. Each failure must be an OutboxError saying which bundle and
what the disk said (or the operation returns: a failed checkpoint after a commit is not the
commit's), a retry in the same process must succeed, and the disk as the failure left it,
started in another process as the kit starts, must hold the outbox's invariants and take
the retry — both with the page cache kept (a kill -9 after the failure) and without what
was not fsynced (a power cut after it, rebuilt by hil.power_cut from the case's trace: a
failed fsync may have made nothing durable). (The outbox's own files failing is
tests/test_outbox_file_faults.py.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.io_trace import COMPILER, build_shim, read_trace, shim_environment
from hil.outbox_invariants import Expected, OfficeCheck, check_outbox
from hil.outbox_rig import open_rig
from hil.power_cut import Recording, copy_disk, disk_after, scratch_place, write_disk
from hil.sqlite_faults import ERRORS, FAULTS, OPERATIONS, Plan, finished_cases, operate, prepare, start_faults
from kitd.store import outbox as rows

pytestmark = pytest.mark.skipif(COMPILER is None, reason="needs a C compiler (cc) for the LD_PRELOAD shim")

# What SQLite says for each (sqlite3's message, which the OutboxError carries); a failed
# fsync is "disk I/O error" whatever its errno.
SAID = {("pwrite", "EIO"): "disk I/O error", ("pwrite", "ENOSPC"): "database or disk is full"}


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("shim"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the cases run and their disks are checked (a RAM disk when there is one)."""
    with scratch_place(tmp_path_factory.mktemp("sqlite-faults")) as place:
        yield place


@pytest.fixture(scope="module")
def run(scratch: Path, shim: Path) -> tuple[Path, Plan, dict[str, Any]]:
    work = (scratch / "run").resolve()
    plan = prepare(work)
    return work, plan, finished_cases(start_faults(shim, work), work)


@pytest.fixture(scope="module")
def office(run) -> OfficeCheck:
    work, _, _ = run
    return OfficeCheck(work / "office", work / "base" / "keys" / "ca.crt")


def expected(plan: Plan, operation: str, succeeded: bool) -> Expected:
    """What the kit had been told: the receipts' bundle was stored before any case; a store
    that returned stored its bundle; receipts that returned delivered theirs."""
    told = Expected()
    told.stored[plan.stored_id] = plan.stored_visit
    told.reach(plan.stored_id, "sealed")
    if succeeded and operation == "store":
        told.stored[plan.bundle.bundle_id] = plan.visit_id
        told.reach(plan.bundle.bundle_id, "sealed")
    if succeeded and operation == "take_receipts":
        told.reach(plan.stored_id, "delivered")
    return told


def test_the_shim_fails_a_database_write_named_in_its_environment(tmp_path: Path, shim: Path) -> None:
    """KITD_IO_FAULT arms a fault from the start, for any program on the kit's database."""
    script = (
        "import sqlite3, sys\ntry:\n    c = sqlite3.connect(sys.argv[1])\n"
        "    c.execute('CREATE TABLE t (x)')\n"
        "except sqlite3.Error as e:\n    print(e)"
    )
    for fault, said in (("pwrite:1:ENOSPC", "database or disk is full"), ("fsync:1:EIO", "disk I/O error")):
        database = tmp_path / fault.replace(":", "-") / "kitd.sqlite3"
        database.parent.mkdir()
        env = dict(shim_environment(shim, tmp_path), KITD_IO_FAULT=fault)
        out = subprocess.run(
            [sys.executable, "-c", script, str(database)], env=env, capture_output=True, text=True
        )
        assert out.stdout.strip() == said, (fault, out)


def test_every_pwrite_and_fsync_of_both_operations_was_failed(run) -> None:
    _, _, results = run
    counts, cases = results["counts"], results["cases"]
    print(f"database faults: {counts}, {len(cases)} cases")
    # A store is two commits (registration, then sealed + visit + order), each WAL frames and
    # an fsync, and checkpoints; each receipt is one commit.
    assert counts["store"]["pwrite"] >= 10 and counts["store"]["fsync"] >= 2
    assert counts["take_receipts"]["pwrite"] >= 4 and counts["take_receipts"]["fsync"] >= 2
    assert len(cases) == sum(2 * counts[op][fault] for op in OPERATIONS for fault in FAULTS)
    assert [c["name"] for c in cases if not c["fired"]] == []
    for operation in OPERATIONS:
        for fault in FAULTS:
            for error in ERRORS:
                failed = [
                    c
                    for c in cases
                    if (c["operation"], c["fault"], c["error"]) == (operation, fault, error)
                    and c["first"]["outcome"] != "returned"
                ]
                assert failed, f"no {fault} failing with {error} made {operation} fail"


def test_each_failure_is_an_outbox_error_naming_the_bundle_and_the_disk(run) -> None:
    _, plan, results = run
    for case in results["cases"]:
        first = case["first"]
        if first["outcome"] == "returned":
            continue
        assert first["outcome"] == "OutboxError", case
        bundle = plan.bundle.bundle_id if case["operation"] == "store" else plan.stored_id
        assert bundle in first["message"], case
        assert SAID.get((case["fault"], case["error"]), "disk I/O error") in first["message"], case


def test_a_retry_in_the_same_process_succeeds(run) -> None:
    _, _, results = run
    for case in results["cases"]:
        if case["first"]["outcome"] == "returned":
            assert case["retry"] is None
            continue
        assert case["retry"]["outcome"] == "returned", case
        if case["operation"] == "take_receipts":
            assert {r["result"] for r in case["retry"]["results"]} <= {"accepted", "duplicate"}, case


def test_the_retried_disk_holds_the_invariants(run, office: OfficeCheck) -> None:
    work, plan, results = run
    problems = {}
    for case in results["cases"]:
        found = check_outbox(
            work / "cases" / case["name"] / "data",
            work / "office",
            expected(plan, case["operation"], True),
            office,
        )
        if found:
            problems[case["name"]] = found
    assert problems == {}


def restart_and_retry(
    disk: Path, case: dict[str, Any], plan: Plan, office: OfficeCheck
) -> tuple[list[str], bool]:
    """Start ``disk`` as the kit starts and check it; retry the case's operation unless its
    visit is sealed already; check again. The problems, and whether it was sealed already."""
    operation, succeeded = case["operation"], case["first"]["outcome"] == "returned"
    found = check_outbox(disk, office.office_dir, expected(plan, operation, succeeded), office)
    rig = open_rig(disk, office.office_dir)
    try:
        row = rows.bundle_row(rig.conn, plan.bundle.bundle_id)
        sealed_already = operation == "store" and row is not None
        if sealed_already:
            # Start-up completed a sealing whose files were whole, or the failed commit had
            # reached the WAL before its fsync failed: the kit restarts with the visit
            # sealed and finished, and does not finish it again.
            assert row["state"] == "sealed", case
        else:
            returned = operate(rig, plan, operation)
            if operation == "take_receipts":
                assert {r["result"] for r in returned} <= {"accepted", "duplicate"}, (case, returned)
        row = rows.bundle_row(rig.conn, plan.bundle.bundle_id if operation == "store" else plan.stored_id)
        assert row["state"] == ("sealed" if operation == "store" else "delivered"), case
    finally:
        rig.close()
    found += check_outbox(disk, office.office_dir, expected(plan, operation, True), office)
    return found, sealed_already


def test_after_a_restart_the_invariants_hold_and_a_retry_succeeds(
    run, office: OfficeCheck, scratch: Path
) -> None:
    """The disk as the failure left it (the page cache kept), started in this process as the
    kit starts: the invariants hold (what the kit had been told survives; whatever the failed
    call left half done is finished or forgotten), and the operation, retried, succeeds."""
    work, plan, results = run
    problems: dict[str, list[str]] = {}
    sealed_at_start = 0
    for case in results["cases"]:
        disk = scratch / "restarted" / case["name"]
        copy_disk(work / "cases" / case["name"] / "after-failure", disk)
        found, sealed_already = restart_and_retry(disk, case, plan, office)
        sealed_at_start += sealed_already and case["first"]["outcome"] != "returned"
        if found:
            problems[case["name"]] = found
        else:
            shutil.rmtree(disk)
    print(f"{sealed_at_start} failed stores were sealed after the restart, not retried")
    assert problems == {}


def test_after_a_power_cut_right_after_the_failure_too(run, office: OfficeCheck, scratch: Path) -> None:
    """A failed fsync may have made nothing durable: the disk a power cut right after the
    failure leaves (every write since the last successful fsync gone, rebuilt from the
    case's trace by hil.power_cut) holds the invariants and takes the retry too."""
    work, plan, results = run
    problems: dict[str, list[str]] = {}
    for case in results["cases"]:
        directory = work / "cases" / case["name"]
        run_of_case = Recording(
            directory / "data", work / "base", work / "office", read_trace(directory / "trace")
        )
        assert any(r.op == "fault" for r in run_of_case.records), case
        rebuilt = disk_after(run_of_case, keep_unsynced=False)
        disk = write_disk(rebuilt, scratch / "power-cut" / case["name"], scratch / "power-cut" / "contents")
        found, _ = restart_and_retry(disk, case, plan, office)
        if found:
            problems[case["name"]] = found
        else:
            shutil.rmtree(disk)
    assert problems == {}
