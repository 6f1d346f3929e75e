"""The kit's pairing window: a supervisor opens it, a field laptop pairs with the code it shows.

Its one job: the kit's side of kitd-pairing/1 (kitformats.pairing) and the window around it.
:meth:`Pairing.open` makes a new 6-digit code for ``network.pairing_window_s`` (an open
window is replaced, its code with it) and has the pairing port listen; every laptop start
uses one of the window's :data:`ATTEMPTS`; a right confirmation records the laptop (its TLS
certificate, admitted to the running network API at once, and its receipts certificate),
and the window closes — as it does when it expires, when a supervisor closes it, or when its
last attempt was wrong. The port listens only while a window is open. Events ``pairing``
say ``open`` / ``closed`` / ``paired`` (never the code). HTTP is kitd.api.pairing's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from kitformats.pairing import (
    ATTEMPTS,
    ConfirmationFailed,
    KitExchange,
    PairingError,
    StartRequest,
    new_code,
    read_confirm,
    read_start,
    start_answer,
)
from kitformats.signing import KeyProblem

from kitd.clock import KitClock
from kitd.config import KitConfig
from kitd.crypto.kit_keys import KitKeys, check_signing_certificate, same_key
from kitd.errors import KitError
from kitd.events import EventHub
from kitd.services.audit import AuditLog
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.outbox import LaptopError, pair_laptop, pairing_problem

T = TypeVar("T")
log = logging.getLogger("kitd.pairing")


class PairingClosed(KitError):
    """No window is open, or it expired or was used up (403 pairing_closed)."""


class NetworkDisabled(KitError):
    """The network API is off: nothing to pair with (409 network_disabled)."""


class LaptopNameTaken(KitError):
    """The laptop's name, or one of its certificates, is another laptop's (409)."""


class UnknownExchange(KitError):
    """A confirmation for an exchange the window does not hold (404)."""


class CannotListen(KitError):
    """The pairing port could not be opened (503)."""


class WrongCode(KitError):
    """A confirmation that does not verify: a wrong code, or someone between (401)."""

    def __init__(self, message: str, attempts_left: int) -> None:
        super().__init__(message)
        self.attempts_left = attempts_left


class BadPairingRequest(KitError):
    """A start or confirmation that is malformed (400, naming the field)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Listener(Protocol):
    """The pairing port's server (kitd.api.pairing): listening only while a window is open."""

    async def start(self) -> int:
        """Listen; the port it got (network.pairing_port, or any free one for 0)."""
        ...

    async def stop(self) -> None: ...


class PairingContext(Protocol):
    """What the pairing window needs of its kit (kitd.kit.Kit)."""

    config: KitConfig
    database: Any
    events: EventHub
    keys: KitKeys
    audit: AuditLog
    network_trust: Any
    clock: KitClock

    async def in_database(self, job: Callable[..., T], *args: Any) -> T: ...


@dataclass
class _Exchange:
    request: StartRequest
    kit_side: KitExchange


@dataclass
class Window:
    """One open window: its code, until when, and what is left of it."""

    code: str
    opened_by: str
    expires_at: dt.datetime
    deadline: float  # on the monotonic clock
    port: int
    kit_tls_fingerprint: str
    attempts_left: int = ATTEMPTS
    exchanges: dict[str, _Exchange] = field(default_factory=dict)

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.deadline - now)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


class Pairing:
    """The kit's pairing window (at most one) and its listener."""

    def __init__(
        self,
        kit: PairingContext,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.kit = kit
        self.listener: Listener | None = None
        self.window: Window | None = None
        # The laptop the latest window paired, until another opens (kitctl laptops pair asks).
        self.paired: str | None = None
        self._clock = clock
        self._wall_clock = wall_clock or kit.clock.now
        self._lock = asyncio.Lock()
        self._expiry: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._listening = False

    # --- the window (the local API: supervisors, kitctl) ----------------------------------

    async def open(self, actor: str = SYSTEM, seconds: float | None = None) -> dict[str, Any]:
        """A new window with a new code (replacing one that is open); its state with the code.
        NetworkDisabled when the network API is off, CannotListen when the port will not open."""
        config = self.kit.config
        if not config["network.enabled"]:
            raise NetworkDisabled(
                "the network API is off (network.enabled = false): a laptop has nothing to pair with"
            )
        if self.kit.network_trust is None:
            raise NetworkDisabled("the network API is not running: a laptop has nothing to pair with")
        longest = float(config["network.pairing_window_s"])
        length = longest if seconds is None else min(float(seconds), longest)
        async with self._lock:
            if self._stopping is not None:
                await self._stopping  # a closing window's port is shut before it opens again
            port = await self._listen()
            replaced = self.window is not None
            self._cancel_expiry()
            now = self._clock()
            window = Window(
                code=new_code(),
                opened_by=actor,
                expires_at=self._wall_clock() + dt.timedelta(seconds=length),
                deadline=now + length,
                port=port,
                # The certificate the pairing port serves (read once, at start-up), not the
                # files as they are now: the laptop hashes what its handshake shows.
                kit_tls_fingerprint=self.kit.network_trust.fingerprint,
            )
            self.window = window
            self.paired = None
            self._expiry = asyncio.create_task(self._expire(window, length), name="pairing-window")
            facts = {"expires_at": _stamp(window.expires_at), "port": port, "replaced": replaced}
            await self.kit.in_database(self._audit, actor, "pairing_opened", facts)
            log.info("pairing window open on port %d until %s", port, facts["expires_at"], extra=facts)
            self._publish_open(window)
            return self.state()

    def state(self) -> dict[str, Any]:
        """``{"open": bool, ...the window's fields when open, "paired": name | null}``."""
        window = self._current()
        answer: dict[str, Any] = {"open": window is not None}
        if window is not None:
            answer.update(self._window_fields(window))
        answer["paired"] = self.paired
        return answer

    async def close(self, why: str = "closed", actor: str = SYSTEM) -> bool:
        """Close the window (if one is open) and stop listening; whether one was open."""
        async with self._lock:
            return await self._close(why, actor)

    # --- the laptop's side (the pairing port) ---------------------------------------------

    async def start(self, body: Any) -> dict[str, Any]:
        """A laptop's start: the kit's SPAKE2 message for it. Uses one attempt of the window."""
        try:
            request = read_start(body)
        except PairingError as exc:
            raise BadPairingRequest(str(exc), exc.field) from None
        try:
            check_signing_certificate(request.receipt_certificate, "receipt_certificate")
        except KeyProblem as exc:
            raise BadPairingRequest(str(exc), "receipt_certificate") from None
        # Two keys with two jobs (kit-sync makes them so): the one the laptop connects with and
        # the one its receipts, which let the kit erase bundles, are signed with.
        if not _for_tls_clients(request.tls_certificate):
            raise BadPairingRequest(
                "tls_certificate: not a TLS client certificate (its extendedKeyUsage lacks clientAuth)",
                "tls_certificate",
            )
        if same_key(request.tls_certificate, request.receipt_certificate):
            raise BadPairingRequest(
                "receipt_certificate: the same key as tls_certificate: a laptop's receipts are signed "
                "with a key of their own",
                "receipt_certificate",
            )
        async with self._lock:
            window = self._usable_window()
            if window.attempts_left <= 0:
                raise PairingClosed("the pairing window's attempts are used up: open a new one on the kit")
            problem = await self.kit.in_database(
                pairing_problem,
                self.kit.database,
                request.laptop_name,
                request.tls_fingerprint.hex(),
                request.receipt_fingerprint.hex(),
            )
            if problem is not None:
                raise LaptopNameTaken(problem)
            try:
                # SPAKE2 in pure Python: a few milliseconds of arithmetic, off the event loop.
                kit_side = await asyncio.to_thread(
                    KitExchange,
                    window.code,
                    request.message,
                    bytes.fromhex(window.kit_tls_fingerprint),
                    request.tls_fingerprint,
                    request.receipt_fingerprint,
                    request.laptop_name,
                )
            except PairingError as exc:
                raise BadPairingRequest(str(exc), exc.field) from None
            window.attempts_left -= 1
            exchange_id = secrets.token_urlsafe(16)
            window.exchanges[exchange_id] = _Exchange(request, kit_side)
            log.info(
                "pairing start from laptop %s (%d attempts left)",
                request.laptop_name,
                window.attempts_left,
                extra={"laptop": request.laptop_name, "attempts_left": window.attempts_left},
            )
            self._publish_open(window)
            return start_answer(exchange_id, kit_side, self.kit.config.kit_id)

    async def confirm(self, body: Any) -> dict[str, Any]:
        """A laptop's confirmation: right, the laptop is recorded and the window closes (the
        kit's confirmation and what the laptop keeps are returned); wrong, WrongCode with the
        attempts left (none left: the window closes)."""
        try:
            exchange_id, confirmation = read_confirm(body)
        except PairingError as exc:
            raise BadPairingRequest(str(exc), exc.field) from None
        async with self._lock:
            window = self._usable_window()
            exchange = window.exchanges.pop(exchange_id, None)
            if exchange is None:
                raise UnknownExchange(f"no exchange {exchange_id!r} in this window: start again")
            request = exchange.request
            try:
                kit_confirmation = exchange.kit_side.check_laptop(confirmation)
            except ConfirmationFailed:
                log.warning(
                    "pairing: laptop %s confirmed with a wrong code (%d attempts left)",
                    request.laptop_name,
                    window.attempts_left,
                    extra={"laptop": request.laptop_name, "attempts_left": window.attempts_left},
                )
                await self.kit.in_database(
                    self._audit, SYSTEM, "pairing_wrong_code", {"laptop": request.laptop_name}
                )
                if window.attempts_left <= 0 and not window.exchanges:
                    await self._close("wrong_codes", SYSTEM)
                else:
                    self._publish_open(window)
                raise WrongCode(
                    "wrong code (or someone between the laptop and the kit): check the code the kit "
                    "shows and pair again",
                    window.attempts_left,
                ) from None
            tls_pem = _pem(request.tls_certificate)
            try:
                # Admitted before it is recorded: a certificate OpenSSL refuses is never recorded,
                # and one admitted but not recorded (the database failed) is refused by the
                # network API anyway, which looks every request's certificate up.
                self.kit.network_trust.admit(tls_pem)
            except ValueError as exc:
                raise BadPairingRequest(f"tls_certificate: {exc}", "tls_certificate") from None
            try:
                await self.kit.in_database(
                    pair_laptop,
                    self.kit.database,
                    request.laptop_name,
                    tls_pem,
                    request.tls_fingerprint.hex(),
                    _pem(request.receipt_certificate),
                    request.receipt_fingerprint.hex(),
                    self._wall_clock(),
                    window.opened_by,
                )
            except LaptopError as exc:
                raise LaptopNameTaken(str(exc)) from None
            self.paired = request.laptop_name
            log.info("laptop %s paired", request.laptop_name, extra={"laptop": request.laptop_name})
            await self._close("paired", window.opened_by)
            self.kit.events.publish("pairing", {"state": "paired", "laptop_name": request.laptop_name})
            return {
                "confirmation": kit_confirmation.hex(),
                "kit_id": self.kit.config.kit_id,
                "laptop_name": request.laptop_name,
                "network_port": self._network_port(),
                "kit_signing_certificate": self._kit_signing_certificate(),
                "audit_note_key": self.kit.audit.verifier_if_any(),
            }

    # --- the inside -----------------------------------------------------------------------

    def _current(self) -> Window | None:
        """The open window, if it has not run out (its expiry task may be a moment late)."""
        window = self.window
        if window is not None and window.seconds_left(self._clock()) <= 0:
            return None
        return window

    def _usable_window(self) -> Window:
        window = self._current()
        if window is None:
            raise PairingClosed("no pairing window is open on the kit: open one and pair within its time")
        return window

    def _window_fields(self, window: Window) -> dict[str, Any]:
        return {
            "code": window.code,
            "expires_at": _stamp(window.expires_at),
            "seconds_left": round(window.seconds_left(self._clock()), 1),
            "attempts_left": window.attempts_left,
            "port": window.port,
            "kit_tls_fingerprint": window.kit_tls_fingerprint,
        }

    def _publish_open(self, window: Window) -> None:
        fields = self._window_fields(window)
        del fields["code"]  # events reach every signed-in screen: never the code
        self.kit.events.publish("pairing", {"state": "open", **fields})

    async def _close(self, why: str, actor: str) -> bool:
        """Close the window (the lock held). Its port stops in a task of its own: the last
        request answered on that port must not wait for its own server to stop."""
        window, self.window = self.window, None
        self._cancel_expiry()
        if self._listening and self._stopping is None:
            self._stopping = asyncio.create_task(self._stop_listening(), name="pairing-port-stop")
        if window is None:
            return False
        await self.kit.in_database(self._audit, actor, "pairing_closed", {"why": why})
        log.info("pairing window closed (%s)", why, extra={"why": why})
        self.kit.events.publish("pairing", {"state": "closed", "why": why})
        return True

    async def _expire(self, window: Window, length: float) -> None:
        await asyncio.sleep(length)
        async with self._lock:
            if self.window is window:
                await self._close("expired", SYSTEM)

    def _cancel_expiry(self) -> None:
        task, self._expiry = self._expiry, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _listen(self) -> int:
        if self.window is not None and self._listening:
            return self.window.port
        if self.listener is None:
            raise CannotListen("the kit's pairing port is not set up (the API is not running)")
        try:
            port = await self.listener.start()
        except OSError as exc:
            port_key = self.kit.config["network.pairing_port"]
            raise CannotListen(
                f"cannot listen on the pairing port {port_key} (network.pairing_port): {exc.strerror or exc}"
            ) from None
        self._listening = True
        return port

    async def _stop_listening(self) -> None:
        try:
            if self.listener is not None:
                await self.listener.stop()
        except Exception as exc:  # noqa: BLE001 - a port that would not stop cleanly is logged, not fatal
            log.error("the pairing port did not stop cleanly: %s", exc)
        finally:
            self._listening = False
            self._stopping = None

    async def shutdown(self) -> None:
        """The API is stopping: the window closes and its port with it."""
        await self.close("shutdown")
        if self._stopping is not None:
            await self._stopping

    def _audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        append_entry(self.kit.database, actor, action, details)

    def _network_port(self) -> int:
        """The port the network API listens on: the one the daemon got (network.port 0 picks
        any), else the configured one."""
        port = getattr(self.kit.network_trust, "port", None)
        return int(self.kit.config["network.port"] if port is None else port)

    def _kit_signing_certificate(self) -> str | None:
        certificate = self.kit.keys.kit_certificate()
        return None if certificate is None else _pem(certificate)


def _for_tls_clients(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usage


def _pem(certificate: Any) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
