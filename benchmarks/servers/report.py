"""The run as markdown (`servers.md`, also printed) and as JSON (`servers.json`).

Pure functions of the runs, their summaries and the target outcomes: nothing here measures or
writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.figures import Machine
from benchmarks.report import AT_MOST, TIMES, table
from benchmarks.report import ratio as show_ratio
from benchmarks.servers.metrics import BASELINE, ArmRun, Summary, baseline_of, mean
from benchmarks.servers.targets import Checked, Outcome

__all__ = ["Setup", "markdown", "results_table", "targets_table", "to_json", "verdict"]


@dataclass(frozen=True)
class Setup:
    """What a reader needs to know to interpret the figures.

    Attributes:
        date: When the run started (UTC, ISO 8601).
        machine: CPU, cores, Python, the load average when the run started, packages.
        load_after: The 1-minute load average when the run ended.
        model: The benchmark model's description (shape, parameters).
        sessions: Sessions per workload.
        turns: Turns per session.
        prefix_tokens: Characters (about tokens) of each system prompt.
        reps: Interleaved passes of every arm over both workloads.
        seconds: Wall time of the whole run, server starts included.
        server: The llama-server command line options that matter.
        concurrency: Requests in flight at once.
        calibration_tokens: Tokens of the prompt each server prefills before a pass.
    """

    date: str
    machine: Machine
    load_after: float
    model: str
    sessions: int
    turns: int
    prefix_tokens: int
    reps: int
    seconds: float
    server: str
    concurrency: int
    calibration_tokens: int


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def results_table(summaries: Mapping[tuple[str, str], Summary], workload: str) -> str:
    """One workload's arms: prefilled tokens, mean and p90 TTFT, wall, each with its ratio."""
    header = ["arm", "requests", "prompt tokens prefilled", f"{TIMES} LIF", "from cache"]
    header += ["mean TTFT ms", f"{TIMES} LIF", "p90 TTFT ms", f"{TIMES} LIF"]
    header += ["wall s", f"{TIMES} LIF", "requests per replica", "sharing a replica"]
    header += ["prefill ms/token", "load"]
    base = baseline_of(summaries, workload)
    rows = []
    for (name, _), summary in summaries.items():
        if name != workload:
            continue
        ratios = summary.ratios(base) if base is not None else {}
        requests = f"{summary.requests / summary.runs:g}"
        if summary.errors:
            requests += f" ({summary.errors} failed)"
        rows.append(
            [
                summary.arm,
                requests,
                f"{summary.prefilled:,.0f}",
                show_ratio(ratios.get("prefilled")),
                f"{summary.cached:,.0f}",
                _ms(summary.ttft_mean),
                show_ratio(ratios.get("ttft_mean")),
                _ms(summary.ttft_p90),
                show_ratio(ratios.get("ttft_p90")),
                f"{summary.wall:.1f}",
                show_ratio(ratios.get("wall")),
                " / ".join(f"{count:g}" for count in summary.served),
                "-" if math.isnan(summary.doubled) else f"{summary.doubled:g}",
                f"{summary.ms_per_token:.2f}",
                f"{summary.load:.2f}",
            ]
        )
    return table(header, rows, align="l" + "r" * (len(header) - 1))


def verdict(outcome: Outcome) -> str:
    """Met with how much to spare, or missed by how much."""
    margin = f"{abs(outcome.shortfall):.2f}{TIMES} ({abs(outcome.relative):.0%})"
    return f"met, {margin} to spare" if outcome.met else f"**MISSED** by {margin}"


def targets_table(checked: Checked) -> str:
    """Every target: the ratio measured, the bound and the verdict."""
    rows = []
    for target, outcome in checked:
        if outcome is None:
            rows.append([target.describe(), "-", "-", "not measured in this run"])
            continue
        rows.append(
            [
                target.describe(),
                f"{outcome.observed:.2f}{TIMES}",
                f"{AT_MOST} {outcome.required:g}{TIMES}",
                verdict(outcome),
            ]
        )
    return table(["target", "measured", "required", "result"], rows, align="lrrl")


def summary_line(checked: Checked) -> str:
    """One line: how many targets were met, and which were missed."""
    outcomes = [outcome for _, outcome in checked if outcome is not None]
    missed = [o.target.describe() for o in outcomes if not o.met]
    line = f"Targets: {len(outcomes) - len(missed)} of {len(outcomes)} measured targets met"
    return line + ("." if not missed else "; missed: " + "; ".join(missed) + ".")


def prefill_cost(runs: Sequence[ArmRun]) -> float:
    """The mean calibrated prefill cost over every server of every pass, ms per token."""
    return mean([cost for run in runs for cost in run.ms_per_token])


def markdown(
    setup: Setup,
    runs: Sequence[ArmRun],
    summaries: Mapping[tuple[str, str], Summary],
    checked: Checked,
) -> str:
    """The whole report."""
    machine = setup.machine
    requests = setup.sessions * setup.turns
    parts = [
        "# Routing across two real llama-servers (`make bench-servers`)",
        f"Run {setup.date}: {machine.cpu}, {machine.cores} cores, Python {machine.python}; "
        f"load average {machine.load:.2f} at the start, {setup.load_after:.2f} at the end. "
        f"{setup.reps} interleaved pass(es) of every arm over both workloads in "
        f"{setup.seconds:.0f} s, server starts included.",
        f"Servers: two llama-server replicas, `{setup.server}`, fresh for every pass (no arm "
        f"inherits another's caches). Model: {setup.model}; prefill measured at "
        f"{prefill_cost(runs):.2f} ms/token (one unrelated {setup.calibration_tokens}-token "
        "prompt per server before each pass, `timings.prompt_ms / prompt_n`).",
        f"Workloads ({requests} requests each, {setup.concurrency} at a time, streamed, "
        "`max_tokens=1`): "
        f"**shared**: {setup.sessions} sessions x {setup.turns} turns, each session with a "
        f"system prompt of its own of ~{setup.prefix_tokens:,} tokens, each turn resending the "
        "conversation with one more user message (turns of different sessions interleaved); "
        "**distinct**: the same requests' shapes, every one with a system prompt of its own.",
        "Prompt tokens prefilled: the change of each server's `llamacpp:prompt_tokens_total` "
        "(`/metrics`) over the pass, both replicas, per pass; from cache: the same of "
        "`llamacpp:prompt_tokens_cached_total`. TTFT: from calling the client to "
        "the first content delta. Requests per replica: the change of "
        "`llamacpp:tokens_predicted_total` (one token per request). Sharing a replica: requests "
        "that were in flight on one replica together with another at some moment (where each "
        "went as its client reported it), so competing for its one core while the other "
        "replica may have idled. Prefill ms/token: the "
        "servers' calibration before the arm's passes, and load: the load average when they "
        "started; other work on the machine moves both, and TTFT with them. Ratios are to "
        f"`{BASELINE}` (LIF).",
    ]
    workloads = list(dict.fromkeys(workload for workload, _ in summaries))
    for workload in workloads:
        parts.append(f"## {workload}\n\n{results_table(summaries, workload)}")
    parts.append(f"## Targets\n\n{targets_table(checked)}\n\n{summary_line(checked)}")
    errors = [f"- {run.arm} / {run.workload}: {error}" for run in runs for error in run.errors]
    if errors:
        parts.append("## Failed requests\n\n" + "\n".join(errors))
    return "\n\n".join(parts) + "\n"


def to_json(
    setup: Setup,
    runs: Sequence[ArmRun],
    summaries: Mapping[tuple[str, str], Summary],
    checked: Checked,
) -> dict[str, Any]:
    """Every raw sample with the summaries, ratios and target outcomes drawn from them."""

    def finite(value: float) -> float | None:
        return None if math.isnan(value) else value

    return {
        "setup": asdict(setup),
        "prefill_ms_per_token": finite(prefill_cost(runs)),
        "runs": [
            {
                **asdict(run),
                "ttfts": [finite(t) for t in run.ttfts],
                "totals": [finite(t) for t in run.totals],
            }
            for run in runs
        ],
        "summaries": [
            {
                **{k: finite(v) if isinstance(v, float) else v for k, v in asdict(s).items()},
                "ratios_to_baseline": (
                    s.ratios(base) if (base := baseline_of(summaries, s.workload)) else None
                ),
            }
            for s in summaries.values()
        ],
        "targets": [
            {
                **asdict(target),
                "description": target.describe(),
                "observed": None if outcome is None else outcome.observed,
                "required": None if outcome is None else outcome.required,
                "met": None if outcome is None else outcome.met,
            }
            for target, outcome in checked
        ],
    }
