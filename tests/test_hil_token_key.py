"""HIL: the real kitd seals a visit with the kit's key inside a PKCS#11 token (SoftHSM2) and
the officer's installed credential, wrapped with the token's secret.

The technician's path on a kit: `kitctl keys init` makes the key in the token and a
request, the office's (simulation) CA signs it, `kitctl keys install` puts the certificate
in; the daemon, configured with keys.backend = "pkcs11", seals a finished visit, and
`kitctl bundle verify` accepts the bundle. The visit has every item excepted, so that no
device is needed: what is under test is the key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from hil.credentials import officer_pkcs12, sign_request
from hil.rig import KitdProcess, simulation_officer, venv_script
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
pytestmark = pytest.mark.skipif(
    not SOFTHSM.exists() or shutil.which("softhsm2-util") is None, reason="needs SoftHSM2 (Debian softhsm2)"
)


@pytest.fixture
def token(tmp_path: Path) -> dict[str, str]:
    """A SoftHSM2 token 'kit' of this test's own, and the environment that finds it."""
    (tmp_path / "tokens").mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(config))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "kit", "--pin", "4826", "--so-pin", "9713"],
        env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    pin_file = tmp_path / "token.pin"
    pin_file.write_text("4826\n")
    pin_file.chmod(0o600)
    return {"SOFTHSM2_CONF": str(config), "pin_file": str(pin_file)}


def test_a_visit_sealed_with_the_kit_key_in_a_token(tmp_path: Path, token: dict[str, str], rig_logs) -> None:  # noqa: ANN001
    settings = {
        "keys.backend": "pkcs11",
        "keys.pkcs11_module": str(SOFTHSM),
        "keys.pin_file": token["pin_file"],
    }
    kitd = KitdProcess(tmp_path / "kitd", settings=settings, env={"SOFTHSM2_CONF": token["SOFTHSM2_CONF"]})
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    keys = kitd.data_dir / "keys"
    (keys / "kit.key").unlink()  # the simulation's file key: this kit's key is in the token
    (keys / "kit.crt").unlink()
    status = kitd.client.checked("GET", "/api/v1/status").json()["sealing"]
    assert not status["ready"] and "kit.crt: no such certificate" in status["problem"]

    def kitctl(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_script("kitctl"), *map(str, args)],
            env=kitd.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    done = kitctl("keys", "init", "--config", kitd.config_path)
    assert done.returncode == 0 and "made in the token" in done.stdout, done.stderr
    assert not (keys / "kit.key").exists()  # nothing of the key on the disk
    certificate = tmp_path / "kit.crt"
    issued = sign_request((keys / "kit.csr").read_bytes(), kitd.office_dir, keys)
    certificate.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    done = kitctl("keys", "install", certificate, keys / "ca.crt", "--config", kitd.config_path)
    assert done.returncode == 0, done.stderr
    # The officer's credential, wrapped with the token's secret: the kit's part of its key.
    nip = simulation_officer("officer")["nip"]
    (keys / "officers" / f"{nip}.key").unlink()
    p12 = tmp_path / "officer.p12"
    p12.write_bytes(officer_pkcs12(kitd.office_dir, keys, nip, b"rahasia"))
    done = subprocess.run(
        [venv_script("kitctl"), "officers", "credential", nip, str(p12), "--stdin",
         "--config", str(kitd.config_path)],
        input=f"rahasia\n{simulation_officer('officer')['pin']}\n",
        env=kitd.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (keys / "kit-secret").exists()  # the secret is in the token, not on the disk
    listed = json.loads(kitctl("keys", "status", "--json", "--config", kitd.config_path).stdout)
    assert listed[0]["name"] == "kit" and listed[0]["backend"] == "pkcs11" and listed[0]["problem"] is None
    assert kitd.client.checked("GET", "/api/v1/status").json()["sealing"]["ready"]

    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-009")])
    officer_pin = simulation_officer("officer")["pin"]
    signed_in = DaemonClient(kitd.url).checked(
        "POST", "/api/v1/auth/signin", {"nip": nip, "pin": officer_pin}
    )
    assert signed_in.json()["credential"] == {"state": "unlocked", "problem": None}
    officer = DaemonClient(kitd.url, signed_in.json()["token"])
    visit = officer.checked("POST", "/api/v1/visits", {"order_id": "MJK-009"}).json()
    base = f"/api/v1/visits/{visit['id']}"
    officer.checked("POST", f"{base}/identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    for item in [f"finger:{n}" for n in range(1, 11)]:
        officer.checked("POST", f"{base}/items/{item}/except", {"reason": "amputated", "confirm": True})
    for item in ("iris:right", "iris:left"):
        officer.checked("POST", f"{base}/items/{item}/except", {"reason": "missing", "confirm": True})
    visit = officer.checked(
        "POST", f"{base}/items/signature/except", {"reason": "cannot_sign", "confirm": True}
    ).json()
    assert visit["state"] == "review"
    visit = officer.checked("POST", f"{base}/finish").json()
    assert visit["state"] == "finished" and visit["bundle"]
    sealed = kitd.data_dir / "outbox" / f"{visit['bundle']['id']}.p7m"
    done = kitctl(
        "bundle",
        "verify",
        sealed,
        "--key",
        kitd.office_dir / "central.key",
        "--ca",
        keys / "ca.crt",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["signers"]["kit"] == "kit kit-sim" and summary["items"]["excepted"] == 13
    assert summary["signers"]["officer"] == f"officer {simulation_officer('officer')['nip']}"
    assert kitd.stop() == 0
