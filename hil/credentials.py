"""Simulation credentials: a throw-away test CA and the keys the simulation kit and tests sign and seal with.

Its one job: make, once, a CA and the certificates it issues (the kit, its officers, the
central office and escrow recipients), every subject marked "SIMULATION ONLY" so that no
file made here can pass for a real kit's credential. The CA's key and the recipients'
private keys go to ``office_dir`` (they belong to the office, not on the kit's SD card).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from kitformats.link_certificates import self_signed
from kitformats.signing import FileSigner, KeyProblem, read_certificate, read_file_signer, write_private_key

SIMULATION_ORGANISATION = "SIMULATION ONLY - not for use"
CA_NAME = "kitd simulation CA"
RECIPIENT_KEY_BITS = 3072
# Valid from two years back, as an office's long-lived credentials would be, so that a kit
# whose clock lags (the clock tests run one a year behind) still signs and seals with them.
NOT_BEFORE_SLACK = dt.timedelta(days=730)
LIFETIME = dt.timedelta(days=3653)


@dataclass(frozen=True)
class SimulationCredentials:
    """Where the simulation credentials live (paths only: read them with kitformats.signing)."""

    keys_dir: Path
    office_dir: Path
    ca_certificate: Path
    ca_key: Path
    kit_key: Path
    kit_certificate: Path
    central_key: Path
    central_certificate: Path
    escrow_key: Path
    escrow_certificate: Path
    officer_keys: dict[str, Path] = field(default_factory=dict)
    officer_certificates: dict[str, Path] = field(default_factory=dict)

    def kit_signer(self) -> FileSigner:
        return read_file_signer(self.kit_key, self.kit_certificate)

    def officer_signer(self, nip: str) -> FileSigner:
        return read_file_signer(self.officer_keys[nip], self.officer_certificates[nip])


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATION_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, signing: bool = False, encipherment: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    key_usage: x509.KeyUsage,
    *,
    ca: bool = False,
    valid: tuple[dt.datetime, dt.datetime] | None = None,
) -> x509.Certificate:
    """A certificate of ``public_key`` signed by ``issuer_key``; self-signed when ``issuer`` is None."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = valid or (now - NOT_BEFORE_SLACK, now + LIFETIME)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _credential(
    key_path: Path,
    certificate_path: Path,
    common_name: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    recipient: bool = False,
) -> None:
    """A new key (P-256 to sign; RSA to receive bundles) and its certificate from the CA."""
    if recipient:
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = rsa.generate_private_key(
            public_exponent=65537, key_size=RECIPIENT_KEY_BITS
        )
        usage = _key_usage(encipherment=True)
    else:
        key, usage = ec.generate_private_key(ec.SECP256R1()), _key_usage(signing=True)
    certificate = _issue(_name(common_name), key.public_key(), ca, ca_key, usage)
    write_private_key(key_path, key)
    _write_certificate(certificate_path, certificate)


def _paths(keys_dir: Path, office_dir: Path, officer_nips: Sequence[str]) -> SimulationCredentials:
    officers = keys_dir / "officers"
    return SimulationCredentials(
        keys_dir=keys_dir,
        office_dir=office_dir,
        ca_certificate=keys_dir / "ca.crt",
        ca_key=office_dir / "ca.key",
        kit_key=keys_dir / "kit.key",
        kit_certificate=keys_dir / "kit.crt",
        central_key=office_dir / "central.key",
        central_certificate=keys_dir / "recipients" / "central.crt",
        escrow_key=office_dir / "escrow.key",
        escrow_certificate=keys_dir / "recipients" / "escrow.crt",
        officer_keys={nip: officers / f"{nip}.key" for nip in officer_nips},
        officer_certificates={nip: officers / f"{nip}.crt" for nip in officer_nips},
    )


def _load_ca_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyProblem(f"{path}: no simulation CA key to certify new officers with") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyProblem(f"{path}: the simulation CA key is not a P-256 key")
    return key


def provision_simulation_credentials(
    keys_dir: Path, office_dir: Path, kit_id: str, officer_nips: Sequence[str]
) -> SimulationCredentials:
    """Make the simulation CA and every credential under it, or only the officers' that are missing.

    Once ``keys_dir/ca.crt`` exists nothing made before is replaced (a kit's past bundles stay
    verifiable); officers added since are certified with ``office_dir/ca.key``.
    """
    for nip in officer_nips:
        # The NIP becomes a file name: digits only, so it can never climb out of officers/.
        if not nip.isdigit():
            raise ValueError(f"officer NIP {nip!r} is not all digits")
    paths = _paths(keys_dir, office_dir, officer_nips)
    if paths.ca_certificate.exists():
        ca = read_certificate(paths.ca_certificate)
        missing = [
            nip
            for nip in officer_nips
            if not (paths.officer_keys[nip].exists() and paths.officer_certificates[nip].exists())
        ]
        if missing:
            ca_key = _load_ca_key(paths.ca_key)
            for nip in missing:
                _credential(
                    paths.officer_keys[nip], paths.officer_certificates[nip], f"officer {nip}", ca, ca_key
                )
        return paths

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(_name(CA_NAME), ca_key.public_key(), None, ca_key, _key_usage(ca=True), ca=True)
    write_private_key(paths.ca_key, ca_key)
    _credential(paths.kit_key, paths.kit_certificate, f"kit {kit_id}", ca, ca_key)
    for nip in officer_nips:
        _credential(paths.officer_keys[nip], paths.officer_certificates[nip], f"officer {nip}", ca, ca_key)
    _credential(paths.central_key, paths.central_certificate, "central office", ca, ca_key, recipient=True)
    _credential(paths.escrow_key, paths.escrow_certificate, "escrow", ca, ca_key, recipient=True)
    # The CA certificate last: its presence is what says "provisioned", so an interrupted
    # run is redone from scratch rather than left half made.
    _write_certificate(paths.ca_certificate, ca)
    return paths


def foreign_ca_signer(directory: Path, common_name: str = "kit foreign") -> FileSigner:
    """A signer certified by a CA of its own, trusted by nobody (for tamper tests).

    The foreign CA's certificate is written to ``directory/foreign-ca.crt`` for tests that
    want to show it would verify under the wrong trust anchor.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(_name("foreign CA"), ca_key.public_key(), None, ca_key, _key_usage(ca=True), ca=True)
    key_path, certificate_path = directory / "foreign.key", directory / "foreign.crt"
    _credential(key_path, certificate_path, common_name, ca, ca_key)
    _write_certificate(directory / "foreign-ca.crt", ca)
    return read_file_signer(key_path, certificate_path)


def sign_request(
    request_pem: bytes,
    office_dir: Path,
    keys_dir: Path,
    *,
    valid: tuple[dt.datetime, dt.datetime] | None = None,
    encipherment: bool = False,
) -> x509.Certificate:
    """The simulation CA (``office_dir/ca.key``, ``keys_dir/ca.crt``) signs a certificate
    request, as the office's CA would sign a kit's ``kitctl keys init`` request."""
    request = x509.load_pem_x509_csr(request_pem)
    if not request.is_signature_valid:
        raise ValueError("the request's signature does not verify")
    ca = read_certificate(keys_dir / "ca.crt")
    ca_key = _load_ca_key(office_dir / "ca.key")
    usage = _key_usage(encipherment=True) if encipherment else _key_usage(signing=True)
    return _issue(request.subject, request.public_key(), ca, ca_key, usage, valid=valid)


def recipient_certificate(
    office_dir: Path, keys_dir: Path, common_name: str, encipherment: bool = True
) -> Path:
    """A new RSA recipient certificate from the simulation CA (its key beside it in office_dir)."""
    ca = read_certificate(keys_dir / "ca.crt")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    usage = _key_usage(encipherment=True) if encipherment else _key_usage(signing=True)
    certificate = _issue(_name(common_name), key.public_key(), ca, _load_ca_key(office_dir / "ca.key"), usage)
    path = office_dir / f"{common_name.replace(' ', '-')}.crt"
    write_private_key(path.with_suffix(".key"), key)
    _write_certificate(path, certificate)
    return path


def officer_pkcs12(
    office_dir: Path,
    keys_dir: Path,
    nip: str,
    password: bytes,
    *,
    valid: tuple[dt.datetime, dt.datetime] | None = None,
    common_name: str | None = None,
) -> bytes:
    """An officer's credential as the office hands it out: a P-256 key and its certificate
    from the simulation CA, in a PKCS#12 file under ``password``."""
    ca = read_certificate(keys_dir / "ca.crt")
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name or f"officer {nip}")
    certificate = _issue(
        name, key.public_key(), ca, _load_ca_key(office_dir / "ca.key"), _key_usage(signing=True), valid=valid
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(nip.encode(), key, certificate, None, encryption)


def signing_credential(office_dir: Path, keys_dir: Path, common_name: str) -> FileSigner:
    """A new P-256 signing credential from the simulation CA, its key and certificate in
    ``office_dir`` (a laptop's receipts key, or the central office's signing certificate)."""
    ca = read_certificate(keys_dir / "ca.crt")
    stem = common_name.replace(" ", "-")
    key_path, certificate_path = office_dir / f"{stem}.key", office_dir / f"{stem}.crt"
    _credential(key_path, certificate_path, common_name, ca, _load_ca_key(office_dir / "ca.key"))
    return read_file_signer(key_path, certificate_path)


def self_signed_tls(directory: Path, name: str) -> tuple[Path, Path, x509.Certificate]:
    """A laptop's TLS client credential as kit-sync makes one (kitformats.link_certificates:
    a P-256 key and its self-signed certificate, CA:FALSE, valid 2020-2100), as
    ``directory/<name>.key`` (0600) and ``.crt``: the key path, the certificate path and the
    certificate. No CA: the kit trusts the certificate itself, once paired."""
    key, certificate = self_signed(f"laptop {name} tls", "tls-client")
    key_path, certificate_path = directory / f"{name}.key", directory / f"{name}.crt"
    write_private_key(key_path, key)
    _write_certificate(certificate_path, certificate)
    return key_path, certificate_path, certificate
