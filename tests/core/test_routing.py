"""Routing: turns over idle replicas, and pinning a request to one replica by URL or label."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from selfhosted_core import (
    Capability,
    CapabilityError,
    ChatRequest,
    Config,
    EmbeddingRequest,
    InvalidRequestError,
    Provider,
    UnknownModelError,
)
from selfhosted_core.routing import Router
from tests.core import payloads
from tests.core.harness import FakeServer, user
from tests.driver import Driver

CHAT = frozenset({Capability.CHAT})
EMBEDDING = frozenset({Capability.EMBEDDING})

# Two replicas of `tiny` (one configured without `/v1`, one with it), two of `minilm`.
REPLICAS = Config(
    endpoints=[
        {"url": "http://gpu-1.test:8080", "id": "tiny", "label": "gpu-1"},
        {"url": "http://gpu-2.test:8080/v1", "id": "tiny", "label": "gpu-2"},
        {
            "url": "http://emb-1.test:9000",
            "id": "minilm",
            "capabilities": ["embedding"],
            "dimension": 2,
        },
        {
            "url": "http://emb-2.test:9000",
            "id": "minilm",
            "capabilities": ["embedding"],
            "dimension": 2,
        },
    ]
)


@pytest.fixture
def router() -> Router:
    return Router(REPLICAS)


def select(
    router: Router, model: str, needs: frozenset[Capability], *, endpoint: str | None = None
) -> int:
    """Pick the slot of one request that then finishes at once, as a sequential caller's."""
    router.check(model, needs)
    prefer = router.slot_named(model, endpoint) if endpoint is not None else None
    slot = router.pick(model, needs, prefer=prefer, strict=prefer is not None).slot
    router.succeeded(slot, latency=0.01)
    return slot


def test_without_a_pin_replicas_take_turns(router: Router) -> None:
    assert [select(router, "tiny", CHAT) for _ in range(4)] == [0, 1, 0, 1]
    assert [select(router, "minilm", EMBEDDING) for _ in range(3)] == [2, 3, 2]


@pytest.mark.parametrize(
    "name",
    [
        "http://gpu-1.test:8080",
        "http://gpu-1.test:8080/v1",
        "http://gpu-1.test:8080/",
        "http://gpu-1.test:8080/v1/",
        "gpu-1",
    ],
)
def test_pin_by_url_with_or_without_v1_or_by_label(router: Router, name: str) -> None:
    assert [select(router, "tiny", CHAT, endpoint=name) for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "name", ["http://gpu-2.test:8080/v1", "http://gpu-2.test:8080/v1/", "gpu-2"]
)
def test_pin_a_replica_configured_with_v1(router: Router, name: str) -> None:
    assert select(router, "tiny", CHAT, endpoint=name) == 1


@pytest.mark.parametrize("name", ["http://gpu-2.test:8080", "http://gpu-2.test:8080/"])
def test_pin_a_replica_configured_with_v1_by_its_url_without_v1(router: Router, name: str) -> None:
    assert select(router, "tiny", CHAT, endpoint=name) == 1


def test_pin_by_an_unnamed_replica_url_without_a_label(router: Router) -> None:
    assert select(router, "minilm", EMBEDDING, endpoint="http://emb-2.test:9000") == 3


def test_pin_does_not_disturb_the_turns_of_unpinned_requests(router: Router) -> None:
    assert select(router, "tiny", CHAT) == 0
    assert select(router, "tiny", CHAT, endpoint="gpu-1") == 0
    assert select(router, "tiny", CHAT) == 1


def test_an_unknown_name_lists_the_replicas(router: Router) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        select(router, "tiny", CHAT, endpoint="http://gpu-3.test:8080")
    assert str(caught.value) == (
        "no replica of model 'tiny' is named 'http://gpu-3.test:8080'; its replicas: "
        "http://gpu-1.test:8080/v1, http://gpu-2.test:8080/v1 (model='tiny')"
    )


def test_a_name_of_another_models_replica_is_unknown(router: Router) -> None:
    with pytest.raises(InvalidRequestError, match="its replicas: http://emb-1"):
        select(router, "minilm", EMBEDDING, endpoint="gpu-1")


def test_a_pinned_request_still_checks_capabilities_first(router: Router) -> None:
    with pytest.raises(CapabilityError) as caught:
        select(router, "tiny", EMBEDDING, endpoint="gpu-1")
    assert str(caught.value) == "model 'tiny' lacks embedding (declared: chat) (model='tiny')"
    with pytest.raises(CapabilityError):
        select(router, "tiny", EMBEDDING, endpoint="no-such-replica")


def test_a_pinned_request_for_an_unknown_model_is_an_unknown_model(router: Router) -> None:
    with pytest.raises(UnknownModelError) as caught:
        select(router, "nope", CHAT, endpoint="gpu-1")
    assert caught.value.known == ["tiny", "minilm"]


# --- through the provider: the request reaches the pinned host every time ----------------------------

# One mock transport serves every host; the recorded request URL tells which replica was called.
# The body is llama-server's non-stream answer (payloads.LLAMA_OBJECT_ARGUMENTS cites its source).


@pytest.fixture
def server() -> FakeServer:
    server = FakeServer()
    server.on("POST", "/v1/chat/completions", payloads.LLAMA_OBJECT_ARGUMENTS)
    server.on("POST", "/v1/embeddings", payloads.OLLAMA_BASE64_EMBEDDINGS)
    return server


@pytest.fixture(params=["sync", "async"])
async def replicas(request: pytest.FixtureRequest, server: FakeServer) -> AsyncIterator[Driver]:
    transport = server.transport
    async with Provider(REPLICAS, transport=transport, async_transport=transport) as provider:
        yield Driver(request.param, provider)


def hosts(server: FakeServer) -> list[str]:
    return [request.url.host for request in server.requests]


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("gpu-2", "gpu-2.test"),
        ("http://gpu-2.test:8080/v1", "gpu-2.test"),
        ("http://gpu-1.test:8080", "gpu-1.test"),
    ],
)
async def test_chat_pinned_to_a_replica_goes_there_every_time(
    replicas: Driver, server: FakeServer, name: str, host: str
) -> None:
    for _ in range(3):
        answer = await replicas.chat(ChatRequest(model="tiny", messages=user(), endpoint=name))
        assert answer.endpoint == host.removesuffix(".test")
    assert hosts(server) == [host] * 3


async def test_chat_without_a_pin_alternates_replicas(replicas: Driver, server: FakeServer) -> None:
    for _ in range(4):
        await replicas.chat(ChatRequest(model="tiny", messages=user()))
    assert hosts(server) == ["gpu-1.test", "gpu-2.test"] * 2


async def test_stream_pinned_to_a_replica_goes_there(replicas: Driver, server: FakeServer) -> None:
    server.stream("/v1/chat/completions", payloads.LLAMA_STREAM)
    for _ in range(2):
        _, final = await replicas.stream(
            ChatRequest(model="tiny", messages=user(), endpoint="gpu-2")
        )
        assert final.content == "Hello there"
    assert hosts(server) == ["gpu-2.test", "gpu-2.test"]


async def test_embedding_pinned_to_a_replica_goes_there(
    replicas: Driver, server: FakeServer
) -> None:
    pin = "http://emb-2.test:9000/v1"
    for _ in range(2):
        answer = await replicas.embed(EmbeddingRequest(model="minilm", input=["a"], endpoint=pin))
        assert answer.embeddings == [[1.0, 0.5]]
    assert hosts(server) == ["emb-2.test", "emb-2.test"]


async def test_an_unknown_pin_fails_before_any_request(
    replicas: Driver, server: FakeServer
) -> None:
    with pytest.raises(InvalidRequestError, match="its replicas"):
        await replicas.chat(ChatRequest(model="tiny", messages=user(), endpoint="gpu-9"))
    assert server.requests == []
