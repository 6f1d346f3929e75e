"""What must hold of an outbox after whatever stopped the kit, checked with the real code.

Its one job: :func:`check_outbox` opens a kit's data_dir as the kit does at start-up
(hil.outbox_rig.open_rig, then Outbox.reconcile) and lists every invariant that fails — the
database is whole; every bundle whose store() had returned is there, in a state at least as
far as every operation that had returned put it, its files whole and opening at the office;
no temporary file is left; every sealed file has exactly one row and every kept row its
files; no visit has two bundles; nothing the office has not had is erased; a sealed visit
is saved finished with its order closed; and a second start-up finds nothing more to do.
:class:`Expected` says what the run had been told before it stopped. For the power-cut
harness (hil/power_cut.py) and the database's I/O-fault tests (hil/sqlite_faults.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from kitformats.bundle_statements import SEALED_SUFFIX, STATEMENT_SUFFIX, BundleRejected, check_statement
from kitformats.signing import read_certificate

from hil.outbox_rig import open_rig
from kitd.crypto.bundle import bundle_paths, open_bundle
from kitd.durable_files import is_temporary
from kitd.store import outbox as rows
from kitd.store.database import DatabaseError
from kitd.store.visits import load_visit

# How far along a bundle is; an operation that returned may be overtaken, never undone.
RANK = {state: index for index, state in enumerate(rows.STATES)}


@dataclass
class Expected:
    """What the run's calls had returned when it stopped."""

    stored: dict[str, str] = field(default_factory=dict)  # bundle id -> visit id
    reached: dict[str, str] = field(default_factory=dict)  # bundle id -> furthest state returned
    erased: set[str] = field(default_factory=set)

    def reach(self, bundle_id: str, state: str) -> None:
        if RANK[state] > RANK.get(self.reached.get(bundle_id, "sealing"), 0):
            self.reached[bundle_id] = state

    def copy(self) -> Expected:
        return Expected(dict(self.stored), dict(self.reached), set(self.erased))

    def key(self) -> tuple[Any, ...]:
        return (
            tuple(sorted(self.stored.items())),
            tuple(sorted(self.reached.items())),
            tuple(sorted(self.erased)),
        )


class OfficeCheck:
    """The central office's check of a sealed file and its statement (each content once)."""

    def __init__(self, office_dir: Path, ca_certificate: Path) -> None:
        self.office_dir = office_dir
        self.key = serialization.load_pem_private_key((office_dir / "central.key").read_bytes(), None)
        self.trust = [read_certificate(ca_certificate)]
        self._seen: dict[str, str | None] = {}

    def problem(self, sealed: bytes, statement: bytes) -> str | None:
        """Why the office would refuse this bundle, or None."""
        digest = hashlib.sha256(sealed + b"\0" + statement).hexdigest()
        if digest not in self._seen:
            try:
                open_bundle(sealed, self.key, self.trust)  # type: ignore[arg-type]
                check_statement(json.loads(statement), sealed, self.trust)
                self._seen[digest] = None
            except (BundleRejected, ValueError) as exc:
                self._seen[digest] = str(exc)
        return self._seen[digest]


def check_outbox(data_dir: Path, office_dir: Path, expected: Expected, office: OfficeCheck) -> list[str]:
    """Start the outbox in ``data_dir`` as the kit does and return every invariant that fails."""
    try:
        rig = open_rig(data_dir, office_dir)
    except DatabaseError as exc:
        return [f"the database does not open: {exc}"]
    try:
        return _problems(rig, expected, office)
    except Exception as exc:  # start-up failing is a finding like any other, with its state
        return [f"start-up raised {type(exc).__name__}: {exc}"]
    finally:
        rig.close()


def _problems(rig: Any, expected: Expected, office: OfficeCheck) -> list[str]:
    conn, outbox = rig.conn, rig.outbox
    problems: list[str] = []
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if integrity != ["ok"]:
        return [f"integrity_check: {integrity[:3]}"]
    report = outbox.reconcile(conn)
    for name in ("quarantined", "registered", "missing", "damaged"):
        # registered: a sealed file whose row the database lost (its INSERT was committed
        # before the file was written); the others: files the outbox had called whole.
        if getattr(report, name):
            problems.append(f"start-up {name} {getattr(report, name)}")
    found = {r["bundle_id"]: r for r in rows.bundle_rows(conn)}
    for bundle_id, visit_id in expected.stored.items():
        row = found.get(bundle_id)
        if row is None:
            problems.append(f"bundle {bundle_id} was stored, and has no row")
            continue
        if row["visit_id"] != visit_id:
            problems.append(f"bundle {bundle_id} names visit {row['visit_id']}, not {visit_id}")
        want = expected.reached.get(bundle_id, "sealed")
        if RANK[row["state"]] < RANK[want]:
            problems.append(f"bundle {bundle_id} is {row['state']}, after it was reported {want}")
    for bundle_id in expected.erased:
        if bundle_id in found and found[bundle_id]["state"] != "erased":
            problems.append(f"bundle {bundle_id} was reported erased, and is {found[bundle_id]['state']}")
    per_visit: dict[str, list[str]] = {}
    for bundle_id, row in found.items():
        problems += _row_problems(rig, row, office)
        if row["state"] != "erased" and row["visit_id"] is not None:
            per_visit.setdefault(row["visit_id"], []).append(bundle_id)
    problems += [f"visit {v} has bundles {ids}" for v, ids in per_visit.items() if len(ids) > 1]
    problems += _file_problems(outbox.directory, found)
    for visit in conn.execute("SELECT id FROM visits WHERE state = 'finished'").fetchall():
        if visit["id"] not in per_visit and not any(
            r["visit_id"] == visit["id"] and r["state"] == "erased" for r in found.values()
        ):
            problems.append(f"visit {visit['id']} is saved finished, and has no bundle")
    again = {name: value for name, value in outbox.reconcile(conn).to_json().items() if value}
    if again:
        problems.append(f"a second start-up still changed {again}")
    return problems


def _row_problems(rig: Any, row: dict[str, Any], office: OfficeCheck) -> list[str]:
    bundle_id, state = row["bundle_id"], row["state"]
    sealed, statement = bundle_paths(rig.outbox.directory, bundle_id)
    if state == "sealing":
        return [f"bundle {bundle_id} is still 'sealing' after start-up"]
    if state == "erased":
        problems = [
            f"erased bundle {bundle_id} still has {p.name}" for p in (sealed, statement) if p.exists()
        ]
        if row["delivered_at"] is None or row["central_receipt"] is None:
            problems.append(f"bundle {bundle_id} was erased without the office's receipt")
        return problems
    problems = []
    if row["problem"] is not None:
        problems.append(f"bundle {bundle_id} ({state}) has problem {row['problem']}")
    try:
        data, document = sealed.read_bytes(), statement.read_bytes()
    except FileNotFoundError as exc:
        return problems + [f"bundle {bundle_id} ({state}) lacks {Path(exc.filename).name}"]
    if len(data) != row["size"] or hashlib.sha256(data).hexdigest() != row["sha256"]:
        problems.append(
            f"bundle {bundle_id} ({state}): its file is not the one registered ({len(data)} bytes)"
        )
    elif (why := office.problem(data, document)) is not None:
        problems.append(f"bundle {bundle_id} ({state}) is refused at the office: {why}")
    if row["visit_id"] is not None:
        visit = load_visit(rig.conn, row["visit_id"])
        if visit is None or visit["state"] != "finished" or visit.get("bundle", {}).get("id") != bundle_id:
            problems.append(f"bundle {bundle_id} ({state}): its visit is not saved finished with it")
        order = rig.conn.execute(
            "SELECT status FROM work_orders WHERE order_id = ?", ((visit or {}).get("order_id"),)
        ).fetchone()
        if order is None or order["status"] != "done":
            problems.append(f"bundle {bundle_id} ({state}): its order is not closed")
    return problems


def _file_problems(directory: Path, found: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    if not directory.is_dir():
        return [] if not any(r["state"] in rows.KEPT for r in found.values()) else ["the outbox is gone"]
    for path in sorted(directory.rglob("*")):
        if path.is_dir():
            if any(path.iterdir()):
                problems.append(f"{path.relative_to(directory)}/ holds files after start-up")
            continue
        name = path.name
        if is_temporary(path):
            problems.append(f"temporary file {name} left after start-up")
        elif name.endswith(STATEMENT_SUFFIX):
            if not path.with_name(name[: -len(STATEMENT_SUFFIX)] + SEALED_SUFFIX).exists():
                problems.append(f"statement {name} without its sealed file")
        elif name.endswith(SEALED_SUFFIX):
            row = found.get(name[: -len(SEALED_SUFFIX)])
            if row is None or row["state"] not in rows.KEPT:
                problems.append(f"sealed file {name} without a kept row")
        else:
            problems.append(f"stray file {name} in the outbox")
    return problems
