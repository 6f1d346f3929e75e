"""kitctl keys in real processes, file backend: make the kit's key and its request, install
the certificate the (simulation) CA signs, install recipients, and read the status; every
wrong certificate refused with its reason before anything is replaced."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hil.credentials import (
    foreign_ca_signer,
    provision_simulation_credentials,
    recipient_certificate,
    sign_request,
    signing_credential,
)
from hil.rig import render_config, venv_script

KIT_ID = "kit-mjk-07"


@pytest.fixture
def kit(tmp_path: Path) -> dict[str, Path]:
    """A kit's config with no credentials, and an office with a CA (and its recipients)."""
    data = tmp_path / "data"
    config = tmp_path / "kitd.toml"
    config.write_text(render_config({"data_dir": str(data), "kit.id": KIT_ID}))
    office = tmp_path / "office"
    provision_simulation_credentials(tmp_path / "office-keys", office, "someone-else", [])
    return {
        "config": config,
        "data": data,
        "keys": data / "keys",
        "office": office,
        "ca": tmp_path / "office-keys",
    }


def kitctl(kit: dict[str, Path], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("kitctl"), "keys", *map(str, args), "--config", str(kit["config"])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def write(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_init_install_recipients_and_status(kit: dict[str, Path], tmp_path: Path) -> None:
    done = kitctl(kit, "status")
    assert done.returncode == 1 and "kit.key: no kit key (kitctl keys init makes one)" in done.stdout
    done = kitctl(kit, "init")
    assert done.returncode == 0, done.stderr
    assert (kit["keys"] / "kit.key").stat().st_mode & 0o077 == 0
    again = kitctl(kit, "init")
    assert again.returncode == 1 and "a kit key exists already" in again.stderr  # never overwritten
    request = (kit["keys"] / "kit.csr").read_bytes()
    assert x509.load_pem_x509_csr(request).subject.rfc4514_string() == f"CN=kit {KIT_ID}"
    certificate = write(tmp_path / "kit.crt", sign_request(request, kit["office"], kit["ca"]))
    done = kitctl(kit, "install", certificate, kit["ca"] / "ca.crt")
    assert done.returncode == 1 and "trust the office's CA first" in done.stderr  # never trusted by the way
    assert kitctl(kit, "trust", "ca", certificate).returncode == 1  # not a CA
    done = kitctl(kit, "trust", "ca", kit["ca"] / "ca.crt")
    assert done.returncode == 0, done.stderr
    done = kitctl(kit, "install", certificate)
    assert done.returncode == 0, done.stderr
    done = kitctl(
        kit, "recipients", kit["ca"] / "recipients" / "central.crt", kit["ca"] / "recipients" / "escrow.crt"
    )
    assert done.returncode == 0, done.stderr
    done = kitctl(kit, "trust", "central-signing", kit["ca"] / "officers" / "missing.crt")
    assert done.returncode == 1 and "cannot read" in done.stderr
    status = kitctl(kit, "status", "--json")
    assert status.returncode == 0, status.stdout
    entries = {e["name"]: e for e in json.loads(status.stdout)}
    assert (
        entries["kit"]["subject"].endswith(f"CN=kit {KIT_ID}")
        or entries["kit"]["subject"] == f"CN=kit {KIT_ID}"
    )
    assert entries["kit"]["backend"] == "file" and entries["kit"]["days_left"] > 3000
    assert entries["recipient central"]["problem"] is None and entries["ca"]["problem"] is None


def test_wrong_certificates_are_refused_with_their_reason(kit: dict[str, Path], tmp_path: Path) -> None:
    assert kitctl(kit, "init").returncode == 0
    assert kitctl(kit, "trust", "ca", kit["ca"] / "ca.crt").returncode == 0
    request = (kit["keys"] / "kit.csr").read_bytes()
    ca = kit["ca"] / "ca.crt"
    # A certificate for another key: the office signed someone else's request.
    other = tmp_path / "other"
    other.mkdir()
    stranger = foreign_ca_signer(other, f"kit {KIT_ID}")
    done = kitctl(kit, "install", write(tmp_path / "x.crt", stranger.certificate), other / "foreign-ca.crt")
    assert done.returncode == 1 and "for another key than the kit's" in done.stderr, done.stderr
    # Expired.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    expired = sign_request(request, kit["office"], kit["ca"], valid=(past, past + dt.timedelta(days=365)))
    done = kitctl(kit, "install", write(tmp_path / "expired.crt", expired), ca)
    assert done.returncode == 1 and "is not valid now" in done.stderr, done.stderr
    good = write(tmp_path / "good.crt", sign_request(request, kit["office"], kit["ca"]))
    # A rogue CA: the kit's own key, certified by another CA that comes along. Refused, and the
    # kit's CA is not replaced by it.
    rogue = tmp_path / "rogue"
    provision_simulation_credentials(rogue / "keys", rogue / "office", "rogue", [])
    rogue_certificate = write(tmp_path / "rogue.crt", sign_request(request, rogue / "office", rogue / "keys"))
    done = kitctl(kit, "install", rogue_certificate, rogue / "keys" / "ca.crt")
    assert done.returncode == 1 and "does not chain to the CA" in done.stderr, done.stderr
    done = kitctl(kit, "trust", "ca", rogue / "keys" / "ca.crt")
    assert done.returncode == 1 and "--replace" in done.stderr
    assert not (kit["keys"] / "kit.crt").exists()  # nothing replaced by a refused install
    # A recipient that cannot wrap keys, and one that is not RSA.
    signing_only = recipient_certificate(kit["office"], kit["ca"], "not for encryption", encipherment=False)
    done = kitctl(kit, "recipients", signing_only, kit["ca"] / "recipients" / "escrow.crt")
    assert done.returncode == 1 and "does not allow key encipherment" in done.stderr, done.stderr
    done = kitctl(kit, "recipients", good, kit["ca"] / "recipients" / "escrow.crt")
    assert done.returncode == 1 and "not an RSA certificate" in done.stderr, done.stderr
    done = kitctl(
        kit,
        "recipients",
        rogue / "keys" / "recipients" / "central.crt",
        kit["ca"] / "recipients" / "escrow.crt",
    )
    assert done.returncode == 1 and "does not chain to the CA" in done.stderr, done.stderr
    done = kitctl(kit, "install", tmp_path / "nothing.crt")
    assert done.returncode == 1 and "nothing.crt: cannot read" in done.stderr
    assert kitctl(kit, "install", good).returncode == 0  # the right one still goes in


def test_the_key_ceremony_refuses_one_key_in_two_roles(kit: dict[str, Path], tmp_path: Path) -> None:
    """The escrow is a second key, and the office's receipts are never signed by the kit's own
    key or by a key from another CA: each refused with its reason, the right ones taken."""
    assert kitctl(kit, "init").returncode == 0
    assert kitctl(kit, "trust", "ca", kit["ca"] / "ca.crt").returncode == 0
    own = write(
        tmp_path / "kit.crt", sign_request((kit["keys"] / "kit.csr").read_bytes(), kit["office"], kit["ca"])
    )
    # The kit's key is refused as the office's before its certificate is installed too ...
    what = "the central office's signing certificate"
    done = kitctl(kit, "trust", "central-signing", own)
    assert done.returncode == 1 and f"{what}: it certifies this kit's own key" in done.stderr, done.stderr
    # ... and a kit that trusts its own key as the office's (put there by hand, or by an
    # older kitctl) cannot install a certificate for it.
    (kit["keys"] / "central-signing.crt").write_bytes(own.read_bytes())
    done = kitctl(kit, "install", own)
    assert done.returncode == 1 and "trusted as the central office's signing key" in done.stderr, done.stderr
    (kit["keys"] / "central-signing.crt").unlink()
    assert kitctl(kit, "install", own).returncode == 0
    central = kit["ca"] / "recipients" / "central.crt"
    done = kitctl(kit, "recipients", central, central)
    assert done.returncode == 1 and "certify one key: the escrow must be a second key" in done.stderr
    assert not (kit["keys"] / "recipients").exists()
    # The central key under a second certificate, named escrow, is still one key.
    central_key = serialization.load_pem_private_key((kit["office"] / "central.key").read_bytes(), None)
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name.from_rfc4514_string("CN=escrow"))
    pem = request.sign(central_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]
    renamed = write(tmp_path / "escrow.crt", sign_request(pem, kit["office"], kit["ca"], encipherment=True))
    done = kitctl(kit, "recipients", central, renamed)
    assert done.returncode == 1 and "certify one key" in done.stderr, done.stderr
    done = kitctl(kit, "recipients", central, kit["ca"] / "recipients" / "escrow.crt")
    assert done.returncode == 0, done.stderr

    done = kitctl(kit, "trust", "central-signing", own)
    assert done.returncode == 1 and f"{what}: it certifies this kit's own key" in done.stderr, done.stderr
    other = tmp_path / "other"
    other.mkdir()
    stranger = foreign_ca_signer(other, "central signing")
    done = kitctl(kit, "trust", "central-signing", write(tmp_path / "foreign.crt", stranger.certificate))
    assert done.returncode == 1 and "does not chain to the CA" in done.stderr, done.stderr
    # The office's signing certificate from the CA, but no longer valid.
    office_key = ec.generate_private_key(ec.SECP256R1())
    central_name = x509.Name.from_rfc4514_string("CN=central")
    request = x509.CertificateSigningRequestBuilder().subject_name(central_name)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    expired = sign_request(
        request.sign(office_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM),
        kit["office"],
        kit["ca"],
        valid=(past, past + dt.timedelta(days=365)),
    )
    done = kitctl(kit, "trust", "central-signing", write(tmp_path / "expired-signing.crt", expired))
    assert done.returncode == 1 and "is not valid now" in done.stderr, done.stderr
    assert not (kit["keys"] / "central-signing.crt").exists()
    signer = signing_credential(kit["office"], kit["ca"], "central signing")
    done = kitctl(
        kit, "trust", "central-signing", write(tmp_path / "central-signing.crt", signer.certificate)
    )
    assert done.returncode == 0, done.stderr
    assert (kit["keys"] / "central-signing.crt").exists()


def test_status_warns_30_days_before_expiry(kit: dict[str, Path], tmp_path: Path) -> None:
    assert kitctl(kit, "init").returncode == 0
    assert kitctl(kit, "trust", "ca", kit["ca"] / "ca.crt").returncode == 0
    now = dt.datetime.now(dt.UTC)
    soon = sign_request(
        (kit["keys"] / "kit.csr").read_bytes(),
        kit["office"],
        kit["ca"],
        valid=(now - dt.timedelta(days=1), now + dt.timedelta(days=20)),
    )
    assert kitctl(kit, "install", write(tmp_path / "soon.crt", soon), kit["ca"] / "ca.crt").returncode == 0
    status = kitctl(kit, "status")
    assert "warning" in status.stdout and "expires in 19 days" in status.stdout, status.stdout
