"""kill -9 at random points of a process running the real outbox, round after round.

Its one job: the outbox's crash harness (a harness of the tests, not a way into the daemon).
A child works on one data_dir as the daemon does: it opens the outbox, reconciles it (the
daemon's start-up), then does real work — seals injected finished visits, offers bundles
to a laptop, takes laptops' and the central office's receipts, erases delivered bundles
with its clock moved past retention — and reports on stdout each step as it begins and
once it is done (one write(2) per line, stamped with CLOCK_MONOTONIC: a SIGKILL keeps what
was written). :func:`run_rounds` picks a phase for each round (reconcile, store, offer, a
laptop's receipt, the office's receipt, erase, the in-memory sealing, or any moment),
kills the child with SIGKILL a random time into that phase, and checks what the kill left:
the database's integrity, every bundle reported sealed still there whole (the new ones
opened and verified with the office's key), nothing erased without the office's receipt,
no partial or duplicate file, a visit's order closed exactly when its bundle is sealed;
then, after a reconciliation, no temporary file, every sealed file with exactly one row,
nothing reported missing or moved aside. The data_dir is kept across rounds, so the
state accumulates (delivering and erasing keep it bounded).

Children are forked from a warm process (``children``) that has imported the kit and
loaded the sample captures once: an exec'd child spends a second importing, most of a
round. ``python -m hil.outbox_crash child`` runs one child by hand. Broken outboxes
(``--broken``) show that the checks catch what they are for.

    .venv/bin/python -m hil.outbox_crash run --rounds 10000 [--seed S] [--dir D]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from kitformats.bundle_statements import SEALED_SUFFIX, STATEMENT_SUFFIX, BundleRejected
from kitformats.receipts import ReceiptRefused
from kitformats.signing import FileSigner, read_certificate, read_file_signer

from hil.io_trace import Record, RecordingFileOps
from hil.outbox_rig import (
    OutboxRig,
    central_signer,
    finished_record,
    injected_visit,
    laptop_signer,
    open_rig,
    receipt,
    sample_captures,
    seal_visit,
)
from hil.rig import SIMULATION_KIT_ID
from hil.sample_visit import SampleVisit
from kitd.crypto.bundle import bundle_paths, open_bundle
from kitd.crypto.receipts import check_receipt
from kitd.durable_files import FileOps, is_temporary, remove_durably
from kitd.services.audit import AuditLog, CheckpointRefused
from kitd.services.outbox import QUARANTINE, Outbox, Reconciled
from kitd.store import audit as audit_rows
from kitd.store import outbox as rows
from kitd.store.database import database_path, open_database

LAPTOP = "crash-laptop"
RETENTION_DAYS = 7.0
# Bundles the outbox keeps before a child's random steps deliver and erase instead of sealing.
KEPT_CAP = 6
# The phases a round's kill aims at, and how often.
TARGETS: dict[str, float] = {
    "store": 0.26,
    "checkpoint": 0.04,
    "reconcile": 0.12,
    "erase": 0.14,
    "central": 0.12,
    "laptop": 0.08,
    "offer": 0.06,
    "seal": 0.06,
    "anywhere": 0.12,
}
# A first guess of each phase's length (s); each round's measures replace it.
PHASE_SECONDS: dict[str, float] = {
    "reconcile": 0.003,
    "seal": 0.25,
    "store": 0.015,
    "checkpoint": 0.01,
    "offer": 0.004,
    "laptop": 0.015,
    "central": 0.015,
    "erase": 0.006,
}
# A round's kill at "anywhere": this long at most after the child starts.
ANYWHERE_SECONDS = 1.0
CHILD_LIFETIME_S = 120.0  # a child nobody killed stops by itself
ROUND_TIMEOUT_S = 60.0


# --- the child ------------------------------------------------------------------------------


def say(line: str) -> None:
    """One line on stdout in one write(2), stamped: all a SIGKILL leaves of what it knew."""
    os.write(1, f"{time.monotonic():.6f} {line}\n".encode())


def announce(record: Record) -> None:
    """A file operation said as it starts (the parent names the step a kill landed in): its
    name and its file's (a rename's: the target's)."""
    say(f"op {record.op} {Path(record.path2 or record.path).name}")


class LazyWrites(RecordingFileOps):
    """BROKEN on purpose: a write stays in the process (an unflushed buffer; fsync does not
    flush it) until the next file is created, so a file is renamed into place, and reported
    sealed, before its bytes are in it."""

    def __init__(self) -> None:
        super().__init__(announce, before=True)
        self.held: list[tuple[int, bytes]] = []
        self.closing: list[int] = []

    def create(self, path: Path, mode: int) -> int:
        for fd, data in self.held:
            FileOps.write(self, fd, data)
        for fd in self.closing:
            FileOps.close(self, fd)
        self.held, self.closing = [], []
        return super().create(path, mode)

    def write(self, fd: int, data: bytes) -> None:
        announce(Record("write", self.name_of(fd)))
        self.held.append((fd, bytes(data)))

    def close(self, fd: int) -> None:
        announce(Record("close", self.name_of(fd)))
        self.closing.append(fd)


class FilesBeforeRows(Outbox):
    """BROKEN on purpose: erasure removes a delivered bundle's files before its row says
    erased, so a kill in between leaves a delivered bundle without its file."""

    def erase_expired(self, conn: sqlite3.Connection, now: dt.datetime | None = None) -> list[str]:
        now = now or dt.datetime.now(dt.UTC)
        cutoff = rows.stamp(now - dt.timedelta(days=self.retention_days))
        for row in rows.bundle_rows(conn, ("delivered",)):
            if row["delivered_at"] <= cutoff:
                remove_durably(list(bundle_paths(self.directory, row["bundle_id"])), self.ops)
        return rows.mark_erased(conn, now - dt.timedelta(days=self.retention_days), now)


BROKEN = ("lazy-writes", "files-before-rows", "audit-rewrite")


def rewrite_first_audit_entry(conn: sqlite3.Connection) -> None:
    """BROKEN on purpose: the audit log's first entry rewritten by someone holding the card,
    its leaf hash recomputed (the careful forger whom only the checkpoints catch)."""
    row = conn.execute("SELECT * FROM audit_entries WHERE seq = 0").fetchone()
    if row is None:
        return
    before = json.loads(row["details"])
    details = dict(before, forged=int(before.get("forged", 0)) + 1)  # a new change every time
    document = audit_rows.entry_document(
        0, row["at"], bool(row["clock_confirmed"]), row["actor"], row["action"], details
    )
    conn.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
    conn.execute(
        "UPDATE audit_entries SET details = ?, leaf_hash = ? WHERE seq = 0",
        (json.dumps(details, sort_keys=True, separators=(",", ":")), audit_rows.entry_leaf(document)),
    )


@dataclasses.dataclass
class Child:
    """One child's work on the kit in ``data_dir``: random steps, each reported."""

    rig: OutboxRig
    sample: SampleVisit
    rng: random.Random
    round: int
    laptop: FileSigner
    central: FileSigner
    visits: int = 0
    # The round's target phase, while the child is in the step that leads to it.
    aim: str | None = None
    # One audit log for the child's life, as the daemon keeps one: its checkpoints grow from
    # the frontier it holds instead of re-reading the whole log every time.
    audit: AuditLog | None = None

    def begin(self, phase: str, *words: str) -> None:
        """A phase begins; the target's own beginning is marked ("aim") for the parent to
        time its kill from (a step taken first to make it possible is not it)."""
        say(" ".join(("begin", phase, *words)))
        if phase == self.aim:  # after the beginning: a kill timed from it lands in the phase
            self.aim = None
            say(f"aim {phase}")

    def kept(self, states: tuple[str, ...] = rows.KEPT) -> list[dict[str, Any]]:
        return rows.bundle_rows(self.rig.conn, states)

    def step(self, name: str) -> None:
        getattr(self, f"do_{name}")()

    def random_step(self) -> None:
        if len(self.kept()) > KEPT_CAP:
            self.step(self.rng.choice(["central", "erase"]))
            return
        names = ["seal", "offer", "laptop", "central", "erase", "duplicate"]
        self.step(self.rng.choices(names, weights=[3, 2, 2, 3, 2, 1])[0])

    def do_seal(self) -> None:
        """A finished visit sealed and stored: a new one, or one a kill interrupted."""
        pending = [
            r[0] for r in self.rig.conn.execute("SELECT order_id FROM work_orders WHERE status = 'pending'")
        ]
        if pending and self.rng.random() < 0.5:
            name = self.rng.choice(pending)
        else:
            self.visits += 1
            name = f"R{self.round}-{self.visits}"
        self.begin("seal", name)
        record, order = injected_visit(self.rig.conn, self.sample, name)
        say("mark sealing in memory")
        now = dt.datetime.now(dt.UTC)
        bundle = seal_visit(self.rig, record, order, self.sample, now)
        self.begin("store", bundle.bundle_id, name)
        saved = self.rig.outbox.store(self.rig.conn, bundle, finished_record(record, bundle), now)
        # An earlier finish's whole bundle may be the one registered (store's contract).
        say(f"sealed {saved['bundle']['id']} {name}")
        # As the daemon does after every seal: a signed checkpoint of the audit log.
        self.begin("checkpoint")
        if self.audit is None:
            self.audit = AuditLog(self.rig.data_dir / "keys", SIMULATION_KIT_ID)
        signed = self.audit.checkpoint(self.rig.conn)
        say(f"checkpointed {signed['size']}")

    def do_store(self) -> None:
        self.do_seal()

    def do_checkpoint(self) -> None:
        self.do_seal()  # a seal ends with the audit log's checkpoint, as in the daemon

    def do_offer(self) -> None:
        self.begin("offer")
        offered = self.rig.outbox.offer(self.rig.conn, LAPTOP, dt.datetime.now(dt.UTC))
        say("offered " + " ".join(b["bundle_id"] for b in offered))

    def _receipt(self, kind: str, row: dict[str, Any]) -> dict[str, Any]:
        signer, by = (self.laptop, LAPTOP) if kind == "laptop_receipt" else (self.central, "central")
        document = receipt(signer, kind, row, by)
        return self.rig.outbox.take_receipts(self.rig.conn, [document])[0]

    def do_laptop(self) -> None:
        candidates = self.kept(rows.UNACKNOWLEDGED)
        if not candidates:
            self.do_seal()
            candidates = self.kept(rows.UNACKNOWLEDGED)
        row = self.rng.choice(candidates)
        self.begin("laptop", row["bundle_id"])
        result = self._receipt("laptop_receipt", row)
        if result["result"] != "accepted":
            raise RuntimeError(f"laptop receipt for {row['bundle_id']}: {result}")
        say(f"acknowledged {row['bundle_id']}")

    def do_central(self) -> None:
        candidates = self.kept(("sealed", "offered", "acknowledged"))
        if not candidates:
            self.do_seal()
            candidates = self.kept(("sealed", "offered", "acknowledged"))
        row = self.rng.choice(candidates)
        self.begin("central", row["bundle_id"])
        result = self._receipt("central_receipt", row)
        if result["result"] != "accepted":
            raise RuntimeError(f"central receipt for {row['bundle_id']}: {result}")
        say(f"delivered {row['bundle_id']}")

    def do_duplicate(self) -> None:
        """A receipt sent again (a laptop retrying): taken as a duplicate, nothing changes."""
        done = self.kept(("acknowledged", "delivered"))
        if not done:
            self.do_central()
            return
        row = self.rng.choice(done)
        self.begin("duplicate", row["bundle_id"])
        result = self._receipt("laptop_receipt", row)
        if result["result"] != "duplicate":
            raise RuntimeError(f"a receipt sent again for {row['bundle_id']}: {result}")
        say(f"end duplicate {row['bundle_id']}")

    def do_erase(self) -> None:
        if not self.kept(("delivered",)):
            self.do_central()
        # Mostly past retention (the delivered bundles go), sometimes not yet (none does).
        days = self.rng.choice([RETENTION_DAYS + 1] * 3 + [RETENTION_DAYS / 2])
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        self.begin("erase")
        erased = self.rig.outbox.erase_expired(self.rig.conn, later)
        say("erased " + " ".join(erased))


def child_work(
    data_dir: Path,
    office_dir: Path,
    sample: SampleVisit,
    round_number: int,
    seed: int,
    target: str,
    broken: str,
) -> None:
    """A child's life: the daemon's start-up, a few random steps, the round's target phase,
    then random steps until the parent kills it."""
    say(f"child {os.getpid()}")
    started = time.monotonic()
    rng = random.Random(seed)
    ops = LazyWrites() if broken == "lazy-writes" else RecordingFileOps(announce, before=True)
    outbox_type = FilesBeforeRows if broken == "files-before-rows" else Outbox
    rig = open_rig(data_dir, office_dir, ops=ops, retention_days=RETENTION_DAYS, outbox_type=outbox_type)
    # Each statement announced as it starts: a kill after "sql COMMIT" is in the commit.
    rig.conn.set_trace_callback(lambda sql: say(f"sql {sql.split(None, 1)[0].upper()}"))
    if broken == "audit-rewrite":
        rewrite_first_audit_entry(rig.conn)
    say("begin reconcile")
    if target == "reconcile":
        say("aim reconcile")
    report = rig.outbox.reconcile(rig.conn)
    say("reconciled " + json.dumps(report.to_json(), separators=(",", ":")))
    laptop = read_file_signer(office_dir / f"laptop-{LAPTOP}.key", office_dir / f"laptop-{LAPTOP}.crt")
    central = read_file_signer(office_dir / "central-signing.key", office_dir / "central-signing.crt")
    child = Child(rig, sample, rng, round_number, laptop, central)
    prelude = rng.randint(0, 1) if target not in ("reconcile", "anywhere") else 0
    steps = 0
    while time.monotonic() - started < CHILD_LIFETIME_S:
        if steps == prelude and target not in ("reconcile", "anywhere"):
            child.aim = target
            child.step(target)
        else:
            child.random_step()
        steps += 1
    say("error nobody killed this child")


def child_main(args: argparse.Namespace) -> int:
    sample = load_sample(args.captures) if args.captures else sample_captures()
    child_work(args.dir, args.office, sample, args.round, args.seed, args.target, args.broken or "")
    return 1


def load_sample(path: Path) -> SampleVisit:
    with path.open("rb") as source:
        sample: SampleVisit = pickle.load(source)  # our own file, made by prepare()
    return sample


def children_main(args: argparse.Namespace) -> int:
    """The warm process: reads ``round N SEED TARGET`` lines, forks a child for each, says
    ``ended PID STATUS`` when it is gone."""
    sample = load_sample(args.captures)
    say("ready")
    for line in sys.stdin:
        _word, number, seed, target = line.split()
        # fork(2) copies only the calling thread: a warm process with another thread (a
        # BLAS or OpenCV pool) could hand its children a lock held forever.
        threads = len(os.listdir("/proc/self/task"))
        if threads != 1:
            say(f"error the warm process has {threads} threads: it cannot fork safely")
            return 1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child_work(args.dir, args.office, sample, int(number), int(seed), target, args.broken or "")
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, then gone
                message = "".join(traceback.format_exception_only(exc)).strip().replace("\n", " | ")
                say(f"error {message}")
                traceback.print_exc()
            finally:
                os._exit(code)  # no atexit, no finalizers: the parent's are not the child's
        _pid, status = os.waitpid(pid, 0)
        say(f"ended {pid} {status}")
    return 0


# --- the parent -----------------------------------------------------------------------------


@dataclasses.dataclass
class CrashRun:
    """What a run of rounds did and found."""

    rounds: int = 0
    seconds: float = 0.0
    # Where each kill landed: the phase the child was in (or had just finished: "after X").
    kills: Counter[str] = dataclasses.field(default_factory=Counter)
    # ... and the file operation it had started last in that phase.
    steps: Counter[str] = dataclasses.field(default_factory=Counter)
    targets: Counter[str] = dataclasses.field(default_factory=Counter)
    reported: Counter[str] = dataclasses.field(default_factory=Counter)
    reconciled: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    seed: int = 0
    planned: int = 0
    stopped: str = ""  # why it stopped before the rounds planned

    def summary(self) -> str:
        lines = [
            f"{self.rounds} rounds in {self.seconds:.0f} s (seed {self.seed}): {len(self.failures)} failures"
            + (f"; stopped before {self.planned}: {self.stopped}" if self.stopped else ""),
            "kills by phase: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items())),
            "aimed at: " + ", ".join(f"{k} {n}" for k, n in sorted(self.targets.items())),
            "kills by step (most frequent): " + ", ".join(f"{k} {n}" for k, n in self.steps.most_common(24)),
            "reported by the children: " + ", ".join(f"{k} {n}" for k, n in sorted(self.reported.items())),
            "reconciliations found: " + ", ".join(f"{k} {n}" for k, n in sorted(self.reconciled.items())),
        ]
        lines += [f"FAILED {failure}" for failure in self.failures[:20]]
        return "\n".join(lines)


@dataclasses.dataclass
class Ledger:
    """What the children reported across rounds, and what the parent has checked already."""

    sealed: dict[str, str] = dataclasses.field(default_factory=dict)  # bundle id -> visit id
    acknowledged: set[str] = dataclasses.field(default_factory=set)
    delivered: set[str] = dataclasses.field(default_factory=set)
    offered: set[str] = dataclasses.field(default_factory=set)
    opened: set[str] = dataclasses.field(default_factory=set)  # opened and verified whole
    erasures_checked: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Line:
    at: float
    words: list[str]


class Warm:
    """The warm process and its pipe."""

    def __init__(self, kit: Path, office: Path, captures: Path, broken: str, log: Path) -> None:
        command = [sys.executable, "-m", "hil.outbox_crash", "children"]
        command += ["--dir", str(kit), "--office", str(office), "--captures", str(captures)]
        if broken:
            command += ["--broken", broken]
        # One BLAS thread: the warm process must stay single-threaded to fork.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        # Its stderr (tracebacks, the outbox's log) to a file: a pipe nobody reads fills up.
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink, env=env
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.fd = self.process.stdout.fileno()
        self.pending = b""
        self.child: int | None = None  # the pid of the child not yet ended
        ready = self.read_until(lambda line: line.words[:1] == ["ready"], time.monotonic() + 60)
        if not ready or ready[-1].words[:1] != ["ready"]:
            raise RuntimeError(f"the warm process did not start: {self.errors()}")

    def errors(self) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-3000:]

    def send(self, line: str) -> None:
        self.stdin.write(line.encode() + b"\n")
        self.stdin.flush()

    def read_until(self, stop: Callable[[Line], bool], deadline: float) -> list[Line]:
        """Lines until one satisfies ``stop`` (included) or ``deadline`` (monotonic) passes."""
        lines: list[Line] = []
        while True:
            while b"\n" in self.pending:
                raw, self.pending = self.pending.split(b"\n", 1)
                stamp, _, text = raw.decode(errors="replace").partition(" ")
                try:
                    line = Line(float(stamp), text.split() or ["-"])
                except ValueError:  # not one of ours: something printed on the child's stdout
                    line = Line(time.monotonic(), ["stray", stamp, *text.split()])
                lines.append(line)
                if stop(line):
                    return lines
            left = deadline - time.monotonic()
            if left <= 0:
                return lines
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    return lines
                self.pending += chunk

    def close(self) -> None:
        if self.child is not None:  # the run stopped in the middle of a round
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The words a child says when a phase is done.
PHASE_ENDS = ("sealed", "checkpointed", "offered", "acknowledged", "delivered", "erased", "reconciled", "end")


def where_it_landed(lines: list[Line]) -> tuple[str, str]:
    """The phase a child was in when it died (or had just finished), and the last file
    operation or SQL statement it had begun in that phase ("cpu": none yet)."""
    phase, step, file = "start", "cpu", ""
    for line in lines:
        word = line.words[0] if line.words else ""
        if word == "begin":
            phase, step, file = line.words[1], "cpu", ""
        elif word == "op":
            name = line.words[2]
            kind = "sealed file" if ".p7m" in name else "statement" if STATEMENT_SUFFIX in name else ""
            file = (f"temporary {kind}" if is_temporary(Path(name)) else kind) or file
            operation = line.words[1]
            if operation == "fsync_directory":
                step = f"fsync folder ({file})" if file else "fsync folder"
            else:
                step = f"{operation} {file}"
        elif word == "sql":
            step = f"sql {line.words[1]}"
        elif word == "mark":
            step = " ".join(line.words[1:])
        elif word in PHASE_ENDS:
            phase, step, file = f"after {phase}", "cpu", ""
    return phase, f"{phase}: {step}"


def phase_lengths(lines: list[Line]) -> dict[str, float]:
    """How long each phase the child finished took (from its own stamps)."""
    lengths: dict[str, float] = {}
    began: tuple[str, float] | None = None
    for line in lines:
        word = line.words[0] if line.words else ""
        if word == "begin":
            if began is not None and began[0] == "seal":
                lengths["seal"] = line.at - began[1]  # the store begins when the sealing ends
            began = (line.words[1], line.at)
        elif word in PHASE_ENDS:
            if began is not None:
                lengths[began[0]] = line.at - began[1]
            began = None
    return lengths


class Checker:
    """The invariants of the outbox in ``kit`` after a kill and after a reconciliation."""

    def __init__(self, kit: Path, office: Path, ledger: Ledger) -> None:
        self.kit = kit
        self.outbox = kit / "outbox"
        self.ledger = ledger
        self.office_key = serialization.load_pem_private_key((office / "central.key").read_bytes(), None)
        self.trust = [read_certificate(kit / "keys" / "ca.crt")]
        self.central = read_certificate(kit / "keys" / "central-signing.crt")
        self.audit = AuditLog(kit / "keys", SIMULATION_KIT_ID)
        # The latest checkpoint seen after the round before: the log must extend it.
        self.last_checkpoint: str | None = None

    def after_kill(self) -> list[str]:
        problems: list[str] = []
        conn = open_database(database_path(self.kit))
        try:
            verdict = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if verdict != ["ok"]:
                return [f"integrity_check: {verdict[:5]}"]
            problems += self._rows_and_files(conn)
            problems += self._visits(conn)
            problems += self._audit(conn)
        finally:
            conn.close()
        return problems

    def _audit(self, conn: sqlite3.Connection) -> list[str]:
        """The audit log verifies (every leaf, every checkpoint), and extends the last
        checkpoint seen before this round's kill."""
        check = self.audit.verify(conn)
        if not check.ok:
            return [f"audit log: {check.problem}"]
        problems = []
        if self.last_checkpoint is not None:
            try:
                self.audit.prove_extends(conn, self.last_checkpoint)
            except CheckpointRefused as exc:
                problems.append(f"audit log: {exc}")
        latest = audit_rows.latest_checkpoint(conn)
        if latest is not None:
            self.last_checkpoint = latest["note"]
        return problems

    def _rows_and_files(self, conn: sqlite3.Connection) -> list[str]:
        problems: list[str] = []
        found = {
            r["bundle_id"]: dict(r)
            for r in conn.execute(
                "SELECT bundle_id, visit_id, state, sha256, size, problem, delivered_at, erased_at "
                "FROM outbox"
            )
        }
        ledger = self.ledger
        for bundle_id, visit_id in ledger.sealed.items():
            row = found.get(bundle_id)
            if row is None:
                problems.append(f"bundle {bundle_id} was reported sealed and has no row")
            elif row["visit_id"] != visit_id:
                problems.append(
                    f"bundle {bundle_id} was sealed for visit {visit_id}, its row says {row['visit_id']}"
                )
            elif row["state"] not in (*rows.KEPT, "erased"):
                problems.append(f"bundle {bundle_id} was reported sealed and is {row['state']}")
            elif row["problem"] is not None:
                problems.append(f"bundle {bundle_id} was reported sealed and its row says {row['problem']}")
        for named, states in (
            (ledger.offered, ("offered", "acknowledged", "delivered", "erased")),
            (ledger.acknowledged, ("acknowledged", "delivered", "erased")),
            (ledger.delivered, ("delivered", "erased")),
        ):
            for bundle_id in named:
                state = found[bundle_id]["state"] if bundle_id in found else None
                if state not in states:
                    problems.append(f"bundle {bundle_id} went back to {state} (reported {states[0]})")
        per_visit: Counter[str] = Counter()
        for bundle_id, row in found.items():
            if row["state"] in rows.KEPT:
                per_visit[row["visit_id"]] += 1
                problems += self._whole(row)
            elif row["state"] == "erased" and bundle_id not in ledger.erasures_checked:
                problems += self._erasure(conn, row)
        problems += [f"visit {v} has {n} bundles kept" for v, n in per_visit.items() if n > 1]
        # No partial file under a final name, and no file the rows do not know.
        for path in self._files():
            if is_temporary(path):
                continue
            bundle_id = path.name.removesuffix(SEALED_SUFFIX).removesuffix(STATEMENT_SUFFIX)
            if bundle_id not in found:
                problems.append(f"{path.name} has no row")
            elif path.name.endswith(SEALED_SUFFIX) and found[bundle_id]["state"] == "sealing":
                problems += self._whole(found[bundle_id])  # written whole, its row not yet sealed
            elif path.name.endswith(STATEMENT_SUFFIX):
                try:
                    stated = json.loads(path.read_bytes())["statement"]["bundle_id"]
                except (ValueError, KeyError, TypeError):
                    stated = None
                if stated != bundle_id:
                    problems.append(f"{path.name} is not a whole statement of its bundle")
        aside = self.outbox / QUARANTINE
        if aside.exists():
            problems.append(f"files were moved to {QUARANTINE}/: {sorted(p.name for p in aside.iterdir())}")
        return problems

    def _files(self) -> list[Path]:
        if not self.outbox.exists():
            return []
        return [p for p in self.outbox.iterdir() if p.is_file()]

    def _whole(self, row: dict[str, Any]) -> list[str]:
        """A kept bundle's files: whole, as registered; a new one opened with the office's key."""
        bundle_id = row["bundle_id"]
        sealed, statement = bundle_paths(self.outbox, bundle_id)
        what = f"bundle {bundle_id} ({row['state']})"
        try:
            data = sealed.read_bytes()
        except FileNotFoundError:
            return [f"{what} has no sealed file"]
        if len(data) != row["size"] or hashlib.sha256(data).hexdigest() != row["sha256"]:
            return [
                f"{what}: its sealed file is {len(data)} bytes and not the one registered ({row['size']})"
            ]
        try:
            document = json.loads(statement.read_bytes())
        except FileNotFoundError:
            return [f"{what} has no statement"]
        except ValueError:
            return [f"{what}: its statement is not whole JSON"]
        stated = document.get("statement", {})
        if (stated.get("bundle_id"), stated.get("sha256"), stated.get("visit_id")) != (
            bundle_id,
            row["sha256"],
            row["visit_id"],
        ):
            return [f"{what}: its statement names another file or visit"]
        if bundle_id in self.ledger.opened:
            return []
        try:
            opened = open_bundle(data, self.office_key, self.trust, document)  # type: ignore[arg-type]
        except BundleRejected as exc:
            return [f"{what} does not open: {exc}"]
        if (opened.manifest["bundle_id"], opened.manifest["visit"]["id"]) != (bundle_id, row["visit_id"]):
            return [f"{what}: its manifest names another bundle or visit"]
        self.ledger.opened.add(bundle_id)
        return []

    def _erasure(self, conn: sqlite3.Connection, row: dict[str, Any]) -> list[str]:
        """An erased bundle: the office's signed receipt for exactly that file, and its
        retention past."""
        bundle_id = row["bundle_id"]
        stored = conn.execute(
            "SELECT central_receipt FROM outbox WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        if stored is None or stored[0] is None or row["delivered_at"] is None:
            return [f"bundle {bundle_id} was erased without the central office's receipt"]
        try:
            checked = check_receipt(json.loads(stored[0]), [], self.central)
        except ReceiptRefused as exc:
            return [f"bundle {bundle_id} was erased on a receipt the kit should have refused: {exc}"]
        if (checked.type, checked.bundle_id, checked.sha256, checked.size) != (
            "central_receipt",
            bundle_id,
            row["sha256"],
            row["size"],
        ):
            return [f"bundle {bundle_id} was erased on a receipt for another file"]
        kept_for = dt.datetime.fromisoformat(row["erased_at"]) - dt.datetime.fromisoformat(
            row["delivered_at"]
        )
        if kept_for < dt.timedelta(days=RETENTION_DAYS):
            return [f"bundle {bundle_id} was erased {kept_for} after delivery, before retention"]
        self.ledger.erasures_checked.add(bundle_id)
        return []

    def _visits(self, conn: sqlite3.Connection) -> list[str]:
        """An order is closed exactly when its visit has its one bundle (the same transaction)."""
        problems = []
        bundles: dict[str, list[str]] = {}
        for r in conn.execute("SELECT bundle_id, visit_id FROM outbox WHERE state != 'sealing'"):
            bundles.setdefault(r[1], []).append(r[0])
        # SQLite reads the bundle's id out of each record: thousands of visits after a long run.
        saved = dict(conn.execute("SELECT id, json_extract(record, '$.bundle.id') FROM visits").fetchall())
        for order_id, status in conn.execute("SELECT order_id, status FROM work_orders"):
            has = bundles.get(order_id, [])
            if status == "done" and (len(has) != 1 or saved.get(order_id) != has[0]):
                problems.append(
                    f"order {order_id} is closed; its visit has bundles {has}, saved {saved.get(order_id)}"
                )
            if status == "pending" and (has or order_id in saved):
                problems.append(f"order {order_id} is pending but its visit is saved or has bundles {has}")
        return problems

    def after_reconcile(self, report: Reconciled | dict[str, list[str]]) -> list[str]:
        found = report.to_json() if isinstance(report, Reconciled) else report
        problems = [
            f"reconciliation {name}: {found[name]}"
            for name in ("registered", "quarantined", "missing", "damaged")
            if found.get(name)
        ]
        problems += [
            f"reconciliation forgot bundle {b}, reported sealed"
            for b in found.get("forgotten", [])
            if b in self.ledger.sealed
        ]
        return problems

    def reconciled_files(self) -> list[str]:
        """After a reconciliation: no temporary file, every file with its one kept row."""
        problems = []
        conn = open_database(database_path(self.kit))
        try:
            states = dict(conn.execute("SELECT bundle_id, state FROM outbox").fetchall())
            problems += [f"bundle {b} is still 'sealing'" for b, s in states.items() if s == "sealing"]
            names = {p.name for p in self._files()}
            for name in sorted(names):
                if is_temporary(Path(name)):
                    problems.append(f"temporary file {name} left")
                    continue
                bundle_id = name.removesuffix(SEALED_SUFFIX).removesuffix(STATEMENT_SUFFIX)
                if states.get(bundle_id) not in rows.KEPT:
                    problems.append(f"{name}: its bundle is {states.get(bundle_id)}, not kept")
                elif name.endswith(STATEMENT_SUFFIX) and f"{bundle_id}{SEALED_SUFFIX}" not in names:
                    problems.append(f"{name} has no sealed file")
            for bundle_id, state in states.items():
                if state in rows.KEPT and f"{bundle_id}{SEALED_SUFFIX}" not in names:
                    problems.append(f"bundle {bundle_id} ({state}) has no sealed file")
        finally:
            conn.close()
        return problems


def take_reports(lines: list[Line], ledger: Ledger, run: CrashRun) -> None:
    for line in lines:
        word, rest = (line.words[0], line.words[1:]) if line.words else ("", [])
        if word == "sealed":
            ledger.sealed[rest[0]] = rest[1]
        elif word == "offered":
            ledger.offered.update(rest)
        elif word == "acknowledged":
            ledger.acknowledged.add(rest[0])
        elif word == "delivered":
            ledger.delivered.add(rest[0])
        else:
            continue
        run.reported[word] += len(rest) if word == "offered" else 1


def prepare(base: Path) -> tuple[Path, Path, Path]:
    """A new kit (simulation credentials, a trusted laptop and the office's signing key)
    and the sample captures, made once: the kit's data_dir, the office's folder, the captures."""
    if base.exists() and any(base.iterdir()):
        raise ValueError(f"{base} is not empty: a run starts from a new kit")
    kit, office = base / "kit", base / "office"
    with open_rig(kit, office, retention_days=RETENTION_DAYS) as rig:
        laptop_signer(rig, LAPTOP)
        central_signer(rig)
        rig.outbox.reconcile(rig.conn)
    captures = base / "captures.pickle"
    captures.write_bytes(pickle.dumps(sample_captures()))
    return kit, office, captures


def run_rounds(
    rounds: int,
    seed: int,
    data_dir: Path,
    broken: str = "",
    targets: dict[str, float] | None = None,
    stop_at_failure: bool = False,
    progress: Callable[[CrashRun], None] | None = None,
    minutes: float | None = None,
) -> CrashRun:
    """``rounds`` children killed with SIGKILL on the kit in ``data_dir`` (new, or empty),
    the invariants checked after each; ``broken`` names a broken outbox (BROKEN). With
    ``minutes``, no round starts after that long; an interrupt (Ctrl-C, SIGTERM) ends the
    run too: either way the rounds done are what is returned."""
    started = time.monotonic()
    rng = random.Random(seed)
    run = CrashRun(seed=seed, planned=rounds)
    targets = targets or TARGETS
    lengths = dict(PHASE_SECONDS)
    ledger = Ledger()
    kit, office, captures = prepare(Path(data_dir))
    checker = Checker(kit, office, ledger)
    warm = Warm(kit, office, captures, broken, Path(data_dir) / "children.log")
    try:
        target = rng.choices(list(targets), weights=list(targets.values()))[0]
        for number in range(1, rounds + 1):
            if minutes is not None and time.monotonic() - started > 60 * minutes:
                run.stopped = f"the {minutes:g} minutes given were over"
                break
            aimed = target
            failures = play_round(warm, number, rng, aimed, lengths, ledger, run, checker)
            run.targets[aimed] += 1
            # The next round: the child's start-up has leftovers to reconcile, and a kill
            # may land in it; otherwise the parent reconciles (the daemon restarting)
            # and checks what a reconciliation must leave.
            target = rng.choices(list(targets), weights=list(targets.values()))[0]
            if target != "reconcile" and not failures:
                with open_rig(kit, office, retention_days=RETENTION_DAYS) as rig:
                    report = rig.outbox.reconcile(rig.conn)
                count_reconciled(report.to_json(), run)
                failures += checker.after_reconcile(report) + checker.reconciled_files()
            run.failures += [f"round {number} ({aimed}): {f}" for f in failures]
            run.rounds = number
            run.seconds = time.monotonic() - started
            if progress is not None:
                progress(run)
            if failures and stop_at_failure:
                break
    except KeyboardInterrupt:
        run.stopped = "interrupted"  # the round under way is not counted
    finally:
        warm.close()
    run.seconds = time.monotonic() - started
    return run


def count_reconciled(found: dict[str, list[str]], run: CrashRun) -> None:
    for name, value in found.items():
        run.reconciled[name] += len(value)


def play_round(
    warm: Warm,
    number: int,
    rng: random.Random,
    target: str,
    lengths: dict[str, float],
    ledger: Ledger,
    run: CrashRun,
    checker: Checker,
) -> list[str]:
    """One child, killed a random moment into ``target``; the failures the checks found."""
    warm.send(f"round {number} {rng.getrandbits(32)} {target}")
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    lines = warm.read_until(lambda line: line.words[:1] in (["child"], ["ended"]), deadline)
    if not lines or lines[-1].words[:1] != ["child"]:
        return [f"no child started: {[' '.join(x.words) for x in lines]} {warm.errors()}"]
    pid = warm.child = int(lines[-1].words[1])
    gone = ("ended", "error")
    if target == "anywhere":
        kill_at = lines[-1].at + rng.uniform(0, ANYWHERE_SECONDS)
        lines += warm.read_until(lambda line: line.words[0] in gone, kill_at)
    else:
        lines += warm.read_until(
            lambda line: line.words[:2] == ["aim", target] or line.words[0] in gone, deadline
        )
        kill_at = lines[-1].at + rng.uniform(0, 1.25 * lengths[target])
    if lines[-1].words[0] not in gone:
        time.sleep(max(0.0, kill_at - time.monotonic()))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended by itself: said below
    if lines[-1].words[0] != "ended":
        lines += warm.read_until(lambda line: line.words[0] == "ended", time.monotonic() + ROUND_TIMEOUT_S)
    if lines[-1].words[0] != "ended":
        raise RuntimeError(f"child {pid} did not end after SIGKILL: {warm.errors()}")
    warm.child = None
    child_lines = lines[:-1]
    take_reports(child_lines, ledger, run)
    for phase, seconds in phase_lengths(child_lines).items():
        lengths[phase] = 0.8 * lengths.get(phase, seconds) + 0.2 * seconds
    status = int(lines[-1].words[2])
    errors = [" ".join(x.words) for x in child_lines if x.words[0] == "error"]
    failures = []
    if errors or not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        failures.append(f"child {pid} ended by itself (status {status}): {errors}")
    else:
        phase, step = where_it_landed(child_lines)
        run.kills[phase] += 1
        run.steps[step] += 1
    failures += checker.after_kill()
    for line in child_lines:
        if line.words[0] == "reconciled":
            found = json.loads(" ".join(line.words[1:]))
            count_reconciled(found, run)
            failures += checker.after_reconcile(found)
    return failures


# --- the command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.outbox_crash", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="kill children at random and check the outbox after each")
    run.add_argument("--rounds", type=int, default=200)
    run.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    run.add_argument(
        "--dir", type=Path, default=None, help="a new or empty folder (default: a temporary one)"
    )
    run.add_argument("--broken", choices=BROKEN, default="")
    run.add_argument("--stop-at-failure", action="store_true")
    run.add_argument("--minutes", type=float, default=None, help="start no round after this long")
    for name, text in (
        ("child", "one child, by hand"),
        ("children", "the warm process run_rounds forks from"),
    ):
        one = commands.add_parser(name, help=text)
        one.add_argument("--dir", type=Path, required=True, help="the kit's data_dir")
        one.add_argument("--office", type=Path, required=True)
        one.add_argument("--captures", type=Path, default=None)
        one.add_argument("--broken", choices=BROKEN, default="")
        if name == "child":
            one.add_argument("--round", type=int, default=1)
            one.add_argument("--seed", type=int, default=1)
            one.add_argument("--target", choices=[*TARGETS], default="anywhere")
    args = parser.parse_args(argv)
    # Reconciliations' warnings are the harness's daily bread; a failure is printed as one.
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    if args.command == "child":
        return child_main(args)
    if args.command == "children":
        return children_main(args)
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    base = args.dir or Path(tempfile.mkdtemp(prefix="outbox-crash-"))

    def progress(done: CrashRun) -> None:
        if done.rounds % 100 == 0:
            print(
                f"{done.rounds} rounds, {done.seconds:.0f} s, {len(done.failures)} failures; kills: "
                + ", ".join(f"{k} {n}" for k, n in sorted(done.kills.items())),
                file=sys.stderr,
                flush=True,
            )

    # SIGTERM (kill, a timeout) ends the run like Ctrl-C: the rounds done are summed up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = run_rounds(
        args.rounds,
        seed,
        base,
        args.broken,
        stop_at_failure=args.stop_at_failure,
        progress=progress,
        minutes=args.minutes,
    )
    print(result.summary())
    print(f"kit: {base}")
    if not result.failures and args.dir is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
