"""The kit's credentials: its signing key in the configured backend, its certificates, the
recipients, the CA, and how each stands.

Its one job: :class:`KitKeys` reads and writes what lives in ``data_dir/keys/`` and the
key backend (a 0600 file, or a PKCS#11 token whose key never leaves it) — the kit's signer
for sealing, the recipients' certificates, the officers' file credentials, the chain — and
says of each credential what a technician needs: subject, issuer, validity, days left,
whether it is usable. ``kitctl keys`` and the daemon share it, so the commands that install
a credential check it exactly as sealing will use it.

Layout of ``data_dir/keys/``: ``kit.key`` (file backend only), ``kit.crt``, ``kit.csr``
(the last request made), ``ca.crt`` (the office's CA, trusted), ``chain/*.crt`` (CAs
between it and the kit's certificate), ``recipients/central.crt`` and ``escrow.crt``,
``central-signing.crt`` (the office's signing certificate, for receipts),
``officers/<NIP>.crt`` with ``<NIP>.credential.json`` (an installed credential, wrapped:
kitd.crypto.officer_credentials) or ``<NIP>.key`` (a plain 0600 key: development and the
simulation), and ``kit-secret`` (the file backend's secret for the wrapping).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kitd.crypto.officer_credentials import read_pkcs12, unwrap_credential, wrap_credential
from kitd.crypto.signing import (
    KIT_CN_PREFIX,
    OFFICER_CN_PREFIX,
    FileSigner,
    KeyProblem,
    Signer,
    common_name,
    read_certificate,
    read_file_signer,
    write_private_key,
)
from kitd.durable_files import write_atomically

BACKENDS = ("file", "pkcs11")
RECIPIENTS = ("central", "escrow")
# The token's secret that, with an officer's PIN, wraps the officer's installed credential.
KIT_SECRET_LABEL = "kit-secret"
# A credential this close to its end is a warning in the status (renew it while offline).
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class KeySettings:
    """Where the kit's key is: ``[keys]`` of the configuration."""

    keys_dir: Path
    backend: str = "file"
    pkcs11_module: str = ""
    token_label: str = "kit"
    key_label: str = "kit-signing"
    pin_file: str = ""


@dataclass(frozen=True)
class CredentialStatus:
    """One credential as ``kitctl keys status`` and ``/api/v1/status`` tell it."""

    name: str
    path: str
    backend: str
    subject: str | None = None
    issuer: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    days_left: int | None = None
    problem: str | None = None
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def certificate_status(
    name: str, path: Path, backend: str, now: dt.datetime, certificate: x509.Certificate | None = None
) -> CredentialStatus:
    """What a certificate file says and whether it is usable ``now``."""
    try:
        certificate = certificate or read_certificate(path)
    except KeyProblem as exc:
        return CredentialStatus(name, str(path), backend, problem=str(exc))
    after, before = certificate.not_valid_after_utc, certificate.not_valid_before_utc
    days = (after - now).days
    problem = warning = None
    if now < before:
        problem = f"{path.name}: not valid before {_stamp(before)}"
    elif now > after:
        problem = f"{path.name}: expired on {_stamp(after)}"
    elif days < EXPIRY_WARNING_DAYS:
        warning = f"{path.name}: expires in {days} days ({_stamp(after)}): renew it"
    return CredentialStatus(
        name,
        str(path),
        backend,
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=_stamp(before),
        not_after=_stamp(after),
        days_left=days,
        problem=problem,
        warning=warning,
    )


def check_recipient(certificate: x509.Certificate, what: str) -> None:
    """An RSA certificate whose key usage allows wrapping a content key; KeyProblem otherwise."""
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise KeyProblem(f"{what}: not an RSA certificate (bundles are opened with RSA-OAEP)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise KeyProblem(f"{what}: has no key usage; a recipient needs keyEncipherment") from None
    if not usage.key_encipherment:
        raise KeyProblem(f"{what}: its key usage does not allow key encipherment")


def check_signing_certificate(certificate: x509.Certificate, what: str) -> None:
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"{what}: not an ECDSA P-256 certificate")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise KeyProblem(f"{what}: its key usage does not allow signing")


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class KitKeys:
    """The kit's credentials under ``settings.keys_dir`` and its key backend."""

    def __init__(self, settings: KeySettings) -> None:
        if settings.backend not in BACKENDS:
            raise KeyProblem(f"keys.backend must be one of {', '.join(BACKENDS)}, not {settings.backend!r}")
        self.settings = settings
        self.dir = settings.keys_dir
        self._token: Any = None  # the open token session, kept (opening one costs)

    # --- paths -----------------------------------------------------------------------------

    @property
    def kit_certificate_path(self) -> Path:
        return self.dir / "kit.crt"

    def recipient_path(self, name: str) -> Path:
        return self.dir / "recipients" / f"{name}.crt"

    # --- the kit's key -----------------------------------------------------------------------

    def _token_keys(self) -> Any:
        from kitd.crypto import pkcs11_keys

        return pkcs11_keys

    def kit_public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half of the kit's key, wherever it lives."""
        if self.settings.backend == "file":
            path = self.dir / "kit.key"
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except FileNotFoundError:
                raise KeyProblem(f"{path}: no kit key (kitctl keys init makes one)") from None
            except (ValueError, TypeError):
                raise KeyProblem(f"{path}: not an unencrypted PEM private key") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise KeyProblem(f"{path}: not an EC key")
            return key.public_key()
        return self._token_session().public_key(self.settings.key_label)

    def _token_session(self) -> Any:
        if self._token is None:
            s = self.settings
            tokens = self._token_keys()
            pin = tokens.read_pin(Path(s.pin_file))
            self._token = tokens.open_token(Path(s.pkcs11_module), s.token_label, pin)
        return self._token

    def kit_signer(self, kit_id: str) -> Signer:
        """The kit's signer, its certificate naming ``kit <kit_id>``; KeyProblem says what is wrong."""
        certificate_path = self.kit_certificate_path
        if self.settings.backend == "file":
            if not (self.dir / "kit.key").exists():
                raise KeyProblem(f"{self.dir / 'kit.key'}: no kit key (kitctl keys init makes one)")
            signer: Signer = read_file_signer(self.dir / "kit.key", certificate_path)
        else:
            certificate = read_certificate(certificate_path)
            signer = self._token_session().signer(self.settings.key_label, certificate)
        expected = f"{KIT_CN_PREFIX}{kit_id}"
        if common_name(signer.certificate) != expected:
            found = common_name(signer.certificate)
            raise KeyProblem(f"{certificate_path}: the certificate names '{found}', not '{expected}'")
        return signer

    # --- officers' credentials -------------------------------------------------------------

    def kit_secret(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the kit's secret: inside the token for pkcs11 (made
        there the first time), a 0600 file ``kit-secret`` for the file backend."""
        if self.settings.backend == "pkcs11":
            return bytes(self._token_session().secret_hmac(KIT_SECRET_LABEL, message))
        path = self.dir / "kit-secret"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomically(path, os.urandom(32), mode=0o600)
        return hmac.new(path.read_bytes(), message, hashlib.sha256).digest()

    def credential_path(self, nip: str) -> Path:
        return self.dir / "officers" / f"{nip}.credential.json"

    def install_officer_credential(
        self, nip: str, pkcs12_data: bytes, password: bytes | None, pin: str
    ) -> x509.Certificate:
        """An officer's PKCS#12 credential, checked (P-256, names the officer, valid now, issued
        by the kit's CA), kept wrapped under the officer's PIN and the kit's secret."""
        key, certificate = read_pkcs12(pkcs12_data, password, nip)
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            until = _stamp(certificate.not_valid_after_utc)
            raise KeyProblem(f"the officer's certificate is not valid now (until {until})")
        issuers = [read_certificate(self.dir / "ca.crt"), *self.chain()]
        if not any(issued_by(certificate, issuer) for issuer in issuers):
            raise KeyProblem("the officer's certificate is not issued by the kit's CA")
        document = wrap_credential(nip, key, certificate, pin, self.kit_secret)
        (self.dir / "officers").mkdir(parents=True, exist_ok=True)
        write_atomically(self.credential_path(nip), json.dumps(document, indent=1).encode(), mode=0o600)
        write_atomically(
            self.dir / "officers" / f"{nip}.crt", certificate.public_bytes(serialization.Encoding.PEM), 0o644
        )
        return certificate

    def unlock_officer(self, nip: str, pin: str) -> Signer | None:
        """The officer's installed credential opened with their PIN (None: none installed);
        CredentialLocked when it does not open, KeyProblem when its certificate has expired."""
        path = self.credential_path(nip)
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            raise KeyProblem(f"{path}: cannot read the credential") from None
        signer = unwrap_credential(document, nip, pin, self.kit_secret)
        now = dt.datetime.now(dt.UTC)
        if now > signer.certificate.not_valid_after_utc:
            raise KeyProblem(
                f"officer {nip}'s certificate expired on {_stamp(signer.certificate.not_valid_after_utc)}"
            )
        return signer

    def rewrap_officer_credential(self, nip: str, signer: Signer, pin: str) -> None:
        """The open credential of ``nip`` wrapped again under a new PIN (the officer changed it)."""
        if not isinstance(signer, FileSigner):
            raise KeyProblem(f"officer {nip}'s credential is not a key this kit can wrap")
        document = wrap_credential(nip, signer.key, signer.certificate, pin, self.kit_secret)
        write_atomically(self.credential_path(nip), json.dumps(document, indent=1).encode(), mode=0o600)

    def drop_officer_credential(self, nip: str) -> bool:
        """Forget an installed credential (its PIN was reset by a supervisor: it cannot be re-wrapped)."""
        path = self.credential_path(nip)
        if not path.exists():
            return False
        path.unlink()
        return True

    def officer_signer(self, nip: str, unlocked: Signer | None = None) -> Signer:
        """The officer's signer: their credential unlocked at sign-in, or a plain key file
        (development and the simulation); KeyProblem says why there is none."""
        key = self.dir / "officers" / f"{nip}.key"
        certificate = self.dir / "officers" / f"{nip}.crt"
        if unlocked is not None:
            signer = unlocked
        elif key.exists():
            signer = read_file_signer(key, certificate)
        elif self.credential_path(nip).exists():
            raise KeyProblem(f"officer {nip}'s credential is locked: it opens when the officer signs in")
        else:
            raise KeyProblem(f"officer {nip} has no signing credential on this kit")
        expected = f"{OFFICER_CN_PREFIX}{nip}"
        if common_name(signer.certificate) != expected:
            found = common_name(signer.certificate)
            raise KeyProblem(f"{certificate}: the certificate names '{found}', not '{expected}'")
        return signer

    def recipients(self) -> list[x509.Certificate]:
        found = []
        for name in RECIPIENTS:
            certificate = read_certificate(self.recipient_path(name))
            check_recipient(certificate, str(self.recipient_path(name)))
            found.append(certificate)
        return found

    def chain(self) -> list[x509.Certificate]:
        return [read_certificate(p) for p in sorted((self.dir / "chain").glob("*.crt"))]

    # --- making and installing ------------------------------------------------------------------

    def init(self, kit_id: str) -> Path:
        """A new kit key in the backend and a request for its certificate (``kit.csr``)."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{KIT_CN_PREFIX}{kit_id}")])
        if self.settings.backend == "file":
            path = self.dir / "kit.key"
            if path.exists():
                raise KeyProblem(f"{path}: a kit key exists already; move it away to make a new one")
            key = ec.generate_private_key(ec.SECP256R1())
            write_private_key(path, key)
            csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
            pem = csr.public_bytes(serialization.Encoding.PEM)
        else:
            token = self._token_session()
            token.generate(self.settings.key_label)
            pem = token.csr(self.settings.key_label, f"{KIT_CN_PREFIX}{kit_id}")
        path = self.dir / "kit.csr"
        write_atomically(path, pem, mode=0o644)
        return path

    def install(self, certificate: x509.Certificate, chain: Sequence[x509.Certificate], kit_id: str) -> None:
        """The kit's certificate, checked: its key is the kit's, it names this kit, it chains to
        a CA in ``chain`` (the last, self-signed, becomes ``ca.crt``), and it is valid now."""
        what = "the certificate"
        if certificate.public_key() != self.kit_public_key():
            raise KeyProblem(f"{what} is for another key than the kit's")
        check_signing_certificate(certificate, what)
        expected = f"{KIT_CN_PREFIX}{kit_id}"
        if common_name(certificate) != expected:
            raise KeyProblem(f"{what} names '{common_name(certificate)}', not '{expected}' (kit.id)")
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise KeyProblem(f"{what} is not valid now ({_stamp(certificate.not_valid_before_utc)} .. "
                             f"{_stamp(certificate.not_valid_after_utc)})")  # fmt: skip
        roots = [c for c in chain if c.issuer == c.subject and issued_by(c, c)]
        if not roots:
            try:
                roots = [read_certificate(self.dir / "ca.crt")]
            except KeyProblem:
                raise KeyProblem(
                    "no CA: give the CA's certificate after the kit's (install CERT CA.pem)"
                ) from None
        links = [c for c in chain if c not in roots]
        current, path = certificate, list(links)
        while not any(issued_by(current, root) for root in roots):
            parent = next((c for c in path if issued_by(current, c)), None)
            if parent is None:
                raise KeyProblem(f"{what} does not chain to the CA '{common_name(roots[0])}'")
            path.remove(parent)
            current = parent
        serialise = x509.Certificate.public_bytes
        (self.dir / "chain").mkdir(parents=True, exist_ok=True)
        for old in (self.dir / "chain").glob("*.crt"):
            old.unlink()
        for n, link in enumerate(links):
            write_atomically(
                self.dir / "chain" / f"{n:02d}.crt", serialise(link, serialization.Encoding.PEM), 0o644
            )
        write_atomically(self.dir / "ca.crt", serialise(roots[0], serialization.Encoding.PEM), 0o644)
        write_atomically(self.kit_certificate_path, serialise(certificate, serialization.Encoding.PEM), 0o644)

    def install_recipients(self, central: x509.Certificate, escrow: x509.Certificate) -> None:
        for name, certificate in (("central", central), ("escrow", escrow)):
            check_recipient(certificate, f"the {name} certificate")
            now = dt.datetime.now(dt.UTC)
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise KeyProblem(f"the {name} certificate is not valid now")
        for name, certificate in (("central", central), ("escrow", escrow)):
            path = self.recipient_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)

    def trust_central_signing(self, certificate: x509.Certificate) -> None:
        check_signing_certificate(certificate, "the central office's signing certificate")
        path = self.dir / "central-signing.crt"
        write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)

    # --- how it all stands ------------------------------------------------------------------

    def status(self, kit_id: str, now: dt.datetime | None = None) -> list[CredentialStatus]:
        """Every credential, in the order a technician reads them."""
        now = now or dt.datetime.now(dt.UTC)
        backend = self.settings.backend
        try:
            signer = self.kit_signer(kit_id)
            kit = certificate_status("kit", self.kit_certificate_path, backend, now, signer.certificate)
        except KeyProblem as exc:
            kit = CredentialStatus("kit", str(self.kit_certificate_path), backend, problem=str(exc))
        found = [kit, certificate_status("ca", self.dir / "ca.crt", "file", now)]
        found += [
            certificate_status(f"chain {p.name}", p, "file", now)
            for p in sorted((self.dir / "chain").glob("*.crt"))
        ]
        for name in RECIPIENTS:
            entry = certificate_status(f"recipient {name}", self.recipient_path(name), "file", now)
            if entry.problem is None:
                try:
                    check_recipient(
                        read_certificate(self.recipient_path(name)), self.recipient_path(name).name
                    )
                except KeyProblem as exc:
                    entry = CredentialStatus(**{**entry.__dict__, "problem": str(exc)})
            found.append(entry)
        if (self.dir / "central-signing.crt").exists():
            found.append(certificate_status("central signing", self.dir / "central-signing.crt", "file", now))
        for certificate in sorted((self.dir / "officers").glob("*.crt")):
            found.append(certificate_status(f"officer {certificate.stem}", certificate, "file", now))
        return found

    def close(self) -> None:
        if self._token is not None:
            self._token.close()
            self._token = None
