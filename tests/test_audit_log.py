"""The audit log on a real SQLite database and real files, checked by the real kitctl.

Its one job: the acceptance tests of issue 25 that need no daemon. Entries commit and roll
back with the change they record; NIKs are masked and nothing else is; the table refuses
UPDATE and DELETE. Then every way someone holding the kit's SD card could rewrite history
(raw sqlite3, the triggers dropped: rewriting an entry with or without its stored leaf
hash, deleting, inserting, reordering, truncating) is caught by ``kitctl audit verify``,
naming the first bad entry or checkpoint, and by ``kitctl audit prove --old`` against a
checkpoint saved before; a checkpoint signed by another key is refused by both. The logs
are made by the kit's own code (hil.outbox_rig's sealed visits, OfficerRoll's sign-ins).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from argon2 import PasswordHasher
from kitformats.audit.checkpoint import Checkpoint, sign_checkpoint
from kitformats.audit.merkle import tree_hash
from kitformats.audit.note import generate_signer_key, parse_signer_key

from hil.outbox_rig import OFFICER, laptop_signer, open_rig, sample_captures, seal_injected
from hil.rig import SIMULATION_KIT_ID, add_simulation_officers, render_config, simulation_officer, venv_script
from hil.sample_orders import sample_order
from kitd.cli.audit import _since, since_utc
from kitd.services.audit import AuditLog, AuditProblem, audit_origin
from kitd.services.visit_machine import Visit
from kitd.services.visits import visit_facts
from kitd.store import audit as store
from kitd.store.audit import SYSTEM, AuditEntry, append_entry, entry_document, entry_leaf, mask_niks
from kitd.store.database import database_path, open_database, transaction
from kitd.store.officers import OfficerRoll, UnknownOfficer, WrongPin
from kitd.store.visits import load_visit, save_visit
from kitd.store.work_orders import import_orders

NIK = "3576014703480001"
MASKED_NIK = "357601********01"
NIP = simulation_officer("supervisor")["nip"]  # 18 digits: not a NIK
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
# The log the tampering tests start from, action by action (built by the kit's own code).
LOG = [
    "officer_added",  # 0-2: the simulation's officers
    "officer_added",
    "officer_added",
    "sign_in",  # 3
    "orders_imported",  # 4
    "visit_finished",  # 5 -- the first checkpoint: 6 entries
    "sign_in",  # 6
    "sign_in_refused",  # 7
    "laptop_trusted",  # 8
    "orders_imported",  # 9
    "visit_finished",  # 10 -- the latest checkpoint: 11 entries
    "sign_in",  # 11
    "orders_imported",  # 12 -- not under a checkpoint yet
]


def _open_logged(path: Path) -> sqlite3.Connection:
    return open_database(database_path(path))


# --- entries in their transactions, masking, the triggers -------------------------------------


def test_an_entry_commits_and_rolls_back_with_the_change_it_records(tmp_path: Path) -> None:
    conn = _open_logged(tmp_path)
    import_orders(conn, [sample_order("TX-1")])
    size = store.log_size(conn)
    visit = Visit.start("visit-tx-1", "TX-1", OFFICER, "lansia")
    entry = AuditEntry(OFFICER, "visit_started", visit_facts(visit))
    other = sqlite3.connect(database_path(tmp_path))
    with pytest.raises(RuntimeError, match="after its entry"):
        with transaction(conn):
            save_visit(conn, visit.to_json(), entry)
            assert store.log_size(conn) == size + 1  # written, in the open transaction
            # Nobody else sees it before the transaction commits.
            assert other.execute("SELECT count(*) FROM audit_entries").fetchone()[0] == size
            raise RuntimeError("the visit's change failed after its entry")
    assert store.log_size(conn) == size and load_visit(conn, visit.id) is None
    with transaction(conn):
        save_visit(conn, visit.to_json(), entry)
    assert store.log_size(conn) == size + 1 and load_visit(conn, visit.id) is not None
    assert other.execute("SELECT action, actor FROM audit_entries WHERE seq = ?", (size,)).fetchone() == (
        "visit_started",
        OFFICER,
    )
    # Details canonical JSON cannot hold (an object, 1e400 from a client) are kept as text:
    # the action is recorded, never failed by its entry.
    append_entry(conn, SYSTEM, "odd", {"what": object(), "huge": float("inf")})
    assert list(store.entries(conn, size + 1, 1)[0]["details"]) == ["unencodable"]
    assert not conn.in_transaction and store.log_size(conn) == size + 2
    assert AuditLog(tmp_path / "keys", "kit-test").verify(conn).ok
    other.close()
    conn.close()


def test_niks_are_masked_and_nips_and_digests_are_not(tmp_path: Path) -> None:
    conn = _open_logged(tmp_path)
    roll = OfficerRoll(conn, hasher=CHEAP_HASHER)
    roll.add(NIP, "Siti Aminah", "supervisor", "111111")
    with pytest.raises(UnknownOfficer):
        roll.check_pin(NIK, "111111")  # someone types a NIK into the NIP field
    with pytest.raises(WrongPin):
        roll.check_pin(NIP, "999999")
    # A hex digest may hold a 16-digit run (one SHA-256 in 250): it is not a NIK.
    digest = "ab" + NIK + "cd" * 23
    append_entry(
        conn,
        SYSTEM,
        "masking_checked",
        {
            "note": f"NIK {NIK}, NIP {NIP}, telp 081234567890",
            NIK: [NIK, f"kk:{NIK}x"],
            "sha256": digest,
            "seventeen": "12345678901234567",
        },
    )
    refused, wrong, checked = store.entries(conn, 1, 3)
    assert refused["action"] == "sign_in_refused" and refused["details"] == {
        "nip": MASKED_NIK,
        "reason": "unknown_nip",
    }
    assert wrong["actor"] == NIP and wrong["details"]["reason"] == "wrong_pin"
    assert checked["details"] == {
        "note": f"NIK {MASKED_NIK}, NIP {NIP}, telp 081234567890",
        MASKED_NIK: [MASKED_NIK, f"kk:{MASKED_NIK}x"],
        "sha256": digest,
        "seventeen": "12345678901234567",
    }
    assert mask_niks(("x", 1, None)) == ["x", 1, None]
    # The leaf is the masked entry's, and nowhere on disk is the whole NIK.
    assert AuditLog(tmp_path / "keys", "kit-test").verify(conn).ok
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in tmp_path.glob("kitd.sqlite3*"):
        assert NIK.encode() not in path.read_bytes().replace(digest.encode(), b""), path
    conn.close()


def test_the_table_refuses_update_and_delete(tmp_path: Path) -> None:
    conn = _open_logged(tmp_path)
    for n in range(3):
        append_entry(conn, SYSTEM, "filler", {"n": n})
    raw = sqlite3.connect(database_path(tmp_path), isolation_level=None)
    for db in (conn, raw):  # the kit's own connection, and plain sqlite3 with the triggers on
        for statement in (
            "UPDATE audit_entries SET details = '{}' WHERE seq = 1",
            "UPDATE audit_entries SET leaf_hash = zeroblob(32)",
            "UPDATE audit_entries SET seq = 7 WHERE seq = 2",
            "DELETE FROM audit_entries WHERE seq = 2",
            "DELETE FROM audit_entries",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="the audit log is append-only"):
                db.execute(statement)
    assert [e["details"] for e in store.entries(conn, 0, 10)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    raw.close()
    conn.close()


# --- a log made by the kit's own code, and kitctl -----------------------------------------------


@dataclass
class KitOnDisk:
    """A copy of the built log's data_dir, its kitd config, and the checkpoints a laptop saved."""

    data_dir: Path
    config: Path
    first: Path  # the checkpoint of 6 entries
    latest: Path  # the checkpoint of 11 entries

    def kitctl(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """The real kitctl, each command in its own process, all at once (each takes ~2 s to start)."""

        def one(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [venv_script("kitctl"), *args, "--config", str(self.config)],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        with ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(one, commands))

    def verify_and_prove(
        self, old: Path
    ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        """``kitctl audit verify`` and ``kitctl audit prove --old OLD``, side by side."""
        verified, proved = self.kitctl(("audit", "verify"), ("audit", "prove", "--old", str(old)))
        return verified, proved


@pytest.fixture(scope="module")
def built_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of :data:`LOG`, made once: the simulation's officers added, sign-ins (one
    refused), two visits sealed into the outbox with their orders, a laptop trusted; signed
    checkpoints at 6 and 11 entries, saved to files as a laptop keeps them."""
    root = tmp_path_factory.mktemp("audit-log")
    data_dir = root / "data"
    sample = sample_captures()
    rig = open_rig(data_dir, root / "office")
    try:
        add_simulation_officers(data_dir)
        roll = OfficerRoll(rig.conn, hasher=CHEAP_HASHER)
        audit = AuditLog(data_dir / "keys", SIMULATION_KIT_ID)
        officer, supervisor = simulation_officer("officer"), simulation_officer("supervisor")
        roll.check_pin(officer["nip"], officer["pin"])
        seal_injected(rig, sample, "AUD-001")
        (root / "first.checkpoint").write_text(audit.checkpoint(rig.conn)["note"])
        roll.check_pin(supervisor["nip"], supervisor["pin"])
        with pytest.raises(WrongPin):
            roll.check_pin(officer["nip"], "000000")
        laptop_signer(rig, "lap-1")
        seal_injected(rig, sample, "AUD-002")
        (root / "latest.checkpoint").write_text(audit.checkpoint(rig.conn)["note"])
        technician = simulation_officer("technician")
        roll.check_pin(technician["nip"], technician["pin"])
        import_orders(rig.conn, [sample_order("AUD-003")])
        assert [e["action"] for e in store.entries(rig.conn, 0, 100)] == LOG
        assert [c["size"] for c in store.checkpoints(rig.conn)] == [6, 11]
    finally:
        rig.close()
    return root


@pytest.fixture
def kit(built_log: Path, tmp_path: Path) -> KitOnDisk:
    """A fresh copy of the built log for one test to tamper with."""
    shutil.copytree(built_log / "data", tmp_path / "data")
    for name in ("first.checkpoint", "latest.checkpoint"):
        shutil.copy(built_log / name, tmp_path / name)
    config = tmp_path / "kitd.toml"
    config.write_text(render_config({"data_dir": str(tmp_path / "data"), "kit.id": SIMULATION_KIT_ID}))
    return KitOnDisk(tmp_path / "data", config, tmp_path / "first.checkpoint", tmp_path / "latest.checkpoint")


@pytest.fixture
def card(kit: KitOnDisk) -> Iterator[sqlite3.Connection]:
    """The kit's database as someone holding its SD card opens it: plain sqlite3, the
    append-only triggers dropped."""
    db = sqlite3.connect(database_path(kit.data_dir), isolation_level=None)
    db.execute("DROP TRIGGER audit_entries_no_update")
    db.execute("DROP TRIGGER audit_entries_no_delete")
    yield db
    db.close()


def documents(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT seq, at, clock_confirmed, actor, action, details FROM audit_entries ORDER BY seq"
    )
    return [entry_document(s, at, c, actor, action, json.loads(d)) for s, at, c, actor, action, d in rows]


def rewrite_all(db: sqlite3.Connection, entries: list[dict[str, Any]]) -> None:
    """Replace the whole table with ``entries``, numbered afresh and each with its right leaf
    hash: the careful forger, whom only the checkpoints catch."""
    db.execute("BEGIN")
    db.execute("DELETE FROM audit_entries")
    for seq, entry in enumerate(entries):
        entry = dict(entry, seq=seq)
        db.execute(
            "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, entry["at"], int(entry["clock_confirmed"]), entry["actor"], entry["action"],
             rfc8785.dumps(entry["details"]).decode(), entry_leaf(entry)),
        )  # fmt: skip
    db.execute("COMMIT")


def _forged_sha256(db: sqlite3.Connection, seq: int, keep_leaf: bool) -> None:
    """The first visit's bundle becomes another file (its hash in the entry rewritten)."""
    entry = documents(db)[seq]
    entry["details"]["sha256"] = hashlib.sha256(b"another bundle").hexdigest()
    leaf = db.execute("SELECT leaf_hash FROM audit_entries WHERE seq = ?", (seq,)).fetchone()[0]
    db.execute(
        "UPDATE audit_entries SET details = ?, leaf_hash = ? WHERE seq = ?",
        (rfc8785.dumps(entry["details"]).decode(), leaf if keep_leaf else entry_leaf(entry), seq),
    )


def _deleted_renumbered(db: sqlite3.Connection) -> None:
    entries = documents(db)
    del entries[7]  # the refused sign-in never happened
    rewrite_all(db, entries)


def _inserted(db: sqlite3.Connection) -> None:
    entries = documents(db)
    forged = dict(entries[3], details={"role": "supervisor"})  # a sign-in that gives an alibi
    entries.insert(4, forged)
    rewrite_all(db, entries)


def _reordered(db: sqlite3.Connection) -> None:
    entries = documents(db)
    entries[6], entries[7] = entries[7], entries[6]
    rewrite_all(db, entries)


def _rows_swapped(db: sqlite3.Connection) -> None:
    """Two whole rows (their stored leaf hashes too) trade places."""
    db.execute("UPDATE audit_entries SET seq = 1000 WHERE seq = 6")
    db.execute("UPDATE audit_entries SET seq = 6 WHERE seq = 7")
    db.execute("UPDATE audit_entries SET seq = 7 WHERE seq = 1000")


# Each tampering, and what `kitctl audit verify` names as the first thing wrong.
TAMPERING: dict[str, tuple[Callable[[sqlite3.Connection], None], str]] = {
    "details_rewritten_leaf_kept": (
        lambda db: _forged_sha256(db, 5, keep_leaf=True),
        "entry 5 (visit_finished): its content was changed",
    ),
    "details_rewritten_leaf_recomputed": (
        lambda db: _forged_sha256(db, 5, keep_leaf=False),
        "checkpoint of 6 entries (signed",
    ),
    "entry_deleted": (
        lambda db: db.execute("DELETE FROM audit_entries WHERE seq = 7"),
        "entry 7: its sequence is 8",
    ),
    "entry_deleted_and_the_rest_renumbered": (_deleted_renumbered, "checkpoint of 11 entries (signed"),
    "entry_inserted_in_the_middle": (_inserted, "checkpoint of 6 entries (signed"),
    "two_entries_reordered": (_reordered, "checkpoint of 11 entries (signed"),
    "two_rows_swapped_whole": (_rows_swapped, "entry 6 (sign_in_refused): its content was changed"),
    "tail_truncated_below_a_checkpoint": (
        lambda db: db.execute("DELETE FROM audit_entries WHERE seq >= 8"),
        "checkpoint of 11 entries: the log has only 8: entries were deleted",
    ),
}


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and not done.stdout, (done.stdout, done.stderr)
    return lines[0]


def test_an_untampered_log_verifies_and_extends_both_older_checkpoints(kit: KitOnDisk) -> None:
    verified, first, latest, shown = kit.kitctl(
        ("audit", "verify"),
        ("audit", "prove", "--old", str(kit.first)),
        ("audit", "prove", "--old", str(kit.latest)),
        ("audit", "show", "--json"),
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == "audit log holds: 13 entries, 2 checkpoints verified\n"
    assert first.returncode == 0 and "(13 entries) extends the checkpoint of 6" in first.stdout, first.stderr
    assert latest.returncode == 0 and "extends the checkpoint of 11" in latest.stdout, latest.stderr
    assert [e["action"] for e in json.loads(shown.stdout)] == LOG


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_is_caught_by_verify_and_by_the_older_checkpoint(
    kit: KitOnDisk, card: sqlite3.Connection, how: str
) -> None:
    tamper, named = TAMPERING[how]
    tamper(card)
    card.close()
    verified, proved = kit.verify_and_prove(kit.latest)
    assert verified.returncode == 1 and named in _one_line(verified), verified.stderr
    assert _one_line(verified).startswith("kitctl audit verify: FAILED: ")
    assert proved.returncode == 1 and _one_line(proved).startswith("kitctl audit prove: "), proved.stderr
    if how != "tail_truncated_below_a_checkpoint":  # that one is a shorter log, said so
        assert "the log does not extend the older checkpoint" in proved.stderr, proved.stderr


def test_a_truncation_that_took_its_checkpoints_along_is_caught_by_the_laptops_copy(
    kit: KitOnDisk, card: sqlite3.Connection
) -> None:
    card.execute("DELETE FROM audit_entries WHERE seq >= 8")
    card.execute("DELETE FROM audit_checkpoints WHERE size > 8")
    card.close()
    verified, proved = kit.verify_and_prove(kit.latest)
    # Nothing left on the card remembers the lost entries: only a checkpoint kept off the
    # card (a laptop's) shows that the log shrank.
    assert verified.returncode == 0, verified.stderr
    assert proved.returncode == 1
    assert "the log has 8 entries, fewer than the older checkpoint's 11" in _one_line(proved)


def test_a_rewrite_re_signed_with_the_cards_own_note_key_is_caught_by_the_laptops_copy(
    kit: KitOnDisk, card: sqlite3.Connection
) -> None:
    """The note key is a file on the same card: a forger can sign new checkpoints with it."""
    _forged_sha256(card, 5, keep_leaf=False)
    card.execute("DELETE FROM audit_checkpoints")
    card.close()
    conn = open_database(database_path(kit.data_dir))
    AuditLog(kit.data_dir / "keys", SIMULATION_KIT_ID).checkpoint(conn)
    conn.close()
    verified, proved = kit.verify_and_prove(kit.first)
    assert verified.returncode == 0, verified.stderr  # the card vouches for itself
    assert proved.returncode == 1
    assert "the log does not extend the older checkpoint" in _one_line(proved)


def test_a_checkpoint_signed_by_another_key_is_refused(kit: KitOnDisk, card: sqlite3.Connection) -> None:
    origin = audit_origin(SIMULATION_KIT_ID)
    impostor = parse_signer_key(generate_signer_key(origin))  # the kit's name, another key
    leaves = [bytes(r[0]) for r in card.execute("SELECT leaf_hash FROM audit_entries ORDER BY seq")]
    root = tree_hash(leaves)
    forged = sign_checkpoint(Checkpoint(origin, len(leaves), root), [impostor])
    (kit.data_dir.parent / "impostor.checkpoint").write_text(forged)
    refused, shown = kit.kitctl(
        ("audit", "prove", "--old", str(kit.data_dir.parent / "impostor.checkpoint")),
        ("audit", "verify"),
    )
    assert refused.returncode == 1 and "the older checkpoint: " in _one_line(refused), refused.stderr
    assert shown.returncode == 0, shown.stderr  # the log itself is whole
    # The impostor's checkpoint on the card (the log's true root, even) is refused by verify.
    card.execute(
        "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?)",
        (len(leaves), root, forged, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    )
    card.close()
    (verified,) = kit.kitctl(("audit", "verify"))
    assert verified.returncode == 1
    assert _one_line(verified).startswith(
        f"kitctl audit verify: FAILED: checkpoint of {len(leaves)} entries: "
    )


def test_a_missing_note_key_fails_the_checks_and_they_make_none(kit: KitOnDisk) -> None:
    key = kit.data_dir / "keys" / "audit-note.key"
    key.unlink()
    verified, proved = kit.verify_and_prove(kit.latest)
    assert verified.returncode == 1 and "checkpoint of 6 entries: no audit note key" in _one_line(verified)
    assert proved.returncode == 1 and "no audit note key" in _one_line(proved)
    assert not key.exists()  # a check that minted a key would vouch for nothing


def test_the_kit_never_signs_a_history_rewritten_since_its_last_checkpoint(
    kit: KitOnDisk, card: sqlite3.Connection
) -> None:
    """At its next start the kit reads the whole log once: rewritten under its last
    checkpoint, it refuses to sign a new one (and says where to look); untouched, it signs."""
    _forged_sha256(card, 5, keep_leaf=False)
    conn = open_database(database_path(kit.data_dir))
    try:
        append_entry(conn, SYSTEM, "daemon_started", {})
        with pytest.raises(AuditProblem, match="no longer hash to its last checkpoint"):
            AuditLog(kit.data_dir / "keys", SIMULATION_KIT_ID).checkpoint(conn)
        assert [c["size"] for c in store.checkpoints(conn)] == [6, 11]
    finally:
        conn.close()


def test_the_kit_signs_what_grew_after_its_last_checkpoint(kit: KitOnDisk) -> None:
    conn = open_database(database_path(kit.data_dir))
    try:
        audit = AuditLog(kit.data_dir / "keys", SIMULATION_KIT_ID)
        append_entry(conn, SYSTEM, "daemon_started", {})
        first = audit.checkpoint(conn)
        append_entry(conn, SYSTEM, "daemon_started", {})
        second = audit.checkpoint(conn)  # only the new entry is read this time
        assert (first["size"], second["size"]) == (14, 15)
        assert second["root_hash"] == tree_hash(store.leaf_hashes(conn, 15))
        assert audit.verify(conn).ok
    finally:
        conn.close()


def test_the_kit_never_signs_a_log_cut_below_its_last_checkpoint(
    kit: KitOnDisk, card: sqlite3.Connection
) -> None:
    """Cut below its last checkpoint, then grown again past it: the kit starting anew still
    refuses to sign (the cut is seen before any growth could hide it)."""
    card.execute("DELETE FROM audit_entries WHERE seq >= 8")
    conn = open_database(database_path(kit.data_dir))
    try:
        with pytest.raises(AuditProblem, match="fewer than the 11 signed before"):
            AuditLog(kit.data_dir / "keys", SIMULATION_KIT_ID).checkpoint(conn)
        for _ in range(5):
            append_entry(conn, SYSTEM, "daemon_started", {})
        with pytest.raises(AuditProblem, match="no longer hash to its last checkpoint"):
            AuditLog(kit.data_dir / "keys", SIMULATION_KIT_ID).checkpoint(conn)
    finally:
        conn.close()


def test_an_entry_edited_into_garbage_is_named_not_crashed_on(
    kit: KitOnDisk, card: sqlite3.Connection
) -> None:
    card.execute("UPDATE audit_entries SET details = '{not json' WHERE seq = 3")
    verified, proved = kit.verify_and_prove(kit.first)
    assert verified.returncode == 1 and "entry 3 (" in _one_line(verified), verified.stderr
    assert "content was changed" in verified.stderr
    assert proved.returncode == 1 and "does not extend" in _one_line(proved), proved.stderr


def test_audit_show_since_a_time_without_a_zone_is_the_kits() -> None:
    """As `kitctl orders list --day` takes its day: a technician in WITA asking from 30 November
    means from midnight WITA, 16.00 UTC the day before, not from midnight UTC."""
    assert since_utc(_since("2026-11-30"), "Asia/Makassar") == "2026-11-29T16:00:00.000+00:00"
    assert since_utc(_since("2026-11-30T08:00+07:00"), "Asia/Makassar") == "2026-11-30T01:00:00.000+00:00"
    assert since_utc(_since("2026-11-30T08:00"), "UTC") == "2026-11-30T08:00:00.000+00:00"
