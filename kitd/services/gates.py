"""Each modality's quality gate as the configuration sets it: the session policy and the assessor.

The capture layer takes values (a SessionPolicy, an `assess` function); this is where the
kit's configuration becomes those values, once, for the daemon and for kitctl alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kitd.capture.fingerprint_quality import assess_fingerprint
from kitd.capture.iris_quality import IrisReport, assess_iris
from kitd.capture.session import SessionPolicy
from kitd.config import KitConfig


def gate_policy(config: KitConfig, modality: str, timeout_s: float | None = None) -> SessionPolicy:
    """A modality's gate from its config keys (`MODALITY.consecutive_passes`, `.keep_best`,
    `.max_attempts` with 0 for no limit, `.capture_timeout_s` unless `timeout_s` is given)."""
    attempts = int(config[f"{modality}.max_attempts"])
    return SessionPolicy(
        consecutive_passes=int(config[f"{modality}.consecutive_passes"]),
        keep_best=int(config[f"{modality}.keep_best"]),
        timeout_s=float(timeout_s or config[f"{modality}.capture_timeout_s"]),
        max_attempts=attempts or None,
    )


def fingerprint_assessor(config: KitConfig) -> Callable[[np.ndarray], Any]:
    """assess(frame) with the configured resolution and thresholds."""
    ppi = float(config["fingerprint.ppi"])
    thresholds = config.thresholds("fingerprint") or None
    return lambda frame: assess_fingerprint(frame, ppi, thresholds)


def iris_assessor(config: KitConfig) -> Callable[[Any], IrisReport]:
    """assess(frame) of a camera Frame with the configured `[quality.iris]` thresholds.

    The daemon does not use this for a camera that has a preview: the preview's overlay
    judges each frame once for the preview and the gate alike (kitd.services.iris_feed).
    """
    thresholds = config.thresholds("iris") or None
    return lambda frame: assess_iris(frame.image, thresholds)
