"""The performance targets of issue 8, as data, and the pure check of a run against them.

A target is met or missed by a margin; a target whose figures were not measured (a run
restricted with `--only` or `--clients`) is neither. Missing one is reported, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from benchmarks import clients
from benchmarks.figures import FLOORS, Results

Kind = Literal["cpu", "throughput", "import", "added_cpu", "added_wall"]


@dataclass(frozen=True)
class Target:
    """One requirement.

    `cpu`: the subject's CPU per request is at most `bound` times the baseline's.
    `throughput`: the subject's requests per second are at least `bound` times the baseline's.
    `import`: the subject's import takes at most `bound` ms more than the baseline's, or at
    most `bound` ms when there is no baseline.
    `added_cpu` / `added_wall`: the subject's CPU / wall time per request is at most `bound`
    µs more than the baseline's.
    """

    kind: Kind
    mode: str
    subject: str
    baseline: str | None
    bound: float
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        """Whether the observed figure must reach the requirement rather than stay under it."""
        return self.kind == "throughput"


CORE, LC, LITELLM = (
    clients.Core.name,
    clients.LangChainSelfHosted.name,
    clients.LiteLLMSelfHosted.name,
)
CHAT_OPENAI, HOSTED_VLLM = clients.LangChainOpenAI.name, clients.LiteLLMHostedVLLM.name
SHARED = clients.CoreShared.name

TARGETS: tuple[Target, ...] = (
    Target("cpu", "chat", CORE, FLOORS["chat"], 1.2),
    Target("cpu", "chat", LC, CHAT_OPENAI, 0.5),
    Target("cpu", "chat", LITELLM, HOSTED_VLLM, 0.8),
    Target("cpu", "stream", CORE, FLOORS["stream"], 1.5),
    Target("cpu", "stream", LC, CHAT_OPENAI, 0.5),
    Target("cpu", "stream", LITELLM, HOSTED_VLLM, 0.5),
    Target("throughput", "achat", CORE, FLOORS["achat"], 0.8),
    Target("cpu", "embed", CORE, FLOORS["embed"], 1.3),
    Target("import", "import", "selfhosted_core", None, 300),
    Target(
        "import",
        "import",
        "langchain_selfhosted",
        "langchain_core",
        100,
        "against a bare `import langchain_core`, which loads almost nothing",
    ),
    Target(
        "import",
        "import",
        "langchain_selfhosted",
        "langchain_core.language_models.chat_models",
        100,
        "against `langchain_core.language_models.chat_models`, which loads `BaseChatModel`: what"
        " every LangChain chat integration imports",
    ),
    # Issue 21: what sharing routing state through Redis on loopback adds per request.
    Target("added_cpu", "chat", SHARED, CORE, 150),
    Target("added_wall", "chat", SHARED, CORE, 1000),
)


@dataclass(frozen=True)
class Outcome:
    """A target against one run: observed and required figures (ratios, or ms for imports)."""

    target: Target
    observed: float
    required: float

    @property
    def shortfall(self) -> float:
        """How far the observed figure is on the wrong side of the requirement (<= 0: met)."""
        if self.target.higher_is_better:
            return self.required - self.observed
        return self.observed - self.required

    @property
    def met(self) -> bool:
        """Whether the requirement holds (exactly on it counts as met)."""
        return self.shortfall <= 0

    @property
    def relative(self) -> float:
        """The shortfall as a fraction of the requirement."""
        return self.shortfall / self.required


def outcome(target: Target, results: Results) -> Outcome | None:
    """The target against `results`, or None when a figure it needs was not measured."""
    if target.kind == "import":
        subject = results.import_timing(target.subject)
        baseline = None if target.baseline is None else results.import_timing(target.baseline)
        if subject is None or (target.baseline is not None and baseline is None):
            return None
        floor = 0.0 if baseline is None else baseline.seconds_median * 1000
        return Outcome(target, subject.seconds_median * 1000, floor + target.bound)
    assert target.baseline is not None, "only import targets stand alone"
    mine = results.find(target.subject, target.mode)
    theirs = results.find(target.baseline, target.mode)
    if mine is None or theirs is None:
        return None
    if target.kind == "added_cpu":
        return Outcome(target, (mine.cpu_median - theirs.cpu_median) * 1e6, target.bound)
    if target.kind == "added_wall":
        return Outcome(target, (mine.wall_median - theirs.wall_median) * 1e6, target.bound)
    if target.kind == "throughput":
        ratio = mine.requests_per_second / theirs.requests_per_second
    else:
        ratio = mine.cpu_median / theirs.cpu_median
    return Outcome(target, ratio, target.bound)


Checked = tuple[tuple[Target, Outcome | None], ...]


def check(results: Results, targets: tuple[Target, ...] = TARGETS) -> Checked:
    """Every target with its outcome against `results` (None: not measured), in order."""
    return tuple((target, outcome(target, results)) for target in targets)
