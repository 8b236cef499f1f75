"""The run as markdown (`results.md`, also printed) and as JSON (`results.json`).

Pure functions of `Results` and the target outcomes: nothing here measures or writes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from benchmarks import payloads
from benchmarks.figures import FLOORS, SERVER_TIMES_CHEAPER, Results, ServerCost, server_cost
from benchmarks.targets import Checked, Outcome, Target
from benchmarks.worker import CONCURRENCY

TIMES = "\N{MULTIPLICATION SIGN}"
MICRO = "\N{MICRO SIGN}"
AT_MOST, AT_LEAST = "\N{LESS-THAN OR EQUAL TO}", "\N{GREATER-THAN OR EQUAL TO}"
MIB = 2**20

MODE_TITLES = {
    "chat": "chat: one completion",
    "stream": f"stream: one completion of {payloads.STREAM_DELTAS} streamed deltas",
    "embed": (
        f"embed: {payloads.EMBEDDING_ROWS} inputs, "
        f"{payloads.EMBEDDING_DIMENSION}-dimensional vectors"
    ),
    "achat": f"achat: async chat, {CONCURRENCY} requests in flight",
}


def micros(seconds: float) -> str:
    """Seconds as whole microseconds, or to 0.1 us under a hundred."""
    value = seconds * 1e6
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio(value: float | None) -> str:
    """A ratio such as `1.23x`, or a dash when there is nothing to divide by."""
    return "-" if value is None else f"{value:.2f}{TIMES}"


def table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A markdown table; `align` has an `l` or `r` per column (numbers go right)."""
    rule = ["--:" if side == "r" else "---" for side in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def mode_table(results: Results, mode: str) -> str:
    """One mode's clients: CPU and wall per request, ratio to floor; throughput for achat."""
    header = ["client", "group", "requests/run", f"CPU {MICRO}s/request"]
    header += [f"wall {MICRO}s/request", "CPU ratio to floor"]
    if mode == "achat":
        header += ["requests/s", "requests/s ratio to floor"]
    rows = []
    for m in results.in_mode(mode):
        row = [m.client, m.group, f"{m.requests:,}", micros(m.cpu_median), micros(m.wall_median)]
        row.append(ratio(results.cpu_ratio(m)))
        if mode == "achat":
            row += [f"{m.requests_per_second:,.0f}", ratio(results.throughput_ratio(m))]
        rows.append(row)
    return table(header, rows, align="ll" + "r" * (len(header) - 2))


def server_line(cost: ServerCost) -> str:
    """The server's CPU per request against the cheapest client's, flagged when too close."""
    verdict = (
        f"ok ({AT_LEAST} {SERVER_TIMES_CHEAPER:g}{TIMES} required)"
        if cost.times_cheaper >= SERVER_TIMES_CHEAPER
        else f"**TOO CLOSE**: under {SERVER_TIMES_CHEAPER:g}{TIMES}, the server's share of the"
        " machine distorts these figures"
    )
    return (
        f"Server: {micros(cost.server_cpu)} {MICRO}s CPU/request while serving the cheapest "
        f"client ({cost.cheapest.client}, {micros(cost.cheapest.cpu_median)} {MICRO}s): "
        f"{cost.times_cheaper:.1f}{TIMES} cheaper, {verdict}."
    )


def imports_table(results: Results) -> str:
    """Import time and the memory each import adds to a bare interpreter."""
    rows = [
        [
            f"`{timing.module}`",
            f"{timing.seconds_median * 1000:,.0f}",
            f"{results.rss_over_bare(timing) / MIB:.1f}",
        ]
        for timing in results.imports
    ]
    return table(["module", "import ms", "RSS added, MiB"], rows, align="lrr")


def workers_table(results: Results) -> str:
    """Each client worker's resident memory after all its runs."""
    groups = {m.client: m.group for m in results.measurements}
    rows = [
        [client, groups.get(client, "-"), f"{rss / MIB:.1f}"]
        for client, rss in results.worker_rss.items()
    ]
    return table(["client", "group", "worker RSS after its runs, MiB"], rows, align="llr")


def describe(target: Target) -> str:
    """A target in words."""
    if target.kind == "import":
        limit = f"{target.bound:g} ms"
        if target.baseline is not None:
            limit = f"`{target.baseline}` + {limit}"
        text = f"import: `{target.subject}` {AT_MOST} {limit}"
        return f"{text} ({target.note})" if target.note else text
    if target.kind in ("added_cpu", "added_wall"):
        what = "CPU" if target.kind == "added_cpu" else "wall time"
        return (
            f"{target.mode}: {target.subject} {what}/request {AT_MOST} "
            f"{target.baseline}'s + {target.bound:g} µs"
        )
    if target.kind == "throughput":
        return (
            f"{target.mode}: {target.subject} requests/s {AT_LEAST} "
            f"{target.bound:g}{TIMES} {target.baseline}"
        )
    return (
        f"{target.mode}: {target.subject} CPU/request {AT_MOST} "
        f"{target.bound:g}{TIMES} {target.baseline}"
    )


def amount(target: Target, value: float) -> str:
    """A figure in the target's unit: ms for imports, µs added, a ratio otherwise."""
    if target.kind == "import":
        return f"{value:,.0f} ms"
    if target.kind in ("added_cpu", "added_wall"):
        return f"{value:,.0f} µs"
    return f"{value:.2f}{TIMES}"


def verdict(outcome: Outcome) -> str:
    """Met with how much to spare, or missed by how much."""
    margin = amount(outcome.target, abs(outcome.shortfall))
    share = f"{abs(outcome.relative):.0%}"
    if outcome.met:
        return f"met, {margin} ({share}) to spare"
    return f"**MISSED** by {margin} ({share})"


def targets_table(checked: Checked) -> str:
    """Every target: what was measured, what was required, and the verdict."""
    rows = []
    for target, outcome in checked:
        if outcome is None:
            rows.append([describe(target), "-", "-", "not measured in this run"])
            continue
        sign = AT_LEAST if target.higher_is_better else AT_MOST
        rows.append(
            [
                describe(target),
                amount(target, outcome.observed),
                f"{sign} {amount(target, outcome.required)}",
                verdict(outcome),
            ]
        )
    return table(["target", "measured", "required", "result"], rows, align="lrrl")


def summary(checked: Checked) -> str:
    """One line: how many targets were met, and which were missed."""
    outcomes = [outcome for _, outcome in checked if outcome is not None]
    missed = [describe(outcome.target) for outcome in outcomes if not outcome.met]
    line = f"Targets: {len(outcomes) - len(missed)} of {len(outcomes)} measured targets met"
    unmeasured = len(checked) - len(outcomes)
    if unmeasured:
        line += f" ({unmeasured} not measured)"
    return line + ("." if not missed else "; missed: " + "; ".join(missed) + ".")


def header(results: Results) -> str:
    """Title, date, machine and method."""
    machine = results.machine
    packages = ", ".join(f"{name} {version}" for name, version in machine.packages.items())
    return "\n".join(
        [
            f"# selfhosted-llm benchmarks, {results.date}",
            "",
            f"{machine.cpu}, {machine.cores} cores, Python {machine.python}, "
            f"load average {machine.load:.2f} when the run started.",
            f"Packages: {packages}.",
            "",
            f"Every client ran each mode {results.reps} time(s), the clients taking turns, "
            f"each run sized to last about {results.seconds:g} s, against one canned "
            "OpenAI-compatible server (`benchmarks/server.py`), each client in a process of its "
            "own. Figures are per request, medians over those runs. CPU is the client "
            "process's own (all its threads); wall is elapsed time. Ratios are CPU per request "
            "over the floor's: "
            + ", ".join(f"{mode}: {floor}" for mode, floor in FLOORS.items())
            + ".",
        ]
    )


def markdown(results: Results, checked: Checked) -> str:
    """The whole report: header, a table per mode, imports, worker memory, targets."""
    parts = [header(results)]
    for mode in results.modes():
        parts.append(f"## {MODE_TITLES[mode]}\n\n{mode_table(results, mode)}")
        cost = server_cost(results, mode)
        if cost is not None:
            parts.append(server_line(cost))
    if results.imports:
        parts.append(
            "## Imports\n\nEach module imported in a fresh interpreter; the time is the import "
            "statement's, the memory is RSS after it minus a bare interpreter's "
            f"({results.bare_rss_median / MIB:.1f} MiB). litellm runs with "
            "`LITELLM_LOCAL_MODEL_COST_MAP=True`, as it does everywhere here, so that no import "
            f"waits on the network.\n\n{imports_table(results)}"
        )
    if results.worker_rss:
        parts.append(f"## Memory of each client's worker\n\n{workers_table(results)}")
    parts.append(f"## Targets\n\n{targets_table(checked)}\n\n{summary(checked)}")
    if results.failures:
        failures = "\n".join(f"- {failure}" for failure in results.failures)
        parts.append(f"## Failures\n\n{failures}")
    return "\n\n".join(parts) + "\n"


def to_json(results: Results, checked: Checked) -> dict[str, Any]:
    """Every raw sample (seconds per request, bytes) with the medians and ratios drawn from it."""
    costs = (server_cost(results, mode) for mode in results.modes())
    return {
        "date": results.date,
        "machine": asdict(results.machine),
        "reps": results.reps,
        "seconds": results.seconds,
        "floors": FLOORS,
        "measurements": [
            {
                **asdict(m),
                "cpu_median": m.cpu_median,
                "wall_median": m.wall_median,
                "server_cpu_median": m.server_cpu_median,
                "requests_per_second": m.requests_per_second,
                "cpu_ratio_to_floor": results.cpu_ratio(m),
                "throughput_ratio_to_floor": results.throughput_ratio(m),
            }
            for m in results.measurements
        ],
        "server": {
            cost.mode: {
                "cpu_median": cost.server_cpu,
                "cheapest_client": cost.cheapest.client,
                "times_cheaper": cost.times_cheaper,
            }
            for cost in costs
            if cost is not None
        },
        "imports": {
            "bare_rss": list(results.bare_rss),
            "modules": [
                {
                    **asdict(timing),
                    "seconds_median": timing.seconds_median,
                    "rss_over_bare": results.rss_over_bare(timing),
                }
                for timing in results.imports
            ],
        },
        "worker_rss": results.worker_rss,
        "targets": [
            {
                **asdict(target),
                "description": describe(target),
                "observed": None if outcome is None else outcome.observed,
                "required": None if outcome is None else outcome.required,
                "met": None if outcome is None else outcome.met,
            }
            for target, outcome in checked
        ],
        "failures": list(results.failures),
    }
