"""The durable outbox (kitd.services.outbox) on real files and a real SQLite database.

Its one job: check the outbox's own rules without mocks — receipts (valid, forged, for another
file, replayed, from an unknown or revoked key, malformed), trusted laptops, start-up
reconciliation, erasure, storing a visit's bundle, the summary and offers — through the rig
of hil.outbox_rig (the kit's real database, simulation credentials, real sealed bundles).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kitformats.bundle_statements import bundle_statement
from kitformats.cms import sign_content
from kitformats.receipts import receipt_fields
from kitformats.signing import FileSigner
from kitformats.statements import canonical_bytes, sign_statement

from hil.credentials import foreign_ca_signer, sign_request, signing_credential
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
from hil.sample_visit import SampleVisit
from kitd.crypto.bundle import SealedBundle, bundle_paths, statement_bytes, write_bundle
from kitd.durable_files import temporary_name, write_atomically
from kitd.services.outbox import QUARANTINE, BundleNotFound, DiskReserve, OutboxError, ReceiptsPartlyTaken
from kitd.store import audit as audit_store
from kitd.store import outbox as rows
from kitd.store.database import database_path, open_database
from kitd.store.visits import load_visit, save_visit

LAPTOP = "lap-1"


@dataclass
class Captures:
    """One visit's captures, and the bundles sealed of them by visit id (and copy), kept for
    the whole module: the captures take seconds to make and a seal a quarter of one, and
    every rig of this process has the same simulation credentials, so a bundle sealed in one
    rig is a whole, verifiable bundle of the kit in any other."""

    visit: SampleVisit
    sealed: dict[tuple[str, str, int], SealedBundle] = field(default_factory=dict)

    def seal(
        self, rig: OutboxRig, record: dict[str, Any], order: dict[str, Any], copy: int = 0
    ) -> SealedBundle:
        """``record`` sealed as the kit seals it at finish (``copy`` > 0: another bundle of it)."""
        key = (record["id"], record["order_id"], copy)
        if key not in self.sealed:
            self.sealed[key] = seal_visit(rig, record, order, self.visit)
        return self.sealed[key]


@pytest.fixture(scope="module")
def sample() -> Captures:
    return Captures(sample_captures())


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[OutboxRig]:
    with open_rig(tmp_path / "data", tmp_path / "office") as opened:
        yield opened


@pytest.fixture()
def laptop(rig: OutboxRig) -> FileSigner:
    return laptop_signer(rig, LAPTOP)


@pytest.fixture()
def central(rig: OutboxRig) -> FileSigner:
    return central_signer(rig)


# --- helpers -------------------------------------------------------------------------------


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def sealed_row(rig: OutboxRig, sample: Captures, name: str = "V1") -> dict[str, Any]:
    """A visit sealed and stored as the kit does at finish: its outbox row."""
    record, order = injected_visit(rig.conn, sample.visit, name)
    bundle = sample.seal(rig, record, order)
    saved = rig.outbox.store(rig.conn, bundle, finished_record(record, bundle), now())
    assert saved["state"] == "finished"
    row = rows.bundle_row(rig.conn, saved["bundle"]["id"])
    assert row is not None and row["state"] == "sealed"
    return row


def register(rig: OutboxRig, bundle: SealedBundle, record: dict[str, Any]) -> None:
    """The registration store() makes before it writes the files (the row says 'sealing')."""
    rows.register_sealing(
        rig.conn,
        bundle.bundle_id,
        finished_record(record, bundle),
        hashlib.sha256(bundle.sealed).hexdigest(),
        len(bundle.sealed),
        bundle.statement["statement"]["created_at"],
    )


def write_files(rig: OutboxRig, bundle: SealedBundle, files: str) -> None:
    """Leave ``bundle``'s files as an interruption could: 'whole', 'statement only',
    'truncated' (the sealed file shorter than registered) or 'absent'."""
    sealed, statement = bundle_paths(rig.outbox.directory, bundle.bundle_id)
    rig.outbox.directory.mkdir(parents=True, exist_ok=True)
    if files in ("whole", "truncated"):
        write_bundle(rig.outbox.directory, bundle)
    if files == "truncated":
        os.truncate(sealed, len(bundle.sealed) // 2)
    if files == "statement only":
        write_atomically(statement, statement_bytes(bundle.statement))


def interrupted_sealing(
    rig: OutboxRig, sample: Captures, name: str, files: str
) -> tuple[SealedBundle, dict[str, Any], dict[str, Any]]:
    """A finish cut short after the bundle was registered: the visit in review, its order
    pending, the row 'sealing', the files as ``files`` says. The bundle, record and order."""
    record, order = injected_visit(rig.conn, sample.visit, name)
    save_visit(rig.conn, dict(record, state="review"))
    bundle = sample.seal(rig, record, order)
    register(rig, bundle, record)
    write_files(rig, bundle, files)
    return bundle, record, order


def stray_bundle(rig: OutboxRig, sample: Captures, name: str) -> SealedBundle:
    """A whole sealed bundle of this kit written to the outbox with no row at all."""
    record, order = injected_visit(rig.conn, sample.visit, name)
    bundle = sample.seal(rig, record, order)
    write_bundle(rig.outbox.directory, bundle)
    return bundle


def snapshot(rig: OutboxRig) -> dict[str, list[dict[str, Any]]]:
    """Every row the outbox's work touches."""
    return {
        table: [dict(r) for r in rig.conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
        for table in ("outbox", "laptops", "visits", "work_orders")
    }


def outbox_files(rig: OutboxRig) -> dict[str, bytes]:
    """Every file under the outbox (quarantine included), by path inside it."""
    root = rig.outbox.directory
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def take(rig: OutboxRig, *documents: Any, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    return rig.outbox.take_receipts(rig.conn, list(documents), at)


def refusal(rig: OutboxRig, document: Any, at: dt.datetime | None = None) -> str:
    """The reason ``document`` is refused; checks that no row changed."""
    before = snapshot(rig)
    [result] = take(rig, document, at=at)
    assert result["result"] == "refused", result
    assert snapshot(rig) == before
    return result["reason"]


def state_of(rig: OutboxRig, bundle_id: str) -> str:
    row = rows.bundle_row(rig.conn, bundle_id)
    assert row is not None
    return row["state"]


def signed_over_by(document: dict[str, Any], forger: FileSigner) -> dict[str, Any]:
    """``document`` with its signature value made by ``forger``'s key instead, over the same
    signed attributes; the SignedData still names and carries the genuine signer's certificate.
    (sign_content checks a key against its certificate, so a forgery is made by hand.)"""
    info = asn1_cms.ContentInfo.load(base64.b64decode(document["signature"]))
    signer_info = info["content"]["signer_infos"][0]
    signed_attributes = b"\x31" + signer_info["signed_attrs"].dump()[1:]  # signed as a SET OF
    signer_info["signature"] = forger.key.sign(signed_attributes, ec.ECDSA(hashes.SHA256()))
    return dict(document, signature=base64.b64encode(info.dump(force=True)).decode())


# --- receipts: valid -----------------------------------------------------------------------


def test_a_laptop_receipt_acknowledges_a_sealed_bundle(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    document = receipt(laptop, "laptop_receipt", row, LAPTOP)
    [result] = take(rig, document)
    assert result == {
        "index": 0,
        "bundle_id": row["bundle_id"],
        "type": "laptop_receipt",
        "result": "accepted",
        "state": "acknowledged",
    }
    shown = rig.outbox.bundle(rig.conn, row["bundle_id"])
    assert shown["acknowledged_by"] == LAPTOP and shown["acknowledged_at"]
    assert shown["laptop_receipt"] == document  # kept as the laptop signed it


def test_a_laptop_receipt_acknowledges_an_offered_bundle(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    rig.outbox.offer(rig.conn, LAPTOP, now())
    assert state_of(rig, row["bundle_id"]) == "offered"
    [result] = take(rig, receipt(laptop, "laptop_receipt", row, LAPTOP))
    assert (result["result"], result["state"]) == ("accepted", "acknowledged")


def test_a_central_receipt_delivers_an_acknowledged_bundle(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    take(rig, receipt(laptop, "laptop_receipt", row, LAPTOP))
    document = receipt(central, "central_receipt", row, "central office")
    [result] = take(rig, document)
    assert (result["result"], result["state"], result["type"]) == ("accepted", "delivered", "central_receipt")
    shown = rig.outbox.bundle(rig.conn, row["bundle_id"])
    assert shown["central_receipt"] == document and shown["delivered_at"]
    assert shown["acknowledged_by"] == LAPTOP  # the laptop's receipt stays on the row


def test_a_central_receipt_delivers_a_sealed_bundle_straight(
    rig: OutboxRig, sample: Captures, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    [result] = take(rig, receipt(central, "central_receipt", row, "central office"))
    assert (result["result"], result["state"]) == ("accepted", "delivered")


def test_each_receipt_of_a_batch_is_answered_on_its_own(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    first, second = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    good = receipt(laptop, "laptop_receipt", first, LAPTOP)
    results = take(rig, good, "not a receipt", receipt(laptop, "laptop_receipt", second, LAPTOP), good)
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["result"] for r in results] == ["accepted", "refused", "accepted", "duplicate"]
    assert state_of(rig, first["bundle_id"]) == state_of(rig, second["bundle_id"]) == "acknowledged"


def test_a_batch_the_database_stops_partway_says_what_it_took(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipts before the one the database refused stand, and the error carries their
    results (the daemon logs them, kitctl prints them)."""
    first, second = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    apply = rig.outbox._apply
    calls = []

    def refused_the_second_time(*args: Any) -> dict[str, Any]:
        calls.append(args)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return apply(*args)

    monkeypatch.setattr(rig.outbox, "_apply", refused_the_second_time)
    with pytest.raises(ReceiptsPartlyTaken, match="could not record receipt 1 .*disk I/O error") as raised:
        take(
            rig,
            receipt(laptop, "laptop_receipt", first, LAPTOP),
            receipt(laptop, "laptop_receipt", second, LAPTOP),
        )
    assert [(r["index"], r["result"]) for r in raised.value.taken] == [(0, "accepted")]
    assert (state_of(rig, first["bundle_id"]), state_of(rig, second["bundle_id"])) == (
        "acknowledged",
        "sealed",
    )


# --- receipts: forged ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["laptop_receipt", "central_receipt"])
def test_a_receipt_edited_after_signing_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner, kind: str
) -> None:
    row = sealed_row(rig, sample)
    signer, by = (laptop, LAPTOP) if kind == "laptop_receipt" else (central, "central office")
    document = receipt(signer, kind, row, by)
    document["statement"]["received_at"] = "2020-01-01T00:00:00+00:00"
    reason = refusal(rig, document)
    assert reason.startswith("signature:") and "altered" in reason, reason
    assert state_of(rig, row["bundle_id"]) == "sealed"


def test_a_receipt_whose_signature_bytes_are_flipped_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    document = receipt(laptop, "laptop_receipt", row, LAPTOP)
    der = bytearray(base64.b64decode(document["signature"]))
    der[-1] ^= 0x01  # the last byte of the ECDSA signature's s
    document["signature"] = base64.b64encode(bytes(der)).decode()
    reason = refusal(rig, document)
    assert reason.startswith("signature:") and "does not verify" in reason, reason


def test_a_signature_that_is_not_base64_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    document = dict(receipt(laptop, "laptop_receipt", row, LAPTOP), signature="not base64!")
    assert "base64" in refusal(rig, document)


def test_a_foreign_key_signing_as_a_trusted_laptop_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, tmp_path: Path
) -> None:
    """A foreign CA's key signs; the SignerInfo and the carried certificate are the laptop's."""
    row = sealed_row(rig, sample)
    foreign = foreign_ca_signer(tmp_path, f"laptop {LAPTOP}")
    forged = signed_over_by(receipt(laptop, "laptop_receipt", row, LAPTOP), foreign)
    reason = refusal(rig, forged)
    assert reason.startswith("signature:") and "does not verify" in reason, reason


def test_a_foreign_signer_carrying_a_trusted_laptops_certificate_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, tmp_path: Path
) -> None:
    """The foreign signer's own certificate signs; the laptop's rides along beside it."""
    row = sealed_row(rig, sample)
    foreign = foreign_ca_signer(tmp_path, f"laptop {LAPTOP}")
    statement = receipt(laptop, "laptop_receipt", row, LAPTOP)["statement"]
    der = sign_content(
        canonical_bytes(statement), [foreign], detached=True, extra_certificates=[laptop.certificate]
    )
    document = {"statement": statement, "signature": base64.b64encode(der).decode()}
    reason = refusal(rig, document)
    assert reason.startswith("signature:") and "not the expected signer" in reason, reason


def test_a_foreign_key_signing_as_the_central_office_is_refused(
    rig: OutboxRig, sample: Captures, central: FileSigner, tmp_path: Path
) -> None:
    row = sealed_row(rig, sample)
    foreign = foreign_ca_signer(tmp_path, "central signing")
    forged = signed_over_by(receipt(central, "central_receipt", row, "central office"), foreign)
    reason = refusal(rig, forged)
    assert reason.startswith("signature:") and "does not verify" in reason, reason


# --- receipts: for another file ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sha256": "0" * 64}, "SHA-256 or size differ"),
        ({"size": 12345}, "SHA-256 or size differ"),
        ({"bundle_id": "00000000-0000-0000-0000-000000000000"}, "does not hold"),
    ],
    ids=["other sha256", "other size", "unknown bundle"],
)
def test_a_receipt_for_another_file_is_refused(
    rig: OutboxRig,
    sample: Captures,
    laptop: FileSigner,
    central: FileSigner,
    changes: dict[str, Any],
    expected: str,
) -> None:
    row = sealed_row(rig, sample)
    for document in (
        receipt(laptop, "laptop_receipt", row, LAPTOP, **changes),
        receipt(central, "central_receipt", row, "central office", **changes),
    ):
        reason = refusal(rig, document)
        assert expected in reason, reason
    assert state_of(rig, row["bundle_id"]) == "sealed"


def test_a_receipt_for_a_bundle_still_sealing_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    bundle, _, _ = interrupted_sealing(rig, sample, "V1", "whole")
    row = rows.bundle_row(rig.conn, bundle.bundle_id)
    assert row is not None and row["state"] == "sealing"
    for document in (
        receipt(laptop, "laptop_receipt", row, LAPTOP),
        receipt(central, "central_receipt", row, "central office"),
    ):
        reason = refusal(rig, document)
        assert f"names bundle '{bundle.bundle_id}', which this kit does not hold" in reason
    assert state_of(rig, bundle.bundle_id) == "sealing"


# --- receipts: replayed --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["laptop_receipt", "central_receipt"])
def test_the_same_receipt_twice_is_a_duplicate_that_changes_nothing(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner, kind: str
) -> None:
    row = sealed_row(rig, sample)
    signer, by = (laptop, LAPTOP) if kind == "laptop_receipt" else (central, "central office")
    document = receipt(signer, kind, row, by)
    [first] = take(rig, document, at=now())
    before = snapshot(rig)
    [again] = take(rig, document, at=now() + dt.timedelta(hours=1))
    assert first["result"] == "accepted"
    assert again["result"] == "duplicate" and again["state"] == first["state"]
    assert snapshot(rig) == before  # times and receipts as the first one left them


def test_a_laptop_receipt_after_delivery_is_a_duplicate(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    take(rig, receipt(central, "central_receipt", row, "central office"))
    before = snapshot(rig)
    [result] = take(rig, receipt(laptop, "laptop_receipt", row, LAPTOP))
    assert (result["result"], result["state"]) == ("duplicate", "delivered")
    assert snapshot(rig) == before


def test_receipts_for_an_erased_bundle_are_duplicates(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    delivery = receipt(central, "central_receipt", row, "central office")
    take(rig, delivery)
    rig.outbox.retention_days = 0
    assert rig.outbox.erase_expired(rig.conn) == [row["bundle_id"]]
    before = snapshot(rig)
    results = take(rig, delivery, receipt(laptop, "laptop_receipt", row, LAPTOP))
    assert [(r["result"], r["state"]) for r in results] == [("duplicate", "erased")] * 2
    assert snapshot(rig) == before


# --- receipts: unknown or revoked keys -----------------------------------------------------


def test_a_receipt_from_an_unknown_key_is_refused(rig: OutboxRig, sample: Captures) -> None:
    row = sealed_row(rig, sample)
    stranger = laptop_signer(rig, "stranger", trust=False)
    reason = refusal(rig, receipt(stranger, "laptop_receipt", row, "stranger"))
    assert "unknown key" in reason, reason


def test_a_revoked_laptops_receipt_is_refused_with_the_revocation_date(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    taken, later = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    take(rig, receipt(laptop, "laptop_receipt", taken, LAPTOP))
    revoked_on = now()
    rig.outbox.revoke_laptop(rig.conn, LAPTOP, revoked_on)
    reason = refusal(rig, receipt(laptop, "laptop_receipt", later, LAPTOP))
    assert f"laptop '{LAPTOP}', revoked on {rows.stamp(revoked_on)}" in reason, reason
    assert state_of(rig, later["bundle_id"]) == "sealed"


def test_a_revoked_laptops_bundles_not_yet_delivered_are_offered_again(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    lost, delivered = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    take(
        rig,
        receipt(laptop, "laptop_receipt", lost, LAPTOP),
        receipt(laptop, "laptop_receipt", delivered, LAPTOP),
    )
    take(rig, receipt(central, "central_receipt", delivered, "central office"))
    assert rig.outbox.revoke_laptop(rig.conn, LAPTOP) == [lost["bundle_id"]]
    # The laptop is lost, its copy with it: the bundle the office never confirmed goes to the
    # next laptop (its receipt stays in the audit log); the delivered one stays delivered.
    assert (state_of(rig, lost["bundle_id"]), state_of(rig, delivered["bundle_id"])) == (
        "sealed",
        "delivered",
    )
    other = laptop_signer(rig, "lap-2")
    assert [b["bundle_id"] for b in rig.outbox.offer(rig.conn, "lap-2", now())] == [lost["bundle_id"]]
    (again,) = take(rig, receipt(other, "laptop_receipt", lost, "lap-2"))
    assert (again["result"], again["state"]) == ("accepted", "acknowledged")
    # The revoked laptop's signed receipt is kept, in the audit log: the evidence that it took it.
    (entry,) = audit_store.find_entries(rig.conn, action="bundle_offered_again")
    assert (entry["details"]["bundle"], entry["details"]["laptop"]) == (lost["bundle_id"], LAPTOP)
    assert receipt_fields(entry["details"]["laptop_receipt"])["bundle_id"] == lost["bundle_id"]
    assert rig.outbox.revoke_laptop(rig.conn, LAPTOP) == []  # once only


def test_a_revocation_by_another_process_never_leaves_the_laptop_a_bundle(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kitctl laptops revoke commits in its own process while the daemon takes that laptop's
    # receipt. The laptops were read before the receipts' transaction began: a revocation
    # committed between the two left the bundle acknowledged by a revoked laptop.
    row = sealed_row(rig, sample)
    revoker = threading.Thread(target=lambda: revoke_in_another_process(rig))
    read_laptops = rig.outbox.known_laptops

    def read_then_revoke(conn: sqlite3.Connection) -> list[Any]:
        known = read_laptops(conn)
        if revoker.ident is None:  # the first read only
            revoker.start()
            revoker.join(2.0)  # done at once unless this read holds the write lock
        return known

    monkeypatch.setattr(rig.outbox, "known_laptops", read_then_revoke)
    take(rig, receipt(laptop, "laptop_receipt", row, LAPTOP))
    revoker.join(10.0)
    assert not revoker.is_alive()
    (revoked,) = [r for r in rig.outbox.laptop_rows(rig.conn) if r["name"] == LAPTOP]
    assert revoked["revoked_at"] is not None
    # Taken before the revocation (then offered again) or refused after it: never kept.
    assert state_of(rig, row["bundle_id"]) == "sealed"


def revoke_in_another_process(rig: OutboxRig) -> None:
    conn = open_database(database_path(rig.data_dir))  # as kitctl opens it
    try:
        rows.revoke_laptop(conn, LAPTOP, now())
    finally:
        conn.close()


def test_a_laptop_receipt_in_another_laptops_name_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    laptop_signer(rig, "lap-2")  # trusted too: the name is a real laptop's, not the signer's
    reason = refusal(rig, receipt(laptop, "laptop_receipt", row, "lap-2"))
    assert f"says it is by 'lap-2', but laptop '{LAPTOP}' signed it" in reason, reason


def test_a_central_receipt_signed_by_a_laptop_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    reason = refusal(rig, receipt(laptop, "central_receipt", row, LAPTOP))
    assert "not the expected signer 'CN=central signing'" in reason, reason


def test_a_laptop_receipt_signed_by_the_central_office_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    reason = refusal(rig, receipt(central, "laptop_receipt", row, LAPTOP))
    assert "unknown key" in reason, reason


def test_a_central_receipt_is_refused_while_no_central_certificate_is_trusted(
    rig: OutboxRig, sample: Captures
) -> None:
    row = sealed_row(rig, sample)
    office = signing_credential(rig.office_dir, rig.data_dir / "keys", "central signing")  # not trusted
    reason = refusal(rig, receipt(office, "central_receipt", row, "central office"))
    assert "trusts no central signing certificate" in reason, reason


# --- receipts: malformed -------------------------------------------------------------------


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda statement: statement.pop(name)


def _setting(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda statement: statement.__setitem__(name, value)


MALFORMED = {
    "no by": (_without("by"), "the receipt has no 'by'"),
    "no sha256": (_without("sha256"), "the receipt has no 'sha256'"),
    "no received_at": (_without("received_at"), "the receipt has no 'received_at'"),
    "extra field": (_setting("note", "hello"), "unknown field 'note'"),
    "unknown type": (_setting("type", "office_receipt"), "'type' is 'office_receipt'"),
    "empty bundle id": (_setting("bundle_id", ""), "'bundle_id' is not a non-empty string"),
    "upper-case sha256": (_setting("sha256", "A" * 64), "'sha256' is not 64 lower-case hexadecimal"),
    "short sha256": (_setting("sha256", "a" * 63), "'sha256' is not 64 lower-case hexadecimal"),
    "size true": (_setting("size", True), "'size' is not a positive whole number"),
    "negative size": (_setting("size", -1), "'size' is not a positive whole number"),
    "size as text": (_setting("size", "299865"), "'size' is not a positive whole number"),
    "received_at without zone": (_setting("received_at", "2026-11-30T10:00:00"), "has no time zone"),
    "received_at not a time": (_setting("received_at", "yesterday"), "'received_at' is not an ISO 8601"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_receipt_is_refused_naming_what_is_wrong(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, case: str
) -> None:
    row = sealed_row(rig, sample)
    change, expected = MALFORMED[case]
    statement = receipt(laptop, "laptop_receipt", row, LAPTOP)["statement"]
    change(statement)
    reason = refusal(rig, sign_statement(statement, laptop))  # properly signed, wrongly made
    assert expected in reason, reason


@pytest.mark.parametrize(
    "document",
    ["a receipt", ["statement"], None, 7, {"statement": "text", "signature": "AA=="}, {"signature": "AA=="}],
    ids=["text", "list", "null", "number", "statement not an object", "no statement"],
)
def test_a_document_that_is_not_a_signed_statement_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, document: Any
) -> None:
    sealed_row(rig, sample)
    assert "a receipt is a signed statement" in refusal(rig, document)


def test_a_receipt_without_a_signature_is_refused(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    statement = receipt(laptop, "laptop_receipt", row, LAPTOP)["statement"]
    assert "no 'signature' string" in refusal(rig, {"statement": statement})


# --- trusted laptops -----------------------------------------------------------------------


def certificate_for(
    rig: OutboxRig,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    valid: tuple[dt.datetime, dt.datetime] | None = None,
    encipherment: bool = False,
) -> x509.Certificate:
    """A certificate of ``key`` from the simulation CA (the kit's own CA)."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "laptop odd")]))
        .sign(key, hashes.SHA256())
    )
    return sign_request(
        request.public_bytes(serialization.Encoding.PEM),
        rig.office_dir,
        rig.data_dir / "keys",
        valid=valid,
        encipherment=encipherment,
    )


@pytest.mark.parametrize("name", ["", "a laptop", "../etc", "lap/1", "x" * 65, "laptop\n", "lápiz"])
def test_a_laptop_name_is_letters_digits_dot_underscore_or_dash(
    rig: OutboxRig, laptop: FileSigner, name: str
) -> None:
    other = laptop_signer(rig, "spare", trust=False)
    with pytest.raises(rows.LaptopError, match="1-64 letters, digits"):
        rig.outbox.trust_laptop(rig.conn, name, other.certificate)
    assert [r["name"] for r in rows.laptops(rig.conn)] == [LAPTOP]


def test_a_laptop_name_of_64_allowed_characters_is_trusted(rig: OutboxRig) -> None:
    name = "Lap_1.2-" * 8
    signer = laptop_signer(rig, "spare", trust=False)
    trusted = rig.outbox.trust_laptop(rig.conn, name, signer.certificate)
    assert trusted["name"] == name
    assert trusted["fingerprint"] == signer.certificate.fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize("curve", ["P-384", "RSA"])
def test_a_laptop_certificate_that_is_not_p256_is_refused(rig: OutboxRig, curve: str) -> None:
    key = (
        ec.generate_private_key(ec.SECP384R1()) if curve == "P-384" else rsa.generate_private_key(65537, 2048)
    )
    with pytest.raises(rows.LaptopError, match="laptop 'odd': not an ECDSA P-256 certificate"):
        rig.outbox.trust_laptop(rig.conn, "odd", certificate_for(rig, key))
    assert rows.laptops(rig.conn) == []


def test_a_laptop_certificate_that_may_not_sign_is_refused(rig: OutboxRig) -> None:
    certificate = certificate_for(rig, ec.generate_private_key(ec.SECP256R1()), encipherment=True)
    with pytest.raises(rows.LaptopError, match="key usage does not allow signing"):
        rig.outbox.trust_laptop(rig.conn, "odd", certificate)


def test_an_expired_laptop_certificate_is_refused(rig: OutboxRig) -> None:
    ended = now() - dt.timedelta(days=1)
    certificate = certificate_for(
        rig, ec.generate_private_key(ec.SECP256R1()), valid=(ended - dt.timedelta(days=365), ended)
    )
    with pytest.raises(rows.LaptopError, match=f"expired on {ended:%Y-%m-%d}"):
        rig.outbox.trust_laptop(rig.conn, "odd", certificate)
    assert rows.laptops(rig.conn) == []


def test_one_certificate_is_not_trusted_under_two_names(rig: OutboxRig, laptop: FileSigner) -> None:
    with pytest.raises(rows.LaptopError, match=f"laptop '{LAPTOP}'"):
        rig.outbox.trust_laptop(rig.conn, "lap-2", laptop.certificate)
    assert [r["name"] for r in rows.laptops(rig.conn)] == [LAPTOP]


def test_trusting_a_laptop_again_with_its_certificate_changes_nothing(
    rig: OutboxRig, laptop: FileSigner
) -> None:
    before = rows.laptops(rig.conn)
    rig.outbox.trust_laptop(rig.conn, LAPTOP, laptop.certificate, now() + dt.timedelta(days=1))
    assert rows.laptops(rig.conn) == before


def test_a_trusted_laptop_name_is_not_given_another_certificate(rig: OutboxRig, laptop: FileSigner) -> None:
    other = laptop_signer(rig, "spare", trust=False)
    with pytest.raises(rows.LaptopError, match="trusted with another certificate: revoke it first"):
        rig.outbox.trust_laptop(rig.conn, LAPTOP, other.certificate)


def test_a_revoked_laptop_is_not_trusted_again_by_name_or_by_key(rig: OutboxRig, laptop: FileSigner) -> None:
    rig.outbox.revoke_laptop(rig.conn, LAPTOP)
    fresh = laptop_signer(rig, "spare", trust=False)
    with pytest.raises(rows.LaptopError, match=f"laptop '{LAPTOP}' was revoked on .*: give it a new name"):
        rig.outbox.trust_laptop(rig.conn, LAPTOP, laptop.certificate)
    with pytest.raises(rows.LaptopError, match="revoked on"):
        rig.outbox.trust_laptop(rig.conn, LAPTOP, fresh.certificate)
    with pytest.raises(rows.LaptopError, match=f"laptop '{LAPTOP}'"):
        rig.outbox.trust_laptop(rig.conn, "lap-renamed", laptop.certificate)  # its key, a new name
    rig.outbox.trust_laptop(rig.conn, "lap-2", fresh.certificate)  # a new key under a new name
    assert [(r["name"], r["revoked_at"] is None) for r in rows.laptops(rig.conn)] == [
        (LAPTOP, False),
        ("lap-2", True),
    ]


def test_revoking_a_laptop_twice_keeps_the_first_date_and_an_unknown_one_is_refused(
    rig: OutboxRig, laptop: FileSigner
) -> None:
    first = now()
    rig.outbox.revoke_laptop(rig.conn, LAPTOP, first)
    rig.outbox.revoke_laptop(rig.conn, LAPTOP, first + dt.timedelta(days=2))
    assert rows.laptops(rig.conn)[0]["revoked_at"] == rows.stamp(first)
    with pytest.raises(rows.LaptopError, match="no laptop 'nobody' is trusted"):
        rig.outbox.revoke_laptop(rig.conn, "nobody")


# --- start-up reconciliation ---------------------------------------------------------------


ACTIONS = ("temporary_removed", "completed", "forgotten", "registered", "quarantined", "leftovers_removed")


def test_reconcile_removes_leftover_temporary_files(rig: OutboxRig, sample: Captures) -> None:
    row = sealed_row(rig, sample)
    sealed, _ = bundle_paths(rig.outbox.directory, row["bundle_id"])
    leftover = temporary_name(sealed)
    leftover.write_bytes(b"half a bundle")
    kept = outbox_files(rig)
    del kept[leftover.name]
    report = rig.outbox.reconcile(rig.conn)
    assert report.temporary_removed == [leftover.name]
    assert outbox_files(rig) == kept
    assert state_of(rig, row["bundle_id"]) == "sealed"


def test_reconcile_completes_a_sealing_whose_files_are_whole(rig: OutboxRig, sample: Captures) -> None:
    bundle, record, _ = interrupted_sealing(rig, sample, "V1", "whole")
    assert load_visit(rig.conn, "V1")["state"] == "review"
    report = rig.outbox.reconcile(rig.conn)
    assert report.completed == [bundle.bundle_id]
    row = rows.bundle_row(rig.conn, bundle.bundle_id)
    assert row is not None and row["state"] == "sealed" and row["visit_record"] is None
    visit = rig.conn.execute("SELECT state, record FROM visits WHERE id = 'V1'").fetchone()
    assert visit["state"] == "finished"
    assert json.loads(visit["record"])["bundle"]["id"] == bundle.bundle_id
    order = rig.conn.execute("SELECT * FROM work_orders WHERE order_id = ?", (record["order_id"],)).fetchone()
    assert (order["status"], order["outcome"], order["content"]) == ("done", "finished", None)
    assert outbox_files(rig)[f"{bundle.bundle_id}.p7m"] == bundle.sealed


@pytest.mark.parametrize("files", ["absent", "statement only", "truncated"])
def test_reconcile_forgets_a_sealing_whose_files_are_not_whole(
    rig: OutboxRig, sample: Captures, files: str
) -> None:
    bundle, record, _ = interrupted_sealing(rig, sample, "V1", files)
    report = rig.outbox.reconcile(rig.conn)
    assert report.forgotten == [bundle.bundle_id]
    assert rows.bundle_row(rig.conn, bundle.bundle_id) is None
    assert outbox_files(rig) == {}
    assert load_visit(rig.conn, "V1")["state"] == "review"  # finishing again seals it anew
    order = rig.conn.execute("SELECT status FROM work_orders WHERE order_id = ?", (record["order_id"],))
    assert order.fetchone()["status"] == "pending"


def test_reconcile_registers_a_whole_verified_sealed_file_without_a_row(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    bundle = stray_bundle(rig, sample, "V1")
    files = outbox_files(rig)
    report = rig.outbox.reconcile(rig.conn)
    assert report.registered == [bundle.bundle_id]
    row = rows.bundle_row(rig.conn, bundle.bundle_id)
    assert row is not None
    statement = bundle.statement["statement"]
    assert (row["state"], row["visit_id"], row["sha256"], row["size"], row["sealed_at"]) == (
        "sealed",
        "V1",
        statement["sha256"],
        len(bundle.sealed),
        statement["created_at"],
    )
    assert outbox_files(rig) == files
    [result] = take(rig, receipt(laptop, "laptop_receipt", row, LAPTOP))  # and it goes on as any other
    assert result["result"] == "accepted"


def _edit_statement(rig: OutboxRig, bundle: SealedBundle) -> None:
    _, statement = bundle_paths(rig.outbox.directory, bundle.bundle_id)
    document = json.loads(statement.read_bytes())
    document["statement"]["created_at"] = "2020-01-01T00:00:00+00:00"
    statement.write_bytes(statement_bytes(document))


def _another_kits_statement(rig: OutboxRig, bundle: SealedBundle) -> None:
    other = signing_credential(rig.office_dir, rig.data_dir / "keys", "kit other-kit")
    document = sign_statement(
        bundle_statement(bundle.bundle_id, bundle.sealed, now(), "other-kit", "V1"), other
    )
    bundle_paths(rig.outbox.directory, bundle.bundle_id)[1].write_bytes(statement_bytes(document))


def _no_statement(rig: OutboxRig, bundle: SealedBundle) -> None:
    bundle_paths(rig.outbox.directory, bundle.bundle_id)[1].unlink()


def _sealed_file_altered(rig: OutboxRig, bundle: SealedBundle) -> None:
    sealed = bundle_paths(rig.outbox.directory, bundle.bundle_id)[0]
    sealed.write_bytes(bundle.sealed[:-1] + bytes([bundle.sealed[-1] ^ 1]))


def _statement_not_json(rig: OutboxRig, bundle: SealedBundle) -> None:
    bundle_paths(rig.outbox.directory, bundle.bundle_id)[1].write_bytes(b"{not json")


STRAY_PROBLEMS = {
    "statement edited": (_edit_statement, "statement: signer"),
    "another kit's statement": (_another_kits_statement, "not the expected signer 'CN=kit kit-sim'"),
    "no statement": (_no_statement, "it has no statement"),
    "sealed file altered": (_sealed_file_altered, "does not match its sealed file"),
    "statement not JSON": (_statement_not_json, "its statement cannot be read"),
}


@pytest.mark.parametrize("case", sorted(STRAY_PROBLEMS))
def test_reconcile_moves_a_sealed_file_it_cannot_verify_to_quarantine(
    rig: OutboxRig, sample: Captures, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    bundle = stray_bundle(rig, sample, "V1")
    spoil, expected = STRAY_PROBLEMS[case]
    spoil(rig, bundle)
    files = outbox_files(rig)
    with caplog.at_level(logging.ERROR, logger="kitd.outbox"):
        report = rig.outbox.reconcile(rig.conn)
    assert report.quarantined == [bundle.bundle_id] and report.registered == []
    assert rows.bundle_rows(rig.conn) == []
    # Moved aside whole, never deleted: a person decides what it is.
    assert outbox_files(rig) == {f"{QUARANTINE}/{name}": data for name, data in files.items()}
    assert expected in caplog.text, caplog.text


def test_reconcile_quarantines_a_verified_file_whose_visit_has_another_bundle(
    rig: OutboxRig, sample: Captures
) -> None:
    row = sealed_row(rig, sample, "V1")
    record, order = injected_visit(rig.conn, sample.visit, "V2")
    second = sample.seal(rig, dict(record, id="V1"), order, copy=1)  # a second bundle of visit V1
    write_bundle(rig.outbox.directory, second)
    report = rig.outbox.reconcile(rig.conn)
    assert report.quarantined == [second.bundle_id]
    assert [r["bundle_id"] for r in rows.bundle_rows(rig.conn)] == [row["bundle_id"]]
    assert (rig.outbox.directory / QUARANTINE / f"{second.bundle_id}.p7m").read_bytes() == second.sealed


def test_a_second_file_quarantined_under_the_same_name_keeps_the_first(
    rig: OutboxRig, sample: Captures
) -> None:
    bundle = stray_bundle(rig, sample, "V1")
    sealed, statement = bundle_paths(rig.outbox.directory, bundle.bundle_id)
    statement.unlink()
    rig.outbox.reconcile(rig.conn)
    sealed.write_bytes(b"another file of that name")
    report = rig.outbox.reconcile(rig.conn)
    assert report.quarantined == [bundle.bundle_id]
    assert outbox_files(rig) == {
        f"{QUARANTINE}/{sealed.name}": bundle.sealed,
        f"{QUARANTINE}/{sealed.name}.1": b"another file of that name",
    }


def test_reconcile_removes_a_lone_statement(rig: OutboxRig, sample: Captures) -> None:
    bundle = stray_bundle(rig, sample, "V1")
    bundle_paths(rig.outbox.directory, bundle.bundle_id)[0].unlink()
    report = rig.outbox.reconcile(rig.conn)
    assert report.leftovers_removed == [f"{bundle.bundle_id}.statement.json"]
    assert outbox_files(rig) == {} and rows.bundle_rows(rig.conn) == []


def test_reconcile_reports_a_missing_file_keeps_its_row_and_clears_when_it_is_back(
    rig: OutboxRig, sample: Captures
) -> None:
    row = sealed_row(rig, sample)
    sealed = bundle_paths(rig.outbox.directory, row["bundle_id"])[0]
    data = sealed.read_bytes()
    sealed.unlink()
    found_at = now()
    report = rig.outbox.reconcile(rig.conn, found_at)
    assert report.missing == [row["bundle_id"]]
    kept = rows.bundle_row(rig.conn, row["bundle_id"])
    assert kept is not None and (kept["state"], kept["problem"]) == ("sealed", "missing")
    problem = {"bundle_id": row["bundle_id"], "state": "sealed", "problem": "missing"}
    assert rig.outbox.summary(rig.conn)["problems"] == [dict(problem, problem_since=rows.stamp(found_at))]

    report = rig.outbox.reconcile(rig.conn, found_at + dt.timedelta(days=3))  # still gone: since then
    assert report.missing == [row["bundle_id"]]
    assert rig.outbox.summary(rig.conn)["problems"][0]["problem_since"] == rows.stamp(found_at)

    sealed.write_bytes(data)
    report = rig.outbox.reconcile(rig.conn)
    assert report.missing == []
    back = rows.bundle_row(rig.conn, row["bundle_id"])
    assert back is not None and (back["problem"], back["problem_since"]) == (None, None)
    assert rig.outbox.summary(rig.conn)["problems"] == []


def test_reconcile_reports_a_file_of_another_size_as_damaged(rig: OutboxRig, sample: Captures) -> None:
    row = sealed_row(rig, sample)
    os.truncate(bundle_paths(rig.outbox.directory, row["bundle_id"])[0], 1000)
    report = rig.outbox.reconcile(rig.conn)
    assert report.damaged == [row["bundle_id"]]
    assert rig.outbox.summary(rig.conn)["problems"][0]["problem"] == "damaged"
    assert state_of(rig, row["bundle_id"]) == "sealed"


def test_reconcile_removes_the_files_of_an_erased_bundle(
    rig: OutboxRig, sample: Captures, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    take(rig, receipt(central, "central_receipt", row, "central office"))
    erased = rows.mark_erased(rig.conn, now() + dt.timedelta(days=1), now())  # the row only, as a cut would
    assert erased == [row["bundle_id"]] and len(outbox_files(rig)) == 2
    report = rig.outbox.reconcile(rig.conn)
    assert sorted(report.leftovers_removed) == [
        f"{row['bundle_id']}.p7m",
        f"{row['bundle_id']}.statement.json",
    ]
    assert outbox_files(rig) == {}
    assert state_of(rig, row["bundle_id"]) == "erased"


def test_a_second_reconcile_changes_nothing(rig: OutboxRig, sample: Captures, central: FileSigner) -> None:
    sealed_row(rig, sample, "V1")  # a whole, registered bundle
    missing = sealed_row(rig, sample, "V2")
    bundle_paths(rig.outbox.directory, missing["bundle_id"])[0].unlink()
    erased = sealed_row(rig, sample, "V3")
    take(rig, receipt(central, "central_receipt", erased, "central office"))
    rows.mark_erased(rig.conn, now() + dt.timedelta(days=1), now())
    interrupted_sealing(rig, sample, "V4", "whole")
    interrupted_sealing(rig, sample, "V5", "statement only")
    stray = stray_bundle(rig, sample, "V6")
    spoiled = stray_bundle(rig, sample, "V7")
    _edit_statement(rig, spoiled)
    temporary_name(rig.outbox.directory / "x.p7m").write_bytes(b"")

    first = rig.outbox.reconcile(rig.conn)
    assert all(getattr(first, name) for name in ACTIONS), first
    assert stray.bundle_id in first.registered
    rows_after, files_after = snapshot(rig), outbox_files(rig)

    second = rig.outbox.reconcile(rig.conn)
    assert [getattr(second, name) for name in ACTIONS] == [[]] * len(ACTIONS), second
    assert second.missing == [missing["bundle_id"]]  # still reported, still kept
    assert snapshot(rig) == rows_after and outbox_files(rig) == files_after


# --- erasure -------------------------------------------------------------------------------


def test_only_delivered_bundles_past_the_retention_are_erased(
    rig: OutboxRig, sample: Captures, central: FileSigner
) -> None:
    assert rig.outbox.retention_days == 7
    early, late = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    delivered_at = now()
    take(rig, receipt(central, "central_receipt", early, "central office"), at=delivered_at)
    take(
        rig,
        receipt(central, "central_receipt", late, "central office"),
        at=delivered_at + dt.timedelta(days=2),
    )
    week = dt.timedelta(days=7)
    assert rig.outbox.erase_expired(rig.conn, delivered_at + week - dt.timedelta(seconds=1)) == []
    assert len(outbox_files(rig)) == 4

    erased_at = delivered_at + week
    assert rig.outbox.erase_expired(rig.conn, erased_at) == [early["bundle_id"]]
    row = rows.bundle_row(rig.conn, early["bundle_id"])
    assert row is not None and (row["state"], row["erased_at"]) == ("erased", rows.stamp(erased_at))
    assert row["central_receipt"]  # the row, and the office's word, stay
    assert sorted(outbox_files(rig)) == [f"{late['bundle_id']}.p7m", f"{late['bundle_id']}.statement.json"]
    assert state_of(rig, late["bundle_id"]) == "delivered"
    assert rig.outbox.erase_expired(rig.conn, erased_at) == []  # nothing twice


def test_erasing_a_bundle_clears_what_start_up_found_wrong_with_its_files(
    rig: OutboxRig, sample: Captures, central: FileSigner
) -> None:
    row = sealed_row(rig, sample)
    bundle_paths(rig.outbox.directory, row["bundle_id"])[0].unlink()
    rig.outbox.reconcile(rig.conn)
    take(rig, receipt(central, "central_receipt", row, "central office"))  # the office has it
    assert rig.outbox.summary(rig.conn)["problems"][0]["state"] == "delivered"
    rig.outbox.retention_days = 0
    assert rig.outbox.erase_expired(rig.conn) == [row["bundle_id"]]
    rig.outbox.reconcile(rig.conn)
    assert rig.outbox.summary(rig.conn)["problems"] == []  # not reported for ever after


def test_bundles_the_office_has_not_got_are_never_erased(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    rig.outbox.retention_days = 0
    sealed = sealed_row(rig, sample, "V1")
    offered = sealed_row(rig, sample, "V2")
    rig.outbox.offer(rig.conn, LAPTOP, now(), [offered["bundle_id"]])
    acknowledged = sealed_row(rig, sample, "V3")
    take(rig, receipt(laptop, "laptop_receipt", acknowledged, LAPTOP))
    before, files = snapshot(rig), outbox_files(rig)
    assert rig.outbox.erase_expired(rig.conn, now() + dt.timedelta(days=3653)) == []
    assert snapshot(rig) == before and outbox_files(rig) == files
    states = {r["bundle_id"]: r["state"] for r in rows.bundle_rows(rig.conn)}
    assert states == {
        sealed["bundle_id"]: "sealed",
        offered["bundle_id"]: "offered",
        acknowledged["bundle_id"]: "acknowledged",
    }


def test_a_retention_of_zero_days_erases_on_delivery(tmp_path: Path, sample: Captures) -> None:
    with open_rig(tmp_path / "data", tmp_path / "office", retention_days=0) as rig:
        row = sealed_row(rig, sample)
        delivered_at = now()
        take(rig, receipt(central_signer(rig), "central_receipt", row, "central office"), at=delivered_at)
        assert rig.outbox.erase_expired(rig.conn, delivered_at) == [row["bundle_id"]]
        assert state_of(rig, row["bundle_id"]) == "erased" and outbox_files(rig) == {}


# --- storing a visit's bundle --------------------------------------------------------------


def test_store_registers_an_earlier_whole_sealing_of_the_visit_instead_of_the_new_bundle(
    rig: OutboxRig, sample: Captures
) -> None:
    earlier, record, order = interrupted_sealing(rig, sample, "V1", "whole")
    again = sample.seal(rig, record, order, copy=1)
    saved = rig.outbox.store(rig.conn, again, finished_record(record, again), now())
    assert saved["bundle"]["id"] == earlier.bundle_id
    assert [(r["bundle_id"], r["state"]) for r in rows.bundle_rows(rig.conn)] == [
        (earlier.bundle_id, "sealed")
    ]
    assert sorted(outbox_files(rig)) == [f"{earlier.bundle_id}.p7m", f"{earlier.bundle_id}.statement.json"]
    visit = load_visit(rig.conn, "V1")
    assert visit is not None and (visit["state"], visit["bundle"]["id"]) == ("finished", earlier.bundle_id)


@pytest.mark.parametrize("files", ["absent", "statement only", "truncated"])
def test_store_discards_an_earlier_partial_sealing_of_the_visit(
    rig: OutboxRig, sample: Captures, files: str
) -> None:
    earlier, record, order = interrupted_sealing(rig, sample, "V1", files)
    again = sample.seal(rig, record, order, copy=1)
    saved = rig.outbox.store(rig.conn, again, finished_record(record, again), now())
    assert saved["bundle"]["id"] == again.bundle_id
    assert rows.bundle_row(rig.conn, earlier.bundle_id) is None
    assert [(r["bundle_id"], r["state"]) for r in rows.bundle_rows(rig.conn)] == [(again.bundle_id, "sealed")]
    assert outbox_files(rig) == {
        f"{again.bundle_id}.p7m": again.sealed,
        f"{again.bundle_id}.statement.json": statement_bytes(again.statement),
    }


def test_a_visit_has_one_bundle(rig: OutboxRig, sample: Captures) -> None:
    row = sealed_row(rig, sample, "V1")
    record, order = injected_visit(rig.conn, sample.visit, "V2")
    second = sample.seal(rig, dict(record, id="V1"), order, copy=1)
    before, files = snapshot(rig), outbox_files(rig)
    with pytest.raises(OutboxError, match=f"could not register bundle {second.bundle_id}"):
        rig.outbox.store(rig.conn, second, finished_record(dict(record, id="V1"), second), now())
    assert snapshot(rig) == before and outbox_files(rig) == files
    assert [r["bundle_id"] for r in rows.bundle_rows(rig.conn)] == [row["bundle_id"]]


def test_a_sealing_bundle_is_not_shown(rig: OutboxRig, sample: Captures) -> None:
    bundle, _, _ = interrupted_sealing(rig, sample, "V1", "whole")
    assert rig.outbox.bundles(rig.conn) == []
    with pytest.raises(BundleNotFound, match=bundle.bundle_id):
        rig.outbox.bundle(rig.conn, bundle.bundle_id)


# --- summary and reserve -------------------------------------------------------------------


def test_the_summary_counts_bundles_by_state_and_ages_the_oldest_unacknowledged(
    rig: OutboxRig, sample: Captures, laptop: FileSigner, central: FileSigner
) -> None:
    empty = rig.outbox.summary(rig.conn)
    assert empty["bundles"] == dict.fromkeys(("sealed", "offered", "acknowledged", "delivered", "erased"), 0)
    assert (empty["oldest_unacknowledged_sealed_at"], empty["oldest_unacknowledged_age_s"]) == (None, None)

    made = [sealed_row(rig, sample, f"V{n}") for n in range(1, 7)]
    rig.outbox.offer(rig.conn, LAPTOP, now(), [made[1]["bundle_id"]])
    take(rig, receipt(laptop, "laptop_receipt", made[2], LAPTOP))
    take(rig, *(receipt(central, "central_receipt", r, "central office") for r in made[3:]))
    rig.outbox.retention_days = 0
    rig.outbox.erase_expired(rig.conn, now() + dt.timedelta(seconds=1))
    take(rig, receipt(central, "central_receipt", made[5], "central office"))  # a duplicate

    oldest = min(made[0]["sealed_at"], made[1]["sealed_at"])
    at = dt.datetime.fromisoformat(oldest) + dt.timedelta(hours=5)
    summary = rig.outbox.summary(rig.conn, at)
    assert summary["bundles"] == {"sealed": 1, "offered": 1, "acknowledged": 1, "delivered": 0, "erased": 3}
    assert summary["oldest_unacknowledged_sealed_at"] == oldest
    assert summary["oldest_unacknowledged_age_s"] == 5 * 3600
    assert summary["reserve_ok"] is True and summary["problems"] == []


def test_a_reserve_larger_than_the_disk_is_reported_and_names_its_setting(rig: OutboxRig) -> None:
    rig.outbox.reserve_visits = 10**9
    summary = rig.outbox.summary(rig.conn)
    assert summary["reserve_ok"] is False
    assert summary["reserve_bytes"] > summary["free_bytes"]
    problem = rig.outbox.reserve_problem()
    assert problem is not None and "outbox.reserve_visits" in problem and "1000000000 full visits" in problem
    with pytest.raises(DiskReserve, match="outbox.reserve_visits"):
        rig.outbox.require_reserve()
    rig.outbox.reserve_visits = 0
    assert rig.outbox.reserve_problem() is None


# --- offers --------------------------------------------------------------------------------


def test_offer_makes_every_unacknowledged_bundle_offered_and_lists_it(
    rig: OutboxRig, sample: Captures, laptop: FileSigner
) -> None:
    first, second, third = (sealed_row(rig, sample, f"V{n}") for n in range(1, 4))
    take(rig, receipt(laptop, "laptop_receipt", third, LAPTOP))
    offered_at = now()
    listed = rig.outbox.offer(rig.conn, LAPTOP, offered_at)
    assert sorted(b["bundle_id"] for b in listed) == sorted([first["bundle_id"], second["bundle_id"]])
    for shown in listed:
        assert (shown["state"], shown["offered_to"], shown["offered_at"]) == (
            "offered",
            LAPTOP,
            rows.stamp(offered_at),
        )
        assert "visit_record" not in shown
    assert state_of(rig, third["bundle_id"]) == "acknowledged"
    again = rig.outbox.offer(rig.conn, "lap-2", offered_at)  # offered again, to whoever asks
    assert {b["offered_to"] for b in again} == {"lap-2"}


def test_offer_lists_only_the_bundles_asked_for(rig: OutboxRig, sample: Captures) -> None:
    first, second = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    listed = rig.outbox.offer(rig.conn, LAPTOP, now(), [second["bundle_id"], "no-such-bundle"])
    assert [b["bundle_id"] for b in listed] == [second["bundle_id"]]
    assert state_of(rig, first["bundle_id"]) == "sealed"


def test_a_bundle_whose_file_is_missing_is_not_offered(rig: OutboxRig, sample: Captures) -> None:
    present, gone = sealed_row(rig, sample, "V1"), sealed_row(rig, sample, "V2")
    bundle_paths(rig.outbox.directory, gone["bundle_id"])[0].unlink()
    rig.outbox.reconcile(rig.conn)
    listed = rig.outbox.offer(rig.conn, LAPTOP, now())
    assert [b["bundle_id"] for b in listed] == [present["bundle_id"]]
    assert state_of(rig, gone["bundle_id"]) == "sealed"


@pytest.mark.parametrize(
    "odd", [2**60, float("inf"), {"deep": ["x" * 500]}], ids=["huge", "infinite", "object"]
)
def test_a_receipt_naming_an_odd_bundle_is_refused_and_audited_as_text(
    rig: OutboxRig, sample: Captures, odd: Any
) -> None:
    """What a client may put where a bundle id goes (JSON reads 1e400 as infinity): refused
    with its reason, and the refusal's audit entry holds it as short text."""
    sealed_row(rig, sample)
    document = {"statement": {"type": "laptop_receipt", "bundle_id": odd}, "signature": "AA=="}
    [result] = rig.outbox.take_receipts(rig.conn, [document])
    assert result["result"] == "refused", result
    entry = audit_store.find_entries(rig.conn, action="receipt_refused")[-1]
    assert isinstance(entry["details"]["bundle_id"], str) and len(entry["details"]["bundle_id"]) <= 128
