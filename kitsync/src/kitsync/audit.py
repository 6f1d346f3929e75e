"""The kit's audit log, checked at every sync: its history only grew since this laptop last looked.

Its one job: fetch the kit's latest signed checkpoint (``GET /api/v1/audit/checkpoint``), open
it with the audit note key pinned at pairing (a note no pinned key signed is refused), and
compare it with the last checkpoint this laptop trusts: a larger log must come with an
RFC 9162 consistency proof (``GET /api/v1/audit/proof/consistency``) that verifies against
both roots, a log of the same size must have the same root, and a smaller one never passes.
A checkpoint that passes becomes the trusted one (the first one is trusted as it comes); one
that does not is recorded in the ledger with both notes, the reason and when, and the trusted
one stays. Nothing here stops a sync: bundles are signed and sealed on their own and the
office needs them; the check's result says what the command tells the technician.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kitformats.audit.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint
from kitformats.audit.merkle import ProofFailed, verify_consistency
from kitformats.audit.note import MalformedKey, MalformedNote, NoteRefused, VerifierKey, parse_verifier_key
from kitformats.errors import KitError

from kitsync.ledger import Ledger, TrustedCheckpoint
from kitsync.link import KitLink, json_or_none
from kitsync.places import KitFiles

CHECKPOINT_PATH = "/api/v1/audit/checkpoint"
CONSISTENCY_PATH = "/api/v1/audit/proof/consistency"
# What a check found (the ledger's and ``kit-sync status --json``'s words).
CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
NOT_CHECKED = "not checked"
NO_KEY_PINNED = (
    "no audit note key was pinned at pairing (the kit had none then): pair again to check its audit log"
)


class HistoryRewritten(KitError):
    """The kit's checkpoint does not show that its log extends the one this laptop trusts."""


class CannotCheck(KitError):
    """The kit did not show its checkpoint or proof this time (an error answer, an older kitd),
    or the pinned key cannot be read: the log is not checked, nothing is concluded."""


@dataclass(frozen=True)
class AuditCheck:
    """What one sync found of the kit's audit log: ``result`` is one of CONSISTENT,
    INCONSISTENT and NOT_CHECKED; ``size`` the trusted checkpoint's after it (None: none yet)."""

    kit_id: str
    result: str
    reason: str | None = None
    size: int | None = None

    def to_json(self, at: str) -> dict[str, Any]:
        return {"at": at, "result": self.result, "reason": self.reason, "size": self.size}

    def warning(self) -> str | None:
        """The one line the technician must see, or None when there is nothing to say."""
        if self.result == INCONSISTENT:
            kept = (
                f"the last trusted checkpoint ({self.size} entries) is kept"
                if self.size is not None
                else "no checkpoint of it is trusted"
            )
            return (
                f"WARNING: kit {self.kit_id}'s audit log is INCONSISTENT: {self.reason}; {kept} and both "
                "checkpoints are recorded in the ledger (kit-sync status); syncing goes on, as each "
                "bundle is signed and sealed on its own: report this kit to the office"
            )
        if self.result == NOT_CHECKED and self.reason != NO_KEY_PINNED:
            return f"kit {self.kit_id}'s audit log was not checked this time: {self.reason}"
        return None


def pinned_note_key(files: KitFiles) -> VerifierKey | None:
    """The kit's audit note key pinned at pairing, None if the kit gave none; CannotCheck when
    the file is there but unreadable."""
    try:
        text = files.audit_note_key.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CannotCheck(f"{files.audit_note_key}: cannot read it: {exc}") from None
    try:
        return parse_verifier_key(text)
    except MalformedKey as exc:
        raise CannotCheck(f"{files.audit_note_key}: {exc}") from None


def extend_trust(
    trusted: TrustedCheckpoint | None,
    note: bytes,
    key: VerifierKey,
    prove: Callable[[int, int], Sequence[bytes]],
) -> Checkpoint:
    """The kit's checkpoint in ``note`` once it is shown to extend ``trusted`` (any checkpoint
    the pinned key signed, when none is trusted yet); :class:`HistoryRewritten` says why not.
    ``prove(old, new)`` asks the kit for the consistency proof's hashes."""
    try:
        new = open_checkpoint(note, [key])
    except NoteRefused as exc:
        raise HistoryRewritten(
            f"its checkpoint is not signed by the audit note key pinned at pairing ({exc})"
        ) from None
    except (MalformedNote, MalformedCheckpoint) as exc:
        raise HistoryRewritten(f"its checkpoint cannot be read ({exc})") from None
    # The kit names its note key after its log: a note of another log proves nothing of this one.
    if new.origin != key.name:
        raise HistoryRewritten(f"its checkpoint is of the log {new.origin!r}, not {key.name!r}")
    if trusted is None:
        return new
    old = f"the {trusted.size} entries this laptop trusted (checked {trusted.checked_at})"
    if new.size < trusted.size:
        raise HistoryRewritten(f"its log has {new.size} entries, fewer than {old}: entries were removed")
    if new.size == trusted.size:
        if new.root_hash != trusted.root_hash:
            raise HistoryRewritten(f"its log of {new.size} entries has another root hash than {old}")
        return new
    try:
        verify_consistency(
            trusted.size, new.size, trusted.root_hash, new.root_hash, prove(trusted.size, new.size)
        )
    except ProofFailed as exc:
        raise HistoryRewritten(f"its log of {new.size} entries does not extend {old}: {exc}") from None
    return new


def consistency_proof(link: KitLink, old: int, new: int) -> list[bytes]:
    """The kit's proof that its tree of ``new`` entries extends the one of ``old``: its hashes.
    CannotCheck when the kit refuses it; HistoryRewritten when it answers no proof."""
    status, answer = link.call("GET", f"{CONSISTENCY_PATH}?old={old}&new={new}")
    if status != 200:
        raise CannotCheck(
            str(link.refusal(f"the consistency proof from {old} to {new} entries", status, answer))
        )
    hashes = answer.get("proof") if isinstance(answer, dict) else None
    if (
        not isinstance(hashes, list)
        or not all(isinstance(h, str) for h in hashes)
        or (answer.get("old"), answer.get("new")) != (old, new)
    ):
        raise HistoryRewritten(f"its answer to the consistency proof from {old} to {new} entries is no proof")
    try:
        return [base64.b64decode(h, validate=True) for h in hashes]
    except (binascii.Error, ValueError):
        raise HistoryRewritten(
            f"its consistency proof from {old} to {new} entries has a hash that is not base64"
        ) from None


def check_audit_log(
    link: KitLink, files: KitFiles, ledger: Ledger, now: dt.datetime | None = None
) -> AuditCheck:
    """Check the kit's audit log against the checkpoint this laptop trusts, and record what was
    found. The link's errors (unreachable, not paired, another kit certificate) pass: they end
    the sync anyway. A kit that answers with an error leaves its log not checked this time,
    the trusted checkpoint as it was."""
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    trusted = ledger.trusted_checkpoint()
    trusted_size = None if trusted is None else trusted.size
    note = b""
    try:
        key = pinned_note_key(files)
        if key is None:
            check = AuditCheck(files.kit_id, NOT_CHECKED, NO_KEY_PINNED, trusted_size)
        else:
            status, note = link.fetch_text(CHECKPOINT_PATH)
            if status != 200:
                raise CannotCheck(str(link.refusal("the checkpoint", status, json_or_none(note))))
            new = extend_trust(trusted, note, key, lambda old, size: consistency_proof(link, old, size))
            text = note.decode("utf-8")
            if ledger.trust_checkpoint(trusted, new.size, new.root_hash, text, at):
                check = AuditCheck(files.kit_id, CONSISTENT, None, new.size)
            else:
                reason = "another kit-sync checked the kit at the same time: checked again next sync"
                check = AuditCheck(files.kit_id, NOT_CHECKED, reason, trusted_size)
    except CannotCheck as exc:
        check = AuditCheck(files.kit_id, NOT_CHECKED, str(exc), trusted_size)
    except HistoryRewritten as exc:
        shown = note.decode("utf-8", errors="replace")
        ledger.record_inconsistency(str(exc), None if trusted is None else trusted.note, shown, at)
        check = AuditCheck(files.kit_id, INCONSISTENT, str(exc), trusted_size)
    ledger.set_value("audit_check", check.to_json(at))
    return check
