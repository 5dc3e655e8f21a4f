"""What compression did: tokens before and after each stage."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CompressionReport", "StageReport"]


@dataclass(frozen=True, slots=True)
class StageReport:
    """One stage's effect. A skipped stage (failed, or below its threshold) saved nothing."""

    name: str
    tokens_before: int
    tokens_after: int
    skipped: bool = False
    error: str | None = None

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after


@dataclass(frozen=True, slots=True)
class CompressionReport:
    """The stages in the order they ran; ``estimated`` when counts were scaled from a sample."""

    stages: list[StageReport]
    estimated: bool = False

    @property
    def tokens_before(self) -> int:
        return self.stages[0].tokens_before if self.stages else 0

    @property
    def tokens_after(self) -> int:
        return self.stages[-1].tokens_after if self.stages else 0

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after

    def stage(self, name: str) -> StageReport | None:
        """The report of the stage called ``name``, if it was on."""
        return next((s for s in self.stages if s.name == name), None)
