"""Four processes, two real llama-server replicas, one real redis-server: one view of routing.

Each process is a `Provider` of its own (`state_workers`), all with the same config and
`routing.state.backend: redis`. Run with `-s` to see the figures.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selfhosted_core.local import LlamaServer
from tests.integration import state_workers
from tests.integration.conftest import fresh_chat_replicas
from tests.redis_server import RedisServer

WORKERS = 4
THRESHOLD = 3
COOLDOWN = 0.5
A, B = "replica-a", "replica-b"


@pytest.fixture
def replicas(binary: Path) -> Iterator[tuple[LlamaServer, LlamaServer]]:
    with fresh_chat_replicas(binary, parallel=2, ctx_size=2048) as servers:
        yield servers


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def config(replicas: tuple[LlamaServer, LlamaServer], redis: RedisServer | None) -> dict[str, Any]:
    """The two replicas; their state shared through `redis`, or each process's own (None)."""
    state = {} if redis is None else {"backend": "redis", "url": redis.url, "prefix": "shared"}
    return {
        "endpoints": [
            {
                "url": server.base_url,
                "id": "tiny",
                "label": label,
                "server": "llama.cpp",
                "max_connections": 2,
            }
            for server, label in zip(replicas, (A, B), strict=True)
        ],
        "routing": {
            "failure_threshold": THRESHOLD,
            "cooldown": COOLDOWN,
            "backoff": 0.05,
            "state": state,
        },
    }


class Fleet:
    """The worker processes, started together, released together, stopped together."""

    def __init__(self, config: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready = context.Barrier(WORKERS + 1)
        self.go = context.Event()
        self.stop = context.Event()
        self.results: Any = context.Queue()
        self.processes = [
            context.Process(
                target=state_workers.run,
                args=(config, self.ready, self.go, self.stop, self.results),
                daemon=True,
            )
            for _ in range(WORKERS)
        ]
        for process in self.processes:
            process.start()

    def finish(self) -> list[dict[str, Any]]:
        self.stop.set()
        reports = [self.results.get(timeout=60) for _ in self.processes]
        for process in self.processes:
            process.join(timeout=30)
        return reports

    def kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()


def kill_and_restart(
    replicas: tuple[LlamaServer, LlamaServer], redis: RedisServer | None
) -> tuple[list[dict[str, Any]], float]:
    """The workers' reports over a run in which A is SIGKILLed and restarted; its downtime."""
    victim = replicas[0]
    fleet = Fleet(config(replicas, redis))
    try:
        fleet.ready.wait(timeout=120)  # every worker has had answers from both replicas
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)  # no request in flight: the workers wait
        killed = time.monotonic()
        fleet.go.set()
        time.sleep(2.0)
        victim.start()  # same port; returns once it answers /health
        dead = time.monotonic() - killed
        time.sleep(6 * COOLDOWN)
        return fleet.finish(), dead
    finally:
        fleet.kill()


def test_a_killed_replica_is_ejected_once_for_all_and_restored_by_one_probe(
    replicas: tuple[LlamaServer, LlamaServer], redis: RedisServer
) -> None:
    reports, dead = kill_and_restart(replicas, redis)
    reached = sum(report["failures"][A] for report in reports)
    # Each cooldown (drawn within +/-20%) ends in one probe, for all the processes together.
    probes = math.ceil(dead / (0.8 * COOLDOWN)) + 1
    # A process may send once more before the exchange brings it the ejection (never more:
    # its own failure's exchange brings it), so at most one each beyond the threshold.
    bound = THRESHOLD + (WORKERS - 1) + probes
    alone = WORKERS * (THRESHOLD + probes)
    print(
        f"\nrequests reaching the dead replica, all {WORKERS} processes: {reached} "
        f"(bound {bound}; each process alone could send {alone}); dead {dead:.2f} s; "
        f"per process {[report['failures'][A] for report in reports]}; "
        f"sent {[report['sent'] for report in reports]}"
    )
    assert [report["failed"] for report in reports] == [0] * WORKERS, reports
    assert THRESHOLD <= reached <= bound
    # Restored once, by one probe; the others learned it from the store.
    assert sum(report["restored"] for report in reports) == 1
    assert sum(report["restored_elsewhere"] for report in reports) == WORKERS - 1
    assert all(report["circuits"] == {A: "closed", B: "closed"} for report in reports)
    assert all(report["attempts"][A] > report["failures"][A] for report in reports)


def test_without_shared_state_each_process_pays_the_threshold_itself(
    replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    # The contrast: the same run, each process on its own state (the default).
    reports, dead = kill_and_restart(replicas, None)
    reached = [report["failures"][A] for report in reports]
    print(
        f"\nrequests reaching the dead replica, each process alone: {sum(reached)} "
        f"(per process {reached}); dead {dead:.2f} s"
    )
    assert [report["failed"] for report in reports] == [0] * WORKERS, reports
    assert all(count >= THRESHOLD for count in reached)
    assert sum(report["restored"] for report in reports) == WORKERS


def test_redis_killed_mid_run_fails_no_request(
    replicas: tuple[LlamaServer, LlamaServer], redis: RedisServer
) -> None:
    fleet = Fleet(config(replicas, redis))
    try:
        fleet.ready.wait(timeout=120)
        fleet.go.set()
        time.sleep(1.0)
        redis.kill()
        time.sleep(1.5)
        redis.start()
        time.sleep(1.0)
        reports = fleet.finish()
    finally:
        fleet.kill()
    print(f"\nsent {[report['sent'] for report in reports]} with Redis killed for 1.5 s")
    assert [report["failed"] for report in reports] == [0] * WORKERS, reports
    assert [report["store_lost"] for report in reports] == [1] * WORKERS
    assert all(report["attempts"][A] > 0 and report["attempts"][B] > 0 for report in reports)
