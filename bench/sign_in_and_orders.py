"""Sign-in and work-order import: the PIN check's cost and import throughput.

Prints the time of one PIN check (Argon2id with the kit's PIN_HASHING parameters; the
goal is 100-300 ms on the build machine: slow for a thief with the database, quick for
an officer) against a hash of the same PIN with argon2-cffi's library defaults as the
named reference, a sign-in through the real daemon's API (HTTP round trip included),
and order import rows per second for a 10,000-row CSV (parse, check every row, store
in one transaction) against parsing alone.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from argon2 import PasswordHasher

from bench.stats import summary_ms, time_calls
from hil.credentials import officer_pkcs12, provision_simulation_credentials
from hil.rig import KitdProcess, simulation_officer
from hil.sample_orders import orders_csv, sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.store.database import database_path, open_database
from kitd.store.officers import PIN_HASHING
from kitd.store.work_orders import import_orders, parse_orders

GOAL_MS = (100.0, 300.0)


def _orders(count: int) -> bytes:
    """``count`` distinct, valid orders (the sequence digits of NIK and order id vary)."""
    rows = []
    for i in range(count):
        nik = f"357601470348{i % 9999 + 1:04d}"
        rows.append(sample_order(f"MJK-{i:05d}", nik=nik))
    return orders_csv(rows)


def _pin_checks(repeat: int) -> None:
    kit = PasswordHasher(**PIN_HASHING)
    reference = PasswordHasher()  # argon2-cffi's defaults (RFC 9106's low-memory profile)
    kit_hash, reference_hash = kit.hash("482913"), reference.hash("482913")
    ours = time_calls(lambda: kit.verify(kit_hash, "482913"), repeat)
    theirs = time_calls(lambda: reference.verify(reference_hash, "482913"), repeat)
    t, m, p = PIN_HASHING["time_cost"], PIN_HASHING["memory_cost"] // 1024, PIN_HASHING["parallelism"]
    params = f"t={t}, m={m} MiB, p={p}"
    median_ms = statistics.median(ours) * 1000
    met = "met" if GOAL_MS[0] <= median_ms <= GOAL_MS[1] else "NOT met"
    print(f"  PIN check, Argon2id ({params}): {summary_ms(ours)}")
    print(f"  reference, argon2-cffi defaults:        {summary_ms(theirs)}")
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"  goal {GOAL_MS[0]:.0f}-{GOAL_MS[1]:.0f} ms: {met}; {ratio:.1f}x the reference")


def _sign_in_through_the_daemon(repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kitd-bench-") as workdir:
        kitd = KitdProcess(Path(workdir)).start()
        try:
            officer = simulation_officer("officer")
            client = DaemonClient(kitd.url)
            body = {"nip": officer["nip"], "pin": officer["pin"]}
            client.checked("POST", "/api/v1/auth/signin", body)  # the first one re-hashes the PIN
            times = time_calls(lambda: client.checked("POST", "/api/v1/auth/signin", body), repeat)
            print(f"  sign-in through the API (HTTP, the kit's parameters): {summary_ms(times)}")
        finally:
            kitd.stop()


def _import(count: int) -> None:
    data = _orders(count)
    with tempfile.TemporaryDirectory(prefix="kitd-bench-") as workdir:
        conn = open_database(database_path(Path(workdir)))
        started = time.perf_counter()
        rows = parse_orders(data)
        parsed = time.perf_counter() - started
        report = import_orders(conn, rows, "3576")
        total = time.perf_counter() - started
        conn.close()
    assert report.imported == count and not report.rejected, report.to_json()["rejected"][:2]
    print(
        f"  import of a {count}-row CSV ({len(data) / 1e6:.1f} MB): {total:.2f} s, "
        f"{count / total:,.0f} rows/s (parsing alone: {count / parsed:,.0f} rows/s, "
        f"{parsed / total:.0%} of the time)"
    )


def _credential_unlock(repeat: int) -> None:
    """What an installed signing credential adds to a sign-in: Argon2id (light) and the kit's
    secret (HMAC; a file here, a token operation on a kit), then AES-GCM and the key's load."""
    with tempfile.TemporaryDirectory(prefix="kitd-bench-") as folder:
        root = Path(folder)
        provision_simulation_credentials(root / "keys", root / "office", "bench", [])
        keys = KitKeys(KeySettings(root / "keys"))
        nip = simulation_officer("officer")["nip"]
        keys.install_officer_credential(
            nip, officer_pkcs12(root / "office", root / "keys", nip, b"p"), b"p", "482913"
        )
        unlocks = time_calls(lambda: keys.unlock_officer(nip, "482913"), repeat)
    kit = PasswordHasher(**PIN_HASHING)
    kit_hash = kit.hash("482913")
    checks = time_calls(lambda: kit.verify(kit_hash, "482913"), repeat)
    print(f"  credential unlock at sign-in:     {summary_ms(unlocks)}")
    ratio = statistics.median(unlocks) / statistics.median(checks)
    total = (statistics.median(unlocks) + statistics.median(checks)) * 1000
    print(
        f"  sign-in with a credential: PIN check + unlock ~ {total:.0f} ms (the unlock adds {ratio:.2f}x)"
    )


def run(smoke: bool) -> None:
    _pin_checks(3 if smoke else 20)
    _credential_unlock(3 if smoke else 20)
    _sign_in_through_the_daemon(2 if smoke else 10)
    _import(1000 if smoke else 10_000)
