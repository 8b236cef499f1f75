from __future__ import annotations

import json
import math

from benchmarks.figures import Machine
from benchmarks.servers.metrics import ArmRun, summarise
from benchmarks.servers.report import Setup, markdown, results_table, to_json, verdict
from benchmarks.servers.targets import TARGETS, Outcome, check


def runs() -> list[ArmRun]:
    def run(arm: str, workload: str, ttfts: tuple[float, ...], prefilled: int) -> ArmRun:
        return ArmRun(
            arm,
            workload,
            0,
            ttfts,
            ttfts,
            12.5,
            (prefilled, prefilled),
            (2, 2),
            (2.4, 2.6),
            (100, 100),
            1.0,
            starts=(0.0, 0.0, 1.0, 1.0),
            replicas=("replica-0", "replica-1", "replica-0", "replica-0"),
        )

    return [
        run("affinity", "shared", (0.5, 0.6, 0.4, 0.5), 2_600),
        run("least_in_flight", "shared", (1.0, 1.0, 1.0, 1.0), 5_000),
        run("litellm_shuffle", "shared", (1.5, 0.5, 1.0, 1.0), 5_100),
        run("affinity", "distinct", (4.4, 4.4, 4.4, 4.4), 6_000),
        ArmRun(
            "least_in_flight",
            "distinct",
            0,
            (4.0, 4.0, 4.0, math.nan),
            (4.0, 4.0, 4.0, math.nan),
            12.5,
            (4_500, 4_500),
            (2, 1),
            (2.5, 2.5),
            (100, 100),
            1.0,
            errors=("s1 turn 0: ReadTimeout()",),
        ),
    ]


def setup() -> Setup:
    return Setup(
        date="2026-12-07T16:10:00+00:00",
        machine=Machine("Test CPU", 2, "3.11.7", 1.5, {"litellm": "1.0"}),
        load_after=2.25,
        model="random llama",
        sessions=2,
        turns=2,
        prefix_tokens=1500,
        reps=1,
        seconds=180.0,
        server="-t 1 -np 2",
        concurrency=2,
        calibration_tokens=512,
    )


def test_results_table_has_figures_and_ratios_to_least_in_flight() -> None:
    text = results_table(summarise(runs()), "shared")
    lines = text.splitlines()
    assert lines[0].startswith("| arm | requests | prompt tokens prefilled | \u00d7 LIF |")
    assert len(lines) == 5
    assert lines[2] == (
        "| affinity | 4 | 5,200 | 0.52\u00d7 | 200 | 500 | 0.50\u00d7 | 570 | 0.57\u00d7 "
        "| 12.5 | 1.00\u00d7 | 2 / 2 | 2 | 2.50 | 1.00 |"
    )
    assert lines[3].startswith("| least_in_flight | 4 | 10,000 | 1.00\u00d7 | 200 | 1,000 |")


def test_failed_requests_are_shown() -> None:
    table = results_table(summarise(runs()), "distinct")
    assert "| least_in_flight | 3 (1 failed) |" in table


def test_verdicts_say_by_how_much() -> None:
    assert verdict(Outcome(TARGETS[0], 0.52, 0.55)) == "met, 0.03\u00d7 (5%) to spare"
    assert verdict(Outcome(TARGETS[2], 1.61, 1.05)) == "**MISSED** by 0.56\u00d7 (53%)"


def test_markdown_has_setup_tables_targets_and_failures() -> None:
    summaries = summarise(runs())
    text = markdown(setup(), runs(), summaries, check(summaries))
    assert text.startswith("# Routing across two real llama-servers")
    assert "load average 1.50 at the start, 2.25 at the end" in text
    assert "in 180 s" in text
    assert "prefill measured at 2.50 ms/token" in text
    assert "## shared\n\n| arm |" in text
    assert "## distinct\n\n| arm |" in text
    assert "Targets: 3 of 4 measured targets met; missed: distinct: affinity mean TTFT" in text
    assert "## Failed requests\n\n- least_in_flight / distinct: s1 turn 0: ReadTimeout()" in text


def test_json_has_raw_samples_and_no_nan() -> None:
    summaries = summarise(runs())
    data = to_json(setup(), runs(), summaries, check(summaries))
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["prefill_ms_per_token"] == 2.5
    assert data["runs"][4]["ttfts"] == [4.0, 4.0, 4.0, None]
    shared = data["summaries"][0]
    assert shared["arm"] == "affinity"
    assert shared["ratios_to_baseline"]["prefilled"] == 0.52
    assert [t["met"] for t in data["targets"]] == [True, True, False, True]
