"""What every driver offers the kit, and what the streaming ones offer on top.

A `Driver` opens, closes and tells whether its device is still there; the daemon's
device slot needs nothing else. A camera that keeps its own stream alive (reopening it
when it stalls) is a `FrameStream`: the slot asks it for the live status, and the preview
subscribes to its frames. A signature pad is a `PenStream`: start, read what came, stop.
These are typing protocols, checked at run time with isinstance, so a driver declares
nothing but simply has the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from kitd.drivers.facts import DeviceFacts


@runtime_checkable
class Driver(Protocol):
    """One device: open it (saying what it is), close it, tell whether it is still there."""

    def open(self) -> DeviceFacts: ...

    def close(self) -> None: ...

    def is_present(self) -> bool: ...


@runtime_checkable
class FrameStream(Protocol):
    """A driver whose reader thread keeps frames coming and reopens the stream by itself."""

    @property
    def ended(self) -> str | None: ...

    def live_status(self) -> tuple[str, str, float]: ...

    def live_detail(self) -> dict[str, Any]: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def latest(self) -> Any: ...


@runtime_checkable
class PenStream(Protocol):
    """A pen device that streams samples between start() and stop()."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read_samples(self, timeout_s: float = ...) -> list[Any]: ...
