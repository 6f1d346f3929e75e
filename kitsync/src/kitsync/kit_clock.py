"""The laptop's time for the kit: sent at the start of every sync, and what it did kept.

Its one job: ``POST /api/v1/clock`` with this laptop's time (the kit corrects its clock when
it is further off than its ``clock.max_skew_s``, and counts it as confirmed either way), and
the answer — the skew, whether the kit corrected itself — kept in the kit's ledger for
``kit-sync status``. A kit that cannot take the time (an older kit, a refusal) does not stop
the sync: the bundles matter more than the clock, and the answer says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kitsync.ledger import Ledger
from kitsync.link import KitLink

Now = Callable[[], dt.datetime]


def laptop_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send_laptop_time(link: KitLink, ledger: Ledger, now: Now = laptop_now) -> dict[str, Any]:
    """Send this laptop's time; the kit's answer, as kept in the ledger (``problem`` when the
    kit did not take it). Network failures pass through: the sync could not go on anyway."""
    sent = now()
    status, answer = link.call("POST", "/api/v1/clock", {"laptop_time": stamp(sent)})
    kept: dict[str, Any] = {"at": stamp(sent)}
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("skew_s"), int | float):
        kept.update(
            skew_s=float(answer["skew_s"]),
            corrected=bool(answer.get("corrected")),
            kit_time_before=answer.get("kit_time_before"),
            kit_time=answer.get("kit_time"),
            max_skew_s=answer.get("max_skew_s"),
            problem=None,
        )
    else:
        kept.update(
            skew_s=None, corrected=False, problem=str(link.refusal("the kit's clock", status, answer))
        )
    ledger.set_value("clock", kept)
    return kept


def clock_warning(kept: dict[str, Any]) -> str | None:
    """The line a person should see about the kit's clock at this sync, if any."""
    if kept.get("problem"):
        return f"the kit's clock was not confirmed: {kept['problem']}"
    if kept.get("corrected"):
        return (
            f"the kit's clock was {describe_skew(kept['skew_s'])} and was corrected to this laptop's "
            f"(was {kept.get('kit_time_before')}); check this laptop's own clock if that looks wrong"
        )
    return None


def describe_skew(skew_s: float) -> str:
    """How far the kit's clock was from the laptop's, in words a person reads at a glance."""
    ahead = skew_s < 0  # the laptop's minus the kit's: negative when the kit was ahead
    span = abs(skew_s)
    for unit, seconds in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if span >= 2 * seconds:
            amount = f"{span / seconds:.0f} {unit}"
            break
    else:
        amount = f"{span:.0f} s"
    return f"{amount} {'ahead' if ahead else 'behind'}"
