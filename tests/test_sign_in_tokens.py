"""Sign-in tokens (kitd/services/sign_in.py) with an injected clock: idle expiry, sign-out."""

from __future__ import annotations

from kitd.services.sign_in import SignedInOfficers
from kitd.store.officers import Officer

BUDI = Officer("198001012005011002", "Budi", "officer", True, False)
SITI = Officer("197503152000031001", "Siti", "supervisor", True, False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_ends_after_idle_lock_s_without_use() -> None:
    clock = Clock()
    signed_in = SignedInOfficers(300, clock=clock, wall_clock=lambda: 1_764_400_000.0 + clock.now)
    token = signed_in.issue(BUDI)
    assert signed_in.expires_at(token) == 1_764_400_000.0 + 1000.0 + 300
    clock.now += 299
    assert signed_in.officer(token) == BUDI  # used: the idle time starts again
    clock.now += 299
    assert signed_in.officer(token) == BUDI
    clock.now += 300
    assert signed_in.officer(token) is None  # 300 s idle
    assert signed_in.officer(token) is None and len(signed_in) == 0


def test_tokens_are_random_and_end_at_sign_out_or_for_their_officer() -> None:
    clock = Clock()
    signed_in = SignedInOfficers(300, clock=clock)
    first, second, other = signed_in.issue(BUDI), signed_in.issue(BUDI), signed_in.issue(SITI)
    assert len({first, second, other}) == 3 and all(len(t) >= 40 for t in (first, second, other))
    assert signed_in.sign_out(first) and not signed_in.sign_out(first)
    assert signed_in.officer(first) is None and signed_in.officer(second) == BUDI
    assert signed_in.forget_officer(BUDI.nip) == 1
    assert signed_in.officer(second) is None and signed_in.officer(other) == SITI
    assert signed_in.officer("") is None and signed_in.officer("not-a-token") is None


def test_no_token_reads_as_an_option_on_a_command_line() -> None:
    # kitctl takes the token after --token; argparse reads "-..." as an option. With
    # base64url tokens 1 in 64 began with '-' (a CI run failed on one).
    signed_in = SignedInOfficers(300, clock=Clock())
    tokens = [signed_in.issue(BUDI) for _ in range(400)]
    assert not [t for t in tokens if t.startswith("-")]
    assert all(t.isascii() and t.isalnum() for t in tokens)


def test_idle_tokens_are_dropped_when_new_ones_are_issued() -> None:
    clock = Clock()
    signed_in = SignedInOfficers(10, clock=clock)
    for _ in range(5):
        signed_in.issue(BUDI)
    clock.now += 11
    signed_in.issue(SITI)
    assert len(signed_in._tokens) == 1  # memory does not grow with abandoned sign-ins


def test_an_unlocked_credential_lives_as_long_as_its_sign_in() -> None:
    clock = Clock()
    signed_in = SignedInOfficers(300, clock=clock)
    credential = object()
    token = signed_in.issue(BUDI, credential=credential)
    other = signed_in.issue(SITI)
    assert signed_in.credential(token) is credential and signed_in.credential(other) is None
    signed_in.sign_out(token)
    assert signed_in.credential(token) is None  # signed out: closed again
    idle = signed_in.issue(BUDI, credential=credential)
    clock.now += 300
    signed_in.officer(other)  # any request sweeps: the idle sign-in and its key leave memory
    assert idle not in signed_in._tokens and signed_in.credential(idle) is None
    kept = signed_in.issue(BUDI, credential=credential)
    signed_in.forget_officer(BUDI.nip)  # deactivated, locked or given a new PIN
    assert signed_in.credential(kept) is None
