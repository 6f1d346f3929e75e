"""What the touch screen's status bar and its start-visit button need to know of the kit.

Its one job: :func:`device_readiness` says each device's state and whether it is there to
capture with, :func:`start_reasons` every reason a visit cannot start now, each with its
words in Bahasa Indonesia and English (:data:`START_REASONS`), and :func:`message_catalogue`
the officer-facing words the daemon owns (the assessors' feedback, these reasons) so that no
client retypes them. kitd.api.screen puts them together with the outbox and the caller.
"""

from __future__ import annotations

from typing import Any

from kitformats.signing import KeyProblem

from kitd.capture.fingerprint_quality import FEEDBACK_MESSAGES as FINGERPRINT_FEEDBACK
from kitd.capture.iris_quality import FEEDBACK_MESSAGES as IRIS_FEEDBACK
from kitd.capture.signature_quality import FEEDBACK_MESSAGES as SIGNATURE_FEEDBACK
from kitd.services.visits import ITEM_DEVICES
from kitd.store.officers import LANGUAGES

# A device the officer can capture with now: busy is in use by a session, still there.
PRESENT_STATUSES = ("ready", "busy")

# Why a visit cannot start now: (Bahasa Indonesia, English). `device_missing` is said once
# per kind of device a visit needs and the kit has none of present.
START_REASONS: dict[str, tuple[str, str]] = {
    "no_credential": (
        "Anda belum punya kunci tanda tangan di kit ini: minta supervisor memasangnya.",
        "You have no signing credential on this kit: ask a supervisor to install it.",
    ),
    "disk_reserve": (
        "Ruang penyimpanan hampir penuh: serahkan paket ke laptop dulu.",
        "The storage is nearly full: hand the bundles to a laptop first.",
    ),
    "sealing_not_ready": (
        "Kunci penyegelan kit belum siap: hubungi teknisi.",
        "The kit cannot seal recordings yet (its keys): call a technician.",
    ),
    "visit_active": (
        "Ada kunjungan yang sedang berjalan di kit ini: lanjutkan atau akhiri dulu.",
        "A visit is in progress on this kit: continue or end it first.",
    ),
    "visit_of_another": (
        "Kunjungan petugas lain masih terbuka di kit ini: petugas itu masuk untuk melanjutkannya, "
        "atau akhiri kunjungan itu dengan hasilnya.",
        "Another officer's visit is open on this kit: that officer signs in to continue it, or end "
        "it with its outcome.",
    ),
    "device_missing:fingerprint": (
        "Pemindai sidik jari tidak tersambung.",
        "The fingerprint reader is not connected.",
    ),
    "device_missing:iris_camera": (
        "Kamera iris tidak tersambung.",
        "The iris camera is not connected.",
    ),
    "device_missing:signature": (
        "Pad tanda tangan tidak tersambung.",
        "The signature pad is not connected.",
    ),
}


def _words(pair: tuple[str, str]) -> dict[str, str]:
    return dict(zip(LANGUAGES, pair, strict=True))


def _reason(code: str, device: str | None = None) -> dict[str, Any]:
    key = f"{code}:{device}" if device else code
    reason: dict[str, Any] = {"code": code, "message": _words(START_REASONS[key])}
    if device:
        reason["device"] = device
    return reason


def message_catalogue() -> dict[str, Any]:
    """Every officer-facing message the daemon owns, by code, in both languages."""
    feedback = {
        "fingerprint": FINGERPRINT_FEEDBACK,
        "iris": IRIS_FEEDBACK,
        "signature": SIGNATURE_FEEDBACK,
    }
    return {
        "languages": list(LANGUAGES),
        "feedback": {
            modality: {code: _words(pair) for code, pair in messages.items()}
            for modality, messages in feedback.items()
        },
        "reasons": {code: _words(pair) for code, pair in START_REASONS.items()},
    }


def can_sign(kit: Any, nip: str, credential: Any) -> bool:
    """Whether the officer could sign a bundle now: a credential their sign-in opened, or a
    plain key file (development, the simulation). Reads files: call it off the event loop."""
    try:
        kit.keys.officer_signer(nip, credential)
    except KeyProblem:
        return False
    return True


def device_readiness(kit: Any) -> list[dict[str, Any]]:
    readiness = []
    for slot in kit.slots.values():
        status, reason, _since = slot.current()
        readiness.append(
            {
                "id": slot.id,
                "kind": slot.kind,
                "status": status,
                "ready": status in PRESENT_STATUSES,
                "reason": reason,
            }
        )
    return readiness


def start_reasons(
    kit: Any, devices: list[dict[str, Any]], signs: bool, reserve_ok: bool, nip: str | None = None
) -> list[dict[str, Any]]:
    """Every reason a visit cannot start now for caller ``nip``, who can sign or not (none: it
    can)."""
    reasons = []
    active = kit.visits.active()
    if active:  # the kit runs one visit at a time: the caller's own, or another officer's
        reasons.append(_reason("visit_active" if active[0].officer == nip else "visit_of_another"))
    if not signs and kit.visits.require_officer_signature:
        reasons.append(_reason("no_credential"))
    if not reserve_ok:
        reasons.append(_reason("disk_reserve"))
    if kit.visits.sealer.problem() is not None:
        reasons.append(_reason("sealing_not_ready"))
    present = {d["kind"] for d in devices if d["ready"]}
    needed = dict.fromkeys(kind for kind, _modality in ITEM_DEVICES.values())
    for kind in needed:
        if kind not in present:
            reasons.append(_reason("device_missing", kind))
    return reasons
