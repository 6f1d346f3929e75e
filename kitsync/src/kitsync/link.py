"""The laptop's HTTPS link to one kit: TLS 1.3, its own client certificate, the kit's pinned.

Its one job: open (and keep alive) a connection to the kit's network API whose certificate is
checked against the SHA-256 pinned at pairing *before* a byte of a request is sent, and turn
what can go wrong on the way into the one-line errors of kit-sync: the kit's certificate is
another (exit 4), the kit refuses this laptop's certificate or says it is not paired or
revoked (exit 3), the kit cannot be reached or the connection broke (exit 1).

The kit's certificate is self-signed and names no host, so the web's PKI checks are off
(CERT_NONE, no hostname check) and the pin alone decides whom the laptop talks to.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import select
import socket
import ssl
import time
from pathlib import Path
from typing import Any

from kitsync.errors import KitCertificateChanged, NotPaired, SyncError, TransferFailed
from kitsync.places import join_address

TIMEOUT_S = 30.0
USER_AGENT = "kit-sync/0.1.0"
# TLS alerts with which a server refuses the client's certificate (OpenSSL's reason names).
CERTIFICATE_REFUSALS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "UNKNOWN_CA",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
)
# How long a probe waits for the kit's word after a handshake (a ticket, or an alert).
PROBE_S = 3.0
# What a connection that ends before any answer raises.
ENDED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)
# The kit's API errors that mean "this laptop may not talk to me".
NOT_PAIRED_ERRORS = ("not_paired", "laptop_revoked")


def client_context(certificate: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """TLS 1.3 only, with this laptop's certificate when given; the server's is pinned, not
    verified by a CA (see the module's docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if certificate is not None:
        context.load_cert_chain(certificate, key)
    return context


def is_certificate_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the server's TLS alert refusing our certificate (or its absence)."""
    if not isinstance(exc, ssl.SSLError):
        return False
    reason = exc.reason or str(exc)
    return "ALERT" in reason and any(alert in reason for alert in CERTIFICATE_REFUSALS)


def describe(exc: BaseException) -> str:
    """A short reason for a network error, for a person."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection broke off after {len(exc.partial)} bytes"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the kit closed the connection"
    return str(exc) or type(exc).__name__


class CertificateMismatch(Exception):
    """The peer's certificate is not the pinned one (raised before any request is sent)."""

    def __init__(self, found: bytes) -> None:
        super().__init__(found.hex())
        self.found = found


class PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection that, once the handshake is done, compares the peer certificate's
    SHA-256 with ``pinned`` and closes before sending anything when they differ."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, pinned: bytes | None, timeout: float = TIMEOUT_S
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.pinned = pinned
        self.peer_certificate: bytes | None = None

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True)
        if der is None:
            self.close()
            raise CertificateMismatch(b"")
        self.peer_certificate = der
        if self.pinned is not None and not hmac.compare_digest(hashlib.sha256(der).digest(), self.pinned):
            self.close()
            raise CertificateMismatch(hashlib.sha256(der).digest())


class KitLink:
    """One kit's network API over one kept-alive, pinned connection."""

    def __init__(
        self,
        label: str,
        host: str,
        port: int,
        context: ssl.SSLContext,
        pinned: bytes | None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.label = label
        self.host = host
        self.port = port
        self.address = join_address(host, port)
        self.context = context
        self.pinned = pinned
        self.timeout = timeout
        self._connection: PinnedConnection | None = None
        self._used = False  # whether the open connection carried a request already

    def twin(self) -> KitLink:
        """Another link to the same kit, with its own connection (for a thread of its own)."""
        return KitLink(self.label, self.host, self.port, self.context, self.pinned, self.timeout)

    @property
    def who(self) -> str:
        """How errors name the kit: by its id, or "the kit" while pairing (no id known yet)."""
        return f"kit {self.label}" if self.label else "the kit"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

    def __enter__(self) -> KitLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def peer_certificate(self) -> bytes | None:
        return None if self._connection is None else self._connection.peer_certificate

    def connect(self) -> PinnedConnection:
        """The open connection, or a new one, its certificate checked against the pin."""
        if self._connection is not None and self._connection.sock is not None:
            return self._connection
        self.close()
        connection = PinnedConnection(self.host, self.port, self.context, self.pinned, self.timeout)
        try:
            connection.connect()
        except CertificateMismatch as exc:
            raise KitCertificateChanged(self._mismatch(exc.found)) from None
        except OSError as exc:
            connection.close()
            raise self.network_error(exc, connecting=True) from None
        self._connection, self._used = connection, False
        return connection

    def _mismatch(self, found: bytes) -> str:
        pinned = self.pinned.hex() if self.pinned else "none"
        return (
            f"{self.who} at {self.address} presented another TLS certificate (SHA-256 "
            f"{found.hex()[:16]}...) than the one pinned at pairing ({pinned[:16]}...): it may not be "
            "the kit; if its certificate was replaced, pair again"
        )

    def network_error(self, exc: BaseException, connecting: bool = False) -> SyncError:
        """The one-line error for a network failure talking to this kit."""
        if is_certificate_refusal(exc):
            return NotPaired(
                f"{self.who} at {self.address} refused this laptop's certificate: "
                f"not paired with it, or its pairing was revoked ({describe(exc)})"
            )
        if connecting:
            return TransferFailed(f"cannot reach {self.who} at {self.address}: {describe(exc)}")
        return TransferFailed(f"the connection to {self.who} at {self.address} broke: {describe(exc)}")

    def send(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        """The response's status and headers (its body still to read); a kept-alive connection
        the kit closed meanwhile is replaced once (every request kit-sync sends may be repeated)."""
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        for attempt in (1, 2):
            connection = self.connect()
            reused = self._used
            self._used = True
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                ended = isinstance(exc, ENDED)
                if reused and ended and attempt == 1:
                    continue
                if not reused and ended and self.refuses_certificate():
                    raise NotPaired(
                        f"{self.who} at {self.address} refused this laptop's certificate: "
                        "not paired with it, or its pairing was revoked"
                    ) from None
                raise self.network_error(exc) from None
            if response.status == 403:
                self._refused(response)
            return response
        raise AssertionError("unreachable")

    def refuses_certificate(self) -> bool:
        """Whether the kit refuses this laptop's certificate, asked on a connection of its own.

        TLS 1.3 ends the client's handshake before the server has checked the client's
        certificate: a refusal comes after it, as an alert (Python's ssl sockets) or as a bare
        close (asyncio's, the kit's: its alert never leaves), and when the request is already
        on its way the close may turn into a reset that destroys the alert. A fresh connection
        that sends nothing tells them apart: a server that accepted the certificate hands out
        session tickets and waits; one that refused it sends an alert or closes."""
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError:
            return False
        try:
            with self.context.wrap_socket(raw, server_hostname=self.host) as tls:
                tls.setblocking(False)
                deadline = time.monotonic() + PROBE_S
                while (left := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([tls], [], [], left)
                    if not readable:
                        return False  # silent and open: not a refusal
                    try:
                        return not tls.recv(1)  # a close is a refusal; data is not
                    except ssl.SSLWantReadError:
                        session = tls.session
                        if session is not None and session.has_ticket:
                            return False  # accepted: the server handed out a session ticket
                    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
                        return True
                    except ssl.SSLError as exc:
                        return is_certificate_refusal(exc)
                return False
        except OSError as exc:
            return is_certificate_refusal(exc)
        finally:
            raw.close()

    def _refused(self, response: http.client.HTTPResponse) -> None:
        """A 403 not_paired / laptop_revoked as NotPaired; other 403s are the caller's."""
        data = response.read()
        response.data = data  # type: ignore[attr-defined]  # for whoever reads the answer next
        answer = json_or_none(data)
        if isinstance(answer, dict) and answer.get("error") in NOT_PAIRED_ERRORS:
            message = answer.get("message") or answer["error"]
            raise NotPaired(f"{self.who} at {self.address}: {message}")

    def call(
        self,
        method: str,
        path: str,
        document: Any = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """A request whose answer is JSON: (status, parsed answer or None)."""
        headers = {"Accept": "application/json"}
        if document is not None:
            body = json.dumps(document).encode()
        if body is not None:
            headers["Content-Type"] = content_type
        response = self.send(method, path, body, headers)
        return response.status, json_or_none(self._read(response))

    def fetch_text(self, path: str) -> tuple[int, bytes]:
        """A GET whose answer is text (the audit log's signed note): (status, its bytes as sent,
        for the caller to check; an error answer is JSON, for :meth:`refusal` once parsed)."""
        response = self.send("GET", path, None, {"Accept": "text/plain, application/json"})
        return response.status, self._read(response)

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        """The answer's whole body (already read, for a 403 :meth:`_refused` looked at)."""
        try:
            data = getattr(response, "data", None)
            return bytes(data) if data is not None else response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self.network_error(exc) from None

    def refusal(self, what: str, status: int, answer: Any) -> TransferFailed:
        """The one-line error for an answer that is not the success expected."""
        if isinstance(answer, dict) and isinstance(answer.get("message"), str):
            reason = f"{answer['message']} ({answer.get('error', status)})"
        else:
            reason = f"HTTP {status}"
        return TransferFailed(f"{what}: {self.who} answered: {reason}")


def json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
