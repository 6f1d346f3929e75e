"""What an opened device says about itself, in the shape `/api/v1/devices` reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DeviceFacts:
    """Identity of an opened device: model, serial and firmware when known, kind-specific detail."""

    model: str
    serial: str | None
    firmware: str | None
    detail: dict[str, Any]
