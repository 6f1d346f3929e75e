"""The kit's audit log as a whole: its note key, signed checkpoints, proofs and its check.

Its one job: :class:`AuditLog` signs checkpoints of the entries the stores append
(kitd.store.audit) — a C2SP tlog-checkpoint in a C2SP signed note, Ed25519, the key a
0600 file ``data_dir/keys/audit-note.key`` (secure elements hold only P-256 keys) — and
answers inclusion and consistency proofs (RFC 9162) over them; :meth:`AuditLog.verify`
recomputes every entry's leaf and the tree at every checkpoint, naming the first entry or
checkpoint that does not hold; :meth:`AuditLog.prove_extends` checks that the log now
extends an older checkpoint, as a laptop does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kitformats.audit.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint, sign_checkpoint
from kitformats.audit.merkle import (
    ProofFailed,
    consistency_proof,
    frontier_append,
    frontier_root,
    inclusion_proof,
    range_hash_from_leaves,
    tree_hash,
    verify_consistency,
)
from kitformats.audit.note import (
    MalformedKey,
    MalformedNote,
    NoteRefused,
    SignerKey,
    VerifierKey,
    generate_signer_key,
    parse_signer_key,
)

from kitd.clock import clock_of
from kitd.durable_files import make_directory, write_exclusively
from kitd.errors import KitError
from kitd.store import audit as store
from kitd.store.audit import content_leaf
from kitd.store.database import transaction

NOTE_KEY_FILE = "audit-note.key"
# The most entries one request may ask for.
MAX_ENTRIES = 1000


class AuditProblem(KitError):
    """The audit log cannot do what was asked (a bad range, a missing or broken key);
    ``field`` names the request's parameter that was out of range, if one was."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CheckpointRefused(KitError):
    """An older checkpoint that is not this kit's, or that the log does not extend."""


@dataclass
class AuditCheck:
    """What :meth:`AuditLog.verify` found: ``problem`` names the first thing wrong."""

    entries: int
    checkpoints: int
    problem: str | None = None
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "problem": self.problem,
        }


def audit_origin(kit_id: str) -> str:
    """The log's name, in its checkpoints and as its note key's name."""
    return f"e-ktp-kit/{kit_id}/audit"


class AuditLog:
    """The audit log of the kit whose keys are in ``keys_dir``."""

    def __init__(self, keys_dir: Path, kit_id: str) -> None:
        self.keys_dir = Path(keys_dir)
        self.origin = audit_origin(kit_id)
        # The tree as this process has seen it grow (its right edge): a checkpoint reads only
        # the entries added since the last one, and never signs a history rewritten meanwhile.
        self._frontier: tuple[bytes, ...] = ()
        self._seen = 0
        self._checked_start = False

    @property
    def key_path(self) -> Path:
        return self.keys_dir / NOTE_KEY_FILE

    def signer(self) -> SignerKey:
        """The note key (AuditProblem if there is none: :meth:`checkpoint` makes the first)."""
        path = self.key_path
        try:
            key = parse_signer_key(path.read_text().strip())
        except (OSError, MalformedKey) as exc:
            raise AuditProblem(f"the audit note key {path}: {exc}") from None
        if key.name != self.origin:
            raise AuditProblem(f"the audit note key {path} is named {key.name!r}, not {self.origin!r}")
        return key

    def verifier(self) -> VerifierKey:
        return self.signer().verifier

    def verifier_if_any(self) -> str | None:
        """The note key's public half as a verifier key string, or None if none was made yet."""
        if not self.key_path.exists():
            return None
        return str(self.verifier())

    # --- checkpoints ---------------------------------------------------------------------

    def _make_key(self, conn: sqlite3.Connection) -> None:
        """The kit's first note key (0600), never one in place of a lost key: a laptop pins it,
        and the checkpoints signed before would no longer verify."""
        if store.latest_checkpoint(conn) is not None:
            raise AuditProblem(
                f"the audit note key {self.key_path} is missing but checkpoints were signed with it: "
                "restore it from the kit's backup; not signing with a new one"
            )
        make_directory(self.keys_dir)
        # Its first checkpoint, signed next, is the first thing it vouches for.
        write_exclusively(self.key_path, (generate_signer_key(self.origin) + "\n").encode(), 0o600)

    def checkpoint(self, conn: sqlite3.Connection, now: dt.datetime | None = None) -> dict[str, Any]:
        """A signed checkpoint of the log as it is (the latest one if nothing was added since)."""
        if not self.key_path.exists():
            self._make_key(conn)
        size = store.log_size(conn)
        latest = store.latest_checkpoint(conn)
        if latest is not None and latest["size"] == size:
            return latest
        root = self._grown_root(conn, size, latest)
        note = sign_checkpoint(Checkpoint(self.origin, size, root), [self.signer()])
        store.record_checkpoint(conn, size, root, note, now or clock_of(conn).now())
        return store.latest_checkpoint(conn) or {}

    def _grown_root(self, conn: sqlite3.Connection, size: int, latest: dict[str, Any] | None) -> bytes:
        """The root of the first ``size`` entries, the frontier advanced over the new ones only.
        The first time, the whole log is read and must still hash to its latest checkpoint:
        a kit never signs a history that no longer extends what it signed before."""
        if self._seen > size or (latest is not None and latest["size"] > size):
            signed = max(self._seen, latest["size"] if latest is not None else 0)
            raise AuditProblem(
                f"the audit log has {size} entries, fewer than the {signed} signed before: entries were "
                "deleted; not signing"
            )
        frontier, seen = self._frontier, self._seen
        for seq, leaf in store.leaf_hashes_between(conn, seen, size):
            if seq != seen:
                raise AuditProblem(f"the audit log has no entry {seen}: entries were deleted; not signing")
            frontier, _ = frontier_append(frontier, seen, leaf)
            seen += 1
            if not self._checked_start and latest is not None and seen == latest["size"]:
                if frontier_root(frontier) != latest["root_hash"]:
                    raise AuditProblem(
                        f"the audit log's first {seen} entries no longer hash to its last checkpoint: "
                        "it was rewritten; not signing (kitctl audit verify names where)"
                    )
        if seen != size:
            raise AuditProblem(f"the audit log has {seen} entries in sequence, not {size}; not signing")
        # The start's comparison was made (the loop passed the last checkpoint's size, checked
        # above to be within the log), or there was nothing signed to compare with.
        self._frontier, self._seen, self._checked_start = frontier, seen, True
        return frontier_root(frontier)

    def summary(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """How many entries, and the latest checkpoint's size and time."""
        latest = store.latest_checkpoint(conn)
        return {
            "entries": store.log_size(conn),
            "checkpoint_size": None if latest is None else latest["size"],
            "checkpoint_at": None if latest is None else latest["signed_at"],
        }

    def latest(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """The latest checkpoint, signed now if there is none yet."""
        return store.latest_checkpoint(conn) or self.checkpoint(conn)

    # --- reading and proofs --------------------------------------------------------------

    def entries(self, conn: sqlite3.Connection, start: int, count: int) -> list[dict[str, Any]]:
        if start < 0:
            raise AuditProblem(f"from {start}: must be 0 or more", "from")
        if not 1 <= count <= MAX_ENTRIES:
            raise AuditProblem(f"count {count}: must be 1-{MAX_ENTRIES}", "count")
        return store.entries(conn, start, count)

    def _size_checked(self, conn: sqlite3.Connection, size: int, what: str) -> None:
        current = store.log_size(conn)
        if not 0 <= size <= current:
            raise AuditProblem(f"{what} {size}: the log has {current} entries", what)

    def inclusion(self, conn: sqlite3.Connection, index: int, size: int) -> dict[str, Any]:
        """Entry ``index``'s leaf hash and its path to the root of the tree of ``size`` entries."""
        self._size_checked(conn, size, "size")
        if not 0 <= index < size:
            raise AuditProblem(f"index {index} is not in a tree of {size} entries", "index")
        leaves = store.leaf_hashes(conn, size)
        proof = inclusion_proof(index, size, range_hash_from_leaves(leaves))
        return {"index": index, "size": size, "leaf_hash": leaves[index], "proof": proof}

    def consistency(self, conn: sqlite3.Connection, old: int, new: int) -> dict[str, Any]:
        """The proof that the tree of ``new`` entries extends the one of ``old``."""
        self._size_checked(conn, new, "new")
        if not 0 <= old <= new:
            raise AuditProblem(f"old {old} must be 0 to new ({new})", "old")
        leaves = store.leaf_hashes(conn, new)
        return {"old": old, "new": new, "proof": consistency_proof(old, new, range_hash_from_leaves(leaves))}

    # --- checks --------------------------------------------------------------------------

    def verify(self, conn: sqlite3.Connection, verifier: VerifierKey | None = None) -> AuditCheck:
        """Recompute every entry's leaf from its content and the tree at every checkpoint,
        each checkpoint's signature checked with ``verifier`` (the kit's own by default)."""
        # A check makes no key (signer() would): with none, no checkpoint is vouched for.
        if verifier is None and self.key_path.exists():
            verifier = self.verifier()
        rows = store.stored_rows(conn)
        marks = store.checkpoints(conn)
        check = AuditCheck(len(rows), len(marks))
        by_size: dict[int, list[dict[str, Any]]] = {}
        for mark in marks:
            by_size.setdefault(mark["size"], []).append(mark)
        for mark in marks:
            if verifier is None:
                return self._failed(
                    check,
                    f"checkpoint of {mark['size']} entries: no audit note key ({self.key_path}) to check it",
                )
            try:
                opened = open_checkpoint(mark["note"], [verifier])
            except (MalformedNote, MalformedCheckpoint, NoteRefused) as exc:
                return self._failed(check, f"checkpoint of {mark['size']} entries: {exc}")
            if (
                opened.origin != self.origin
                or opened.size != mark["size"]
                or opened.root_hash != mark["root_hash"]
            ):
                return self._failed(check, f"checkpoint of {mark['size']} entries: its note says otherwise")
            if mark["size"] > len(rows):
                return self._failed(
                    check,
                    f"checkpoint of {mark['size']} entries: the log has only {len(rows)}: "
                    "entries were deleted",
                )
        frontier: tuple[bytes, ...] = ()
        for position, (document, stored) in enumerate(rows):
            if document["seq"] != position:
                return self._failed(
                    check,
                    f"entry {position}: its sequence is {document['seq']}: an entry before it was deleted "
                    "or one inserted",
                )
            leaf = content_leaf(document)
            if leaf != stored:
                return self._failed(
                    check, f"entry {position} ({document['action']}): its content was changed"
                )
            frontier, _ = frontier_append(frontier, position, leaf)
            for mark in by_size.get(position + 1, ()):
                if frontier_root(frontier) != mark["root_hash"]:
                    return self._failed(
                        check,
                        f"checkpoint of {position + 1} entries (signed {mark['signed_at']}): the entries "
                        f"0-{position} no longer hash to its root: an entry was rewritten, inserted or moved",
                    )
        for mark in by_size.get(0, ()):
            if tree_hash([]) != mark["root_hash"]:
                return self._failed(check, "checkpoint of 0 entries: not the empty tree's hash")
        return check

    @staticmethod
    def _failed(check: AuditCheck, problem: str) -> AuditCheck:
        check.problem = problem
        return check

    def prove_extends(
        self, conn: sqlite3.Connection, old_note: str | bytes, verifier: VerifierKey | None = None
    ) -> dict[str, Any]:
        """Check, as a laptop does, that the log now extends the checkpoint ``old_note``: the
        note is this kit's, and a consistency proof from its size to the log's size verifies
        against the two roots. CheckpointRefused says why not."""
        if verifier is None:
            if not self.key_path.exists():  # a check makes no key
                raise CheckpointRefused(f"no audit note key ({self.key_path}) to check the older checkpoint")
            verifier = self.verifier()
        try:
            old = open_checkpoint(old_note, [verifier])
        except (MalformedNote, MalformedCheckpoint, NoteRefused) as exc:
            raise CheckpointRefused(f"the older checkpoint: {exc}") from None
        if old.origin != self.origin:
            raise CheckpointRefused(f"the older checkpoint is of {old.origin!r}, not {self.origin!r}")
        # The leaves of the entries as they read now, not the hashes stored beside them: an
        # entry rewritten with its old leaf hash left in place must not pass.
        leaves = [content_leaf(document) for document, _ in store.stored_rows(conn)]
        if old.size > len(leaves):
            raise CheckpointRefused(
                f"the log has {len(leaves)} entries, fewer than the older checkpoint's {old.size}"
            )
        proof = consistency_proof(old.size, len(leaves), range_hash_from_leaves(leaves))
        new_root = tree_hash(leaves)
        try:
            verify_consistency(old.size, len(leaves), old.root_hash, new_root, proof)
        except ProofFailed as exc:
            raise CheckpointRefused(f"the log does not extend the older checkpoint: {exc}") from None
        return {"old_size": old.size, "new_size": len(leaves), "proof_hashes": len(proof)}


def proof_json(hashes: Sequence[bytes]) -> list[str]:
    """Hashes as the API sends them: standard base64."""
    return [base64.b64encode(h).decode("ascii") for h in hashes]


def record_start(conn: sqlite3.Connection, version: str, settings: dict[str, Any]) -> None:
    """The daemon started (an entry), and its configuration changed since the last start
    (another, naming the keys), as a digest of every setting: the audit shows both."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    last = store.find_entries(conn, action="daemon_started")
    previous = last[-1]["details"] if last else None
    with transaction(conn):
        if previous is not None and previous.get("config_sha256") != digest:
            before = previous.get("settings", {})
            changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
            store.append_entry(conn, store.SYSTEM, "config_changed", {"keys": changed})
        store.append_entry(
            conn,
            store.SYSTEM,
            "daemon_started",
            {"version": version, "config_sha256": digest, "settings": settings},
        )
