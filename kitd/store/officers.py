"""The kit's officers: who they are, their role, and their PIN, kept only as a hash.

Its one job: :class:`OfficerRoll` adds officers, checks a sign-in PIN (locking the
officer after ``max_pin_failures`` wrong PINs in a row until a supervisor unlocks),
resets PINs, unlocks and deactivates. Officers are never deleted: the audit log
names them. PINs are 6 digits, hashed with Argon2id (argon2-cffi); the parameters
are :data:`PIN_HASHING` (about 170 ms a check on a 2-core x86 build machine).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kitd.ansi_nist_text import text_problem
from kitd.clock import clock_of
from kitd.errors import KitError, shown_value
from kitd.identity_numbers import nip_problems
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import transaction

ROLES: tuple[str, ...] = ("officer", "supervisor", "technician")
LANGUAGES: tuple[str, ...] = ("id", "en")  # the touch screen's: Bahasa Indonesia first
PIN_LENGTH = 6
MAX_NAME = 200  # characters, as a work order's applicant name
# Argon2id, 64 MiB, 2 passes, 1 lane: a guess costs ~170 ms on this machine and more
# on the kit, so a stolen database does not give up a 6-digit PIN in minutes per core
# (10^6 guesses take ~2 CPU-days), while a sign-in still feels immediate.
PIN_HASHING = {"time_cost": 2, "memory_cost": 65536, "parallelism": 1}


class OfficerError(KitError):
    """A request about an officer that cannot be done (names the NIP and why); `field`, the
    request's field at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownOfficer(OfficerError):
    pass


class WrongPin(OfficerError):
    pass


class OfficerLocked(OfficerError):
    pass


class OfficerInactive(OfficerError):
    pass


class LastSupervisor(OfficerError):
    """Deactivating this officer would leave the kit with no active supervisor: nobody could
    then import orders, add officers or unlock one (409)."""


@dataclass(frozen=True)
class Officer:
    """An officer as the API shows them (never the PIN hash)."""

    nip: str
    name: str
    role: str
    active: bool
    locked: bool
    language: str = "id"  # the touch screen's language for them: "id" or "en"

    def to_json(self) -> dict[str, object]:
        return {
            "nip": self.nip,
            "name": self.name,
            "role": self.role,
            "active": self.active,
            "locked": self.locked,
            "language": self.language,
        }


def pin_problem(pin: object) -> str | None:
    if not isinstance(pin, str) or len(pin) != PIN_LENGTH or not (pin.isascii() and pin.isdigit()):
        return f"PIN must be {PIN_LENGTH} digits"
    return None


def _officer(row: sqlite3.Row) -> Officer:
    return Officer(
        row["nip"], row["name"], row["role"], bool(row["active"]), bool(row["locked"]), row["language"]
    )


class OfficerRoll:
    """Officers in the kit's database."""

    def __init__(
        self, conn: sqlite3.Connection, max_pin_failures: int = 5, hasher: PasswordHasher | None = None
    ):
        self.conn = conn
        self.max_pin_failures = max_pin_failures
        self.hasher = hasher or PasswordHasher(**PIN_HASHING)
        self._stand_in_hash: str | None = None  # checked against for unknown NIPs

    def check_new(self, nip: str, name: str, role: str) -> None:
        """OfficerError when an officer with these details cannot be added."""
        problems = nip_problems(nip)
        if problems:
            raise OfficerError(problems[0], "nip")
        if not isinstance(name, str) or not name.strip():
            raise OfficerError("name must not be empty", "name")
        if len(name.strip()) > MAX_NAME:
            raise OfficerError(f"name: {len(name.strip())} characters, at most {MAX_NAME}", "name")
        # The name is signed into bundles and shown on one line of the screen and the audit log.
        problem = text_problem(name.strip())
        if problem:
            raise OfficerError(f"name {problem}", "name")
        if role not in ROLES:
            raise OfficerError(f"role must be one of {', '.join(ROLES)}, not {role!r}", "role")
        if self.conn.execute("SELECT 1 FROM officers WHERE nip = ?", (nip,)).fetchone():
            raise OfficerError(f"officer {nip} already exists")

    def add(self, nip: str, name: str, role: str, pin: str, actor: str = SYSTEM) -> Officer:
        self.check_new(nip, name, role)
        problem = pin_problem(pin)
        if problem:
            raise OfficerError(problem, "pin")
        now = clock_of(self.conn).now().isoformat(timespec="seconds")
        pin_hash = self.hasher.hash(pin)
        try:
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO officers (nip, name, role, pin_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (nip, name.strip(), role, pin_hash, now),
                )
                append_entry(
                    self.conn, actor, "officer_added", {"nip": nip, "name": name.strip(), "role": role}
                )
        except sqlite3.IntegrityError:
            raise OfficerError(f"officer {nip} already exists") from None
        return self.get(nip)

    def set_language(self, nip: str, language: str) -> Officer:
        """The touch screen's language for this officer from now on (not audited: it grants
        nothing, and it is not part of the officer's standing)."""
        if language not in LANGUAGES:
            raise OfficerError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        with transaction(self.conn):
            if (
                self.conn.execute("UPDATE officers SET language = ? WHERE nip = ?", (language, nip)).rowcount
                == 0
            ):
                raise UnknownOfficer(f"no officer with NIP {shown_value(nip)}")
        return self.get(nip)

    def get(self, nip: str) -> Officer:
        row = self.conn.execute("SELECT * FROM officers WHERE nip = ?", (nip,)).fetchone()
        if row is None:
            raise UnknownOfficer(f"no officer with NIP {shown_value(nip)}")
        return _officer(row)

    def standing(self, nip: str) -> str | None:
        """A digest of what a sign-in rests on (active, locked, PIN hash); None if unknown.

        A token issued with one standing is void once it changes, whoever changed it
        (the API, or kitctl on the database beside the daemon).
        """
        row = self.conn.execute(
            "SELECT active, locked, pin_hash FROM officers WHERE nip = ?", (nip,)
        ).fetchone()
        if row is None:
            return None
        return hashlib.sha256(f"{row['active']}:{row['locked']}:{row['pin_hash']}".encode()).hexdigest()

    def list(self) -> list[Officer]:
        return [_officer(r) for r in self.conn.execute("SELECT * FROM officers ORDER BY name, nip")]

    def count(self, role: str | None = None) -> int:
        if role is None:
            return int(self.conn.execute("SELECT count(*) FROM officers").fetchone()[0])
        return int(self.conn.execute("SELECT count(*) FROM officers WHERE role = ?", (role,)).fetchone()[0])

    def check_pin(self, nip: str, pin: str, purpose: str = "sign_in") -> Officer:
        """The officer when ``pin`` is theirs; else WrongPin, OfficerLocked, ...

        Every wrong PIN that reaches here counts (the API refuses a malformed one before);
        the count resets on a right one. The hash is checked even for an unknown NIP, and
        a deactivated officer hears so only with the right PIN, so that neither the time
        taken nor the answer tells which NIPs exist. Each check is in the audit log as
        ``purpose`` (``sign_in``, ``pin_check``) or ``<purpose>_refused`` with the reason.
        """
        row = self.conn.execute("SELECT * FROM officers WHERE nip = ?", (nip,)).fetchone()
        pin_text = pin if isinstance(pin, str) else ""
        if row is None:
            if self._stand_in_hash is None:
                self._stand_in_hash = self.hasher.hash("stand-in")
            self._verify(self._stand_in_hash, pin_text)
            append_entry(self.conn, SYSTEM, f"{purpose}_refused", {"nip": str(nip), "reason": "unknown_nip"})
            raise UnknownOfficer("NIP or PIN is wrong")
        if not row["active"]:
            if self._verify(row["pin_hash"], pin_text):
                append_entry(self.conn, nip, f"{purpose}_refused", {"reason": "deactivated"})
                raise OfficerInactive(f"officer {nip} is deactivated")
            append_entry(self.conn, nip, f"{purpose}_refused", {"reason": "wrong_pin"})
            raise UnknownOfficer("NIP or PIN is wrong")
        if row["locked"]:
            append_entry(self.conn, nip, f"{purpose}_refused", {"reason": "locked"})
            raise OfficerLocked(
                f"officer {nip} is locked after {self.max_pin_failures} wrong PINs: a supervisor must unlock"
            )
        if self._verify(row["pin_hash"], pin_text):
            new_hash = self.hasher.hash(pin_text) if self.hasher.check_needs_rehash(row["pin_hash"]) else None
            with transaction(self.conn):
                self.conn.execute("UPDATE officers SET pin_failures = 0 WHERE nip = ?", (nip,))
                if new_hash is not None:
                    self.conn.execute("UPDATE officers SET pin_hash = ? WHERE nip = ?", (new_hash, nip))
                append_entry(self.conn, nip, purpose, {"role": row["role"]})
            return _officer(row)
        failures = int(row["pin_failures"]) + 1
        locked = failures >= self.max_pin_failures
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE officers SET pin_failures = ?, locked = ? WHERE nip = ?", (failures, int(locked), nip)
            )
            append_entry(self.conn, nip, f"{purpose}_refused", {"reason": "wrong_pin", "failures": failures})
            if locked:
                append_entry(self.conn, SYSTEM, "officer_locked", {"nip": nip, "failures": failures})
        if locked:
            raise OfficerLocked(
                f"officer {nip} is locked after {failures} wrong PINs: a supervisor must unlock"
            )
        raise WrongPin("NIP or PIN is wrong")

    def _verify(self, pin_hash: str, pin: str) -> bool:
        try:
            return bool(self.hasher.verify(pin_hash, pin))
        except (VerificationError, InvalidHashError):
            return False

    def unlock(self, nip: str, actor: str = SYSTEM) -> Officer:
        self.get(nip)
        with transaction(self.conn):
            self.conn.execute("UPDATE officers SET locked = 0, pin_failures = 0 WHERE nip = ?", (nip,))
            append_entry(self.conn, actor, "officer_unlocked", {"nip": nip})
        return self.get(nip)

    def reset_pin(self, nip: str, pin: str, actor: str = SYSTEM, action: str = "pin_reset") -> Officer:
        """A new PIN (also unlocks): ``pin_reset`` by a supervisor, ``pin_changed`` by the officer."""
        problem = pin_problem(pin)
        if problem:
            raise OfficerError(problem)
        self.get(nip)
        pin_hash = self.hasher.hash(pin)
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE officers SET pin_hash = ?, locked = 0, pin_failures = 0 WHERE nip = ?",
                (pin_hash, nip),
            )
            append_entry(self.conn, actor, action, {"nip": nip})
        return self.get(nip)

    def deactivate(self, nip: str, actor: str = SYSTEM) -> Officer:
        officer = self.get(nip)
        with transaction(self.conn):
            others = self.conn.execute(
                "SELECT count(*) FROM officers WHERE role = 'supervisor' AND active = 1 AND nip != ?", (nip,)
            ).fetchone()[0]
            if officer.role == "supervisor" and officer.active and others == 0:
                raise LastSupervisor(
                    f"officer {nip} is the kit's last active supervisor: add another supervisor first"
                )
            self.conn.execute("UPDATE officers SET active = 0 WHERE nip = ?", (nip,))
            append_entry(self.conn, actor, "officer_deactivated", {"nip": nip})
        return self.get(nip)
