"""Figures of one arm's runs and their ratios to the baseline arm: pure functions of samples.

Prompt tokens prefilled come from the servers themselves: the change, over a run, of each
llama-server's `llamacpp:prompt_tokens_total` on `/metrics`, which counts the prompt tokens
it evaluated (tokens restored from its prompt cache are not evaluated, so not counted).
`llamacpp:prompt_tokens_cached_total` counts those restored instead, so the two add up to
every prompt token sent. `llamacpp:tokens_predicted_total` counts generated tokens: one per
request here, so its change says how many requests each replica served.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BASELINE",
    "ArmRun",
    "Summary",
    "baseline_of",
    "mean",
    "parse_prometheus",
    "percentile",
    "ratio",
    "summarise",
]

BASELINE = "least_in_flight"


def parse_prometheus(text: str) -> dict[str, float]:
    r"""The unlabelled samples of a Prometheus text exposition, by metric name.

    Args:
        text: A `/metrics` body.

    Returns:
        Name to value; comment lines and labelled samples are left out.

    Example:
        >>> parse_prometheus("# TYPE a counter\na 3\nb{x=\"1\"} 2\n")
        {'a': 3.0}
    """
    values: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        if "{" in name or not rest:
            continue
        try:
            values[name] = float(rest.split()[0])
        except ValueError:
            continue
    return values


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile, linearly interpolated between closest ranks (numpy's default).

    Args:
        values: The samples, in any order.
        fraction: From 0 (the minimum) to 1 (the maximum).

    Returns:
        The quantile; NaN for no values.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 0.9)
        10.0
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(value: float, baseline: float) -> float | None:
    """`value / baseline`, or None when the baseline is zero or not a number."""
    if baseline == 0 or math.isnan(baseline) or math.isnan(value):
        return None
    return value / baseline


@dataclass(frozen=True)
class ArmRun:
    """One pass of one arm over one workload, on its own fresh pair of servers.

    Attributes:
        arm: The arm's name.
        workload: The workload's name.
        rep: Which repetition (from 0).
        ttfts: Seconds from sending each request to its first content delta, in dispatch order.
        totals: Seconds from sending each request to the end of its stream.
        wall: Seconds from the first request sent to the last one finished.
        prefilled: Prompt tokens each replica evaluated during the pass.
        served: Requests each replica served during the pass (tokens it generated).
        cached: Prompt tokens each replica took from its prompt cache during the pass.
        load: The machine's 1-minute load average when the pass started.
        ms_per_token: Each replica's prefill cost as calibrated before the pass.
        errors: Requests that failed, as text (none in a good run).
    """

    arm: str
    workload: str
    rep: int
    ttfts: tuple[float, ...]
    totals: tuple[float, ...]
    wall: float
    prefilled: tuple[int, ...]
    served: tuple[int, ...]
    ms_per_token: tuple[float, ...]
    cached: tuple[int, ...] = ()
    load: float = math.nan
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """An arm's runs over one workload, pooled over repetitions.

    Attributes:
        arm: The arm's name.
        workload: The workload's name.
        runs: How many passes were pooled.
        requests: Requests answered, over all passes.
        prefilled: Prompt tokens evaluated per pass (mean over passes), both replicas.
        cached: Prompt tokens taken from the prompt caches per pass (mean), both replicas.
        ttft_mean: Mean time to first token over every request, seconds.
        ttft_p90: Its 90th percentile, seconds.
        wall: Seconds per pass (mean over passes).
        served: Requests per replica per pass (mean over passes).
        errors: Failed requests over all passes.
        ms_per_token: The servers' calibrated prefill cost (mean over passes and servers).
        load: The load average at the passes' starts (mean).
    """

    arm: str
    workload: str
    runs: int
    requests: int
    prefilled: float
    cached: float
    ttft_mean: float
    ttft_p90: float
    wall: float
    served: tuple[float, ...]
    errors: int
    ms_per_token: float = math.nan
    load: float = math.nan

    def figure(self, name: str) -> float:
        """One figure by name: `prefilled`, `ttft_mean`, `ttft_p90` or `wall`."""
        figures = {
            "prefilled": self.prefilled,
            "ttft_mean": self.ttft_mean,
            "ttft_p90": self.ttft_p90,
            "wall": self.wall,
        }
        return figures[name]

    def ratios(self, baseline: Summary) -> dict[str, float | None]:
        """Each figure divided by the baseline's."""
        names = ("prefilled", "ttft_mean", "ttft_p90", "wall")
        return {name: ratio(self.figure(name), baseline.figure(name)) for name in names}


def summarise(runs: Iterable[ArmRun]) -> dict[tuple[str, str], Summary]:
    """Pool the runs by ``(workload, arm)``, keeping the order in which pairs first appear."""
    groups: dict[tuple[str, str], list[ArmRun]] = {}
    for run in runs:
        groups.setdefault((run.workload, run.arm), []).append(run)
    out: dict[tuple[str, str], Summary] = {}
    for (workload, arm), group in groups.items():
        # A failed request has no TTFT (NaN): it is counted in `errors`, not in the figures.
        ttfts = [t for run in group for t in run.ttfts if not math.isnan(t)]
        replicas = max(len(run.served) for run in group)
        served = tuple(
            mean([run.served[i] if i < len(run.served) else 0 for run in group])
            for i in range(replicas)
        )
        out[workload, arm] = Summary(
            arm=arm,
            workload=workload,
            runs=len(group),
            requests=len(ttfts),
            prefilled=mean([sum(run.prefilled) for run in group]),
            cached=mean([sum(run.cached) for run in group]),
            ttft_mean=mean(ttfts),
            ttft_p90=percentile(ttfts, 0.9),
            wall=mean([run.wall for run in group]),
            served=served,
            errors=sum(len(run.errors) for run in group),
            ms_per_token=mean([cost for run in group for cost in run.ms_per_token]),
            load=mean([run.load for run in group]),
        )
    return out


def baseline_of(summaries: Mapping[tuple[str, str], Summary], workload: str) -> Summary | None:
    """The baseline arm's summary for `workload`, if it ran."""
    return summaries.get((workload, BASELINE))
