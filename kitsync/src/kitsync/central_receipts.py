"""``kit-sync push-receipts [KIT] DIR``: the central office's receipts back to the kit.

Its one job: read every ``*.json`` in DIR (one receipt, or an array of them, per file; the
kit's ``*.statement.json`` files a pull leaves are not receipts and are passed over), send
the central receipts to ``POST /api/v1/central-receipts`` and say per file what the kit did
with each: accepted (the bundle is delivered), duplicate (it was already) or refused, why.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kitformats.bundle_statements import STATEMENT_SUFFIX
from kitformats.named_files import read_named_file
from kitformats.receipts import ReceiptRefused, receipt_fields

from kitsync.errors import UsageProblem
from kitsync.ledger import Ledger
from kitsync.link import KitLink

BATCH = 500  # the kit's limit per request
# The kit's network API reads a body of at most 1 MiB: a batch stays well under it (a receipt
# signed with a long certificate chain is a few kB, and 500 of them are over a megabyte).
BATCH_BYTES = 900 * 1024


@dataclass
class ReceiptFile:
    """One receipt of a file: where it came from, and what became of it."""

    label: str  # the file's name, with [i] when the file holds an array
    document: Any
    bundle_id: str | None = None
    result: str | None = None  # accepted, duplicate, refused
    reason: str | None = None
    state: str | None = None

    def line(self) -> str:
        bundle = f" (bundle {self.bundle_id})" if self.bundle_id else ""
        if self.result == "refused":
            return f"{self.label}{bundle}: refused: {self.reason}"
        state = f", now {self.state}" if self.state else ""
        return f"{self.label}{bundle}: {self.result}{state}"


def receipt_files(directory: Path) -> list[Path]:
    """The JSON files of DIR that may hold receipts, by name."""
    if not directory.is_dir():
        raise UsageProblem(f"{directory}: no such folder")
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix.lower() == ".json"
        and not p.name.endswith(STATEMENT_SUFFIX)
        and not p.name.startswith(".")
        and p.is_file()
    )


def read_receipts(path: Path) -> list[ReceiptFile]:
    """Each receipt of one file, those that cannot be a central receipt already refused."""
    try:
        data = json.loads(read_named_file(path))
    except (OSError, ValueError) as exc:
        return [ReceiptFile(path.name, None, result="refused", reason=f"not a JSON file: {exc}")]
    documents = data if isinstance(data, list) else [data]
    receipts = []
    for index, document in enumerate(documents):
        label = f"{path.name}[{index}]" if isinstance(data, list) else path.name
        receipt = ReceiptFile(label, document)
        try:
            statement = receipt_fields(document)
            receipt.bundle_id = statement["bundle_id"]
            if statement["type"] != "central_receipt":
                raise ReceiptRefused(f"a {statement['type']}, not a central_receipt")
        except ReceiptRefused as exc:
            receipt.result, receipt.reason = "refused", str(exc)
        receipts.append(receipt)
    return receipts


def batches(sizes: list[int], max_count: int = BATCH, max_bytes: int = BATCH_BYTES) -> list[range]:
    """The documents of ``sizes`` (each one's JSON in bytes) in runs the kit takes in one
    request: at most ``max_count`` of them and ``max_bytes`` of body (a JSON array: brackets
    and a separator between each two). One larger than ``max_bytes`` alone is a run of its own."""
    runs: list[range] = []
    start, body = 0, 2
    for index, size in enumerate(sizes):
        grown = body + size + (2 if index > start else 0)
        if index > start and (index - start >= max_count or grown > max_bytes):
            runs.append(range(start, index))
            start, grown = index, 2 + size
        body = grown
    if start < len(sizes):
        runs.append(range(start, len(sizes)))
    return runs


def gathered_receipts(directory: Path) -> list[ReceiptFile]:
    """Every receipt of DIR's files, read before the kit is asked anything (UsageProblem when
    DIR is no folder)."""
    return [r for path in receipt_files(directory) for r in read_receipts(path)]


def push_receipts(
    link: KitLink, receipts: list[ReceiptFile], ledger: Ledger | None = None
) -> list[ReceiptFile]:
    """Every central receipt of ``receipts`` sent; each with the kit's result (or the laptop's
    refusal)."""
    to_send = [r for r in receipts if r.result is None]
    sizes = [len(json.dumps(r.document).encode()) for r in to_send]
    for run in batches(sizes):
        batch = to_send[run.start : run.stop]
        if sizes[run.start] > BATCH_BYTES:  # never sent: the kit reads no body that large
            receipt = batch[0]
            receipt.result = "refused"
            receipt.reason = (
                f"{sizes[run.start]} bytes: over the {BATCH_BYTES} a request to the kit may carry"
            )
            continue
        status, answer = link.call("POST", "/api/v1/central-receipts", [r.document for r in batch])
        results = answer.get("results") if isinstance(answer, dict) else None
        if status not in (200, 422) or not isinstance(results, list) or len(results) != len(batch):
            raise link.refusal("central receipts", status, answer)
        for receipt, result in zip(batch, results, strict=True):
            result = result if isinstance(result, dict) else {}
            receipt.result = str(result.get("result", "refused"))
            receipt.reason = result.get("reason")
            receipt.state = result.get("state")
            if ledger is not None and receipt.result in ("accepted", "duplicate") and receipt.bundle_id:
                now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                ledger.record_delivered(receipt.bundle_id, now)
    return receipts


def summary(receipts: list[ReceiptFile]) -> str:
    counts = {name: sum(r.result == name for r in receipts) for name in ("accepted", "duplicate", "refused")}
    said = ", ".join(f"{name} {count}" for name, count in counts.items())
    return f"{len(receipts)} receipts: {said}"
