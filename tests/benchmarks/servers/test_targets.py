from __future__ import annotations

import pytest

from benchmarks.servers.metrics import Summary
from benchmarks.servers.targets import TARGETS, Outcome, ServerTarget, check, outcome


def summary(
    arm: str, workload: str, *, prefilled: float, ttft: float, wall: float = 10.0
) -> Summary:
    return Summary(arm, workload, 1, 20, prefilled, 0.0, ttft, ttft * 1.5, wall, (10.0, 10.0), 0)


def summaries() -> dict[tuple[str, str], Summary]:
    rows = [
        summary("affinity", "shared", prefilled=5_200, ttft=0.53),
        summary("least_in_flight", "shared", prefilled=10_000, ttft=1.0),
        summary("affinity", "distinct", prefilled=30_000, ttft=1.61, wall=10.2),
        summary("least_in_flight", "distinct", prefilled=30_000, ttft=1.0, wall=10.0),
    ]
    return {(s.workload, s.arm): s for s in rows}


def test_the_issue_targets() -> None:
    assert [(t.workload, t.figure, t.bound) for t in TARGETS] == [
        ("shared", "prefilled", 0.55),
        ("shared", "ttft_mean", 0.7),
        ("distinct", "ttft_mean", 1.05),
        ("distinct", "wall", 1.05),
    ]
    assert all((t.subject, t.baseline) == ("affinity", "least_in_flight") for t in TARGETS)
    assert TARGETS[0].describe() == (
        "shared: affinity prompt tokens prefilled \u2264 0.55\u00d7 least_in_flight"
    )


def test_met_and_missed_with_margins() -> None:
    checked = check(summaries())
    results = [(target.figure, result) for target, result in checked]
    observed = {(t.workload, t.figure): r.observed for t, r in checked if r is not None}
    assert observed == pytest.approx(
        {
            ("shared", "prefilled"): 0.52,
            ("shared", "ttft_mean"): 0.53,
            ("distinct", "ttft_mean"): 1.61,
            ("distinct", "wall"): 1.02,
        }
    )
    verdicts = [None if result is None else result.met for _, result in results]
    assert verdicts == [True, True, False, True]
    missed = checked[2][1]
    assert missed is not None
    assert missed.shortfall == pytest.approx(0.56)
    assert missed.relative == pytest.approx(0.56 / 1.05)


def test_on_the_bound_is_met() -> None:
    assert Outcome(TARGETS[0], 0.55, 0.55).met
    assert not Outcome(TARGETS[0], 0.5501, 0.55).met


def test_an_arm_that_did_not_run_is_not_measured() -> None:
    partial = {k: v for k, v in summaries().items() if k != ("distinct", "least_in_flight")}
    assert [result is None for _, result in check(partial)] == [False, False, True, True]
    zero = summaries() | {
        ("shared", "least_in_flight"): summary("least_in_flight", "shared", prefilled=0, ttft=1)
    }
    assert outcome(ServerTarget("shared", "prefilled", 0.55), zero) is None
