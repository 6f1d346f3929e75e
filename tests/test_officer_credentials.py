"""Officers' signing credentials: installed from PKCS#12, kept wrapped under the officer's
PIN and the kit's secret, opened at sign-in, gone at sign-out; refused when they should be.

Unit tests on KitKeys (file backend), kitctl officers credential in a real process, and a
HIL visit finished with the officer's installed credential against the real daemon.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from kitformats.signing import KeyProblem, common_name

from hil.credentials import foreign_ca_signer, officer_pkcs12, provision_simulation_credentials
from hil.rig import (
    add_simulation_officers,
    install_simulation_credentials,
    render_config,
    simulation_officer,
    venv_script,
)
from hil.sample_orders import sample_order
from kitd.cli.daemon_client import DaemonClient
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.crypto.officer_credentials import CredentialLocked

NIP = "198001012005011002"
PIN = "222222"


@pytest.fixture
def kit(tmp_path: Path) -> tuple[KitKeys, Path]:
    provision_simulation_credentials(tmp_path / "keys", tmp_path / "office", "kit-sim", [])
    return KitKeys(KeySettings(tmp_path / "keys")), tmp_path / "office"


def test_installed_credentials_open_with_the_pin_and_the_kits_secret_only(kit, tmp_path: Path) -> None:  # noqa: ANN001
    keys, office = kit
    p12 = officer_pkcs12(office, keys.dir, NIP, b"rahasia")
    certificate = keys.install_officer_credential(NIP, p12, b"rahasia", PIN)
    stored = keys.credential_path(NIP)
    assert stored.stat().st_mode & 0o077 == 0
    text = stored.read_text()
    assert "PRIVATE KEY" not in text and json.loads(text)["format"] == "kitd-officer-credential/1"
    signer = keys.unlock_officer(NIP, PIN)
    assert signer is not None and signer.certificate == certificate
    assert keys.officer_signer(NIP, signer) is signer
    with pytest.raises(KeyProblem, match="locked: it opens when the officer signs in"):
        keys.officer_signer(NIP)
    with pytest.raises(CredentialLocked, match="wrong PIN"):
        keys.unlock_officer(NIP, "222223")
    # A copy of the card without the kit's secret: the file alone opens with no PIN, and the
    # secret is reported missing, never made anew.
    (keys.dir / "kit-secret").rename(tmp_path / "secret.away")
    with pytest.raises(KeyProblem, match="the kit's secret is missing"):
        keys.unlock_officer(NIP, PIN)
    assert not (keys.dir / "kit-secret").exists()
    # Another kit's secret: the right PIN does not open it either.
    (keys.dir / "kit-secret").write_bytes(b"another kit's secret, 32 bytes.")
    (keys.dir / "kit-secret").chmod(0o600)
    with pytest.raises(CredentialLocked):
        keys.unlock_officer(NIP, PIN)
    (tmp_path / "secret.away").replace(keys.dir / "kit-secret")
    assert keys.unlock_officer(NIP, PIN) is not None
    # The file cannot make a sign-in take what it asks for (its own Argon2 parameters).
    greedy = json.loads(text)
    greedy["argon2id"]["memory_cost"] = 2**31
    stored.write_text(json.dumps(greedy))
    with pytest.raises(KeyProblem, match="damaged"):
        keys.unlock_officer(NIP, PIN)
    stored.write_text(text)
    # A changed file (another certificate put in) does not open either.
    document = json.loads(text)
    other = officer_pkcs12(office, keys.dir, NIP, b"x")
    document["certificate"] = (
        pkcs12.load_key_and_certificates(other, b"x")[1].public_bytes(serialization.Encoding.PEM).decode()
    )
    stored.write_text(json.dumps(document))
    with pytest.raises(CredentialLocked):
        keys.unlock_officer(NIP, PIN)
    assert keys.drop_officer_credential(NIP) and keys.unlock_officer(NIP, PIN) is None


def test_credentials_are_refused_with_their_reason(kit, tmp_path: Path) -> None:  # noqa: ANN001
    keys, office = kit
    with pytest.raises(KeyProblem, match="wrong password"):
        keys.install_officer_credential(NIP, officer_pkcs12(office, keys.dir, NIP, b"a"), b"b", PIN)
    with pytest.raises(KeyProblem, match="names 'officer 197503152000031001', not 'officer 1980"):
        p12 = officer_pkcs12(office, keys.dir, NIP, b"a", common_name="officer 197503152000031001")
        keys.install_officer_credential(NIP, p12, b"a", PIN)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    expired = officer_pkcs12(office, keys.dir, NIP, b"a", valid=(past, past + dt.timedelta(days=365)))
    with pytest.raises(KeyProblem, match="not valid now"):
        keys.install_officer_credential(NIP, expired, b"a", PIN)
    stranger = foreign_ca_signer(tmp_path, f"officer {NIP}")
    foreign = pkcs12.serialize_key_and_certificates(
        b"x", stranger.key, stranger.certificate, None, serialization.BestAvailableEncryption(b"a")
    )
    with pytest.raises(KeyProblem, match="does not chain to the CA 'kitd simulation CA'"):
        keys.install_officer_credential(NIP, foreign, b"a", PIN)
    assert not keys.credential_path(NIP).exists()


def test_kitctl_officers_credential_checks_the_officers_pin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    install_simulation_credentials(data, tmp_path / "office")
    config = tmp_path / "kitd.toml"
    config.write_text(render_config({"data_dir": str(data), "kit.id": "kit-sim", "auth.max_pin_failures": 2}))
    add_simulation_officers(data)
    p12 = tmp_path / "officer.p12"
    p12.write_bytes(officer_pkcs12(tmp_path / "office", data / "keys", NIP, b"rahasia"))

    def install(lines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_script("kitctl"), "officers", "credential", NIP, str(p12), "--stdin",
             "--config", str(config)],
            input=lines, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    done = install("rahasia\n999999\n")
    assert done.returncode == 1 and "wrapped under the officer's own PIN" in done.stderr, done.stderr
    done = install(f"rahasia\n{PIN}\n")
    assert done.returncode == 0 and "installed, valid until" in done.stdout, done.stderr
    assert (data / "keys" / "officers" / f"{NIP}.credential.json").exists()
    install("rahasia\n999999\n")
    done = install("rahasia\n999998\n")  # the second wrong PIN in a row locks (max 2)
    assert done.returncode == 1 and "locked" in done.stderr, done.stderr
    done = install(f"rahasia\n{PIN}\n")
    assert done.returncode == 1 and "locked" in done.stderr


def test_a_credential_password_that_is_not_utf8_is_named_in_one_line(tmp_path: Path) -> None:
    """Bytes that are no UTF-8 on stdin (a terminal set to Latin-1): one line saying so, before
    the PIN is tried (it was a UnicodeEncodeError's traceback)."""
    data = tmp_path / "data"
    install_simulation_credentials(data, tmp_path / "office")
    config = tmp_path / "kitd.toml"
    config.write_text(render_config({"data_dir": str(data), "kit.id": "kit-sim"}))
    add_simulation_officers(data)
    p12 = tmp_path / "officer.p12"
    p12.write_bytes(officer_pkcs12(tmp_path / "office", data / "keys", NIP, b"rahasia"))
    done = subprocess.run(
        [venv_script("kitctl"), "officers", "credential", NIP, str(p12), "--stdin", "--config", str(config)],
        input=b"r\xe4hasia\n" + PIN.encode() + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode() == (
        "kitctl officers credential: the password of officer.p12 is not UTF-8 text: type it where the "
        "terminal is UTF-8\n"
    )


def test_a_visit_is_signed_with_the_credential_its_officer_unlocked(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()  # stopped by the fixture, whatever happens
    keys = KitKeys(KeySettings(kitd.data_dir / "keys"))
    (keys.dir / "officers" / f"{NIP}.key").unlink()  # no plain key: only the installed credential
    keys.install_officer_credential(NIP, officer_pkcs12(kitd.office_dir, keys.dir, NIP, b"p"), b"p", PIN)
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-010")])
    signed_in = DaemonClient(kitd.url).checked("POST", "/api/v1/auth/signin", {"nip": NIP, "pin": PIN}).json()
    assert signed_in["credential"] == {"state": "unlocked", "problem": None}
    officer = DaemonClient(kitd.url, signed_in["token"])
    visit = officer.checked("POST", "/api/v1/visits", {"order_id": "MJK-010"}).json()
    base = f"/api/v1/visits/{visit['id']}"
    officer.checked("POST", f"{base}/identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    for item in [*(f"finger:{n}" for n in range(1, 11)), "iris:right", "iris:left", "signature"]:
        reason = {"iris": "missing", "signature": "cannot_sign"}.get(item.split(":")[0], "unable_to_print")
        officer.checked("POST", f"{base}/items/{item}/except", {"reason": reason, "confirm": True})
    # While the officer is signed in, a supervisor cannot finish the visit in the officer's name:
    # it is the officer's visit to work on.
    refused = supervisor.request("POST", f"{base}/finish")
    assert refused.status == 403 and refused.json()["error"] == "not_visits_officer", refused.body
    assert f"is officer {NIP}'s: only they work on it" in refused.json()["message"]
    officer.checked("POST", "/api/v1/auth/signout")
    # Signed out, the credential is closed: the officer's old token finishes nothing.
    assert officer.request("POST", f"{base}/finish").status == 401
    again = DaemonClient(kitd.url, kitd.sign_in("officer"))
    visit = again.checked("POST", f"{base}/finish").json()
    sealed = kitd.data_dir / "outbox" / f"{visit['bundle']['id']}.p7m"
    done = subprocess.run(
        [venv_script("kitctl"), "bundle", "verify", str(sealed),
         "--key", str(kitd.office_dir / "central.key"), "--ca", str(keys.dir / "ca.crt"), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signers"]["officer"] == f"officer {NIP}"
    installed = keys.unlock_officer(NIP, PIN)
    assert installed is not None and common_name(installed.certificate) == f"officer {NIP}"
    # The officer's own new PIN: the open credential is wrapped again, and opens with it.
    changed = again.request("POST", "/api/v1/auth/pin", {"pin": "999999", "new_pin": "135790"})
    assert changed.status == 403 and changed.json()["error"] == "wrong_pin"
    changed = again.checked("POST", "/api/v1/auth/pin", {"pin": PIN, "new_pin": "135790"}).json()
    assert changed == {"changed": True, "credential": "rewrapped"}
    with pytest.raises(CredentialLocked):
        keys.unlock_officer(NIP, PIN)
    assert keys.unlock_officer(NIP, "135790") is not None
    after = (
        DaemonClient(kitd.url).checked("POST", "/api/v1/auth/signin", {"nip": NIP, "pin": "135790"}).json()
    )
    assert after["credential"]["state"] == "unlocked"
    # A supervisor's new PIN: the credential, wrapped under the officer's, is removed.
    supervisor.checked("POST", f"/api/v1/officers/{NIP}/pin", {"pin": "246810"})
    assert not keys.credential_path(NIP).exists()
    fresh = (
        DaemonClient(kitd.url).checked("POST", "/api/v1/auth/signin", {"nip": NIP, "pin": "246810"}).json()
    )
    assert fresh["credential"]["state"] == "none" and simulation_officer("officer")["nip"] == NIP
