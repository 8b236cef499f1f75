"""`ChatSelfHosted` and `SelfHostedEmbeddings` send a call as often as their budget says, counted
at the server: `max_retries` sends after the first (None, the default, keeps the config's
`routing.max_attempts`, 3 here), and LangChain adds no loop of its own.

Two replicas, A and B, each a `FaultProxy` in front of the same llama-server, so every send that
reaches a server is in a proxy's `seen`. The error raised is the core error as the class
LangChain recognises, and lists every send in its `attempts`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import pytest
from langchain_core.exceptions import ModelAPIError

from langchain_selfhosted import ChatSelfHosted, SelfHostedEmbeddings
from selfhosted_core import Attempt, Config, Provider, ServerError
from selfhosted_core.local import PLAIN_ANSWER_TEXT, LlamaServer
from tests import faults
from tests.faults import FaultProxy
from tests.integration.fault_replicas import ROUTING, A, B, chat_endpoint, embedding_endpoint
from tests.lc_driver import LCDriver, merged

Kind = Literal["invoke", "stream"]
KINDS: list[Kind] = ["invoke", "stream"]
BUDGET: int = ROUTING["max_attempts"]
TEXTS = ["hello", "world"]
SENDS_BY_MAX_RETRIES = [
    pytest.param(None, BUDGET, id="default"),
    pytest.param(0, 1, id="max_retries=0"),
    pytest.param(1, 2, id="max_retries=1"),
]
"""`max_retries` and the sends a call that keeps failing before any answer makes."""


@pytest.fixture
def second_chat_proxy(chat_server: LlamaServer) -> Iterator[FaultProxy]:
    """Another fault proxy in front of the chat server: chat replica B."""
    with FaultProxy(chat_server.url) as proxy:
        yield proxy


@pytest.fixture
def second_embedding_proxy(embedding_server: LlamaServer) -> Iterator[FaultProxy]:
    """Another fault proxy in front of the embedding server: embedding replica B."""
    with FaultProxy(embedding_server.url) as proxy:
        yield proxy


@pytest.fixture
async def chat_replicas(
    chat_proxy: FaultProxy, second_chat_proxy: FaultProxy
) -> AsyncIterator[Provider]:
    """`tiny` on A (`chat_proxy`) and on B (`second_chat_proxy`), equally weighted."""
    endpoints = [chat_endpoint(chat_proxy.url, A), chat_endpoint(second_chat_proxy.url, B)]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        yield provider


@pytest.fixture
async def a_first(chat_proxy: FaultProxy, second_chat_proxy: FaultProxy) -> AsyncIterator[Provider]:
    """`tiny` on A (`chat_proxy`, tried first: weight 2) and on B (`second_chat_proxy`)."""
    endpoints = [
        chat_endpoint(chat_proxy.url, A, weight=2),
        chat_endpoint(second_chat_proxy.url, B),
    ]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        yield provider


@pytest.fixture
async def embedding_replicas(
    embedding_proxy: FaultProxy, second_embedding_proxy: FaultProxy
) -> AsyncIterator[Provider]:
    """`minilm` on A (`embedding_proxy`) and on B (`second_embedding_proxy`)."""
    endpoints = [
        embedding_endpoint(embedding_proxy.url, A),
        embedding_endpoint(second_embedding_proxy.url, B),
    ]
    async with Provider(Config(endpoints=endpoints, routing=ROUTING)) as provider:
        yield provider


async def answer(lc: LCDriver, model: ChatSelfHosted, kind: Kind) -> tuple[str, str]:
    """One call of `kind` that must succeed: its text and the endpoint that answered."""
    if kind == "invoke":
        message = await lc.invoke(model, "Say hello")
    else:
        message = merged(await lc.stream(model, "Say hello"))
    assert isinstance(message.content, str)
    return message.content, message.response_metadata["endpoint"]


async def fails(lc: LCDriver, model: ChatSelfHosted, kind: Kind) -> ServerError:
    """One call of `kind` that must fail with a server error LangChain recognises; the error."""
    with pytest.raises(ServerError) as caught:
        await answer(lc, model, kind)
    assert isinstance(caught.value, ModelAPIError)
    return caught.value


def sends(a: FaultProxy, b: FaultProxy) -> dict[str, int]:
    """Requests each replica's proxy has received, by label."""
    return {A: len(a.seen), B: len(b.seen)}


def attempts_by_endpoint(attempts: tuple[Attempt, ...]) -> dict[str, int]:
    counts = Counter(attempt.endpoint for attempt in attempts)
    return {A: counts[A], B: counts[B]}


def assert_every_send_listed(error: ServerError, measured: dict[str, int], expected: int) -> None:
    """The error's `attempts` are the sends the proxies saw, each resent but the last."""
    assert sum(measured.values()) == expected
    assert attempts_by_endpoint(error.attempts) == measured
    assert {(a.outcome, a.status) for a in error.attempts} == {("ServerError", error.status_code)}
    assert [a.resent for a in error.attempts] == [True] * (expected - 1) + [False]
    # a resend goes to the sibling when it can take it: both replicas are tried
    assert sum(1 for count in measured.values() if count) == min(expected, 2)


@pytest.mark.parametrize(("max_retries", "expected"), SENDS_BY_MAX_RETRIES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_chat_call_to_loading_replicas_makes_max_retries_plus_one_sends(
    lc: LCDriver,
    chat_replicas: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
    max_retries: int | None,
    expected: int,
) -> None:
    chat_proxy.inject(faults.LOADING, times=None)
    second_chat_proxy.inject(faults.LOADING, times=None)
    model = ChatSelfHosted(
        model="tiny", provider=chat_replicas, max_retries=max_retries, max_tokens=64
    )
    error = await fails(lc, model, kind)
    assert (error.status_code, error.loading) == (503, True)
    assert_every_send_listed(error, sends(chat_proxy, second_chat_proxy), expected)


@pytest.mark.parametrize(("max_retries", "expected"), SENDS_BY_MAX_RETRIES)
async def test_an_embedding_call_to_loading_replicas_makes_max_retries_plus_one_sends(
    lc: LCDriver,
    embedding_replicas: Provider,
    embedding_proxy: FaultProxy,
    second_embedding_proxy: FaultProxy,
    max_retries: int | None,
    expected: int,
) -> None:
    embedding_proxy.inject(faults.LOADING, times=None)
    second_embedding_proxy.inject(faults.LOADING, times=None)
    embeddings = SelfHostedEmbeddings(
        model="minilm", provider=embedding_replicas, max_retries=max_retries
    )
    with pytest.raises(ServerError) as caught:
        await lc.documents(embeddings, TEXTS)
    error = caught.value
    assert isinstance(error, ModelAPIError)
    assert (error.status_code, error.loading) == (503, True)
    assert_every_send_listed(error, sends(embedding_proxy, second_embedding_proxy), expected)


@pytest.mark.parametrize("kind", KINDS)
async def test_with_resend_unsafe_a_server_error_is_answered_by_the_other_replica(
    lc: LCDriver,
    a_first: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
) -> None:
    chat_proxy.inject(faults.status(500), times=None)
    model = ChatSelfHosted(model="tiny", provider=a_first, resend_unsafe=True, max_tokens=64)
    assert await answer(lc, model, kind) == (PLAIN_ANSWER_TEXT, B)
    assert sends(chat_proxy, second_chat_proxy) == {A: 1, B: 1}
    assert [seen.fault for seen in chat_proxy.seen] == [faults.status(500)]


@pytest.mark.parametrize("kind", KINDS)
async def test_without_resend_unsafe_a_server_error_is_sent_once(
    lc: LCDriver,
    a_first: Provider,
    chat_proxy: FaultProxy,
    second_chat_proxy: FaultProxy,
    kind: Kind,
) -> None:
    chat_proxy.inject(faults.status(500), times=None)
    model = ChatSelfHosted(model="tiny", provider=a_first, max_tokens=64)
    error = await fails(lc, model, kind)
    assert (error.status_code, error.loading, error.endpoint) == (500, False, A)
    assert sends(chat_proxy, second_chat_proxy) == {A: 1, B: 0}
    assert error.attempts == (Attempt(A, "ServerError", 500, resent=False),)
