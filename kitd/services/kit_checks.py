"""The kit's diagnostics catalogue: every check, in the order a technician reads them.

Its one job: join the devices' checks (one set per configured device, by its kind) with the
unit's and the data's, so that the daemon, the pre-visit check and the tests run one list.
"""

from __future__ import annotations

from typing import Any

from kitd.services.data_checks import DATA_CHECKS
from kitd.services.device_checks import device_checks
from kitd.services.diagnostics import Check
from kitd.services.unit_checks import UNIT_CHECKS


def kit_checks(kit: Any) -> list[Check]:
    """Devices first (what fails most in the field), then the unit, then security and data."""
    checks: list[Check] = []
    for slot in kit.slots.values():
        checks.extend(device_checks(slot))
    return [*checks, *UNIT_CHECKS, *DATA_CHECKS]
