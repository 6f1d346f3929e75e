"""Token keys on SoftHSM2: made inside the token, never read out of it, and signing like a file key.

SoftHSM reads SOFTHSM2_CONF in C_Initialize, and python-pkcs11 loads a module once per
process (pkcs11.lib caches it by path). The module-scoped ``module`` fixture therefore sets
SOFTHSM2_CONF to this module's own config, makes the token with softhsm2-util, and then
re-initialises the library (C_Finalize + C_Initialize), so that a SoftHSM loaded earlier in
the session with another config reads this one; at the end it restores the environment
and finalises, and the next loader's first call initialises it again with its own config.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from kitformats.cms import sign_content, verify_signed
from kitformats.signing import KeyProblem, Signer, read_certificate
from kitformats.statements import sign_statement, verify_statement
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from hil.credentials import SimulationCredentials, provision_simulation_credentials, sign_request
from kitd.crypto.pkcs11_keys import (
    TokenProblem,
    TokenSigner,
    generate_token_key,
    make_csr,
    open_token,
    read_pin,
    token_public_key,
)

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "kit"
PIN = "1234"
SO_PIN = "5678"
KIT_KEY = "kit-signing"
NIP = "198501012010011001"

pytestmark = [
    pytest.mark.skipif(not SOFTHSM.exists(), reason=f"needs SoftHSM2 ({SOFTHSM}; Debian package softhsm2)"),
    pytest.mark.skipif(shutil.which("softhsm2-util") is None, reason="needs softhsm2-util (softhsm2)"),
]
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SoftHSM2 with a fresh token 'kit' of this test module's own (see the module docstring)."""
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    config = root / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(config))
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
            check=True,
            capture_output=True,
            timeout=30,
        )
        pkcs11.lib(str(SOFTHSM)).reinitialize()
        yield SOFTHSM
    pkcs11.lib(str(SOFTHSM)).finalize()


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> SimulationCredentials:
    root = tmp_path_factory.mktemp("credentials")
    return provision_simulation_credentials(root / "keys", root / "office", "K-01", [NIP])


@pytest.fixture(scope="module")
def kit_certificate(module: Path, creds: SimulationCredentials) -> x509.Certificate:
    """A key made in the token, certified by the simulation CA from a request signed through the token."""
    generate_token_key(module, TOKEN, PIN, KIT_KEY)
    with open_token(module, TOKEN, PIN) as token:
        request = token.csr(KIT_KEY, "kit K-01")
    return sign_request(request, creds.office_dir, creds.keys_dir)


@pytest.fixture
def signer(module: Path, kit_certificate: x509.Certificate) -> Iterator[TokenSigner]:
    with TokenSigner(module, TOKEN, PIN, KIT_KEY, kit_certificate) as token_signer:
        yield token_signer


def _verifies(public_key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> bool:
    try:
        public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def _raw_private_key(label: str) -> tuple[Any, Any]:
    """(session, private key) straight from python-pkcs11, as anyone holding the PIN could get them.

    Opened without a PIN: the caller keeps a TokenSession open, whose login the process shares.
    """
    session = pkcs11.lib(str(SOFTHSM)).get_token(token_label=TOKEN).open(rw=True)
    return session, session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)


# -- generation and certificate requests -------------------------------------------------


@needs_openssl
def test_a_key_made_in_the_token_signs_a_request_that_openssl_accepts(module: Path, tmp_path: Path) -> None:
    public_key = generate_token_key(module, TOKEN, PIN, "request")
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert token_public_key(module, TOKEN, PIN, "request") == public_key
    with open_token(module, TOKEN, PIN) as token:
        pem = make_csr(token.key("request"), "officer 198501012010011001")

    request = x509.load_pem_x509_csr(pem)
    assert request.is_signature_valid
    assert request.public_key() == public_key
    assert request.subject.rfc4514_string() == "CN=officer 198501012010011001"
    (tmp_path / "csr.pem").write_bytes(pem)
    done = subprocess.run(
        ["openssl", "req", "-verify", "-in", tmp_path / "csr.pem", "-noout"], capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()


def test_an_existing_label_is_refused_not_replaced(module: Path, kit_certificate: x509.Certificate) -> None:
    with pytest.raises(TokenProblem, match=f"token '{TOKEN}': a key labelled '{KIT_KEY}' exists already"):
        generate_token_key(module, TOKEN, PIN, KIT_KEY)
    assert token_public_key(module, TOKEN, PIN, KIT_KEY) == kit_certificate.public_key()


# -- signing ------------------------------------------------------------------------------


@needs_openssl
def test_content_signed_through_the_token_verifies_with_openssl_and_kitd(
    signer: TokenSigner, creds: SimulationCredentials, tmp_path: Path
) -> None:
    assert isinstance(signer, Signer)
    content = b"ANSI/NIST-ITL transaction signed by a key that never left its token"
    signed = sign_content(content, [signer])

    (tmp_path / "signed.p7s").write_bytes(signed)
    done = subprocess.run(
        [
            "openssl", "cms", "-verify", "-inform", "DER", "-in", tmp_path / "signed.p7s",
            "-CAfile", creds.ca_certificate, "-purpose", "any",
        ],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == content

    verified = verify_signed(signed, [read_certificate(creds.ca_certificate)])
    assert verified.content == content
    assert verified.signers == [signer.certificate]


def test_a_statement_signed_through_the_token_verifies(
    signer: TokenSigner, creds: SimulationCredentials
) -> None:
    statement = {"kit": "K-01", "visit": 7, "at": "2025-01-01T08:00:00+07:00"}
    document = sign_statement(statement, signer, signing_time=dt.datetime.now(dt.UTC))
    verified, by = verify_statement(document, [read_certificate(creds.ca_certificate)])
    assert verified == statement
    assert by == signer.certificate


def test_fifty_signatures_from_several_threads_all_verify(signer: TokenSigner) -> None:
    digests = [os.urandom(32) for _ in range(50)]
    signatures: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def sign(indices: range) -> None:
        try:
            for index in indices:
                signatures[index] = signer.sign_digest(digests[index])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(range(start, 50, 5),)) for start in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sorted(signatures) == list(range(50))
    assert all(_verifies(signer.public_key, signatures[i], digests[i]) for i in range(50))


def test_a_digest_must_be_32_bytes(signer: TokenSigner) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        signer.sign_digest(b"\x00" * 20)


# -- the key stays in the token -----------------------------------------------------------


def test_no_call_reads_or_exports_the_private_key(signer: TokenSigner) -> None:
    session, private = _raw_private_key(KIT_KEY)
    try:
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        # Made inside and never anything else: not imported, never once extractable.
        assert private[Attribute.ALWAYS_SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.SIGN] is True
        assert private[Attribute.DERIVE] is False

        with pytest.raises(pkcs11.AttributeSensitive):
            private[Attribute.VALUE]
        wrapping = session.generate_key(
            KeyType.AES, 256, capabilities=MechanismFlag.WRAP | MechanismFlag.ENCRYPT
        )
        with pytest.raises(pkcs11.KeyUnextractable):
            wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        # Nor can the key be talked into being readable: those attributes only ever tighten.
        with pytest.raises(pkcs11.PKCS11Error):
            private[Attribute.EXTRACTABLE] = True
        with pytest.raises(pkcs11.PKCS11Error):
            private[Attribute.SENSITIVE] = False
        with pytest.raises(pkcs11.PKCS11Error):
            private.copy({Attribute.EXTRACTABLE: True, Attribute.TOKEN: False})
        assert private[Attribute.EXTRACTABLE] is False
    finally:
        session.close()


# -- refusals -----------------------------------------------------------------------------


def test_a_wrong_pin_is_refused(module: Path, kit_certificate: x509.Certificate) -> None:
    with pytest.raises(TokenProblem, match=f"{module}: token '{TOKEN}': wrong PIN"):
        open_token(module, TOKEN, "0000")


def test_a_wrong_pin_is_refused_while_the_token_is_logged_in(signer: TokenSigner, module: Path) -> None:
    # PKCS#11 would answer "already logged in" to any PIN here; the shared login checks it instead.
    with pytest.raises(TokenProblem, match="wrong PIN"):
        TokenSigner(module, TOKEN, "0000", KIT_KEY, signer.certificate)
    with TokenSigner(module, TOKEN, PIN, KIT_KEY, signer.certificate) as second:
        assert _verifies(second.public_key, second.sign_digest(b"\x01" * 32), b"\x01" * 32)
    # Closing the second signer must not log the first one out.
    assert _verifies(signer.public_key, signer.sign_digest(b"\x02" * 32), b"\x02" * 32)


def test_the_pin_file_must_be_owner_only(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(f"{PIN}\n")
    pin_file.chmod(0o644)
    with pytest.raises(TokenProblem, match=r"mode 0644 lets others read the PIN"):
        read_pin(pin_file)
    pin_file.chmod(0o640)
    with pytest.raises(TokenProblem, match=r"mode 0640"):
        read_pin(pin_file)
    pin_file.chmod(0o600)
    assert read_pin(pin_file) == PIN
    pin_file.chmod(0o400)
    assert read_pin(pin_file) == PIN
    with pytest.raises(TokenProblem, match="no such PIN file"):
        read_pin(tmp_path / "absent")
    assert isinstance(TokenProblem("x"), KeyProblem)


def test_a_missing_token_is_named(module: Path) -> None:
    with pytest.raises(TokenProblem, match=f"{module}: no token labelled 'spare'"):
        open_token(module, "spare", PIN)


def test_a_module_that_does_not_load_is_named(tmp_path: Path) -> None:
    with pytest.raises(TokenProblem, match="no PKCS#11 module at that path"):
        open_token(tmp_path / "libnothing.so", TOKEN, PIN)
    not_a_library = tmp_path / "libgarbage.so"
    not_a_library.write_bytes(b"not an ELF file")
    with pytest.raises(TokenProblem, match="libgarbage.so: the PKCS#11 module cannot be loaded"):
        open_token(not_a_library, TOKEN, PIN)


def test_a_missing_key_is_named(module: Path, kit_certificate: x509.Certificate) -> None:
    with pytest.raises(TokenProblem, match=f"token '{TOKEN}': no private key labelled 'absent'"):
        TokenSigner(module, TOKEN, PIN, "absent", kit_certificate)
    with pytest.raises(TokenProblem, match="no private key labelled 'absent'"):
        token_public_key(module, TOKEN, PIN, "absent")
    with open_token(module, TOKEN, PIN) as token, pytest.raises(TokenProblem, match="no public key labelled"):
        token.public_key("absent")


def test_the_certificate_of_another_key_is_refused(
    module: Path, kit_certificate: x509.Certificate, creds: SimulationCredentials
) -> None:
    other = read_certificate(creds.kit_certificate)
    with pytest.raises(
        TokenProblem, match=f"key '{KIT_KEY}': the certificate of 'kit K-01' is for another key"
    ):
        TokenSigner(module, TOKEN, PIN, KIT_KEY, other)


def test_a_key_that_is_not_p256_is_refused(module: Path, creds: SimulationCredentials) -> None:
    with open_token(module, TOKEN, PIN) as token:
        session = pkcs11.lib(str(SOFTHSM)).get_token(token_label=TOKEN).open(rw=True)
        try:
            session.generate_keypair(
                KeyType.EC,
                label="p384",
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp384r1")},
            )
            session.generate_keypair(
                KeyType.RSA,
                1024,
                label="rsa",
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            )
        finally:
            session.close()
        with pytest.raises(TokenProblem, match="key 'p384': an EC key on another curve than P-256"):
            token.key("p384")
        with pytest.raises(TokenProblem, match="key 'p384': not a P-256 key"):
            token.public_key("p384")
        with pytest.raises(TokenProblem, match="key 'rsa': not a P-256 key but of type RSA"):
            TokenSigner(module, TOKEN, PIN, "rsa", read_certificate(creds.kit_certificate))
        with pytest.raises(TokenProblem, match="key 'rsa': not a P-256 key but of type RSA"):
            token.public_key("rsa")


def test_a_closed_signer_refuses_to_sign(module: Path, kit_certificate: x509.Certificate) -> None:
    token_signer = TokenSigner(module, TOKEN, PIN, KIT_KEY, kit_certificate)
    token_signer.close()
    with pytest.raises(TokenProblem, match="the session was closed"):
        token_signer.sign_digest(b"\x00" * 32)


def test_a_signer_on_an_open_session_lives_as_long_as_that_session(
    module: Path, kit_certificate: x509.Certificate
) -> None:
    token = open_token(module, TOKEN, PIN)
    borrowed = token.signer(KIT_KEY, kit_certificate)
    borrowed.close()  # the session is the token's, not the signer's: still open
    assert _verifies(borrowed.public_key, borrowed.sign_digest(b"\x03" * 32), b"\x03" * 32)
    token.close()
    with pytest.raises(TokenProblem, match="the session was closed"):
        borrowed.sign_digest(b"\x03" * 32)
