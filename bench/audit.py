"""The audit log: what appending, signing checkpoints, verifying and proving cost.

Its one job: time the real audit code (kitd.store.audit, kitd.services.audit, the real
kitctl) on the kit's real database, each figure against a named reference measured in the
same run:

* entries appended per second, each in its own transaction as the kit writes them, with
  the kit's ``synchronous=FULL`` and write-ahead log; reference: the same rows by a plain
  INSERT (no canonical JSON, no leaf hash, no masking) into a table like it, so the ratio
  is what the audit adds to a commit. Both again inside one transaction, where no fsync
  hides the work;
* signing a checkpoint of N entries (the stored leaf hashes read, the tree hashed, the
  note signed with Ed25519 and recorded); reference: the note's signature alone;
* ``kitctl audit verify`` of a log of N entries with a checkpoint every visit's worth of
  entries, the real kitctl in its own process; references: AuditLog.verify in this process
  (the difference is kitctl's start), reading the rows alone, and ``kitctl audit prove``;
* the proofs' sizes in a log of N entries (every entry's inclusion proof, the consistency
  proof from every older checkpoint), in hashes and in bytes, raw and as the API sends
  them; reference: one signed checkpoint's size. A few are answered by AuditLog, timed.

N is 100,000 (2,000 in the smoke pass). The log is built fast: append_entry in big
transactions, the checkpoints signed from a running frontier (the same notes the kit signs).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kitformats.audit.checkpoint import Checkpoint, format_checkpoint, sign_checkpoint
from kitformats.audit.merkle import (
    HASH_SIZE,
    consistency_proof,
    frontier_append,
    frontier_root,
    inclusion_proof,
    tree_hash,
)
from kitformats.audit.note import generate_signer_key, sign_note

from bench.stats import time_calls
from hil.rig import SIMULATION_KIT_ID, render_config, simulation_officer, venv_script
from kitd.durable_files import write_exclusively
from kitd.services.audit import AuditLog
from kitd.store import audit as store
from kitd.store.database import database_path, open_database, transaction

OFFICER = simulation_officer("officer")["nip"]
ITEMS = [*(f"finger:{n}" for n in range(1, 11)), "iris:right", "iris:left", "signature"]
PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS plain_entries (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    clock_confirmed INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    details TEXT NOT NULL
)
"""


def visit_entries(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """One enrollment's entries (actor, action, details), as the kit writes them: 31 of them."""
    visit, order = f"v{n:06d}", f"MJK-{n:06d}"
    facts = {"visit": visit, "order": order, "state": "capturing"}
    entries = [
        (OFFICER, "visit_started", {**facts, "state": "identity", "category": "lansia"}),
        (
            OFFICER,
            "visit_identity",
            {**facts, "present": 2, "consent_by": "applicant", "guardian_relation": None},
        ),
    ]
    for item in ITEMS:
        standing = {"item": item, "score": 61.4, "passed": True, "attempts": 1}
        entries.append((OFFICER, "visit_item_started", {**facts, **standing, "status": "capturing"}))
        entries.append(
            (store.SYSTEM, "visit_item_session_ended", {**facts, **standing, "status": "captured"})
        )
    entries.append((OFFICER, "visit_item_accepted", {**facts, "item": "signature", "status": "captured"}))
    entries.append(
        (OFFICER, "visit_finished", {"visit": visit, "order": order, "state": "finished", "size": 301_337,
                                     "bundle": f"b{n:035d}", "sha256": f"{n:064x}"})
    )  # fmt: skip
    entries.append((OFFICER, "sign_out", {}))
    return entries


def _entries(count: int) -> list[tuple[str, str, dict[str, Any]]]:
    made: list[tuple[str, str, dict[str, Any]]] = []
    n = 0
    while len(made) < count:
        made += visit_entries(n)
        n += 1
    return made[:count]


def _per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def _insert_plain(conn: sqlite3.Connection, actor: str, action: str, details: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO plain_entries (at, clock_confirmed, actor, action, details) VALUES (?, 0, ?, ?, ?)",
        (dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), actor, action, json.dumps(details)),
    )


def _appends(folder: Path, count: int) -> None:
    """Entries appended one commit each (as the kit does) and in one transaction; plain INSERTs."""
    conn = open_database(database_path(folder))
    conn.execute(PLAIN_TABLE)
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert synchronous == 2, f"synchronous is {synchronous}, not FULL (2)"
    rows = _entries(count)
    # One commit each, the two kinds alternated entry by entry so that the disk's moods (and
    # the write-ahead log's checkpoints) fall on both alike.
    plain, audited = [], []
    for actor, action, details in rows:
        started = time.perf_counter()
        with transaction(conn):
            _insert_plain(conn, actor, action, details)
        between = time.perf_counter()
        store.append_entry(conn, actor, action, details)
        audited.append(time.perf_counter() - between)
        plain.append(between - started)
    # In one transaction each: no fsync per entry hides the work.
    started = time.perf_counter()
    with transaction(conn):
        for actor, action, details in rows:
            _insert_plain(conn, actor, action, details)
    between = time.perf_counter()
    with transaction(conn):
        for actor, action, details in rows:
            store.append_entry(conn, actor, action, details)
    batched_audited, batched_plain = time.perf_counter() - between, between - started
    conn.close()
    median = statistics.median
    print(f"  appends, {count:,} entries (a visit's mix), synchronous=FULL, journal_mode={journal}:")
    print(
        f"    reference, plain INSERT, one commit each: {_per_second(count, sum(plain))} "
        f"(median {median(plain) * 1e3:.2f} ms a commit)"
    )
    print(
        f"    append_entry, one commit each (as the kit writes them): {_per_second(count, sum(audited))} "
        f"(median {median(audited) * 1e3:.2f} ms a commit)"
    )
    print(f"    append_entry / plain INSERT: {sum(audited) / sum(plain):.2f}x the time")
    print(
        f"    in one transaction (no fsync per entry): plain {_per_second(count, batched_plain)}, "
        f"append_entry {_per_second(count, batched_audited)} "
        f"({batched_audited / batched_plain:.1f}x: canonical JSON, masking, the next sequence and the "
        f"leaf hash, {(batched_audited - batched_plain) / count * 1e6:.0f} us an entry)"
    )


def _build(folder: Path, count: int, per_checkpoint: int) -> tuple[AuditLog, list[str], float]:
    """A log of ``count`` entries with a signed checkpoint every ``per_checkpoint``; the
    AuditLog, the notes signed (oldest first) and the seconds the building took."""
    conn = open_database(database_path(folder))
    audit = AuditLog(folder / "keys", SIMULATION_KIT_ID)
    audit.keys_dir.mkdir(parents=True, exist_ok=True)  # the kit's first note key, as checkpoint() makes it
    write_exclusively(audit.key_path, (generate_signer_key(audit.origin) + "\n").encode())
    signer = audit.signer()
    notes: list[str] = []
    frontier: tuple[bytes, ...] = ()
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    rows = _entries(count)
    for first in range(0, count, 10_000):
        with transaction(conn):
            for seq in range(first, min(first + 10_000, count)):
                actor, action, details = rows[seq]
                assert store.append_entry(conn, actor, action, details, now) == seq
                leaf = conn.execute("SELECT leaf_hash FROM audit_entries WHERE seq = ?", (seq,)).fetchone()[0]
                frontier, _ = frontier_append(frontier, seq, bytes(leaf))
                if (seq + 1) % per_checkpoint == 0 or seq + 1 == count:
                    root = frontier_root(frontier)
                    note = sign_checkpoint(Checkpoint(audit.origin, seq + 1, root), [signer])
                    store.record_checkpoint(conn, seq + 1, root, note, now)
                    notes.append(note)
    built = time.perf_counter() - started
    conn.close()
    return audit, notes, built


def _checkpoints(folder: Path, audit: AuditLog, count: int, repeat: int) -> None:
    conn = open_database(database_path(folder))
    signer = audit.signer()
    text = format_checkpoint(Checkpoint(audit.origin, count, bytes(HASH_SIZE)))
    signing = time_calls(lambda: sign_note(text, [signer]), repeat * 20)
    leaves = store.leaf_hashes(conn, count)
    hashing = time_calls(lambda: tree_hash(leaves), repeat)
    whole = []
    for _ in range(repeat):
        store.append_entry(conn, store.SYSTEM, "bench_mark", {})  # something new to sign
        started = time.perf_counter()
        audit.checkpoint(conn)
        whole.append(time.perf_counter() - started)
    conn.close()
    median = statistics.median
    print(f"  a checkpoint of {count:,} entries (n={repeat}):")
    print(f"    reference, the note's Ed25519 signature alone: median {median(signing) * 1e3:.3f} ms")
    print(
        f"    AuditLog.checkpoint (leaf hashes read, tree hashed, note signed and recorded): "
        f"median {median(whole) * 1e3:.1f} ms, of which the tree hash {median(hashing) * 1e3:.1f} ms"
    )
    print(f"    checkpoint / signature alone: {median(whole) / median(signing):,.0f}x")


def _kitctl(config: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [venv_script("kitctl"), *args, "--config", str(config)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return time.perf_counter() - started, done


def _verify(
    folder: Path,
    audit: AuditLog,
    notes: list[str],
    count: int,
    built: float,
    repeat: int,
    per_checkpoint: int,
) -> None:
    config = folder / "kitd.toml"
    config.write_text(render_config({"data_dir": str(folder), "kit.id": SIMULATION_KIT_ID}))
    old = folder / "old.checkpoint"
    old.write_text(notes[len(notes) // 2])
    old_size = int(notes[len(notes) // 2].split("\n")[1])
    kitctl, proving = [], []
    for _ in range(repeat):
        took, done = _kitctl(config, "audit", "verify")
        assert done.returncode == 0, done.stderr
        kitctl.append(took)
        took, done = _kitctl(config, "audit", "prove", "--old", str(old))
        assert done.returncode == 0, done.stderr
        proving.append(took)
    started_alone = [_kitctl(config, "audit", "--help")[0] for _ in range(repeat)]
    conn = open_database(database_path(folder))
    in_process = []
    for _ in range(repeat):
        started = time.perf_counter()
        check = audit.verify(conn)
        in_process.append(time.perf_counter() - started)
        assert check.ok and check.entries == count, check.problem
    reading = time_calls(lambda: store.stored_rows(conn), repeat)
    conn.close()
    median = statistics.median
    print(
        f"  kitctl audit verify, {count:,} entries and {len(notes):,} checkpoints "
        f"(one every {per_checkpoint} entries, a visit's worth; built in {built:.1f} s), n={repeat}:"
    )
    print(f"    reference, reading the rows alone (stored_rows): median {median(reading):.2f} s")
    print(f"    reference, AuditLog.verify in this process: median {median(in_process):.2f} s")
    print(
        f"    kitctl audit verify (its own process): median {median(kitctl):.2f} s "
        f"(kitctl's start alone, `kitctl audit --help`: {median(started_alone):.2f} s)"
    )
    print(
        f"    kitctl / in-process: {median(kitctl) / median(in_process):.2f}x; "
        f"in-process / reading the rows: {median(in_process) / median(reading):.1f}x"
    )
    print(
        f"    kitctl audit prove --old (the checkpoint of {old_size:,} entries): "
        f"median {median(proving):.2f} s"
    )


def _proofs(folder: Path, audit: AuditLog, count: int) -> None:
    """Proof sizes in a log of ``count``: every entry's inclusion proof and the consistency
    proof from every older checkpoint (their lengths depend on the sizes alone, so the pure
    functions count them), and a few answered by AuditLog from the database, timed."""
    conn = open_database(database_path(folder))
    olds = [c["size"] for c in store.checkpoints(conn) if c["size"] < count]
    note = store.latest_checkpoint(conn)["note"]
    started = time.perf_counter()
    answered = [audit.inclusion(conn, index, count) for index in (0, count // 2, count - 1)]
    answered += [audit.consistency(conn, old, count) for old in (olds[0], olds[len(olds) // 2], olds[-1])]
    per_proof = (time.perf_counter() - started) / len(answered)
    conn.close()

    def blank(start: int, end: int) -> bytes:
        return bytes(HASH_SIZE)

    inclusion = [len(inclusion_proof(index, count, blank)) for index in range(count)]
    consistency = [len(consistency_proof(old, count, blank)) for old in olds]
    assert [len(a["proof"]) for a in answered[:3]] == [inclusion[i] for i in (0, count // 2, count - 1)]

    def described(lengths: list[int]) -> str:
        low, high = min(lengths), max(lengths)
        # As the API sends them: a JSON list of base64 strings.
        api = [len(json.dumps([base64.b64encode(bytes(HASH_SIZE)).decode()] * n)) for n in (low, high)]
        return (
            f"{low}-{high} hashes, median {statistics.median(lengths):.0f} "
            f"({low * HASH_SIZE}-{high * HASH_SIZE} bytes raw, {api[0]}-{api[1]} bytes as the API's JSON)"
        )

    print(f"  proofs in a log of {count:,} entries (log2 {math.log2(count):.1f}):")
    print(f"    inclusion, every entry: {described(inclusion)}")
    print(f"    consistency from each of the {len(olds):,} older checkpoints: {described(consistency)}")
    print(
        f"    reference, one signed checkpoint: {len(note.encode())} bytes; AuditLog answers a proof in "
        f"{per_proof * 1e3:.0f} ms (all {count:,} stored leaf hashes read and hashed), n={len(answered)}"
    )


def run(smoke: bool) -> None:
    count = 2_000 if smoke else 100_000
    appends = 200 if smoke else 5_000
    repeat = 1 if smoke else 3
    with tempfile.TemporaryDirectory(prefix="kitd-bench-audit-") as folder:
        root = Path(folder)
        _appends(root / "appends", appends)
        per_checkpoint = len(visit_entries(0))
        audit, notes, built = _build(root / "log", count, per_checkpoint)
        _verify(root / "log", audit, notes, count, built, repeat, per_checkpoint)
        _proofs(root / "log", audit, count)
        _checkpoints(root / "log", audit, count, repeat * 3)  # last: it appends
