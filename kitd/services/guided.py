"""A guided test's parts: its steps, its state, and what its procedure drives it through.

Its one job: the vocabulary of the guided tests a technician runs with the kit (issue 31): a
:class:`Step` (``press`` a button, ``confirm`` what was seen or heard, ``touch`` a spot of the
pad, ``draw`` on it), each ``waiting``, ``done``, ``failed`` or ``skipped`` with what it
measured; a :class:`GuidedTest` (its steps, the one waiting now, its state, its finding) in the
shape the API answers and the ``guided`` event carries; the :class:`Guide` a test's procedure
(kitd.services.guided_panel, guided_pad) moves its steps through and asks the technician's
answers of; and :class:`StepFailed`, which ends a test on a failed step with what to do.
Running one test at a time, its time limit and storing its finding are kitd.services.guided_desk's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from kitd.errors import KitError
from kitd.services.diagnostics import Words

TESTS = ("panel", "pad")
STEP_KINDS = ("press", "confirm", "touch", "draw")
# A step's status.
WAITING, DONE, STEP_FAILED, SKIPPED = "waiting", "done", "failed", "skipped"
# A test's state: running, then how it ended.
RUNNING, PASSED, FAILED, TIMED_OUT, CANCELLED = "running", "passed", "failed", "timed_out", "cancelled"
STATES = (RUNNING, PASSED, FAILED, TIMED_OUT, CANCELLED)


class GuidedRefused(KitError):
    """A guided test that cannot start or be answered now: the HTTP status and the error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Step:
    """One step of a guided test, as the technician sees it."""

    id: str
    kind: str
    prompt: Words
    values: dict[str, Any] = field(default_factory=dict)
    status: str = WAITING
    # What it means when the time limit passes while this step waits: the finding's status and
    # what to do (a button never read is the button's fault; a question never answered is not).
    late: tuple[str, Words] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt.to_json(),
            "status": self.status,
            "values": dict(self.values),
        }


class StepFailed(Exception):
    """Raised by a procedure: ``step`` failed, and ``message`` says what to do about it."""

    def __init__(self, step: Step, message: Words) -> None:
        super().__init__(message.en)
        self.step = step
        self.message = message


@dataclass
class GuidedTest:
    """One guided test: what the API answers and the ``guided`` event carries."""

    id: str
    test: str
    device: str
    steps: list[Step]
    started_at: str
    time_limit_s: float
    actor: str
    state: str = RUNNING
    current: str | None = None
    finding: dict[str, Any] | None = None
    run_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    # Bumped on every change; the confirm endpoint waits for the answer to have been taken.
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # The confirm step waiting for the technician's answer, and where the answer goes.
    awaiting: tuple[str, asyncio.Future[bool]] | None = None

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "guided_id": self.id,
            "test": self.test,
            "device": self.device,
            "state": self.state,
            "steps": [s.to_json() for s in self.steps],
            "current": self.current,
            "finding": self.finding,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "time_limit_s": self.time_limit_s,
        }


Publish = Callable[[GuidedTest, dict[str, Any] | None], None]


class Guide:
    """What a procedure moves its test's steps through; every change is published."""

    def __init__(self, test: GuidedTest, publish: Publish) -> None:
        self.test = test
        self._publish = publish

    def step(self, step_id: str) -> Step:
        return self.test.step(step_id)

    def begin(self, step: Step) -> None:
        """``step`` is the one waiting now."""
        self.test.current = step.id
        self.changed()

    def done(self, step: Step, values: dict[str, Any] | None = None) -> None:
        step.values.update(values or {})
        step.status = DONE
        self.changed()

    def fail(self, step: Step, message: Words, values: dict[str, Any] | None = None) -> NoReturn:
        """``step`` failed: the test ends, its finding failed with ``message``."""
        step.values.update(values or {})
        step.status = STEP_FAILED
        raise StepFailed(step, message)

    def changed(self, ink: dict[str, Any] | None = None) -> None:
        """Say the test's state again (a value changed); ``ink``: the pen's new points."""
        self._publish(self.test, ink)

    async def answer(self, step: Step, watch: Callable[[], None] | None = None) -> bool:
        """The technician's answer to the confirm step ``step`` (True: seen or heard); ``watch``
        is called twice a second meanwhile, and may fail the step (the device went away)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.test.awaiting = (step.id, future)
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=0.5)
                if done:
                    return future.result()
                if watch is not None:
                    watch()
        finally:
            self.test.awaiting = None
            future.cancel()


class Procedure(Protocol):
    """One kind of guided test: its steps, how they are met, and what the measures say."""

    test: str
    device: str
    check_id: str

    def steps(self) -> list[Step]: ...

    def take(self) -> None:
        """Take the device at once, as the test starts (before anything else can use it)."""

    async def run(self, guide: Guide) -> None:
        """Drive every step to done, or raise StepFailed; cancelled when the test is cancelled or
        its time is up."""

    async def release(self) -> None:
        """Give the device back, however the test ended (even cancelled before ``run`` began)."""

    def summary(self) -> dict[str, Any]:
        """What the test measured, for its finding's values (never the pen's points)."""

    def judge(self) -> tuple[str, Words | None]:
        """Once every step is done: the finding's status and, not ok, what to do."""
