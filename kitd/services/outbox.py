"""The durable outbox: sealed bundles kept until the central office has them.

Its one job: :class:`Outbox` keeps the files of ``data_dir/outbox/`` and their rows (kitd.store
.outbox) in step through weeks offline and power cuts. A bundle is registered (``sealing``)
before its files are written and becomes ``sealed`` in the one transaction that finishes its
visit; laptops' and the central office's receipts (kitd.crypto.receipts) move it on;
delivered bundles are erased ``outbox.retention_days`` after delivery, and nothing else ever
is. :meth:`Outbox.reconcile` (at start-up) finishes or forgets interrupted sealings,
re-registers a whole sealed file that lost its row, reports a row whose file is gone, and
removes leftover temporary files. Every file operation goes through the kit's I/O layer
(kitd.durable_files), so that tests can record it and make it fail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kitformats.bundle_statements import SEALED_SUFFIX, STATEMENT_SUFFIX, BundleRejected, check_statement
from kitformats.receipts import ReceiptRefused
from kitformats.signing import KeyProblem

from kitd.clock import clock_of
from kitd.config import KitConfig
from kitd.crypto.bundle import SealedBundle, bundle_paths, write_bundle
from kitd.crypto.kit_keys import KitKeys, check_signing_certificate
from kitd.crypto.receipts import KnownLaptop, check_receipt
from kitd.durable_files import DISK, FileOps, is_temporary, make_directory, remove_durably
from kitd.errors import KitError, shown_value
from kitd.schemas import json_type
from kitd.store import outbox as rows
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import transaction
from kitd.store.outbox import KEPT

log = logging.getLogger("kitd.outbox")

# What one full visit takes on the disk: the sealing benchmark's ten fingers, two irises and
# a signature seal to 293 KiB (bench/sealing.py); rounded up for the statement, the
# database's rows and its write-ahead log, and prints larger than the simulator's.
FULL_VISIT_BYTES = 384 * 1024
QUARANTINE = "quarantine"
LAPTOP_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class OutboxError(KitError):
    """A bundle could not be written to or registered in the outbox (says which and why)."""


class ReceiptsPartlyTaken(OutboxError):
    """The database refused one receipt of several: ``taken`` are the results of those before
    it, which stand."""

    def __init__(self, message: str, taken: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.taken = taken


class NotReceipts(ValueError):
    """A body or file that holds nothing to judge as receipts (400; says what it holds)."""


def receipt_batch(document: Any) -> list[Any]:
    """The receipts a parsed body or file holds: one (an object) or a non-empty array of them.
    Each receipt in an array is judged on its own (refused with its reason); a document of
    another shape is not a batch at all."""
    if isinstance(document, dict):
        return [document]
    if not isinstance(document, list):
        raise NotReceipts(f"{json_type(document)}, not a receipt (an object) or an array of them")
    if not document:
        raise NotReceipts("an empty JSON array: no receipt")
    return document


class DiskReserve(KitError):
    """Free space does not cover the reserve of full visits: no visit starts (409)."""


class BundleNotFound(KitError):
    """No bundle with that id in the outbox (404)."""


@dataclass
class Reconciled:
    """What start-up found and did (each list names bundles or files)."""

    temporary_removed: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {name: list(value) for name, value in self.__dict__.items()}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def same_visit(stored: str | None, record: dict[str, Any]) -> bool:
    """Whether a registered bundle's visit record (JSON) is ``record`` but for its bundle and times."""
    if stored is None:
        return False
    ignored = ("bundle", "updated_at")
    earlier = {k: v for k, v in json.loads(stored).items() if k not in ignored}
    return earlier == {k: v for k, v in json.loads(json.dumps(record)).items() if k not in ignored}


def _short(value: Any) -> Any:
    """What a refused receipt said, fit for the audit log: short text as it is, else its repr
    cut short (a client may send anything there)."""
    if isinstance(value, str) and len(value) <= 128:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return value
    return repr(value)[:128]


def _statement_of(document: Any) -> dict[str, Any] | None:
    """A receipt's statement, when it has one to read (a refused receipt may not)."""
    statement = document.get("statement") if isinstance(document, dict) else None
    return statement if isinstance(statement, dict) else None


def _bundle_named(document: Any) -> Any:
    return (_statement_of(document) or {}).get("bundle_id")


def _refuse_unexpected(statement: dict[str, Any], kind: str | None, laptop: str | None) -> None:
    """ReceiptRefused for a receipt of another type than ``kind``, or by another than ``laptop``."""
    if kind is not None and statement.get("type") != kind:
        named = "names no type" if "type" not in statement else f"is of type {_short(statement['type'])!r}"
        raise ReceiptRefused(f"{named}: only {kind} is taken here")
    if laptop is not None and statement.get("by") != laptop:
        said = f"says it is by {_short(statement.get('by'))!r}"
        named = "names no laptop ('by')" if "by" not in statement else said
        raise ReceiptRefused(f"{named}, but it came from laptop '{laptop}'")


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A bundle's row as the API and kitctl show it (receipts as objects, no visit record)."""
    shown = {k: v for k, v in row.items() if k != "visit_record"}
    for name in ("laptop_receipt", "central_receipt"):
        if shown.get(name):
            shown[name] = json.loads(shown[name])
    return shown


class Outbox:
    """The outbox in ``directory``; its rows are in the database connection each call is given."""

    def __init__(
        self,
        directory: Path,
        kit_certificate: Callable[[], x509.Certificate | None],
        central_certificate: Callable[[], x509.Certificate | None],
        retention_days: float = 7,
        reserve_visits: int = 10,
        ops: FileOps = DISK,
    ) -> None:
        self.directory = Path(directory)
        self.kit_certificate = kit_certificate
        self.central_certificate = central_certificate
        self.retention_days = float(retention_days)
        self.reserve_visits = int(reserve_visits)
        self.ops = ops

    # --- sealing ---------------------------------------------------------------------------

    def store(
        self, conn: sqlite3.Connection, bundle: SealedBundle, visit_record: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any]:
        """Register ``bundle``, write its files and, in one transaction, make it ``sealed`` and
        its visit (``visit_record``, finished) saved and its order closed. Returns the visit's
        record as saved: if an earlier finish of the visit left a whole bundle that could not
        be registered, that bundle is the one registered now, and ``bundle`` is dropped.

        OutboxError says what failed; nothing is then reported sealed, and a finish again
        retries (start-up also finishes or forgets what was interrupted)."""
        visit_id = visit_record["id"]
        try:
            earlier = rows.sealing_row_of_visit(conn, visit_id)
            if earlier is not None:
                # The same visit as it stood then (no item retaken since): that bundle is it.
                if self._whole(earlier) and same_visit(earlier["visit_record"], visit_record):
                    return rows.complete_sealing(conn, earlier["bundle_id"], now)
                self._discard(conn, earlier)
            rows.register_sealing(
                conn,
                bundle.bundle_id,
                visit_record,
                hashlib.sha256(bundle.sealed).hexdigest(),
                len(bundle.sealed),
                bundle.statement["statement"]["created_at"],
            )
        except sqlite3.Error as exc:
            raise OutboxError(
                f"the kit's database could not register bundle {bundle.bundle_id}: {exc}"
            ) from None
        except OSError as exc:  # an earlier finish's files would not go
            raise OutboxError(
                f"the outbox could not remove an unfinished bundle of visit {visit_id}: {exc.strerror or exc}"
            ) from None
        try:
            if not self.directory.is_dir():
                make_directory(self.directory, 0o700, self.ops)  # its name, too, survives a power cut
            write_bundle(self.directory, bundle, self.ops)
        except OSError as exc:
            # A file the disk would not let go keeps its row ('sealing'): without it, start-up
            # would register a whole one as a stray, its visit never saved and never sealable.
            if not any(p.exists() for p in bundle_paths(self.directory, bundle.bundle_id)):
                try:
                    # The removals durable before the row goes: a power cut must not bring back
                    # a whole sealed file whose row is gone.
                    self.ops.fsync_directory(self.directory)
                    rows.forget_sealing(conn, bundle.bundle_id)
                except (OSError, sqlite3.Error):
                    pass  # the row stays 'sealing': a finish again, or start-up, settles it
            raise OutboxError(
                f"the outbox could not write bundle {bundle.bundle_id}: {exc.strerror or exc}"
            ) from None
        try:
            return rows.complete_sealing(conn, bundle.bundle_id, now)
        except sqlite3.Error as exc:
            # The files are whole and the row says 'sealing': finishing again (or start-up)
            # registers this same bundle; nothing is sealed twice.
            raise OutboxError(
                f"bundle {bundle.bundle_id} is written but the kit's database could not register it "
                f"({exc}): finish the visit again"
            ) from None

    def _whole(self, row: dict[str, Any]) -> bool:
        """Both files of a registered bundle are there and the sealed one is the one registered."""
        sealed, statement = bundle_paths(self.directory, row["bundle_id"])
        try:
            if sealed.stat().st_size != row["size"] or _sha256_of(sealed) != row["sha256"]:
                return False
            document = json.loads(statement.read_bytes())
            return document["statement"]["sha256"] == row["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def forget_unfinished(self, conn: sqlite3.Connection, visit_id: str) -> None:
        """A visit that ends otherwise than finished: a bundle an earlier finish wrote but could
        not register goes (files, then row), so that start-up never seals it after all."""
        earlier = rows.sealing_row_of_visit(conn, visit_id)
        if earlier is not None:
            self._discard(conn, earlier)

    def _discard(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        """An interrupted sealing: its files go, then its row."""
        remove_durably(list(bundle_paths(self.directory, row["bundle_id"])), self.ops)
        rows.forget_sealing(conn, row["bundle_id"])

    # --- reading ---------------------------------------------------------------------------

    def bundles(
        self, conn: sqlite3.Connection, states: Sequence[str] = rows.STATES[1:]
    ) -> list[dict[str, Any]]:
        return [public_row(r) for r in rows.bundle_rows(conn, tuple(states))]

    def bundle(self, conn: sqlite3.Connection, bundle_id: str) -> dict[str, Any]:
        row = rows.bundle_row(conn, bundle_id)
        if row is None or row["state"] == "sealing":
            raise BundleNotFound(f"no bundle {shown_value(bundle_id)} in the outbox")
        return public_row(row)

    def sealed_file(self, bundle_id: str) -> Path:
        return bundle_paths(self.directory, bundle_id)[0]

    def free_bytes(self) -> int:
        place = self.directory if self.directory.exists() else self.directory.parent
        return shutil.disk_usage(place).free

    def reserve_bytes(self) -> int:
        return self.reserve_visits * FULL_VISIT_BYTES

    def reserve_problem(self) -> str | None:
        """Why no visit may start for lack of disk, or None."""
        try:
            free = self.free_bytes()
        except OSError as exc:
            return f"the outbox's disk cannot be read ({exc.strerror or exc})"
        need = self.reserve_bytes()
        if free >= need:
            return None
        return (
            f"the disk has {free / 2**20:.1f} MiB free, less than the reserve for "
            f"{self.reserve_visits} full visits ({need / 2**20:.1f} MiB, outbox.reserve_visits): "
            "hand the sealed bundles to a laptop or free space first"
        )

    def require_reserve(self) -> None:
        problem = self.reserve_problem()
        if problem is not None:
            raise DiskReserve(f"no visit can start: {problem}")

    def summary(self, conn: sqlite3.Connection, now: dt.datetime | None = None) -> dict[str, Any]:
        """For the status: free space and the reserve, bundles by state, the oldest bundle the
        office does not have yet, and every bundle whose files start-up found wrong."""
        now = now or clock_of(conn).now()
        oldest = rows.oldest_unacknowledged(conn)
        age = None
        if oldest is not None:
            age = max(0, round((now - dt.datetime.fromisoformat(oldest)).total_seconds()))
        try:
            free: int | None = self.free_bytes()
        except OSError:
            free = None
        return {
            "free_bytes": free,
            "reserve_bytes": self.reserve_bytes(),
            "reserve_ok": free is not None and free >= self.reserve_bytes(),
            "bundles": rows.state_counts(conn),
            "oldest_unacknowledged_sealed_at": oldest,
            "oldest_unacknowledged_age_s": age,
            "problems": rows.problems(conn),
        }

    # --- a laptop --------------------------------------------------------------------------

    def offer(
        self, conn: sqlite3.Connection, laptop: str, now: dt.datetime, bundle_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The bundles listed to ``laptop`` (all it has not acknowledged, or those named):
        each becomes ``offered``. Bundles whose file start-up found missing are not listed."""
        candidates = [
            r
            for r in rows.bundle_rows(conn, rows.UNACKNOWLEDGED)
            if r["problem"] is None and (bundle_ids is None or r["bundle_id"] in bundle_ids)
        ]
        rows.mark_offered(conn, [r["bundle_id"] for r in candidates], laptop, now)
        return [self.bundle(conn, r["bundle_id"]) for r in candidates]

    def trust_laptop(
        self,
        conn: sqlite3.Connection,
        name: str,
        certificate: x509.Certificate,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Trust ``certificate`` for laptop ``name``'s receipts (until revoked)."""
        if not LAPTOP_NAME.fullmatch(name):
            raise rows.LaptopError(f"laptop name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
        try:
            check_signing_certificate(certificate, f"laptop '{name}'")
        except KeyProblem as exc:
            raise rows.LaptopError(str(exc)) from None
        now = now or clock_of(conn).now()
        if certificate.not_valid_before_utc > now:
            raise rows.LaptopError(
                f"laptop '{name}': its certificate is valid only from "
                f"{certificate.not_valid_before_utc:%Y-%m-%d}"
            )
        if certificate.not_valid_after_utc <= now:
            raise rows.LaptopError(
                f"laptop '{name}': its certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
            )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
        rows.trust_laptop(conn, name, pem, fingerprint, now)
        return {"name": name, "fingerprint": fingerprint, "subject": certificate.subject.rfc4514_string()}

    def revoke_laptop(self, conn: sqlite3.Connection, name: str, now: dt.datetime | None = None) -> list[str]:
        """Refuse ``name``'s receipts from now on; the bundles it acknowledged that the office
        has not confirmed are offered again (kitd.store.outbox.revoke_laptop): their ids."""
        return rows.revoke_laptop(conn, name, now or clock_of(conn).now())

    def laptop_rows(self, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        """The laptops the kit knows (trusted or revoked), as stored."""
        return rows.laptops(conn)

    def known_laptops(self, conn: sqlite3.Connection) -> list[KnownLaptop]:
        return [
            KnownLaptop(r["name"], x509.load_pem_x509_certificate(r["certificate"].encode()), r["revoked_at"])
            for r in rows.laptops(conn)
        ]

    def take_receipts(
        self,
        conn: sqlite3.Connection,
        documents: Sequence[Any],
        now: dt.datetime | None = None,
        actor: str = SYSTEM,
        kind: str | None = None,
        laptop: str | None = None,
    ) -> list[dict[str, Any]]:
        """Each receipt checked and applied: ``accepted`` (the bundle moved on), ``duplicate``
        (it had already; nothing changes) or ``refused`` with its reason. Only receipts of type
        ``kind``, and by ``laptop``, when given (what a laptop's connection may bring).
        OutboxError: the database could not record one (the ones before it stand)."""
        now = now or clock_of(conn).now()
        central = self.central_certificate()
        results: list[dict[str, Any]] = []
        failed: ReceiptsPartlyTaken | None = None

        def take(index: int, document: Any, laptops: list[KnownLaptop]) -> dict[str, Any]:
            result: dict[str, Any] = {"index": index}
            statement = _statement_of(document)
            if statement is not None:
                result.update(bundle_id=statement.get("bundle_id"), type=statement.get("type"))
            with transaction(conn):
                try:
                    if statement is not None:
                        _refuse_unexpected(statement, kind, laptop)
                    receipt = check_receipt(document, laptops, central, now)
                    result.update(self._apply(conn, receipt, now, actor))
                except ReceiptRefused as exc:
                    result.update(result="refused", reason=str(exc))
                    said = {k: _short(v) for k, v in result.items() if k != "result"}
                    append_entry(conn, actor, "receipt_refused", said)
            return result

        try:
            # One commit for the request (on a kit's SD card each fsync costs milliseconds);
            # each receipt in a savepoint of its own, so that one the disk refuses leaves the
            # ones before it to be committed.
            with transaction(conn):
                # Read under the transaction's write lock: a revocation (kitctl laptops revoke, in
                # its own process) commits before this or after it, never between the read and
                # the receipts it judges, which would leave a revoked laptop's bundle acknowledged.
                laptops = self.known_laptops(conn)
                for index, document in enumerate(documents):
                    try:
                        results.append(take(index, document, laptops))
                    except sqlite3.Error as exc:
                        failed = ReceiptsPartlyTaken(
                            f"the kit's database could not record receipt {index} (bundle "
                            f"{_bundle_named(document)}): {exc}; the receipts before it are taken, "
                            "send it again",
                            results,
                        )
                        break
        except sqlite3.Error as exc:
            named = list(dict.fromkeys(str(_bundle_named(d)) for d in documents))
            bundles = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
            raise OutboxError(
                f"the kit's database could not record the {len(documents)} receipts (bundle {bundles}): "
                f"{exc}; none of them is taken, send them again"
            ) from None
        if failed is not None:
            raise failed
        return results

    def _apply(self, conn: sqlite3.Connection, receipt: Any, now: dt.datetime, actor: str) -> dict[str, Any]:
        row = rows.bundle_row(conn, receipt.bundle_id)
        if row is None or row["state"] == "sealing":
            raise ReceiptRefused(f"names bundle '{receipt.bundle_id}', which this kit does not hold")
        if receipt.sha256 != row["sha256"] or receipt.size != row["size"]:
            raise ReceiptRefused(
                f"names another file than bundle {receipt.bundle_id}: its SHA-256 or size differ"
            )
        if receipt.type == "laptop_receipt":
            moved = rows.mark_acknowledged(conn, receipt.bundle_id, receipt.by, receipt.document, now, actor)
        else:
            moved = rows.mark_delivered(conn, receipt.bundle_id, receipt.document, now, actor)
        state = rows.bundle_row(conn, receipt.bundle_id)["state"]  # type: ignore[index]
        return {"result": "accepted" if moved else "duplicate", "state": state}

    # --- erasing ---------------------------------------------------------------------------

    def erase_expired(self, conn: sqlite3.Connection, now: dt.datetime | None = None) -> list[str]:
        """Bundles delivered ``retention_days`` ago or more: the row says erased first, then
        the files go (start-up removes any an interruption left)."""
        now = now or clock_of(conn).now()
        erased = rows.mark_erased(conn, now - dt.timedelta(days=self.retention_days), now)
        for bundle_id in erased:
            try:
                remove_durably(list(bundle_paths(self.directory, bundle_id)), self.ops)
            except OSError as exc:
                log.warning("bundle %s is erased but its files could not be removed yet: %s", bundle_id, exc)
        if erased:
            log.info("erased %d delivered bundles (retention %g days)", len(erased), self.retention_days)
        return erased

    # --- start-up --------------------------------------------------------------------------

    def reconcile(self, conn: sqlite3.Connection, now: dt.datetime | None = None) -> Reconciled:
        """Bring the files and the rows back in step after whatever stopped the kit."""
        now = now or clock_of(conn).now()
        report = Reconciled()
        # Made, or fsynced into data_dir again: a power cut may lose a folder's name that was
        # never fsynced, and every bundle in it with it.
        make_directory(self.directory, 0o700, self.ops)
        entries = [p for p in self.directory.iterdir() if p.is_file()]
        temporary = [p for p in entries if is_temporary(p)]
        remove_durably(temporary, self.ops)
        report.temporary_removed = sorted(p.name for p in temporary)
        for row in rows.bundle_rows(conn, ("sealing",)):
            if self._whole(row):
                rows.complete_sealing(conn, row["bundle_id"], now, at_start_up=True)
                report.completed.append(row["bundle_id"])
                log.warning(
                    "bundle %s: its sealing was interrupted after it was written; registered",
                    row["bundle_id"],
                )
            else:
                self._discard(conn, row)
                report.forgotten.append(row["bundle_id"])
                log.warning(
                    "bundle %s: its sealing was interrupted before it was whole; the visit stays in review",
                    row["bundle_id"],
                )
        known = {r["bundle_id"]: r for r in rows.bundle_rows(conn)}
        for row in known.values():
            self._check_files(conn, row, now, report)
        self._adopt_strays(conn, known, now, report)
        changes = {name: value for name, value in report.to_json().items() if value}
        if changes:
            append_entry(conn, SYSTEM, "outbox_reconciled", changes)
        return report

    def _check_files(
        self, conn: sqlite3.Connection, row: dict[str, Any], now: dt.datetime, report: Reconciled
    ) -> None:
        sealed, statement = bundle_paths(self.directory, row["bundle_id"])
        if row["state"] == "erased":
            present = [p for p in (sealed, statement) if p.exists()]
            if present:
                remove_durably(present, self.ops)
                report.leftovers_removed += [p.name for p in present]
            return
        if row["state"] not in KEPT:
            return
        try:
            size = sealed.stat().st_size
        except FileNotFoundError:
            size = None
        if size is None:
            problem = "missing"
            report.missing.append(row["bundle_id"])
            log.error(
                "bundle %s (%s since %s) has no file in the outbox: it is kept on the list, restore %s",
                row["bundle_id"], row["state"], row["sealed_at"], sealed.name,
            )  # fmt: skip
        elif size != row["size"] or not statement.exists():
            problem = "damaged"
            report.damaged.append(row["bundle_id"])
            log.error(
                "bundle %s (%s): its file is %d bytes, registered %d (or its statement is gone)",
                row["bundle_id"], row["state"], size, row["size"],
            )  # fmt: skip
        else:
            problem = None
        if problem != row["problem"]:
            rows.set_problem(conn, row["bundle_id"], problem, now)

    def _adopt_strays(
        self, conn: sqlite3.Connection, known: dict[str, dict[str, Any]], now: dt.datetime, report: Reconciled
    ) -> None:
        """Files without a row: a whole, verified sealed file is registered; a lone statement is
        an interrupted sealing's and goes; anything else is moved aside, never deleted."""
        by_id: dict[str, dict[str, Path]] = {}
        for path in self.directory.iterdir():
            if not path.is_file() or is_temporary(path):
                continue
            for suffix, kind in ((STATEMENT_SUFFIX, "statement"), (SEALED_SUFFIX, "sealed")):
                if path.name.endswith(suffix):
                    by_id.setdefault(path.name[: -len(suffix)], {})[kind] = path
                    break
        for bundle_id, files in sorted(by_id.items()):
            if bundle_id in known:
                continue
            if "sealed" not in files:
                remove_durably([files["statement"]], self.ops)
                report.leftovers_removed.append(files["statement"].name)
                continue
            problem = self._stray_problem(bundle_id, files)
            if problem is None:
                statement = json.loads(files["statement"].read_bytes())["statement"]
                try:
                    rows.register_found(
                        conn, bundle_id, statement.get("visit_id"), statement["sha256"],
                        statement["size"], statement["created_at"],
                    )  # fmt: skip
                except sqlite3.IntegrityError:
                    problem = f"its visit {statement.get('visit_id')} has another bundle"
                else:
                    report.registered.append(bundle_id)
                    log.warning("bundle %s had no row: verified and registered as sealed", bundle_id)
                    continue
            # The statement first: a sealed file left alone by an interruption is moved aside
            # next time; a statement left alone would be taken for a sealing's and removed.
            self._quarantine(sorted(files.values(), key=lambda p: p.name.endswith(SEALED_SUFFIX)))
            report.quarantined.append(bundle_id)
            log.error(
                "bundle file %s is not a whole sealed bundle of this kit (%s): moved to %s/",
                bundle_id,
                problem,
                QUARANTINE,
            )

    def _stray_problem(self, bundle_id: str, files: dict[str, Path]) -> str | None:
        if "statement" not in files:
            return "it has no statement"
        try:
            document = json.loads(files["statement"].read_bytes())
            sealed = files["sealed"].read_bytes()
            kit = self.kit_certificate()
            if kit is not None:
                statement = check_statement(document, sealed, [], kit, pinned=kit)
            else:
                statement = document["statement"]
                if statement["sha256"] != hashlib.sha256(sealed).hexdigest() or statement["size"] != len(
                    sealed
                ):
                    return "its statement does not match it"
        except BundleRejected as exc:
            return str(exc)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"its statement cannot be read ({exc})"
        if not isinstance(statement, dict) or statement.get("bundle_id") != bundle_id:
            return "its statement names another bundle"
        missing = [k for k in ("sha256", "size", "created_at") if not statement.get(k)]
        if missing:
            return f"its statement has no {missing[0]}"
        return None

    def _quarantine(self, paths: list[Path]) -> None:
        aside = self.directory / QUARANTINE
        aside.mkdir(exist_ok=True, mode=0o700)
        for path in paths:
            target, number = aside / path.name, 0
            while target.exists():  # one quarantined before under this name: never replaced
                number += 1
                target = aside / f"{path.name}.{number}"
            self.ops.rename(path, target)
        self.ops.fsync_directory(aside)
        self.ops.fsync_directory(self.directory)


def kit_outbox(config: KitConfig, keys: KitKeys) -> Outbox:
    """The outbox as configured: ``data_dir/outbox``, ``[outbox]``, the kit's certificates."""
    return Outbox(
        config.data_dir / "outbox",
        keys.kit_certificate,
        keys.central_signing_certificate,
        float(config["outbox.retention_days"]),
        int(config["outbox.reserve_visits"]),
    )
