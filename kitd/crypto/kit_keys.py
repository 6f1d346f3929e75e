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

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kitformats.signing import (
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

from kitd.clock import system_now
from kitd.config import KEY_BACKENDS
from kitd.crypto.officer_credentials import read_pkcs12, unwrap_credential, wrap_credential
from kitd.crypto.pkcs11_keys import TokenSession, open_token, read_pin
from kitd.durable_files import fsync_directory, write_atomically

MIN_RSA_BITS = 2048
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


def require_valid_now(certificate: x509.Certificate, what: str, now: dt.datetime | None = None) -> None:
    now = now or system_now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        span = f"{_stamp(certificate.not_valid_before_utc)} .. {_stamp(certificate.not_valid_after_utc)}"
        raise KeyProblem(f"{what} is not valid now ({span})")


def is_valid_ca(certificate: x509.Certificate, now: dt.datetime) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def check_recipient(certificate: x509.Certificate, what: str) -> None:
    """An RSA certificate (2048 bits or more) whose key usage allows wrapping a content key."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyProblem(f"{what}: not an RSA certificate (bundles are opened with RSA-OAEP)")
    if key.key_size < MIN_RSA_BITS:
        raise KeyProblem(f"{what}: an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}")
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


def same_key(one: x509.Certificate, other: x509.Certificate) -> bool:
    """Whether two certificates certify one key (whatever else differs between them)."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return one.public_key().public_bytes(*spki) == other.public_key().public_bytes(*spki)


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class KitKeys:
    """The kit's credentials under ``settings.keys_dir`` and its key backend."""

    def __init__(self, settings: KeySettings, clock: Callable[[], dt.datetime] = system_now) -> None:
        if settings.backend not in KEY_BACKENDS:
            raise KeyProblem(
                f"keys.backend must be one of {', '.join(KEY_BACKENDS)}, not {settings.backend!r}"
            )
        self.settings = settings
        # The kit's time, against which every certificate's validity is judged.
        self.clock = clock
        self.dir = settings.keys_dir
        self._token: TokenSession | None = None  # the open token session, kept (opening one costs)
        self._token_lock = threading.Lock()

    # --- paths -----------------------------------------------------------------------------

    @property
    def kit_certificate_path(self) -> Path:
        return self.dir / "kit.crt"

    def recipient_path(self, name: str) -> Path:
        return self.dir / "recipients" / f"{name}.crt"

    # --- the kit's key -----------------------------------------------------------------------

    def kit_public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half of the kit's key, wherever it lives."""
        if self.settings.backend == "file":
            path = self.dir / "kit.key"
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except FileNotFoundError:
                raise KeyProblem(f"{path}: no kit key (kitctl keys init makes one)") from None
            except OSError as exc:
                raise KeyProblem(f"{path}: cannot read: {exc.strerror}") from None
            except (ValueError, TypeError):
                raise KeyProblem(f"{path}: not an unencrypted PEM private key") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise KeyProblem(f"{path}: not an EC key")
            return key.public_key()
        return self._token_session().public_key(self.settings.key_label)

    def _token_session(self) -> TokenSession:
        # One session for the kit, opened once: the loop's executor threads may ask at once.
        with self._token_lock:
            if self._token is None:
                s = self.settings
                pin = read_pin(Path(s.pin_file))
                self._token = open_token(Path(s.pkcs11_module), s.token_label, pin)
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

    def kit_mac(self, message: bytes, create: bool = False) -> bytes:
        """HMAC-SHA256 of ``message`` under the kit's secret: a key inside the token for pkcs11
        (made there the first time), a 0600 file ``kit-secret`` for the file backend (made only
        when ``create``: a lost secret is reported, never silently replaced)."""
        if self.settings.backend == "pkcs11":
            return bytes(self._token_session().secret_hmac(KIT_SECRET_LABEL, message))
        path = self.dir / "kit-secret"
        if not path.exists():
            if not create:
                raise KeyProblem(f"{path}: the kit's secret is missing: installed credentials cannot open")
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomically(path, os.urandom(32), mode=0o600)
        return hmac.new(path.read_bytes(), message, hashlib.sha256).digest()

    def _kit_mac_creating(self, message: bytes) -> bytes:
        return self.kit_mac(message, create=True)

    def credential_path(self, nip: str) -> Path:
        return self.dir / "officers" / f"{nip}.credential.json"

    def install_officer_credential(
        self, nip: str, pkcs12_data: bytes, password: bytes | None, pin: str
    ) -> x509.Certificate:
        """An officer's PKCS#12 credential, checked (P-256, names the officer, valid now, issued
        by the kit's CA), kept wrapped under the officer's PIN and the kit's secret."""
        key, certificate = read_pkcs12(pkcs12_data, password, nip)
        require_valid_now(certificate, "the officer's certificate", self.clock())
        self._issued_by_the_kits_ca(certificate, "the officer's certificate")
        document = wrap_credential(nip, key, certificate, pin, self._kit_mac_creating)
        (self.dir / "officers").mkdir(parents=True, exist_ok=True)
        (self.dir / "officers" / f"{nip}.key").unlink(missing_ok=True)  # no plain key beside it
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
        signer = unwrap_credential(document, nip, pin, self.kit_mac)
        now = self.clock()
        if now > signer.certificate.not_valid_after_utc:
            raise KeyProblem(
                f"officer {nip}'s certificate expired on {_stamp(signer.certificate.not_valid_after_utc)}"
            )
        return signer

    def prepare_pin_change(self, nip: str, old_pin: str, new_pin: str) -> str:
        """Before an officer's new PIN is stored: their credential opened with the old PIN and
        wrapped under the new one beside the current file (``commit_pin_change`` puts it in
        place). ``"rewrapped"``; ``"none"`` when none is installed; ``"removed"`` when it does
        not open (it will be dropped: it could not be opened under the new PIN either)."""
        if not self.credential_path(nip).exists():
            return "none"
        try:
            signer = self.unlock_officer(nip, old_pin)
        except KeyProblem:
            return "removed"
        if not isinstance(signer, FileSigner):
            return "removed"
        document = wrap_credential(nip, signer.key, signer.certificate, new_pin, self.kit_mac)
        staged = self.credential_path(nip).with_suffix(".new")
        write_atomically(staged, json.dumps(document, indent=1).encode(), mode=0o600)
        return "rewrapped"

    def commit_pin_change(self, nip: str, prepared: str) -> None:
        """The new PIN is stored: the re-wrapped credential replaces the old (or it goes)."""
        staged = self.credential_path(nip).with_suffix(".new")
        if prepared == "rewrapped":
            os.replace(staged, self.credential_path(nip))
            fsync_directory(staged.parent)
        elif prepared == "removed":
            self.drop_officer_credential(nip)

    def abandon_pin_change(self, nip: str) -> None:
        self.credential_path(nip).with_suffix(".new").unlink(missing_ok=True)

    def drop_officer_credential(self, nip: str) -> bool:
        """Forget an installed credential (its PIN was reset by a supervisor: it cannot be re-wrapped)."""
        path = self.credential_path(nip)
        if not path.exists():
            return False
        path.unlink()
        (self.dir / "officers" / f"{nip}.crt").unlink(missing_ok=True)
        return True

    def officer_signer(self, nip: str, unlocked: Signer | None = None) -> Signer:
        """The officer's signer: their credential unlocked at sign-in, or a plain key file
        (development and the simulation); KeyProblem says why there is none."""
        key = self.dir / "officers" / f"{nip}.key"
        certificate = self.dir / "officers" / f"{nip}.crt"
        what = f"officer {nip}'s certificate"
        if unlocked is not None:
            signer = unlocked
        elif self.credential_path(nip).exists():
            # An installed credential wins over any plain key left beside it.
            raise KeyProblem(f"officer {nip}'s credential is locked: it opens when the officer signs in")
        elif key.exists():
            signer = read_file_signer(key, certificate)
        else:
            raise KeyProblem(f"officer {nip} has no signing credential on this kit")
        expected = f"{OFFICER_CN_PREFIX}{nip}"
        if common_name(signer.certificate) != expected:
            found = common_name(signer.certificate)
            raise KeyProblem(f"{what} names '{found}', not '{expected}'")
        require_valid_now(signer.certificate, what, self.clock())
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

    def _trusted_ca(self) -> x509.Certificate | None:
        path = self.dir / "ca.crt"
        return read_certificate(path) if path.exists() else None

    def _path_to_ca(
        self,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        ca: x509.Certificate,
        what: str,
    ) -> list[x509.Certificate]:
        """The CA certificates between ``certificate`` and ``ca`` (each a valid CA, found in
        ``chain``), nearest first; KeyProblem when there is no such path."""
        now = self.clock()
        path: list[x509.Certificate] = []
        current, spare = certificate, [c for c in chain if c != ca]
        while not issued_by(current, ca):
            parent = next((c for c in spare if issued_by(current, c) and is_valid_ca(c, now)), None)
            if parent is None or len(path) > 4:
                raise KeyProblem(f"{what} does not chain to the CA '{common_name(ca)}'")
            spare.remove(parent)
            path.append(parent)
            current = parent
        return path

    def install(self, certificate: x509.Certificate, chain: Sequence[x509.Certificate], kit_id: str) -> None:
        """The kit's certificate, checked: its key is the kit's, it names this kit, it is valid
        now, and it chains to the kit's CA (``ca.crt``) through CAs of ``chain``; only those on
        the path are kept. Installing never makes the kit trust another CA."""
        what = "the certificate"
        if certificate.public_key() != self.kit_public_key():
            raise KeyProblem(f"{what} is for another key than the kit's")
        check_signing_certificate(certificate, what)
        expected = f"{KIT_CN_PREFIX}{kit_id}"
        if common_name(certificate) != expected:
            raise KeyProblem(f"{what} names '{common_name(certificate)}', not '{expected}' (kit.id)")
        require_valid_now(certificate, what, self.clock())
        central = self.central_signing_certificate()
        if central is not None and same_key(central, certificate):
            raise KeyProblem(
                f"{what}'s key is the one trusted as the central office's signing key: a receipt "
                "this kit signed would count as the office's (kitctl keys trust central-signing "
                "with the office's own certificate first)"
            )
        ca = self._trusted_ca()
        if ca is None:
            raise KeyProblem(
                "no CA on this kit yet: trust the office's CA first (kitctl keys trust ca CA.pem)"
            )
        links = self._path_to_ca(certificate, chain, ca, what)
        serialise = x509.Certificate.public_bytes
        (self.dir / "chain").mkdir(parents=True, exist_ok=True)
        for old in (self.dir / "chain").glob("*.crt"):
            old.unlink()
        for n, link in enumerate(links):
            write_atomically(
                self.dir / "chain" / f"{n:02d}.crt", serialise(link, serialization.Encoding.PEM), 0o644
            )
        write_atomically(self.kit_certificate_path, serialise(certificate, serialization.Encoding.PEM), 0o644)

    def _issued_by_the_kits_ca(self, certificate: x509.Certificate, what: str) -> None:
        ca = self._trusted_ca()
        if ca is None:
            raise KeyProblem(
                f"no CA on this kit yet ({self.dir / 'ca.crt'}): install the kit's certificate first"
            )
        self._path_to_ca(certificate, self.chain(), ca, what)

    def install_recipients(self, central: x509.Certificate, escrow: x509.Certificate) -> None:
        """The central office's and the escrow's encryption certificates, each RSA (2048 bits or
        more) with keyEncipherment, valid now and issued by the kit's CA; two keys, or the escrow
        is no second way in."""
        given = dict(zip(RECIPIENTS, (central, escrow), strict=True))
        if same_key(central, escrow):
            raise KeyProblem(
                "the central and the escrow certificates certify one key: the escrow must be a "
                "second key, kept apart, that opens bundles if the central key is lost"
            )
        for name, certificate in given.items():
            what = f"the {name} certificate"
            check_recipient(certificate, what)
            require_valid_now(certificate, what, self.clock())
            self._issued_by_the_kits_ca(certificate, what)
        for name, certificate in given.items():
            path = self.recipient_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)

    def trust_ca(self, certificate: x509.Certificate, replace: bool = False) -> None:
        """The office's CA, which every certificate the kit uses must chain to: set once, and
        replaced only when asked (a new CA is a decision, never a side effect)."""
        if certificate.issuer != certificate.subject or not issued_by(certificate, certificate):
            raise KeyProblem("the CA certificate is not self-signed (give the office's root)")
        if not is_valid_ca(certificate, self.clock()):
            raise KeyProblem("the certificate is not a CA valid now (basicConstraints CA, validity)")
        current = self._trusted_ca()
        if current is not None and current != certificate and not replace:
            raise KeyProblem(f"this kit trusts '{common_name(current)}' already: --replace to change the CA")
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.dir / "ca.crt", certificate.public_bytes(serialization.Encoding.PEM), 0o644)

    def central_signing_certificate(self) -> x509.Certificate | None:
        """The central office's signing certificate (for its receipts), or None if not trusted."""
        return self._certificate_if_any(self.dir / "central-signing.crt")

    def kit_certificate(self) -> x509.Certificate | None:
        """The kit's certificate, or None if it has none (yet) or it cannot be read."""
        return self._certificate_if_any(self.kit_certificate_path)

    @staticmethod
    def _certificate_if_any(path: Path) -> x509.Certificate | None:
        try:
            return read_certificate(path)
        except KeyProblem:
            return None

    def trust_central_signing(self, certificate: x509.Certificate) -> None:
        """The key whose receipts say the office has a bundle (after which the kit may erase
        it): ECDSA P-256, valid now, issued by the kit's CA, and never the kit's own key, or
        a receipt the kit signed itself would count as the office's."""
        what = "the central office's signing certificate"
        check_signing_certificate(certificate, what)
        require_valid_now(certificate, what, self.clock())
        self._issued_by_the_kits_ca(certificate, what)
        try:
            own = self.kit_public_key()  # there from kitctl keys init on, certified or not
        except KeyProblem:
            own = None  # no kit key yet: the one init makes will be new
        if own is not None and certificate.public_key() == own:
            raise KeyProblem(f"{what}: it certifies this kit's own key, not the office's")
        path = self.dir / "central-signing.crt"
        write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)

    # --- how it all stands ------------------------------------------------------------------

    def status(self, kit_id: str, now: dt.datetime | None = None) -> list[CredentialStatus]:
        """Every credential, in the order a technician reads them."""
        now = now or self.clock()
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
            path = self.recipient_path(name)
            try:
                certificate = read_certificate(path)  # once, for its dates and its key
            except KeyProblem as exc:
                found.append(CredentialStatus(f"recipient {name}", str(path), "file", problem=str(exc)))
                continue
            entry = certificate_status(f"recipient {name}", path, "file", now, certificate)
            if entry.problem is None:
                try:
                    check_recipient(certificate, path.name)
                except KeyProblem as exc:
                    entry = dataclasses.replace(entry, problem=str(exc))
            found.append(entry)
        if (self.dir / "central-signing.crt").exists():
            found.append(certificate_status("central signing", self.dir / "central-signing.crt", "file", now))
        for certificate in sorted((self.dir / "officers").glob("*.crt")):
            found.append(certificate_status(f"officer {certificate.stem}", certificate, "file", now))
        return found

    def __enter__(self) -> KitKeys:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the token's session, if one was opened."""
        with self._token_lock:
            if self._token is not None:
                self._token.close()
                self._token = None
