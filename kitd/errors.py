"""The kit's own error types: what drivers raise and what the daemon and CLI report, and how a
refused value is quoted in their one-line messages.

Callers never see a pyusb, pyserial or termios exception; a driver's transport maps
them onto these at the edge.
"""

from __future__ import annotations

from typing import Any

# The one root, shared with the field laptop's formats (a bad signature is a KitError too).
from kitformats.errors import KitError as KitError


class ConfigError(KitError):
    """A configuration value, argument or device URI is wrong (names what was wrong)."""


class DeviceError(KitError):
    """Something went wrong talking to a device."""


class DeviceGone(DeviceError):
    """The device vanished: unplugged, powered off, or never there (ENODEV)."""


class DeviceTimeout(DeviceError):
    """The device did not answer within the allowed time (ETIMEDOUT)."""


class NoFinger(DeviceTimeout):
    """No finger (or frame) arrived within the capture's timeout."""


class NoPenInput(DeviceTimeout):
    """No pen packet arrived from the signature pad within the recording's time."""


class ProtocolError(DeviceError):
    """A malformed reply, an endpoint STALL, or a failed transfer (EIO, EPIPE)."""


class DeviceBusy(DeviceError):
    """The device is held by another capture or by a running daemon."""


class QualityGateFailed(KitError):
    """No capture passed the quality gate; carries the best one's score and failing checks."""

    def __init__(self, message: str, *, score: float, failed_checks: list[str], feedback: list[str]) -> None:
        super().__init__(message)
        self.score = score
        self.failed_checks = failed_checks
        self.feedback = feedback


class EndOfStream(DeviceError):
    """A replayed file or image sequence has no more frames (not a fault: nothing to reopen)."""


class NotSteady(QualityGateFailed):
    """Captures passed the gate, but never the `consecutive_passes` in a row it needs in time."""

    def __init__(
        self,
        message: str,
        *,
        score: float,
        feedback: list[str],
        passes: int,
        consecutive_passes: int,
    ) -> None:
        super().__init__(message, score=score, failed_checks=[], feedback=feedback)
        self.passes = passes
        self.consecutive_passes = consecutive_passes


def shown_value(value: Any) -> str:
    """A refused value as the message quotes it: a number of hundreds of digits or a long
    string is cut (the message is one line for a person)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"
