"""Sealing a finished visit: its captures become one sealed bundle in the outbox.

Its one job: :class:`BundleSealer` turns a visit's record, its order and its in-memory
captures into the ANSI/NIST-ITL transaction and the manifest and seals them (kit and officer
sign, the central office and the escrow can open), in memory: the outbox
(kitd.services.outbox) writes the sealed file and the kit's statement. Nothing biometric
touches the disk before it is sealed. The keys are the kit's (kitd.crypto.kit_keys: ``data_dir/keys/`` and the
configured backend); :meth:`BundleSealer.problem` says, before any visit, what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from kitformats.signing import KeyProblem, Signer

from kitd import __version__
from kitd.capture.signature import render_signature, signature_from_json
from kitd.clock import KitClock
from kitd.config import KitConfig
from kitd.crypto.bundle import SealedBundle, SealingKeys, seal_bundle
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.crypto.manifest import ManifestError, build_manifest, item_entry
from kitd.crypto.transaction import (
    FingerImpression,
    IrisImage,
    MissingFinger,
    SignatureSample,
    TransactionError,
    TransactionHeader,
    build_transaction,
    record_digests,
)
from kitd.errors import KitError
from kitd.services.captures import Capture

log = logging.getLogger("kitd.sealing")
# The credentials (KitKeys.status names) without which no visit can be sealed.
SEALING_CREDENTIALS = ("kit", "recipient central", "recipient escrow")
# An excepted finger's reason as the transaction's amputated/unable-to-print code.
AMPUTATION_CODES = {"amputated": "XX"}  # every other reason: "UP", unable to print


class SealingNotReady(KitError):
    """No visit can start: the kit could not seal it (its key, certificate or recipients)."""


class SealingFailed(KitError):
    """A finished visit could not be sealed; the visit stays in review, nothing is lost."""


def _capture_pixels(capture: Capture, item: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(capture.body, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SealingFailed(f"item '{item}': its capture is not a readable image")
    return image


def _quality(item: Mapping[str, Any]) -> int:
    return int(round(min(max(float(item["score"] or 0.0), 0.0), 100.0)))


@dataclass(frozen=True)
class VisitRecords:
    fingers: list[FingerImpression]
    missing: list[MissingFinger]
    irises: list[IrisImage]
    signature: SignatureSample | None
    # item name -> the name of its record in the transaction (None: excepted)
    record_of: dict[str, str | None]


def visit_records(
    items: Sequence[Mapping[str, Any]], captures: Mapping[str, Capture], ppi: float
) -> VisitRecords:
    """What each item of a finished visit puts into the transaction."""
    fingers: list[FingerImpression] = []
    missing: list[MissingFinger] = []
    irises: list[IrisImage] = []
    signature = None
    record_of: dict[str, str | None] = {}
    for item in items:
        name, status = item["item"], item["status"]
        kind = name.split(":", 1)[0]
        if status == "excepted":
            record_of[name] = None
            if kind == "finger":
                code = AMPUTATION_CODES.get(item["exception"]["reason"], "UP")
                position = int(name.split(":")[1])
                missing.append(MissingFinger(position, code))
                record_of[name] = f"type-14:fgp-{position}:excepted"
            continue
        capture = captures.get(name)
        if capture is None:
            raise SealingFailed(f"item '{name}' is {status} but its capture is gone: retake it")
        if kind in ("finger", "thumbprint"):
            position = int(item["finger"]) if kind == "thumbprint" else int(name.split(":")[1])
            fingers.append(
                FingerImpression(
                    position, _capture_pixels(capture, name), ppi, _quality(item), kind == "thumbprint"
                )
            )
            record_of[name] = f"type-14:fgp-{position}" + (":signature" if kind == "thumbprint" else "")
        elif kind == "iris":
            metrics = capture.report.metrics if capture.report is not None else {}
            try:
                pupil = (metrics["pupil_x"], metrics["pupil_y"], metrics["pupil_r"])
                iris = (metrics["iris_x"], metrics["iris_y"], metrics["iris_r"])
            except KeyError:
                raise SealingFailed(
                    f"item '{name}': the eye was not located in its capture: retake it"
                ) from None
            eye = name.split(":")[1]
            irises.append(IrisImage(eye, _capture_pixels(capture, name), pupil, iris, _quality(item)))
            record_of[name] = f"type-17:{eye}"
        elif kind == "signature":
            doc = json.loads(capture.body)
            pen = signature_from_json(doc)
            device = doc["device"]
            signature = SignatureSample(
                render_signature(pen),
                list(doc["points"]),
                int(device["max_x"]),
                int(device["max_y"]),
                int(device["max_pressure"]),
                float(device["points_per_mm"]),
            )
            record_of[name] = "type-8"
    return VisitRecords(fingers, missing, irises, signature, record_of)


def transaction_header(
    bundle_id: str,
    kit_id: str,
    region_code: str,
    created: dt.datetime,
    visit: Mapping[str, Any],
    order: Mapping[str, Any],
) -> TransactionHeader:
    """The transaction's Type-1 and Type-2 facts for a finished visit (its record as JSON)."""
    identity = visit["identity"]
    return TransactionHeader(
        transaction_id=bundle_id,
        kit_id=kit_id,
        agency=region_code or kit_id,
        created=created,
        applicant=dict(order),
        visit={
            "visit_id": visit["id"],
            "order_id": visit["order_id"],
            "officer": visit["officer"],
            "started_at": visit["started_at"],
            "finished_at": visit["updated_at"],
            "consent_by": identity["consent_by"],
            "present": list(identity["present"]),
            "guardian": identity["guardian"],
        },
    )


def kit_keys(config: KitConfig, clock: KitClock | None = None) -> KitKeys:
    """The kit's credentials as configured (``[keys]``, ``data_dir/keys/``), judged on ``clock``
    (the kit's, as kept in data_dir, when none is given)."""
    return KitKeys(
        KeySettings(
            config.data_dir / "keys",
            str(config["keys.backend"]),
            str(config["keys.pkcs11_module"]),
            str(config["keys.token_label"]),
            str(config["keys.key_label"]),
            str(config["keys.pin_file"]),
        ),
        (clock or KitClock.for_config(config)).now,
    )


class BundleSealer:
    """Seals finished visits with the kit's credentials (:class:`KitKeys`)."""

    def __init__(
        self,
        keys: KitKeys,
        kit_id: str,
        region_code: str,
        fingerprint_ppi: float,
        clock: KitClock | None = None,
    ) -> None:
        self.keys = keys
        # Bundles' times and their manifests' clock facts (the kit's; the system's when none).
        self.clock = clock or KitClock(None)
        self.kit_id = kit_id
        self.region_code = region_code
        self.fingerprint_ppi = fingerprint_ppi

    def keys_for(
        self, officer: str, officer_signer: Signer | None = None, officer_signs: bool = True
    ) -> SealingKeys:
        """The kit's and ``officer``'s signers (``officer_signer`` when the officer's credential
        is open; none when ``officer_signs`` is false) and the recipients; KeyProblem names
        what is wrong."""
        keys = self.keys
        if not officer_signs:
            return SealingKeys(keys.kit_signer(self.kit_id), None, keys.recipients(), keys.chain())
        return SealingKeys(
            keys.kit_signer(self.kit_id),
            keys.officer_signer(officer, officer_signer),
            keys.recipients(),
            keys.chain(),
        )

    def problem(self) -> str | None:
        """Why no visit could be sealed now (the kit's key, certificate or a recipient), or None."""
        return self.readiness()["problem"]

    def readiness(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """``{"ready", "problem", "warnings"}`` for the status: what the kit's credentials say
        now (KitKeys.status: the kit's and the recipients' decide whether it can seal), and
        every credential within 30 days of its end."""
        entries = self.keys.status(self.kit_id, now)
        needed = [e for e in entries if e.name in SEALING_CREDENTIALS]
        problem = next((e.problem for e in needed if e.problem), None)
        warnings = [e.warning for e in entries if e.warning]
        return {"ready": problem is None, "problem": problem, "warnings": warnings}

    def require_ready(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise SealingNotReady(f"no visit can start: the kit could not seal it: {problem}")

    def seal(
        self,
        visit: Mapping[str, Any],
        order: Mapping[str, Any],
        captures: Mapping[str, Capture],
        devices: Sequence[Mapping[str, Any]],
        now: dt.datetime | None = None,
        officer_signer: Signer | None = None,
        officer_signs: bool = True,
    ) -> SealedBundle:
        """Seal a finished visit (its record as JSON), in memory.

        Any failure is SealingFailed saying why: the visit keeps its captures and can be
        finished again once the cause is mended.
        """
        created = now or self.clock.now()
        try:
            keys = self.keys_for(visit["officer"], officer_signer, officer_signs)
            return self._seal(keys, visit, order, captures, devices, created)
        except (KeyProblem, TransactionError, ManifestError) as exc:
            raise SealingFailed(f"cannot seal: {exc}") from None
        except SealingFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - a visit must stay finishable whatever broke
            log.exception("sealing visit %s failed", visit.get("id"))
            raise SealingFailed(f"cannot seal: {type(exc).__name__}: {exc}") from None

    def _seal(
        self,
        keys: SealingKeys,
        visit: Mapping[str, Any],
        order: Mapping[str, Any],
        captures: Mapping[str, Capture],
        devices: Sequence[Mapping[str, Any]],
        created: dt.datetime,
    ) -> SealedBundle:
        bundle_id = str(uuid.uuid4())
        records = visit_records(visit["items"], captures, self.fingerprint_ppi)
        header = transaction_header(bundle_id, self.kit_id, self.region_code, created, visit, order)
        transaction = build_transaction(
            header, records.fingers, records.missing, records.irises, records.signature
        )
        digests = record_digests(transaction)
        metrics_of = {n: (c.report.metrics if c.report is not None else {}) for n, c in captures.items()}
        items = [
            item_entry(i, metrics_of.get(i["item"]), records.record_of.get(i["item"])) for i in visit["items"]
        ]
        manifest = build_manifest(
            bundle_id=bundle_id,
            created_at=created.isoformat(timespec="seconds"),
            kit={
                "id": self.kit_id,
                "region_code": self.region_code,
                "software": "kitd",
                "version": __version__,
            },
            visit=visit,
            order=order,
            items=items,
            devices=devices,
            records=digests,
            clock_confirmed_at=self.clock.confirmed_at,
            officer_signed=keys.officer is not None,
        )
        return seal_bundle(bundle_id, transaction, manifest, keys, created, self.kit_id, visit["id"])
