"""`litellm.completion` / `embedding` on `selfhosted/...` behind a fault proxy.

Failover happens in the core; a failure comes out as LiteLLM's own exception class with the core
error (endpoint, partial answer) as its `__cause__`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litellm.exceptions import BadGatewayError, MidStreamFallbackError, ServiceUnavailableError

from litellm_selfhosted import register
from selfhosted_core import (
    Config,
    EndpointConnectionError,
    Provider,
    ResponseError,
    SelfHostedError,
    ServerError,
)
from selfhosted_core.local import PLAIN_ANSWER_TEXT, LlamaServer
from tests import faults
from tests.faults import FaultProxy
from tests.integration.fault_replicas import ROUTING, A, B, chat_endpoint, embedding_endpoint
from tests.litellm_driver import LLDriver, model

HELLO = [{"role": "user", "content": "Say hello"}]
TEXTS = ["hello", "world"]


@pytest.fixture
async def replicas(
    chat_proxy: FaultProxy,
    chat_server: LlamaServer,
    embedding_proxy: FaultProxy,
    embedding_server: LlamaServer,
    litellm_state: None,
) -> AsyncIterator[Provider]:
    """`tiny` and `minilm` each on A (the proxy, tried first) and B (the server), registered."""
    endpoints = [
        chat_endpoint(chat_proxy.url, A, weight=2),
        chat_endpoint(chat_server.url, B),
        embedding_endpoint(embedding_proxy.url, A, weight=2),
        embedding_endpoint(embedding_server.url, B),
    ]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        register(provider=provider)
        yield provider


@pytest.fixture
async def lone(
    chat_proxy: FaultProxy, embedding_proxy: FaultProxy, litellm_state: None
) -> AsyncIterator[Provider]:
    """`tiny` and `minilm` each on A (the proxy) alone, registered."""
    endpoints = [chat_endpoint(chat_proxy.url, A), embedding_endpoint(embedding_proxy.url, A)]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        register(provider=provider)
        yield provider


def requests_by_label(provider: Provider, model_id: str) -> dict[str, tuple[int, int]]:
    """(requests, errors) per endpoint label of `model_id`."""
    return {s.endpoint: (s.requests, s.errors) for s in provider.stats() if s.model == model_id}


def core_cause(error: BaseException) -> SelfHostedError:
    """Our error behind LiteLLM's: its `__cause__`, or for a stream LiteLLM re-raised as a
    `MidStreamFallbackError`, the cause of the `original_exception`."""
    if isinstance(error, MidStreamFallbackError):
        assert isinstance(error.original_exception, ServiceUnavailableError | BadGatewayError)
        error = error.original_exception
    cause = error.__cause__
    assert isinstance(cause, SelfHostedError)
    return cause


def loading_cause(error: BaseException) -> ServerError:
    cause = core_cause(error)
    assert isinstance(cause, ServerError)
    assert (cause.loading, cause.endpoint) == (True, A)
    return cause


async def test_completion_is_answered_by_the_other_replica_when_one_drops(
    ll: LLDriver, replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    response = await ll.complete(model=model("tiny"), messages=HELLO, max_tokens=64)
    assert response.choices[0].message.content == PLAIN_ANSWER_TEXT
    assert {seen.fault for seen in chat_proxy.seen} == {faults.DROP}
    assert requests_by_label(replicas, "tiny") == {A: (1, 1), B: (1, 0)}


async def test_stream_is_answered_by_the_other_replica_when_one_drops(
    ll: LLDriver, replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    chunks = await ll.stream(model=model("tiny"), messages=HELLO, max_tokens=64)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == PLAIN_ANSWER_TEXT
    assert {seen.fault for seen in chat_proxy.seen} == {faults.DROP}
    assert requests_by_label(replicas, "tiny") == {A: (1, 1), B: (1, 0)}


async def test_embedding_is_answered_by_the_other_replica_when_one_drops(
    ll: LLDriver, replicas: Provider, embedding_proxy: FaultProxy
) -> None:
    embedding_proxy.inject(faults.DROP, times=None)
    response = await ll.embed(model=model("minilm"), input=TEXTS)
    assert [len(item["embedding"]) for item in response.data] == [384, 384]
    assert {seen.fault for seen in embedding_proxy.seen} == {faults.DROP}
    assert requests_by_label(replicas, "minilm") == {A: (1, 1), B: (1, 0)}


async def test_completion_on_a_loading_server_is_service_unavailable(
    ll: LLDriver, lone: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.LOADING, times=None)
    with pytest.raises(ServiceUnavailableError) as caught:
        await ll.complete(model=model("tiny"), messages=HELLO, max_tokens=64)
    assert caught.value.status_code == 503
    loading_cause(caught.value)
    assert len(chat_proxy.seen) == 3


async def test_stream_on_a_loading_server_is_service_unavailable(
    ll: LLDriver, lone: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.LOADING, times=None)
    with pytest.raises(MidStreamFallbackError) as caught:
        await ll.stream(model=model("tiny"), messages=HELLO, max_tokens=64)
    assert caught.value.status_code == 503
    loading_cause(caught.value)
    assert len(chat_proxy.seen) == 3


async def test_embedding_on_a_loading_server_is_service_unavailable(
    ll: LLDriver, lone: Provider, embedding_proxy: FaultProxy
) -> None:
    embedding_proxy.inject(faults.LOADING, times=None)
    with pytest.raises(ServiceUnavailableError) as caught:
        await ll.embed(model=model("minilm"), input=TEXTS)
    assert caught.value.status_code == 503
    loading_cause(caught.value)
    assert len(embedding_proxy.seen) == 3


async def test_a_cut_stream_raises_with_the_partial_text_as_its_cause_and_is_never_resent(
    ll: LLDriver, replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.cut(1500))
    with pytest.raises(MidStreamFallbackError) as caught:
        await ll.stream(model=model("tiny"), messages=HELLO, max_tokens=64)
    cause = core_cause(caught.value)
    assert isinstance(cause, EndpointConnectionError | ResponseError)
    assert cause.endpoint == A
    assert cause.partial is not None
    assert cause.partial.content
    assert PLAIN_ANSWER_TEXT.startswith(cause.partial.content)
    assert cause.partial.content != PLAIN_ANSWER_TEXT
    assert A in str(caught.value)
    assert len(chat_proxy.seen) == 1
    assert requests_by_label(replicas, "tiny")[B] == (0, 0)


async def test_a_cut_completion_raises_and_is_never_resent(
    ll: LLDriver, replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.cut(20))
    with pytest.raises((ServiceUnavailableError, BadGatewayError)) as caught:
        await ll.complete(model=model("tiny"), messages=HELLO, max_tokens=64)
    cause = core_cause(caught.value)
    assert isinstance(cause, EndpointConnectionError | ResponseError)
    assert cause.endpoint == A
    assert len(chat_proxy.seen) == 1
    assert requests_by_label(replicas, "tiny")[B] == (0, 0)
