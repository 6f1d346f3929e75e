"""CMS for sealed bundles: SignedData (RFC 5652) and AuthEnvelopedData (RFC 5083), made and opened.

Its one job: turn bytes into signed or enveloped DER and back, checking everything on the way
back. asn1crypto lays out the structures; cryptography does every computation, and a
signature is only ever asked of a :class:`~kitformats.signing.Signer` (a key on a token
must sign exactly like a file key). What is made here opens with ``openssl cms``, so the
central office needs no code of ours to read a bundle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from asn1crypto import algos, cms, core, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509 import verification

from kitformats.errors import KitError
from kitformats.signing import KeyProblem, Signer, common_name

ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
# Some producers put the key type (id-ecPublicKey) where the signature algorithm goes; the
# digest is fixed by digestAlgorithm either way, so both are read as ECDSA with SHA-256.
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
AES256_GCM = "2.16.840.1.101.3.4.1.46"
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16
CONTENT_KEY_BYTES = 32
_SET_OF_TAG = 17
# What a kit makes, and so all the office opens: RSA-OAEP with SHA-256 and MGF1-SHA-256.
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256}


class SealBroken(KitError):
    """An envelope does not open: not one, not for this key, or altered."""


class SignatureInvalid(KitError):
    """A SignedData or a signed statement does not verify; the message names the signer and why."""


class GcmParameters(core.Sequence):
    """GCMParameters of RFC 5084 (nonce and tag length), which asn1crypto 1.5 leaves undefined."""

    _fields = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


@dataclass
class VerifiedContent:
    """What a verified SignedData says: its content, and who signed it when (in SignerInfo order)."""

    content: bytes
    signers: list[x509.Certificate]
    signing_times: list[dt.datetime | None]


# -- shared helpers -------------------------------------------------------------------------


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@cache
def _issuer_and_serial_der(certificate_der: bytes) -> bytes:
    parsed = asn1_x509.Certificate.load(certificate_der)
    return cms.IssuerAndSerialNumber({"issuer": parsed.issuer, "serial_number": parsed.serial_number}).dump()


def _issuer_and_serial(certificate: x509.Certificate) -> cms.IssuerAndSerialNumber:
    # Built once per certificate and loaded from its DER after: copying a parsed Name into a
    # new structure makes asn1crypto re-encode it, most of an envelope's cost otherwise.
    der = _issuer_and_serial_der(certificate.public_bytes(serialization.Encoding.DER))
    return cms.IssuerAndSerialNumber.load(der)


def _identifies(
    sid: cms.SignerIdentifier | cms.RecipientIdentifier, certificate: asn1_x509.Certificate
) -> bool:
    if sid.name == "issuer_and_serial_number":
        # Byte for byte: asn1crypto's Name equality folds case and spaces (RFC 5280 matching),
        # which would let a changed byte in a signer's identifier pass unnoticed.
        return sid.chosen.dump() == _issuer_and_serial_der(certificate.dump())
    return sid.chosen.native == certificate.key_identifier


def _common_name(certificate: x509.Certificate) -> str:
    """How a message names a certificate: CN=..., or the whole subject when it has no CN."""
    name = common_name(certificate)
    return f"CN={name}" if name else certificate.subject.rfc4514_string()


def _as_set_of(attributes: core.Asn1Value) -> bytes:
    # Signed and authenticated attributes are protected as a DER SET OF (tag 0x31), not as
    # the [0]/[1] IMPLICIT tag they are stored under; the received contents are kept as is.
    return parser.emit(0, 1, _SET_OF_TAG, attributes.contents)


# -- SignedData ----------------------------------------------------------------------------


def _signing_time_value(when: dt.datetime) -> cms.Time:
    when = when.astimezone(dt.UTC).replace(microsecond=0)
    # RFC 5652 11.3: UTCTime for 1950-2049, GeneralizedTime outside.
    if 1950 <= when.year < 2050:
        return cms.Time({"utc_time": when})
    return cms.Time({"generalized_time": when})


def _signer_info(signer: Signer, content_digest: bytes, signing_time: dt.datetime) -> cms.SignerInfo:
    attributes = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "message_digest", "values": [content_digest]},
            {"type": "signing_time", "values": [_signing_time_value(signing_time)]},
        ]
    )
    to_sign = attributes.dump()
    signature = signer.sign_digest(hashlib.sha256(to_sign).digest())
    # A token holding a different key than its certificate says would make bundles nobody
    # can verify; better to learn it at the kit than at the office.
    public_key = signer.certificate.public_key()
    try:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        public_key.verify(signature, to_sign, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise KeyProblem(
            f"the key of '{_common_name(signer.certificate)}' does not match its certificate:"
            " its signature does not verify"
        ) from None
    return cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number", value=_issuer_and_serial(signer.certificate)
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": ECDSA_WITH_SHA256},
            "signature": signature,
        }
    )


def sign_content(
    content: bytes,
    signers: Sequence[Signer],
    *,
    detached: bool = False,
    signing_time: dt.datetime | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
) -> bytes:
    """DER ContentInfo of a SignedData over ``content``, one SignerInfo per signer.

    SignerInfos is a SET OF, which DER stores sorted by encoding: the SignerInfos do not keep
    the order of ``signers``, so whoever verifies checks who signed, not in which order.
    """
    if not signers:
        raise ValueError("a SignedData needs at least one signer")
    when = signing_time if signing_time is not None else dt.datetime.now(dt.UTC)
    digest = hashlib.sha256(content).digest()
    signer_infos = [_signer_info(signer, digest, when) for signer in signers]
    certificates = dict.fromkeys(
        certificate.public_bytes(serialization.Encoding.DER)
        for certificate in [*(signer.certificate for signer in signers), *extra_certificates]
    )
    encapsulated: dict[str, object] = {"content_type": "data"}
    if not detached:
        encapsulated["content"] = content
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": encapsulated,
            # A certificate is its own DER in the CHOICE: loaded, not rebuilt, it costs nothing.
            "certificates": [cms.CertificateChoices.load(der) for der in certificates],
            "signer_infos": signer_infos,
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)
_CertificatePair = tuple[asn1_x509.Certificate, x509.Certificate]


def _parse_signed_data(der: bytes) -> tuple[cms.SignedData, list[_CertificatePair]]:
    """The SignedData and its certificates (each once), in asn1crypto's and cryptography's form."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError
        signed_data = info["content"]
        by_der: dict[bytes, _CertificatePair] = {}
        for choice in signed_data["certificates"] or ():
            certificate_der = choice.chosen.dump()
            if choice.name == "certificate" and certificate_der not in by_der:
                by_der[certificate_der] = (choice.chosen, x509.load_der_x509_certificate(certificate_der))
        # Parse the parts read below now, so that garbage fails here with one message.
        signed_data["signer_infos"].native  # noqa: B018
        signed_data["encap_content_info"]["content_type"].native  # noqa: B018
    except Exception:  # noqa: BLE001 - asn1crypto raises many kinds on garbled DER
        raise SignatureInvalid("not a CMS SignedData") from None
    for parsed, certificate in by_der.values():
        # The outer signatureAlgorithm is outside what the CA signed; RFC 5280 4.1.1.2 wants
        # it equal to the signed one, and a changed byte there must not pass unnoticed.
        if parsed["signature_algorithm"].dump() != parsed["tbs_certificate"]["signature"].dump():
            name = _common_name(certificate)
            raise SignatureInvalid(f"certificate '{name}': its two signature algorithms differ")
    return signed_data, list(by_der.values())


def carried_certificates(der: bytes) -> list[x509.Certificate]:
    """The certificates a SignedData carries (who it claims signed it), before any check."""
    return [certificate for _, certificate in _parse_signed_data(der)[1]]


def _attribute(attributes: cms.CMSAttributes, name: str) -> core.Asn1Value | None:
    values = [attribute["values"] for attribute in attributes if attribute["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        return None
    return values[0][0]


def _describe_sid(signer_info: cms.SignerInfo) -> str:
    sid = signer_info["sid"]
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"].human_friendly, sid.chosen["serial_number"].native
        return f"signer serial {serial:#x} of '{issuer}'"
    return f"signer with key identifier {sid.chosen.native.hex()}"


def _chain_verifier(trust: Sequence[x509.Certificate], at: dt.datetime) -> verification.ClientVerifier:
    if not trust:
        raise ValueError("verifying a signature needs at least one trusted CA certificate")

    # The client verifier's web PKI leaf policy wants a subjectAltName and a TLS client EKU;
    # a signing certificate has neither. The leaf's own constraints are checked beforehand by
    # _leaf_problem (with messages for a person); the CAs keep the web PKI policy.
    leaf_policy = verification.ExtensionPolicy.permit_all()
    return (
        verification.PolicyBuilder()
        .store(verification.Store(list(trust)))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy
        )
        .build_client_verifier()
    )


def _extension(certificate: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _leaf_problem(certificate: x509.Certificate, at: dt.datetime) -> str | None:
    """Why a signer's certificate cannot sign, as said to a person; None when it can."""
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        return f"certificate is not valid on {at:%Y-%m-%d %H:%M} UTC"
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        return "certificate is a CA certificate, not a signer's"
    usage = _extension(certificate, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        return "certificate's key usage does not allow signing"
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "certificate's key is not an ECDSA P-256 key"
    return None


def _check_certificate(
    label: str,
    certificate: x509.Certificate,
    verifier: verification.ClientVerifier,
    intermediates: list[x509.Certificate],
    at: dt.datetime,
) -> None:
    problem = _leaf_problem(certificate, at)
    if problem is not None:
        raise SignatureInvalid(f"{label}: {problem}")
    try:
        verifier.verify(certificate, intermediates)
    except verification.VerificationError as exc:
        # Kept as the cause: the verifier's own message says where the chain broke.
        raise SignatureInvalid(f"{label}: certificate is not issued by a trusted CA") from exc


def _check_signer_info(
    signer_info: cms.SignerInfo, label: str, certificate: x509.Certificate, content_type: str, digest: bytes
) -> dt.datetime | None:
    """The signing time, once digest, attributes and signature of one SignerInfo check out."""
    expected_version = "v1" if signer_info["sid"].name == "issuer_and_serial_number" else "v3"
    if signer_info["version"].native != expected_version:
        raise SignatureInvalid(f"{label}: SignerInfo version is not {expected_version} (RFC 5652 5.3)")
    if signer_info["digest_algorithm"]["algorithm"].native != "sha256":
        raise SignatureInvalid(f"{label}: digest algorithm is not SHA-256")
    attributes = signer_info["signed_attrs"]
    if isinstance(attributes, core.Void):
        raise SignatureInvalid(f"{label}: there are no signed attributes")
    signed_type = _attribute(attributes, "content_type")
    if signed_type is None or signed_type.dotted != content_type:
        raise SignatureInvalid(f"{label}: the signed content type is not the content's type")
    signed_digest = _attribute(attributes, "message_digest")
    if signed_digest is None or signed_digest.native != digest:
        raise SignatureInvalid(f"{label}: message digest does not match the content: the content was altered")
    if signer_info["signature_algorithm"]["algorithm"].dotted not in (ECDSA_WITH_SHA256, EC_PUBLIC_KEY):
        raise SignatureInvalid(f"{label}: signature algorithm is not ECDSA with SHA-256")
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid(f"{label}: certificate has no elliptic-curve key")
    try:
        public_key.verify(signer_info["signature"].native, _as_set_of(attributes), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureInvalid(f"{label}: signature does not verify over the signed attributes") from None
    signing_time = _attribute(attributes, "signing_time")
    return None if signing_time is None else signing_time.native


def verify_signed(
    der: bytes,
    trust: Sequence[x509.Certificate],
    *,
    content: bytes | None = None,
    at: dt.datetime | None = None,
    intermediates: Sequence[x509.Certificate] = (),
    pinned: x509.Certificate | None = None,
) -> VerifiedContent:
    """Check every SignerInfo of a SignedData and its certificate's chain to ``trust``.

    ``content`` is required for a detached SignedData; given for an attached one, it must be
    the content carried. The caller decides whether the signers are the ones it expected.
    ``pinned`` (with an empty ``trust``): every signer must be exactly that certificate, and
    no chain is built — how a laptop that holds only a kit's certificate checks it.
    Whatever the bytes, only SignatureInvalid comes out: asn1crypto parses lazily, and a
    garbled field deep inside may raise anything when first read.
    """
    if not trust and pinned is None:
        raise ValueError("verifying a signature needs a trusted CA certificate or a pinned signer")
    try:
        return _verify_signed(der, trust, content, at, intermediates, pinned)
    except KitError:
        raise
    except Exception:  # noqa: BLE001 - see the docstring
        raise SignatureInvalid("the SignedData is malformed") from None


def _verify_signed(
    der: bytes,
    trust: Sequence[x509.Certificate],
    content: bytes | None,
    at: dt.datetime | None,
    intermediates: Sequence[x509.Certificate],
    pinned: x509.Certificate | None,
) -> VerifiedContent:
    signed_data, certificates = _parse_signed_data(der)
    if cms.ContentInfo.load(der).dump(force=True) != der:
        # Not in the one DER encoding of what it says (a BIT STRING's unused bits, a length
        # in long form...): the signatures do not cover those bytes, so they are refused.
        raise SignatureInvalid("the SignedData is not in DER")
    # What a kit makes, exactly: every part of the structure is checked, so that no byte of
    # it can change unnoticed (the signatures cover only the content and signed attributes).
    # RFC 5652 5.1: version 1 for what a kit makes (X.509 certificates, id-data content,
    # SignerInfos identified by issuer and serial number), 3 only with subject key identifiers.
    v3 = any(i["sid"].name == "subject_key_identifier" for i in signed_data["signer_infos"])
    if signed_data["version"].native != ("v3" if v3 else "v1"):
        raise SignatureInvalid(
            f"SignedData version {signed_data['version'].native} is not {'3' if v3 else '1'}"
        )
    digests = signed_data["digest_algorithms"]
    if len(digests) != 1 or digests[0]["algorithm"].native != "sha256" or digests[0]["parameters"].native:
        raise SignatureInvalid("the SignedData's digest algorithms are not exactly SHA-256")
    encapsulated = signed_data["encap_content_info"]
    carried = encapsulated["content"]
    if isinstance(carried, core.Void):
        if content is None:
            raise SignatureInvalid("the SignedData is detached and no content was given to check it against")
    else:
        if content is not None and content != carried.native:
            raise SignatureInvalid("the content given is not the content the SignedData carries")
        content = carried.native
    assert content is not None
    if not signed_data["signer_infos"]:
        raise SignatureInvalid("the SignedData has no signers")
    when = (at if at is not None else dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    verifier = _chain_verifier(trust, when) if trust else None
    pool = [*(certificate for _, certificate in certificates), *intermediates]
    digest = hashlib.sha256(content).digest()
    content_type = encapsulated["content_type"].dotted
    result = VerifiedContent(content=content, signers=[], signing_times=[])
    for signer_info in signed_data["signer_infos"]:
        matches = [
            certificate for parsed, certificate in certificates if _identifies(signer_info["sid"], parsed)
        ]
        if not matches:
            raise SignatureInvalid(f"{_describe_sid(signer_info)}: its certificate is not in the SignedData")
        if len(matches) > 1:
            # Two different certificates under one issuer and serial: one of them is forged.
            raise SignatureInvalid(
                f"{_describe_sid(signer_info)}: more than one certificate claims this signer"
            )
        certificate = matches[0]
        label = f"signer '{_common_name(certificate)}'"
        signing_time = _check_signer_info(signer_info, label, certificate, content_type, digest)
        if pinned is not None:
            if certificate != pinned:
                raise SignatureInvalid(f"{label}: is not the expected signer '{_common_name(pinned)}'")
            problem = _leaf_problem(certificate, when)
            if problem is not None:
                raise SignatureInvalid(f"{label}: {problem}")
        else:
            assert verifier is not None
            _check_certificate(label, certificate, verifier, pool, when)
        result.signers.append(certificate)
        result.signing_times.append(signing_time)
    return result


# -- AuthEnvelopedData ---------------------------------------------------------------------


def _oaep(hash_name: str) -> padding.OAEP:
    digest = _OAEP_HASHES[hash_name]
    return padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)


def _key_transport(certificate: x509.Certificate, content_key: bytes) -> cms.RecipientInfo:
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise KeyProblem(
            f"recipient '{_common_name(certificate)}' has no RSA key: only RSA recipients are supported"
        )
    usage = _extension(certificate, x509.KeyUsage)
    if usage is not None and not usage.key_encipherment:
        raise KeyProblem(
            f"recipient '{_common_name(certificate)}': the key usage does not allow key encipherment"
        )
    # The fixed parts are loaded from DER made once: asn1crypto builds nested values from dicts
    # slowly (most of an envelope's time otherwise).
    rid = cms.RecipientIdentifier.load(
        _recipient_identifier_der(certificate.public_bytes(serialization.Encoding.DER))
    )
    transport = cms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": rid,
            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm.load(_oaep_sha256_der()),
            "encrypted_key": public_key.encrypt(content_key, _oaep("sha256")),
        }
    )
    return cms.RecipientInfo(name="ktri", value=transport)


@cache
def _oaep_sha256_der() -> bytes:
    parameters = algos.RSAESOAEPParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        }
    )
    return cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": parameters}).dump()


@cache
def _recipient_identifier_der(certificate_der: bytes) -> bytes:
    ias = cms.IssuerAndSerialNumber.load(_issuer_and_serial_der(certificate_der))
    return cms.RecipientIdentifier(name="issuer_and_serial_number", value=ias).dump()


def envelope(
    content: bytes, recipients: Sequence[x509.Certificate], content_type: str = "signed_data"
) -> bytes:
    """DER ContentInfo of an AuthEnvelopedData: AES-256-GCM content, its key wrapped for each recipient."""
    if not recipients:
        raise ValueError("an envelope needs at least one recipient")
    content_key = AESGCM.generate_key(bit_length=256)
    recipient_infos = [_key_transport(certificate, content_key) for certificate in recipients]
    nonce = os.urandom(GCM_NONCE_BYTES)
    sealed = AESGCM(content_key).encrypt(nonce, content, None)
    enveloped = cms.AuthEnvelopedData(
        {
            "version": "v0",
            "recipient_infos": recipient_infos,
            "auth_encrypted_content_info": {
                "content_type": content_type,
                "content_encryption_algorithm": {
                    "algorithm": AES256_GCM,
                    "parameters": GcmParameters({"aes_nonce": nonce, "aes_icvlen": GCM_TAG_BYTES}),
                },
                "encrypted_content": sealed[:-GCM_TAG_BYTES],
            },
            "mac": sealed[-GCM_TAG_BYTES:],
        }
    )
    return cms.ContentInfo({"content_type": "authenticated_enveloped_data", "content": enveloped}).dump()


def _parse_auth_enveloped(der: bytes) -> cms.AuthEnvelopedData:
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "authenticated_enveloped_data":
            raise ValueError
        enveloped = info["content"]
        enveloped["recipient_infos"].native  # noqa: B018
        enveloped["auth_encrypted_content_info"]["content_encryption_algorithm"].native  # noqa: B018
        enveloped["mac"].native  # noqa: B018
    except Exception:  # noqa: BLE001 - asn1crypto raises many kinds on garbled DER
        raise SealBroken("not a CMS AuthEnvelopedData") from None
    return enveloped


def _gcm_nonce(algorithm: cms.EncryptionAlgorithm, tag: bytes) -> bytes:
    oid = algorithm["algorithm"].dotted
    unsupported = SealBroken(f"unsupported content encryption {oid}: only AES-256-GCM ({AES256_GCM}) opens")
    if oid != AES256_GCM:
        raise unsupported
    try:
        parameters = algorithm["parameters"].parse(GcmParameters)
        nonce, tag_length = parameters["aes_nonce"].native, parameters["aes_icvlen"].native
    except (ValueError, TypeError, AttributeError):
        raise unsupported from None
    if len(nonce) != GCM_NONCE_BYTES or tag_length != GCM_TAG_BYTES or len(tag) != GCM_TAG_BYTES:
        raise unsupported
    return nonce


def _oaep_of(algorithm: cms.KeyEncryptionAlgorithm) -> padding.OAEP | None:
    """The OAEP padding a key transport names, or None when it is not RSA-OAEP we can do."""
    if algorithm["algorithm"].native != "rsaes_oaep":
        return None
    try:
        parameters = algorithm["parameters"]
        hash_name = parameters["hash_algorithm"]["algorithm"].native
        mask = parameters["mask_gen_algorithm"]
        mask_hash = mask["parameters"]["algorithm"].native
        label = parameters["p_source_algorithm"]["parameters"].native
    except (ValueError, TypeError, KeyError):
        # Absent or garbled parameters (absent would mean SHA-1 defaults, which we never make).
        return None
    if mask["algorithm"].native != "mgf1" or mask_hash != hash_name or hash_name not in _OAEP_HASHES or label:
        return None
    return _oaep(hash_name)


def _content_key(
    recipient_infos: cms.RecipientInfos, key: rsa.RSAPrivateKey, certificate: x509.Certificate | None
) -> bytes:
    named = None if certificate is None else _asn1_certificate(certificate)
    candidates: list[tuple[bytes, padding.OAEP]] = []
    for recipient_info in recipient_infos:
        if recipient_info.name != "ktri":
            continue
        transport = recipient_info.chosen
        if named is not None and not _identifies(transport["rid"], named):
            continue
        oaep = _oaep_of(transport["key_encryption_algorithm"])
        wrapped = transport["encrypted_key"].native
        # A key of another size cannot be this recipient's; without a certificate to match
        # on, that is the only sign of "not for this key" short of trying.
        if oaep is not None and len(wrapped) == (key.key_size + 7) // 8:
            candidates.append((wrapped, oaep))
    if not candidates:
        raise SealBroken("no recipient of this envelope is this key")
    for wrapped, oaep in candidates:
        try:
            content_key = key.decrypt(wrapped, oaep)
        except ValueError:
            continue
        if len(content_key) == CONTENT_KEY_BYTES:
            return content_key
    raise SealBroken("the content key does not unwrap with this key")


def open_envelope(
    der: bytes, key: rsa.RSAPrivateKey, *, certificate: x509.Certificate | None = None
) -> tuple[str, bytes]:
    """The inner content type's name (e.g. "signed_data") and the content of an AuthEnvelopedData.

    With ``certificate`` (the key's), the recipient is found by issuer and serial number, so
    "not for this key" and "altered wrapped key" are told apart; without it every recipient
    whose wrapped key fits is tried. Whatever the bytes, only SealBroken (or KeyProblem for a
    certificate that is not the key's) comes out.
    """
    if certificate is not None and certificate.public_key() != key.public_key():
        raise KeyProblem(f"the certificate '{_common_name(certificate)}' is not the one of this key")
    try:
        return _open_envelope(der, key, certificate)
    except KitError:
        raise
    except Exception:  # noqa: BLE001 - asn1crypto parses lazily: a garbled field raises anything
        raise SealBroken("the envelope is malformed") from None


def _open_envelope(
    der: bytes, key: rsa.RSAPrivateKey, certificate: x509.Certificate | None
) -> tuple[str, bytes]:
    enveloped = _parse_auth_enveloped(der)
    encrypted = enveloped["auth_encrypted_content_info"]
    tag = enveloped["mac"].native
    nonce = _gcm_nonce(encrypted["content_encryption_algorithm"], tag)
    ciphertext = encrypted["encrypted_content"].native
    if ciphertext is None:
        raise SealBroken("the envelope carries no encrypted content")
    content_key = _content_key(enveloped["recipient_infos"], key, certificate)
    attributes = enveloped["auth_attrs"]
    # RFC 5083 2.2: authenticated attributes, when present, are the GCM additional data.
    associated = None if isinstance(attributes, core.Void) else _as_set_of(attributes)
    try:
        content = AESGCM(content_key).decrypt(nonce, ciphertext + tag, associated)
    except InvalidTag:
        raise SealBroken("the authentication tag does not match: the file was altered") from None
    return encrypted["content_type"].native, content
