"""Keys that never leave a PKCS#11 token: made inside it, and signing for the kit as a file key does.

Its one job: give :class:`~kitformats.signing.Signer` a token backend. A P-256 key pair is
generated inside the token (sensitive, never extractable), its public half read back for a
certificate request, and :class:`TokenSigner` signs SHA-256 digests with CKM_ECDSA. Every
failure is a :class:`TokenProblem` naming the module, the token or the key.

Two facts of PKCS#11 shape the code. A login belongs to the whole process, not to a session:
a second C_Login answers "already logged in" whatever the PIN, and python-pkcs11 closes the
session that logged in with C_Logout, which logs every other session out too. So a process
keeps one logged-in session per token, shared by every :class:`TokenSession` on it and closed
with the last of them. And python-pkcs11 initialises a module with C_Initialize(NULL), which
tells the module (SoftHSM does take it at its word) that no two threads will call it at
once: every call goes through one process-wide lock.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pkcs11
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from kitformats.signing import KeyProblem, common_name
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

P256_PARAMS = encode_named_curve_parameters("secp256r1")
DIGEST_BYTES = 32
P256_SCALAR_BYTES = 32

# One lock for every call into any PKCS#11 module of this process (see the module docstring).
_CALLS = threading.RLock()
# PINs are compared, never kept: a keyed digest, the key living only as long as the process.
_PIN_KEY = secrets.token_bytes(32)


class TokenProblem(KeyProblem):
    """A PKCS#11 module, token, PIN or token key cannot be used; the message says which and why."""


def read_pin(path: Path) -> str:
    """The PIN in ``path``, a file only its owner may read (mode 0600 or stricter).

    One trailing newline is dropped, as an editor or ``echo`` leaves one.
    """
    try:
        with path.open("rb") as pin_file:
            # The mode of the file actually opened, so a swap after the check cannot slip by.
            mode = os.fstat(pin_file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise TokenProblem(f"{path}: the PIN file is not a regular file")
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TokenProblem(
                    f"{path}: mode {stat.S_IMODE(mode):04o} lets others read the PIN; it must be 0600"
                )
            data = pin_file.read()
    except FileNotFoundError:
        raise TokenProblem(f"{path}: no such PIN file") from None
    except OSError as exc:
        raise TokenProblem(f"{path}: cannot read the PIN file: {exc.strerror}") from None
    try:
        pin = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenProblem(f"{path}: the PIN file is not UTF-8 text") from None
    pin = pin.removesuffix("\n").removesuffix("\r")
    if not pin:
        raise TokenProblem(f"{path}: the PIN file is empty")
    return pin


def _pin_digest(pin: str) -> bytes:
    return hmac.new(_PIN_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


def _error_name(exc: BaseException) -> str:
    # python-pkcs11 raises one class per CKR_ code, most with an empty message.
    return str(exc) or type(exc).__name__


@dataclass
class _Login:
    """The one logged-in session of this process on a token, and how many TokenSessions share it."""

    session: pkcs11.Session
    pin_digest: bytes
    users: int = 0


# Keyed by (module path as given, token serial): python-pkcs11 caches modules by that path.
_logins: dict[tuple[str, bytes], _Login] = {}


def _load_module(module: Path) -> Any:
    if not module.is_file():
        raise TokenProblem(f"{module}: no PKCS#11 module at that path")
    try:
        return pkcs11.lib(str(module))
    except pkcs11.PKCS11Error as exc:
        raise TokenProblem(f"{module}: the PKCS#11 module cannot be loaded: {_error_name(exc)}") from None


def _find_token(lib: Any, module: Path, token_label: str) -> pkcs11.Token:
    try:
        return lib.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        raise TokenProblem(f"{module}: no token labelled '{token_label}'") from None
    except pkcs11.MultipleTokensReturned:
        raise TokenProblem(f"{module}: several tokens are labelled '{token_label}'") from None
    except pkcs11.PKCS11Error as exc:
        raise TokenProblem(f"{module}: cannot list the tokens: {_error_name(exc)}") from None


def _log_in(token: pkcs11.Token, module: Path, token_label: str, pin: str) -> pkcs11.Session:
    where = f"{module}: token '{token_label}'"
    try:
        # Read-write: generating a key stores objects; signing does not mind.
        return token.open(rw=True, user_pin=pin)
    except (pkcs11.PinIncorrect, pkcs11.PinLenRange):
        raise TokenProblem(f"{where}: wrong PIN") from None
    except pkcs11.PinLocked:
        raise TokenProblem(f"{where}: the user PIN is locked (too many wrong PINs)") from None
    except pkcs11.UserPinNotInitialized:
        raise TokenProblem(f"{where}: the user PIN was never set") from None
    except pkcs11.UserAlreadyLoggedIn:
        raise TokenProblem(
            f"{where}: other code of this process logged in already, so this PIN cannot be checked"
        ) from None
    except pkcs11.PKCS11Error as exc:
        raise TokenProblem(f"{where}: cannot log in: {_error_name(exc)}") from None


def _type_name(key_type: Any) -> str:
    return str(getattr(key_type, "name", key_type))


def _ec_public_key(obj: Any, where: str) -> ec.EllipticCurvePublicKey:
    try:
        key_type = obj[Attribute.KEY_TYPE]
    except pkcs11.PKCS11Error as exc:
        raise TokenProblem(f"{where}: the public key cannot be read: {_error_name(exc)}") from None
    if key_type != KeyType.EC:
        raise TokenProblem(f"{where}: not a P-256 key but of type {_type_name(key_type)}")
    try:
        der = encode_ec_public_key(obj)
        key = serialization.load_der_public_key(der)
    except (pkcs11.PKCS11Error, ValueError) as exc:
        raise TokenProblem(f"{where}: the public key cannot be read: {_error_name(exc)}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TokenProblem(f"{where}: not a P-256 key")
    return key


class TokenSession:
    """A logged-in session on one token, for making, finding and using its keys; ``close()`` it."""

    def __init__(self, module: Path, token_label: str, login: _Login, login_key: tuple[str, bytes]) -> None:
        self.module = module
        self.token_label = token_label
        self._login = login
        self._login_key = login_key
        self._closed = False

    def __enter__(self) -> TokenSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the session; the token is logged out when no TokenSession of it is left."""
        with _CALLS:
            if self._closed:
                return
            self._closed = True
            self._login.users -= 1
            if self._login.users > 0:
                return
            if _logins.get(self._login_key) is self._login:
                del _logins[self._login_key]
            try:
                self._login.session.close()
            except pkcs11.PKCS11Error:
                # A module finalised meanwhile has dropped its sessions already: nothing to undo.
                pass

    def _where(self, key_label: str | None = None) -> str:
        where = f"{self.module}: token '{self.token_label}'"
        return where if key_label is None else f"{where}, key '{key_label}'"

    def _session(self) -> pkcs11.Session:
        if self._closed:
            raise TokenProblem(f"{self._where()}: the session was closed")
        return self._login.session

    def _find(self, object_class: ObjectClass, key_label: str, what: str) -> Any:
        if not key_label:
            raise TokenProblem(f"{self._where()}: a key label must not be empty")
        try:
            return self._session().get_key(object_class=object_class, label=key_label)
        except pkcs11.NoSuchKey:
            raise TokenProblem(f"{self._where()}: no {what} labelled '{key_label}'") from None
        except pkcs11.MultipleObjectsReturned:
            raise TokenProblem(f"{self._where()}: several {what}s are labelled '{key_label}'") from None
        except pkcs11.PKCS11Error as exc:
            raise TokenProblem(f"{self._where(key_label)}: cannot look it up: {_error_name(exc)}") from None

    def generate(self, key_label: str) -> ec.EllipticCurvePublicKey:
        """Make a P-256 key pair inside the token under a new ``key_label``; return its public key."""
        if not key_label:
            raise TokenProblem(f"{self._where()}: a key label must not be empty")
        with _CALLS:
            session = self._session()
            where = self._where(key_label)
            try:
                # Listed to the end: a search left open would hold the session's find operation.
                taken = bool(list(session.get_objects({Attribute.LABEL: key_label})))
            except pkcs11.PKCS11Error as exc:
                raise TokenProblem(f"{where}: cannot look it up: {_error_name(exc)}") from None
            if taken:
                # Never replace a key: certificates and past signatures may name it.
                raise TokenProblem(f"{self._where()}: a key labelled '{key_label}' exists already")
            try:
                public, _private = session.generate_keypair(
                    KeyType.EC,
                    label=key_label,
                    store=True,
                    # Signing only: no ECDH, no unwrapping, whatever the module's defaults.
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    mechanism=Mechanism.EC_KEY_PAIR_GEN,
                    public_template={Attribute.EC_PARAMS: P256_PARAMS, Attribute.PRIVATE: False},
                    private_template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.PRIVATE: True,
                    },
                )
            except pkcs11.PKCS11Error as exc:
                raise TokenProblem(f"{where}: cannot generate a P-256 key pair: {_error_name(exc)}") from None
            return _ec_public_key(public, where)

    def public_key(self, key_label: str) -> ec.EllipticCurvePublicKey:
        """The public key stored beside the private key ``key_label``."""
        with _CALLS:
            public = self._find(ObjectClass.PUBLIC_KEY, key_label, "public key")
            return _ec_public_key(public, self._where(key_label))

    def key(self, key_label: str) -> TokenKey:
        """The P-256 signing key ``key_label``, checked to be one, ready to sign digests."""
        where = self._where(key_label)
        with _CALLS:
            private = self._find(ObjectClass.PRIVATE_KEY, key_label, "private key")
            try:
                key_type = private[Attribute.KEY_TYPE]
                if key_type != KeyType.EC:
                    # Asked alone: an RSA key has no EC_PARAMS, and asking for both would fail.
                    raise TokenProblem(f"{where}: not a P-256 key but of type {_type_name(key_type)}")
                curve, may_sign = private[Attribute.EC_PARAMS], private[Attribute.SIGN]
            except pkcs11.PKCS11Error as exc:
                raise TokenProblem(f"{where}: cannot read its attributes: {_error_name(exc)}") from None
            if curve != P256_PARAMS:
                raise TokenProblem(f"{where}: an EC key on another curve than P-256")
            if not may_sign:
                raise TokenProblem(f"{where}: the token does not allow this key to sign")
            public_key = self.public_key(key_label)
        return TokenKey(self, key_label, public_key, private)

    def secret_hmac(self, key_label: str, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the token's secret ``key_label``, made (inside the
        token, sensitive, never extractable) the first time it is asked for.

        The kit's part of the key that wraps officers' credentials: without this token the
        wrapped files on the SD card cannot be opened, whatever PIN is tried."""
        where = self._where(key_label)
        with _CALLS:
            session = self._session()
            try:
                found = list(
                    session.get_objects({Attribute.LABEL: key_label, Attribute.CLASS: ObjectClass.SECRET_KEY})
                )
                if len(found) > 1:
                    raise TokenProblem(f"{where}: several secret keys carry this label")
                if found:
                    secret = found[0]
                    if not secret[Attribute.SENSITIVE] or secret[Attribute.EXTRACTABLE]:
                        raise TokenProblem(f"{where}: the secret could leave the token (not sensitive)")
                else:
                    secret = session.generate_key(
                        KeyType.GENERIC_SECRET,
                        key_length=256,
                        label=key_label,
                        store=True,
                        capabilities=MechanismFlag.SIGN,
                        template={
                            Attribute.SENSITIVE: True,
                            Attribute.EXTRACTABLE: False,
                            Attribute.PRIVATE: True,
                        },
                    )
                return bytes(secret.sign(message, mechanism=Mechanism.SHA256_HMAC))
            except pkcs11.PKCS11Error as exc:
                raise TokenProblem(
                    f"{where}: the token's secret cannot be used: {_error_name(exc)}"
                ) from None

    def signer(self, key_label: str, certificate: x509.Certificate) -> TokenSigner:
        """A signer with the key ``key_label`` and its ``certificate``, on this session."""
        return TokenSigner.on(self, key_label, certificate)

    def csr(self, key_label: str, subject_cn: str) -> bytes:
        """A PEM certificate request for the key ``key_label`` (see :func:`make_csr`)."""
        return make_csr(self.key(key_label), subject_cn)


class TokenKey:
    """A P-256 private key on a token (by handle only) and its public key."""

    def __init__(
        self, token: TokenSession, label: str, public_key: ec.EllipticCurvePublicKey, private: Any
    ) -> None:
        self.token = token
        self.label = label
        self.public_key = public_key
        self._private = private

    def sign_digest(self, digest: bytes) -> bytes:
        """The DER ECDSA-Sig-Value over a 32-byte SHA-256 digest, computed by the token."""
        if len(digest) != DIGEST_BYTES:
            raise ValueError("a SHA-256 digest is 32 bytes")
        where = self.token._where(self.label)
        with _CALLS:
            self.token._session()
            try:
                # Raw CKM_ECDSA over the digest we made: SoftHSM and many cards lack CKM_ECDSA_SHA256.
                raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.PKCS11Error as exc:
                raise TokenProblem(f"{where}: the token would not sign: {_error_name(exc)}") from None
        if len(raw) != 2 * P256_SCALAR_BYTES:
            raise TokenProblem(f"{where}: the token gave a {len(raw)}-byte signature, not P-256's 64")
        # PKCS#11 gives r || s; CMS and X.509 want the DER SEQUENCE of the two integers.
        r, s = raw[:P256_SCALAR_BYTES], raw[P256_SCALAR_BYTES:]
        return encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))


def open_token(module: Path, token_label: str, pin: str) -> TokenSession:
    """A logged-in session on the token ``token_label`` of the PKCS#11 ``module``.

    Sessions of one process on one token share a single login: the PIN of a later one is
    checked against the PIN that logged in.
    """
    with _CALLS:
        lib = _load_module(module)
        token = _find_token(lib, module, token_label)
        login_key = (str(module), bytes(token.serial))
        login = _logins.get(login_key)
        if login is None:
            session = _log_in(token, module, token_label, pin)
            login = _logins[login_key] = _Login(session, _pin_digest(pin))
        elif not hmac.compare_digest(login.pin_digest, _pin_digest(pin)):
            raise TokenProblem(f"{module}: token '{token_label}': wrong PIN")
        login.users += 1
        return TokenSession(module, token_label, login, login_key)


def generate_token_key(module: Path, token_label: str, pin: str, key_label: str) -> ec.EllipticCurvePublicKey:
    """Make a P-256 key pair inside the token (never extractable) and return its public key.

    A key label already on the token is refused rather than replaced.
    """
    with open_token(module, token_label, pin) as token:
        return token.generate(key_label)


def token_public_key(module: Path, token_label: str, pin: str, key_label: str) -> ec.EllipticCurvePublicKey:
    """The public key of the token key ``key_label`` (to request or match a certificate)."""
    with open_token(module, token_label, pin) as token:
        return token.key(key_label).public_key


class TokenSigner:
    """A :class:`~kitformats.signing.Signer` whose key is on a PKCS#11 token; ``close()`` it when done.

    Its session is opened once, here, and reused by every signature; calls from several
    threads take turns. :meth:`on` makes one that borrows a session already open instead.
    """

    certificate: x509.Certificate

    def __init__(
        self, module: Path, token_label: str, pin: str, key_label: str, certificate: x509.Certificate
    ) -> None:
        token = open_token(module, token_label, pin)
        try:
            self._attach(token.key(key_label), certificate)
        except BaseException:
            token.close()
            raise
        self._owned: TokenSession | None = token

    @classmethod
    def on(cls, token: TokenSession, key_label: str, certificate: x509.Certificate) -> TokenSigner:
        """A signer on the session ``token``, which stays the caller's to close."""
        signer = cls.__new__(cls)
        signer._attach(token.key(key_label), certificate)
        signer._owned = None
        return signer

    def _attach(self, key: TokenKey, certificate: x509.Certificate) -> None:
        if certificate.public_key() != key.public_key:
            name = common_name(certificate) or certificate.subject.rfc4514_string()
            raise TokenProblem(
                f"{key.token._where(key.label)}: the certificate of '{name}' is for another key"
            )
        self.certificate = certificate
        self._key = key

    def __enter__(self) -> TokenSigner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key

    def sign_digest(self, digest: bytes) -> bytes:
        return self._key.sign_digest(digest)

    def close(self) -> None:
        """Close the session this signer opened (a borrowed one is left to its owner)."""
        if self._owned is not None:
            self._owned.close()


class DigestSigningKey(Protocol):
    """A P-256 key that can sign a digest and show its public key (a TokenKey or a TokenSigner)."""

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_digest(self, digest: bytes) -> bytes: ...


def make_csr(key: DigestSigningKey, subject_cn: str) -> bytes:
    """A PEM PKCS#10 certificate request for ``key`` with subject CN=``subject_cn``, signed by the key.

    cryptography's CSR builder wants a private key object, which a token never yields, so
    the request is laid out with asn1crypto and only its digest goes to the key.
    """
    spki = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.build({"common_name": subject_cn}),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            # RFC 2986 requires the [0] attributes even when empty.
            "attributes": [],
        }
    )
    signature = key.sign_digest(hashlib.sha256(info.dump()).digest())
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    pem = asn1_pem.armor("CERTIFICATE REQUEST", request.dump())
    # A request the CA would reject is better caught here, where the key is: a token whose
    # public and private objects under this label are not one pair shows up now.
    if not x509.load_pem_x509_csr(pem).is_signature_valid:
        raise TokenProblem(f"the request for '{subject_cn}' does not verify with the key's own public key")
    return pem
