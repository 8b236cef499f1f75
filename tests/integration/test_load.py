"""2,000 chat requests at concurrency 64 over two real replicas, one killed halfway and restarted.

A test of correctness, not speed: every request ends (answered or a typed error, none hung),
the killed replica is ejected and later restored, and nothing leaks. Run with `-s` to see the
figures it measured.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhosted_core import ChatRequest, Config, Message, Provider, SelfHostedError
from selfhosted_core.local import LlamaServer
from selfhosted_core.routing import CircuitState
from tests.integration.conftest import fresh_chat_replicas

REQUESTS = 2000
CONCURRENCY = 64
KILL_AT = REQUESTS // 2
RESTART_AT = REQUESTS * 3 // 4
HUNG_AFTER = 60.0
"""Seconds after which a request counts as hung; each is given a 30 s budget of its own."""


def sockets() -> int:
    """Open sockets of this process (a leak shows here before it exhausts anything)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:  # the descriptor iterdir itself used, gone by now
            continue
    return count


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def replicas(binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    with fresh_chat_replicas(binary, parallel=32, ctx_size=8192) as servers:
        yield servers


class Load:
    """The run's bookkeeping: outcomes, latencies, and what the killed replica went through."""

    def __init__(self) -> None:
        self.started = 0
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.served_by: Counter[str] = Counter()
        self.served_after_restart: Counter[str] = Counter()
        self.states: set[CircuitState] = set()
        self.restarted = False


async def test_two_thousand_requests_survive_a_replica_killed_and_restarted(
    replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    steady, victim = replicas
    # At most --parallel connections each: llama-server queues any beyond its HTTP threads
    # until a kept-alive one idles out (5 s), which is what a stalled request would measure.
    config = Config(
        endpoints=[
            {"url": steady.url, "id": "tiny", "label": "steady", "max_connections": 32},
            {"url": victim.url, "id": "tiny", "label": "victim", "max_connections": 32},
        ],
        routing={"cooldown": 0.5},
    )
    request = ChatRequest(
        model="tiny", messages=[Message(role="user", content="hi")], max_tokens=2, timeout=30.0
    )
    load = Load()
    # Earlier tests' unreachable clients close their sockets when collected: collect them first.
    gc.collect()
    fds_before, sockets_before = descriptors(), sockets()
    async with Provider(config) as provider:

        async def one() -> None:
            began = time.perf_counter()
            try:
                answer = await asyncio.wait_for(provider.achat(request), HUNG_AFTER)
            except SelfHostedError as exc:
                load.outcomes[type(exc).__name__] += 1
                return
            except asyncio.TimeoutError:
                load.outcomes["hung"] += 1
                return
            except Exception as exc:  # an untyped error is exactly what is counted here
                load.outcomes[f"untyped {type(exc).__name__}"] += 1
                return
            load.outcomes["answered"] += 1
            load.latencies.append(time.perf_counter() - began)
            load.served_by[answer.endpoint] += 1
            if load.restarted:
                load.served_after_restart[answer.endpoint] += 1

        async def worker() -> None:
            while load.started < REQUESTS:
                load.started += 1
                if load.started == KILL_AT:
                    assert victim.pid is not None
                    os.kill(victim.pid, signal.SIGKILL)
                if load.started == RESTART_AT:
                    await asyncio.to_thread(victim.start)
                    load.restarted = True
                await one()
                load.states.add(provider.stats()[1].circuit)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - began
        # Answered after the restart, the victim had to be probed and closed again.
        final = provider.stats()
        peak_sockets = sockets() - sockets_before
    ordered = sorted(load.latencies)
    print(  # the figures the closing note reports, shown with -s
        f"\n{REQUESTS} requests at concurrency {CONCURRENCY} in {elapsed:.1f} s: "
        f"{dict(load.outcomes)}; served {dict(load.served_by)}, after the restart "
        f"{dict(load.served_after_restart)}; p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {ordered[int(0.99 * len(ordered))] * 1000:.0f} ms; circuit states of the victim "
        f"{sorted(state.value for state in load.states)}; sockets open at the end "
        f"{peak_sockets}; victim {final[1]}"
    )
    assert sum(load.outcomes.values()) == REQUESTS
    assert set(load.outcomes) <= {"answered", "EndpointConnectionError", "ResponseError"}
    # Only requests in flight on the victim when it died may fail; the rest went elsewhere.
    assert load.outcomes["answered"] >= REQUESTS - CONCURRENCY
    assert CircuitState.OPEN in load.states
    assert load.served_after_restart["victim"] > 0
    assert final[1].circuit is CircuitState.CLOSED
    gc.collect()
    assert descriptors() <= fds_before
    assert sockets() <= sockets_before
