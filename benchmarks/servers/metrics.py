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
    "overlapping",
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


def overlapping(
    starts: Sequence[float], durations: Sequence[float], replicas: Sequence[str]
) -> int:
    """How many requests were, at some moment, in flight on one replica with another.

    Args:
        starts: Each request's start.
        durations: Each request's duration (NaN: it failed, and is left out).
        replicas: Where each request went.

    Returns:
        The count of requests whose interval overlaps another's on the same replica.

    Example:
        >>> overlapping([0.0, 1.0, 5.0], [2.0, 2.0, 1.0], ["a", "a", "a"])
        2
    """
    spans = [
        (start, start + duration, replica)
        for start, duration, replica in zip(starts, durations, replicas, strict=True)
        if not math.isnan(duration)
    ]
    return sum(
        any(
            j != i and other[2] == span[2] and other[0] < span[1] and span[0] < other[1]
            for j, other in enumerate(spans)
        )
        for i, span in enumerate(spans)
    )


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
        starts: Seconds from the pass's start to each request's send, in dispatch order.
        replicas: The replica that served each request, as its client reported it.
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
    starts: tuple[float, ...] = ()
    replicas: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def doubled(self) -> int | None:
        """How many requests shared their replica with another request at some moment.

        Two requests on one `-t 1` replica share its core while the other replica may idle:
        the placement, not the machine, is then what slows them. None when the client did not
        report where each request went.
        """
        answered = [i for i, total in enumerate(self.totals) if not math.isnan(total)]
        if len(self.starts) != len(self.totals) or len(self.replicas) != len(self.totals):
            return None
        if not all(self.replicas[i] for i in answered):
            return None
        return overlapping(self.starts, self.totals, self.replicas)


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
        doubled: Requests per pass that shared a replica with another at some moment (mean;
            NaN when a client did not say where its requests went).
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
    doubled: float = math.nan

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
        doubled = [run.doubled for run in group]
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
            doubled=math.nan if None in doubled else mean([d for d in doubled if d is not None]),
        )
    return out


def baseline_of(summaries: Mapping[tuple[str, str], Summary], workload: str) -> Summary | None:
    """The baseline arm's summary for `workload`, if it ran."""
    return summaries.get((workload, BASELINE))
