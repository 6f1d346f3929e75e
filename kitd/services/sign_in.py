"""Who is signed in: tokens handed out at sign-in, kept in memory, ended by idleness.

Its one job: :class:`SignedInOfficers` issues a random token for an officer whose PIN
was right, answers which officer a token belongs to (each use restarts the idle
time), and forgets a token at sign-out, after ``idle_lock_s`` without use, or when a
supervisor deactivates, locks or re-PINs the officer. Nothing is written to disk: a
restarted daemon asks everyone to sign in again. The clock is injectable for tests.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kitformats.signing import KeyProblem, Signer

from kitd.crypto.kit_keys import KitKeys
from kitd.store.officers import Officer

log = logging.getLogger("kitd.sign_in")


@dataclass
class _Token:
    officer: Officer
    last_used: float  # the monotonic clock
    standing: str = ""  # the officer's record when the token was issued (OfficerRoll.standing)
    # The officer's signing credential opened at this sign-in (in memory only), if any.
    credential: Any = None


class SignedInOfficers:
    """Tokens of signed-in officers, for one daemon."""

    def __init__(
        self,
        idle_lock_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_lock_s = float(idle_lock_s)
        self._clock = clock
        self._wall_clock = wall_clock
        self._tokens: dict[str, _Token] = {}

    def issue(self, officer: Officer, standing: str = "", credential: Any = None) -> str:
        self._forget_idle()
        # Hex, not base64url: a technician passes it after --token, and one in 64 base64url
        # tokens begins with '-', which a command line reads as an option.
        token = secrets.token_hex(32)
        self._tokens[token] = _Token(officer, self._clock(), standing, credential)
        return token

    def credential(self, token: str) -> Any:
        """The signing credential this sign-in opened; None once it has ended (signed out,
        locked by idleness) or when there was none. Asking does not restart the idle time."""
        entry = self._live(token)
        return None if entry is None else entry.credential

    def _live(self, token: str) -> _Token | None:
        """The token's entry while it holds; an idle one is forgotten here."""
        entry = self._tokens.get(token)
        if entry is not None and self._idle(entry, self._clock()):
            del self._tokens[token]
            return None
        return entry

    def _idle(self, entry: _Token, now: float) -> bool:
        return now - entry.last_used >= self.idle_lock_s

    def standing(self, token: str) -> str | None:
        """The officer's standing when ``token`` was issued; None once it has ended.
        Asking does not restart the idle time (a stream watching is not a use)."""
        entry = self._live(token)
        return None if entry is None else entry.standing

    def watching(self, token: str) -> Officer | None:
        """The token's officer without restarting its idle time (a status bar polling, an
        event stream: watching is not using); None for an unknown or idle one."""
        self._forget_idle()
        entry = self._live(token)
        return None if entry is None else entry.officer

    def officer(self, token: str) -> Officer | None:
        """The token's officer, restarting its idle time; None for an unknown or idle one."""
        # Every request sweeps: an idle sign-in's credential (a private key) leaves memory
        # with the next request of anyone, not only with the next sign-in.
        self._forget_idle()
        entry = self._live(token)
        if entry is None:
            return None
        entry.last_used = self._clock()
        return entry.officer

    def is_signed_in(self, nip: str) -> bool:
        """Whether officer `nip` holds a live sign-in (not restarting its idle time)."""
        now = self._clock()
        return any(e.officer.nip == nip and not self._idle(e, now) for e in self._tokens.values())

    def use(self, nip: str) -> None:
        """Officer `nip` used the kit without a token (the panel's buttons): their live
        sign-ins' idle time restarts, as a request with their token would."""
        now = self._clock()
        for entry in self._tokens.values():
            if entry.officer.nip == nip and not self._idle(entry, now):
                entry.last_used = now

    def expires_at(self, token: str) -> float:
        """Wall-clock time (Unix seconds) at which the token expires if unused."""
        entry = self._tokens[token]
        return self._wall_clock() + (entry.last_used + self.idle_lock_s - self._clock())

    def sign_out(self, token: str) -> bool:
        return self._tokens.pop(token, None) is not None

    def forget_officer(self, nip: str) -> int:
        """End every token of an officer (deactivated, locked, new PIN); how many ended."""
        ended = [t for t, e in self._tokens.items() if e.officer.nip == nip]
        for token in ended:
            del self._tokens[token]
        return len(ended)

    def __len__(self) -> int:
        self._forget_idle()
        return len(self._tokens)

    def _forget_idle(self) -> None:
        now = self._clock()
        for token in [t for t, e in self._tokens.items() if self._idle(e, now)]:
            del self._tokens[token]


def open_credential(keys: KitKeys, nip: str, pin: str) -> tuple[Signer | None, dict[str, str | None]]:
    """At sign-in: the officer's signing credential opened with their PIN, and its state for
    the screen (``{"state", "problem"}``: unlocked, file, none or unusable)."""
    try:
        signer = keys.unlock_officer(nip, pin)
    except KeyProblem as exc:
        log.warning("officer %s: %s", nip, exc, extra={"officer": nip})
        return None, {"state": "unusable", "problem": str(exc)}
    if signer is not None:
        return signer, {"state": "unlocked", "problem": None}
    try:
        keys.officer_signer(nip)
    except KeyProblem as exc:
        return None, {"state": "none", "problem": str(exc)}
    return None, {"state": "file", "problem": None}
