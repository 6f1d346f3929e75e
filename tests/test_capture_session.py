"""The capture session's logic with scripted scores and a scripted clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kitd.capture.session import CaptureSession, SessionPolicy


@dataclass
class Report:
    score: float
    passed: bool
    failed_checks: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)


def scripted(scores: list[float], threshold: float = 50) -> list[Report]:
    return [Report(s, s >= threshold, [] if s >= threshold else ["contrast"]) for s in scores]


def run(policy: SessionPolicy, reports: list[Report], step_s: float = 1.0) -> CaptureSession:
    session = CaptureSession(policy, started_at=0.0)
    for i, report in enumerate(reports):
        session.offer(report, payload=f"frame{i + 1}", now=(i + 1) * step_s)
        if session.ended:
            break
    return session


def test_auto_capture_exactly_at_the_kth_consecutive_pass() -> None:
    policy = SessionPolicy(consecutive_passes=3, keep_best=5, timeout_s=100)
    session = run(policy, scripted([60, 70, 20, 55, 65, 58, 90]))
    assert session.state == "captured"
    assert session.attempts == 6  # passes at 4, 5, 6 (the pass streak at 1-2 was broken by 3)
    assert session.result is not None and session.result.payload == "frame2"  # best passing kept
    assert not session.forced and session.ended_by == "passes"


def test_first_pass_ends_with_k_of_one() -> None:
    session = run(SessionPolicy(consecutive_passes=1), scripted([10, 30, 51, 99]))
    assert session.state == "captured" and session.attempts == 3
    assert session.result.payload == "frame3"


def test_best_of_n_keeps_the_n_best_in_order() -> None:
    session = run(
        SessionPolicy(consecutive_passes=99, keep_best=3, timeout_s=100), scripted([10, 40, 30, 45, 5, 45])
    )
    assert [c.score for c in session.best] == [45, 45, 40]
    assert [c.payload for c in session.best] == ["frame4", "frame6", "frame2"]  # ties: earlier first


def test_forced_on_timeout_with_reasons() -> None:
    policy = SessionPolicy(consecutive_passes=2, keep_best=2, timeout_s=3.5)
    session = run(policy, scripted([10, 40, 30, 20, 45]))
    assert session.state == "forced" and session.forced
    assert session.attempts == 4  # the frame at t=4 s found the time run out
    assert session.result.payload == "frame2"
    assert session.reasons[0] == "no capture passed within 3.5 s"
    assert "contrast" in session.reasons and session.ended_by == "time_limit"


def test_timeout_without_frames_fails_and_tick_ends_it() -> None:
    session = CaptureSession(SessionPolicy(timeout_s=2), started_at=10.0)
    assert session.tick(11.0) == "running" and session.ended_by is None
    assert session.tick(12.0) == "failed" and session.ended_by == "time_limit"
    assert session.result is None and session.reasons == ["no capture passed within 2 s"]


def test_forced_on_attempt_limit() -> None:
    session = run(
        SessionPolicy(consecutive_passes=1, max_attempts=3, timeout_s=100), scripted([10, 20, 15, 90])
    )
    assert session.state == "forced" and session.attempts == 3
    assert session.result.payload == "frame2"
    assert session.reasons[0] == "no capture passed in 3 attempts" and session.ended_by == "attempt_limit"


def test_confirm_takes_the_best_and_is_honest_when_it_fails() -> None:
    passing = run(SessionPolicy(consecutive_passes=5, timeout_s=100), scripted([60, 20]))
    assert passing.confirm() == "confirmed" and passing.result.payload == "frame1"
    failing = run(SessionPolicy(consecutive_passes=5, timeout_s=100), scripted([30, 20]))
    assert failing.confirm() == "forced" and failing.result.payload == "frame1"
    assert passing.ended_by == failing.ended_by == "officer"
    assert failing.reasons == ["accepted by the officer without passing", "contrast"]
    with pytest.raises(ValueError):
        CaptureSession(SessionPolicy(), started_at=0).confirm()


def test_cancel_ends_without_result_and_later_frames_are_ignored() -> None:
    session = CaptureSession(SessionPolicy(timeout_s=100), started_at=0)
    session.offer(Report(20, False), "frame1", now=1)
    assert session.cancel() == "cancelled"
    assert session.offer(Report(99, True), "frame2", now=2) == "cancelled"
    assert session.result is None and session.attempts == 1 and session.ended_by == "cancel"


def test_policy_rejects_nonsense() -> None:
    for bad in ({"consecutive_passes": 0}, {"keep_best": 0}, {"timeout_s": 0}, {"max_attempts": 0}):
        with pytest.raises(ValueError):
            SessionPolicy(**bad)


def test_prefer_latest_keeps_the_newest_for_a_growing_capture() -> None:
    policy = SessionPolicy(consecutive_passes=10**6, keep_best=1, timeout_s=100, prefer_latest=True)
    session = run(policy, scripted([80, 90, 40, 70]))
    assert [c.payload for c in session.best] == ["frame4"]
    assert session.confirm() == "confirmed" and session.result.payload == "frame4"
    assert run(policy, scripted([80, 30])).confirm() == "forced"  # the latest fails: flagged


def test_category_overrides_give_more_time_and_attempts_not_lower_thresholds() -> None:
    from kitd.config import parse_config
    from kitd.services.sessions import category_policy

    base = SessionPolicy(consecutive_passes=2, keep_best=3, timeout_s=10, max_attempts=5)
    config = parse_config("[categories.odgj]\ntime_factor = 4.0\n")
    assert category_policy(base, config, "lainnya") == base
    lansia = category_policy(base, config, "lansia")
    assert (lansia.timeout_s, lansia.max_attempts) == (20, 10)
    odgj = category_policy(base, config, "odgj")
    assert (odgj.timeout_s, odgj.max_attempts) == (40, 15)  # configured time, default attempts
    assert odgj.consecutive_passes == 2 and odgj.keep_best == 3
    unlimited = category_policy(SessionPolicy(timeout_s=10), config, "disabilitas")
    assert unlimited.max_attempts is None


def test_passes_never_k_in_a_row_say_so_and_the_gate_answers_not_steady() -> None:
    from kitd.capture.gate import gate_outcome
    from kitd.errors import NotSteady

    policy = SessionPolicy(consecutive_passes=2, keep_best=2, timeout_s=4.5)
    session = run(policy, scripted([60, 10, 70, 20, 65]))
    assert session.state == "forced" and session.passes == 3
    assert session.reasons[0] == "3 captures passed but never 2 in a row within 4.5 s"
    assert session.ended_by == "time_limit"  # the words differ; what ended it does not
    with pytest.raises(NotSteady, match=r"^3 presses passed but never 2 in a row within 4\.5 s") as raised:
        gate_outcome(session, force=False)
    assert raised.value.passes == 3 and raised.value.consecutive_passes == 2
    assert gate_outcome(session, force=True).forced


def test_a_session_that_needs_a_confirm_says_it_was_not_confirmed() -> None:
    policy = SessionPolicy(consecutive_passes=1, timeout_s=2.5, prefer_latest=True, needs_confirm=True)
    session = run(policy, scripted([80, 90, 95]))
    assert session.state == "forced"
    assert session.reasons == ["not confirmed by the officer within 2.5 s"]
    failing = run(policy, scripted([10, 20, 30]))
    assert failing.reasons[0] == "no capture passed within 2.5 s"


def test_the_api_documents_every_cause_a_session_can_end_by() -> None:
    from kitd.capture.session import ENDED_BY
    from kitd.schemas import SESSION_ENDED_BY

    # The live session adds "device": its device failed under it.
    assert SESSION_ENDED_BY == [*ENDED_BY, "device"]


def test_a_replay_that_runs_out_ends_the_session_by_its_end() -> None:
    from kitd.capture.gate import run_gate
    from kitd.errors import EndOfStream

    frames = iter(scripted([20, 30]))

    def next_report() -> Report:
        report = next(frames, None)
        if report is None:
            raise EndOfStream("the replay ended")
        return report

    session = run_gate(
        SessionPolicy(consecutive_passes=2, timeout_s=100), next_report, lambda r: r, clock=lambda: 0
    )
    assert session.state == "forced" and session.ended_by == "end_of_input"
    assert session.reasons[0] == "no capture passed before the replay ended"
