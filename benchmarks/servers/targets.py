"""The targets of issue 18 for routing across real servers, as data, and the pure check.

Every target bounds a ratio from above: the subject arm's figure over the baseline arm's
(`least_in_flight`) on one workload. A target whose arms did not both run is not measured.
Missing one is reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from benchmarks.servers.metrics import BASELINE, Summary, ratio

__all__ = ["TARGETS", "Checked", "Outcome", "ServerTarget", "check", "outcome"]

Figure = Literal["prefilled", "ttft_mean", "ttft_p90", "wall"]
FIGURE_WORDS: dict[str, str] = {
    "prefilled": "prompt tokens prefilled",
    "ttft_mean": "mean TTFT",
    "ttft_p90": "p90 TTFT",
    "wall": "wall time",
}


@dataclass(frozen=True)
class ServerTarget:
    """The subject's `figure` on `workload` is at most `bound` times the baseline's."""

    workload: str
    figure: Figure
    bound: float
    subject: str = "affinity"
    baseline: str = BASELINE
    note: str = ""

    def describe(self) -> str:
        """The target in words."""
        return (
            f"{self.workload}: {self.subject} {FIGURE_WORDS[self.figure]} "
            f"\N{LESS-THAN OR EQUAL TO} {self.bound:g}\N{MULTIPLICATION SIGN} {self.baseline}"
        )


TARGETS: tuple[ServerTarget, ...] = (
    ServerTarget("shared", "prefilled", 0.55, note="the prompt cache is found again"),
    ServerTarget("shared", "ttft_mean", 0.7, note="and that shows in time to first token"),
    ServerTarget("distinct", "ttft_mean", 1.05, note="nothing to gain costs nothing"),
    ServerTarget("distinct", "wall", 1.05, note="nothing to gain costs nothing"),
)


@dataclass(frozen=True)
class Outcome:
    """A target against one run: the observed ratio and the bound."""

    target: ServerTarget
    observed: float
    required: float

    @property
    def shortfall(self) -> float:
        """How far the observed ratio is over the bound (<= 0: met)."""
        return self.observed - self.required

    @property
    def met(self) -> bool:
        """Whether the bound holds (exactly on it counts as met)."""
        return self.shortfall <= 0

    @property
    def relative(self) -> float:
        """The shortfall as a fraction of the bound."""
        return self.shortfall / self.required


Checked = tuple[tuple[ServerTarget, Outcome | None], ...]


def outcome(target: ServerTarget, summaries: Mapping[tuple[str, str], Summary]) -> Outcome | None:
    """The target against `summaries`, or None when either arm did not run on its workload."""
    mine = summaries.get((target.workload, target.subject))
    theirs = summaries.get((target.workload, target.baseline))
    if mine is None or theirs is None:
        return None
    observed = ratio(mine.figure(target.figure), theirs.figure(target.figure))
    return None if observed is None else Outcome(target, observed, target.bound)


def check(
    summaries: Mapping[tuple[str, str], Summary], targets: tuple[ServerTarget, ...] = TARGETS
) -> Checked:
    """Every target with its outcome (None: not measured), in order."""
    return tuple((target, outcome(target, summaries)) for target in targets)
