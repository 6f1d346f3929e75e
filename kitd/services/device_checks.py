"""Diagnostics of the kit's devices: each one present, and what its own data says of its health.

Its one job: for a device slot, the checks of its kind: its presence first (in the quick subset
a visit runs before it starts: a missing fingerprint reader refuses the visit), then its kind's
own (kitd.services.fingerprint_checks, camera_checks, pad_checks).
"""

from __future__ import annotations

from typing import Any

from kitd.services.camera_checks import camera_checks
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, OK, WARNING, Check, Words, finding
from kitd.services.fingerprint_checks import fingerprint_checks
from kitd.services.pad_checks import pad_checks

# Kinds without which no visit can succeed (an iris or a signature may be excepted; ten
# fingers cannot all be).
VISIT_CRITICAL_KINDS = frozenset({"fingerprint"})


def presence_check(slot: Any) -> Check:
    """The device is there and answering (the slot's own status: its supervisor keeps it)."""
    name = DEVICE_NAMES.get(slot.kind, Words(slot.kind, slot.kind))

    async def run(kit: Any) -> dict[str, Any]:
        status, reason, _since = slot.current()
        values = {"status": status, "reason": reason, "uri": slot.uri}
        firmware = getattr(kit, "firmware", None)
        held = firmware.holding() if status == "busy" and firmware is not None else None
        if held is not None and held["device"] == slot.id:
            # Its firmware is being updated: the update holds it (and, if it was unplugged,
            # waits for it to come back), so whether it is there is the update's to say.
            return finding(
                WARNING,
                {**values, **held["values"]},
                Words(
                    f"Firmware {name.id} sedang diperbarui: keadaannya diketahui setelah pembaruan "
                    "selesai (kitfw list menunjukkan kemajuannya).",
                    f"The {name.en}'s firmware is being updated: its state is known once the update "
                    "ends (kitfw list shows how it goes).",
                ),
            )
        if status in ("ready", "busy"):
            return finding(OK, values)
        if status == "disconnected":
            return finding(
                FAILED,
                values,
                Words(
                    f"{name.id.capitalize()} tidak terhubung ({reason}): "
                    "periksa kabelnya, cabut lalu colokkan lagi.",
                    f"The {name.en} is not connected ({reason}): check its "
                    "cable, unplug it and plug it in again.",
                ),
            )
        return finding(
            WARNING if status != "error" else FAILED,
            values,
            Words(
                f"{name.id.capitalize()} bermasalah ({reason}): cabut "
                "lalu colokkan lagi; jika tetap, laporkan.",
                f"The {name.en} reports a problem ({reason}): unplug it and "
                "plug it in again; if it stays, report it.",
            ),
        )

    return Check(
        f"{slot.id}.present",
        slot.id,
        run,
        quick=True,
        time_limit_s=2.0,
        visit_critical=slot.kind in VISIT_CRITICAL_KINDS,
    )


def device_checks(slot: Any) -> list[Check]:
    checks = [presence_check(slot)]
    if slot.kind == "iris_camera":
        checks.extend(camera_checks(slot))
    elif slot.kind == "fingerprint":
        checks.extend(fingerprint_checks(slot))
    elif slot.kind == "signature":
        checks.extend(pad_checks(slot))
    return checks
