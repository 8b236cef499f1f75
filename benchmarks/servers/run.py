"""`make bench-servers`: routing strategies across two real llama-servers (issue 18).

Every arm runs over both workloads on fresh servers, arms interleaved (rep 0: shared A B C,
distinct A B C; rep 1 starts with the next arm, and so on), then the report is printed and
written to benchmarks/results/servers.md and servers.json. Targets are data: missing one is
reported, not fatal; a failed request is reported and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.machine import machine
from benchmarks.servers import driving, report, targets, workload
from benchmarks.servers.arms import ARMS, Arm
from benchmarks.servers.metrics import ArmRun, summarise
from benchmarks.servers.model import DEFAULT_SPEC, ModelSpec, model_path

__all__ = ["main", "options", "schedule"]

RESULTS = Path(__file__).resolve().parent.parent / "results"


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers", description=__doc__)
    parser.add_argument("--reps", type=int, default=1, help="interleaved passes (default 1)")
    parser.add_argument("--sessions", type=int, default=4, help="sessions (default 4)")
    parser.add_argument("--turns", type=int, default=5, help="turns per session (default 5)")
    parser.add_argument(
        "--prefix-tokens",
        type=int,
        default=1500,
        help="length of each system prompt, ~tokens (default 1500)",
    )
    parser.add_argument("--layers", type=int, default=DEFAULT_SPEC.layers, help="model blocks")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parsed = parser.parse_args(argv)
    for name in ("reps", "sessions", "turns", "prefix_tokens", "layers"):
        if getattr(parsed, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return parsed


def schedule(reps: int, arms: Sequence[Arm] = ARMS) -> list[tuple[int, workload.WorkloadName, Arm]]:
    """``(rep, workload, arm)`` in run order: arms interleaved, each rep rotated by one."""
    order: list[tuple[int, workload.WorkloadName, Arm]] = []
    for rep in range(reps):
        rotated = [*arms[rep % len(arms) :], *arms[: rep % len(arms)]]
        order += [(rep, name, arm) for name in workload.WORKLOADS for arm in rotated]
    return order


def _progress(message: str) -> None:
    print(f"bench-servers: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every pass, print the report, write servers.md and servers.json."""
    parsed = options(argv)
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    facts = machine()
    from selfhosted_core.local import find_llama_server  # noqa: PLC0415

    binary = find_llama_server()
    spec = ModelSpec(layers=parsed.layers)
    model = model_path(spec)
    workloads = {
        name: workload.build(name, parsed.sessions, parsed.turns, parsed.prefix_tokens)
        for name in workload.WORKLOADS
    }
    runs: list[ArmRun] = []
    for rep, name, arm in schedule(parsed.reps):
        _progress(f"rep {rep}: {name} / {arm.name}")
        result = driving.run(arm, workloads[name], model=model, binary=binary, rep=rep)
        ms = ", ".join(f"{cost:.2f}" for cost in result.ms_per_token)
        _progress(
            f"  wall {result.wall:.1f} s, prefilled {sum(result.prefilled):,} tokens, "
            f"served {list(result.served)}, prefill {ms} ms/token"
        )
        runs.append(result)
    summaries = summarise(runs)
    checked = targets.check(summaries)
    setup = report.Setup(
        date=date,
        machine=facts,
        load_after=os.getloadavg()[0],
        model=(
            f"random-weight llama, {spec.layers} blocks x {spec.width} wide, feed-forward "
            f"{spec.feed_forward}, {spec.parameters / 1e6:.1f} M block parameters, f32 "
            f"(`{spec.file_name}`)"
        ),
        sessions=parsed.sessions,
        turns=parsed.turns,
        prefix_tokens=parsed.prefix_tokens,
        reps=parsed.reps,
        seconds=time.perf_counter() - started,
        server=(
            f"-t 1 -np {driving.SLOTS} -c {driving.CONTEXT} --metrics --jinja, default prompt cache"
        ),
        concurrency=driving.CONCURRENCY,
        calibration_tokens=driving.CALIBRATION_TOKENS,
    )
    text = report.markdown(setup, runs, summaries, checked)
    parsed.out.mkdir(parents=True, exist_ok=True)
    (parsed.out / "servers.md").write_text(text)
    (parsed.out / "servers.json").write_text(
        json.dumps(report.to_json(setup, runs, summaries, checked), indent=2) + "\n"
    )
    print(text, end="")
    _progress(f"wrote servers.md and servers.json to {parsed.out} in {setup.seconds:.0f} s")
    return 1 if any(run.errors for run in runs) else 0
