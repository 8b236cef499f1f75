from __future__ import annotations

import math

import pytest

from benchmarks.servers.metrics import (
    ArmRun,
    mean,
    overlapping,
    parse_prometheus,
    percentile,
    ratio,
    summarise,
)


def arm_run(arm: str, workload: str, rep: int, ttfts: tuple[float, ...], **kw: object) -> ArmRun:
    fields: dict[str, object] = {
        "totals": ttfts,
        "wall": 10.0,
        "prefilled": (1000, 500),
        "served": (3, 2),
        "ms_per_token": (2.5, 2.6),
    }
    fields.update(kw)
    return ArmRun(arm, workload, rep, ttfts, **fields)  # type: ignore[arg-type]


def test_prometheus_text_parsed_to_unlabelled_samples() -> None:
    text = (
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
        "# TYPE llamacpp:prompt_tokens_total counter\n"
        "llamacpp:prompt_tokens_total 1534\n"
        "llamacpp:tokens_predicted_total 7\n"
        'vllm:num_requests_running{model_name="x"} 2\n'
        "llamacpp:prompt_seconds_total 3.5e0\n"
        "broken\n"
    )
    assert parse_prometheus(text) == {
        "llamacpp:prompt_tokens_total": 1534.0,
        "llamacpp:tokens_predicted_total": 7.0,
        "llamacpp:prompt_seconds_total": 3.5,
    }


def test_mean_and_p90() -> None:
    assert mean([1.0, 2.0, 6.0]) == 3.0
    assert math.isnan(mean([]))
    values = [float(v) for v in range(1, 12)]
    assert percentile(values, 0.9) == 10.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 9.0], 0.0) == 1.0
    assert percentile([1.0, 9.0], 1.0) == 9.0
    assert math.isnan(percentile([], 0.9))


def test_ratio_refuses_nothing_to_divide_by() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(math.nan, 1.0) is None
    assert ratio(1.0, math.nan) is None


def test_runs_pooled_by_workload_and_arm() -> None:
    runs = [
        arm_run("affinity", "shared", 0, (1.0, 2.0), wall=8.0, prefilled=(600, 400)),
        arm_run("least_in_flight", "shared", 0, (2.0, 4.0), wall=12.0, prefilled=(1000, 1000)),
        arm_run("affinity", "shared", 1, (3.0, 4.0), wall=12.0, prefilled=(800, 200)),
        arm_run("least_in_flight", "shared", 1, (4.0, 6.0), wall=8.0, prefilled=(900, 1100)),
        arm_run("affinity", "distinct", 0, (5.0,), served=(1, 0), errors=("boom",)),
    ]
    summaries = summarise(runs)
    assert list(summaries) == [
        ("shared", "affinity"),
        ("shared", "least_in_flight"),
        ("distinct", "affinity"),
    ]
    mine, theirs = summaries["shared", "affinity"], summaries["shared", "least_in_flight"]
    assert (mine.runs, mine.requests) == (2, 4)
    assert mine.prefilled == 1000.0
    assert mine.ttft_mean == 2.5
    assert mine.ttft_p90 == pytest.approx(3.7)
    assert mine.wall == 10.0
    assert mine.served == (3.0, 2.0)
    assert mine.errors == 0
    assert summaries["distinct", "affinity"].errors == 1
    ratios = mine.ratios(theirs)
    assert ratios["prefilled"] == 0.5
    assert ratios["ttft_mean"] == pytest.approx(2.5 / 4.0)
    assert ratios["wall"] == 1.0


def test_requests_sharing_a_replica_are_counted() -> None:
    # a and b overlap on r0; c is alone on r1; d follows a and b on r0 without overlap.
    starts = [0.0, 1.0, 1.0, 5.0]
    durations = [2.0, 3.0, 3.0, 1.0]
    assert overlapping(starts, durations, ["r0", "r0", "r1", "r0"]) == 2
    assert overlapping(starts, durations, ["r0", "r1", "r2", "r0"]) == 0
    # Touching ends do not overlap; a failed request (NaN) is left out.
    assert overlapping([0.0, 2.0], [2.0, 1.0], ["r0", "r0"]) == 0
    assert overlapping([0.0, 1.0], [math.nan, 1.0], ["", "r0"]) == 0


def test_sharing_unknown_when_a_client_does_not_say_where() -> None:
    placed = arm_run(
        "a", "shared", 0, (1.0, 1.0), starts=(0.0, 0.5), replicas=("r0", "r0"), totals=(1.0, 1.0)
    )
    assert placed.doubled == 2
    assert (
        arm_run("a", "shared", 0, (1.0, 1.0), starts=(0.0, 0.5), replicas=("r0", "")).doubled
        is None
    )
    assert arm_run("a", "shared", 0, (1.0,)).doubled is None
    pooled = summarise([placed, arm_run("a", "shared", 1, (1.0,))])
    assert math.isnan(pooled["shared", "a"].doubled)
    assert summarise([placed])["shared", "a"].doubled == 2.0
