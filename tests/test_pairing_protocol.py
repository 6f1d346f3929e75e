"""kitd-pairing/1 as pure functions (kitformats.pairing): the code, the transcript hash and
the confirmations byte for byte as the protocol states them (recomputed here with hashlib,
hmac and python-spake2 directly), both sides agreeing with the right code, and every
difference between what the two sides saw — another code, another kit certificate, other
laptop certificates, another name, a message swapped — refused by both. Also the profile
of the link's own certificates (kitformats.link_certificates) that pairing exchanges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kitformats.link_certificates import NOT_AFTER, NOT_BEFORE, USES, self_signed
from kitformats.pairing import (
    ConfirmationFailed,
    KitExchange,
    LaptopExchange,
    PairingError,
    Transcript,
    check_code,
    confirm_body,
    fingerprint,
    kit_confirmation,
    laptop_confirmation,
    new_code,
    read_confirm,
    read_paired,
    read_start,
    read_start_answer,
    start_answer,
    start_body,
)
from spake2 import SPAKE2_A, SPAKE2_B

CODE = "482916"
NAME = "lap-1"


def certificate(name: str) -> str:
    """A certificate (PEM) in the link's profile: self-signed, P-256."""
    return self_signed(name, "tls-client")[1].public_bytes(serialization.Encoding.PEM).decode()


def rsa_certificate() -> str:
    """A self-signed certificate outside the profile (PEM): an RSA key, which pairing refuses."""
    key = rsa.generate_private_key(65537, 1024)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")])
    built = x509.CertificateBuilder(
        subject, subject, key.public_key(), x509.random_serial_number(), NOT_BEFORE, NOT_AFTER
    ).sign(key, hashes.SHA256())
    return built.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def certificates() -> dict[str, str]:
    return {name: certificate(name) for name in ("kit", "relay", "laptop tls", "laptop receipts", "other")}


def fp(pem: str) -> bytes:
    return fingerprint(x509.load_pem_x509_certificate(pem.encode()))


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def test_the_link_certificates_are_self_signed_p256_ca_false_and_valid_2020_to_2100() -> None:
    extended = {
        "tls-server": [ExtendedKeyUsageOID.SERVER_AUTH],
        "tls-client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    }
    for use in USES:
        key, made = self_signed(f"laptop lap-1 {use}", use)
        assert made.public_key() == key.public_key() and isinstance(key.curve, ec.SECP256R1)
        made.verify_directly_issued_by(made)
        constraints = made.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca is False
        assert (made.not_valid_before_utc, made.not_valid_after_utc) == (NOT_BEFORE, NOT_AFTER)
        usages = _extension(made, x509.ExtendedKeyUsage)
        assert (None if usages is None else list(usages)) == extended.get(use)
        key_usage = _extension(made, x509.KeyUsage)
        if use == "tls-client":
            # OpenSSL takes a self-signed certificate whose keyUsage lacks keyCertSign for not
            # self-issued, and the kit trusts a laptop's as its own anchor: none at all.
            assert key_usage is None
        else:
            assert key_usage.digital_signature and key_usage.content_commitment is (use == "signing")
    with pytest.raises(ValueError, match="not 'ca'"):
        self_signed("x", "ca")  # type: ignore[arg-type]


def test_a_code_is_six_digits_from_the_system_randomness() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # a million codes: 200 draws almost never repeat
    assert check_code(" 482 916 ") == "482916"
    for wrong in ("48291", "4829167", "48291a", ""):
        with pytest.raises(PairingError) as refused:
            check_code(wrong)
        assert refused.value.field == "code"


def test_the_transcript_and_confirmations_are_the_ones_the_protocol_states() -> None:
    parts = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, "lap-1", b"A" + b"\x04" * 32, b"B" + b"\x05" * 32)
    transcript = Transcript(*parts)
    fields = [b"kitd-pairing/1", *parts[:3], b"lap-1", *parts[4:]]
    expected = hashlib.sha256(b"".join(struct.pack(">I", len(f)) + f for f in fields)).digest()
    assert transcript.digest() == expected
    key = b"\x09" * 32
    assert laptop_confirmation(key, transcript) == hmac.new(key, b"laptop" + expected, "sha256").digest()
    assert kit_confirmation(key, transcript) == hmac.new(key, b"kit" + expected, "sha256").digest()
    with pytest.raises(PairingError, match="kit_tls_fingerprint"):
        Transcript(b"\x01" * 31, *parts[1:]).digest()


def test_the_right_code_pairs_and_both_sides_hold_spake2s_key(certificates: dict[str, str]) -> None:
    kit_fp, tls_fp, receipt_fp = (fp(certificates[n]) for n in ("kit", "laptop tls", "laptop receipts"))
    laptop = LaptopExchange(CODE)
    kit = KitExchange(CODE, laptop.message, kit_fp, tls_fp, receipt_fp, NAME)
    confirmation = laptop.confirm(kit.message, kit_fp, tls_fp, receipt_fp, NAME)
    laptop.check_kit(kit.check_laptop(confirmation))
    # python-spake2 on its own, with the identities and password the protocol names, agrees:
    # the message sides are A (laptop, "kit-sync") and B (kit, "kitd"), the password the code.
    side_a = SPAKE2_A(CODE.encode("ascii"), idA=b"kit-sync", idB=b"kitd")
    message_a = side_a.start()
    kit_again = KitExchange(CODE, message_a, kit_fp, tls_fp, receipt_fp, NAME)
    key = side_a.finish(kit_again.message)
    transcript = Transcript(kit_fp, tls_fp, receipt_fp, NAME, message_a, kit_again.message)
    assert kit_again.check_laptop(laptop_confirmation(key, transcript)) == kit_confirmation(key, transcript)
    side_b = SPAKE2_B(CODE.encode("ascii"), idA=b"kit-sync", idB=b"kitd")
    assert side_b.start()[:1] == b"B" and laptop.message[:1] == b"A"


def test_a_wrong_code_is_refused_by_the_kit_and_the_laptop(certificates: dict[str, str]) -> None:
    kit_fp, tls_fp, receipt_fp = (fp(certificates[n]) for n in ("kit", "laptop tls", "laptop receipts"))
    laptop = LaptopExchange("000000")
    kit = KitExchange(CODE, laptop.message, kit_fp, tls_fp, receipt_fp, NAME)
    confirmation = laptop.confirm(kit.message, kit_fp, tls_fp, receipt_fp, NAME)
    with pytest.raises(ConfirmationFailed, match="wrong code"):
        kit.check_laptop(confirmation)
    # Nor does anything the kit could send satisfy the laptop (here: its confirmation of a
    # transcript it holds, with the right code's key the laptop does not have).
    honest = LaptopExchange(CODE)
    other = KitExchange(CODE, honest.message, kit_fp, tls_fp, receipt_fp, NAME)
    right = other.check_laptop(honest.confirm(other.message, kit_fp, tls_fp, receipt_fp, NAME))
    with pytest.raises(ConfirmationFailed, match="someone between"):
        laptop.check_kit(right)


@pytest.mark.parametrize("what", ["kit certificate", "laptop tls", "laptop receipts", "laptop name"])
def test_anything_seen_differently_on_the_two_sides_fails_both_confirmations(
    certificates: dict[str, str], what: str
) -> None:
    """A relay terminating TLS shows the laptop its own certificate; one rewriting the start
    shows the kit other laptop certificates or another name. The code is right throughout."""
    seen_by_laptop = [
        fp(certificates["kit"]),
        fp(certificates["laptop tls"]),
        fp(certificates["laptop receipts"]),
    ]
    seen_by_kit = list(seen_by_laptop)
    laptop_name, kit_name = NAME, NAME
    if what == "kit certificate":
        seen_by_laptop[0] = fp(certificates["relay"])
    elif what == "laptop tls":
        seen_by_kit[1] = fp(certificates["other"])
    elif what == "laptop receipts":
        seen_by_kit[2] = fp(certificates["other"])
    else:
        kit_name = "relay-1"
    laptop = LaptopExchange(CODE)
    kit = KitExchange(CODE, laptop.message, *seen_by_kit, kit_name)
    confirmation = laptop.confirm(kit.message, *seen_by_laptop, laptop_name)
    with pytest.raises(ConfirmationFailed):
        kit.check_laptop(confirmation)
    # Had the kit answered anyway, its confirmation (over its own transcript) fails the laptop.
    forged = kit_confirmation(kit._key, kit._transcript)
    with pytest.raises(ConfirmationFailed):
        laptop.check_kit(forged)


def test_a_relay_running_spake2_with_each_side_learns_nothing_without_the_code(
    certificates: dict[str, str],
) -> None:
    """A relay that answers the laptop as a kit and starts with the kit as a laptop, guessing
    the code, ends with keys that confirm to neither."""
    kit_fp, tls_fp, receipt_fp = (fp(certificates[n]) for n in ("kit", "laptop tls", "laptop receipts"))
    laptop = LaptopExchange(CODE)
    relay_as_kit = KitExchange("111111", laptop.message, kit_fp, tls_fp, receipt_fp, NAME)
    confirmation = laptop.confirm(relay_as_kit.message, kit_fp, tls_fp, receipt_fp, NAME)
    with pytest.raises(ConfirmationFailed):
        relay_as_kit.check_laptop(confirmation)
    relay_as_laptop = LaptopExchange("111111")
    kit = KitExchange(CODE, relay_as_laptop.message, kit_fp, tls_fp, receipt_fp, NAME)
    with pytest.raises(ConfirmationFailed):
        kit.check_laptop(relay_as_laptop.confirm(kit.message, kit_fp, tls_fp, receipt_fp, NAME))


def test_messages_from_the_wrong_side_or_not_spake2_are_refused(certificates: dict[str, str]) -> None:
    kit_fp, tls_fp, receipt_fp = (fp(certificates[n]) for n in ("kit", "laptop tls", "laptop receipts"))
    kit = KitExchange(CODE, LaptopExchange(CODE).message, kit_fp, tls_fp, receipt_fp, NAME)
    for bad in (kit.message, b"A" + b"\xff" * 32, b"C" + b"\x00" * 32, b"A"):  # a reflection; garbage
        with pytest.raises(PairingError) as refused:
            KitExchange(CODE, bad, kit_fp, tls_fp, receipt_fp, NAME)
        assert refused.value.field == "message"
        assert (
            str(refused.value)
            == f"the SPAKE2 message ({len(bad)} bytes) is not one for this side of kitd-pairing/1"
        )


def test_the_wire_messages_round_trip(certificates: dict[str, str]) -> None:
    laptop = LaptopExchange(CODE)
    body = start_body(NAME, certificates["laptop tls"], certificates["laptop receipts"], laptop)
    request = read_start(body)
    assert (request.laptop_name, request.message) == (NAME, laptop.message)
    assert request.tls_fingerprint == fp(certificates["laptop tls"])
    assert request.receipt_fingerprint == fp(certificates["laptop receipts"])
    kit_fp = fp(certificates["kit"])
    kit = KitExchange(
        CODE, request.message, kit_fp, request.tls_fingerprint, request.receipt_fingerprint, NAME
    )
    answer = read_start_answer(start_answer("x1", kit, "KIT-1"))
    assert (answer.exchange, answer.message, answer.kit_id) == ("x1", kit.message, "KIT-1")
    confirmation = laptop.confirm(
        answer.message, kit_fp, request.tls_fingerprint, request.receipt_fingerprint, NAME
    )
    exchange_id, said = read_confirm(confirm_body("x1", confirmation))
    paired = read_paired(
        {
            "confirmation": kit.check_laptop(said).hex(),
            "kit_id": "KIT-1",
            "laptop_name": NAME,
            "network_port": 8443,
            "kit_signing_certificate": None,
            "audit_note_key": "e-ktp-kit/KIT-1/audit+0123abcd+AAAA",
        }
    )
    laptop.check_kit(paired.confirmation)
    assert exchange_id == "x1" and paired.network_port == 8443 and paired.kit_signing_certificate is None


def test_a_malformed_start_names_its_field(certificates: dict[str, str]) -> None:
    rsa_pem = rsa_certificate()
    good = start_body(NAME, certificates["laptop tls"], certificates["laptop receipts"], LaptopExchange(CODE))
    cases = [
        ({"laptop_name": "lap 1"}, "laptop_name"),
        ({"laptop_name": "x" * 65}, "laptop_name"),
        ({"laptop_name": None}, "laptop_name"),
        ({"tls_certificate": "not a certificate"}, "tls_certificate"),
        ({"tls_certificate": rsa_pem}, "tls_certificate"),
        ({"receipt_certificate": 7}, "receipt_certificate"),
        ({"message": "!!"}, "message"),
        ({"message": base64.b64encode(b"\x00" * 300).decode()}, "message"),
    ]
    for change, field in cases:
        with pytest.raises(PairingError) as refused:
            read_start({**good, **change})
        assert refused.value.field == field, (change, refused.value)
    with pytest.raises(PairingError, match="JSON object"):
        read_start([good])
    with pytest.raises(PairingError) as refused:
        read_confirm({"exchange": "x1", "confirmation": "00" * 31})
    assert refused.value.field == "confirmation"
