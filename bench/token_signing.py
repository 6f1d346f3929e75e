"""Signatures through a PKCS#11 token (SoftHSM2) against the file backend, and a whole CMS.

Prints signatures per second of the kit's key inside a SoftHSM2 token (CKM_ECDSA over a
SHA-256 digest, DER-encoded) against the same through the file backend (a P-256 key in
cryptography) as the named reference, and the same for a whole SignedData of 1 KiB (what
a statement costs). A real secure element is far slower than SoftHSM (an ATECC608 takes
tens of milliseconds a signature); these figures are the software's own share.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from kitformats.cms import sign_content

from bench.stats import time_calls
from hil.credentials import provision_simulation_credentials, sign_request
from kitd.crypto.pkcs11_keys import open_token

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PINS = ("--pin", "1234", "--so-pin", "5678")


def run(smoke: bool) -> None:
    if not SOFTHSM.exists() or shutil.which("softhsm2-util") is None:
        print("  skipped: SoftHSM2 is not installed (Debian package softhsm2)")
        return
    repeat = 200 if smoke else 3000
    with tempfile.TemporaryDirectory(prefix="kitd-bench-token-") as folder:
        root = Path(folder)
        (root / "tokens").mkdir()
        (root / "softhsm2.conf").write_text(f"directories.tokendir = {root / 'tokens'}\n")
        # SoftHSM reads its configuration when the module is first loaded in this process.
        os.environ["SOFTHSM2_CONF"] = str(root / "softhsm2.conf")
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "kit", *PINS],
            check=True, capture_output=True,
        )  # fmt: skip
        credentials = provision_simulation_credentials(root / "keys", root / "office", "bench", [])
        file_signer = credentials.kit_signer()
        with open_token(SOFTHSM, "kit", "1234") as token:
            token.generate("kit-signing")
            certificate = sign_request(token.csr("kit-signing", "kit bench"), root / "office", root / "keys")
            token_signer = token.signer("kit-signing", certificate)
            digest = os.urandom(32)
            content = os.urandom(1024)
            rates = {}
            for name, signer in (("token (SoftHSM2)", token_signer), ("file (reference)", file_signer)):
                signs = time_calls(lambda signer=signer: signer.sign_digest(digest), repeat)
                whole = time_calls(lambda signer=signer: sign_content(content, [signer]), repeat // 10)
                rates[name] = (1 / statistics.median(signs), 1 / statistics.median(whole))
    for name, (signs, whole) in rates.items():
        print(f"  {name:18s}: {signs:8.0f} signatures/s, {whole:6.0f} SignedData (1 KiB)/s")
    (token_signs, token_whole), (file_signs, file_whole) = rates.values()
    ratios = f"{token_signs / file_signs:.2f}x signatures, {token_whole / file_whole:.2f}x SignedData"
    print(f"  token / file: {ratios}")
