"""kill -9 at random points of a process running the real outbox: 200 rounds on one kit
(hil.outbox_crash), the outbox's invariants checked after every kill and after every
reconciliation; and two broken outboxes, caught within a few rounds, to show the checks
have teeth. The 10,000-round run is in the README ("Tests and benchmarks")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hil.outbox_crash import run_rounds

SEED = int(os.environ.get("KITD_CRASH_SEED", "24"))


def test_200_kills_at_random_points_leave_every_sealed_bundle_whole(tmp_path: Path) -> None:
    run = run_rounds(200, SEED, tmp_path / "crash")
    print(run.summary())
    assert run.failures == [], run.summary()
    assert run.rounds == 200
    # The kills landed in every phase: start-up's reconciliation, the sealing, its store
    # (file steps and database statements), both receipts, the offer and the erasure.
    for phase in ("reconcile", "seal", "store", "offer", "laptop", "central", "erase"):
        assert run.kills[phase] > 0, (phase, run.summary())
    store = [step for step in run.steps if step.startswith("store: ")]
    file_steps = [step for step in store if "sql" not in step and "cpu" not in step]
    assert any("sql" in step for step in store) and len(file_steps) >= 3, store
    assert any(step.startswith(("erase: unlink", "erase: fsync folder")) for step in run.steps), run.summary()
    # Real work was interrupted and mended: bundles sealed and delivered; start-up forgot
    # interrupted sealings and removed their temporary files.
    assert run.reported["sealed"] >= 40 and run.reported["delivered"] >= 20, run.summary()
    assert run.reconciled["forgotten"] > 0 and run.reconciled["temporary_removed"] > 0, run.summary()


@pytest.mark.parametrize(
    ("broken", "aim", "caught"),
    [
        # A write left in a buffer fsync does not flush: renamed into place, reported
        # sealed, and empty when the kill comes.
        ("lazy-writes", "store", ("not the one registered", "is not a whole statement")),
        # Erasure's files removed before its row says erased: a delivered bundle without
        # its file when the kill comes between.
        ("files-before-rows", "erase", ("has no sealed file",)),
        # The audit log's first entry rewritten (its leaf too) between two rounds: it no
        # longer hashes to the checkpoints signed before.
        ("audit-rewrite", "store", ("audit log",)),
    ],
)
def test_a_broken_outbox_is_caught_within_a_few_rounds(
    tmp_path: Path, broken: str, aim: str, caught: tuple[str, ...]
) -> None:
    run = run_rounds(40, SEED, tmp_path / "crash", broken=broken, targets={aim: 1.0}, stop_at_failure=True)
    print(run.summary())
    assert run.failures, f"a broken outbox ({broken}) went unnoticed for {run.rounds} rounds"
    assert any(words in run.failures[0] for words in caught), run.failures
