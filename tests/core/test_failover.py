"""Resending across replicas: only what the server cannot have worked on, within the limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from selfhosted_core import (
    Attempt,
    BadRequestError,
    ChatRequest,
    ChatResponse,
    Config,
    EmbeddingRequest,
    EndpointConnectionError,
    EndpointTimeoutError,
    InvalidRequestError,
    Provider,
    RateLimitError,
    SelfHostedError,
    ServerError,
)
from selfhosted_core._failover import may_resend
from selfhosted_core.routing import CircuitState
from tests.core import payloads
from tests.core.harness import user
from tests.driver import Driver

LOADING = b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'
BUSY = b'{"error":{"message":"too many requests","type":"rate_limit_error"}}'
STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)

Behaviour = Callable[[httpx2.Request], httpx2.Response]


class Replicas:
    """Two replicas of `tiny` and two of `minilm` whose answers a test scripts per host."""

    def __init__(self) -> None:
        self.behaviour: dict[str, list[Behaviour]] = {}
        self.seen: list[str] = []

    def script(self, host: str, *answers: Behaviour) -> None:
        """Answer the next requests to `host` with `answers`; the last one repeats."""
        self.behaviour[host] = list(answers)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        self.seen.append(host)
        answers = self.behaviour.get(host, [ok])
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request)


def ok(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/embeddings"):
        body = {"object": "list", "data": [{"index": 0, "embedding": [0.6, 0.8]}], "model": "m"}
        return httpx2.Response(200, json=body)
    if json.loads(request.content).get("stream"):
        return httpx2.Response(200, content=STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=payloads.VLLM_REASONING)


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)


def hung_up(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")


def read_timeout(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadTimeout("timed out", request=request)


def status(code: int, body: bytes, **headers: str) -> Behaviour:
    return lambda request: httpx2.Response(code, content=body, headers=headers)


def make_config(**routing: Any) -> Config:
    endpoints = [
        {"url": f"http://{host}.test:8080", "id": "tiny", "label": host}
        for host in ("gpu-1", "gpu-2")
    ] + [
        {
            "url": f"http://{host}.test:9000",
            "id": "minilm",
            "label": host,
            "capabilities": ["embedding"],
            "dimension": 2,
        }
        for host in ("emb-1", "emb-2")
    ]
    return Config(endpoints=endpoints, routing={"backoff": 0.01, **routing})


@pytest.fixture
def replicas() -> Replicas:
    return Replicas()


def provider_for(replicas: Replicas, **routing: Any) -> Provider:
    transport = httpx2.MockTransport(replicas.handle)
    return Provider(make_config(**routing), transport=transport, async_transport=transport)


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, replicas: Replicas) -> AsyncIterator[Driver]:
    async with provider_for(replicas) as provider:
        yield Driver(request.param, provider)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=user(), **fields)


def stats_of(driver: Driver, label: str) -> Any:
    return next(entry for entry in driver.provider.stats() if entry.endpoint == label)


@pytest.mark.parametrize(
    "failure", [refused, hung_up, status(503, LOADING), status(502, b"bad gateway")]
)
async def test_a_request_nothing_was_answered_for_goes_to_the_other_replica(
    driver: Driver, replicas: Replicas, failure: Behaviour
) -> None:
    # Twice: a hang-up is first taken for a stale pooled connection and resent to the same.
    replicas.script("gpu-1.test", failure, failure, ok)
    answer = await driver.chat(chat())
    assert answer.endpoint == "gpu-2"
    assert replicas.seen[-1] == "gpu-2.test"
    assert set(replicas.seen) == {"gpu-1.test", "gpu-2.test"}
    assert stats_of(driver, "gpu-1").errors == 1
    assert stats_of(driver, "gpu-2").requests == 1


async def test_a_stream_is_resent_when_it_had_not_started(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", refused)
    chunks, final = await driver.stream(chat())
    assert (final.content, final.endpoint) == ("Hello", "gpu-2")
    assert "".join(chunk.content or "" for chunk in chunks) == "Hello"


async def test_embeddings_fail_over_too(driver: Driver, replicas: Replicas) -> None:
    replicas.script("emb-1.test", status(503, LOADING), ok)
    answer = await driver.embed(EmbeddingRequest(model="minilm", input=["a"]))
    assert (answer.endpoint, answer.embeddings) == ("emb-2", [[0.6, 0.8]])
    assert stats_of(driver, "emb-1").loading


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (read_timeout, EndpointTimeoutError),
        (status(500, b'{"error":{"message":"boom"}}'), ServerError),
        (status(400, b'{"error":{"message":"bad"}}'), BadRequestError),
    ],
)
async def test_a_request_the_server_may_have_worked_on_is_not_resent(
    driver: Driver, replicas: Replicas, failure: Behaviour, error: type[Exception]
) -> None:
    replicas.script("gpu-1.test", failure)
    replicas.script("gpu-2.test", failure)
    with pytest.raises(error) as caught:
        await driver.chat(chat())
    assert len(replicas.seen) == 1
    assert caught.value.attempts == (  # type: ignore[attr-defined]
        Attempt("gpu-1", error.__name__, getattr(caught.value, "status_code", None)),
    )


@pytest.mark.parametrize(
    "failure",
    [read_timeout, status(500, b'{"error":{"message":"boom"}}'), status(504, b"gateway timeout")],
)
async def test_resend_unsafe_resends_what_the_server_may_have_worked_on(
    driver: Driver, replicas: Replicas, failure: Behaviour
) -> None:
    replicas.script("gpu-1.test", failure)
    answer = await driver.chat(chat(resend_unsafe=True))
    assert (answer.endpoint, replicas.seen) == ("gpu-2", ["gpu-1.test", "gpu-2.test"])


async def test_a_request_budget_of_one_send_is_never_resent(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", refused)
    with pytest.raises(EndpointConnectionError) as caught:
        await driver.chat(chat(max_attempts=1))
    assert replicas.seen == ["gpu-1.test"]
    assert caught.value.attempts == (Attempt("gpu-1", "EndpointConnectionError"),)


async def test_a_hang_up_is_resent_once_at_once_to_the_same_replica_outside_the_budget(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", hung_up, ok)
    answer = await driver.chat(chat(max_attempts=1))
    assert (answer.endpoint, replicas.seen) == ("gpu-1", ["gpu-1.test", "gpu-1.test"])
    assert stats_of(driver, "gpu-1").errors == 0


async def test_a_bad_request_does_not_count_against_the_endpoint(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", status(400, b'{"error":{"message":"bad"}}'))
    replicas.script("gpu-2.test", status(400, b'{"error":{"message":"bad"}}'))
    for _ in range(6):
        with pytest.raises(BadRequestError):
            await driver.chat(chat())
    assert {entry.circuit for entry in driver.provider.stats()} == {CircuitState.CLOSED}


async def test_resends_stop_at_max_attempts_and_list_the_earlier_ones(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", refused)
    replicas.script("gpu-2.test", refused)
    with pytest.raises(EndpointConnectionError) as caught:
        await driver.chat(chat())
    assert replicas.seen == ["gpu-1.test", "gpu-2.test", "gpu-1.test"]
    assert caught.value.endpoint == "gpu-1"
    assert caught.value.attempts == (
        Attempt("gpu-1", "EndpointConnectionError", resent=True),
        Attempt("gpu-2", "EndpointConnectionError", resent=True),
        Attempt("gpu-1", "EndpointConnectionError"),
    )
    assert str(caught.value.attempts[0]) == "gpu-1: EndpointConnectionError, resent"


@pytest.mark.parametrize("failure", [refused, status(503, LOADING)])
async def test_a_preferred_replica_that_cannot_have_started_hands_over_to_a_sibling(
    driver: Driver, replicas: Replicas, failure: Behaviour
) -> None:
    replicas.script("gpu-2.test", failure)
    answer = await driver.chat(chat(endpoint="gpu-2"))
    assert (answer.endpoint, replicas.seen) == ("gpu-1", ["gpu-2.test", "gpu-1.test"])


async def test_a_preferred_replica_that_is_ejected_is_skipped(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-2.test", refused)
    for _ in range(3):
        await driver.chat(chat(endpoint="gpu-2"))
    assert stats_of(driver, "gpu-2").circuit is CircuitState.OPEN
    replicas.seen.clear()
    answer = await driver.chat(chat(endpoint="gpu-2"))
    assert (answer.endpoint, replicas.seen) == ("gpu-1", ["gpu-1.test"])


async def test_a_preferred_replica_that_can_serve_serves(
    driver: Driver, replicas: Replicas
) -> None:
    answers = [(await driver.chat(chat(endpoint="gpu-2"))).endpoint for _ in range(3)]
    assert (answers, replicas.seen) == (["gpu-2"] * 3, ["gpu-2.test"] * 3)


async def test_a_strict_request_is_resent_to_its_own_replica_after_a_backoff(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-2.test", refused, refused, ok)
    answer = await driver.chat(chat(endpoint="gpu-2", strict_endpoint=True))
    assert (answer.endpoint, replicas.seen) == ("gpu-2", ["gpu-2.test"] * 3)


async def test_a_429_waits_for_its_retry_after_on_a_single_replica(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-2.test", status(429, BUSY, **{"retry-after": "0.05"}), ok)
    answer = await driver.chat(chat(endpoint="gpu-2", strict_endpoint=True))
    assert (answer.endpoint, replicas.seen) == ("gpu-2", ["gpu-2.test"] * 2)


async def test_a_429_whose_retry_after_outlasts_the_timeout_is_raised(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-2.test", status(429, BUSY, **{"retry-after": "30"}), ok)
    with pytest.raises(RateLimitError) as caught:
        await driver.chat(chat(endpoint="gpu-2", strict_endpoint=True, timeout=1.0))
    assert (caught.value.retry_after, replicas.seen) == (30.0, ["gpu-2.test"])


async def test_giving_up_before_a_wait_past_the_timeout_lists_the_earlier_attempts(
    driver: Driver, replicas: Replicas
) -> None:
    busy = status(429, BUSY, **{"retry-after": "30"})
    replicas.script("gpu-2.test", refused, busy, ok)
    with pytest.raises(RateLimitError) as caught:
        await driver.chat(chat(endpoint="gpu-2", strict_endpoint=True, timeout=2.0))
    assert replicas.seen == ["gpu-2.test"] * 2
    assert caught.value.attempts == (
        Attempt("gpu-2", "EndpointConnectionError", resent=True),
        Attempt("gpu-2", "RateLimitError", 429),
    )


async def test_an_endpoint_that_keeps_failing_is_ejected_and_left_alone(
    driver: Driver, replicas: Replicas
) -> None:
    replicas.script("gpu-1.test", refused)
    answers = [await driver.chat(chat()) for _ in range(8)]
    assert {answer.endpoint for answer in answers} == {"gpu-2"}
    assert replicas.seen.count("gpu-1.test") == 3  # the failure threshold, then no more
    stats = stats_of(driver, "gpu-1")
    assert (stats.circuit, stats.consecutive_failures) == (CircuitState.OPEN, 3)
    assert stats.last_error.startswith("EndpointConnectionError: connection failed")


async def test_an_ejected_endpoint_is_restored_by_a_successful_probe(
    replicas: Replicas,
) -> None:
    replicas.script("gpu-1.test", refused, refused, ok)
    async with provider_for(replicas, failure_threshold=2, cooldown=0.05) as provider:
        for _ in range(4):
            await provider.achat(chat())
        assert provider.stats()[0].circuit is CircuitState.OPEN
        await asyncio.sleep(0.1)
        answers = {(await provider.achat(chat())).endpoint for _ in range(4)}
        assert answers == {"gpu-1", "gpu-2"}
        assert provider.stats()[0].circuit is CircuitState.CLOSED


async def test_requests_go_to_the_replica_with_fewest_in_flight(replicas: Replicas) -> None:
    release = asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        replicas.seen.append(request.url.host)
        await release.wait()
        return ok(request)

    transport = httpx2.MockTransport(slow)
    async with Provider(make_config(), async_transport=transport) as provider:
        calls = [asyncio.create_task(provider.achat(chat())) for _ in range(6)]
        while len(replicas.seen) < 6:
            await asyncio.sleep(0.001)
        assert [entry.in_flight for entry in provider.stats()[:2]] == [3, 3]
        release.set()
        answers = await asyncio.gather(*calls)
    assert sorted(answer.endpoint for answer in answers) == ["gpu-1"] * 3 + ["gpu-2"] * 3
    assert [entry.in_flight for entry in provider.stats()] == [0, 0, 0, 0]


def test_the_heavier_replica_takes_requests_when_both_are_idle(replicas: Replicas) -> None:
    config = make_config().model_dump()
    config["endpoints"][1]["weight"] = 2.0
    transport = httpx2.MockTransport(replicas.handle)
    with Provider(Config(**config), transport=transport) as provider:
        answers = [provider.chat(chat()).endpoint for _ in range(4)]
        stats = provider.stats()
    assert answers == ["gpu-2"] * 4
    assert stats[1].latency_p50 is not None
    assert stats[0].latency_p50 is None


@pytest.mark.parametrize(
    ("error", "safe", "unsafe"),
    [
        (EndpointConnectionError("refused", stage="connect"), True, True),
        (EndpointConnectionError("reset before an answer", stage="send"), True, True),
        (EndpointConnectionError("reset mid-body", stage="body"), False, True),
        (EndpointTimeoutError("connecting timed out", stage="connect"), True, True),
        (EndpointTimeoutError("read timed out", stage="send"), False, True),
        (EndpointTimeoutError("body stalled", stage="body"), False, True),
        (RateLimitError("busy", status_code=429), True, True),
        (ServerError("Loading model", status_code=503), True, True),
        (ServerError("bad gateway", status_code=502), True, True),
        (ServerError("boom", status_code=500), False, True),
        (ServerError("gateway timeout", status_code=504), False, True),
        (BadRequestError("bad", status_code=400), False, False),
    ],
)
def test_may_resend_only_what_the_server_cannot_have_worked_on_unless_told(
    error: SelfHostedError, safe: bool, unsafe: bool
) -> None:
    assert (may_resend(error), may_resend(error, unsafe=True)) == (safe, unsafe)


def test_what_had_delivered_output_is_never_resent() -> None:
    partial = ChatResponse(id="c1", model="tiny", content="Hel", endpoint="gpu-1")
    for error in (
        EndpointConnectionError("reset", stage="send", partial=partial),
        ServerError("overloaded", status_code=503, partial=partial),
    ):
        assert not may_resend(error, unsafe=True)


@pytest.mark.parametrize(
    ("failure", "stage"),
    [
        (refused, "connect"),
        (lambda request: (_ for _ in ()).throw(httpx2.ConnectTimeout("slow")), "connect"),
        (read_timeout, "send"),
        (hung_up, "send"),
    ],
)
async def test_transport_errors_say_how_far_the_exchange_got(
    driver: Driver, replicas: Replicas, failure: Behaviour, stage: str
) -> None:
    replicas.script("gpu-1.test", failure)
    replicas.script("gpu-2.test", failure)
    with pytest.raises((EndpointConnectionError, EndpointTimeoutError)) as caught:
        await driver.chat(chat(max_attempts=1))
    assert caught.value.stage == stage  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("intent", "problem"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_attempts": True}, "max_attempts must be an integer"),
        ({"max_attempts": 2.0}, "max_attempts must be an integer"),
        ({"strict_endpoint": True}, "strict_endpoint needs an endpoint"),
    ],
)
async def test_routing_intent_no_call_could_follow_is_refused_before_any_send(
    driver: Driver, replicas: Replicas, intent: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        await driver.chat(chat(**intent))
    with pytest.raises(InvalidRequestError, match=problem):
        await driver.embed(EmbeddingRequest(model="minilm", input=["a"], **intent))
    assert replicas.seen == []
