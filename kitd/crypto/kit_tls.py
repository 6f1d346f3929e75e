"""The kit's TLS identity on the network, and which laptops' certificates may connect.

Its one job: :func:`kit_tls_credentials` keeps the kit's own TLS key and self-signed
certificate in ``keys/tls/`` (made on first use; a file key, since Python's ``ssl`` cannot use
a PKCS#11 key), and :class:`NetworkTrust` builds the server contexts from it: the network
API's (TLS 1.3 only, a client certificate required, trusting exactly the paired laptops'
self-signed certificates, more admitted while it runs) and the pairing listener's (TLS 1.3,
no client certificate). Whether a laptop was revoked since is the network API's to check on
every request: a context's trust store only grows.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kitformats.link_certificates import private_key_pem, self_signed
from kitformats.pairing import fingerprint

from kitd.durable_files import make_directory, write_atomically

log = logging.getLogger("kitd.network")

TLS_DIR = "tls"
CERTIFICATE_NAME = "kit-tls.crt"
KEY_NAME = "kit-tls.key"
MAX_COMMON_NAME = 64  # X.520 ub-common-name


def tls_fingerprint(certificate: x509.Certificate) -> str:
    """The certificate's SHA-256 over its DER, in lower-case hex (what a laptop pins)."""
    return fingerprint(certificate).hex()


def _common_name(kit_id: str) -> str:
    room = MAX_COMMON_NAME - len("kit  TLS")
    return f"kit {kit_id[:room]} TLS"


def _read_pair(certificate_path: Path, key_path: Path) -> x509.Certificate | None:
    """The stored certificate when both files are there, readable and belong together."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("the kit's TLS credentials in %s cannot be read (%s): made anew", key_path.parent, exc)
        return None
    if certificate.public_key() != key.public_key():
        log.warning("the kit's TLS certificate is not the one of its key: made anew")
        return None
    return certificate


def kit_tls_credentials(keys_dir: Path, kit_id: str) -> tuple[Path, Path, x509.Certificate]:
    """The kit's TLS certificate and key files (``keys_dir/tls/``) and the certificate, made on
    first use: self-signed ECDSA P-256 in the link's profile (kitformats.link_certificates),
    CN "kit <kit_id> TLS", the key 0600.

    The key is written before the certificate, each whole or not at all: a power cut between
    them leaves a pair that does not match, which is made anew (no laptop can have pinned it)."""
    directory = Path(keys_dir) / TLS_DIR
    certificate_path, key_path = directory / CERTIFICATE_NAME, directory / KEY_NAME
    certificate = _read_pair(certificate_path, key_path)
    if certificate is None:
        make_directory(directory, 0o700)
        key, certificate = self_signed(_common_name(kit_id), "tls-server")
        write_atomically(key_path, private_key_pem(key), 0o600)
        write_atomically(certificate_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info(
            "made the kit's TLS certificate %s (SHA-256 %s)",
            certificate_path,
            tls_fingerprint(certificate),
            extra={"tls_fingerprint": tls_fingerprint(certificate)},
        )
    return certificate_path, key_path, certificate


def _server_context(certificate_path: Path, key_path: Path, client_certificate: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certificate_path, key_path)
    if client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        # A laptop's certificate is its own anchor: self-signed, trusted as it is.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


class NetworkTrust:
    """The network API's TLS: the kit's certificate, and the laptops it lets finish a handshake."""

    def __init__(self, certificate_path: Path, key_path: Path, certificate: x509.Certificate) -> None:
        self.certificate = certificate
        self.fingerprint = tls_fingerprint(certificate)
        self.server_context = _server_context(certificate_path, key_path, client_certificate=True)
        self.pairing_context = _server_context(certificate_path, key_path, client_certificate=False)
        # Where the network API listens once it does (the daemon sets it; port 0 picks any).
        self.port: int | None = None

    @classmethod
    def for_kit(cls, keys_dir: Path, kit_id: str, laptops: Iterable[str] = ()) -> NetworkTrust:
        """The kit's credentials (made on first use), trusting the paired laptops' PEMs."""
        trust = cls(*kit_tls_credentials(keys_dir, kit_id))
        for pem in laptops:
            try:
                trust.admit(pem)
            except ValueError as exc:
                # One unreadable row must not keep every other laptop (and the kit) off the network.
                log.error("a paired laptop's TLS certificate cannot be read, not trusted: %s", exc)
        return trust

    def admit(self, pem: str) -> str:
        """Let the laptop with this certificate (PEM) connect from the next handshake on; its
        fingerprint. ValueError when it is not a certificate in PEM."""
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise ValueError(f"not a PEM certificate: {exc}") from None
        try:
            self.server_context.load_verify_locations(cadata=pem)
        except ssl.SSLError as exc:
            raise ValueError(f"OpenSSL refused the certificate: {exc}") from None
        return tls_fingerprint(certificate)
