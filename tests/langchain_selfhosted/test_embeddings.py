"""`SelfHostedEmbeddings`: LangChain's standard unit suite, then batching, replicas, keys and
errors against a fake embedding server, each behaviour run through the sync and the async API.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from langchain_core import exceptions as lc
from langchain_core.embeddings import Embeddings
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_selfhosted.embeddings import SelfHostedEmbeddings, split_batches, worker_count
from selfhosted_core import (
    CapabilityError,
    Config,
    ConfigurationError,
    Provider,
    RateLimitError,
    ResponseError,
    ServerError,
)
from tests.core.harness import ENDPOINTS, FakeServer
from tests.lc_driver import LCDriver

EMBED = "/v1/embeddings"
BOUND = 30.0
"""Seconds a held request waits for its partner before the test fails (never reached when the
implementation is right: it only turns a hang into a failure)."""

REPLICA_A: dict[str, Any] = {
    "url": "http://embed-a.test:8081",
    "id": "minilm",
    "label": "embed-a",
    "capabilities": ["embedding"],
    "dimension": 2,
    "api_key": "key-a",
}
REPLICA_B: dict[str, Any] = {
    **REPLICA_A,
    "url": "http://embed-b.test:9000/v1",
    "label": "embed-b",
    "api_key": "key-b",
}
ONE = [REPLICA_A]
TWO = [REPLICA_A, REPLICA_B]


class TestSelfHostedEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return SelfHostedEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "minilm", "base_url": "http://127.0.0.1:8081", "dimension": 384}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        env = {
            "SELFHOSTED_BASE_URL": "http://gpu-box.internal:8081/v1",
            "SELFHOSTED_MODEL": "minilm",
            "SELFHOSTED_API_KEY": "key-from-env",
            "SELFHOSTED_DIMENSION": "384",
        }
        expected = {
            "base_url": "http://gpu-box.internal:8081/v1",
            "model": "minilm",
            "api_key": "key-from-env",
            "dimension": 384,
        }
        return env, {}, expected


def vector(text: str) -> list[float]:
    """What the fake server answers for a text `"<n>"`: a vector that tells the texts apart."""
    return [float(text), 0.0]


def answer(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
    texts = json.loads(request.content)["input"]
    data = [{"index": index, "embedding": vector(text)} for index, text in enumerate(texts)]
    return 200, json.dumps({"model": "minilm", "data": data}).encode(), {}


class Gate:
    """Wraps a fake server: records who sent each request, and can hold the first `hold`
    requests until all of them are in flight at once, which only concurrent dispatch achieves.
    """

    def __init__(self, server: FakeServer, hold: int = 0) -> None:
        self.server = server
        self.hold = hold
        self.threads: list[int] = []
        self.most_in_flight = 0
        self._in_flight = 0
        self._arrived = 0
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(max(hold, 1))
        self._all_in = asyncio.Event()

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if self._enter():
            self._barrier.wait(timeout=BOUND)
        try:
            return self.server.handle(request)
        finally:
            self._leave()

    async def ahandle(self, request: httpx2.Request) -> httpx2.Response:
        if self._enter():
            if self._arrived == self.hold:
                self._all_in.set()
            await asyncio.wait_for(self._all_in.wait(), BOUND)
        try:
            return self.server.handle(request)
        finally:
            self._leave()

    def _enter(self) -> bool:
        """Count the request in; True when it is one of those to hold."""
        with self._lock:
            self.threads.append(threading.get_ident())
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            self._arrived += 1
            return self._arrived <= self.hold

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


Build = Callable[..., SelfHostedEmbeddings]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> LCDriver:
    return LCDriver(request.param)


@pytest.fixture
def fake() -> FakeServer:
    server = FakeServer()
    server.on("POST", EMBED, answer)
    return server


@pytest.fixture
async def build(fake: FakeServer) -> AsyncIterator[Build]:
    """Makes embeddings on a provider whose endpoints all reach `fake` (through `gate`)."""
    providers: list[Provider] = []

    def make(
        endpoints: list[dict[str, Any]], gate: Gate | None = None, **fields: Any
    ) -> SelfHostedEmbeddings:
        gate = gate or Gate(fake)
        provider = Provider(
            Config(endpoints=endpoints),
            transport=httpx2.MockTransport(gate.handle),
            async_transport=httpx2.MockTransport(gate.ahandle),
        )
        providers.append(provider)
        fields.setdefault("max_retries", 0)
        return SelfHostedEmbeddings(model="minilm", provider=provider, **fields)

    yield make
    for provider in providers:
        await provider.aclose()


def sent_inputs(server: FakeServer) -> list[list[str]]:
    return [payload["input"] for payload in server.payloads()]


TEXTS = [str(n) for n in range(7)]


@pytest.mark.parametrize("endpoints", [ONE, TWO], ids=["one-replica", "two-replicas"])
async def test_batches_split_and_keep_order(
    mode: LCDriver, build: Build, fake: FakeServer, endpoints: list[dict[str, Any]]
) -> None:
    embeddings = build(endpoints, batch_size=3)
    assert await mode.documents(embeddings, TEXTS) == [vector(text) for text in TEXTS]
    assert sorted(sent_inputs(fake)) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]


async def test_query_is_one_text(mode: LCDriver, build: Build, fake: FakeServer) -> None:
    assert await mode.query(build(ONE), "5") == vector("5")
    assert sent_inputs(fake) == [["5"]]


async def test_empty_input_sends_nothing(mode: LCDriver, build: Build, fake: FakeServer) -> None:
    assert await mode.documents(build(TWO), []) == []
    assert fake.requests == []


async def test_dimension_mismatch_names_the_endpoint(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    fake.on("POST", EMBED, {"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0]}]})
    with pytest.raises(ResponseError, match="embedding 0 has 3 dimensions; configured 2") as info:
        await mode.documents(build(ONE), ["1"])
    assert (info.value.endpoint, info.value.model) == ("embed-a", "minilm")


async def test_each_key_reaches_only_its_endpoint(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    chat_endpoint = ENDPOINTS[0]  # also configured, with a key of its own
    await mode.documents(build([chat_endpoint, *TWO], batch_size=2), TEXTS)
    seen = {(r.url.host, r.headers.get("authorization")) for r in fake.requests}
    assert seen == {("embed-a.test", "Bearer key-a"), ("embed-b.test", "Bearer key-b")}


async def test_batches_overlap_across_replicas(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    gate = Gate(fake, hold=2)
    embeddings = build(TWO, gate=gate, batch_size=2)
    assert await mode.documents(embeddings, TEXTS) == [vector(text) for text in TEXTS]
    # Getting here means the first two batches were in flight together; never more than one
    # per replica.
    assert gate.most_in_flight == 2
    assert {request.url.host for request in fake.requests} == {"embed-a.test", "embed-b.test"}


@pytest.mark.parametrize("endpoints", [ONE, TWO], ids=["one-replica", "two-replicas"])
async def test_threads_only_for_sync_calls_that_can_overlap(
    mode: LCDriver, build: Build, fake: FakeServer, endpoints: list[dict[str, Any]]
) -> None:
    gate = Gate(fake)
    await mode.documents(build(endpoints, gate=gate, batch_size=2), TEXTS)
    on_caller = set(gate.threads) == {threading.get_ident()}
    assert on_caller == (mode.mode == "async" or len(endpoints) == 1)


async def test_extra_body_reaches_every_batch(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    extra = {"truncate": True, "add_special": False}
    await mode.documents(build(ONE, batch_size=4, extra_body=extra), TEXTS)
    payloads = fake.payloads()
    assert len(payloads) == 2
    for payload, texts in zip(payloads, [TEXTS[:4], TEXTS[4:]], strict=True):
        assert payload == {
            "model": "minilm",
            "input": texts,
            "encoding_format": "float",
            "truncate": True,
            "add_special": False,
        }


def busy_once() -> Callable[[httpx2.Request], tuple[int, bytes, dict[str, str]]]:
    """A route that answers 429 (retry at once) to its first request, then embeds."""
    calls = 0

    def route(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return 429, b'{"error":{"message":"busy"}}', {"retry-after": "0"}
        return answer(request)

    return route


async def test_a_failed_batch_is_retried_alone(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    fake.on("POST", EMBED, busy_once())
    embeddings = build(ONE, batch_size=4, max_retries=1)
    assert await mode.documents(embeddings, TEXTS) == [vector(text) for text in TEXTS]
    assert sent_inputs(fake) == [TEXTS[:4], TEXTS[:4], TEXTS[4:]]


async def test_errors_are_langchain_errors(mode: LCDriver, build: Build, fake: FakeServer) -> None:
    fake.on(
        "POST", EMBED, b'{"error":{"message":"busy"}}', status=429, headers={"retry-after": "0"}
    )
    with pytest.raises(lc.ModelRateLimitError) as info:
        await mode.documents(build(ONE), ["1"])
    assert isinstance(info.value, RateLimitError)
    assert (info.value.endpoint, info.value.retry_after) == ("embed-a", 0.0)


async def test_a_failed_batch_stops_the_call(
    mode: LCDriver, build: Build, fake: FakeServer
) -> None:
    fake.on("POST", EMBED, {"error": {"message": "boom"}}, status=500)
    with pytest.raises(ServerError, match="boom"):
        await mode.documents(build(ONE, batch_size=2), TEXTS)
    assert sent_inputs(fake) == [TEXTS[:2]]


async def test_async_batches_in_flight_are_cancelled_when_one_fails(fake: FakeServer) -> None:
    """Replica A fails at once while B's requests wait for an answer that never comes: the call
    must cancel them, and they must be over by the time it raises."""
    fake.on("POST", EMBED, {"error": {"message": "boom"}}, status=500)
    never = asyncio.Event()
    reached_b: list[str] = []
    cancelled: list[str] = []

    async def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "embed-b.test":
            reached_b.append(request.url.host)
            try:
                await asyncio.wait_for(never.wait(), BOUND)
            except asyncio.CancelledError:
                cancelled.append(request.url.host)
                raise
        return fake.handle(request)

    transport = httpx2.MockTransport(handle)
    async with Provider(Config(endpoints=TWO), async_transport=transport) as provider:
        embeddings = SelfHostedEmbeddings(
            model="minilm", provider=provider, batch_size=2, max_retries=0
        )
        with pytest.raises(ServerError, match="boom"):
            await embeddings.aembed_documents(TEXTS)
        # Checked before anything else yields to the event loop (closing the provider would).
        assert reached_b
        assert cancelled == reached_b


def test_dimension_comes_from_the_config() -> None:
    embeddings = SelfHostedEmbeddings(model="minilm", config=Config(endpoints=TWO))
    assert embeddings.dimension == 2


def test_dimension_contradicting_the_config_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="dimension: 3 given, but the endpoints of"):
        SelfHostedEmbeddings(model="minilm", config=Config(endpoints=TWO), dimension=3)


def test_base_url_needs_a_dimension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELFHOSTED_DIMENSION", raising=False)
    with pytest.raises(ConfigurationError, match=r"^dimension: required with base_url="):
        SelfHostedEmbeddings(model="minilm", base_url="http://127.0.0.1:8081")


def test_a_chat_model_is_refused() -> None:
    with pytest.raises(CapabilityError, match="'tiny' is not an embedding model"):
        SelfHostedEmbeddings(model="tiny", config=Config(endpoints=ENDPOINTS))


def test_misspelt_arguments_fail() -> None:
    with pytest.raises(ValueError, match="batchsize"):
        SelfHostedEmbeddings(model="minilm", config=Config(endpoints=TWO), batchsize=8)


def test_split_batches() -> None:
    assert split_batches(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert split_batches(["a"], 64) == [["a"]]
    assert split_batches([], 3) == []


@pytest.mark.parametrize(
    ("replicas", "batches", "workers"), [(2, 5, 2), (4, 1, 1), (4, 3, 3), (1, 9, 1), (3, 0, 1)]
)
def test_worker_count(replicas: int, batches: int, workers: int) -> None:
    assert worker_count(replicas=replicas, batches=batches) == workers
