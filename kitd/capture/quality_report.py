"""The report every quality assessor returns: score, metrics, verdict and feedback codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


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
