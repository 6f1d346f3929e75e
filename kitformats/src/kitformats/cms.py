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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, wraps
from typing import Any, TypeVar

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
_UNIVERSAL, _CONTEXT = 0, 2  # ASN.1 classes
_PRIMITIVE, _CONSTRUCTED = 0, 1
_OCTET_STRING_TAG, _SEQUENCE_TAG, _SET_OF_TAG = 4, 16, 17
# The SignedData a kit or a laptop verifies carry the same few certificates, signer identifiers
# and algorithm identifiers over and over, so what is worked out from such DER is remembered
# (see _remembered). The DER comes from outside: how many answers are kept, and how long a
# DER may be to be kept at all, are bounded.
_REMEMBERED = 128
_REMEMBERED_BYTES = 16 * 1024
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

_Result = TypeVar("_Result")


def _remembered(function: Callable[..., _Result]) -> Callable[..., _Result]:
    """``function``, a pure function of its arguments (the last one DER), with the answers for
    the last _REMEMBERED distinct arguments remembered: that changes no answer, only its cost.
    A DER longer than _REMEMBERED_BYTES is worked out each time and not kept. (A call that
    raises is not remembered either: garbage is looked at again each time.)"""
    cached = lru_cache(maxsize=_REMEMBERED)(function)

    @wraps(function)
    def remembered(*args: Any) -> _Result:
        return cached(*args) if len(args[-1]) <= _REMEMBERED_BYTES else function(*args)

    return remembered


@_remembered
def _issuer_and_serial_der(certificate_der: bytes) -> bytes:
    # Built once per certificate: copying a parsed Name into a new structure makes asn1crypto
    # re-encode it, most of an envelope's cost otherwise.
    parsed = asn1_x509.Certificate.load(certificate_der)
    return cms.IssuerAndSerialNumber({"issuer": parsed.issuer, "serial_number": parsed.serial_number}).dump()


@_remembered
def _key_identifier(certificate_der: bytes) -> bytes | None:
    return asn1_x509.Certificate.load(certificate_der).key_identifier


def _identifies(sid: cms.SignerIdentifier | cms.RecipientIdentifier, certificate_der: bytes) -> bool:
    if sid.name == "issuer_and_serial_number":
        # Byte for byte: asn1crypto's Name equality folds case and spaces (RFC 5280 matching),
        # which would let a changed byte in a signer's identifier pass unnoticed.
        return sid.chosen.dump() == _issuer_and_serial_der(certificate_der)
    return sid.chosen.native == _key_identifier(certificate_der)


def _common_name(certificate: x509.Certificate) -> str:
    """How a message names a certificate: CN=..., or the whole subject when it has no CN."""
    name = common_name(certificate)
    return f"CN={name}" if name else certificate.subject.rfc4514_string()


def _as_set_of(attributes: core.Asn1Value) -> bytes:
    # Signed and authenticated attributes are protected as a DER SET OF (tag 0x31), not as
    # the [0]/[1] IMPLICIT tag they are stored under; the received contents are kept as is.
    return _der(_UNIVERSAL, _CONSTRUCTED, _SET_OF_TAG, attributes.contents)


# -- SignedData ----------------------------------------------------------------------------


def _signing_time_value(when: dt.datetime) -> cms.Time:
    when = when.astimezone(dt.UTC).replace(microsecond=0)
    # RFC 5652 11.3: UTCTime for 1950-2049, GeneralizedTime outside.
    if 1950 <= when.year < 2050:
        return cms.Time({"utc_time": when})
    return cms.Time({"generalized_time": when})


def _der(class_: int, method: int, tag: int, *parts: bytes) -> bytes:
    """One DER value: the header (its length in DER) and ``parts`` as its contents."""
    return parser.emit(class_, method, tag, b"".join(parts))


def _der_sequence(*fields: bytes) -> bytes:
    return _der(_UNIVERSAL, _CONSTRUCTED, _SEQUENCE_TAG, *fields)


def _der_set_of(elements: Sequence[bytes]) -> bytes:
    # DER orders a SET OF by its elements' encodings (X.690 11.6), as asn1crypto does.
    return _der(_UNIVERSAL, _CONSTRUCTED, _SET_OF_TAG, *sorted(elements))


def _der_octet_string(value: bytes) -> bytes:
    return _der(_UNIVERSAL, _PRIMITIVE, _OCTET_STRING_TAG, value)


def _der_context(tag: int, *parts: bytes) -> bytes:
    """A constructed [tag]: an EXPLICIT tag around ``parts``, or an IMPLICIT one on a SET OF."""
    return _der(_CONTEXT, _CONSTRUCTED, tag, *parts)


@dataclass(frozen=True)
class _FixedDer:
    """The parts that are the same in every SignedData made here, laid out by asn1crypto once."""

    version: bytes  # CMSVersion v1: of the SignedData, and of a SignerInfo naming issuer and serial
    digest_algorithms: bytes  # the SignedData's SET OF DigestAlgorithmIdentifier: SHA-256 alone
    digest_algorithm: bytes  # a SignerInfo's: SHA-256
    signature_algorithm: bytes  # a SignerInfo's: ECDSA with SHA-256
    data: bytes  # the content type id-data
    signed_data: bytes  # the content type id-signedData
    content_type_attribute: bytes  # the signed attribute contentType, id-data
    message_digest_type: bytes  # the signed attribute types whose values vary
    signing_time_type: bytes


@cache
def _fixed_der() -> _FixedDer:
    # Building values from dicts is most of what asn1crypto costs (most of a signature's, when a
    # SignedData was built whole each time): these are built once, and a SignedData is put
    # together from DER, byte for byte what asn1crypto made of it.
    return _FixedDer(
        version=cms.CMSVersion("v1").dump(),
        digest_algorithms=cms.DigestAlgorithms([{"algorithm": "sha256"}]).dump(),
        digest_algorithm=algos.DigestAlgorithm({"algorithm": "sha256"}).dump(),
        signature_algorithm=algos.SignedDigestAlgorithm({"algorithm": ECDSA_WITH_SHA256}).dump(),
        data=cms.ContentType("data").dump(),
        signed_data=cms.ContentType("signed_data").dump(),
        content_type_attribute=cms.CMSAttribute({"type": "content_type", "values": ["data"]}).dump(),
        message_digest_type=cms.CMSAttributeType("message_digest").dump(),
        signing_time_type=cms.CMSAttributeType("signing_time").dump(),
    )


def _signer_info(signer: Signer, content_digest: bytes, signing_time: dt.datetime) -> bytes:
    """The DER SignerInfo of ``signer``: signed attributes content type, digest and time."""
    fixed = _fixed_der()
    # The signed attributes are a SET OF, so in the order of their encodings; they are signed
    # as a SET OF (RFC 5652 5.4) and stored under [0] IMPLICIT, with the same contents.
    digest_attribute = _der_sequence(
        fixed.message_digest_type, _der_set_of([_der_octet_string(content_digest)])
    )
    time_attribute = _der_sequence(
        fixed.signing_time_type, _der_set_of([_signing_time_value(signing_time).dump()])
    )
    attributes = b"".join(sorted([fixed.content_type_attribute, digest_attribute, time_attribute]))
    to_sign = _der(_UNIVERSAL, _CONSTRUCTED, _SET_OF_TAG, attributes)
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
    certificate_der = signer.certificate.public_bytes(serialization.Encoding.DER)
    return _der_sequence(
        fixed.version,
        # The SignerIdentifier's issuerAndSerialNumber choice is the IssuerAndSerialNumber, untagged.
        _issuer_and_serial_der(certificate_der),
        fixed.digest_algorithm,
        _der_context(0, attributes),
        fixed.signature_algorithm,
        _der_octet_string(signature),
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
    fixed = _fixed_der()
    # EncapsulatedContentInfo: id-data, then the content (an OCTET STRING in [0] EXPLICIT)
    # unless detached.
    carried = () if detached else (_der_context(0, _der_octet_string(content)),)
    signed_data = _der_sequence(
        fixed.version,
        fixed.digest_algorithms,
        _der_sequence(fixed.data, *carried),
        # certificates, a [0] IMPLICIT SET OF (so sorted): a certificate is its own DER in the CHOICE.
        _der_context(0, *sorted(certificates)),
        _der_set_of(signer_infos),
    )
    # ContentInfo: id-signedData, then the SignedData in [0] EXPLICIT.
    return _der_sequence(fixed.signed_data, _der_context(0, signed_data))


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)
_CertificatePair = tuple[bytes, x509.Certificate]


# A SignedData is refused unless it is in DER, the one encoding of what it says: the signatures
# cover only the content and the signed attributes, so no other byte may change without
# changing the meaning (a length in long form, a SET OF out of order...). The test is
# asn1crypto's: re-encode what was read (dump(force=True)) and compare with the bytes received.
# Done on the whole, that cost more than all the rest of a verification, nearly all of it in
# re-encoding parts that are the same in every SignedData of a signer (its certificate above
# all). But DER is made of DER: a value's re-encoding is its own tag and length around its
# parts' re-encodings (a SET OF's sorted), and a part's re-encoding depends on its bytes alone.
# So _reencoded_signed_data re-encodes level by level as dump(force=True) does, and takes a
# repeating part's re-encoding from what _is_der remembers of the very same bytes. It makes the
# same bytes as dump(force=True) of the whole, so the comparison with what was received is the
# same, exactly as strict, and every byte received is in it.


@_remembered
def _is_der(spec: type[core.Asn1Value], encoded: bytes) -> bool:
    """Whether ``encoded``, read as a ``spec``, is in DER: re-encoded, it is the same bytes."""
    return spec.load(encoded).dump(force=True) == encoded


def _reencoded(value: core.Asn1Value, *, remember: bool = False) -> bytes:
    """``value.dump(force=True)``: the DER of what ``value`` says.

    With ``remember`` (for a part that repeats from one SignedData to the next): when _is_der
    says the bytes ``value`` was read from re-encode to themselves, they are the answer. It
    reads them as their own type, which is how ``value`` was read only when it is untagged; a
    tagged value is re-encoded every time.
    """
    if remember and value.explicit is None and not value.implicit:
        received = value.dump()  # not forced: the bytes it was read from
        if _is_der(type(value), received):
            return received
    return value.dump(force=True)


def _tagged(value: core.Asn1Value, contents: bytes) -> bytes:
    """The re-encoded ``contents`` of ``value`` under its tag (and EXPLICIT tags, innermost
    first), with DER lengths: as dump(force=True) puts them."""
    encoded = parser.emit(value.class_, value.method, value.tag, contents)
    for class_, tag in value.explicit or ():
        encoded = parser.emit(class_, _CONSTRUCTED, tag, encoded)
    return encoded


def _reencoded_set_of(value: core.SetOf, element: Callable[[Any], bytes]) -> bytes:
    # DER orders a SET OF by its elements' encodings (X.690 11.6), as dump(force=True) does.
    return _tagged(value, b"".join(sorted(element(item) for item in value)))


def _reencoded_sequence(value: core.Sequence, field: Callable[[str, Any], bytes]) -> bytes:
    # The fields present, in order. An absent OPTIONAL field is Void; none of the sequences
    # re-encoded here (ContentInfo, SignedData, SignerInfo) has a DEFAULT one, which
    # dump(force=True) would leave out when equal to its default.
    present = [(name, part) for name in value if not isinstance(part := value[name], core.Void)]
    return _tagged(value, b"".join(field(name, part) for name, part in present))


def _reencoded_signer_info(name: str, part: Any) -> bytes:
    if name == "signed_attrs":
        # The content-type attribute repeats; the digest and the time do not, but remembering
        # them costs no more than re-encoding them.
        return _reencoded_set_of(part, lambda attribute: _reencoded(attribute, remember=True))
    return _reencoded(part, remember=name in ("sid", "digest_algorithm", "signature_algorithm"))


def _reencoded_signed_data(info: cms.ContentInfo) -> bytes:
    """``info.dump(force=True)`` of a ContentInfo of SignedData, but with its repeating parts
    (certificates, signer identifiers, algorithm identifiers, attributes) re-encoded once per
    distinct bytes rather than each time."""

    def signed_data_field(name: str, part: Any) -> bytes:
        if name == "certificates":
            return _reencoded_set_of(part, lambda choice: _reencoded(choice, remember=True))
        if name == "signer_infos":
            return _reencoded_set_of(part, lambda info: _reencoded_sequence(info, _reencoded_signer_info))
        return _reencoded(part, remember=name == "digest_algorithms")

    content_type = _reencoded(info["content_type"])
    signed_data = info["content"]  # the [0] EXPLICIT content, read as a SignedData
    return _tagged(info, content_type + _reencoded_sequence(signed_data, signed_data_field))


@_remembered
def _carried(certificate_der: bytes) -> tuple[x509.Certificate, bool]:
    """A carried certificate in cryptography's form, and whether its two signature algorithms
    differ: worked out once per distinct certificate."""
    parsed = asn1_x509.Certificate.load(certificate_der)
    # The outer signatureAlgorithm is outside what the CA signed; RFC 5280 4.1.1.2 wants it
    # equal to the signed one, and a changed byte there must not pass unnoticed.
    differ = parsed["signature_algorithm"].dump() != parsed["tbs_certificate"]["signature"].dump()
    return x509.load_der_x509_certificate(certificate_der), differ


def _parse_signed_data(der: bytes) -> tuple[cms.SignedData, list[_CertificatePair], bool]:
    """The SignedData, its certificates (each once: DER and cryptography's form), and whether
    ``der`` is in DER."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError
        signed_data = info["content"]
        by_der: dict[bytes, tuple[x509.Certificate, bool]] = {}
        for choice in signed_data["certificates"] or ():
            certificate_der = choice.chosen.dump()
            if choice.name == "certificate" and certificate_der not in by_der:
                by_der[certificate_der] = _carried(certificate_der)
        # Re-encoding reads every part (or did, for one with the same bytes), so that garbage
        # fails here with one message. It re-encodes parts in place: done before anything is
        # read from them, it leaves them as received when they are in DER, and a SignedData
        # that is not is refused (by the caller that verifies) before its parts are used.
        in_der = _reencoded_signed_data(info) == der
        signed_data["encap_content_info"]["content_type"].native  # noqa: B018
    except Exception:  # noqa: BLE001 - asn1crypto raises many kinds on garbled DER
        raise SignatureInvalid("not a CMS SignedData") from None
    for certificate, algorithms_differ in by_der.values():
        if algorithms_differ:
            name = _common_name(certificate)
            raise SignatureInvalid(f"certificate '{name}': its two signature algorithms differ")
    return signed_data, [(d, certificate) for d, (certificate, _) in by_der.items()], in_der


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
    signed_data, certificates, in_der = _parse_signed_data(der)
    if not in_der:
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
        sid = signer_info["sid"]
        matches = [certificate for carried_der, certificate in certificates if _identifies(sid, carried_der)]
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
    named = None if certificate is None else certificate.public_bytes(serialization.Encoding.DER)
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


# -- asn1crypto among threads ----------------------------------------------------------------


def _set_up_every_asn1_class() -> None:
    """Have asn1crypto set up each of its classes now, while one thread runs.

    asn1crypto builds a class's lookup tables (an OID's names, a CHOICE's alternatives, a
    SEQUENCE's fields) when its first instance is made, with no lock. Two threads making the
    first instances at once (a field laptop's fetchers checking statements, a kit's database
    and executor threads) can read a table another is still filling, and a good signature is
    then refused as "not a CMS SignedData". An instance of every class, made here, sets them
    all up before there is any other thread to race; it takes a few milliseconds.
    """
    pending = [core.Asn1Value]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        for subclass in cls.__subclasses__():
            if subclass not in seen:
                seen.add(subclass)
                pending.append(subclass)
        try:
            cls()  # the set-up comes first in asn1crypto's constructor; what follows may refuse
        except Exception:  # noqa: BLE001, S112 - a class that needs arguments is set up already
            continue


_set_up_every_asn1_class()
