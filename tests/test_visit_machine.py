"""The visit's pure state machine (kitd/services/visit_machine.py) with an injected clock:
every action in every state, allowed or refused, and the items' paths through a visit."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable

import pytest

from kitd.services.visit_machine import (
    STATES,
    BadVisitRequest,
    PastAppointment,
    UnknownItem,
    Visit,
    WrongState,
)

FINGERS = [f"finger:{n}" for n in range(1, 11)]
CAPTURE_ITEMS = [*FINGERS, "iris:right", "iris:left", "signature"]
BUDI = "198001012005011002"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def new_visit(category: str = "lansia") -> Visit:
    return Visit.start("v1", "MJK-001", BUDI, category, clock=Clock())


def identified(category: str = "lansia") -> Visit:
    visit = new_visit(category)
    visit.record_identity(["Sumiati", "Rina (anak)"], "applicant")
    return visit


def capture(visit: Visit, item: str, score: float = 80.0, passed: bool = True) -> None:
    session = f"s-{item}-{visit.item(item).attempts + 1}"
    visit.start_item(item, session)
    visit.session_best(
        item, session, score, passed, [] if passed else ["press_harder"], [] if passed else ["min_score"]
    )
    if not passed:
        visit.accept_item(item)


def in_review() -> Visit:
    visit = identified()
    for item in CAPTURE_ITEMS:
        capture(visit, item)
    return visit


def in_state(state: str) -> Visit:
    if state == "identity":
        return new_visit()
    if state == "capturing":
        return identified()
    visit = in_review()
    if state == "ending":
        visit.cancel()
    elif state == "finished":
        visit.finish()
    elif state == "ended":
        visit.set_outcome("refused")
    assert visit.state == state
    return visit


ACTIONS: dict[str, Callable[[Visit], object]] = {
    "identity": lambda v: v.record_identity(["Sumiati"], "applicant"),
    "start": lambda v: v.start_item("iris:left", "s-new"),
    "retry": lambda v: v.retry_item("finger:1", "s-new"),
    "accept": lambda v: v.accept_item("finger:1"),
    "except": lambda v: v.except_item("finger:2", "bandaged", True, BUDI),
    "finish": lambda v: v.finish(),
    "cancel": lambda v: v.cancel(),
    "carry_on": lambda v: v.carry_on(),
    "outcome": lambda v: v.set_outcome("not_home"),
}
ALLOWED: dict[str, set[str]] = {
    "identity": {"identity"},
    "start": {"capturing", "review"},
    "retry": {"review"},  # finger:1 is captured in review; in capturing it is still pending
    "accept": set(),  # nothing is being captured in any of these states
    "except": {"capturing", "review"},
    "finish": {"review"},
    "cancel": {"identity", "capturing", "review", "ending"},
    "carry_on": {"ending"},
    "outcome": {"identity", "capturing", "review", "ending"},
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_in_every_state(action: str, state: str) -> None:
    visit = in_state(state)
    before = json.dumps(visit.to_json())
    if state in ALLOWED[action]:
        ACTIONS[action](visit)
        assert visit.updated_at > json.loads(before)["updated_at"]
    else:
        with pytest.raises(WrongState) as refused:
            ACTIONS[action](visit)
        assert refused.value.state == state
        assert json.dumps(visit.to_json()) == before  # a refused action changes nothing


def test_a_complete_visit_walks_its_items_in_order() -> None:
    visit = new_visit()
    assert visit.state == "identity" and visit.current is None
    assert [i.item for i in visit.items] == CAPTURE_ITEMS
    visit.record_identity(["Sumiati"], "applicant")
    assert (visit.state, visit.current) == ("capturing", "finger:1")
    visit.start_item("finger:1", "s1")
    visit.session_best("finger:1", "s1", 35.0, False, ["press_harder"], ["min_score"])
    assert visit.item("finger:1").status == "capturing" and visit.current == "finger:1"
    visit.session_best("finger:1", "s1", 72.5, True, [], [])
    assert visit.item("finger:1").status == "captured" and visit.current == "finger:2"
    for item in CAPTURE_ITEMS[1:]:
        capture(visit, item)
    assert (visit.state, visit.current) == ("review", None)
    visit.finish()
    assert visit.state == "finished"
    assert all(i.status == "captured" and i.attempts == 1 for i in visit.items)


def test_accept_keeps_the_best_flagged_forced_and_retry_keeps_history() -> None:
    visit = identified()
    visit.start_item("finger:1", "s1")
    with pytest.raises(WrongState, match="no capture yet"):
        visit.accept_item("finger:1")
    visit.session_best("finger:1", "s1", 31.0, False, ["too_dry"], ["too_dry"])
    retried = visit.retry_item("finger:1", "s2")
    assert retried.attempts == 2 and retried.history[0]["score"] == 31.0 and retried.score is None
    visit.session_best("finger:1", "s1", 90.0, True, [], [])  # the old session's late answer
    assert visit.item("finger:1").score is None
    visit.session_best("finger:1", "s2", 38.0, False, ["too_dry"], ["too_dry"])
    accepted = visit.accept_item("finger:1")
    assert (
        accepted.status == "forced" and accepted.failed_checks == ["too_dry"] and visit.current == "finger:2"
    )
    with pytest.raises(WrongState, match="being captured"):
        visit.start_item("finger:2", "s3") and visit.start_item("finger:3", "s4")


def test_exceptions_need_a_fitting_reason_and_confirmation() -> None:
    visit = identified()
    with pytest.raises(BadVisitRequest) as wrong:
        visit.except_item("finger:1", "blind_or_diseased", True, BUDI)
    assert wrong.value.field == "reason"
    with pytest.raises(BadVisitRequest) as unconfirmed:
        visit.except_item("finger:1", "amputated", "yes", BUDI)
    assert unconfirmed.value.field == "confirm"
    with pytest.raises(UnknownItem):
        visit.except_item("finger:11", "amputated", True, BUDI)
    item = visit.except_item("finger:1", "amputated", True, BUDI)
    assert item.exception == {"reason": "amputated", "confirmed_by": BUDI, "at": visit.updated_at}
    assert visit.current == "finger:2"


def test_cannot_sign_brings_a_thumbprint_of_the_first_thumb_not_excepted() -> None:
    visit = identified()
    visit.except_item("finger:1", "amputated", True, BUDI)  # right thumb
    visit.except_item("finger:2", "amputated", True, BUDI)
    for item in CAPTURE_ITEMS[2:-1]:
        if item == "iris:left":
            visit.except_item(item, "blind_or_diseased", True, BUDI)
        else:
            capture(visit, item)
    visit.except_item("signature", "cannot_sign", True, BUDI)
    assert [i.item for i in visit.items][-2:] == ["signature", "thumbprint"]
    assert visit.item("thumbprint").finger == 6 and visit.current == "thumbprint"  # left thumb
    capture(visit, "thumbprint")
    assert visit.state == "review"
    visit.finish()
    statuses = {i.item: i.status for i in visit.items}
    assert statuses["finger:1"] == statuses["finger:2"] == statuses["iris:left"] == "excepted"
    assert statuses["signature"] == "excepted" and statuses["thumbprint"] == "captured"


def test_an_item_is_revisited_from_review() -> None:
    visit = in_review()
    visit.start_item("iris:right", "again")
    assert (visit.state, visit.current) == ("capturing", "iris:right")
    assert visit.item("iris:right").history[0]["ended"] == "revisited"
    visit.session_best("iris:right", "again", 88.0, True, [], [])
    assert visit.state == "review" and visit.item("iris:right").attempts == 2


def test_identity_rules() -> None:
    with pytest.raises(BadVisitRequest) as nobody:
        new_visit().record_identity([], "applicant")
    assert nobody.value.field == "present"
    with pytest.raises(BadVisitRequest) as who:
        new_visit().record_identity(["Sumiati"], "neighbour")
    assert who.value.field == "consent_by"
    with pytest.raises(BadVisitRequest) as alone:
        new_visit("odgj").record_identity(["Karno"], "applicant")
    assert alone.value.field == "consent_by"
    with pytest.raises(BadVisitRequest) as nameless:
        new_visit("odgj").record_identity(["Karno"], "guardian", {"name": "", "relation": "kakak"})
    assert nameless.value.field == "guardian"
    # Names go into the sealed bundle's transaction: what it cannot carry is refused here.
    with pytest.raises(BadVisitRequest, match="999:") as tagged:
        new_visit().record_identity(["Sumi 999:ati"], "applicant")
    assert tagged.value.field == "present"
    with pytest.raises(BadVisitRequest, match="separator GS") as separated:
        new_visit("odgj").record_identity(["Karno"], "guardian", {"name": "Sri", "relation": "ka\x1dkak"})
    assert separated.value.field == "guardian"
    visit = new_visit("odgj")
    visit.record_identity(["Karno", "Sri"], "guardian", {"name": "Sri", "relation": "kakak"})
    assert visit.identity == {
        "present": ["Karno", "Sri"],
        "consent_by": "guardian",
        "guardian": {"name": "Sri", "relation": "kakak"},
    }


def test_outcomes_and_what_they_need() -> None:
    for code, note, reschedule, field in (
        ("moved", None, None, "code"),
        ("unable", None, None, "note"),
        ("cancelled", "  ", None, "note"),
        ("rescheduled", None, None, "reschedule"),
        (
            "rescheduled",
            None,
            {"start": "2026-12-02T09:00:00", "end": "2026-12-02T10:00:00+07:00"},
            "reschedule.start",
        ),
        (
            "rescheduled",
            None,
            {"start": "2026-12-02T10:00:00+07:00", "end": "2026-12-02T09:00:00+07:00"},
            "reschedule.end",
        ),
        ("not_home", None, {"start": "x"}, "reschedule"),
        # Notes the bundle and the database cannot carry, and appointments no order may have
        # (0001 also overflows when moved to UTC).
        ("not_home", "tidak ada \ud800", None, "note"),
        ("not_home", "x" * 1001, None, "note"),
        (
            "rescheduled",
            None,
            {"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-01T01:00:00+01:00"},
            "reschedule.start",
        ),
        (
            "rescheduled",
            None,
            {"start": "1900-12-02T09:00:00+07:00", "end": "1900-12-02T10:00:00+07:00"},
            "reschedule.start",
        ),
    ):
        visit = identified()
        with pytest.raises(BadVisitRequest) as refused:
            visit.set_outcome(code, note, reschedule)
        assert refused.value.field == field, (code, field)
        assert visit.state == "capturing"
    visit = identified()
    visit.cancel()
    with pytest.raises(WrongState):
        visit.start_item("finger:1", "s")
    tomorrow = {"start": "2026-12-02T09:00:00+07:00", "end": "2026-12-02T10:00:00+07:00"}
    visit.set_outcome("rescheduled", "keluarga minta besok", tomorrow, by="199001012015011002")
    assert visit.state == "ended"
    assert visit.outcome == {
        "code": "rescheduled",
        "note": "keluarga minta besok",
        "reschedule": tomorrow,
        "by": "199001012015011002",
    }


def test_a_new_appointment_may_not_start_before_the_kits_clock() -> None:
    """A dialog left open past the half hour it offered (or a clock behind the kit's) sends a
    start already gone: refused, naming the field and what the kit's clock says, in the
    appointment's own offset; the next half hour is taken."""
    for start, end in (
        ("2026-12-01T09:00:00+07:00", "2026-12-01T10:00:00+07:00"),  # the clock is seconds past it
        ("2026-12-01T01:59:00+00:00", "2026-12-01T03:00:00+00:00"),  # the same minute, in UTC
        ("2026-11-30T09:00:00+07:00", "2026-11-30T10:00:00+07:00"),  # yesterday
    ):
        visit = identified()
        with pytest.raises(PastAppointment) as refused:
            visit.set_outcome("rescheduled", None, {"start": start, "end": end})
        assert refused.value.field == "reschedule.start"
        offset = start[-6:]
        said = re.search(r"the kit's clock says (\S+)\)$", str(refused.value))
        assert said and said[1].endswith(offset), str(refused.value)  # in the appointment's offset
        assert dt.datetime.fromisoformat(said[1]) - dt.datetime(
            2026, 12, 1, 2, 0, tzinfo=dt.UTC
        ) < dt.timedelta(seconds=10), said[1]
        assert visit.state == "capturing"
    visit = identified()
    later = {"start": "2026-12-01T09:30:00+07:00", "end": "2026-12-01T10:30:00+07:00"}
    visit.set_outcome("rescheduled", None, later)
    assert visit.state == "ended" and visit.outcome["reschedule"] == later


def test_carry_on_after_a_cancel_goes_back_to_the_work_it_left() -> None:
    """A Cancel held by mistake: back to the review with every capture, to the item reached,
    or to the identity when none was recorded."""
    visit = in_review()
    visit.cancel()
    visit.carry_on()
    assert (visit.state, visit.current) == ("review", None)
    assert all(i.status == "captured" for i in visit.items)
    visit = identified()
    capture(visit, "finger:1")
    visit.start_item("finger:2", "s-2")
    visit.session_best("finger:2", "s-2", 30.0, False, ["press_harder"], ["min_score"])
    visit.cancel()
    visit.carry_on()
    # The item the cancel interrupted comes first, to retake (its session was stopped; its
    # best so far is in its history), before the items never taken.
    assert (visit.state, visit.current) == ("capturing", "finger:2")
    interrupted = visit.item("finger:2")
    assert (interrupted.status, interrupted.score, interrupted.session_id) == ("to_retake", None, None)
    assert interrupted.history[-1]["ended"] == "cancelled" and interrupted.history[-1]["score"] == 30.0
    visit.start_item("finger:2", "s-3")
    assert visit.item("finger:2").status == "capturing"
    visit = new_visit()
    visit.cancel()
    visit.carry_on()
    assert (visit.state, visit.current) == ("identity", None)
    visit.record_identity(["Sumiati"], "applicant")
    assert visit.state == "capturing"


def test_a_restart_resumes_with_captures_to_retake() -> None:
    visit = identified()
    for item in FINGERS[:9]:
        capture(visit, item, score=70.0 + int(item.split(":")[1]))
    visit.except_item("finger:10", "bandaged", True, BUDI)
    visit.start_item("iris:right", "s-iris")  # the power fails here
    saved = json.loads(json.dumps(visit.to_json()))
    back = Visit.from_json(saved, clock=Clock())
    assert back.to_json() == visit.to_json()
    back.resume()
    assert back.resumed and back.state == "capturing" and back.current == "iris:right"  # where it was
    statuses = [back.item(i).status for i in CAPTURE_ITEMS]
    assert statuses == ["to_retake"] * 9 + ["excepted", "to_retake", "pending", "pending"]
    assert back.item("finger:3").history[-1] == {
        "status": "captured",
        "score": 73.0,
        "passed": True,
        "attempts": 1,
        "exception": None,
        "ended": "restart",
        "at": back.updated_at,
    }
    assert back.item("finger:10").exception["reason"] == "bandaged"  # kept: it is in the database
    capture(back, "iris:right")
    assert back.current == "iris:left"  # never-taken items first ...
    capture(back, "iris:left")
    capture(back, "signature")
    assert back.current == "finger:1"  # ... then the ones to retake
    for item in FINGERS[:9]:
        capture(back, item)
    back.finish()
    assert back.state == "finished" and back.item("finger:1").attempts == 2


def test_finger_order_is_configurable_and_checked() -> None:
    order = [2, 3, 4, 5, 1, 7, 8, 9, 10, 6]
    visit = Visit.start("v", "o", BUDI, "lainnya", order, clock=Clock())
    assert [i.item for i in visit.items][:10] == [f"finger:{n}" for n in order]
    with pytest.raises(BadVisitRequest):
        Visit.start("v", "o", BUDI, "lainnya", [1, 1, 2, 3, 4, 5, 6, 7, 8, 9], clock=Clock())
