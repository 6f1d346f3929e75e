"""An outbox of its own, outside the daemon: injected finished visits sealed into it, and
receipts signed as a laptop or the central office would sign them.

Its one job: :func:`open_rig` gives the real outbox code (kitd.services.outbox, the kit's
database, the simulation credentials) on a data_dir, with the file operations the caller
passes (recording, failing); :func:`seal_new_visit` seals a finished visit made of one set of
simulated captures under a new visit and order id, :func:`seal_injected` stores it too;
:func:`receipt` signs a receipt. For the outbox's tests, its crash and power-cut harnesses
and its benchmark.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kitformats.signing import FileSigner
from kitformats.statements import sign_statement

from hil.credentials import signing_credential
from hil.rig import SIMULATION_KIT_ID, install_simulation_credentials, simulation_officer
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit, finished_visit
from kitd.crypto.bundle import SealedBundle
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.durable_files import DISK, FileOps
from kitd.services.outbox import Outbox
from kitd.services.sealing import BundleSealer
from kitd.store.database import database_path, open_database
from kitd.store.work_orders import import_orders

OFFICER = simulation_officer("officer")["nip"]


@dataclass
class OutboxRig:
    data_dir: Path
    office_dir: Path
    conn: sqlite3.Connection
    keys: KitKeys
    sealer: BundleSealer
    outbox: Outbox

    def close(self) -> None:
        self.conn.close()
        self.keys.close()

    def __enter__(self) -> OutboxRig:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_rig(
    data_dir: Path,
    office_dir: Path,
    ops: FileOps = DISK,
    retention_days: float = 7,
    reserve_visits: int = 0,
    outbox_type: type[Outbox] = Outbox,
) -> OutboxRig:
    """The outbox of the kit in ``data_dir`` (simulation credentials, the office's in
    ``office_dir``); ``outbox_type`` may be a broken one. Closed by ``close()`` or a ``with``."""
    install_simulation_credentials(data_dir, office_dir)
    conn = open_database(database_path(data_dir))
    keys = KitKeys(KeySettings(data_dir / "keys", "file", "", "kit", "kit-signing", ""))
    sealer = BundleSealer(keys, SIMULATION_KIT_ID, "3576", 385.0)
    outbox = outbox_type(
        data_dir / "outbox",
        keys.kit_certificate,
        keys.central_signing_certificate,
        retention_days,
        reserve_visits,
        ops,
    )
    return OutboxRig(data_dir, office_dir, conn, keys, sealer, outbox)


def sample_captures(seed: int = 1) -> SampleVisit:
    """One finished visit's simulated captures (a few seconds to make: make it once)."""
    return finished_visit(OFFICER, seed=seed)


def injected_visit(
    conn: sqlite3.Connection, sample: SampleVisit, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finished visit of ``sample``'s captures under visit id and order id ``name``, its
    order imported (pending): the record and the order."""
    order = sample_order(name)
    import_orders(conn, [order])
    record = dict(sample.visit, id=name, order_id=name)
    return record, order


def seal_visit(
    rig: OutboxRig,
    record: dict[str, Any],
    order: dict[str, Any],
    sample: SampleVisit,
    now: dt.datetime | None = None,
) -> SealedBundle:
    """Seal ``record`` in memory, as the kit does at finish (kit and officer sign)."""
    now = now or dt.datetime.now(dt.UTC)
    signer = rig.keys.officer_signer(record["officer"], None)
    return rig.sealer.seal(record, order, sample.captures, [], now, signer, True)


def seal_new_visit(
    rig: OutboxRig, sample: SampleVisit, name: str, now: dt.datetime | None = None
) -> tuple[SealedBundle, dict[str, Any]]:
    """Inject a finished visit ``name`` and seal it in memory, not yet stored: the bundle and
    the visit's finished record (what Outbox.store takes)."""
    record, order = injected_visit(rig.conn, sample, name)
    bundle = seal_visit(rig, record, order, sample, now)
    return bundle, finished_record(record, bundle)


def seal_injected(
    rig: OutboxRig, sample: SampleVisit, name: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Inject a finished visit, seal it and store it in the outbox; the visit's record as saved."""
    now = now or dt.datetime.now(dt.UTC)
    bundle, finished = seal_new_visit(rig, sample, name, now)
    return rig.outbox.store(rig.conn, bundle, finished, now)


def finished_record(record: dict[str, Any], bundle: SealedBundle) -> dict[str, Any]:
    """The finished visit's record as the kit hands it to Outbox.store: it names its bundle."""
    return dict(
        record,
        bundle={
            "id": bundle.bundle_id,
            "size": len(bundle.sealed),
            "sealed_at": bundle.statement["statement"]["created_at"],
        },
    )


def laptop_signer(rig: OutboxRig, name: str, trust: bool = True) -> FileSigner:
    """A laptop's receipts key from the simulation CA; trusted by the kit unless ``trust`` is false."""
    signer = signing_credential(rig.office_dir, rig.data_dir / "keys", f"laptop {name}")
    if trust:
        rig.outbox.trust_laptop(rig.conn, name, signer.certificate)
    return signer


def central_signer(rig: OutboxRig) -> FileSigner:
    """The central office's signing credential, trusted by the kit (kitctl keys trust central-signing)."""
    signer = signing_credential(rig.office_dir, rig.data_dir / "keys", "central signing")
    rig.keys.trust_central_signing(signer.certificate)
    return signer


def receipt(
    signer: FileSigner,
    kind: str,
    row: dict[str, Any],
    by: str,
    received_at: dt.datetime | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A signed receipt for the bundle of outbox ``row`` (``changes`` alter the statement)."""
    statement = {
        "type": kind,
        "bundle_id": row["bundle_id"],
        "sha256": row["sha256"],
        "size": row["size"],
        "received_at": (received_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "by": by,
        **changes,
    }
    return sign_statement(statement, signer)
