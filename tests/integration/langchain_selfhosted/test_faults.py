"""`ChatSelfHosted` and `SelfHostedEmbeddings` behind a fault proxy: failover and mapped errors.

LangChain has no resend loop of its own: `max_retries` is left at its default, the config's
budget (`ROUTING`'s three sends), which the core's failover spends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langchain_core.exceptions import ModelAPIError, ModelConnectionError

from langchain_selfhosted import ChatSelfHosted, SelfHostedEmbeddings
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
from tests.lc_driver import LCDriver, merged

TEXTS = ["hello", "world"]


@pytest.fixture
async def chat_replicas(
    chat_proxy: FaultProxy, chat_server: LlamaServer
) -> AsyncIterator[Provider]:
    """`tiny` on A (the proxy, tried first) and on B (the server, directly)."""
    endpoints = [
        chat_endpoint(chat_proxy.url, A, weight=2),
        chat_endpoint(chat_server.url, B),
    ]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        yield provider


@pytest.fixture
async def lone_chat(chat_proxy: FaultProxy) -> AsyncIterator[Provider]:
    """`tiny` on A (the proxy) alone."""
    config = Config(endpoints=[chat_endpoint(chat_proxy.url, A)], routing=ROUTING)
    async with Provider(config) as provider:
        yield provider


def chat_model(provider: Provider) -> ChatSelfHosted:
    return ChatSelfHosted(model="tiny", provider=provider, max_tokens=64)


def embeddings(provider: Provider) -> SelfHostedEmbeddings:
    return SelfHostedEmbeddings(model="minilm", provider=provider)


async def test_invoke_is_answered_by_the_other_replica_when_one_drops(
    lc: LCDriver, chat_replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    answer = await lc.invoke(chat_model(chat_replicas), "Say hello")
    assert answer.content == PLAIN_ANSWER_TEXT
    assert answer.response_metadata["endpoint"] == B
    assert {seen.fault for seen in chat_proxy.seen} == {faults.DROP}
    stats = {s.endpoint: s for s in chat_replicas.stats()}
    assert (stats[A].errors, stats[B].errors, stats[B].requests) == (1, 0, 1)


async def test_stream_is_answered_by_the_other_replica_when_one_drops(
    lc: LCDriver, chat_replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    chunks = await lc.stream(chat_model(chat_replicas), "Say hello")
    assert merged(chunks).content == PLAIN_ANSWER_TEXT
    assert {seen.fault for seen in chat_proxy.seen} == {faults.DROP}
    stats = {s.endpoint: s for s in chat_replicas.stats()}
    assert (stats[A].errors, stats[B].requests) == (1, 1)


async def test_embeddings_are_answered_by_the_other_replica_when_one_drops(
    lc: LCDriver, embedding_proxy: FaultProxy, embedding_server: LlamaServer
) -> None:
    embedding_proxy.inject(faults.DROP, times=None)
    endpoints = [
        embedding_endpoint(embedding_proxy.url, A, weight=2),
        embedding_endpoint(embedding_server.url, B),
    ]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        vectors = await lc.documents(embeddings(provider), TEXTS)
        stats = {s.endpoint: s for s in provider.stats()}
    assert [len(vector) for vector in vectors] == [384, 384]
    assert {seen.fault for seen in embedding_proxy.seen} == {faults.DROP}
    assert (stats[A].errors, stats[B].requests) == (1, 1)


async def test_invoke_on_a_loading_server_raises_a_server_error_langchain_recognises(
    lc: LCDriver, lone_chat: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.LOADING, times=None)
    with pytest.raises(ServerError) as caught:
        await lc.invoke(chat_model(lone_chat), "Say hello")
    assert isinstance(caught.value, ModelAPIError)
    assert (caught.value.loading, caught.value.status_code, caught.value.endpoint) == (True, 503, A)
    assert len(chat_proxy.seen) == 3


async def test_stream_on_a_loading_server_raises_a_server_error_langchain_recognises(
    lc: LCDriver, lone_chat: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.LOADING, times=None)
    with pytest.raises(ServerError) as caught:
        await lc.stream(chat_model(lone_chat), "Say hello")
    assert isinstance(caught.value, ModelAPIError)
    assert (caught.value.loading, caught.value.endpoint) == (True, A)
    assert len(chat_proxy.seen) == 3


async def test_embeddings_on_a_loading_server_raise_a_server_error_langchain_recognises(
    lc: LCDriver, embedding_proxy: FaultProxy
) -> None:
    embedding_proxy.inject(faults.LOADING, times=None)
    config = Config(endpoints=[embedding_endpoint(embedding_proxy.url, A)], routing=ROUTING)
    async with Provider(config) as provider:
        with pytest.raises(ServerError) as caught:
            await lc.documents(embeddings(provider), TEXTS)
    assert isinstance(caught.value, ModelAPIError)
    assert (caught.value.loading, caught.value.endpoint) == (True, A)
    assert len(embedding_proxy.seen) == 3


async def test_a_cut_stream_raises_with_the_partial_text_and_is_never_resent(
    lc: LCDriver, chat_replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.cut(1500))
    with pytest.raises(SelfHostedError) as caught:
        await lc.stream(chat_model(chat_replicas), "Say hello")
    error = caught.value
    assert isinstance(error, EndpointConnectionError | ResponseError)
    if isinstance(error, EndpointConnectionError):
        assert isinstance(error, ModelConnectionError)
    assert error.endpoint == A
    assert error.partial is not None
    assert error.partial.content
    assert PLAIN_ANSWER_TEXT.startswith(error.partial.content)
    assert error.partial.content != PLAIN_ANSWER_TEXT
    assert len(chat_proxy.seen) == 1
    assert {s.endpoint: s.requests for s in chat_replicas.stats()}[B] == 0


async def test_a_cut_answer_to_invoke_raises_and_is_never_resent(
    lc: LCDriver, chat_replicas: Provider, chat_proxy: FaultProxy
) -> None:
    chat_proxy.inject(faults.cut(20))
    with pytest.raises(SelfHostedError) as caught:
        await lc.invoke(chat_model(chat_replicas), "Say hello")
    assert isinstance(caught.value, EndpointConnectionError | ResponseError)
    assert caught.value.endpoint == A
    assert len(chat_proxy.seen) == 1
    assert {s.endpoint: s.requests for s in chat_replicas.stats()}[B] == 0
