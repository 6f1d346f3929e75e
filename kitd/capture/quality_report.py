"""The report every quality assessor returns: score, metrics, verdict and feedback codes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar


@dataclass
class QualityReport:
    """What an assessor found; ``to_json()`` is the CLI/API form.

    A modality's report subclasses this and names its feedback messages
    (code -> (Bahasa Indonesia, English)) in ``FEEDBACK``.
    """

    FEEDBACK: ClassVar[dict[str, tuple[str, str]]] = {}

    score: float
    metrics: dict[str, float]
    passed: bool
    failed_checks: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "score": self.score,
            "passed": self.passed,
            "metrics": dict(self.metrics),
            "feedback": list(self.feedback),
        }

    def messages(self, language: str = "id") -> list[str]:
        """The feedback as officer-facing sentences (``"id"`` or ``"en"``)."""
        index = 0 if language == "id" else 1
        return [self.FEEDBACK[code][index] for code in self.feedback]


def merge_thresholds(
    defaults: Mapping[str, float], overrides: Mapping[str, float] | None, modality: str
) -> dict[str, float]:
    """The defaults with `overrides` over them; ValueError naming any unknown key, so that a
    typo in the config does not silently keep a default."""
    merged = dict(defaults)
    if overrides:
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise ValueError(f"unknown {modality} quality threshold(s): {', '.join(unknown)}")
        merged.update({k: float(v) for k, v in overrides.items()})
    return merged


R = TypeVar("R", bound=QualityReport)


def judge(
    report_type: type[R],
    score: float,
    metrics: dict[str, float],
    codes: list[str],
    thresholds: Mapping[str, float],
    closest_to_failing: Callable[[dict[str, float], Mapping[str, float]], str],
) -> R:
    """The verdict: the failing checks' codes, and `min_score` when the score is too low.

    A poor score with no single check failing still names the check closest to failing,
    so the officer has something to try.
    """
    failed_checks = list(codes)
    if score < thresholds["min_score"]:
        failed_checks.append("min_score")
        if not codes:
            codes = [closest_to_failing(metrics, thresholds)]
    return report_type(
        score=score, metrics=metrics, passed=not failed_checks, failed_checks=failed_checks, feedback=codes
    )
