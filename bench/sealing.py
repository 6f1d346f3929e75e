"""Sealing a full visit: encoding, CMS and the whole, on one core, against openssl cms.

A finished visit of simulated captures (hil.sample_visit: ten fingers at 385 ppi, two
640 x 480 irises, a signature) is sealed as kitd seals it: the transaction's encoding
(scaling to 500 ppi and WSQ for fingers, lossless JPEG 2000 for irises, the records),
then the CMS part (SignedData by the kit and the officer, AuthEnvelopedData for the central
office and the escrow, the kit's statement), then the whole including the manifest and
the atomic write into an outbox. The process is pinned to one core (the issue's budget is
0.6 s on one core). The named reference for the CMS part is `openssl cms` signing (both
signers) and encrypting (AES-256-GCM, RSA-OAEP-SHA-256, both recipients) the same
container: two processes, timed the same way, so its figure includes two process starts
(`openssl version` alone is printed too, to show what that start costs); the target is at
most 1.5 times it.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.stats import summary_ms, time_calls
from hil.rig import SIMULATION_KIT_ID, install_simulation_credentials, simulation_officer
from hil.sample_visit import finished_visit
from kitd.crypto.bundle import SealingKeys, seal_bundle
from kitd.crypto.container import MANIFEST_NAME, TRANSACTION_NAME, pack_container
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.crypto.transaction import build_transaction
from kitd.services.sealing import BundleSealer, transaction_header, visit_records

GOAL_S = 0.6
CMS_RATIO_GOAL = 1.5
OAEP = ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"]
OFFICER = simulation_officer("officer")["nip"]


def _openssl_seal(keys: Path, container: Path, out: Path) -> None:
    signed = out / "signed.der"
    officer = keys / "officers" / OFFICER
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-outform", "DER",
         "-in", container, "-out", signed,
         "-signer", keys / "kit.crt", "-inkey", keys / "kit.key",
         "-signer", f"{officer}.crt", "-inkey", f"{officer}.key"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "cms", "-encrypt", "-binary", "-aes-256-gcm", "-inform", "DER", "-outform", "DER",
         "-in", signed, "-out", out / "sealed.der",
         "-recip", keys / "recipients" / "central.crt", *OAEP,
         "-recip", keys / "recipients" / "escrow.crt", *OAEP],
        check=True, capture_output=True,
    )  # fmt: skip


def run(smoke: bool) -> None:
    repeat = 3 if smoke else 15
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else set()
    if pinned:
        os.sched_setaffinity(0, {min(before)})
    try:
        _run(repeat)
    finally:
        if pinned:
            os.sched_setaffinity(0, before)


def _run(repeat: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # as in kitd: no OpenCV worker threads
    sample = finished_visit(OFFICER)
    with tempfile.TemporaryDirectory(prefix="kitd-bench-seal-") as folder:
        root = Path(folder)
        install_simulation_credentials(root / "data", root / "office")
        keys_dir = root / "data" / "keys"
        sealer = BundleSealer(KitKeys(KeySettings(keys_dir)), SIMULATION_KIT_ID, "3576", 385.0)
        keys: SealingKeys = sealer.keys_for(OFFICER)
        records = visit_records(sample.visit["items"], sample.captures, 385.0)
        sealed = sealer.seal(sample.visit, sample.order, sample.captures, [])
        header = transaction_header(
            "bench", SIMULATION_KIT_ID, "3576", dt.datetime.now(dt.UTC), sample.visit, sample.order
        )

        def encode() -> bytes:
            return build_transaction(
                header, records.fingers, records.missing, records.irises, records.signature
            )

        transaction = encode()
        manifest = {"format": "kitd-bundle/1"}  # CMS does not look inside: any manifest costs the same
        now = dt.datetime.now(dt.UTC)

        encoding = time_calls(encode, repeat)
        cms = time_calls(
            lambda: seal_bundle("bench", transaction, manifest, keys, now, SIMULATION_KIT_ID), repeat
        )
        whole = time_calls(lambda: sealer.seal(sample.visit, sample.order, sample.captures, []), repeat)
        container = root / "container.tar"
        container.write_bytes(
            pack_container({TRANSACTION_NAME: transaction, MANIFEST_NAME: b'{"format":"kitd-bundle/1"}'})
        )
        reference = time_calls(lambda: _openssl_seal(keys_dir, container, root), repeat)
        start_only = time_calls(
            lambda: subprocess.run(["openssl", "version"], check=True, capture_output=True), repeat
        )
        openssl_size = (root / "sealed.der").stat().st_size
    median = statistics.median
    print(
        f"  a visit: 10 fingers (256 x 180, 385 ppi), 2 irises (640 x 480), signature; 1 core, {repeat} runs"
    )
    print(f"  encoding (500 ppi + WSQ, JPEG 2000, records): {summary_ms(encoding)}")
    print(f"  CMS (kit + officer sign, AES-256-GCM for 2 recipients, statement): {summary_ms(cms)}")
    print(f"  reference, openssl cms -sign then -encrypt (2 processes): {summary_ms(reference)}")
    print(f"  (one openssl process start, 'openssl version': {summary_ms(start_only)})")
    ratio = median(cms) / median(reference)
    verdict = "met" if ratio <= CMS_RATIO_GOAL else "NOT met"
    print(f"  CMS / openssl: {ratio:.2f}x (target <= {CMS_RATIO_GOAL}x: {verdict})")
    met = "met" if median(whole) <= GOAL_S else "NOT met"
    print(
        f"  whole seal (manifest included, in memory; bench/outbox adds the write): "
        f"{summary_ms(whole)}; <= {GOAL_S} s: {met}"
    )
    print(
        f"  bundle: {len(sealed.sealed) / 1024:.0f} KiB sealed, {len(records.fingers)} fingers "
        f"(openssl's envelope of the same container: {openssl_size / 1024:.0f} KiB)"
    )
