"""Failover, typed errors and the circuit breaker of the core, against real servers behind faults.

Replica A is a `FaultProxy` in front of a real llama-server; replica B (when there is one) is the
same server reached directly under another label. A weight of 2 on A makes every request try A
first, so each fault is met deterministically.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest

from selfhosted_core import (
    ChatRequest,
    Config,
    EmbeddingRequest,
    EndpointConnectionError,
    EndpointTimeoutError,
    Message,
    Provider,
    RateLimitError,
    ResponseError,
    SelfHostedError,
    ServerError,
)
from selfhosted_core.local import PLAIN_ANSWER_TEXT, LlamaServer
from tests import faults
from tests.driver import Driver
from tests.faults import Fault, FaultProxy
from tests.integration.conftest import API_KEY, SECOND_ALIAS

Operation = Literal["chat", "stream", "embed"]
OPERATIONS: list[Operation] = ["chat", "stream", "embed"]
ROUTING: dict[str, Any] = {
    "max_attempts": 3,
    "failure_threshold": 3,
    "cooldown": 0.3,
    "backoff": 0.05,
}
CHAT_CAPABILITIES = ["chat"]
A, B = "replica-a", "replica-b"
HANG_UP_SENDS = 2
"""Sends to a replica that resets or closes the connection before answering, before the call
leaves it: the engine resends such a hang-up once at once, per call, outside the budget (it is
what a kept-alive connection the server had closed looks like)."""
NO_ANSWER_FAULTS = {
    "reset": faults.RESET,
    "drop": faults.DROP,
    "loading": faults.LOADING,
    "rate_limited": faults.status(429, retry_after=0.1),
}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def model_of(operation: Operation) -> str:
    return "minilm" if operation == "embed" else "tiny"


def endpoint(url: str, operation: Operation, label: str, **extra: Any) -> dict[str, Any]:
    """One endpoint entry of the model `operation` uses."""
    if operation == "embed":
        base: dict[str, Any] = {"capabilities": ["embedding"], "dimension": 384}
    else:
        base = {"capabilities": CHAT_CAPABILITIES, "api_key": API_KEY, "server": "llama.cpp"}
    return {"url": url, "id": model_of(operation), "label": label, **base, **extra}


def config(*endpoints: dict[str, Any]) -> Config:
    return Config(endpoints=list(endpoints), routing=ROUTING)


async def run(driver: Driver, operation: Operation) -> str:
    """Send one request of `operation`, check the answer is whole; the endpoint that gave it."""
    model = model_of(operation)
    if operation == "embed":
        vectors = await driver.embed(EmbeddingRequest(model=model, input=["hello", "world"]))
        assert [len(vector) for vector in vectors.embeddings] == [384, 384]
        return vectors.endpoint
    request = ChatRequest(
        model=model, messages=[Message(role="user", content="Say hello")], max_tokens=64
    )
    if operation == "chat":
        answer = await driver.chat(request)
    else:
        chunks, answer = await driver.stream(request)
        assert "".join(chunk.content or "" for chunk in chunks) == PLAIN_ANSWER_TEXT
    assert answer.content == PLAIN_ANSWER_TEXT
    return answer.endpoint


async def fails(driver: Driver, operation: Operation) -> SelfHostedError:
    """Send one request of `operation` that must fail; the error."""
    with pytest.raises(SelfHostedError) as caught:
        await run(driver, operation)
    return caught.value


def upstream(operation: Operation, chat: LlamaServer, embed: LlamaServer) -> str:
    return embed.url if operation == "embed" else chat.url


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("fault", list(NO_ANSWER_FAULTS), ids=str)
async def test_a_request_the_server_never_started_is_answered_by_the_other_replica(
    mode: str,
    operation: Operation,
    fault: str,
    chat_server: LlamaServer,
    embedding_server: LlamaServer,
) -> None:
    server = upstream(operation, chat_server, embedding_server)
    with FaultProxy(server) as proxy:
        proxy.inject(NO_ANSWER_FAULTS[fault], times=None)
        replicas = config(
            endpoint(proxy.url, operation, A, weight=2), endpoint(server, operation, B)
        )
        async with Provider(replicas) as provider:
            assert await run(Driver(mode, provider), operation) == B
            stats = {s.endpoint: s for s in provider.stats()}
    sends = HANG_UP_SENDS if fault in ("reset", "drop") else 1
    assert [seen.fault for seen in proxy.seen] == [NO_ANSWER_FAULTS[fault]] * sends
    assert (stats[A].requests, stats[A].errors) == (1, 1)
    assert (stats[B].requests, stats[B].errors) == (1, 0)
    assert stats[A].last_error is not None
    assert stats[A].loading is (fault == "loading")


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_refused_replica_fails_over_to_the_other(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    server = upstream(operation, chat_server, embedding_server)
    with FaultProxy(server) as proxy:
        proxy.refuse()
        replicas = config(
            endpoint(proxy.url, operation, A, weight=2), endpoint(server, operation, B)
        )
        async with Provider(replicas) as provider:
            assert await run(Driver(mode, provider), operation) == B
            stats = {s.endpoint: s for s in provider.stats()}
    assert stats[A].errors == 1
    assert (stats[A].last_error or "").startswith("EndpointConnectionError: ")
    assert stats[B].errors == 0


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_stale_pooled_connection_is_resent_on_a_fresh_one_without_an_error(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    server = upstream(operation, chat_server, embedding_server)
    with FaultProxy(server) as proxy:
        proxy.inject(faults.STALE)
        # Undeclared, the server kind keeps its streams' connections for reuse (a llama.cpp
        # endpoint's streams ask for `Connection: close`, so no stream connection goes stale).
        replicas = config(
            endpoint(proxy.url, operation, A, weight=2, server=None),
            endpoint(server, operation, B, server=None),
        )
        async with Provider(replicas) as provider:
            driver = Driver(mode, provider)
            assert await run(driver, operation) == A
            assert await run(driver, operation) == A
            stats = {s.endpoint: s for s in provider.stats()}
    assert [seen.fault for seen in proxy.seen] == [faults.STALE, faults.STALE_NEXT, faults.PASS]
    assert (stats[A].requests, stats[A].errors) == (2, 0)
    assert stats[B].requests == 0


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("fault", [faults.RESET, faults.DROP], ids=["reset", "drop"])
async def test_a_lone_endpoint_that_never_answers_raises_a_connection_error_after_every_attempt(
    mode: str,
    operation: Operation,
    fault: Fault,
    chat_server: LlamaServer,
    embedding_server: LlamaServer,
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(fault, times=None)
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            error = await fails(Driver(mode, provider), operation)
    assert type(error) is EndpointConnectionError
    assert error.endpoint == A
    # Every send is listed: the budget's three, and the one immediate resend of a hang-up.
    sends = 3 + HANG_UP_SENDS - 1
    assert len(error.attempts) == len(proxy.seen) == sends
    assert {(attempt.endpoint, attempt.outcome) for attempt in error.attempts} == {
        (A, "EndpointConnectionError")
    }
    assert [attempt.resent for attempt in error.attempts] == [True] * (sends - 1) + [False]


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_lone_refusing_endpoint_raises_a_connection_error(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.refuse()
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            error = await fails(Driver(mode, provider), operation)
    assert type(error) is EndpointConnectionError
    assert error.endpoint == A
    assert len(error.attempts) == 3
    assert proxy.seen == []


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_lone_loading_endpoint_raises_a_loading_server_error(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(faults.LOADING, times=None)
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            error = await fails(Driver(mode, provider), operation)
            [stats] = provider.stats()
    assert isinstance(error, ServerError)
    assert (error.status_code, error.loading, error.endpoint) == (503, True, A)
    assert len(proxy.seen) == 3
    assert stats.loading
    assert stats.circuit == "closed"


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("retry_after", [0.1, None], ids=["retry_after", "no_header"])
async def test_a_lone_rate_limiting_endpoint_raises_a_rate_limit_error(
    mode: str,
    operation: Operation,
    retry_after: float | None,
    chat_server: LlamaServer,
    embedding_server: LlamaServer,
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(faults.status(429, retry_after=retry_after), times=None)
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            error = await fails(Driver(mode, provider), operation)
    assert isinstance(error, RateLimitError)
    assert (error.status_code, error.retry_after, error.endpoint) == (429, retry_after, A)
    assert len(proxy.seen) == 3


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("fault", [faults.HTML, faults.NOT_JSON], ids=["html", "not_json"])
async def test_a_malformed_answer_is_a_response_error_and_never_resent(
    mode: str,
    operation: Operation,
    fault: Fault,
    chat_server: LlamaServer,
    embedding_server: LlamaServer,
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(fault, times=None)
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            error = await fails(Driver(mode, provider), operation)
    assert type(error) is ResponseError
    assert error.endpoint == A
    if fault == faults.HTML:
        assert "text/html" in error.message
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_stalled_endpoint_times_out_at_the_first_byte_and_is_never_resent(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(faults.STALL, times=None)
        lone = config(endpoint(proxy.url, operation, A, first_byte_timeout=0.3))
        async with Provider(lone) as provider:
            error = await fails(Driver(mode, provider), operation)
    assert type(error) is EndpointTimeoutError
    assert error.endpoint == A
    assert len(proxy.seen) == 1


async def test_an_endless_stream_times_out_with_what_it_delivered(
    mode: str, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.ENDLESS, times=None)
    async with Provider(config(endpoint(chat_proxy.url, "stream", A, timeout=1.0))) as provider:
        error = await fails(Driver(mode, provider), "stream")
    assert type(error) is EndpointTimeoutError
    assert error.endpoint == A
    assert error.partial is not None
    assert error.partial.content
    assert error.partial.content.startswith("1 2 3 ")
    assert len(chat_proxy.seen) == 1


async def test_a_stream_cut_after_output_raises_with_the_partial_answer_and_is_never_resent(
    mode: str, chat_proxy: FaultProxy, chat_server: LlamaServer
) -> None:
    chat_proxy.inject(faults.cut(1500))
    replicas = config(
        endpoint(chat_proxy.url, "stream", A, weight=2), endpoint(chat_server.url, "stream", B)
    )
    async with Provider(replicas) as provider:
        error = await fails(Driver(mode, provider), "stream")
        stats = {s.endpoint: s for s in provider.stats()}
    assert isinstance(error, EndpointConnectionError | ResponseError)
    assert error.endpoint == A
    assert error.partial is not None
    assert error.partial.content
    assert PLAIN_ANSWER_TEXT.startswith(error.partial.content)
    assert error.partial.content != PLAIN_ANSWER_TEXT
    assert len(chat_proxy.seen) == 1
    assert stats[B].requests == 0


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_slow_endpoint_still_answers(
    mode: str, operation: Operation, chat_server: LlamaServer, embedding_server: LlamaServer
) -> None:
    with FaultProxy(upstream(operation, chat_server, embedding_server)) as proxy:
        proxy.inject(faults.delay(0.3))
        async with Provider(config(endpoint(proxy.url, operation, A))) as provider:
            assert await run(Driver(mode, provider), operation) == A
    assert [seen.fault for seen in proxy.seen] == [faults.delay(0.3)]


async def test_a_failing_replica_is_ejected_then_restored_by_a_probe(
    mode: str, chat_proxy: FaultProxy, chat_server: LlamaServer
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    replicas = config(
        endpoint(chat_proxy.url, "chat", A, weight=2), endpoint(chat_server.url, "chat", B)
    )
    async with Provider(replicas) as provider:
        driver = Driver(mode, provider)
        for _ in range(3):
            assert await run(driver, "chat") == B
        stats = {s.endpoint: s for s in provider.stats()}
        assert (stats[A].circuit, stats[A].consecutive_failures) == ("open", 3)
        assert stats[A].resting_for is not None
        # while open, A receives nothing
        assert await run(driver, "chat") == B
        assert len(chat_proxy.seen) == 3 * HANG_UP_SENDS
        chat_proxy.clear()
        await asyncio.sleep(ROUTING["cooldown"] * 1.2 + 0.05)
        assert await run(driver, "chat") == A
        stats = {s.endpoint: s for s in provider.stats()}
    assert (stats[A].circuit, stats[A].consecutive_failures) == ("closed", 0)
    assert [seen.fault for seen in chat_proxy.seen] == [faults.DROP] * 3 * HANG_UP_SENDS + [
        faults.PASS
    ]


@pytest.mark.parametrize("operation", ["chat", "stream"])
async def test_each_replica_only_ever_sees_its_own_key_across_failover(
    mode: str, operation: Operation, second_chat_server: LlamaServer
) -> None:
    with FaultProxy(second_chat_server.url) as a, FaultProxy(second_chat_server.url) as b:
        a.inject(faults.DROP, times=None)
        common = {"id": SECOND_ALIAS, "capabilities": CHAT_CAPABILITIES, "server": "llama.cpp"}
        replicas = config(
            {"url": a.url, "label": A, "api_key": "key-a", "weight": 2, **common},
            {"url": b.url, "label": B, "api_key": "key-b", **common},
        )
        async with Provider(replicas) as provider:
            request = ChatRequest(
                model=SECOND_ALIAS, messages=[Message(role="user", content="Hi")], max_tokens=8
            )
            driver = Driver(mode, provider)
            if operation == "chat":
                answer = await driver.chat(request)
            else:
                _, answer = await driver.stream(request)
    assert answer.endpoint == B
    assert len(a.seen) == HANG_UP_SENDS
    assert len(b.seen) == 1
    assert {seen.headers.get("authorization") for seen in a.seen} == {"Bearer key-a"}
    assert {seen.headers.get("authorization") for seen in b.seen} == {"Bearer key-b"}
