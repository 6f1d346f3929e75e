"""``kit-sync pull``: every new sealed bundle of a kit onto the laptop's disk, then acknowledged.

Its one job: the order that makes a pull safe to kill at any point. For each bundle the kit
offers: check its kit-signed statement, download it (resumed, kitsync.download), check size
and SHA-256 against the statement, fsync, write its statement ``DIR/<id>.statement.json``
(atomically) and only then rename it to ``DIR/<id>.p7m``, fsync DIR, record it ``stored`` in the
ledger — and only then sign the laptop's receipt and send it (a batch of stored bundles' receipts
in one request), and record it ``acknowledged``. Bundles download two at a time and receipts
go out while later bundles download (:class:`Pull`), each bundle still through these steps;
bundles that came meanwhile share one fsync of DIR and one commit of the ledger.
A killed run leaves a ``.part`` (resumed next time), a statement or its hidden temporary file
without the sealed file (written again, the leftover cleared, when the bundle is fetched next
time) or a stored bundle (acknowledged next time without downloading it again); a repeated
pull finds nothing new and changes nothing.
Then the outcomes the kit recorded since the ledger's cursor go to ``DIR/outcomes.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import queue
import re
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from kitformats.bundle_statements import SEALED_SUFFIX, STATEMENT_SUFFIX, BundleRejected, check_statement
from kitformats.cms import SignatureInvalid, carried_certificates
from kitformats.receipts import receipt_statement
from kitformats.signing import KIT_CN_PREFIX, Signer, common_name, read_certificate
from kitformats.statements import sign_statement, signature_der

from kitsync.download import Download, part_path
from kitsync.durable_files import drop_unfinished_writes, fsync_directory, make_directory, write_atomically
from kitsync.errors import ConnectionLost, LaptopDiskFull, TransferFailed
from kitsync.ledger import Ledger
from kitsync.link import KitLink
from kitsync.places import KitFiles, KitRecord
from kitsync.progress import TransferProgress, transfer_progress

OUTCOMES_FILE = "outcomes.jsonl"
OUTCOMES_PAGE = 500
# Receipts sent in one request: one round trip and one ledger commit for several bundles, few
# enough that the kit checks them while later bundles still download.
RECEIPT_BATCH = 10
# Bundles downloaded at once, each on a connection of its own: while one waits for the kit or
# the disk, another's bytes come; the kit serves two about twice as fast as one.
FETCHERS = 2
# Bundles fetched ahead of the one the ledger records next: enough to keep the fetchers busy.
AHEAD = 2 * FETCHERS
# A bundle id names two files in DIR: nothing that could climb out of it or hide there.
BUNDLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Offer:
    """A bundle as ``GET /api/v1/bundles`` lists it."""

    bundle_id: str
    size: int
    sha256: str
    sealed_at: str | None
    statement: dict[str, Any]


def read_offer(item: Any) -> Offer:
    """One entry of the kit's bundle list, its fields checked (BundleRejected names one)."""
    if not isinstance(item, dict):
        raise BundleRejected("an entry of the kit's bundle list is not a JSON object")
    bundle_id = item.get("bundle_id")
    if not isinstance(bundle_id, str) or not BUNDLE_ID.fullmatch(bundle_id):
        raise BundleRejected(f"bundle_id {bundle_id!r} is not a bundle id this laptop takes as a file name")
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise BundleRejected(f"bundle {bundle_id}: 'size' is not a positive whole number")
    sha256 = item.get("sha256")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise BundleRejected(f"bundle {bundle_id}: 'sha256' is not 64 lower-case hex digits")
    statement = item.get("statement")
    if not isinstance(statement, dict):
        raise BundleRejected(f"bundle {bundle_id}: no 'statement' object")
    sealed_at = item.get("sealed_at")
    return Offer(bundle_id, size, sha256, sealed_at if isinstance(sealed_at, str) else None, statement)


def statement_signers(document: Any) -> list[x509.Certificate]:
    """The kit certificates a statement's signature carries (for a laptop that has none pinned)."""
    try:
        carried = carried_certificates(signature_der(document))
    except SignatureInvalid as exc:
        raise BundleRejected(f"statement: {exc}") from None
    return [c for c in carried if common_name(c).startswith(KIT_CN_PREFIX)]


def check_offer(offer: Offer, kit_id: str, kit_signing: x509.Certificate | None) -> dict[str, Any]:
    """The offer's statement, checked: signed by the kit's signing certificate pinned at pairing
    (or, where the kit gave none, by the kit certificate it carries, whose name must be this
    kit's), of this kit, and saying what the listing says of the file."""
    candidates = [kit_signing] if kit_signing is not None else statement_signers(offer.statement)
    if not candidates:
        raise BundleRejected(f"bundle {offer.bundle_id}: statement: carries no kit certificate")
    failure: BundleRejected | None = None
    for pinned in candidates:
        try:
            statement = check_statement(offer.statement, None, [], pinned=pinned)
            break
        except BundleRejected as exc:
            failure = failure or exc
    else:
        assert failure is not None
        raise BundleRejected(f"bundle {offer.bundle_id}: {failure}")
    if statement.get("kit_id") != kit_id:
        raise BundleRejected(
            f"bundle {offer.bundle_id}: statement: of kit {statement.get('kit_id')!r}, not {kit_id}"
        )
    for name in ("bundle_id", "sha256", "size"):
        if statement.get(name) != getattr(offer, name):
            raise BundleRejected(
                f"bundle {offer.bundle_id}: statement: its {name} is not the one the kit lists"
            )
    return statement


def bundle_paths(directory: Path, bundle_id: str) -> tuple[Path, Path]:
    """Where a bundle's sealed file and its statement go: the names the kit's outbox uses."""
    return directory / f"{bundle_id}{SEALED_SUFFIX}", directory / f"{bundle_id}{STATEMENT_SUFFIX}"


def laptop_receipt(
    offer_id: str, sha256: str, size: int, by: str, signer: Signer, now: dt.datetime
) -> dict[str, Any]:
    """The laptop's signed receipt of a bundle it holds."""
    statement = receipt_statement("laptop_receipt", offer_id, sha256, size, now, by)
    return sign_statement(statement, signer, signing_time=now)


@dataclass(frozen=True)
class Stored:
    """A bundle on the laptop's disk whose receipt is to be sent (the same one again, when
    the kit lost the one it had taken)."""

    bundle_id: str
    sha256: str
    size: int
    receipt: dict[str, Any] | None = None


@dataclass
class PullReport:
    kit_id: str
    address: str
    offered: int = 0
    pulled: list[str] = field(default_factory=list)
    pulled_bytes: int = 0
    acknowledged: int = 0  # receipts the kit took in this run
    failures: list[str] = field(default_factory=list)
    outcomes: int = 0
    outcomes_file: Path | None = None

    def summary(self) -> str:
        size = f" ({self.pulled_bytes / 1e6:.1f} MB)" if self.pulled else ""
        failed = f", {len(self.failures)} failed" if self.failures else ""
        outcomes = (
            f"; {self.outcomes} new outcomes -> {self.outcomes_file}"
            if self.outcomes
            else "; no new outcomes"
        )
        return (
            f"kit {self.kit_id} ({self.address}): {self.offered} offered, {len(self.pulled)} pulled{size}, "
            f"{self.acknowledged} acknowledged{failed}{outcomes}"
        )


@dataclass(frozen=True)
class Fetched:
    """A bundle a fetcher brought: its sealed file and its statement in DIR, each fsynced, their
    names not yet (an fsync of DIR), and neither in the ledger yet."""

    offer: Offer
    statement: dict[str, Any]
    sealed: Path
    resumed_from: int


@dataclass
class Acknowledging:
    """Receipts on their way to the kit (sent by the acknowledging thread)."""

    batch: list[Stored]
    answer: Future[tuple[list[tuple[str, dict[str, Any]]], list[str]]]


class Pull:
    """One pull from one kit into one folder.

    Three kinds of work overlap, each bundle still going through the same steps in the same
    order: this thread checks each bundle's statement; ``FETCHERS`` threads, each on a
    connection of its own, download it and put it in place with its statement beside it; this
    thread makes their names durable and records them in the ledger, in the order the kit
    offered them, all those that came while it waited at once; one more thread signs and sends
    the stored bundles' receipts, ``RECEIPT_BATCH`` a request, on the link the pull was given,
    whose answers this thread records. Only this thread touches the ledger and the report.
    """

    def __init__(
        self,
        files: KitFiles,
        record: KitRecord,
        link: KitLink,
        directory: Path,
        signer: Signer,
        now: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.files = files
        self.record = record
        self.link = link
        self.directory = directory
        self.signer = signer
        self.now = now
        self.kit_signing = (
            read_certificate(files.kit_signing_certificate)
            if files.kit_signing_certificate.exists()
            else None
        )
        self.report = PullReport(record.kit_id, record.address)
        self.disk_full = False  # a download met the laptop's full disk: no more are begun

    def run(self, ledger: Ledger, progress: bool | None = None) -> PullReport:
        make_directory(self.directory)
        offers, rejected = self._offers()
        self.report.offered = len(offers) + len(rejected)
        self.report.failures.extend(rejected)
        acknowledged: set[str] = set()
        waiting: list[Stored] = []  # stored, their receipts not sent yet
        sending: deque[Acknowledging] = deque()
        fetching: deque[tuple[Offer, Future[Fetched]]] = deque()
        lost = False
        # A connection for each fetcher, taken by a download and given back after it (a link
        # connects only when first used).
        twins = [self.link.twin() for _ in range(FETCHERS)]
        links: queue.SimpleQueue[KitLink] = queue.SimpleQueue()
        for twin in twins:
            links.put(twin)
        with (
            transfer_progress(len(offers), sum(o.size for o in offers), progress) as bars,
            ThreadPoolExecutor(FETCHERS, thread_name_prefix="kit-sync-fetch") as fetchers,
            ThreadPoolExecutor(1, thread_name_prefix="kit-sync-receipts") as receipts,
        ):

            def send_full_batch() -> None:
                if len(waiting) >= RECEIPT_BATCH:
                    sending.append(self._send(waiting, receipts))

            try:
                for offer in offers:
                    if lost:
                        break
                    try:
                        held = self._held(offer, ledger)
                    except BundleRejected as exc:
                        self._failed(bars, str(exc))
                        continue
                    if held is not None:
                        bars.bundle(offer.bundle_id, offer.size)
                        bars.finished(offer.bundle_id)
                        waiting.append(held)
                    elif self.disk_full:
                        continue  # no download is begun on a full disk; those held still go on
                    else:
                        # Checked here, while the fetchers download the bundles before it: they
                        # go from one download to the next without waiting for a check.
                        try:
                            statement = check_offer(offer, self.record.kit_id, self.kit_signing)
                        except BundleRejected as exc:
                            self._failed(bars, str(exc))
                            continue
                        fetching.append((offer, fetchers.submit(self._fetch, offer, statement, links, bars)))
                    while len(fetching) >= AHEAD and not lost:
                        lost = self._settle(fetching, ledger, waiting, bars)
                    if not lost:
                        send_full_batch()
                    lost = self._recorded(sending, ledger, acknowledged, bars, wait=False) or lost
                while fetching and not lost:
                    lost = self._settle(fetching, ledger, waiting, bars)
                    if not lost:
                        send_full_batch()
            finally:
                # What is still on its way: not begun, dropped; begun, its files kept for the
                # next pull (a fetcher stores nothing in the ledger).
                for _, future in fetching:
                    future.cancel()
                for _, future in fetching:
                    if not future.cancelled():
                        try:
                            future.result()
                        except Exception:  # noqa: BLE001 - already told: the network is gone
                            pass
            if not lost:
                listed = {o.bundle_id for o in offers}
                waiting.extend(self._unlisted(ledger, listed | {w.bundle_id for w in waiting}))
                if waiting:
                    sending.append(self._send(waiting, receipts))
            # Receipts already sent are answered and recorded even when the network went.
            self._recorded(sending, ledger, acknowledged, bars, wait=True)
        for twin in twins:
            twin.close()
        unacknowledged = [
            {"bundle_id": o.bundle_id, "sealed_at": o.sealed_at}
            for o in offers
            if o.bundle_id not in acknowledged
        ]
        ledger.record_sync(_stamp(self.now()), [{"bundle_id": o.bundle_id} for o in offers], unacknowledged)
        if not lost:
            self.report.outcomes_file = self.directory / OUTCOMES_FILE
            try:
                self.report.outcomes = fetch_outcomes(self.link, ledger, self.directory, self.record.kit_id)
            except TransferFailed as exc:  # the bundles are done: the summary still tells of them
                self.report.failures.append(str(exc))
                print(f"kit-sync pull: {exc}", file=sys.stderr)
        return self.report

    def _failed(self, bars: TransferProgress, message: str) -> None:
        self.report.failures.append(message)
        bars.note(f"kit-sync pull: {message}")

    def _offers(self) -> tuple[list[Offer], list[str]]:
        status, answer = self.link.call("GET", "/api/v1/bundles")
        if status != 200:
            raise self.link.refusal("bundle list", status, answer)
        if not isinstance(answer, dict) or not isinstance(answer.get("bundles"), list):
            raise TransferFailed(f"bundle list: kit {self.record.kit_id} answered no 'bundles' array")
        offers, rejected = [], []
        for item in answer["bundles"]:
            try:
                offers.append(read_offer(item))
            except BundleRejected as exc:
                rejected.append(str(exc))
        return offers, rejected

    def _held(self, offer: Offer, ledger: Ledger) -> Stored | None:
        """What the receipt of an offered bundle this laptop holds already says; None when it
        is to be downloaded."""
        entry = ledger.bundle(offer.bundle_id)
        if entry is not None and (entry.sha256 != offer.sha256 or entry.size != offer.size):
            raise BundleRejected(
                f"bundle {offer.bundle_id}: the kit lists another SHA-256 or size than the copy this "
                f"laptop holds ({entry.path}); left alone"
            )
        if entry is not None and entry.receipt is not None:
            # The kit lists a bundle it took our receipt for: it lost it; the same receipt again.
            return Stored(offer.bundle_id, offer.sha256, offer.size, entry.receipt)
        if entry is not None and _still_there(Path(entry.path), entry.size):
            return Stored(offer.bundle_id, offer.sha256, offer.size)
        if entry is not None:
            ledger.forget(offer.bundle_id)  # its file is gone from the laptop: pull it again
        return None

    def _fetch(
        self,
        offer: Offer,
        statement: dict[str, Any],
        links: queue.SimpleQueue[KitLink],
        bars: TransferProgress,
    ) -> Fetched:
        """In a fetcher thread: the bundle of a checked offer downloaded (on a link of ``links``,
        given back after) and in place in DIR with its statement, both fsynced (the fsync of DIR
        and the ledger are the pull's thread's)."""
        sealed, statement_path = bundle_paths(self.directory, offer.bundle_id)
        bars.bundle(offer.bundle_id, offer.size)
        link = links.get()
        try:
            download = Download(
                link,
                offer.bundle_id,
                offer.size,
                offer.sha256,
                part_path(sealed),
                functools.partial(bars.update, offer.bundle_id),
            )
            download.run()
            # Here, not in the pull's thread: the fetchers write statements side by side.
            # The statement's name is durable (DIR fsynced) before the sealed file gets its own:
            # a laptop killed, or losing power, between the two leaves a statement to be written
            # again, never a bundle without its statement. The pull's thread makes the sealed
            # files' names that came meanwhile durable with one fsync of DIR.
            # A run killed while writing it left a hidden temporary file: this bundle's fetch
            # (one at a time, under the ledger's lock) is the one to clear it.
            statement_bytes = json.dumps(offer.statement, indent=1).encode() + b"\n"
            drop_unfinished_writes(statement_path)
            write_atomically(statement_path, statement_bytes)
            os.replace(part_path(sealed), sealed)
        finally:
            links.put(link)
            bars.finished(offer.bundle_id)
        return Fetched(offer, statement, sealed, download.resumed_from)

    def _settle(
        self,
        fetching: deque[tuple[Offer, Future[Fetched]]],
        ledger: Ledger,
        waiting: list[Stored],
        bars: TransferProgress,
    ) -> bool:
        """The first bundle of ``fetching`` (waited for) and those after it already fetched,
        taken off it: each recorded ``stored`` and put to wait for its receipt, or its failure
        told; True when the network is gone (the pull stops)."""
        ready = [fetching.popleft()]
        while fetching and fetching[0][1].done():
            ready.append(fetching.popleft())
        fetched: list[Fetched] = []
        lost = False
        for _, future in ready:
            try:
                fetched.append(future.result())
            except ConnectionLost as exc:
                self._failed(bars, str(exc))
                lost = True
            except LaptopDiskFull as exc:
                # No further bundle is begun; those stored are still acknowledged.
                self._failed(bars, str(exc))
                self.disk_full = True
            except (TransferFailed, BundleRejected) as exc:
                self._failed(bars, str(exc))
        if not fetched:
            return lost
        # One fsync of DIR, after the renames of every bundle here and of its statement, makes
        # all their names durable before the ledger records them stored (in one commit).
        fsync_directory(self.directory)
        ledger.record_stored_together(
            [
                (
                    f.offer.bundle_id,
                    f.offer.sha256,
                    f.offer.size,
                    f.offer.sealed_at or f.statement.get("created_at"),
                    f.sealed,
                )
                for f in fetched
            ],
            _stamp(self.now()),
        )
        for f in fetched:
            self.report.pulled.append(f.offer.bundle_id)
            self.report.pulled_bytes += f.offer.size - f.resumed_from
            waiting.append(Stored(f.offer.bundle_id, f.offer.sha256, f.offer.size))
        return lost

    def _unlisted(self, ledger: Ledger, listed: set[str]) -> list[Stored]:
        """Bundles stored here that the kit no longer offers: it took their receipt and the
        laptop never heard (killed, cut off); the receipt again says so (the kit answers
        duplicate). Not for a file the laptop lost: a receipt says it holds it."""
        return [
            Stored(entry.bundle_id, entry.sha256, entry.size)
            for entry in ledger.bundles()
            if entry.state == "stored"
            and entry.bundle_id not in listed
            and _still_there(Path(entry.path), entry.size)
        ]

    def _send(self, waiting: list[Stored], receipts: ThreadPoolExecutor) -> Acknowledging:
        """The receipts of the stored bundles in ``waiting`` (emptied) handed to the
        acknowledging thread."""
        batch, waiting[:] = list(waiting), []
        return Acknowledging(batch, receipts.submit(self._acknowledge, batch))

    def _recorded(
        self,
        sending: deque[Acknowledging],
        ledger: Ledger,
        acknowledged: set[str],
        bars: TransferProgress,
        wait: bool,
    ) -> bool:
        """The kit's answers to receipts sent, in order, recorded as far as they came (all of
        them, waiting, with ``wait``); True when the network is gone."""
        lost = False
        while sending and (wait or sending[0].answer.done()):
            try:
                taken, refused = sending.popleft().answer.result()
            except ConnectionLost as exc:
                self._failed(bars, str(exc))
                lost = True
                continue
            except TransferFailed as exc:
                self._failed(bars, str(exc))
                continue
            for message in refused:
                self._failed(bars, message)
            ledger.record_acknowledged(taken, _stamp(self.now()))
            self.report.acknowledged += len(taken)
            acknowledged.update(bundle_id for bundle_id, _ in taken)
        return lost

    def _acknowledge(self, batch: list[Stored]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """In the acknowledging thread: the laptop's receipts for stored bundles, sent in one
        request; those the kit took (bundle id, receipt) and why it refused each other one."""
        receipts = [
            stored.receipt
            or laptop_receipt(
                stored.bundle_id, stored.sha256, stored.size, self.record.laptop_name, self.signer, self.now()
            )
            for stored in batch
        ]
        status, answer = self.link.call("POST", "/api/v1/receipts", receipts)
        results = answer.get("results") if isinstance(answer, dict) else None
        if status not in (200, 422) or not isinstance(results, list) or len(results) != len(batch):
            what = (
                f"receipts for {len(batch)} bundles"
                if len(batch) > 1
                else f"receipt for bundle {batch[0].bundle_id}"
            )
            raise self.link.refusal(what, status, answer)
        taken, refused = [], []
        for stored, receipt, result in zip(batch, receipts, results, strict=True):
            result = result if isinstance(result, dict) else {}
            if result.get("result") in ("accepted", "duplicate"):
                taken.append((stored.bundle_id, receipt))
            else:
                reason = result.get("reason", "no reason given")
                refused.append(f"receipt for bundle {stored.bundle_id}: refused by the kit: {reason}")
        return taken, refused


def _still_there(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


# --- outcomes ----------------------------------------------------------------------------------


def last_cursor(path: Path, kit_id: str) -> int:
    """The highest cursor of ``kit_id``'s outcomes already in the file (0 when none): what a
    run killed between writing them and recording the cursor had written."""
    highest = 0
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    outcome = json.loads(line)
                except ValueError:
                    continue  # a line cut by a power cut
                if isinstance(outcome, dict) and outcome.get("kit_id") == kit_id:
                    cursor = outcome.get("cursor")
                    if isinstance(cursor, int) and not isinstance(cursor, bool):
                        highest = max(highest, cursor)
    except FileNotFoundError:
        pass
    return highest


def append_lines(path: Path, lines: list[str]) -> None:
    """``lines`` at the end of ``path``, fsynced; a line a power cut left unfinished is ended first."""
    data = "".join(line + "\n" for line in lines).encode()
    with open(path, "a+b") as out:
        size = out.seek(0, os.SEEK_END)
        if size:
            out.seek(size - 1)
            if out.read(1) != b"\n":
                data = b"\n" + data
        out.write(data)  # append mode: at the end, wherever the last seek was
        out.flush()
        os.fsync(out.fileno())


def fetch_outcomes(link: KitLink, ledger: Ledger, directory: Path, kit_id: str) -> int:
    """The kit's outcomes after the ledger's cursor, appended to ``DIR/outcomes.jsonl`` (each
    with its ``kit_id``, several kits may share a folder); how many were new."""
    path = directory / OUTCOMES_FILE
    cursor = max(ledger.outcomes_cursor, last_cursor(path, kit_id))
    count = 0
    while True:
        status, answer = link.call("GET", f"/api/v1/outcomes?after={cursor}&limit={OUTCOMES_PAGE}")
        if status != 200:
            raise link.refusal("outcomes", status, answer)
        outcomes = answer.get("outcomes") if isinstance(answer, dict) else None
        following = answer.get("next") if isinstance(answer, dict) else None
        if not isinstance(outcomes, list) or not isinstance(following, int) or isinstance(following, bool):
            raise TransferFailed(f"outcomes: kit {kit_id} answered no 'outcomes' array and 'next' cursor")
        new = [
            o
            for o in outcomes
            if isinstance(o, dict) and isinstance(o.get("cursor"), int) and o["cursor"] > cursor
        ]
        if new:
            append_lines(path, [json.dumps({"kit_id": kit_id, **o}, ensure_ascii=False) for o in new])
            count += len(new)
        if following <= cursor:
            break
        cursor = following
        ledger.outcomes_cursor = cursor
        if len(outcomes) < OUTCOMES_PAGE:
            break
    return count
