"""CMS sealing and signed statements, checked against the real `openssl cms` and against tampering."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import parser
from cryptography.hazmat.primitives import serialization
from kitformats.cms import SealBroken, SignatureInvalid, envelope, open_envelope, sign_content, verify_signed
from kitformats.signing import KeyProblem, read_certificate
from kitformats.statements import canonical_bytes, sign_statement, verify_statement

from hil.credentials import SimulationCredentials, foreign_ca_signer, provision_simulation_credentials

NIP = "198501012010011001"
CONTENT = b"ANSI/NIST-ITL transaction, or any bytes at all"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> SimulationCredentials:
    # RSA-3072 key generation is the slow part: once for the whole module.
    root = tmp_path_factory.mktemp("credentials")
    return provision_simulation_credentials(root / "keys", root / "office", "K-01", [NIP])


@pytest.fixture(scope="module")
def sealed(creds: SimulationCredentials) -> tuple[bytes, bytes]:
    """(inner SignedData by kit and officer, its envelope for central and escrow)."""
    signed = sign_content(CONTENT, [creds.kit_signer(), creds.officer_signer(NIP)])
    recipients = [read_certificate(creds.central_certificate), read_certificate(creds.escrow_certificate)]
    return signed, envelope(signed, recipients)


def _trust(creds: SimulationCredentials) -> list:
    return [read_certificate(creds.ca_certificate)]


def _rsa_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _openssl(*args: str | Path) -> bytes:
    done = subprocess.run(["openssl", "cms", *map(str, args)], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _flip(der: bytes, part: bytes, at: int = 5) -> bytes:
    """``der`` with one bit changed inside the (unique) occurrence of ``part``."""
    start = der.index(part)
    assert der.count(part) == 1
    return der[: start + at] + bytes([der[start + at] ^ 0x01]) + der[start + at + 1 :]


def _enveloped(der: bytes) -> asn1_cms.AuthEnvelopedData:
    return asn1_cms.ContentInfo.load(der)["content"]


@needs_openssl
def test_openssl_opens_the_envelope_for_each_recipient_and_verifies_both_signers(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes], tmp_path: Path
) -> None:
    signed, enveloped = sealed
    (tmp_path / "bundle.p7m").write_bytes(enveloped)
    for certificate, key in [
        (creds.central_certificate, creds.central_key),
        (creds.escrow_certificate, creds.escrow_key),
    ]:
        opened = _openssl(
            "-decrypt", "-inform", "DER", "-in", tmp_path / "bundle.p7m", "-recip", certificate, "-inkey", key
        )
        assert opened == signed
    (tmp_path / "signed.p7s").write_bytes(signed)
    # -purpose any: the default (smimesign) would also accept our certificates, but a signing
    # certificate is not an e-mail one and should not have to pass for one.
    out = _openssl(
        "-verify", "-inform", "DER", "-in", tmp_path / "signed.p7s",
        "-CAfile", creds.ca_certificate, "-purpose", "any",
    )  # fmt: skip
    assert out == CONTENT


def test_our_own_reader_opens_and_verifies_the_same(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    signed, enveloped = sealed
    for key_path in (creds.central_key, creds.escrow_key):
        assert open_envelope(enveloped, _rsa_key(key_path)) == ("signed_data", signed)
    verified = verify_signed(signed, _trust(creds))
    assert verified.content == CONTENT
    # DER sorts a SET OF: the SignerInfos hold both signers, in an order of their encodings.
    names = {c.subject.rfc4514_string() for c in verified.signers}
    assert names == {
        "CN=kit K-01,O=SIMULATION ONLY - not for use",
        f"CN=officer {NIP},O=SIMULATION ONLY - not for use",
    }
    assert all(
        t is not None and abs(t - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
        for t in verified.signing_times
    )


@needs_openssl
def test_openssl_verifies_a_statement_and_so_do_we(creds: SimulationCredentials, tmp_path: Path) -> None:
    statement = {"kit_id": "K-01", "event": "checkpoint", "sequence": 7, "hash": "ab" * 32}
    document = json.loads(json.dumps(sign_statement(statement, creds.officer_signer(NIP))))
    (tmp_path / "sig.der").write_bytes(base64.b64decode(document["signature"]))
    (tmp_path / "statement.json").write_bytes(canonical_bytes(document["statement"]))
    # -binary: the canonical bytes as they are, no MIME newline translation.
    out = _openssl(
        "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.der",
        "-content", tmp_path / "statement.json", "-CAfile", creds.ca_certificate, "-purpose", "any",
    )  # fmt: skip
    assert out == canonical_bytes(statement)
    got, signer = verify_statement(document, _trust(creds))
    assert got == statement
    assert signer == creds.officer_signer(NIP).certificate


def test_a_statement_with_its_keys_reordered_still_verifies(creds: SimulationCredentials) -> None:
    document = sign_statement({"a": 1, "b": {"y": [1, 2], "x": "é"}}, creds.kit_signer())
    reordered = json.loads(
        json.dumps({"signature": document["signature"], "statement": {"b": {"x": "é", "y": [1, 2]}, "a": 1}})
    )
    assert verify_statement(reordered, _trust(creds))[0] == {"a": 1, "b": {"x": "é", "y": [1, 2]}}


def test_an_edited_statement_is_refused(creds: SimulationCredentials) -> None:
    document = copy.deepcopy(sign_statement({"kit_id": "K-01", "count": 3}, creds.kit_signer()))
    document["statement"]["count"] = 4
    with pytest.raises(SignatureInvalid, match="signer 'CN=kit K-01': message digest does not match"):
        verify_statement(document, _trust(creds))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "is a JSON object"),
        ({"signature": "AA=="}, "no 'statement' object"),
        ({"statement": {}}, "no 'signature' string"),
        ({"statement": {}, "signature": "not base64!"}, "is not base64"),
        ({"statement": {}, "signature": "AAAA"}, "not a CMS SignedData"),
    ],
)
def test_a_misshapen_statement_names_what_is_wrong(
    creds: SimulationCredentials, document: object, reason: str
) -> None:
    with pytest.raises(SignatureInvalid, match=reason):
        verify_statement(document, _trust(creds))


def test_a_flipped_ciphertext_byte_breaks_the_tag(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    enveloped = sealed[1]
    ciphertext = _enveloped(enveloped)["auth_encrypted_content_info"]["encrypted_content"].native
    with pytest.raises(SealBroken, match="the authentication tag does not match: the file was altered"):
        open_envelope(_flip(enveloped, ciphertext, at=100), _rsa_key(creds.central_key))


def test_a_flipped_wrapped_key_byte_does_not_unwrap(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    enveloped = sealed[1]
    central = read_certificate(creds.central_certificate)
    (wrapped,) = [
        ri.chosen["encrypted_key"].native
        for ri in _enveloped(enveloped)["recipient_infos"]
        if ri.chosen["rid"].chosen["serial_number"].native == central.serial_number
    ]
    with pytest.raises(SealBroken, match="the content key does not unwrap with this key"):
        open_envelope(_flip(enveloped, wrapped), _rsa_key(creds.central_key), certificate=central)


def test_a_key_that_is_not_a_recipient(creds: SimulationCredentials) -> None:
    for_escrow_only = envelope(b"secret", [read_certificate(creds.escrow_certificate)])
    key = _rsa_key(creds.central_key)
    with pytest.raises(SealBroken, match="no recipient of this envelope is this key"):
        open_envelope(for_escrow_only, key, certificate=read_certificate(creds.central_certificate))
    # Without its certificate a key of the right size is tried, and simply fails to unwrap.
    with pytest.raises(SealBroken, match="the content key does not unwrap with this key"):
        open_envelope(for_escrow_only, key)


def test_what_is_not_an_envelope_or_not_ours_to_open(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    key = _rsa_key(creds.central_key)
    with pytest.raises(SealBroken, match="not a CMS AuthEnvelopedData"):
        open_envelope(sealed[0], key)
    aes256_gcm = bytes.fromhex("060960864801650304012e")
    as_aes128_gcm = sealed[1].replace(aes256_gcm, aes256_gcm[:-1] + b"\x06")
    with pytest.raises(SealBroken, match=r"unsupported content encryption 2\.16\.840\.1\.101\.3\.4\.1\.6"):
        open_envelope(as_aes128_gcm, key)
    with pytest.raises(KeyProblem, match="has no RSA key"):
        envelope(b"x", [read_certificate(creds.kit_certificate)])


def test_a_removed_signer_leaves_one_signer_for_the_caller_to_count(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    signed_data = asn1_cms.ContentInfo.load(sealed[0])["content"]
    kept = signed_data["signer_infos"][0]
    stripped = asn1_cms.SignedData(
        {
            "version": signed_data["version"],
            "digest_algorithms": signed_data["digest_algorithms"],
            "encap_content_info": signed_data["encap_content_info"],
            "certificates": signed_data["certificates"],
            "signer_infos": [kept],
        }
    )
    der = asn1_cms.ContentInfo({"content_type": "signed_data", "content": stripped}).dump()
    assert len(verify_signed(der, _trust(creds)).signers) == 1


def test_a_signer_from_a_foreign_ca(creds: SimulationCredentials, tmp_path: Path) -> None:
    signed = sign_content(CONTENT, [creds.kit_signer(), foreign_ca_signer(tmp_path, "kit K-01 (forged)")])
    with pytest.raises(
        SignatureInvalid, match=r"signer 'CN=kit K-01 \(forged\)': certificate is not issued by a trusted CA"
    ):
        verify_signed(signed, _trust(creds))


def test_content_altered_under_a_valid_signature(creds: SimulationCredentials) -> None:
    signed = sign_content(b"pay 100 to Alice", [creds.kit_signer()])
    with pytest.raises(
        SignatureInvalid, match="message digest does not match the content: the content was altered"
    ):
        verify_signed(signed.replace(b"100 to Alice", b"900 to Mallo"), _trust(creds))
    detached = sign_content(b"pay 100 to Alice", [creds.kit_signer()], detached=True)
    with pytest.raises(SignatureInvalid, match="message digest does not match"):
        verify_signed(detached, _trust(creds), content=b"pay 900 to Alice")
    with pytest.raises(SignatureInvalid, match="detached and no content was given"):
        verify_signed(detached, _trust(creds))


def test_a_certificate_out_of_its_validity(creds: SimulationCredentials) -> None:
    signed = sign_content(CONTENT, [creds.kit_signer()])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 20)
    with pytest.raises(SignatureInvalid, match="signer 'CN=kit K-01': certificate is not valid on"):
        verify_signed(signed, _trust(creds), at=later)


def test_provisioning_again_keeps_the_ca_and_adds_the_new_officer(creds: SimulationCredentials) -> None:
    before = creds.ca_certificate.read_bytes()
    again = provision_simulation_credentials(
        creds.keys_dir, creds.office_dir, "K-01", [NIP, "199002022015022002"]
    )
    assert again.ca_certificate.read_bytes() == before
    newcomer = again.officer_signer("199002022015022002")
    verified = verify_signed(sign_content(b"x", [newcomer]), _trust(creds))
    assert verified.signers == [newcomer.certificate]
    assert again.officer_keys["199002022015022002"].stat().st_mode & 0o077 == 0


# --- not in DER ----------------------------------------------------------------------------


def _replaced(der: bytes, at: int, by: bytes) -> bytes:
    """``der`` with the value that starts at ``at`` put as ``by``, and the length of every value
    around it made right again."""

    def replace(data: bytes, start: int) -> bytes:
        out = b""
        while data:
            size = parser.peek(data)
            value, data = data[:size], data[size:]
            if start == 0:
                value = by
            elif 0 < start < size:
                class_, method, tag, header, contents, _ = parser.parse(value)
                value = parser.emit(class_, method, tag, replace(contents, start - len(header)))
            out += value
            start -= size
        return out

    return replace(der, at)


def _long_length(value: bytes) -> bytes:
    """``value`` with its length on three octets: valid BER, never DER (which takes the fewest)."""
    contents = parser.parse(value)[4]
    return value[:1] + b"\x83" + len(contents).to_bytes(3, "big") + contents


def _parts(der: bytes) -> dict[str, tuple[int, bytes]]:
    """Values of a SignedData by kit and officer: where each starts in ``der``, and its bytes."""
    info = asn1_cms.ContentInfo.load(der)
    signed_data = info["content"]
    certificate = signed_data["certificates"][0].chosen
    signer_info = signed_data["signer_infos"][0]

    def within(outer: bytes, part: bytes) -> tuple[int, bytes]:
        return der.index(outer) + outer.index(part), part

    in_certificate = certificate.dump()
    in_signer_info = signer_info.dump()
    return {
        "ContentInfo": (0, der),
        "content type": within(der, info["content_type"].dump()),
        "[0] around the SignedData": within(der, signed_data.dump()),
        "SignedData": within(der, parser.parse(signed_data.dump())[4]),
        "version": within(der, signed_data["version"].dump()),
        "digest algorithms": within(der, signed_data["digest_algorithms"].dump()),
        "encapsulated content": within(der, signed_data["encap_content_info"].dump()),
        "certificates": within(der, signed_data["certificates"].dump()),
        "a certificate": within(der, in_certificate),
        "a certificate's validity": within(in_certificate, certificate["tbs_certificate"]["validity"].dump()),
        "signer infos": within(der, signed_data["signer_infos"].dump()),
        "a signer info": within(der, in_signer_info),
        "a signer identifier": within(in_signer_info, signer_info["sid"].dump()),
        "a digest algorithm": within(in_signer_info, signer_info["digest_algorithm"].dump()),
        "signed attributes": within(in_signer_info, signer_info["signed_attrs"].dump()),
        "a signed attribute": within(in_signer_info, signer_info["signed_attrs"][0].dump()),
        "a signature algorithm": within(in_signer_info, signer_info["signature_algorithm"].dump()),
        "a signature": within(in_signer_info, signer_info["signature"].dump()),
    }


NOT_DER = "^the SignedData is not in DER$"


@pytest.mark.parametrize(
    ("where", "refusal"),
    [
        ("ContentInfo", NOT_DER),
        ("content type", NOT_DER),
        ("[0] around the SignedData", NOT_DER),
        ("SignedData", NOT_DER),
        ("version", NOT_DER),
        ("digest algorithms", NOT_DER),
        ("encapsulated content", NOT_DER),
        ("certificates", NOT_DER),
        # cryptography reads a certificate only in DER, before the check for the whole.
        ("a certificate", "^not a CMS SignedData$"),
        ("a certificate's validity", "^not a CMS SignedData$"),
        ("signer infos", NOT_DER),
        ("a signer info", NOT_DER),
        ("a signer identifier", NOT_DER),
        ("a digest algorithm", NOT_DER),
        ("signed attributes", NOT_DER),
        ("a signed attribute", NOT_DER),
        ("a signature algorithm", NOT_DER),
        ("a signature", NOT_DER),
    ],
)
def test_a_length_not_in_der_is_refused_wherever_it_is(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes], where: str, refusal: str
) -> None:
    """Also in a part seen in DER just before (a certificate, a signer's identifier...): what
    the check remembers of one encoding is never taken for another's."""
    signed = sealed[0]
    verify_signed(signed, _trust(creds))
    at, part = _parts(signed)[where]
    altered = _replaced(signed, at, _long_length(part))
    assert asn1_cms.ContentInfo.load(altered, strict=True).dump(force=True) == signed
    with pytest.raises(SignatureInvalid, match=refusal):
        verify_signed(altered, _trust(creds))


@pytest.mark.parametrize("where", ["certificates", "signer infos", "signed attributes"])
def test_a_set_out_of_order_is_refused(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes], where: str
) -> None:
    signed = sealed[0]
    verify_signed(signed, _trust(creds))
    at, part = _parts(signed)[where]
    class_, method, tag, _, contents, _ = parser.parse(part)
    elements = []
    while contents:
        size = parser.peek(contents)
        elements.append(contents[:size])
        contents = contents[size:]
    assert len(elements) > 1 and elements == sorted(elements)
    altered = _replaced(signed, at, parser.emit(class_, method, tag, b"".join(reversed(elements))))
    assert asn1_cms.ContentInfo.load(altered, strict=True).dump(force=True) == signed
    with pytest.raises(SignatureInvalid, match=NOT_DER):
        verify_signed(altered, _trust(creds))


# Run in a fresh interpreter: the threads must be the first in it to use asn1crypto's classes.
FIRST_USE_IN_THREADS = """
import base64, json, sys, threading
from cryptography import x509
from kitformats.cms import verify_signed
sys.setswitchinterval(1e-6)  # hand the interpreter from thread to thread as often as it can
signed = base64.b64decode(sys.argv[1])
trust = [x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())]
start = threading.Barrier(8)
failures = []
def verify():
    start.wait()
    try:
        verify_signed(signed, trust)
    except Exception as exc:
        failures.append(str(exc))
threads = [threading.Thread(target=verify) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(failures))
"""


def test_threads_verifying_at_once_from_the_start_all_succeed(
    creds: SimulationCredentials, sealed: tuple[bytes, bytes]
) -> None:
    """asn1crypto sets a class up on its first use, without a lock: threads that were the first
    to verify at once saw half-built tables and refused good signatures. kit-sync's fetchers
    check statements two at a time from the start of a pull; so do a kit's threads."""
    signed, _ = sealed
    encoded = base64.b64encode(signed).decode()
    for _ in range(4):  # each a fresh interpreter: a race shows in some starts, not in all
        done = subprocess.run(
            [sys.executable, "-c", FIRST_USE_IN_THREADS, encoded, str(creds.ca_certificate)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []
