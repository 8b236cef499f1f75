"""Routing state shared through a real redis-server by several routers, each as one process.

Each `Node` is what one process holds: its router, a store client with a process id of its
own, and the sync step, run here by hand (`exchange`) instead of by the thread, so every test
decides when the processes talk.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from selfhosted_core import (
    Capability,
    ChatRequest,
    Config,
    EndpointConnectionError,
    Provider,
    RateLimitError,
    ServerError,
)
from selfhosted_core._http import RequestHeaders
from selfhosted_core._load import LoadWatcher
from selfhosted_core._redis import RedisStore
from selfhosted_core._sharing import StateSync, _after_fork
from selfhosted_core.routing import CircuitState, Router
from tests.core.harness import FakeServer, Route, chat_reply, user
from tests.redis_server import RedisServer

CHAT = frozenset({Capability.CHAT})
A, B = 0, 1


def shared_config(url: str, prefix: str, **routing: Any) -> Config:
    state = {"backend": "redis", "url": url, "prefix": prefix, **routing.pop("state", {})}
    return Config(
        endpoints=[
            {"url": "http://a.test:8080", "id": "tiny", "label": "a"},
            {"url": "http://b.test:8080", "id": "tiny", "label": "b"},
        ],
        routing={"failure_threshold": 3, "cooldown": 30, **routing, "state": state},
    )


@dataclass
class Node:
    router: Router
    sync: StateSync

    def exchange(self) -> bool:
        return self.sync.exchange()

    def circuit(self, slot: int) -> CircuitState:
        return self.router.stats()[slot].circuit

    def fail(self, slot: int) -> None:
        pick = self.router.pick("tiny", CHAT, prefer=slot)
        assert pick.slot == slot
        self.router.failed(slot, EndpointConnectionError("refused", model="tiny", stage="connect"))


def nodes(config: Config, count: int) -> list[Node]:
    made = []
    for _ in range(count):
        router = Router(config)
        names = [f"{e.id}@{e.api_base}" for e in config.endpoints]
        store = RedisStore(config.routing.state, names)
        state = config.routing.state
        sync = StateSync(
            router, store, interval=state.sync_interval, fail_closed=state.fail_closed, where="R"
        )
        made.append(Node(router, sync))
    return made


@pytest.fixture
def config(redis_server: RedisServer, redis_prefix: str) -> Config:
    return shared_config(redis_server.url, redis_prefix)


def test_failures_counted_by_all_processes_eject_the_replica_for_all(config: Config) -> None:
    group = nodes(config, 4)
    for node in group:
        node.exchange()
    for node in group[:3]:
        node.fail(A)
        node.exchange()
    # The third failure in all reached the threshold there: that process ejected A.
    assert [node.circuit(A) for node in group] == [CircuitState.CLOSED] * 2 + [
        CircuitState.OPEN,
        CircuitState.CLOSED,
    ]
    group[2].exchange()
    for node in group:
        node.exchange()
    assert [node.circuit(A) for node in group] == [CircuitState.OPEN] * 4
    assert [node.router.pick("tiny", CHAT).slot for node in group] == [B] * 4
    assert all(node.router.stats()[A].consecutive_failures == 3 for node in group)


def test_an_answer_in_any_process_ends_the_failures_in_a_row(config: Config) -> None:
    first, second = nodes(config, 2)
    first.fail(A)
    first.fail(A)
    first.exchange()
    second.exchange()
    assert second.router.stats()[A].consecutive_failures == 2
    pick = second.router.pick("tiny", CHAT, prefer=A)
    second.router.succeeded(pick.slot, latency=0.1)
    second.exchange()
    first.exchange()
    first.fail(A)
    first.exchange()
    # One failure since the answer: nowhere near the threshold of 3.
    assert first.circuit(A) is CircuitState.CLOSED
    assert first.router.stats()[A].consecutive_failures == 1


def eject_for_all(group: list[Node]) -> None:
    for _ in range(3):
        group[0].fail(A)
    for node in group:
        node.exchange()
    assert [node.circuit(A) for node in group] == [CircuitState.OPEN] * len(group)


def test_exactly_one_process_probes_when_the_cooldown_is_over(
    redis_server: RedisServer, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    group = nodes(shared_config(redis_server.url, redis_prefix, cooldown=0.05), 4)
    eject_for_all(group)
    time.sleep(0.1)  # the ejection (0.05 s +/-20%, by the Redis server's clock) is over
    for node in group:
        node.exchange()
    picks = [node.router.pick("tiny", CHAT, prefer=A).slot for node in group]
    assert sorted(picks) == [A, B, B, B]
    prober = group[picks.index(A)]
    assert prober.circuit(A) is CircuitState.HALF_OPEN
    # The probe's answer restores A for everyone, logged as a restore once, by the prober.
    caplog.set_level(logging.INFO, logger="selfhosted_core")
    prober.router.succeeded(A, latency=0.1)
    for node in group:
        node.exchange()
    assert [node.circuit(A) for node in group] == [CircuitState.CLOSED] * 4
    messages = [record.getMessage() for record in caplog.records]
    assert sum("restored (circuit closed)" in message for message in messages) == 1
    assert sum("restored by another process's probe" in message for message in messages) == 3


def test_a_failed_probe_ejects_again_for_all_and_the_next_probe_is_claimed_anew(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    group = nodes(shared_config(redis_server.url, redis_prefix, cooldown=0.05), 3)
    eject_for_all(group)
    time.sleep(0.1)
    for node in group:
        node.exchange()
    picks = [node.router.pick("tiny", CHAT, prefer=A).slot for node in group]
    prober = group[picks.index(A)]
    prober.router.failed(A, EndpointConnectionError("refused", model="tiny"))
    for node in group:
        node.exchange()
    # Ejected again, for everyone, until the new cooldown is over: nobody may probe now.
    assert [node.router.pick("tiny", CHAT, prefer=A).slot for node in group] == [B] * 3
    time.sleep(0.1)
    for node in group:
        node.exchange()
    again = [node.router.pick("tiny", CHAT, prefer=A).slot for node in group]
    assert sorted(again) == [A, B, B]


def test_a_rest_reaches_every_process(config: Config) -> None:
    first, second = nodes(config, 2)
    pick = first.router.pick("tiny", CHAT, prefer=A)
    busy = RateLimitError("busy", status_code=429, body="", model="tiny")
    first.router.rested(pick.slot, busy, seconds=30, loading=False)
    first.exchange()
    second.exchange()
    entry = second.router.stats()[A]
    assert entry.circuit is CircuitState.CLOSED
    assert entry.resting_for is not None
    assert 25 < entry.resting_for <= 30
    assert entry.last_error is not None
    assert "busy" in entry.last_error
    assert second.router.pick("tiny", CHAT).slot == B


def test_a_loading_rest_reaches_every_process_as_loading(config: Config) -> None:
    first, second = nodes(config, 2)
    first.router.probed(A, healthy=False, loading=True)
    first.exchange()
    second.exchange()
    entry = second.router.stats()[A]
    assert entry.loading
    assert entry.resting_for is not None
    assert entry.resting_for > 25


def test_other_processes_requests_in_flight_steer_least_in_flight(config: Config) -> None:
    first, second = nodes(config, 2)
    for _ in range(2):
        first.router.pick("tiny", CHAT, prefer=A)
    first.exchange()
    second.exchange()
    assert [entry.in_flight_elsewhere for entry in second.router.stats()] == [2, 0]
    assert [second.router.pick("tiny", CHAT).slot for _ in range(2)] == [B, B]
    # Its own two on B now equal the other's two on A: the turn decides between equals.
    assert second.router.stats()[B].in_flight == 2


def test_a_crashed_process_requests_in_flight_age_out(config: Config) -> None:
    first, second = nodes(config, 2)
    for _ in range(3):
        first.router.pick("tiny", CHAT, prefer=A)
    first.exchange()
    second.exchange()
    assert second.router.stats()[A].in_flight_elsewhere == 3
    # `first` stops exchanging, as a process killed with its requests in flight would.
    time.sleep(1.1)
    second.exchange()
    assert second.router.stats()[A].in_flight_elsewhere == 0


def test_load_readings_reach_every_process(redis_server: RedisServer, redis_prefix: str) -> None:
    config = shared_config(redis_server.url, redis_prefix, load_signals="auto")
    first, second = nodes(config, 2)
    first.router.observed(A, 7)
    first.exchange()
    second.exchange()
    assert [entry.server_load for entry in second.router.stats()] == [7, None]
    # Heard from another process: the second need not read A's server this interval.
    assert second.router.heard(A, within=0.5)
    first.exchange()
    assert not first.router.heard(A, within=0.5)  # its own reading is not news to it


def test_a_server_another_process_just_read_is_not_read_again(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    config = shared_config(redis_server.url, redis_prefix, load_signals="auto", load_interval=5)
    first, second = nodes(config, 2)
    reads: list[str | None] = []

    def metrics(request: httpx2.Request) -> httpx2.Response:
        reads.append(request.url.host)
        return httpx2.Response(200, content=b"llamacpp:requests_processing 2\n")

    headers = [RequestHeaders.of(endpoint) for endpoint in config.endpoints]
    watchers = [
        LoadWatcher(config, node.router, headers, transport=httpx2.MockTransport(metrics))
        for node in (first, second)
    ]
    watchers[0].turn(A)
    first.exchange()
    second.exchange()
    watchers[1].turn(A)  # heard within the interval: skipped
    watchers[1].turn(B)  # nobody read B: read
    assert reads == ["a.test", "b.test"]
    assert second.router.stats()[A].server_load == 2


def test_a_new_process_learns_an_ejection_at_its_first_exchange(config: Config) -> None:
    (first,) = nodes(config, 1)
    for _ in range(3):
        first.fail(A)
    first.exchange()
    (late,) = nodes(config, 1)
    late.exchange()
    assert late.circuit(A) is CircuitState.OPEN
    assert late.router.pick("tiny", CHAT).slot == B


# --- the store out of reach -------------------------------------------------------------------


def test_an_unreachable_store_leaves_each_process_on_its_own_state_logged_once(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as server:
        config = shared_config(server.url, redis_prefix)
        first, second = nodes(config, 2)
        assert first.exchange()
        server.kill()
        assert not first.exchange()
        assert not first.exchange()
        # Decided alone meanwhile: three failures of its own eject A, and it keeps routing.
        for _ in range(3):
            first.fail(A)
        assert first.circuit(A) is CircuitState.OPEN
        assert first.router.pick("tiny", CHAT).slot == B
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert sum("did not answer" in message for message in warnings) == 1
        server.start()
        assert first.exchange()
        # What it decided alone is shared once the store is back.
        second.exchange()
        assert second.circuit(A) is CircuitState.OPEN
        messages = [r.getMessage() for r in caplog.records]
        assert sum("answers again" in message for message in messages) == 1


def test_fail_closed_refuses_requests_while_the_store_is_out_of_reach(redis_prefix: str) -> None:
    with RedisServer() as server:
        config = shared_config(server.url, redis_prefix, state={"fail_closed": True})
        (node,) = nodes(config, 1)
        assert node.exchange()
        server.kill()
        node.exchange()
        with pytest.raises(EndpointConnectionError, match=r"routing\.state\.fail_closed"):
            node.router.pick("tiny", CHAT)
        server.start()
        assert node.exchange()
        assert node.router.pick("tiny", CHAT).slot in (A, B)


# --- through the providers' own threads -------------------------------------------------------


def test_providers_share_an_ejection_through_their_sync_threads(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    def reply(request: httpx2.Request) -> Route:
        if request.url.host == "a.test":
            return 500, b'{"error": {"message": "boom"}}', {"content-type": "application/json"}
        return chat_reply(request)

    server = FakeServer()
    server.on("POST", "/v1/chat/completions", reply)
    config = shared_config(redis_server.url, redis_prefix, max_attempts=1)
    first, second = (Provider(config, transport=server.transport) for _ in range(2))
    request = ChatRequest(model="tiny", messages=user(), endpoint="a", strict_endpoint=True)
    for _ in range(3):
        with pytest.raises(ServerError):
            first.chat(request)
    assert first.stats()[A].circuit is CircuitState.OPEN
    # `second` has sent nothing to A; its thread brings the ejection within a few exchanges.
    second.chat(ChatRequest(model="tiny", messages=user(), endpoint="b", strict_endpoint=True))
    deadline = time.monotonic() + 5
    while second.stats()[A].circuit is not CircuitState.OPEN:
        assert time.monotonic() < deadline, "the ejection never reached the other provider"
        time.sleep(0.01)
    first.close()
    second.close()


def test_a_closed_provider_s_requests_in_flight_stop_counting_at_once(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    config = shared_config(redis_server.url, redis_prefix)
    first, second = nodes(config, 2)
    first.router.pick("tiny", CHAT, prefer=A)
    first.exchange()
    second.exchange()
    assert second.router.stats()[A].in_flight_elsewhere == 1
    first.sync.stop()
    second.exchange()
    assert second.router.stats()[A].in_flight_elsewhere == 0


def test_in_a_forked_child_the_sync_starts_afresh_as_a_process_of_its_own(
    redis_server: RedisServer, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What os.register_at_fork runs in the child, called directly (forking a multi-threaded
    # test process is itself unsafe); a new pid is what the child would see.
    server = FakeServer()
    server.on("POST", "/v1/chat/completions", chat_reply)
    provider = Provider(shared_config(redis_server.url, redis_prefix), transport=server.transport)
    provider.chat(ChatRequest(model="tiny", messages=user()))
    sync, router = provider._sync, provider._router
    assert sync is not None
    assert sync.running
    store = sync._store
    assert isinstance(store, RedisStore)
    parent = store.process
    # The parent's thread does run on here (nothing was forked): stopped at the end.
    parent_thread, parent_stop = sync._thread, sync._stopped
    assert parent_thread is not None
    parent_lock = router._lock
    parent_lock.acquire()  # as if the parent's sync thread held it at the fork
    try:
        _after_fork()
        assert sync._thread is None, "no thread of the parent runs in the child"
        assert router._lock is not parent_lock
        monkeypatch.setattr(os, "getpid", lambda: -2)
        assert store.process != parent
        provider.chat(ChatRequest(model="tiny", messages=user()))
        assert sync.running
    finally:
        parent_lock.release()
        monkeypatch.undo()
        provider.close()
        parent_stop.set()
        sync._wake.set()
        parent_thread.join()


def test_a_probe_answered_with_a_rest_gives_its_claim_back_for_after_the_rest(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    group = nodes(shared_config(redis_server.url, redis_prefix, cooldown=0.05), 2)
    eject_for_all(group)
    time.sleep(0.1)
    for node in group:
        node.exchange()
    picks = [node.router.pick("tiny", CHAT, prefer=A).slot for node in group]
    prober, other = group[picks.index(A)], group[1 - picks.index(A)]
    loading = ServerError("Loading model", status_code=503, body="", model="tiny")
    prober.router.rested(A, loading, seconds=0.05, loading=True)
    prober.exchange()
    time.sleep(0.1)  # the rest is over: the claim is anyone's, and the first to ask has it
    other.exchange()
    prober.exchange()
    assert other.router.pick("tiny", CHAT, prefer=A).slot == A
    assert prober.router.pick("tiny", CHAT, prefer=A).slot == B
