"""kit-sync's side of the kit's clock (kitsync.kit_clock, the status line): the laptop's time
sent as the kit's network API reads it, the kit's answer kept in the ledger, and the lines a
person reads. The real exchange with a real kitd is tests/test_hil_kit_clock.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from kitsync.kit_clock import clock_warning, describe_skew, send_laptop_time
from kitsync.ledger import Ledger
from kitsync.link import KitLink
from kitsync.status import clock_line

from kitd.clock import plausible_time

SENT_AT = dt.datetime(2026, 11, 30, 12, 0, 0, 250000, tzinfo=dt.UTC)


class Kit:
    """Answers POST /api/v1/clock as told; keeps what it was sent."""

    def __init__(self, status: int, answer: Any) -> None:
        self.status, self.answer = status, answer
        self.sent: list[tuple[str, str, Any]] = []
        self.who = "kit K-1"

    def call(self, method: str, path: str, document: Any = None) -> tuple[int, Any]:
        self.sent.append((method, path, document))
        return self.status, self.answer

    def refusal(self, what: str, status: int, answer: Any) -> Exception:
        return KitLink.refusal(self, what, status, answer)  # type: ignore[arg-type]


def test_the_laptops_time_is_one_the_kit_reads_and_its_answer_is_kept(tmp_path: Path) -> None:
    kit = Kit(200, {"skew_s": 31536000.0, "corrected": True, "kit_time_before": "2025-11-30T12:00:00.000Z",
                    "kit_time": "2026-11-30T12:00:00.300Z", "max_skew_s": 120})  # fmt: skip
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        kept = send_laptop_time(kit, ledger, now=lambda: SENT_AT)  # type: ignore[arg-type]
        assert ledger.value("clock") == kept
    method, path, body = kit.sent[0]
    assert (method, path) == ("POST", "/api/v1/clock")
    assert plausible_time(body["laptop_time"]) == SENT_AT  # the kit's own parser takes it
    assert kept["corrected"] is True and kept["problem"] is None
    assert clock_warning(kept) is not None and "365 days behind and was corrected" in clock_warning(kept)
    assert "365 days behind" in clock_line({"clock": kept})


def test_a_kit_that_does_not_take_the_time_is_said_and_the_sync_goes_on(tmp_path: Path) -> None:
    kit = Kit(404, {"error": "not_found", "message": "no route"})
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        kept = send_laptop_time(kit, ledger, now=lambda: SENT_AT)  # type: ignore[arg-type]
    assert kept["skew_s"] is None and "no route (not_found)" in kept["problem"]
    assert clock_warning(kept).startswith("the kit's clock was not confirmed")  # type: ignore[union-attr]
    assert "not confirmed at the last sync" in clock_line({"clock": kept})


def test_a_confirmation_within_the_skew_is_quiet() -> None:
    kept = {"at": "2026-11-30T12:00:00.000Z", "skew_s": -3.25, "corrected": False, "problem": None}
    assert clock_warning(kept) is None
    assert (
        clock_line({"clock": kept})
        == "  kit's clock: confirmed at the last sync (2026-11-30T12:00:00.000Z), skew -3.2 s"
    )
    assert clock_line({"clock": None}) == "  kit's clock: not confirmed by this laptop yet"


@pytest.mark.parametrize(
    ("skew_s", "said"),
    [
        (31536000, "365 days behind"),
        (86400, "24 hours behind"),
        (-600, "10 minutes ahead"),
        (-100, "100 s ahead"),
    ],
)
def test_skews_in_words(skew_s: float, said: str) -> None:
    assert describe_skew(skew_s) == said
