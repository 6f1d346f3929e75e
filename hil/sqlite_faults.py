"""The kit's database failing under the outbox: the Nth pwrite or fsync SQLite makes fails
with EIO or ENOSPC during a store() or a take_receipts(), for every N the operation has.

Its one job: :func:`prepare` (in the test's process) makes a kit with a finished visit to
store and a stored bundle with its laptop's and the office's receipts; :func:`start_faults`
runs, in a child process with hil/sqlite_io_shim.so preloaded, first each operation once
to count its calls, then every case on a fresh copy of that kit: the fault armed, the
operation's outcome (returned, or the error it raised), a copy of the disk as the failure
left it (the page cache kept, as after a kill -9; SQLite's -shm left out), a trace of the
case's writes (hil.io_trace, so that hil.power_cut can rebuild the disk a power cut right
after the failure leaves: what a failed fsync did not make durable may be gone) and a retry
in the same process. The test then opens each disk in its own process as the kit's
start-up would (hil.outbox_invariants) and retries there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.io_trace import IoTrace, RecordingFileOps, shim_environment
from hil.outbox_rig import (
    central_signer,
    laptop_signer,
    open_rig,
    receipt,
    sample_captures,
    seal_injected,
    seal_new_visit,
)
from hil.power_cut import copy_disk
from kitd.crypto.bundle import SealedBundle
from kitd.services.outbox import OutboxError

OPERATIONS = ("store", "take_receipts")
FAULTS = ("pwrite", "fsync")
ERRORS = {"EIO": errno.EIO, "ENOSPC": errno.ENOSPC}
# Low, so that the operations' commits also start checkpoints (the database file written
# and fsynced from the WAL) and those calls fail too.
AUTOCHECKPOINT_PAGES = 4


@dataclass
class Plan:
    """What every case starts from (pickled for the child)."""

    visit_id: str
    bundle: SealedBundle  # of the visit to store
    finished: dict[str, Any]  # its finished record
    stored_id: str  # the bundle the receipts are for
    stored_visit: str
    receipts: list[dict[str, Any]]


def prepare(work: Path) -> Plan:
    """A kit in ``work/base`` (its office in ``work/office``) and the plan of the cases."""
    work = Path(work).resolve()
    with open_rig(work / "base", work / "office") as rig:
        sample = sample_captures()
        now = dt.datetime.now(dt.UTC)
        stored = seal_injected(rig, sample, "receipts-visit", now)
        laptop, central = laptop_signer(rig, "laptop-1"), central_signer(rig)
        row = rig.outbox.bundle(rig.conn, stored["bundle"]["id"])
        receipts = [
            receipt(laptop, "laptop_receipt", row, "laptop-1", now),
            receipt(central, "central_receipt", row, "central", now),
        ]
        bundle, finished = seal_new_visit(rig, sample, "fault-visit", now)
    plan = Plan(finished["id"], bundle, finished, row["bundle_id"], stored["id"], receipts)
    (work / "plan.pickle").write_bytes(pickle.dumps(plan))
    return plan


def operate(rig: Any, plan: Plan, operation: str) -> Any:
    """The operation under test, on ``rig``, as the kit calls it."""
    now = dt.datetime.now(dt.UTC)
    if operation == "store":
        return rig.outbox.store(rig.conn, plan.bundle, plan.finished, now)
    return rig.outbox.take_receipts(rig.conn, plan.receipts, now)


def _attempt(rig: Any, plan: Plan, operation: str) -> dict[str, Any]:
    try:
        returned = operate(rig, plan, operation)
    except OutboxError as exc:
        return {"outcome": "OutboxError", "message": str(exc)}
    except Exception as exc:  # any other error: the test names it
        return {"outcome": type(exc).__name__, "message": str(exc)}
    return {"outcome": "returned", "results": returned if operation == "take_receipts" else None}


def _run(work: Path) -> None:
    """The child: count, then every case; results to work/cases.json."""
    plan: Plan = pickle.loads((work / "plan.pickle").read_bytes())
    trace = IoTrace()
    office = work / "office"
    counts: dict[str, dict[str, int]] = {}
    for operation in OPERATIONS:
        data_dir = work / "count" / operation
        copy_disk(work / "base", data_dir)
        rig = open_rig(data_dir, office)
        rig.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        trace.arm("pwrite", 0, 0)
        operate(rig, plan, operation)
        counts[operation] = {fault: trace.count(fault) for fault in FAULTS}
        rig.close()
    cases = []
    for operation in OPERATIONS:
        for fault in FAULTS:
            for error_name, error in ERRORS.items():
                for nth in range(1, counts[operation][fault] + 1):
                    name = f"{operation}-{fault}-{error_name}-{nth}"
                    case = work / "cases" / name
                    copy_disk(work / "base", case / "data")
                    # The rebuilt disks start from base/ as durable (the model's clean boot);
                    # no os.sync() is needed for that: no real power is cut.
                    trace.start(case / "trace")
                    rig = open_rig(case / "data", office, ops=RecordingFileOps(trace.file_op))
                    rig.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
                    trace.arm(fault, nth, error)
                    first = _attempt(rig, plan, operation)
                    fired = trace.count(fault) >= nth
                    trace.disarm()
                    trace.stop()
                    copy_disk(case / "data", case / "after-failure")
                    retry = _attempt(rig, plan, operation) if first["outcome"] != "returned" else None
                    rig.close()
                    cases.append(
                        dict(
                            name=name,
                            operation=operation,
                            fault=fault,
                            error=error_name,
                            nth=nth,
                            fired=fired,
                            first=first,
                            retry=retry,
                        )
                    )
    (work / "cases.json").write_text(json.dumps({"counts": counts, "cases": cases}, indent=1))


def start_faults(shim: Path, work: Path) -> subprocess.Popen:
    """Run every case of the plan prepared in ``work`` in a child process under the shim."""
    work = Path(work).resolve()
    return subprocess.Popen(
        [sys.executable, "-m", "hil.sqlite_faults", str(work)],
        env=shim_environment(shim, work),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished_cases(child: subprocess.Popen, work: Path, timeout_s: float = 300.0) -> dict[str, Any]:
    """The counts and the cases' results, once the child has ended."""
    out, err = child.communicate(timeout=timeout_s)
    if child.returncode != 0:
        raise RuntimeError(f"the fault run failed ({child.returncode}):\n{out}\n{err}")
    return json.loads((Path(work).resolve() / "cases.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="the database's I/O-fault cases (run under the shim)")
    parser.add_argument("work", type=Path)
    _run(parser.parse_args().work.resolve())


if __name__ == "__main__":
    main()
