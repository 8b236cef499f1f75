"""Running one arm over one workload: fresh servers, calibration, the pass, the server counters.

Each pass gets its own two llama-servers (`selfhosted_core.local.LlamaServer`, `-t 1 -np 2
--metrics`, default prompt-cache settings), so no arm inherits another's caches. Before the
pass each server prefills one unrelated prompt (its prefill cost is read from the answer's
`timings`, and it warms the server), the arm sends one short unrelated request (it warms the
client), and the servers' counters are read; they are read again after the pass.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from benchmarks.servers.arms import MODEL, Arm, Send
from benchmarks.servers.metrics import ArmRun, parse_prometheus
from benchmarks.servers.workload import Request, Workload, system_prompt
from selfhosted_core.local import LlamaServer

__all__ = [
    "CONCURRENCY",
    "REPLICAS",
    "SLOTS",
    "Pass",
    "calibrate",
    "counters",
    "drive",
    "replicas",
    "run",
]

REPLICAS = 2
SLOTS = 2
CONCURRENCY = 2
CONTEXT = 8192
"""Total context per server (`-c`); the two slots share it."""
CALIBRATION_TOKENS = 512
_WARM_UP = Request("warm-up", 0, None, (("user", "Warm up."),))
_PROMPT_TOKENS = "llamacpp:prompt_tokens_total"
_CACHED = "llamacpp:prompt_tokens_cached_total"
_PREDICTED = "llamacpp:tokens_predicted_total"


@contextmanager
def replicas(model: Path, binary: Path) -> Iterator[list[LlamaServer]]:
    """Start `REPLICAS` fresh servers of `model` at once; stop them on exit."""
    servers = [
        LlamaServer(
            model,
            alias=MODEL,
            parallel=SLOTS,
            threads=1,
            ctx_size=CONTEXT,
            binary=binary,
            extra_args=["--metrics"],
        )
        for _ in range(REPLICAS)
    ]
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(LlamaServer.start, servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


def counters(server: LlamaServer) -> tuple[int, int, int]:
    """The server's prompt tokens evaluated, generated tokens, cached prompt tokens so far."""
    # A fresh connection each time: a kept-alive one would hold one of its HTTP threads.
    response = httpx2.get(f"{server.url}/metrics", timeout=10.0)
    response.raise_for_status()
    values = parse_prometheus(response.text)
    return int(values[_PROMPT_TOKENS]), int(values[_PREDICTED]), int(values.get(_CACHED, 0))


def calibrate(server: LlamaServer, label: str) -> float:
    """Prefill one unrelated prompt of about `CALIBRATION_TOKENS` tokens: ms per token."""
    prompt = system_prompt(f"calibration {label}", CALIBRATION_TOKENS)
    response = httpx2.post(
        f"{server.base_url}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1},
        timeout=120.0,
    )
    response.raise_for_status()
    timings = response.json()["timings"]
    return float(timings["prompt_ms"]) / max(int(timings["prompt_n"]), 1)


@dataclass
class Pass:
    """What one pass recorded, per request in dispatch order (NaN or "" for a failed one)."""

    starts: list[float]
    ttfts: list[float]
    totals: list[float]
    replicas: list[str]
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)


async def drive(workload: Workload, send: Send, concurrency: int = CONCURRENCY) -> Pass:
    """Send the workload's requests in order, `concurrency` at a time.

    A request whose session's previous turn is still running waits for it.

    Returns:
        Each request's start (seconds from the pass's start), TTFT and total time, the
        replica that served it; the wall time of the whole pass, and the errors.
    """
    requests = workload.requests
    done = [asyncio.Event() for _ in requests]
    size = len(requests)
    record = Pass([math.nan] * size, [math.nan] * size, [math.nan] * size, [""] * size)
    queue = iter(range(size))

    async def worker() -> None:
        for index in queue:
            request = requests[index]
            if request.after is not None:
                await done[request.after].wait()
            record.starts[index] = time.perf_counter() - start
            try:
                timing = await send(request)
            except Exception as exc:  # a failed request is reported, not fatal
                record.errors.append(f"{request.session} turn {request.turn}: {exc!r}")
            else:
                record.ttfts[index], record.totals[index] = timing.ttft, timing.total
                record.replicas[index] = timing.replica
            finally:
                done[index].set()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    record.wall = time.perf_counter() - start
    return record


async def _measured(
    arm: Arm, workload: Workload, servers: Sequence[LlamaServer], rep: int
) -> ArmRun:
    async with arm.open([server.base_url for server in servers]) as send:
        await send(_WARM_UP)
        before = [counters(server) for server in servers]
        record = await drive(workload, send)
        after = [counters(server) for server in servers]
    return ArmRun(
        arm=arm.name,
        workload=workload.name,
        rep=rep,
        ttfts=tuple(record.ttfts),
        totals=tuple(record.totals),
        wall=record.wall,
        prefilled=tuple(a[0] - b[0] for a, b in zip(after, before, strict=True)),
        served=tuple(a[1] - b[1] for a, b in zip(after, before, strict=True)),
        ms_per_token=(),
        cached=tuple(a[2] - b[2] for a, b in zip(after, before, strict=True)),
        starts=tuple(record.starts),
        replicas=tuple(record.replicas),
        errors=tuple(record.errors),
    )


def run(arm: Arm, workload: Workload, *, model: Path, binary: Path, rep: int) -> ArmRun:
    """One pass of `arm` over `workload` on fresh servers, with their calibration."""
    load = os.getloadavg()[0]
    with replicas(model, binary) as servers:
        with ThreadPoolExecutor(len(servers)) as pool:
            costs = tuple(
                pool.map(calibrate, servers, [f"{arm.name} {rep} {i}" for i in range(REPLICAS)])
            )
        result = asyncio.run(_measured(arm, workload, servers, rep))
    return ArmRun(**{**result.__dict__, "ms_per_token": costs, "load": load})
