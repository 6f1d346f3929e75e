"""A fingerprint session retries a press after a device error, and fails only on what persists
(issue 17, defect 6d)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from kitd.capture import fingerprint
from kitd.capture.session import CAPTURED, SessionPolicy
from kitd.errors import DeviceTimeout, ProtocolError


class FlakyReader:
    """A reader whose presses raise the scripted errors first, then give a frame."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def finger_present(self) -> bool:
        return True

    def capture_frame(self) -> np.ndarray:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return np.zeros((2, 2), np.uint8)


def passing(_frame: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(score=90.0, passed=True, failed_checks=[], feedback=[])


def session(reader: FlakyReader):  # noqa: ANN201
    return fingerprint.run_fingerprint_session(
        reader, SessionPolicy(timeout_s=10.0), passing, 0.0, retry_device_errors=True, device="fp"
    )


def test_errors_short_of_the_limit_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "DEVICE_ERROR_PAUSE_S", 0.0)
    errors = [DeviceTimeout("no answer"), ProtocolError("bad reply")][: fingerprint.MAX_DEVICE_ERRORS - 1]
    reader = FlakyReader(errors)
    assert session(reader).state == CAPTURED
    assert reader.calls == len(errors) + 1


def test_the_limit_of_consecutive_errors_fails_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "DEVICE_ERROR_PAUSE_S", 0.0)
    reader = FlakyReader([DeviceTimeout(f"no answer {i}") for i in range(fingerprint.MAX_DEVICE_ERRORS)])
    with pytest.raises(DeviceTimeout, match=f"no answer {fingerprint.MAX_DEVICE_ERRORS - 1}"):
        session(reader)
    assert reader.calls == fingerprint.MAX_DEVICE_ERRORS


def test_a_direct_capture_fails_at_the_first_error() -> None:
    reader = FlakyReader([DeviceTimeout("no answer")])
    with pytest.raises(DeviceTimeout):
        fingerprint.take_fingerprint(reader, SessionPolicy(timeout_s=10.0), passing, poll_interval_s=0.0)
