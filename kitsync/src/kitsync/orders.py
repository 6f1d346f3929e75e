"""``kit-sync push-orders [KIT] FILE``: the office's work orders into the kit.

Its one job: send a JSON or CSV file of orders to ``POST /api/v1/orders`` and print the kit's
row-by-row report (imported, unchanged, each rejected row with its reasons, warnings) the way
``kitctl orders import`` prints it on the kit. The kit checks every row (the work-order schema
of kitformats and its own rules): the laptop does not second-guess it.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from kitformats.named_files import read_named_file
from kitformats.work_orders import MAX_FILE_BYTES, file_too_large

from kitsync.errors import TransferFailed, UsageProblem
from kitsync.link import KitLink


def media_type(name: str, data: bytes) -> str:
    """JSON or CSV, by the file's extension, else by its first character."""
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        return "application/json"
    if suffix == ".csv":
        return "text/csv"
    text = data[:4096].decode("utf-8-sig", errors="replace").lstrip()
    return "application/json" if text.startswith(("[", "{")) else "text/csv"


def read_orders_file(path: Path) -> bytes:
    try:
        return read_named_file(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageProblem(f"{path}: a folder, not a file of orders") from None
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise UsageProblem(file_too_large(path)) from None
        raise UsageProblem(f"{path}: cannot read it: {exc.strerror}") from None


def push_orders(link: KitLink, path: Path, data: bytes) -> dict[str, Any]:
    """The kit's import report for the orders ``data`` read from ``path`` (read_orders_file,
    before the kit is asked anything: a missing file is a usage error, not a sync)."""
    status, answer = link.call("POST", "/api/v1/orders", body=data, content_type=media_type(path.name, data))
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("rejected"), list):
        if status in (400, 413):
            message = answer.get("message") if isinstance(answer, dict) else None
            raise TransferFailed(f"{path}: {message or f'refused whole (HTTP {status})'}")
        raise link.refusal(f"{path}", status, answer)
    return answer


def report_lines(name: str, report: dict[str, Any]) -> list[str]:
    """The report as ``kitctl orders import`` prints it."""
    rejected = report.get("rejected") or []
    warnings = report.get("warnings") or []
    lines = [
        f"{name}: imported {report.get('imported', 0)}, unchanged {report.get('unchanged', 0)}, "
        f"rejected {len(rejected)}, warnings {len(warnings)}"
    ]
    for entry in rejected:
        reasons = "; ".join(
            f"{e.get('field') or 'row'}: {e.get('message')}" for e in entry.get("errors") or []
        )
        lines.append(
            f"  row {entry.get('row')} ({entry.get('order_id') or 'no order_id'}) rejected: {reasons}"
        )
    for entry in warnings:
        lines.append(
            f"  row {entry.get('row')} ({entry.get('order_id')}) warning: "
            f"{entry.get('field')}: {entry.get('message')}"
        )
    return lines
