"""Diagnostics: the kit's checks, each bounded in time, run together into one report.

Its one job: what a check is (:class:`Check`: an id, the device it looks at, whether it is in
the quick subset a visit runs before it starts, its time limit, and its coroutine), what it
says (:func:`finding`: ``{"id", "device", "status", "values", "message"}`` with one actionable
sentence in Bahasa Indonesia and English for anything not ok), and running a list of them
(:func:`run_checks`): each under its own time limit (``failed`` with ``timed_out`` when it
hangs), a check that raises is ``failed`` naming what went wrong, and the run always
completes. The checks themselves live beside it (kitd.services.unit_checks, data_checks,
device_checks); storing and auditing a run is kitd.store.diagnostics'.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kitd import __version__
from kitd.clock import iso

log = logging.getLogger("kitd.diagnostics")

OK = "ok"
WARNING = "warning"
FAILED = "failed"
NOT_AVAILABLE = "not_available"
STATUSES = (OK, WARNING, FAILED, NOT_AVAILABLE)
# A run's overall status is its worst check's; not_available says nothing about the kit's health.
SEVERITY = {OK: 0, NOT_AVAILABLE: 0, WARNING: 1, FAILED: 2}

DEFAULT_TIME_LIMIT_S = 10.0


@dataclass(frozen=True)
class Words:
    """One sentence for a person: Bahasa Indonesia first, English second."""

    id: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "en": self.en}


def decimal_id(value: float, digits: int | None = None) -> str:
    """A number as Bahasa Indonesia writes it: a decimal comma (1,5 detik; 12,5 %), for the
    sentences beside the touch screen's own numbers, which are id-ID; `digits` after the comma,
    or as few as needed (None)."""
    text = f"{value:g}" if digits is None else f"{value:.{digits}f}"
    return text.replace(".", ",")


def finding(
    status: str, values: dict[str, Any] | None = None, message: Words | None = None
) -> dict[str, Any]:
    """What a check found: its status, its measured values, and (not ok) what to do about it."""
    if status not in STATUSES:
        raise ValueError(f"unknown check status {status!r}")
    if status not in (OK,) and message is None:
        raise ValueError(f"a {status} finding needs a message saying what to do")
    return {
        "status": status,
        "values": dict(values or {}),
        "message": None if message is None else message.to_json(),
    }


# The devices' names as officers and technicians read them, by kind.
DEVICE_NAMES = {
    "fingerprint": Words("pembaca sidik jari", "fingerprint reader"),
    "iris_camera": Words("kamera iris", "iris camera"),
    "signature": Words("bantalan tanda tangan", "signature pad"),
    "panel": Words("panel tombol", "button panel"),
    "peripheral": Words(
        "pengendali periferal (lampu iris, baterai)", "peripheral controller (iris light, battery)"
    ),
}


CheckRun = Callable[[Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Check:
    """One check: ``run(kit)`` returns a :func:`finding`."""

    id: str
    device: str | None
    run: CheckRun
    quick: bool = False
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    # Whether a visit cannot succeed when this check fails (the pre-visit check refuses it).
    visit_critical: bool = False


TIMED_OUT = Words(
    "Pemeriksaan ini tidak selesai tepat waktu: periksa kabel perangkat, lalu ulangi.",
    "This check did not finish in time: check the device's cable, then run it again.",
)


def _crashed(exc: BaseException) -> Words:
    what = f"{type(exc).__name__}: {exc}"
    return Words(
        f"Pemeriksaan gagal ({what}): ulangi; jika tetap gagal, kirim laporan ke vendor.",
        f"The check could not run ({what}): run it again; if it fails again, send the report to the vendor.",
    )


def _late(task: asyncio.Future[Any]) -> None:
    """A check that ran past its time limit ended after all: its outcome is only logged."""
    if not task.cancelled() and task.exception() is not None:
        log.info("a diagnostic check ended late: %s", task.exception())


async def run_check(check: Check, kit: Any) -> dict[str, Any]:
    """One check under its time limit; whatever happens, a finding (never an exception)."""
    started = time.monotonic()
    task = asyncio.ensure_future(check.run(kit))
    # Not wait_for: it waits for the cancelled check to finish, and a device job stuck in a read
    # holds its device until the read times out. The run goes on; the check ends on its own.
    done, _ = await asyncio.wait({task}, timeout=check.time_limit_s)
    if not done:
        task.cancel()
        task.add_done_callback(_late)
        found = finding(FAILED, {"timed_out": True, "time_limit_s": check.time_limit_s}, TIMED_OUT)
    elif task.cancelled():
        raise asyncio.CancelledError
    elif task.exception() is not None:
        exc = task.exception()
        log.warning("diagnostic check %s raised %s: %s", check.id, type(exc).__name__, exc)
        found = finding(FAILED, {"error": f"{type(exc).__name__}: {exc}"}, _crashed(exc))  # type: ignore[arg-type]
    else:
        found = task.result()
    return {
        "id": check.id,
        "device": check.device,
        **found,
        "duration_s": round(time.monotonic() - started, 3),
    }


def overall(findings: Sequence[dict[str, Any]]) -> str:
    worst = max((SEVERITY[f["status"]] for f in findings), default=0)
    return {0: OK, 1: WARNING, 2: FAILED}[worst]


async def run_checks(kit: Any, checks: Sequence[Check], quick: bool) -> dict[str, Any]:
    """Run ``checks`` (the quick ones only, when ``quick``) one after another — several read the
    same device — and return the run: when, the kit, the count per status, every finding."""
    chosen = [c for c in checks if c.quick or not quick]
    started_at, started = kit.clock.now(), time.monotonic()
    findings = [await run_check(check, kit) for check in chosen]
    await _asked_again_if_gone(kit, chosen, findings)
    return diagnostics_run(kit, findings, quick, iso(started_at), time.monotonic() - started)


async def _asked_again_if_gone(kit: Any, chosen: Sequence[Check], findings: list[dict[str, Any]]) -> None:
    """A device present at the start of the run whose later checks could not read it (it went
    away meanwhile: a camera that stalled, a reader unplugged) has its presence asked again at
    the end; if it is gone now, that finding replaces the first, so that the run fails instead
    of passing on a device that no longer answers."""
    for index, check in enumerate(chosen):
        if check.id != f"{check.device}.present" or findings[index]["status"] != OK:
            continue
        later = findings[index + 1 :]
        if not any(f["device"] == check.device and f["status"] == NOT_AVAILABLE for f in later):
            continue
        again = await run_check(check, kit)
        if again["status"] != OK:
            again["values"] = {**again.get("values", {}), "lost_during_run": True}
            findings[index] = again


def diagnostics_run(
    kit: Any, findings: Sequence[dict[str, Any]], quick: bool, started_at: str, duration_s: float
) -> dict[str, Any]:
    """A run of ``findings`` in the shape the history keeps (a guided test's is one finding)."""
    counts = {status: sum(f["status"] == status for f in findings) for status in STATUSES}
    return {
        "run_id": uuid.uuid4().hex[:12],
        "quick": quick,
        "started_at": started_at,
        "duration_s": round(duration_s, 3),
        "kit": {"id": kit.config.kit_id, "version": __version__},
        "status": overall(findings),
        "counts": counts,
        "checks": list(findings),
    }
