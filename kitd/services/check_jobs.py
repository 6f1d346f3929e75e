"""A device check's work on its device: run it as the slot's job, or say why it cannot.

Its one job: :func:`on_device` runs a check's blocking job on the device's own thread (the
slot's ``run_job``) and turns what stops it into a finding: a device that is not ready is
``not_available`` (its presence check already says why: the report does not fail it twice),
one busy with a capture is ``not_available`` too (nothing is wrong with it), and one that goes
away or answers wrongly in the middle of the check is ``failed``, naming what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kitd.errors import DeviceBusy, DeviceError, DeviceGone
from kitd.services.diagnostics import FAILED, NOT_AVAILABLE, Words, finding
from kitd.services.slots import CAPTURING, FIRMWARE_UPDATE, GUIDED_TEST

T = TypeVar("T")


def not_ready(name: Words, status: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return finding(
        NOT_AVAILABLE,
        {**(values or {}), "device_status": status},
        Words(
            f"{name.id.capitalize()} tidak siap ({status}): lihat pemeriksaan keberadaannya.",
            f"The {name.en} is not ready ({status}): its presence check says why.",
        ),
    )


async def on_device(
    slot: Any, job: Callable[[Any, threading.Event], T], name: Words
) -> tuple[T | None, dict[str, Any] | None]:
    """``(result, None)`` when the job ran, else ``(None, finding)`` saying why it did not."""
    status, reason, _since = slot.current()
    if status == "busy":
        return None, _busy(name, reason)
    if status != "ready":
        return None, not_ready(name, status)
    try:
        return await slot.run_job(job), None
    except DeviceBusy:
        return None, _busy(name, slot.current()[1])
    except DeviceGone as exc:
        return None, finding(
            FAILED,
            {"error": f"DeviceGone: {exc}"},
            Words(
                f"{name.id.capitalize()} terputus di tengah pemeriksaan ({exc}): periksa kabelnya, "
                "colokkan lagi, lalu ulangi.",
                f"The {name.en} went away in the middle of the check ({exc}): check its cable, "
                "plug it in again, then run the check again.",
            ),
        )
    except DeviceError as exc:
        return None, finding(
            FAILED,
            {"error": f"{type(exc).__name__}: {exc}"},
            Words(
                f"{name.id.capitalize()} tidak menjawab dengan benar ({exc}): cabut lalu colokkan "
                "lagi dan ulangi; jika tetap, ganti perangkatnya.",
                f"The {name.en} did not answer properly ({exc}): unplug it, plug it in again and "
                "run the check again; if it stays, replace it.",
            ),
        )


# What a busy device is doing (the slot's busy reason), in both languages.
BUSY_WITH = {
    GUIDED_TEST: ("uji terpandu", "a guided test"),
    FIRMWARE_UPDATE: ("pembaruan firmware", "a firmware update"),
}


def _busy(name: Words, reason: str = CAPTURING) -> dict[str, Any]:
    busy_id, busy_en = BUSY_WITH.get(reason, ("pengambilan", "a capture"))
    return finding(
        NOT_AVAILABLE,
        {"device_status": "busy", "reason": reason},
        Words(
            f"{name.id.capitalize()} sedang dipakai untuk {busy_id}: ulangi setelah selesai.",
            f"The {name.en} is in use by {busy_en}: run the check again when it is done.",
        ),
    )
