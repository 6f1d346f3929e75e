"""HIL: the real kit-sync notices when the real kitd's audit log was rewritten between two syncs.

A kit with sealed bundles is paired with a laptop, which pulls them (its first checkpoint of
the kit's audit log trusted); the kit records more (orders pushed, another bundle sealed,
a restart) and the next pull finds the log grown and consistent (exit 0, a larger trusted
checkpoint). Then, from that state each time, the kit's database is tampered with while the
kit is stopped — an entry rewritten, an entry deleted, an entry inserted — as an attacker
who wants the kit to keep working would: the entries renumbered and every leaf hash
recomputed as the kit computes it, the checkpoints the kit would compare with deleted, the
append-only triggers put back. The restarted kit signs a checkpoint over the tampered tree;
the laptop's next pull warns naming the kit and exits 5, still pulls a bundle sealed
meanwhile, and ``kit-sync status`` exits 5 naming the kit; every bundle pulled before stays.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from hil.field_laptop import KitSync, network_kit, network_port, outbox_rows, seal_bundles, sealed_file
from hil.outbox_rig import open_rig, sample_captures, seal_injected
from hil.pytest_plugin import RigLogs
from hil.rig import SIMULATION_KIT_ID, KitdProcess
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit
from kitd.store.audit import entry_document, entry_leaf
from kitd.store.database import database_path

EXIT_AUDIT_INCONSISTENT = 5
Entries = list[dict[str, Any]]


@pytest.fixture(scope="module")
def sample() -> SampleVisit:
    return sample_captures()


def copy_database(source: Path, target: Path) -> None:
    """The whole database at ``source`` into ``target`` (SQLite's backup: its WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def rewrite_history(kitd: KitdProcess, change: Callable[[Entries], None]) -> None:
    """The stopped kit's audit entries changed by ``change``, as a careful forger leaves them:
    numbered afresh with each leaf hash recomputed (the kit checks both), the kit's stored
    checkpoints deleted (against them it would refuse to sign the new tree; without them it
    signs it at start), and the append-only triggers put back as they were."""
    db = sqlite3.connect(database_path(kitd.data_dir), isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        triggers = [
            row["sql"]
            for row in db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries'"
            )
        ]
        entries = [
            entry_document(
                r["seq"], r["at"], r["clock_confirmed"], r["actor"], r["action"], json.loads(r["details"])
            )
            for r in db.execute("SELECT * FROM audit_entries ORDER BY seq")
        ]
        change(entries)
        db.execute("BEGIN IMMEDIATE")
        db.execute("DROP TRIGGER audit_entries_no_update")
        db.execute("DROP TRIGGER audit_entries_no_delete")
        db.execute("DELETE FROM audit_entries")
        for seq, entry in enumerate(entries):
            entry = dict(entry, seq=seq)
            db.execute(
                "INSERT INTO audit_entries (seq, at, clock_confirmed, actor, action, details, leaf_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, entry["at"], int(entry["clock_confirmed"]), entry["actor"], entry["action"],
                 rfc8785.dumps(entry["details"]).decode(), entry_leaf(entry)),
            )  # fmt: skip
        db.execute("DELETE FROM audit_checkpoints")
        for sql in triggers:
            db.execute(sql)
        db.execute("COMMIT")
    finally:
        db.close()


def _rewritten(entries: Entries) -> None:
    entries[3]["details"] = {**entries[3]["details"], "note": "rewritten"}


def _deleted(entries: Entries) -> None:
    del entries[4]


def _inserted(entries: Entries) -> None:
    entries.insert(4, dict(entries[3], action="sign_in", details={"role": "supervisor"}))


def start_followed(kitd: KitdProcess, laptop: KitSync) -> None:
    """Start the kit, and point the laptop's record of it at the network port of this start
    (the loopback kit takes any free port each time; a real kit keeps network.port)."""
    kitd.start()
    laptop.point_at(network_port(kitd))


def audit_lines(stderr: str) -> list[str]:
    """What kit-sync said of the kit's audit log (a line each)."""
    return [line for line in stderr.splitlines() if "audit log" in line]


def audit_status(laptop: KitSync) -> tuple[int, dict[str, Any]]:
    done = laptop.run("status", "--json")
    (status,) = json.loads(done.stdout)
    return done.returncode, status


def test_a_laptop_trusts_a_grown_audit_log_and_catches_a_rewritten_one(
    tmp_path: Path, rig_logs: RigLogs, sample: SampleVisit
) -> None:
    kitd = network_kit(tmp_path / "kit")
    seal_bundles(kitd.workdir, sample, 2)
    rig_logs.add("kitd", kitd.logs)
    laptop = KitSync(tmp_path / "laptop")
    out = tmp_path / "bundles"
    kitd.start()
    try:
        laptop.pair(kitd, "lap-audit")
        first = laptop.run("pull", out)
        assert first.returncode == 0 and audit_lines(first.stderr) == [], first.stderr
        code, status = audit_status(laptop)
        assert code == 0 and status["audit"]["state"] == "consistent", status["audit"]
        first_size = status["audit"]["size"]

        # More on the kit: orders pushed, another bundle sealed, a restart. Consistent, grown.
        orders = tmp_path / "orders.json"
        orders.write_text(json.dumps([sample_order("AUD-101")]))
        pushed = laptop.run("push-orders", orders)
        assert pushed.returncode == 0 and audit_lines(pushed.stderr) == [], pushed.stderr
        kitd.stop()
        with open_rig(kitd.data_dir, kitd.office_dir) as rig:
            seal_injected(rig, sample, "W-000")
        start_followed(kitd, laptop)
        grown = laptop.run("pull", out)
        assert grown.returncode == 0 and audit_lines(grown.stderr) == [], grown.stderr
        assert "1 pulled" in grown.stdout
        code, status = audit_status(laptop)
        assert code == 0 and status["audit"]["state"] == "consistent", status["audit"]
        assert status["audit"]["size"] > first_size and status["audit"]["inconsistencies"] == 0
        trusted_size = status["audit"]["size"]
        held = {p.name: p.read_bytes() for p in out.glob("*.p7m")}
        assert len(held) == 3 and status["ledger"]["acknowledged"] == 3
    finally:
        kitd.stop()

    # The state every tampering starts from: the kit's database and the laptop's data.
    pristine_db, pristine_laptop = tmp_path / "pristine.sqlite3", tmp_path / "pristine-laptop"
    copy_database(database_path(kitd.data_dir), pristine_db)
    shutil.copytree(laptop.home, pristine_laptop)
    for tamper in (_rewritten, _deleted, _inserted):
        copy_database(pristine_db, database_path(kitd.data_dir))
        shutil.rmtree(laptop.home)
        shutil.copytree(pristine_laptop, laptop.home)
        sealed_meanwhile = None
        if tamper is _inserted:  # and a bundle sealed since: the laptop still takes it
            with open_rig(kitd.data_dir, kitd.office_dir) as rig:
                sealed_meanwhile = seal_injected(rig, sample, "W-001")["bundle"]["id"]
        rewrite_history(kitd, tamper)
        start_followed(kitd, laptop)
        try:
            pulled = laptop.run("pull", out)
            what = tamper.__name__
            assert pulled.returncode == EXIT_AUDIT_INCONSISTENT, (what, pulled.stdout, pulled.stderr)
            (warning,) = audit_lines(pulled.stderr)
            assert warning.startswith(
                f"kit-sync pull: WARNING: kit {SIMULATION_KIT_ID}'s audit log is INCONSISTENT: "
            ), (what, warning)
            assert f"the last trusted checkpoint ({trusted_size} entries) is kept" in warning, warning
            print(f"{what}: {warning}")  # what the laptop saw of each (pytest -s)
            shown = laptop.run("status")
            assert shown.returncode == EXIT_AUDIT_INCONSISTENT, (what, shown.stdout, shown.stderr)
            assert f"kit {SIMULATION_KIT_ID} at " in shown.stdout, shown.stdout
            (line,) = [line for line in shown.stdout.splitlines() if "audit log: " in line]
            assert line.startswith("  audit log: INCONSISTENT: "), (what, line)
            assert f"last trusted checkpoint: {trusted_size} entries" in line, (what, line)
            assert f"kit {SIMULATION_KIT_ID}'s audit log is INCONSISTENT" in shown.stderr
            for name, data in held.items():  # every bundle pulled before stays, whole
                assert (out / name).read_bytes() == data, (what, name)
            pulled_now = 0 if sealed_meanwhile is None else 1
            assert f"{pulled_now} pulled" in pulled.stdout, pulled.stdout
            assert f"ledger: {3 + pulled_now} bundles pulled: {3 + pulled_now} acknowledged" in shown.stdout
            if sealed_meanwhile is not None:
                assert (out / f"{sealed_meanwhile}.p7m").read_bytes() == sealed_file(kitd, sealed_meanwhile)
                assert outbox_rows(kitd)[sealed_meanwhile]["state"] == "acknowledged"
        finally:
            kitd.stop()
